"""Personal priors on disk: the folder layout, saving, loading and listing, and their checks.

A prior is the folder ``settings.priors_dir/person_<id>/``:

- ``refs/face_<id>.png`` + ``refs.json``: the reference crops, in anchor order (see ``refs.py``);
- ``anchors.safetensors``: ``anchors`` (N, w_dim) float32, row i = reference i of ``prior.json``;
- ``delta.safetensors`` (tuned - base, per synthesis tensor) or ``adapters.safetensors`` (low-rank
  factors): the change against the base generator, never a whole generator;
- ``prior.json``: person, references, base generator (name, fingerprint), hyperparameters, preset, loss
  kind, losses before/after, timings, and the SHA-256 of every file above. Written last: a folder without
  it is an unfinished build (``work/`` then holds its checkpoints).

Every file is written atomically. Loading checks the checksums and the base generator's fingerprint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from photokit.errors import PhotokitError, Remedy
from photokit.prior.adapters import apply_stored, stored_kind
from photokit.prior.meta import (
    ANCHORS_FILE,
    FORMAT,
    PRIOR_JSON,
    WEIGHT_FILES,
    prior_dir,
    read_prior_meta,
)
from photokit.settings import Settings
from photokit.store.atomic import atomic_path, atomic_write_text
from photokit.stylegan2.base import BaseGenerator, resolve_base


@dataclass
class PersonalPrior:
    person_id: int
    person_name: str | None
    generator: nn.Module  # the tuned generator (eval, frozen)
    anchors: torch.Tensor  # (N, w_dim), rows in the order of meta["references"]
    meta: dict
    path: Path


def person_owner(db, person_id: int) -> dict | None:
    """Whom a prior belongs to: this library's id and the person's creation time. Person ids can be reused
    (a deleted person's id, another library in the same home), so the id alone does not prove it."""
    from photokit.db.models import Person

    with db.session(write=False) as session:
        person = session.get(Person, int(person_id))
        if person is None:
            return None
        created = person.created_at.isoformat()
    return {"library_id": db.library_id(), "person_created_at": created}


def remove_prior(settings: Settings, person_id: int) -> Path:
    """Delete a person's prior folder (references, anchors, weights, unfinished work)."""
    folder = prior_dir(settings, person_id)
    if not folder.is_dir():
        raise PhotokitError(f"person {person_id} has no personal prior")
    doomed = folder.with_name(f".{folder.name}.removing")  # not a prior folder name: never listed or loaded
    shutil.rmtree(doomed, ignore_errors=True)  # left by a removal that was interrupted
    try:
        folder.rename(doomed)  # the prior is whole or gone, even when deleting its files stops half-way
    except OSError as exc:
        raise PhotokitError(f"cannot remove {folder} ({exc.strerror}): nothing was removed") from None
    shutil.rmtree(doomed)
    return folder


def _file_record(path: Path) -> dict:
    from photokit.store.hashing import file_sha256

    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def save_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})  # noqa: SIM118 - not iterable
    except Exception as exc:
        raise PhotokitError(f"{path} is corrupt or truncated ({exc.__class__.__name__})") from None


def save_prior(folder: Path, anchors: torch.Tensor, stored: dict[str, torch.Tensor], meta: dict) -> dict:
    """Write anchors, weights and (last) prior.json; returns the final meta."""
    (folder / PRIOR_JSON).unlink(missing_ok=True)  # the old prior, if any, is invalid from here on
    kind = stored_kind(stored)
    weights = folder / WEIGHT_FILES[kind]
    fingerprint = meta["base"]["fingerprint"]
    save_safetensors(
        folder / ANCHORS_FILE,
        {"anchors": anchors.float()},
        {
            "format": FORMAT,
            "face_ids": json.dumps([r["face_id"] for r in meta["references"]]),
            "base_fingerprint": fingerprint,
        },
    )
    save_safetensors(weights, stored, {"format": FORMAT, "kind": kind, "base_fingerprint": fingerprint})
    for other in WEIGHT_FILES.values():
        if other != weights.name:
            (folder / other).unlink(missing_ok=True)
    meta = {**meta, "files": {ANCHORS_FILE: _file_record(folder / ANCHORS_FILE), weights.name: _file_record(weights)}}
    atomic_write_text(folder / PRIOR_JSON, json.dumps(meta, indent=2, default=float))
    return meta


def load_personal_prior(
    settings: Settings,
    person_id: int,
    device: str | torch.device = "cpu",
    base_generator: BaseGenerator | nn.Module | None = None,
    owner: dict | None = None,
) -> PersonalPrior:
    """The tuned generator and anchors of a person (PhotokitError on corrupt files, another base generator,
    or, when ``owner`` (see ``person_owner``) is given, a prior built for someone else with the same id).

    ``base_generator`` (default: the installed one) is not modified. Passing the same ``BaseGenerator``
    for every person avoids reloading the base and re-hashing its weights (its fingerprint is cached).
    """
    import copy

    from photokit.devices import resolve_device

    device = device if isinstance(device, torch.device) else resolve_device(device)
    folder = prior_dir(settings, person_id)
    meta = read_prior_meta(settings, person_id)
    _check_owner(meta, owner, folder, person_id)
    _check_files(meta, folder, person_id)
    kind = meta["tuning"]["kind"]
    base = _matching_base(settings, meta, device, base_generator, person_id)
    anchors = load_safetensors(folder / ANCHORS_FILE)[0].get("anchors")
    if anchors is None or anchors.dim() != 2 or anchors.shape != (len(meta["references"]), base.w_dim):
        raise PhotokitError(f"prior of person {person_id}: anchors do not match its references or the generator")
    stored, _ = load_safetensors(folder / WEIGHT_FILES[kind])
    tuned = copy.deepcopy(base).to(device)
    try:
        apply_stored(tuned.synthesis, {k: v.to(device) for k, v in stored.items()})
    except ValueError as exc:
        raise PhotokitError(f"prior of person {person_id} does not fit the base generator ({exc})") from None
    tuned.eval().requires_grad_(False)
    return PersonalPrior(int(meta["person_id"]), meta.get("person_name"), tuned, anchors.to(device), meta, folder)


def _check_owner(meta: dict, owner: dict | None, folder: Path, person_id: int) -> None:
    recorded = meta.get("owner")
    if owner is not None and recorded is not None and recorded != owner:
        whom = (
            "another library"
            if recorded.get("library_id") != owner.get("library_id")
            else "an earlier person who had the same id"
        )
        raise PhotokitError(
            f"the prior in {folder} was built for {whom}, not for person {person_id}",
            Remedy.REBUILD_PRIOR,
            person_id=person_id,
        )


def _check_files(meta: dict, folder: Path, person_id: int) -> None:
    """Every file prior.json lists is there and matches its checksum; the weights and anchors are listed."""
    from photokit.store.hashing import file_sha256

    for name, record in meta.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise PhotokitError(f"prior of person {person_id} is incomplete: {name} is missing; rebuild it")
        if file_sha256(path) != record.get("sha256"):
            raise PhotokitError(
                f"prior of person {person_id} is corrupt: {name} does not match its checksum",
                Remedy.REBUILD_PRIOR,
                person_id=person_id,
            )
    kind = meta["tuning"]["kind"]
    if WEIGHT_FILES[kind] not in meta.get("files", {}) or ANCHORS_FILE not in meta.get("files", {}):
        raise PhotokitError(f"prior of person {person_id} lists no {WEIGHT_FILES[kind]}; rebuild it")


def _matching_base(
    settings: Settings,
    meta: dict,
    device: torch.device,
    base_generator: BaseGenerator | nn.Module | None,
    person_id: int,
) -> nn.Module:
    """The base generator the prior was tuned on (checked by fingerprint)."""
    expected = meta["base"]["fingerprint"]
    if base_generator is None:
        base_generator = resolve_base(settings, device)
    elif not isinstance(base_generator, BaseGenerator):
        base_generator = BaseGenerator(base_generator, "the given generator")
    actual = base_generator.fingerprint
    if actual != expected:
        raise PhotokitError(
            f"prior of person {person_id} was tuned on base generator {meta['base'].get('name')} "
            f"({expected[:12]}), not on this one ({actual[:12]}): install that generator or rebuild the prior"
        )
    return base_generator.generator
