"""Checks before paste-back (restore.verify): a random generator's "restoration" is refused, a planted truth
is accepted, --force pastes anyway and says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photokit.restore import paste
from photokit.restore.degrade import super_resolution
from photokit.restore.options import EnhanceOptions
from photokit.restore.pipeline import Enhancer
from photokit.restore.priors import NoPeople, StaticPriors
from photokit.restore.project import AlphaProjection
from photokit.restore.verify import VerifyConfig, consistency_psnr, identity_verdict, verify_face
from photokit.stylegan2.base import BaseGenerator
from photokit.stylegan2.losses import ReconstructionLoss
from photokit.stylegan2.network import build_tiny_generator
from tests.conftest import shared_path
from tests.test_restore_projection import planted  # noqa: F401 - the planted-truth fixture


@pytest.fixture(scope="module")
def random_128():
    return build_tiny_generator(resolution=128, seed=3)


def enhancer(generator, **options):
    options.setdefault("steps", 8)
    options.setdefault("loss", "mse")
    base = BaseGenerator(generator, "tiny-128", pretrained=False)
    return Enhancer(EnhanceOptions(**options), StaticPriors(base, {}), NoPeople(), device="cpu")


@pytest.fixture(scope="module")
def obama_checked(random_128):
    return enhancer(random_128, scale=4).render(shared_path("data", "faces", "face_recognition", "obama-240p.jpg"))


def test_random_generator_is_rejected_and_the_face_is_left_as_lanczos(obama_checked):
    [face] = obama_checked.report.faces
    assert face.status == "rejected" and not face.forced
    checks = face.checks
    assert checks["passed"] is False and face.reason.startswith("failed the checks")
    # Both checks have a say: a random network's output neither reproduces the photo nor is a face.
    assert checks["consistency_psnr"] < VerifyConfig().min_psnr_db
    assert "consistency" in checks["reason"]
    assert "no face found in the restoration" in checks["reason"] or "identity" in checks["reason"]
    background = np.clip(paste.lanczos_upscale(obama_checked.photo.rgb, 4), 0, 1)
    np.testing.assert_array_equal(obama_checked.image, background)  # the whole photo, face included
    assert not obama_checked.weight.any()


def test_force_pastes_a_rejected_face_and_says_forced(random_128):
    rendered = enhancer(random_128, scale=4, force=True).render(
        shared_path("data", "faces", "face_recognition", "obama-240p.jpg")
    )
    [face] = rendered.report.faces
    assert face.status == "restored" and face.forced and face.checks["forced"] and not face.checks["passed"]
    background = np.clip(paste.lanczos_upscale(rendered.photo.rgb, 4), 0, 1)
    inside = rendered.weight > 0.99
    assert inside.sum() > 1000 and np.abs(rendered.image[inside] - background[inside]).mean() > 1e-3


def test_identity_verdict_rules():
    rng = np.random.default_rng(0)
    person = rng.normal(size=128).astype(np.float32)
    person /= np.linalg.norm(person)
    refs = person + 0.02 * rng.normal(size=(5, 128)).astype(np.float32)
    near = person + 0.01 * rng.normal(size=128).astype(np.float32)
    far = -person
    input_face = person + 0.03 * rng.normal(size=128).astype(np.float32)
    assert identity_verdict(near, input_face, refs).passed
    bad = identity_verdict(far, input_face, refs)
    assert not bad.passed and "identity" in bad.reason and bad.identity_distance > 1
    assert identity_verdict(None, input_face, refs).reason == "no face found in the restoration"
    # Farther than the input face by more than the margin, though within the same-person distance.
    drift = person + 0.35 * rng.normal(size=128).astype(np.float32) / np.sqrt(128)
    config = VerifyConfig(same_person_distance=1.0, identity_margin=0.05)
    verdict = identity_verdict(drift, refs[0] + 0.001, refs[1:], config)
    assert not verdict.passed and "farther from the person" in verdict.reason
    # No references (generic prior, unknown person): compared with the input face itself.
    alone = identity_verdict(near, input_face, np.zeros((0, 128)))
    assert alone.passed and alone.identity_against == "input face"
    assert not identity_verdict(far, input_face, np.zeros((0, 128))).passed
    # The photo's own face among the references is the same shot: left out, not used to pass.
    assert identity_verdict(near, input_face, input_face[None]).identity_against == "input face"


def test_planted_truth_passes_both_checks(planted):  # noqa: F811 - the fixture imported above
    """The identity function is injected: a random 32 px generator draws no face dlib could detect, so the
    real descriptor would fail safe ("no face found") and say nothing about the check's logic. The
    injected descriptor is a fixed random projection of the pixels (close images -> close descriptors),
    scaled so the planted truth itself sits at a typical same-person distance from its references."""
    G, anchors, target = planted  # target = G(alpha+ . anchors), alpha+ inside P_0.05
    phi = super_resolution(G.resolution, G.resolution / 4)
    observed = phi(target)
    result = AlphaProjection(G, anchors, observed, phi, ReconstructionLoss(None), beta=0.05).run(600)
    projection = torch.randn(32 * 32 * 3, 128, generator=torch.Generator().manual_seed(7)) / 256

    def describe(image: np.ndarray) -> np.ndarray:
        return (torch.from_numpy(np.ascontiguousarray(image)).reshape(1, -1) @ projection)[0].numpy()

    truth_image = ((target[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    references = np.stack([describe(truth_image) + 0.25 * np.eye(128)[i] for i in range(4)])
    input_descriptor = describe(truth_image)
    check = verify_face(result.image, observed, phi, describe, input_descriptor, references)
    assert check.passed, check.reason
    assert check.consistency_psnr >= VerifyConfig().min_psnr_db and check.identity_distance < 0.5
    # The same checks refuse a face of another code (same generator, not this person): they can fail.
    with torch.no_grad():
        other = G.synthesis(G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(9))))
    refused = verify_face(other, observed, phi, describe, input_descriptor, references)
    assert not refused.passed


def test_consistency_is_measured_on_the_known_pixels_only():
    from photokit.restore.degrade import inpainting

    known = np.ones((16, 16), np.float32)
    known[4:12, 4:12] = 0
    phi = inpainting(known)
    truth = torch.rand(1, 3, 16, 16) * 2 - 1
    restored = truth.clone()
    restored[..., 4:12, 4:12] = -1  # anything in the hole
    assert consistency_psnr(restored, phi(truth), phi) > 60
    restored[..., 0:2, :] = 1 - restored[..., 0:2, :]
    assert consistency_psnr(restored, phi(truth), phi) < 30
