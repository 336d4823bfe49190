"""The pretrained face models photokit uses, located and loaded once per process.

- MTCNN (Zhang et al. 2016) from ``facenet-pytorch``: its P/R/O-net weights ship inside the wheel.
- dlib's HOG frontal face detector (built into dlib), 68-point shape predictor and 128-D ResNet
  face descriptor; the latter two are files of the ``face-recognition-models`` package. That package's
  ``__init__`` imports ``pkg_resources`` (gone from recent setuptools), so its files are located with
  ``importlib.util.find_spec`` and never imported.
- Optionally, facenet-pytorch's InceptionResnetV1 with the VGGFace2 weights (Cao et al. 2018) for a
  512-D descriptor: the architecture ships with facenet-pytorch, the weights are installed by the user
  (``photokit models install facenet-vggface2``) and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from photokit.errors import MissingModelError, Remedy

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


def facenet_weights_path() -> Path:
    """Where ``models install facenet-vggface2`` puts the weights: ``$TORCH_HOME/checkpoints`` (facenet-pytorch's)."""
    from photokit.store.catalog import FACENET_VGGFACE2, TORCH_CHECKPOINTS, catalog_entry
    from photokit.store.models import torch_home

    entry = catalog_entry(FACENET_VGGFACE2)
    assert entry.location == TORCH_CHECKPOINTS
    return torch_home() / "checkpoints" / entry.filename


def require_facenet_weights() -> Path:
    """The installed facenet weights, or a MissingModelError that says how to install them."""
    from photokit.store.catalog import FACENET_VGGFACE2

    path = facenet_weights_path()
    if not path.is_file():
        raise MissingModelError(
            "the 512-D facenet descriptor needs the facenet-vggface2 weights, which are not installed",
            Remedy.INSTALL_MODEL,
            model=FACENET_VGGFACE2,
        )
    return path


def facenet(device: str = "cpu"):
    """The 512-D descriptor network with the installed VGGFace2 weights (one per file version and device)."""
    path = require_facenet_weights()
    return _facenet(str(path), path.stat().st_mtime_ns, device)


@functools.cache
def _facenet(path: str, mtime_ns: int, device: str):
    import torch
    from facenet_pytorch import InceptionResnetV1

    from photokit.store.catalog import FACENET_VGGFACE2

    model = InceptionResnetV1(pretrained=None, classify=False)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MissingModelError(
            f"{path} is not a readable PyTorch weights file ({type(exc).__name__})",
            Remedy.INSTALL_MODEL,
            model=FACENET_VGGFACE2,
        ) from None
    problem = state_dict_problem(state, model.state_dict())
    if problem:
        raise MissingModelError(
            f"{path} is not facenet-vggface2 weights ({problem})", Remedy.INSTALL_MODEL, model=FACENET_VGGFACE2
        )
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    return model.eval().to(device)


def state_dict_problem(state, expected: dict) -> str | None:
    """Why ``state`` cannot be loaded into a model whose state dict is ``expected`` (None: it can).

    The published file also holds the 8631-class VGGFace2 classifier (``logits.*``), which is not needed."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a state dict"
    for key, value in expected.items():
        if key not in state:
            return f"'{key}' is missing"
        found = tuple(getattr(state[key], "shape", ()))
        if found != tuple(value.shape):
            return f"'{key}' has shape {list(found)}, expected {list(value.shape)}"
    extra = [k for k in state if k not in expected and not k.startswith("logits.")]
    return f"unexpected '{extra[0]}'" if extra else None
