"""The face layer's closed vocabularies, importable without loading the detectors (the CLI's option types)."""

from __future__ import annotations

from enum import StrEnum


class Detector(StrEnum):
    MTCNN = "mtcnn"  # facenet-pytorch's MTCNN: finds small and turned faces, gives 5 landmarks
    HOG = "hog"  # dlib's HOG detector: faster on a CPU, frontal faces of ~40 px and up


class SuggestionKind(StrEnum):
    """What `people suggest` proposes (stored in ``DismissedSuggestion.kind``)."""

    MERGE = "merge"  # two people are probably one
    MOVE = "move"  # a face probably belongs to another person
