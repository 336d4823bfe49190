"""`photokit prior sample`, `photokit edit` and direction files, on real photos with a tiny random generator.

The generator knows nothing about faces: these tests check sampling, routing, policies' reports, paste-back
geometry, file safety and errors, not how good an edit looks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from photokit.cli.app import app
from tests.conftest import shared_path

runner = CliRunner()
RESOLUTION = 64


def _invoke(args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def person_in(library, filename: str) -> tuple[int, list[int]]:
    """The library person whose face is in ``filename``, and all that person's face ids."""
    from sqlalchemy import select

    from photokit.db.models import Face, PhotoLocation

    with library.db.session() as session:
        rows = session.execute(
            select(Face.person_id).join(PhotoLocation, PhotoLocation.photo_id == Face.photo_id)
        ).all()
        pid = session.execute(
            select(Face.person_id)
            .join(PhotoLocation, PhotoLocation.photo_id == Face.photo_id)
            .where(PhotoLocation.path.like(f"%/{filename}"))
        ).scalar_one()
        faces = session.scalars(select(Face.id).where(Face.person_id == pid).order_by(Face.id)).all()
    assert rows and pid is not None
    return pid, list(faces)


@pytest.fixture
def obama_prior(settings, face_recognition_library):
    """A random-weight 'ffhq-256' install and a stored prior for the person of obama.jpg (random anchors)."""
    from photokit.prior.adapters import FullDelta
    from photokit.prior.meta import FORMAT, prior_dir
    from photokit.prior.storage import save_prior
    from photokit.store.catalog import catalog_entry
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import generator_fingerprint, save_generator
    from photokit.stylegan2.network import build_tiny_generator

    G = build_tiny_generator(resolution=RESOLUTION, channels=16, seed=5)
    path = ModelStore(settings).target_path(catalog_entry("ffhq-256"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(G, path)
    pid, faces = person_in(face_recognition_library, "obama.jpg")
    faces = (faces * 3)[:6]  # at least a handful of anchors
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        anchors = G.mapping(torch.randn(len(faces), G.z_dim, generator=gen))[:, 0]
    meta = {
        "format": FORMAT,
        "person_id": pid,
        "person_name": None,
        "base": {"name": "ffhq-256", "fingerprint": generator_fingerprint(G)},
        "loss": {"kind": "mse"},
        "references": [{"index": i, "face_id": f} for i, f in enumerate(faces)],
        "tuning": {"kind": "full"},
    }
    save_prior(prior_dir(settings, pid), anchors, FullDelta(G.synthesis).stored_tensors(torch.float16), meta)
    return ["--db-url", face_recognition_library.settings.db_url], pid, anchors


# -- prior sample ----------------------------------------------------------------------------------------
def test_prior_sample_writes_a_sheet_from_the_convex_hull_and_repeats_with_the_seed(obama_prior, tmp_path):
    db, pid, _ = obama_prior
    runs = []
    for name in ("a.png", "b.png"):
        result = _invoke([*db, "prior", "sample", pid, "--count", 5, "--seed", 7, "--out", tmp_path / name, "--json"])
        assert result.exit_code == 0, result.output
        runs.append(json.loads(result.stdout))
    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("a.png", "b.png"))
    assert a.shape == (2 * RESOLUTION, 3 * RESOLUTION, 3) and np.array_equal(a, b)
    for sample in runs[0]["samples"]:
        assert len(sample["anchors"]) == 3 and min(sample["weights"]) >= 0
        assert sum(sample["weights"]) == pytest.approx(1.0, abs=1e-5)
    assert any("random weights" in w for w in runs[0]["warnings"])  # never passed off as a face prior
    other = _invoke([*db, "prior", "sample", pid, "--count", 5, "--seed", 8, "--out", tmp_path / "c.png"])
    assert other.exit_code == 0 and not np.array_equal(a, np.asarray(Image.open(tmp_path / "c.png")))
    assert "random weights" in other.stderr
    again = _invoke([*db, "prior", "sample", pid, "--seed", 7, "--out", tmp_path / "a.png"])
    assert "already exists" in _one_line_error(again)


def test_prior_sample_with_beta_reaches_below_zero_but_not_below_minus_beta(obama_prior, tmp_path):
    db, pid, _ = obama_prior
    args = [*db, "prior", "sample", pid, "--count", 12, "--beta", 0.1, "--seed", 3]
    data = json.loads(_invoke([*args, "--out", tmp_path / "d.png", "--json"]).stdout)
    weights = [w for s in data["samples"] for w in s["weights"]]
    assert min(weights) >= -0.1 - 1e-6 and min(weights) < 0


# -- edit ------------------------------------------------------------------------------------------------
@pytest.fixture
def photo(tmp_path):
    """obama-240p.jpg as a PNG (lossless, so the pixels outside the face can be compared exactly)."""
    target = tmp_path / "album" / "obama.png"
    target.parent.mkdir()
    Image.open(shared_path("data", "faces", "face_recognition", "obama-240p.jpg")).convert("RGB").save(target)
    return target


def test_list_shows_all_three_kinds_with_reasons(obama_prior, face_recognition_library, tmp_path):
    db, pid, _ = obama_prior
    source = tmp_path / "boundary.npy"
    np.save(source, np.random.default_rng(0).normal(size=(1, 64)).astype(np.float32))
    assert _invoke(["models", "install", "smile-ifg", "--from", source]).exit_code == 0
    data = json.loads(_invoke([*db, "edit", "--list", pid, "--json"]).stdout)
    kinds = {d["name"]: d for d in data["directions"]}
    assert {"yaw", "pitch", "smile", "mouth", "eyes", "years"} <= set(kinds)
    for name in ("yaw", "pitch", "smile", "mouth", "eyes", "years"):  # fitted or refused with the reason
        assert kinds[name]["usable"] or kinds[name]["refused"]
    assert kinds["sefa-0"]["usable"] and kinds["sefa-9"]["kind"] == "sefa"
    assert kinds["smile-ifg"]["usable"] and kinds["smile-ifg"]["kind"] == "file"
    human = _invoke([*db, "edit", "--list", pid])
    assert human.exit_code == 0 and "sefa-0" in human.stdout and "smile-ifg" in human.stdout

    shown = json.loads(_invoke([*db, "people", "show", pid, "--json"]).stdout)["edit_directions"]
    assert shown["prior"] and shown["sefa"][0] == "sefa-0" and shown["files"] == ["smile-ifg"]
    personal = {d["name"] for d in data["directions"] if d["kind"] == "personal" and d["usable"]}
    assert set(shown["personal"]) == personal and set(shown["refused"]) == {
        "yaw", "pitch", "smile", "mouth", "eyes", "years"} - personal  # fmt: skip
    assert "edit directions: " in _invoke([*db, "people", "show", pid]).stdout
    from photokit.db.models import Person

    with face_recognition_library.db.session() as session:
        other = next(p.id for p in session.query(Person).all() if p.id != pid)
    assert "none yet" in _invoke([*db, "people", "show", other]).stdout


@pytest.mark.parametrize("policy", ["stop", "continue", "project"])
def test_edit_changes_only_the_face_and_reports_what_the_policy_did(obama_prior, photo, policy):
    db, pid, _ = obama_prior
    args = [*db, "edit", photo, "--person", pid, "--edit", "sefa-0=40", "--edit", "sefa-1=-5", "--policy", policy]
    result = _invoke([*args, "--loss", "mse", "--steps", 2, "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    output = Path(report["output"])
    assert output == photo.with_name("obama_edited.png") and output.is_file()
    [face] = [f for f in report["faces"] if f["status"] == "edited"]
    first, second = face["edits"]
    assert second["name"] == "sefa-1" and second["requested"] == -5 and "kept_fraction" in second
    assert first["name"] == "sefa-0" and first["requested"] == 40 and first["dilation_needed"] > report["beta"]
    if policy == "stop":
        assert first["action"] == "stopped" and abs(first["applied"]) < 40
        assert face["final_dilation"] <= report["beta"] + 1e-5
    elif policy == "project":
        assert first["action"] == "projected back" and face["final_dilation"] <= report["beta"] + 1e-5
    else:
        assert first["action"] == "continued past beta" and face["final_dilation"] > report["beta"]
    assert "s/step" in result.stderr and "random weights" in result.stderr  # cost and honesty up front

    before = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    after = np.asarray(Image.open(output).convert("RGB"), dtype=np.int16)
    changed = np.abs(after - before).max(axis=2) > 0
    assert changed.any()
    box = face["box"]  # every changed pixel is near the face (the mask lives in the aligned square)
    ys, xs = np.nonzero(changed)
    side = max(box[2] - box[0], box[3] - box[1])
    assert xs.min() >= box[0] - side and xs.max() <= box[2] + side
    assert ys.min() >= box[1] - side and ys.max() <= box[3] + side

    if policy == "stop":
        again = _invoke([*args, "--loss", "mse", "--steps", 1, "--device", "cpu", "--json"])
        assert json.loads(again.stdout)["output"] == str(photo.with_name("obama_edited-2.png"))  # never overwrites


def test_edited_photo_equals_the_input_outside_the_pasted_face_in_memory(obama_prior, photo, settings):
    from photokit.prior.directions import person_catalog
    from photokit.prior.vocab import EditPolicy
    from photokit.restore.edit import EditOptions, EditRequest, PhotoEditor
    from photokit.restore.priors import DatabasePeople, StorePriors
    from photokit.restore.project import SmallImageLoss
    from photokit.stylegan2.losses import make_reconstruction_loss
    from tests.conftest import FaceLibrary  # noqa: F401  (the library fixture's type)

    db_args, pid, _ = obama_prior
    from photokit.db import open_database
    from photokit.settings import Settings

    db = open_database(Settings.load(db_url=db_args[1]))
    priors = StorePriors(settings, torch.device("cpu"))
    prior = priors.personal(pid)
    catalog = person_catalog(db, prior.anchors, prior.meta, priors.base().generator, settings.models_dir, 6)
    editor = PhotoEditor(
        prior,
        catalog,
        DatabasePeople(db),
        EditOptions((EditRequest("sefa-2", 3.0),), EditPolicy.PROJECT, 0.02, steps=1),
        SmallImageLoss(make_reconstruction_loss("mse")),
        torch.device("cpu"),
    )
    edited = editor.render(photo)
    outside = edited.weight == 0
    assert outside.mean() > 0.5 and (edited.weight > 0.999).any()
    assert np.array_equal(edited.image[outside], edited.photo.rgb[outside])
    assert not np.allclose(edited.image[~outside], edited.photo.rgb[~outside])
    db.dispose()


def test_photo_without_the_person_and_unknown_direction_are_one_line_errors(obama_prior, tmp_path):
    db, pid, _ = obama_prior
    biden = tmp_path / "biden.jpg"
    shutil.copy(shared_path("data", "faces", "face_recognition", "biden.jpg"), biden)
    common = ["--loss", "mse", "--steps", 1, "--device", "cpu"]
    line = _one_line_error(_invoke([*db, "edit", biden, "--person", pid, "--edit", "sefa-0=1", *common]))
    assert "no face of" in line
    assert not list(tmp_path.glob("*_edited*"))
    line = _one_line_error(_invoke([*db, "edit", biden, "--person", pid, "--edit", "grin=1", *common]))
    assert "unknown edit direction 'grin'" in line and "sefa-0" in line and "sefa-9" in line
    line = _one_line_error(_invoke([*db, "edit", biden, "--person", pid, "--edit", "grin", *common]))
    assert "NAME=AMOUNT" in line
    bad = _invoke([*db, "edit", biden, "--person", pid, "--edit", "sefa-0=1", "--policy", "maybe"])
    assert bad.exit_code == 2 and "--policy" in bad.stderr and "project" in bad.stderr  # Typer lists the choices


# -- direction files in the model store -----------------------------------------------------------------
class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(self.flag),))


def test_direction_files_are_installed_checked_listed_and_removed(settings, tmp_path):
    good = tmp_path / "age.npy"
    np.save(good, np.arange(1, 65, dtype=np.float64).reshape(1, 64))
    installed = _invoke(["models", "install", "age-ifg", "--from", good, "--json"])
    assert installed.exit_code == 0, installed.output
    stored = settings.models_dir / "directions" / "age-ifg.npy"
    array = np.load(stored, allow_pickle=False)
    assert array.dtype == np.float32 and array.shape == (64,) and array[0] == 1.0
    listing = json.loads(_invoke(["models", "list", "--json"]).stdout)
    assert any(m["name"] == "age-ifg" and m["installed"] and m["kind"] == "direction" for m in listing["models"])
    assert _invoke(["models", "verify", "age-ifg"]).exit_code == 0

    boom = _Boom()
    boom.flag = str(tmp_path / "pwned")
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([boom, 1], dtype=object), allow_pickle=True)
    assert "never unpickles" in _one_line_error(_invoke(["models", "install", "evil", "--from", evil]))
    assert not (tmp_path / "pwned").exists()

    cube = tmp_path / "cube.npy"
    np.save(cube, np.ones((2, 3, 4), np.float32))
    assert "shape" in _one_line_error(_invoke(["models", "install", "cube", "--from", cube]))
    assert "built-in" in _one_line_error(_invoke(["models", "install", "smile", "--from", good]))
    assert "built-in" in _one_line_error(_invoke(["models", "install", "sefa-3", "--from", good]))
    assert not (settings.models_dir / "directions" / "cube.npy").exists()

    assert _invoke(["models", "remove", "age-ifg"]).exit_code == 0 and not stored.exists()
