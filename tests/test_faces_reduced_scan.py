"""Scanning 12 MP photos (issue 14): the fast path finds the faces the full-size path finds.

The fast path decodes JPEGs at reduced size and runs MTCNN on one torch thread; neither may change
which faces are found or what is measured on them. Speed itself is measured by
``python -m benchmarks.run_all scan12mp``, not here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photokit.faces.analyze import FaceAnalyzer, FaceConfig
from photokit.faces.quality import box_iou
from photokit.library.images import read_rgb
from photokit.library.pixels import PhotoPixels
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def photos_12mp(tmp_path_factory):
    """Two of the benchmark's 4000x3000 JPEGs: 5 shared faces of 150-400 px between them."""
    from benchmarks.bench_scan12mp import make_photos

    shared_path("data", "faces")
    return make_photos(tmp_path_factory.mktemp("scan12mp"), 2)


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer(FaceConfig(), device="cpu")


def _twin(face, faces):
    """The face of ``faces`` whose box overlaps ``face``'s most."""
    return max(faces, key=lambda other: box_iou(face.box, other.box))


def test_reduced_decoding_finds_the_faces_of_full_decoding_on_12mp_photos(photos_12mp, analyzer):
    for path in photos_12mp:
        full = analyzer.analyze(read_rgb(path))
        reduced = analyzer.analyze(PhotoPixels.open(path))
        assert len(full) == len(reduced) >= 1
        for face in full:
            twin = _twin(face, reduced)
            assert box_iou(face.box, twin.box) > 0.8
            assert np.linalg.norm(face.embedding - twin.embedding) < 0.15  # dlib's same-person threshold: 0.6
            assert np.abs(face.landmarks68 - twin.landmarks68).mean() < 0.02 * face.size_px
            assert twin.cluster_exclusion == face.cluster_exclusion


def test_mtcnn_thread_count_changes_no_detection(photos_12mp, analyzer):
    all_threads = FaceAnalyzer(FaceConfig(mtcnn_threads=0), device="cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for path in photos_12mp:
            one = analyzer.detect(PhotoPixels.open(path))
            two = all_threads.detect(PhotoPixels.open(path))
            assert len(one) == len(two) >= 1
            for (box, score, lm5, _), (box2, score2, lm5_2, _) in zip(one, two):
                np.testing.assert_allclose(box, box2, atol=0.5)
                np.testing.assert_allclose(lm5, lm5_2, atol=0.5)
                assert score == pytest.approx(score2, abs=1e-4)
    finally:
        torch.set_num_threads(before)


def test_mtcnn_runs_on_one_thread_and_torch_keeps_its_setting(photos_12mp, analyzer, monkeypatch):
    seen = []
    real_detect = analyzer._mtcnn.detect

    def detect(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_detect(*args, **kwargs)

    monkeypatch.setattr(analyzer._mtcnn, "detect", detect)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        faces = analyzer.analyze(PhotoPixels.open(photos_12mp[0]))
        assert faces and seen == [1]
        assert torch.get_num_threads() == 2  # restored for the rest of the program
    finally:
        torch.set_num_threads(before)
