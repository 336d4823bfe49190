"""The clustering options (``cluster.py`` explains each), importable without numpy: the suggestions cache
of ``people list`` is keyed on them (``listing.py``), and that command must start fast (issue 14)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from photokit.errors import PhotokitError


def _option_name(field_name: str) -> str:
    """'spread_z' -> 'spread': options as a user reads them."""
    return "spread" if field_name == "spread_z" else field_name.replace("_", " ")


@dataclass(frozen=True)
class ClusterConfig:
    max_distance: float = 0.6  # never link two faces farther apart (dlib's own "same person" rule)
    spread_z: float = 1.5  # how many expected gaps two groups of one identity may be apart
    prior_spread: float = 0.076  # squared distance of a face to its identity's mean (dlib, measured)
    prior_weight: float = 4.0  # faces' worth of that prior in each group's spread estimate
    min_faces: int = 2  # group size that makes a new person
    neighbours: int = 12  # k of the nearest-neighbour graph
    pair_distance: float = 0.5  # two lone faces, or two group means, join only this close
    group_floor: float = 0.5  # 1/nA + 1/nB is never taken below this (identities are not one blob)
    merge_z: float = 2.5  # the same, between two groups of 2+ faces
    place_z: float = 2.3  # a face left alone joins the group it fits best up to this ratio...
    max_spread_growth: float = 1.4  # ...and their union is at most this much looser than the looser one
    place_margin: float = 1.3  # ...when the next-best group fits this many times worse
    join_votes: int = 3  # faces too small to cluster join a person only when this many nearest faces are its

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise PhotokitError(f"{_option_name(f.name)} must be a finite number, got {value!r}")
        if not 0 < self.max_distance <= 4:
            raise PhotokitError(f"max distance must be in (0, 4], got {self.max_distance}")
        positive = (
            "spread_z",
            "merge_z",
            "place_z",
            "prior_spread",
            "pair_distance",
            "place_margin",
            "max_spread_growth",
        )
        for name in positive:
            if not 0 < getattr(self, name) <= 100:
                raise PhotokitError(f"{_option_name(name)} must be in (0, 100], got {getattr(self, name)}")
        if self.prior_weight < 0:
            raise PhotokitError("prior weight must not be negative")
        if self.group_floor < 0:
            raise PhotokitError("group floor must not be negative")
        if self.min_faces < 1 or self.neighbours < 1 or self.join_votes < 1:
            raise PhotokitError("min faces, neighbours and join votes must be at least 1")
