"""Reference sets: which of a person's faces the personal prior learns from.

A person's chosen faces get their aligned crops (FFHQ alignment at the generator's resolution, from the
original photo files) written into the prior's folder, in a fixed order that the anchors follow.

The selection rules themselves are pure and live in `prior.selection`; this module is the database and
file side: candidates from Face rows, the aligned crops, and ``refs.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from photokit.errors import PhotokitError
from photokit.prior.selection import (
    Candidate,
    Decision,
    RefsConfig,
    Selection,
    decision_counts,
    select_references,
    too_few_message,
)
from photokit.reporting import NULL_REPORTER, Reporter, reported_task

REFS_JSON = "refs.json"
REFS_DIR = "refs"

# -- database and files ---------------------------------------------------------------------------


def load_candidates(session, person) -> list[Candidate]:
    """The person's faces as candidates (faces the user rejected are not theirs); descriptors of the
    library's active kind only (a face not described by it yet has none)."""
    from sqlalchemy import select

    from photokit.db.models import Face
    from photokit.faces.align import FaceAlignment
    from photokit.faces.descriptors import active_kind
    from photokit.faces.people import embedding_from_bytes, photo_path

    kind = active_kind(session)
    faces = session.scalars(select(Face).where(Face.person_id == person.id).order_by(Face.id)).all()
    out = []
    for f in faces:
        if f.user_rejected:
            continue
        side = FaceAlignment.from_json(f.alignment).side_px if f.alignment else float(f.size_px or 0.0)
        out.append(
            Candidate(
                face_id=f.id,
                photo_id=f.photo_id,
                path=photo_path(session, f.photo_id),
                side_px=side,
                blur=f.blur,
                is_gray=bool(f.is_gray),
                yaw=f.yaw,
                embedding=embedding_from_bytes(f.embedding, kind)
                if f.embedding and f.descriptor_kind == kind
                else None,
                alignment=f.alignment,
            )
        )
    return out


def crop_name(face_id: int) -> str:
    return f"face_{face_id}.png"


def write_crop(path: str, alignment: dict, resolution: int, target: Path) -> None:
    """Align one face from its original photo file and write the crop atomically (PNG, lossless)."""
    from PIL import Image

    from photokit.faces.align import FaceAlignment, align_face
    from photokit.library.images import read_rgb
    from photokit.store.atomic import atomic_path

    rgb = read_rgb(path)
    crop = align_face(rgb, FaceAlignment.from_json(alignment), resolution)
    with atomic_path(target) as tmp:
        Image.fromarray(crop).save(tmp, format="PNG")


@dataclass
class ReferenceSet:
    person_id: int
    person_name: str | None
    resolution: int
    faces: list[dict]  # kept, in anchor order: face_id, photo_id, path, crop, side_px, blur, yaw
    decisions: list[Decision]
    config: dict
    folder: Path

    def counts(self) -> dict[str, int]:
        return decision_counts(self.decisions)

    def to_json(self) -> dict:
        return {
            "person_id": self.person_id,
            "person_name": self.person_name,
            "resolution": self.resolution,
            "faces": self.faces,
            "counts": self.counts(),
            "decisions": [d.to_json() for d in self.decisions],
            "config": self.config,
            "folder": str(self.folder),
        }

    @classmethod
    def from_json(cls, data: dict, folder: Path) -> ReferenceSet:
        return cls(
            data["person_id"],
            data.get("person_name"),
            int(data["resolution"]),
            list(data["faces"]),
            [Decision(**d) for d in data["decisions"]],
            dict(data.get("config", {})),
            folder,
        )


def person_label(person) -> str:
    return f"person {person.id}" + (f" ({person.name})" if person.name else "")


def preview_selection(db, person_ref: str, resolution: int, config: RefsConfig = RefsConfig()) -> Selection:
    """The selection without writing anything (cheap): PhotokitError when too few faces are usable."""
    from photokit.faces.cluster_config import in_units_of
    from photokit.faces.descriptors import active_kind
    from photokit.faces.people import resolve_person

    with db.session(write=False) as session:
        person = resolve_person(session, person_ref)
        scaled = in_units_of(active_kind(session), config, "duplicate_distance")
        selection = select_references(load_candidates(session, person), resolution, scaled)
        if len(selection.kept) < config.min_refs:
            raise PhotokitError(too_few_message(person_label(person), selection, config))
    return selection


def build_reference_set(
    db,
    person_ref: str,
    resolution: int,
    folder: Path,
    config: RefsConfig = RefsConfig(),
    reporter: Reporter = NULL_REPORTER,
) -> ReferenceSet:
    """Select a person's references and write their aligned crops + ``refs.json`` into ``folder``.

    Raises PhotokitError when fewer than ``config.min_refs`` usable faces remain (the message says why).
    """
    from photokit.faces.people import resolve_person
    from photokit.store.atomic import atomic_write_text

    if config.max_refs < config.min_refs:
        raise PhotokitError(f"the reference limit must be at least {config.min_refs}")
    selection = preview_selection(db, person_ref, resolution, config)
    with db.session(write=False) as session:
        person = resolve_person(session, person_ref)
        person_id, name, label = person.id, person.name, person_label(person)

    crops_dir = folder / REFS_DIR
    crops_dir.mkdir(parents=True, exist_ok=True)
    faces = _write_crops(selection, resolution, crops_dir, reporter)
    refs = ReferenceSet(
        person_id, name, resolution, faces, selection.decisions, {**asdict(config), "max_refs": config.max_refs}, folder
    )
    if len(faces) < config.min_refs:
        raise PhotokitError(
            f"{label} has only {len(faces)} reference photo(s) that could be read "
            f"(need {config.min_refs}); check the files reported as unreadable"
        )
    keep = {crop_name(f["face_id"]) for f in faces}
    for stale in crops_dir.glob("face_*.png"):  # crops of an earlier selection
        if stale.name not in keep:
            stale.unlink()
    atomic_write_text(folder / REFS_JSON, json.dumps(refs.to_json(), indent=2, default=float))
    return refs


def _write_crops(selection: Selection, resolution: int, crops_dir: Path, reporter: Reporter) -> list[dict]:
    """Align and write every kept face; an unreadable one becomes a dropped decision. Returns the kept faces
    in reference order (and numbers their decisions accordingly)."""
    by_id = {d.face_id: d for d in selection.decisions}
    faces = []
    with reported_task(reporter, "references", "aligning references", len(selection.kept)) as task:
        for c in selection.kept:
            try:
                if c.path is None:
                    raise PhotokitError("no known file")
                write_crop(c.path, c.alignment, resolution, crops_dir / crop_name(c.face_id))
            except PhotokitError as exc:
                d = by_id[c.face_id]
                d.kept, d.order, d.reason, d.detail = False, None, "unreadable", str(exc)
            else:
                faces.append(
                    {
                        "face_id": c.face_id,
                        "photo_id": c.photo_id,
                        "path": c.path,
                        "crop": f"{REFS_DIR}/{crop_name(c.face_id)}",
                        "side_px": round(c.side_px, 1),
                        "blur": c.blur,
                        "yaw": c.yaw,
                    }
                )
            reporter.task_advanced(task)
    for i, f in enumerate(faces):
        by_id[f["face_id"]].order = i
    return faces


def read_reference_set(folder: Path) -> ReferenceSet | None:
    path = folder / REFS_JSON
    if not path.is_file():
        return None
    try:
        return ReferenceSet.from_json(json.loads(path.read_text()), folder)
    except (ValueError, KeyError, TypeError) as exc:
        raise PhotokitError(f"{path} is corrupt ({exc.__class__.__name__}); pick the references again") from None


def load_reference_images(refs: ReferenceSet):
    """The crops as a float tensor (N, 3, R, R) in [-1, 1], in reference order."""
    import torch
    from PIL import Image

    images = []
    for f in refs.faces:
        path = refs.folder / f["crop"]
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32)
        except (OSError, ValueError) as exc:
            raise PhotokitError(
                f"reference crop {path} is unreadable ({exc.__class__.__name__}); pick the references again"
            ) from None
        if arr.shape[:2] != (refs.resolution, refs.resolution):
            raise PhotokitError(f"reference crop {path} is not {refs.resolution} px; pick the references again")
        images.append(torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0)
    return torch.stack(images)
