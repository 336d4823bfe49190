"""Real photos through the whole pipeline, with a tiny random generator standing in for the priors.

The generator knows nothing about faces, so these tests check geometry, routing and blending (sizes,
exactness outside the mask, no seam, who got which prior, metadata), not restoration quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from photokit.prior.storage import PersonalPrior
from photokit.restore import paste
from photokit.restore.options import EnhanceOptions
from photokit.restore.output import load_photo
from photokit.restore.pipeline import Enhancer
from photokit.restore.priors import DatabasePeople, NoPeople, StaticPriors
from photokit.stylegan2.base import BaseGenerator
from photokit.stylegan2.network import build_tiny_generator
from tests.conftest import shared_path

STEPS = 8


@pytest.fixture(scope="module")
def tiny_generator():
    return build_tiny_generator(resolution=128, seed=3)


def make_enhancer(generator, people=None, priors=None, **options):
    options.setdefault("steps", STEPS)
    options.setdefault("loss", "mse")
    # A random generator's faces fail the paste-back checks (tests/test_restore_verify.py); these tests are
    # about geometry and blending, so they paste anyway, as `--force` does.
    options.setdefault("force", True)
    base = BaseGenerator(generator, "tiny-128", pretrained=False)
    return Enhancer(EnhanceOptions(**options), StaticPriors(base, priors or {}), people or NoPeople(), device="cpu")


def random_prior(generator, person_id: int, name: str | None, n: int = 8, seed: int = 0) -> PersonalPrior:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        anchors = generator.mapping(torch.randn(n, generator.z_dim, generator=gen))[:, 0]
    return PersonalPrior(
        person_id=person_id, person_name=name, generator=generator, anchors=anchors, meta={}, path=Path("stand-in")
    )


@pytest.fixture(scope="module")
def obama_4x(tiny_generator):
    path = shared_path("data", "faces", "face_recognition", "obama-240p.jpg")
    return make_enhancer(tiny_generator, scale=4).render(path)


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    g = image.mean(axis=2) if image.ndim == 3 else image
    gx, gy = np.diff(g, axis=1)[:-1], np.diff(g, axis=0)[:, :-1]
    return np.hypot(gx, gy)


def seam_ratio(output: np.ndarray, background: np.ndarray, weight: np.ndarray) -> float:
    """Mean jump of the change (output - background) across the mask's border (the w = 0.5 contour),
    relative to its mean variation inside the face. A visible seam makes this > 1."""
    change = gradient_magnitude(output - background)
    w = weight[:-1, :-1]
    border, inside = np.abs(w - 0.5) < 0.05, w >= 0.999
    assert border.sum() > 100 and inside.sum() > 1000
    return float(change[border].mean() / change[inside].mean())


def test_obama_240p_4x_has_four_times_the_size(obama_4x):
    h, w = obama_4x.photo.shape
    assert obama_4x.image.shape == (4 * h, 4 * w, 3) == (960, 1708, 3)
    [face] = obama_4x.report.faces
    assert face.status == "restored" and face.prior == "generic" and face.steps == STEPS
    assert any("random weights" in warning for warning in obama_4x.report.warnings)  # never pretend


def test_outside_the_face_mask_output_is_exactly_lanczos(obama_4x):
    background = np.clip(paste.lanczos_upscale(obama_4x.photo.rgb, 4), 0, 1)
    outside = obama_4x.weight == 0
    assert outside.mean() > 0.8
    np.testing.assert_array_equal(obama_4x.image[outside], background[outside])
    inside = obama_4x.weight > 0.99
    assert np.abs(obama_4x.image[inside] - background[inside]).mean() > 1e-3  # the face did change


def test_no_seam_across_the_mask_border(obama_4x):
    background = np.clip(paste.lanczos_upscale(obama_4x.photo.rgb, 4), 0, 1)
    assert seam_ratio(obama_4x.image, background, obama_4x.weight) <= 1.0
    # The measure does see a seam: the same output with a hard step at the border fails it.
    stepped = obama_4x.image + 0.08 * (obama_4x.weight > 0.5)[:, :, None]
    assert seam_ratio(stepped, background, obama_4x.weight) > 1.0


def test_two_people_are_routed_to_two_different_priors(face_recognition_library, tiny_generator):
    from sqlalchemy import select

    from photokit.db.models import Person

    with face_recognition_library.db.session() as session:
        people = [(p.id, p.name) for p in session.scalars(select(Person).where(Person.ignored.is_(False)))]
    assert len(people) >= 2
    generator = build_tiny_generator(resolution=512, channels=8, seed=4)  # its faces are ~250 px
    priors = {pid: random_prior(generator, pid, name, seed=pid) for pid, name in people}
    enhancer = make_enhancer(
        generator, people=DatabasePeople(face_recognition_library.db), priors=priors, scale=1, steps=2
    )
    report = enhancer.render(shared_path("data", "faces", "face_recognition", "two_people.jpg")).report
    routed = [f for f in report.faces if f.person_id is not None]
    assert len(routed) == 2, [(f.person_id, f.reason) for f in report.faces]
    assert routed[0].person_id != routed[1].person_id
    for face in routed:
        assert face.status == "restored" and face.prior == "personal" and face.identified_by == "library"
        assert f"person {face.person_id}" in face.prior_name or (face.person and face.person in face.prior_name)
        assert face.beta == 0.05


def test_person_option_overrides_identification_for_a_single_face(face_recognition_library, tiny_generator):
    from sqlalchemy import select

    from photokit.db.models import Person

    with face_recognition_library.db.session() as session:
        pid = session.scalars(select(Person.id).where(Person.ignored.is_(False))).first()
    enhancer = make_enhancer(
        tiny_generator,
        people=DatabasePeople(face_recognition_library.db),
        scale=1,
        steps=1,
        person=str(pid),
        priors={pid: random_prior(tiny_generator, pid, None)},
    )
    report = enhancer.render(shared_path("data", "faces", "face_recognition", "obama_small.jpg")).report
    [face] = report.faces
    assert face.person_id == pid and face.identified_by == "given" and face.prior == "personal"


def test_faces_without_a_generator_are_left_alone_with_the_install_hint(tiny_generator):
    enhancer = Enhancer(EnhanceOptions(scale=2, steps=1, loss="mse"), StaticPriors(None, {}), NoPeople(), device="cpu")
    rendered = enhancer.render(shared_path("data", "faces", "face_recognition", "obama_small.jpg"))
    [face] = rendered.report.faces
    assert (
        face.status == "untouched"
        and "install a pretrained face generator" in face.reason
        and "ffhq-256" in face.reason
    )
    np.testing.assert_array_equal(rendered.image, np.clip(paste.lanczos_upscale(rendered.photo.rgb, 2), 0, 1))


def test_exif_orientation_survives(tmp_path, tiny_generator):
    upright = Image.open(shared_path("data", "faces", "face_recognition", "obama_small.jpg")).convert("RGB")
    exif = Image.Exif()
    exif[274] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    exif[271] = "photokit-test-camera"
    source = tmp_path / "rotated.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(source, quality=95, exif=exif.tobytes())
    report = make_enhancer(tiny_generator, scale=2, steps=1, out_dir=tmp_path / "out").enhance(source)
    out = Image.open(report.output)
    assert out.getexif().get(274) == 1 and out.getexif().get(271) == "photokit-test-camera"
    assert out.size == (2 * upright.width, 2 * upright.height)  # stored upright
    assert report.faces and report.faces[0].side_px is not None  # found the face only once upright
    small = np.asarray(out.convert("L").resize(upright.size), np.float32)
    ref = np.asarray(upright.convert("L"), np.float32)
    assert np.corrcoef(small.ravel(), ref.ravel())[0, 1] > 0.9
    assert source.read_bytes() and Image.open(source).getexif().get(274) == 6  # original untouched


def test_alpha_channel_of_32bit_png_survives(tmp_path, tiny_generator):
    source = shared_path("data", "faces", "face_recognition", "32bit.png")
    original = load_photo(source)
    assert original.alpha is not None
    report = make_enhancer(tiny_generator, scale=1, steps=1, out_dir=tmp_path).enhance(source)
    out = Image.open(report.output)
    assert out.mode == "RGBA" and out.size == Image.open(source).size
    np.testing.assert_array_equal(np.asarray(out)[:, :, 3], np.rint(original.alpha * 255).astype(np.uint8))


def test_inpainting_replaces_only_the_dilated_hole(tmp_path, tiny_generator):
    source = shared_path("data", "faces", "face_recognition", "obama-240p.jpg")
    photo = load_photo(source)
    known = np.full(photo.shape, 255, np.uint8)
    known[50:70, 205:240] = 0  # over the eyes
    mask_path = tmp_path / "mask.png"
    Image.fromarray(known).save(mask_path)
    rendered = make_enhancer(tiny_generator, mask=mask_path, steps=4).render(source)
    [face] = rendered.report.faces
    assert face.status == "restored" and rendered.report.task == "inpaint" and rendered.report.scale == 1
    replaced = rendered.weight > 0
    hole = known == 0
    assert replaced[hole].mean() > 0.95  # the hole (inside the face square) is replaced...
    assert replaced.sum() < 3 * hole.sum()  # ...dilated a little, not the whole face
    np.testing.assert_array_equal(rendered.image[~replaced], photo.rgb[~replaced])
    assert np.abs(rendered.image[hole] - photo.rgb[hole]).mean() > 1e-3


def test_mask_of_another_size_is_refused(tmp_path, tiny_generator):
    from photokit.errors import PhotokitError

    mask_path = tmp_path / "mask.png"
    Image.new("L", (10, 10), 255).save(mask_path)
    with pytest.raises(PhotokitError, match="mask"):
        make_enhancer(tiny_generator, mask=mask_path).render(
            shared_path("data", "faces", "face_recognition", "obama-240p.jpg")
        )
