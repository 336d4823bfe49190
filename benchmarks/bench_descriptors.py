"""Cost of a face descriptor per face, dlib128 against facenet512, side by side in one run.

The faces of ``../shared/data/faces/deepface`` are detected once; then each kind describes every face
from its stored landmarks (``FaceAnalyzer.describe``: decode at the face's size, crop, network), as a
library switching kinds does. facenet's weights here are RANDOM (the real ones cannot be downloaded on
the development machine): the time per face does not depend on the weights' values, the descriptors
themselves mean nothing and are not used. The random state dict lives in a temporary ``TORCH_HOME``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def _random_weights(torch_home: Path) -> None:
    import torch
    from facenet_pytorch import InceptionResnetV1

    from photokit.faces.models import facenet_weights_path

    torch.manual_seed(0)
    path = facenet_weights_path()
    assert str(path).startswith(str(torch_home)), path  # never the user's TORCH_HOME
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), path)


def _time_kind(kind: str, faces: list, device: str) -> dict:
    from photokit.faces.analyze import FaceAnalyzer, FaceConfig

    started = time.perf_counter()
    analyzer = FaceAnalyzer(FaceConfig(descriptor=kind), device=device)
    load = time.perf_counter() - started
    analyzer.describe(*faces[0])  # warm-up (first call allocates)
    started = time.perf_counter()
    for photo, landmarks in faces:
        analyzer.describe(photo, landmarks)
    seconds = time.perf_counter() - started
    return {"load_seconds": round(load, 3), "seconds_per_face": round(seconds / len(faces), 4)}


def run(device: str = "cpu", quick: bool = False) -> dict:
    import torch

    from benchmarks.face_sets import SHARED
    from photokit.faces.analyze import FaceAnalyzer, FaceConfig
    from photokit.library.pixels import PhotoPixels

    files = sorted((SHARED / "data" / "faces" / "deepface").glob("*.jpg"))[: 6 if quick else 24]
    detector = FaceAnalyzer(FaceConfig(), device=device)
    faces = []
    for path in files:
        photo = PhotoPixels.open(str(path))
        faces += [(photo, f.landmarks68) for f in detector.analyze(photo) if f.landmarks68 is not None]
    previous = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["TORCH_HOME"] = home
        try:
            _random_weights(Path(home))
            results = {kind: _time_kind(kind, faces, device) for kind in ("dlib128", "facenet512")}
        finally:
            if previous is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = previous
    return {
        "command": "python -m benchmarks.run_all descriptors" + (" --quick" if quick else ""),
        "photos": len(files),
        "faces": len(faces),
        "torch_threads": torch.get_num_threads(),
        "facenet_weights": "random (timing only: the descriptors mean nothing)",
        "kinds": results,
        "facenet_over_dlib": round(
            results["facenet512"]["seconds_per_face"] / results["dlib128"]["seconds_per_face"], 2
        ),
        "load_average_after": list(os.getloadavg()),
    }
