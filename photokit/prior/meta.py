"""A personal prior's description on disk (``prior.json``): where priors live, reading, checking, listing.

Torch-free on purpose: ``photokit status`` and ``prior list`` read these and must start instantly
(``photokit.prior.storage`` saves and loads the tensors).
"""

from __future__ import annotations

import json
from pathlib import Path

from photokit.errors import PhotokitError, Remedy
from photokit.prior.vocab import PriorKind
from photokit.settings import Settings

FORMAT = "photokit-personal-prior"
FORMAT_VERSION = 1
PRIOR_JSON = "prior.json"
ANCHORS_FILE = "anchors.safetensors"
WEIGHT_FILES = {PriorKind.FULL: "delta.safetensors", PriorKind.LOWRANK: "adapters.safetensors"}
WORK_DIR = "work"
ANCHORS_PARTIAL = "anchors.partial.safetensors"
TUNING_CHECKPOINT = "tuning.ckpt"


def prior_dir(settings: Settings, person_id: int) -> Path:
    return settings.priors_dir / f"person_{int(person_id)}"


def has_prior(settings: Settings, person_id: int) -> bool:
    return (prior_dir(settings, person_id) / PRIOR_JSON).is_file()


def prior_person_ids(settings: Settings) -> set[int]:
    """Ids of the people with a finished prior (a ``prior.json``), without reading any of them."""
    if not settings.priors_dir.is_dir():
        return set()
    folders = (f for f in settings.priors_dir.glob("person_*") if (f / PRIOR_JSON).is_file())
    return {int(f.name.split("_", 1)[1]) for f in folders if f.name.split("_", 1)[1].isdigit()}


def read_prior_meta(settings: Settings, person_id: int) -> dict:
    path = prior_dir(settings, person_id) / PRIOR_JSON
    if not path.is_file():
        raise PhotokitError(f"person {person_id} has no personal prior", Remedy.BUILD_PRIOR, person_id=person_id)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PhotokitError(
            f"{path} is corrupt ({exc.__class__.__name__})", Remedy.REBUILD_PRIOR, person_id=person_id
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PhotokitError(
            f"{path} is not a prior description photokit wrote", Remedy.REBUILD_PRIOR, person_id=person_id
        )
    problem = _meta_problem(meta)
    if problem:
        raise PhotokitError(f"{path} is incomplete ({problem})", Remedy.REBUILD_PRIOR, person_id=person_id)
    return meta


def _meta_problem(meta: dict) -> str | None:
    """What is missing from a prior.json that loading and listing rely on (None: nothing)."""
    if not isinstance(meta.get("person_id"), int) or isinstance(meta.get("person_id"), bool):
        return "no person_id"
    if not isinstance(meta.get("references"), list):
        return "no references"
    base = meta.get("base")
    if not isinstance(base, dict) or not isinstance(base.get("fingerprint"), str):
        return "no base generator fingerprint"
    tuning = meta.get("tuning")
    if not isinstance(tuning, dict) or not isinstance(tuning.get("kind"), str) or tuning["kind"] not in WEIGHT_FILES:
        return "no tuning kind"
    files = meta.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(f, dict) and isinstance(f.get("bytes"), int) and isinstance(f.get("sha256"), str)
        for f in files.values()
    ):
        return "no file records"
    for section in ("loss", "anchors", "timings"):
        if section in meta and not isinstance(meta[section], dict):
            return f"'{section}' is not a table"
    return None


def tuned_weights(tuning: dict) -> str:
    """What a prior.json's tuning changed, in words: the adapters' ranks as stored, or a full delta."""
    if tuning.get("kind") != "lowrank":
        return "full delta"
    ranks = tuning.get("adapter_ranks")  # [lowest, highest]; older priors record only the fixed rank
    if not (isinstance(ranks, list) and len(ranks) == 2):
        return f"low-rank adapters R={tuning.get('adapter_rank', '?')}"
    if ranks[0] == ranks[1]:
        return f"low-rank adapters R={ranks[0]}"
    return f"low-rank adapters R={ranks[0]}-{ranks[1]} ({rank_rule_words(tuning)})"


def rank_rule_words(tuning: dict) -> str:
    """How the ranks were chosen, from a tuning configuration's JSON."""
    fraction, floor, cap = (tuning.get(k) for k in ("adapter_rank_fraction", "adapter_rank", "adapter_rank_cap"))
    if not fraction:
        return f"rank {floor}"
    return (
        f"{fraction} of each weight's rank"
        + (f", at least {floor}" if floor else "")
        + (f", at most {cap}" if cap else "")
    )


def prior_summary(meta: dict) -> dict:
    """The short form `prior list` prints."""
    tuning = meta.get("tuning", {})
    return {
        "person_id": meta["person_id"],
        "person_name": meta.get("person_name"),
        "anchors": len(meta.get("references", [])),
        "kind": tuning.get("kind"),
        "rank": tuning.get("adapter_rank"),
        "ranks": tuning.get("adapter_ranks"),  # [lowest, highest] per weight (None: older priors, full deltas)
        "bytes": sum(f["bytes"] for f in meta.get("files", {}).values()),
        "preset": meta.get("preset"),
        "loss": meta.get("loss", {}).get("kind"),
        "base": meta.get("base", {}).get("name"),
        "real_face_prior": meta.get("base", {}).get("pretrained_face_model", False)
        and meta.get("loss", {}).get("kind") != "mse",
        "loss_before": tuning.get("loss_before"),
        "loss_after": tuning.get("loss_after"),
        "created": meta.get("created"),
    }


def list_priors(settings: Settings) -> list[dict]:
    """Every finished prior in the store (unreadable ones listed with an ``error``)."""
    out: list[dict] = []
    if not settings.priors_dir.is_dir():
        return out
    for folder in sorted(settings.priors_dir.glob("person_*")):
        if not (folder / PRIOR_JSON).is_file():
            continue
        try:
            person_id = int(folder.name.split("_", 1)[1])
        except ValueError:
            continue
        try:
            out.append(prior_summary(read_prior_meta(settings, person_id)))
        except PhotokitError as exc:
            out.append({"person_id": person_id, "error": str(exc)})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # one odd file must not stop the list
            out.append(
                {
                    "person_id": person_id,
                    "error": f"{folder / PRIOR_JSON} is malformed ({type(exc).__name__}: {exc}); rebuild it",
                }
            )
    return sorted(out, key=lambda d: d["person_id"])
