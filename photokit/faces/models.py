"""The pretrained face models photokit uses, located and loaded once per process.

- MTCNN (Zhang et al. 2016) from ``facenet-pytorch``: its P/R/O-net weights ship inside the wheel.
- dlib's HOG frontal face detector (built into dlib), 68-point shape predictor and 128-D ResNet
  face descriptor; the latter two are files of the ``face-recognition-models`` package. That package's
  ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so its files are located with
  ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from photokit.errors import MissingModelError

SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
FACE_DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_model_path(filename: str) -> Path:
    """Path of one of dlib's model files inside the installed ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError("the dlib face models are not installed: pip install face-recognition-models")
    for location in spec.submodule_search_locations:
        path = Path(location) / "models" / filename
        if path.is_file():
            return path
    raise MissingModelError(f"{filename} is missing from the face-recognition-models package: reinstall it")


def _load_dlib(loader, filename: str):
    path = dlib_model_path(filename)
    try:
        return loader(str(path))
    except RuntimeError as exc:  # dlib's deserialisation error on a damaged file
        raise MissingModelError(f"{path} cannot be read ({exc}); reinstall face-recognition-models") from exc


@functools.cache
def shape_predictor_68():
    import dlib

    return _load_dlib(dlib.shape_predictor, SHAPE_PREDICTOR_68)


@functools.cache
def face_descriptor_model():
    import dlib

    return _load_dlib(dlib.face_recognition_model_v1, FACE_DESCRIPTOR)


@functools.cache
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def mtcnn(device: str = "cpu"):
    """One MTCNN per device; ``keep_all`` so every face of a group photo is returned."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:  # pragma: no cover - a dependency of photokit
        raise MissingModelError("facenet-pytorch is not installed: pip install facenet-pytorch==2.5.3") from exc
    model = MTCNN(keep_all=True, device=device, post_process=False, select_largest=False)
    return model.eval()
