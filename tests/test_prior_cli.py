"""`photokit prior refs|build|list|show|remove` on real photos with a tiny random generator."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.errors import PhotokitError
from photokit.prior.schedule import FAST_TUNING, fast_precision
from photokit.prior.selection import REASONS
from tests.conftest import scan_faces_library, shared_path
from tests.test_prior_tuning import largest_identity_person

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    from photokit.stylegan2 import save_generator
    from photokit.stylegan2.network import build_tiny_generator

    return save_generator(build_tiny_generator(), tmp_path_factory.mktemp("gen") / "tiny.safetensors")


def _labels() -> dict[str, str]:
    return {
        r["file"]: r["identity"] for r in csv.DictReader(open(shared_path("data", "faces", "deepface", "labels.csv")))
    }


def _invoke(args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_refs_of_the_largest_identity_keep_its_photos_and_explain_every_drop(deepface_library, tiny_file):
    person = largest_identity_person(deepface_library)
    out = _json(
        _invoke(
            ["--db-url", deepface_library.settings.db_url, "prior", "refs", person, "--generator", tiny_file, "--json"]
        )
    )
    labels = _labels()
    largest = max(set(labels.values()), key=lambda i: sum(v == i for v in labels.values()))
    photos = {f for f, i in labels.items() if i == largest and f != "img11_reflection.jpg"}
    assert len(photos) == 8
    kept = {Path(f["path"]).name for f in out["faces"]}
    # every one of its 8 photos is represented; img11_reflection.jpg is a mirrored copy of img11.jpg
    assert photos - {"img11.jpg"} <= kept and ({"img11.jpg", "img11_reflection.jpg"} & kept)
    dropped = [d for d in out["decisions"] if not d["kept"]]
    assert all(d["reason"] in REASONS and d["detail"] for d in dropped)
    pair = [d for d in dropped if Path(d["path"]).name in ("img11.jpg", "img11_reflection.jpg")]
    assert [d["reason"] for d in pair] == ["duplicate"]
    assert len(out["decisions"]) == len(out["faces"]) + len(dropped)
    assert [f["face_id"] for f in out["faces"]] == [
        d["face_id"] for d in sorted((d for d in out["decisions"] if d["kept"]), key=lambda d: d["order"])
    ]
    for f in out["faces"]:  # aligned crops at the generator's resolution, in the store
        with Image.open(Path(out["folder"]) / f["crop"]) as im:
            assert im.size == (32, 32)


@pytest.fixture(scope="module")
def library_with_copies(tmp_path_factory):
    """The largest identity's photos plus a re-encoded, resized copy of one and a grayscale copy of another."""
    labels = _labels()
    root = tmp_path_factory.mktemp("copies_lib") / "photos"
    root.mkdir()
    src = shared_path("data", "faces", "deepface")
    for name in [f for f, i in labels.items() if i == "person00"] + ["img13.jpg", "img14.jpg", "img15.jpg"]:
        shutil.copy(src / name, root / name)
    with Image.open(src / "img2.jpg") as im:
        im = im.convert("RGB")
        im.resize((int(im.width * 0.8), int(im.height * 0.8)), Image.LANCZOS).save(root / "img2_copy.jpg", quality=85)
    with Image.open(src / "img4.jpg") as im:
        ImageOps.grayscale(im.convert("RGB")).convert("RGB").save(root / "img4_gray.jpg", quality=92)
    library = scan_faces_library(tmp_path_factory.mktemp("copies_home"), [root])
    yield library
    library.db.dispose()


def test_added_copy_is_a_duplicate_and_grayscale_copy_is_grayscale(library_with_copies, tiny_file):
    from sqlalchemy import func, select

    from photokit.db.models import Face

    with library_with_copies.db.session() as session:
        person = session.execute(
            select(Face.person_id, func.count())
            .where(Face.person_id.is_not(None))
            .group_by(Face.person_id)
            .order_by(func.count().desc())
        ).first()[0]
    result = _invoke(
        ["--db-url", library_with_copies.settings.db_url, "prior", "refs", person, "--generator", tiny_file]
    )
    assert result.exit_code == 0, result.output
    out = _json(
        _invoke(
            [
                "--db-url",
                library_with_copies.settings.db_url,
                "prior",
                "refs",
                person,
                "--generator",
                tiny_file,
                "--json",
            ]
        )
    )
    reasons = {Path(d["path"]).name: d["reason"] for d in out["decisions"]}
    assert reasons["img4_gray.jpg"] == "grayscale"
    # the copy and its original: one kept, the other dropped as the same shot
    assert sorted([reasons["img2_copy.jpg"], reasons["img2.jpg"]], key=str) == sorted([None, "duplicate"], key=str)
    assert "dropped" in result.stdout and "grayscale" in result.stdout and "duplicate" in result.stdout


def test_too_few_faces_unknown_people_and_missing_lpips_are_one_line_errors(deepface_library, tiny_file):
    db = deepface_library.settings.db_url
    from sqlalchemy import select

    from photokit.db.models import Person

    with deepface_library.db.session() as session:
        small = min(session.scalars(select(Person)), key=lambda p: len(p.faces)).id
    result = _invoke(["--db-url", db, "prior", "refs", small, "--generator", tiny_file])
    assert result.exit_code == 2 and "usable face" in result.stderr and "at least 5" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    result = _invoke(["--db-url", db, "prior", "build", small, "--generator", tiny_file, "--loss", "mse"])
    assert (
        result.exit_code == 2 and "usable face" in result.stderr and "anchors:" not in result.stderr
    )  # before any cost

    result = _invoke(["--db-url", db, "prior", "refs", "nobody-by-that-name", "--generator", tiny_file])
    assert result.exit_code == 2 and result.stderr.startswith("error:")

    person = largest_identity_person(deepface_library)
    result = _invoke(["--db-url", db, "prior", "build", person, "--generator", tiny_file, "--device", "cpu"])
    assert result.exit_code == 2 and "--loss mse" in result.stderr  # no LPIPS backbone installed here
    result = _invoke(["--db-url", db, "prior", "show", person])
    assert result.exit_code == 2 and "no personal prior" in result.stderr


def test_build_is_interruptible_resumes_and_is_listed_shown_loaded_and_removed(
    deepface_library, tiny_file, monkeypatch, settings
):
    import photokit.prior.meta as prior_meta
    import photokit.prior.personal as personal
    import photokit.prior.storage as storage

    db = deepface_library.settings.db_url
    person = largest_identity_person(deepface_library)
    args = [
        "--db-url",
        db,
        "prior",
        "build",
        person,
        "--generator",
        tiny_file,
        "--device",
        "cpu",
        "--loss",
        "mse",
        "--invert-steps",
        40,
        "--steps",
        60,
        "--max",
        6,
    ]
    estimate = _json(_invoke(args + ["--estimate", "--json"]))  # the plan and cost, nothing built
    assert (estimate["plan"]["refs"], estimate["plan"]["invert_steps"], estimate["plan"]["tuning_steps"]) == (6, 40, 60)
    assert (
        estimate["estimate_s"] > 0 and not estimate["resuming"] and not prior_meta.prior_dir(settings, person).exists()
    )
    said = _invoke(args + ["--estimate"])
    assert said.exit_code == 0 and "nothing was built" in said.stdout and "tuning: 60 steps" in said.stdout
    assert estimate["adapter_rank"] == FAST_TUNING["adapter_rank"]  # the fast preset tunes adapters
    assert estimate["adapter_rank_fraction"] == FAST_TUNING.get("adapter_rank_fraction")  # fixed or width-scaled
    assert estimate["invert_batch"] == estimate["plan"]["invert_batch"] == 1  # one reference at a time on a CPU
    all_weights = _json(_invoke(args + ["--adapter-rank", 0, "--estimate", "--json"]))
    assert all_weights["adapter_rank"] == 0 and all_weights["plan"]["tuning_steps"] == 60
    assert all_weights["adapter_rank_fraction"] is None  # --adapter-rank replaces the preset's rank rule
    assert estimate["precision"] == fast_precision(torch.device("cpu"))  # bf16 where this CPU has it natively
    in_fp32 = _json(_invoke(args + ["--precision", "fp32", "--estimate", "--json"]))
    assert in_fp32["precision"] == "fp32" and in_fp32["plan"]["tuning_steps"] == 60
    real_tune = personal.tune

    def interrupted_tune(*a, **kw):
        def on_step(step, total, loss):
            if step == 25:
                raise KeyboardInterrupt

        return real_tune(*a, **{**kw, "on_step": on_step})

    monkeypatch.setattr(personal, "tune", interrupted_tune)
    result = _invoke(args)
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert not prior_meta.has_prior(settings, person)
    assert _json(_invoke(args + ["--estimate", "--json"]))["resuming"]  # the interrupted build's schedule
    monkeypatch.setattr(personal, "tune", real_tune)

    inversions = []
    import photokit.prior.anchors as anchors_module

    monkeypatch.setattr(anchors_module, "invert_w", lambda *a, **kw: inversions.append(1))  # anchors must be reused
    meta = _json(_invoke(args + ["--json"]))
    assert inversions == []
    assert meta["tuning"]["resumed_from"] == 25 and meta["tuning"]["steps_done"] == 60
    assert meta["loss"] == {"kind": "mse", "degraded": True, "inversion": "mse", "tuning": "mse"}
    assert meta["preset"] == "fast" and meta["plan"]["invert_estimate_s"] > 0 and meta["plan"]["tuning_estimate_s"] > 0
    assert [meta["plan"][k] for k in ("refs", "invert_steps", "tuning_steps")] == [6, 40, 60]  # as estimated
    assert any("NOT a real face prior" in w for w in meta["warnings"])
    assert meta["tuning"]["loss_after"] < meta["tuning"]["loss_before"]
    assert meta["tuning"]["kind"] == "lowrank" and meta["projector"]["batch_size"] == 1  # the fast preset's
    assert meta["tuning"]["precision"] == meta["projector"]["precision"] == fast_precision(torch.device("cpu"))
    assert len(meta["references"]) == 6

    listed = _json(_invoke(["prior", "list", "--json"]))
    assert [p["person_id"] for p in listed] == [person] and listed[0]["real_face_prior"] is False
    shown = _invoke(["--db-url", db, "prior", "show", person])
    assert shown.exit_code == 0 and "6 anchors" in shown.stdout and "degraded" in shown.stdout
    rank = FAST_TUNING["adapter_rank"]  # every stored factor pair has the preset's one rank, and show says so
    assert meta["tuning"]["adapter_ranks"] == [rank, rank] and f"low-rank adapters R={rank}," in shown.stdout

    from photokit.stylegan2 import load_generator

    base = load_generator(tiny_file)
    owner = storage.person_owner(deepface_library.db, person)
    assert meta["owner"] == owner and len(owner["library_id"]) == 32
    prior = storage.load_personal_prior(settings, person, "cpu", base_generator=base, owner=owner)
    assert prior.anchors.shape == (6, 64) and torch.isfinite(prior.anchors).all()
    # A prior is refused for another library, or for a later person who got the same id.
    with pytest.raises(PhotokitError, match="another library"):
        storage.load_personal_prior(
            settings, person, "cpu", base_generator=base, owner={**owner, "library_id": "0" * 32}
        )
    with pytest.raises(PhotokitError, match="same id"):
        storage.load_personal_prior(
            settings, person, "cpu", base_generator=base, owner={**owner, "person_created_at": "2000-01-01T00:00:00"}
        )

    removed = _invoke(["--db-url", db, "prior", "remove", person, "--yes"])
    assert removed.exit_code == 0 and not prior_meta.prior_dir(settings, person).exists()
