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


class DescriptorKind(StrEnum):
    """Which network's descriptor a face carries (``Face.descriptor_kind``; one per library is active).

    Two kinds are never compared: their spaces differ (dimension and scale), so every search, clustering
    pass and identity check uses only the faces of the library's active kind."""

    DLIB128 = "dlib128"  # dlib's ResNet (face-recognition-models): the default, always installed
    FACENET512 = "facenet512"  # facenet-pytorch InceptionResnetV1, VGGFace2 weights: optional model

    @property
    def dim(self) -> int:
        """Values per descriptor."""
        return 512 if self is DescriptorKind.FACENET512 else 128
