"""`photokit enhance` from the command line: errors, JSON reports, honesty about the models in use."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from typer.testing import CliRunner

from photokit.cli.app import app
from tests.conftest import shared_path

runner = CliRunner()


@pytest.fixture
def photo(tmp_path):
    target = tmp_path / "in" / "obama.jpg"
    target.parent.mkdir()
    shutil.copy(shared_path("data", "faces", "face_recognition", "obama-240p.jpg"), target)
    return target


def install_random_generator(settings, resolution=128):
    """A random-weight generator put where an installed ffhq-256 would be (the product must say so)."""
    from photokit.store.catalog import catalog_entry
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import save_generator
    from photokit.stylegan2.network import build_tiny_generator

    path = ModelStore(settings).target_path(catalog_entry("ffhq-256"))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(build_tiny_generator(resolution=resolution, seed=1), path)
    return path


def test_missing_photo_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["enhance", str(tmp_path / "nope.jpg"), "--loss", "mse"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1


def test_lpips_without_its_backbone_says_what_to_install(photo, settings):
    install_random_generator(settings)  # with a generator, faces would be projected: the loss is needed
    result = runner.invoke(app, ["enhance", str(photo), "--steps", "1"])
    assert result.exit_code == 2
    assert "photokit models install lpips-alex" in result.stderr and "--loss mse" in result.stderr
    assert not list(photo.parent.glob("*_restored*"))


def test_bad_beta_is_rejected(photo):
    result = runner.invoke(app, ["enhance", str(photo), "--beta", "lots", "--loss", "mse"])
    assert result.exit_code == 2 and "--beta" in result.stderr


def test_without_a_generator_faces_are_left_alone_and_the_report_says_what_to_install(photo, tmp_path):
    out = tmp_path / "out"
    # No generator means nothing to project, so the missing LPIPS backbone does not matter either.
    result = runner.invoke(app, ["enhance", str(photo), "--out", str(out), "--json", "--device", "cpu", "--scale", "2"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    [report] = data["reports"]
    [face] = report["faces"]
    assert face["status"] == "untouched" and "install a pretrained face generator" in face["reason"]
    assert "ffhq-256" in face["reason"]  # which model to install; the library's words name no command
    assert (out / "obama_restored.jpg").is_file() and report["output"] == str(out / "obama_restored.jpg")


def test_random_generator_is_refused_by_the_checks_and_called_what_it_is(settings, photo, tmp_path):
    install_random_generator(settings)
    out = tmp_path / "out"
    args = [
        "enhance",
        str(photo.parent),
        "--loss",
        "mse",
        "--out",
        str(out),
        "--json",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--scale",
        "4",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    [report] = data["reports"]
    [face] = report["faces"]
    # A random network's output is no face: the checks refuse it and the photo keeps its own (Lanczos) face.
    assert face["status"] == "rejected" and face["prior"] == "generic" and face["steps"] == 2
    assert face["reason"].startswith("failed the checks") and face["checks"]["passed"] is False and not face["forced"]
    assert {"person", "prior_name", "beta", "loss", "seconds", "checks"} <= set(face)
    assert any("random weights" in w for w in report["warnings"])
    assert "random weights" in result.stderr  # said up front too
    assert "s/step" in result.stderr  # the cost estimate
    from PIL import Image

    assert Image.open(out / "obama_restored.jpg").size == (4 * 427, 4 * 240)

    again = runner.invoke(app, args)  # the same album again: nothing to redo
    assert again.exit_code == 0
    assert json.loads(again.stdout)["already_done"] == 1 and json.loads(again.stdout)["restored"] == 0


def test_force_pastes_and_the_html_report_says_forced(settings, photo, tmp_path):
    install_random_generator(settings)
    out, page = tmp_path / "out", tmp_path / "report.html"
    args = ["enhance", str(photo), "--loss", "mse", "--out", str(out), "--json", "--device", "cpu", "--steps", "2"]
    result = runner.invoke(app, [*args, "--force", "--report", str(page)])
    assert result.exit_code == 0, result.stderr
    [face] = json.loads(result.stdout)["reports"][0]["faces"]
    assert face["status"] == "restored" and face["forced"] and face["checks"]["forced"]
    html = page.read_text()
    assert "FORCED" in html and "consistency PSNR" in html and "generic prior" in html
    assert html.count("data:image/png;base64,") == 2  # before and after crops of the one face
    bad = runner.invoke(app, [*args, "--report", str(tmp_path)])  # a folder: refused before any work
    assert bad.exit_code == 2 and ".html" in bad.stderr


def test_unknown_person_is_a_one_line_error(settings, photo):
    install_random_generator(settings)
    result = runner.invoke(
        app, ["enhance", str(photo), "--person", "Nobody At All", "--loss", "mse", "--steps", "1", "--json"]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["failed"] == 1 and "Nobody At All" in data["failures"][0]["error"]


def test_up_front_notes_go_through_the_live_progress_console(tmp_path, monkeypatch):
    """A second console printing while the bar is live garbles the terminal: notes use the bar's console."""
    import io

    from rich.console import Console

    import photokit.progress

    captured = io.StringIO()
    monkeypatch.setattr(photokit.progress, "stderr_console", Console(file=captured, width=200))
    empty = tmp_path / "empty album"
    empty.mkdir()
    result = runner.invoke(app, ["enhance", str(empty), "--loss", "mse", "--device", "cpu"])
    assert result.exit_code == 2 and "no photos found" in result.stderr
    assert "restoring on" in captured.getvalue() and "warning: no face generator" in captured.getvalue()
    assert "restoring on" not in result.stderr


def _restore_one_face(settings, photo, tmp_path, *options: str):
    """`enhance --json` of the one-face photo with a random generator: the run and its face's report."""
    install_random_generator(settings)
    args = ["enhance", str(photo), "--loss", "mse", "--out", str(tmp_path / "out"), "--json", "--device", "cpu"]
    result = runner.invoke(app, [*args, *options, "--force"])
    assert result.exit_code == 0, result.stderr
    [face] = json.loads(result.stdout)["reports"][0]["faces"]
    return result, face


def test_lbfgs_reports_its_steps_evaluations_and_seconds(settings, photo, tmp_path):
    result, face = _restore_one_face(settings, photo, tmp_path, "--optimizer", "lbfgs", "--steps", "3")
    assert face["optimizer"] == "lbfgs" and 1 <= face["steps"] <= 3
    assert face["evaluations"] >= face["steps"]  # a line search evaluates the generator at least once a step
    assert isinstance(face["seconds"], float) and face["seconds"] > 0
    assert "lbfgs projection steps" in result.stderr
    assert face["precision"] == "fp32"  # auto keeps fp32 for L-BFGS: its line search stalls on bf16 rounding


def test_bf16_restores_with_adam_and_says_so(settings, photo, tmp_path):
    result, face = _restore_one_face(
        settings, photo, tmp_path, "--optimizer", "adam", "--precision", "bf16", "--steps", "2"
    )
    assert face["precision"] == "bf16" and face["steps"] == 2 and math.isfinite(face["loss"])
    assert "in bf16" in result.stderr


def test_precision_choices_are_checked_before_any_model_loads(photo):
    import torch

    from photokit.errors import PhotokitError
    from photokit.restore.options import EnhanceOptions
    from photokit.stylegan2.precision import native_bf16
    from photokit.stylegan2.vocab import Precision

    result = runner.invoke(app, ["enhance", str(photo), "--optimizer", "lbfgs", "--precision", "bf16", "--loss", "mse"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "L-BFGS" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(PhotokitError, match="unknown precision 'fp16'"):
        EnhanceOptions(precision="fp16")
    cpu = torch.device("cpu")
    auto_adam = EnhanceOptions(optimizer="adam").precision_for(cpu)
    assert auto_adam == (Precision.BF16 if native_bf16(cpu) else Precision.FP32)
    assert EnhanceOptions(optimizer="lbfgs").precision_for(cpu) == Precision.FP32
    assert EnhanceOptions(precision="fp32").precision_for(cpu) == Precision.FP32
    assert EnhanceOptions(precision="bf16").fingerprint() != EnhanceOptions(precision="fp32").fingerprint()
    # bf16 halves a step's cost, so Adam's CPU default takes twice the steps in it; an explicit count always wins
    adam_bf16, adam_fp32 = (EnhanceOptions(optimizer="adam", precision=p) for p in ("bf16", "fp32"))
    assert adam_bf16.steps_for(cpu) == 2 * adam_fp32.steps_for(cpu)
    assert EnhanceOptions(optimizer="adam", precision="bf16", steps=7).steps_for(cpu) == 7


def test_unknown_optimizer_is_refused_by_the_cli_and_by_the_options(photo):
    from photokit.errors import PhotokitError
    from photokit.restore.options import EnhanceOptions

    result = runner.invoke(app, ["enhance", str(photo), "--optimizer", "sgd", "--loss", "mse"])
    assert result.exit_code == 2 and "Traceback" not in result.output  # Typer's usage error, as for --device
    assert "sgd" in result.stderr and "lbfgs" in result.stderr
    with pytest.raises(PhotokitError, match="unknown optimizer 'sgd' \\(use auto, adam, lbfgs, gauss-newton\\)"):
        EnhanceOptions(optimizer="sgd")  # the web and the workers build options without Typer
