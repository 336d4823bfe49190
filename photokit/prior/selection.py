"""Which of a person's faces the personal prior learns from: the pure selection rules.

MyStyle (sec. 5 and its code) filters the reference photos (small, low quality, grayscale, near-duplicate)
and found that diversity matters more than count. photokit does the same on the faces the library already
indexed (dlib 128-D embedding, FFHQ alignment, blur, colour, yaw), then picks the most diverse faces by
farthest-point sampling on the embeddings. Everything here works on ``Candidate`` values; `prior.refs`
reads them from the database and writes the crops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

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
