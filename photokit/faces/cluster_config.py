"""The clustering options (``cluster.py`` explains each), importable without numpy: the suggestions cache
of ``people list`` is keyed on them (``listing.py``), and that command must start fast.

Distances differ between descriptor kinds (``DescriptorKind``). photokit's clustering defaults were measured in dlib's units, so for
another kind every distance is multiplied by ``DISTANCE_SCALE`` (squared distances by its square).
The scale is the ratio of the two published verification thresholds for the very same weights: deepface
(serengil/deepface, ``deepface/config/threshold.py``) decides "same person" with dlib's descriptor at
Euclidean 0.6 and with "Facenet512" (David Sandberg's 20180402-114759 VGGFace2 model, the weights
facenet-pytorch republishes) at 1.04 on L2-normalised descriptors; FaceNet's paper (Schroff et al.
2015, Fig. 1) puts same-person pairs of its own model under about 1.1. Without the real weights on the
development machine the facenet values could not be calibrated on the development sets (docs/faces.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeVar

from photokit.errors import PhotokitError
from photokit.faces.vocab import DescriptorKind

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


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


DLIB_SAME_PERSON = 0.6  # dlib's documented threshold (dlib.net, face_recognition); deepface uses the same
FACENET_SAME_PERSON = 1.04  # deepface's "Facenet512" euclidean_l2 threshold (see the module docstring)
DISTANCE_SCALE = {DescriptorKind.DLIB128: 1.0, DescriptorKind.FACENET512: FACENET_SAME_PERSON / DLIB_SAME_PERSON}
Config = TypeVar("Config", bound="DataclassInstance")  # a settings dataclass with distance fields
# ClusterConfig fields that are distances (scaled by DISTANCE_SCALE) and squared distances (by its square).
_DISTANCES = ("max_distance", "pair_distance")
_SQUARED = ("prior_spread",)


def distance_scale(kind: str) -> float:
    """How much larger this kind's distances are than dlib's for the same pair of faces (about)."""
    return DISTANCE_SCALE[DescriptorKind(kind)]


def in_units_of(kind: str, config: Config, *distances: str, squared: tuple[str, ...] = ()) -> Config:
    """``config`` (a dataclass) with its fields ``distances`` (and ``squared`` distances), given in dlib's
    units, in ``kind``'s."""
    s = distance_scale(kind)
    scaled = {name: getattr(config, name) * s for name in distances}
    return dataclasses.replace(config, **scaled, **{name: getattr(config, name) * s * s for name in squared})


def cluster_config(kind: str, **overrides) -> ClusterConfig:
    """The clustering defaults for ``kind`` (dlib's unchanged), with ``overrides`` (in that kind's units)."""
    return dataclasses.replace(in_units_of(kind, ClusterConfig(), *_DISTANCES, squared=_SQUARED), **overrides)
