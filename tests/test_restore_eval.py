"""`photokit eval`: MyStyle's held-out enhancement protocol (restore.evaluate, restore.holdout, cli/eval)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from photokit.prior import alpha as A
from photokit.restore.evaluate import Method, Restorers, evaluate, parse_tasks, task_degradation
from photokit.stylegan2.losses import ReconstructionLoss
from photokit.stylegan2.network import build_tiny_generator

runner = CliRunner()


def planted_faces(G, anchors, count: int, seed: int) -> torch.Tensor:
    """Faces the prior can produce exactly: G(alpha+ . anchors) with alpha+ inside P_0.05."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        code = A.alpha_plus(
            1 / len(anchors) + 0.3 * torch.randn(len(anchors), generator=gen),
            0.05 * torch.randn(G.num_ws, len(anchors), generator=gen),
            0.05,
        )
        with torch.no_grad():
            out.append(G.synthesis((code @ anchors)[None], noise_mode="const")[0])
    return torch.stack(out)


def test_personal_prior_beats_lanczos_on_planted_x8():
    G = build_tiny_generator(resolution=64, seed=0)
    with torch.no_grad():
        anchors = G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(1)))[:, 0]
    truths = planted_faces(G, anchors, 2, seed=2)
    restorers = Restorers(G, anchors, G, ReconstructionLoss(None), steps=400)
    result = evaluate(truths, [1, 2], ["sr8"], restorers, methods=(Method.PERSONAL, Method.CLASSICAL))
    by = {s.method: s for s in result.summaries()}
    assert by["personal"].psnr_mean > by["classical"].psnr_mean + 1.0, by
    assert len(result.samples) == 4 and set(result.crops) == {(1, "sr8"), (2, "sr8")}
    assert result.crops[(1, "sr8")]["input"].shape == (8, 8, 3)  # x8 of 64 px
    assert by["personal"].identity_mean is None  # no descriptor function given: identity not scored


def test_tasks_are_parsed_and_checked():
    assert parse_tasks("sr8, inpaint,sr8") == ["sr8", "inpaint"]
    from photokit.errors import PhotokitError

    with pytest.raises(PhotokitError, match="tasks 'sr7'"):
        parse_tasks("sr7")
    with pytest.raises(PhotokitError, match="px input"):
        task_degradation("sr32", 64)
    hole = task_degradation("inpaint", 64).mask[0, 0]
    assert 0.1 < float((hole == 0).float().mean()) < 0.3


def test_inpainting_scores_the_hole_and_classical_is_telea():
    G = build_tiny_generator(resolution=32, seed=0)
    truths = torch.rand(1, 3, 32, 32) * 2 - 1
    restorers = Restorers(G, torch.zeros(2, G.w_dim), G, ReconstructionLoss(None), steps=1)
    result = evaluate(truths, [7], ["inpaint"], restorers, methods=(Method.CLASSICAL,))
    [sample] = result.samples
    assert sample.method == "classical" and np.isfinite(sample.psnr)
    crops = result.crops[(7, "inpaint")]
    hole = task_degradation("inpaint", 32).mask[0, 0].numpy() == 0
    assert crops["input"][hole].max() == 0.5  # the hole is unknown ([-1, 1] zero -> 0.5 grey)...
    assert np.abs(crops["classical"][~hole] - crops["truth"][~hole]).max() < 0.01  # ...the rest is kept


@pytest.fixture
def library_with_generator(deepface_library, settings):
    from sqlalchemy import func, select

    from photokit.db.models import Face
    from tests.test_enhance_cli import install_random_generator

    install_random_generator(settings, resolution=64)
    with deepface_library.db.session() as session:
        person_id = session.execute(
            select(Face.person_id, func.count())
            .where(Face.person_id.is_not(None))
            .group_by(Face.person_id)
            .order_by(func.count().desc())
        ).first()[0]
    return deepface_library, person_id


def test_eval_command_end_to_end_with_a_random_generator(library_with_generator, tmp_path, monkeypatch):
    library, person_id = library_with_generator
    monkeypatch.setenv("PHOTOKIT_DB_URL", library.settings.db_url)
    out = tmp_path / "eval.html"
    args = [
        "eval", str(person_id), "--holdout", "2", "--task", "sr8", "--loss", "mse", "--steps", "2",
        "--invert-steps", "2", "--tuning-steps", "2", "--device", "cpu", "--json", "--out", str(out),
    ]  # fmt: skip
    from photokit.cli.app import app

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["meaningful"] is False
    assert any("mean nothing about faces" in w for w in data["warnings"])
    assert len(data["held_out_face_ids"]) == 2 and not set(data["held_out_face_ids"]) & set(data["train_face_ids"])
    assert {s["method"] for s in data["summary"]} == {"personal", "generic", "classical"}
    assert all(s["task"] == "sr8" and s["samples"] == 2 for s in data["summary"])
    assert "s/step" in result.stderr and "about" in result.stderr  # the cost, said up front
    html = out.read_text()
    assert "mean nothing about faces" in html and html.count("data:image/png;base64,") == 2 * 5
    assert data["prior_reused"] is False
    again = runner.invoke(app, args)  # the same split: the prior without the held-out faces is reused
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["prior_reused"] is True


def test_eval_refuses_a_holdout_that_leaves_too_few_faces(library_with_generator, monkeypatch):
    library, person_id = library_with_generator
    monkeypatch.setenv("PHOTOKIT_DB_URL", library.settings.db_url)
    from photokit.cli.app import app

    args = ["eval", str(person_id), "--loss", "mse", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--holdout", "50", "--task", "sr8"])
    assert result.exit_code == 2 and "--holdout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    too_far = runner.invoke(app, [*args, "--task", "sr32"])  # 64 px / 32 = 2 px: nothing left to restore
    assert too_far.exit_code == 2 and "sr32" in too_far.stderr and len(too_far.stderr.strip().splitlines()) == 1
