"""Find every face of a photo and measure it: box, landmarks, FFHQ alignment, embedding, quality.

Detection runs on a copy downscaled to ``FaceConfig.max_side`` (speed; MTCNN finds faces down to
20 px there). Each face is then measured on a crop around it: the 68 landmarks (dlib's shape
predictor), the descriptor of the library's kind (dlib's 128-D ResNet by default, facenet's 512-D
when chosen: ``describe.py``) and the alignment that restoration crops with. The
crop comes from the smallest decode of the photo in which the face still spans ``FaceConfig.face_px``
pixels (JPEGs decode directly at 1/2, 1/4, 1/8 size: ``photokit.library.pixels``), so a 12 MP photo
is rarely decoded at full size; all results are in full-resolution photo pixels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from photokit.errors import PhotokitError
from photokit.faces import models
from photokit.faces.align import FaceAlignment, align_face
from photokit.faces.describe import dlib_descriptor, facenet_crop, facenet_descriptor
from photokit.faces.quality import is_grayscale, laplacian_variance, yaw_from_landmarks
from photokit.faces.vocab import DescriptorKind, Detector
from photokit.library.pixels import PhotoPixels

DETECTORS = tuple(Detector)

# dlib's 68-point predictor was trained on boxes from dlib's own HOG detector, which are tighter than
# MTCNN's (no forehead). Median of the HOG box in MTCNN-box units over the 85 faces of
# ../shared/data/faces both detectors find (spread 0.06-0.09); benchmarks/bench_faces.py re-measures it.
MTCNN_TO_DLIB_BOX = (-0.031, 0.179, 1.044, 0.970)  # x0, y0, x1, y1 as fractions of the MTCNN box


@dataclass
class FaceConfig:
    """Detection and quality settings (defaults: detect at 1024 px, cluster faces of 40 px and score 0.9 up)."""

    max_side: int = 1024  # detection runs on a copy at most this long (px); 0 = full size
    min_size: int = 40  # faces smaller than this (px, photo scale) are stored but not clustered
    min_score: float = 0.9  # MTCNN probability below which a face is stored but not clustered
    detector: str = Detector.MTCNN
    hog_upsample: int = 1  # HOG: upsample the detection copy this many times (finds ~40 px faces)
    mtcnn_min_face: int = 20  # MTCNN: smallest face searched for, in detection-copy pixels
    mtcnn_threads: int = 1  # MTCNN on a CPU: torch threads (see ``_torch_threads``); 0 = leave torch's setting
    crop_size: int = 256  # aligned crop on which blur and colour are measured
    descriptor_jitters: int = 0  # dlib: >0 averages jittered descriptors (slower, slightly better)
    descriptor: str = DescriptorKind.DLIB128  # which network describes faces (the library's active kind)
    face_px: int = 300  # landmarks/descriptor use a decode where the face box is at least this wide (px)
    crop_margin: float = 1.0  # ... cropped to the face box grown by this many box sides on every side

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise PhotokitError(f"unknown face detector '{self.detector}': use one of {', '.join(DETECTORS)}")
        if self.descriptor not in tuple(DescriptorKind):
            kinds = ", ".join(DescriptorKind)
            raise PhotokitError(f"unknown face descriptor '{self.descriptor}': use one of {kinds}")


@dataclass
class DetectedFace:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in photo pixels
    score: float
    landmarks5: np.ndarray | None = None  # (5, 2): eyes, nose, mouth corners (MTCNN only)
    landmarks68: np.ndarray | None = None
    alignment: FaceAlignment | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)  # float32 (descriptor_kind.dim,)
    descriptor_kind: str = DescriptorKind.DLIB128
    size_px: float = 0.0  # sqrt(box area): the face's scale in photo pixels
    blur: float | None = None
    is_gray: bool = False
    yaw: float | None = None
    cluster_exclusion: str | None = None  # None, 'small', 'low_score' or 'no_embedding'


def _as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    array = np.asarray(rgb)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise PhotokitError(f"expected an RGB image (H, W, 3), got shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array[..., :3])


class FaceAnalyzer:
    """Detector + landmarks + descriptor; the models are loaded once per process (``faces.models``)."""

    def __init__(self, config: FaceConfig | None = None, device: str = "auto") -> None:
        from photokit.devices import resolve_device

        self.config = config or FaceConfig()
        self.device = resolve_device(device)
        if self.config.detector == "mtcnn":
            self._mtcnn = models.mtcnn(str(self.device))
        else:
            self._hog = models.hog_detector()
        self._predictor = models.shape_predictor_68()
        self.descriptor_kind = DescriptorKind(self.config.descriptor)
        if self.descriptor_kind is DescriptorKind.FACENET512:
            self._descriptor = models.facenet(str(self.device))
        else:
            self._descriptor = models.face_descriptor_model()

    # -- detection --------------------------------------------------------------------------
    def _detection_copy(self, photo: PhotoPixels) -> tuple[np.ndarray, float]:
        rgb, scale = photo.at_least(self.config.max_side or max(photo.size))
        h, w = rgb.shape[:2]
        if self.config.max_side and max(h, w) > self.config.max_side:
            shrink = self.config.max_side / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
            scale *= shrink
        return rgb, scale

    def detect(self, rgb: np.ndarray | PhotoPixels) -> list[tuple[np.ndarray, float, np.ndarray | None, np.ndarray]]:
        """[(box, score, landmarks5 | None, dlib_box)] in full-resolution photo pixels."""
        photo = rgb if isinstance(rgb, PhotoPixels) else PhotoPixels.from_array(rgb)
        small, scale = self._detection_copy(photo)
        if min(small.shape[:2]) < 24:  # too small for either detector's smallest window
            return []
        found = []
        if self.config.detector == "mtcnn":
            import torch

            self._mtcnn.min_face_size = self.config.mtcnn_min_face  # the model is shared per process
            threads = self.config.mtcnn_threads if self.device.type == "cpu" else 0
            with torch.inference_mode(), _torch_threads(threads):
                boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
            if boxes is None:
                return []
            # facenet-pytorch builds object arrays under numpy 2: convert explicitly.
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
            probs = np.asarray(probs, dtype=np.float64).reshape(-1)
            points = _to_photo(np.asarray(points, dtype=np.float64).reshape(-1, 5, 2), scale)
            fx0, fy0, fx1, fy1 = MTCNN_TO_DLIB_BOX
            for box, prob, lm5 in zip(boxes, probs, points):
                w, h = box[2] - box[0], box[3] - box[1]
                dlib_box = np.array([box[0] + fx0 * w, box[1] + fy0 * h, box[0] + fx1 * w, box[1] + fy1 * h])
                found.append((box, float(prob), lm5, dlib_box))
        else:
            rects, scores, _ = self._hog.run(small, self.config.hog_upsample, 0.0)
            for rect, score in zip(rects, scores):
                box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], float) / scale
                found.append((box, float(score), None, box.copy()))
        return found

    # -- full analysis ----------------------------------------------------------------------
    def analyze(self, rgb: np.ndarray | PhotoPixels) -> list[DetectedFace]:
        """Every face of a photo: an (H, W, 3) array, or a ``PhotoPixels`` (decoded at the sizes needed)."""
        photo = rgb if isinstance(rgb, PhotoPixels) else PhotoPixels.from_array(_as_rgb_uint8(rgb))
        faces = []
        for box, score, lm5, dlib_box in self.detect(photo):
            lm68, embedding, crop = self._measure(photo, dlib_box)
            size_px = float(np.sqrt(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)))
            face = DetectedFace(
                box=tuple(float(v) for v in box),
                score=score,
                landmarks5=lm5,
                landmarks68=lm68,
                alignment=FaceAlignment.from_landmarks68(lm68),
                embedding=embedding if np.all(np.isfinite(embedding)) and np.any(embedding) else None,
                descriptor_kind=self.descriptor_kind,
                size_px=size_px,
                blur=laplacian_variance(crop),
                is_gray=is_grayscale(crop),
                yaw=yaw_from_landmarks(lm68),
            )
            face.cluster_exclusion = self.exclusion(face)
            faces.append(face)
        return faces

    def _measure(self, photo: PhotoPixels, dlib_box: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """68 landmarks (photo pixels), descriptor and aligned quality crop of one face, from a crop around it."""
        import dlib

        side = max(float(dlib_box[2] - dlib_box[0]), float(dlib_box[3] - dlib_box[1]), 1.0)
        long_side = max(photo.size) * min(1.0, self.config.face_px / side)
        image, origin, scale = photo.region(long_side, dlib_box, self.config.crop_margin * side)
        x0, y0, x1, y1 = (int(round(v)) for v in _to_scaled(dlib_box, scale) - np.tile(origin, 2))
        shape = self._predictor(image, dlib.rectangle(x0, y0, x1, y1))
        lm68 = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        crop = align_face(image, FaceAlignment.from_landmarks68(lm68), self.config.crop_size)
        if self.descriptor_kind is DescriptorKind.FACENET512:
            embedding = facenet_descriptor(self._descriptor, facenet_crop(image, lm68))
        else:
            embedding = np.asarray(
                self._descriptor.compute_face_descriptor(image, shape, self.config.descriptor_jitters),
                dtype=np.float32,
            )
        return _to_photo(lm68 + origin, scale), embedding, crop

    def describe(self, photo: PhotoPixels, landmarks68: np.ndarray) -> np.ndarray | None:
        """The descriptor (this analyzer's kind) of a face already measured: its 68 landmarks in photo pixels.

        Used when a library switches descriptor kinds: no detection, the stored landmarks are reused."""
        lm = np.asarray(landmarks68, np.float64).reshape(68, 2)
        box = np.concatenate([lm.min(axis=0), lm.max(axis=0)])
        side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
        long_side = max(photo.size) * min(1.0, self.config.face_px / side)
        image, origin, scale = photo.region(long_side, box, self.config.crop_margin * side)
        local = (lm + 0.5) * scale - 0.5 - origin  # inverse of _to_photo, then into the region
        if self.descriptor_kind is DescriptorKind.FACENET512:
            embedding = facenet_descriptor(self._descriptor, facenet_crop(image, local))
        else:
            embedding = dlib_descriptor(self._descriptor, image, local, self.config.descriptor_jitters)
        return embedding if np.all(np.isfinite(embedding)) and np.any(embedding) else None

    def exclusion(self, face: DetectedFace) -> str | None:
        """Why a face stays out of clustering (None = it takes part)."""
        if face.embedding is None:
            return "no_embedding"
        if face.size_px < self.config.min_size:
            return "small"
        if self.config.detector == "mtcnn" and face.score < self.config.min_score:
            return "low_score"  # HOG scores are SVM margins, already thresholded by the detector
        return None


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` (0: unchanged) for the block.

    MTCNN runs hundreds of tiny operations per photo (pyramid resizes, one 24/48 px crop per candidate),
    each too small to split: a second thread only adds a barrier per operation, which costs several times
    the work when the other core is busy (a whole 12 MP photo: 0.43 CPU-s with one MTCNN thread, 1.33 with
    two; ``python -m benchmarks.run_all scan12mp`` at load 14-17). Photos are better run side by side.
    The setting is process-wide while the block runs.
    """
    import torch

    previous = torch.get_num_threads()
    if count <= 0 or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _to_scaled(box: np.ndarray, scale: float) -> np.ndarray:
    """Box edges from photo pixels to a copy resized by ``scale`` (edges scale; pixel centres do not)."""
    return np.asarray(box, dtype=np.float64) * scale


def _to_photo(points: np.ndarray, scale: float) -> np.ndarray:
    """Pixel-centre coordinates in a copy resized by ``scale`` -> photo pixels: p = (p_s + 0.5) / s - 0.5."""
    return (points + 0.5) / scale - 0.5
