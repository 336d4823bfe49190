"""Reference sets: which of a person's faces the personal prior learns from.

MyStyle (sec. 5 and its code) filters the reference photos (small, low quality, grayscale, near-duplicate)
and found that diversity matters more than count. photokit does the same on the faces the library already
indexed (Face rows: descriptor, FFHQ alignment, blur, colour, yaw), then picks the most diverse
faces by farthest-point sampling on the embeddings, and writes their aligned crops (FFHQ alignment at the
generator's resolution, from the original photo files) into the prior's folder, in a fixed order that the
anchors follow.

Selection is pure (``select_references`` on ``Candidate`` values); database and file I/O sit at the edges.
Over 400 lines because the selection rules and the crops they produce are read and changed together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from photokit.errors import PhotokitError
from photokit.reporting import NULL_REPORTER, Reporter, reported_task

REFS_JSON = "refs.json"
REFS_DIR = "refs"

# Drop reasons, in the order they are checked (a face gets the first that applies).
REASONS = (
    "no_landmarks",
    "no_embedding",
    "too_small",
    "blurry",
    "grayscale",
    "turned",
    "duplicate",
    "unreadable",
    "not_selected",
)


@dataclass(frozen=True)
class RefsConfig:
    """Thresholds. MyStyle's own filters (its code): faces under 200 px / crops under 500 px at 1024 px,
    BRISQUE >= 45, grayscale, ArcFace cosine > 0.92 for near-duplicates. photokit's blur, yaw and duplicate
    thresholds are calibrated on the dlib measures the library stores, on ../shared/data/faces/deepface
    (62 photos, 13 people) plus re-encoded, mirrored and grayscale copies (numbers in the README)."""

    max_refs: int = 100
    min_refs: int = 5
    # The FFHQ square must be at least this fraction of the generator resolution (at most 2x upsampling):
    # 512 px at 1024, the same floor as MyStyle's 500 px crops.
    min_side_fraction: float = 0.5
    # Variance of the Laplacian on the 256 px aligned crop (``Face.blur``). Calibration: visibly blurred
    # faces measured 2-14, every sharp face 72 or more.
    min_blur: float = 40.0
    # |yaw| above this (degrees, from landmarks) is a near-profile view the FFHQ alignment handles badly.
    max_abs_yaw: float = 45.0
    # dlib 128-D euclidean distance (scaled for other kinds) under which two faces are the same shot.
    # Calibration: re-encoded or resized copies 0.04-0.07, mirrored copies 0.15-0.20 (img11 vs
    # img11_reflection: 0.17); distinct photos of the same person 0.26 and up (dlib's same-person threshold: 0.6).
    duplicate_distance: float = 0.22

    def min_side_px(self, resolution: int) -> float:
        return self.min_side_fraction * resolution


@dataclass
class Candidate:
    face_id: int
    photo_id: int
    path: str | None
    side_px: float  # FFHQ square side in photo pixels (detail available for the crop)
    blur: float | None
    is_gray: bool
    yaw: float | None
    embedding: np.ndarray | None = field(default=None, repr=False)
    alignment: dict | None = None

    def quality_key(self) -> tuple:
        """Best first: most pixels, then sharpest, then oldest id (deterministic)."""
        return (-self.side_px, -(self.blur or 0.0), self.face_id)


@dataclass
class Decision:
    face_id: int
    photo_id: int
    path: str | None
    kept: bool
    reason: str | None = None  # one of REASONS when dropped
    detail: str = ""
    order: int | None = None  # position in the reference set (= anchor index) when kept

    def to_json(self) -> dict:
        return asdict(self)


def quality_reason(c: Candidate, resolution: int, config: RefsConfig) -> tuple[str, str] | None:
    """Why a face cannot be a reference on its own merits (reason, detail), or None."""
    if c.alignment is None:
        return "no_landmarks", "no 68-point landmarks, cannot be aligned"
    if c.embedding is None:
        return "no_embedding", "no face descriptor"
    if c.side_px < config.min_side_px(resolution):
        return (
            "too_small",
            f"{c.side_px:.0f} px < {config.min_side_px(resolution):.0f} px for a {resolution} px generator",
        )
    if c.blur is not None and c.blur < config.min_blur:
        return "blurry", f"sharpness {c.blur:.0f} < {config.min_blur:.0f}"
    if c.is_gray:
        return "grayscale", "no colour (black-and-white or uniformly tinted)"
    if c.yaw is not None and abs(c.yaw) > config.max_abs_yaw:
        return "turned", f"yaw {c.yaw:+.0f} deg beyond +-{config.max_abs_yaw:.0f}"
    return None


def drop_near_duplicates(
    candidates: list[Candidate], threshold: float
) -> tuple[list[Candidate], list[tuple[Candidate, Candidate, float]]]:
    """Greedy: walk faces best-first, drop one within ``threshold`` of a face already kept.

    Returns (kept, [(dropped, duplicate_of, distance)]).
    """
    kept: list[Candidate] = []
    dropped = []
    for c in sorted(candidates, key=Candidate.quality_key):
        if kept:
            dist = np.linalg.norm(np.stack([k.embedding for k in kept]) - c.embedding, axis=1)
            nearest = int(np.argmin(dist))
            if dist[nearest] < threshold:
                dropped.append((c, kept[nearest], float(dist[nearest])))
                continue
        kept.append(c)
    return kept, dropped


def farthest_point_sampling(embeddings: np.ndarray, k: int, first: int = 0) -> list[int]:
    """Indices of ``k`` rows chosen greedily to maximise the distance to those already chosen."""
    n = len(embeddings)
    if k >= n:
        k = n
    chosen = [first]
    dist = np.linalg.norm(embeddings - embeddings[first], axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(dist))  # ties: lowest index (inputs are sorted best-first)
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(embeddings - embeddings[nxt], axis=1))
    return chosen


def decision_counts(decisions: list[Decision]) -> dict[str, int]:
    """{'kept': n, <drop reason>: n, ...} for the kept/dropped table."""
    out = {"kept": sum(1 for d in decisions if d.kept)}
    for d in decisions:
        if not d.kept:
            out[d.reason] = out.get(d.reason, 0) + 1
    return out


@dataclass
class Selection:
    kept: list[Candidate]  # in reference (anchor) order
    decisions: list[Decision]  # every candidate, kept or dropped

    def counts(self) -> dict[str, int]:
        return decision_counts(self.decisions)


def select_references(candidates: Iterable[Candidate], resolution: int, config: RefsConfig = RefsConfig()) -> Selection:
    """Quality filters -> near-duplicate removal -> farthest-point sampling up to ``config.max_refs``.

    The first reference is the best-quality face; the rest follow in farthest-point order.
    """
    candidates = list(candidates)
    decisions: dict[int, Decision] = {}
    usable = []
    for c in candidates:
        why = quality_reason(c, resolution, config)
        if why is None:
            usable.append(c)
        else:
            decisions[c.face_id] = Decision(c.face_id, c.photo_id, c.path, False, *why)
    distinct, duplicates = drop_near_duplicates(usable, config.duplicate_distance)
    for c, of, dist in duplicates:
        decisions[c.face_id] = Decision(
            c.face_id,
            c.photo_id,
            c.path,
            False,
            "duplicate",
            f"same shot as face {of.face_id} (distance {dist:.3f} < {config.duplicate_distance})",
        )
    kept: list[Candidate] = []
    if distinct:
        order = farthest_point_sampling(np.stack([c.embedding for c in distinct]), config.max_refs)
        kept = [distinct[i] for i in order]
        chosen = {c.face_id for c in kept}
        for c in distinct:
            if c.face_id not in chosen:
                decisions[c.face_id] = Decision(
                    c.face_id,
                    c.photo_id,
                    c.path,
                    False,
                    "not_selected",
                    f"beyond the limit of {config.max_refs} references (less diverse)",
                )
    for i, c in enumerate(kept):
        decisions[c.face_id] = Decision(c.face_id, c.photo_id, c.path, True, order=i)
    return Selection(kept, [decisions[c.face_id] for c in sorted(candidates, key=lambda c: c.face_id)])


def too_few_message(person_label: str, selection: Selection, config: RefsConfig) -> str:
    counts = {k: v for k, v in selection.counts().items() if k != "kept"}
    why = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    usable = len(selection.kept) + counts.get("not_selected", 0)
    return (
        f"{person_label} has only {usable} usable face(s), a prior needs at least {config.min_refs}"
        + (f" (dropped: {why})" if why else "")
        + "; add more photos of them and scan again"
    )


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
    from photokit.faces.descriptors import active_kind, in_units_of
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
