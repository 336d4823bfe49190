"""Hostile numbers and ids: NaN, infinity, huge values and non-ASCII digits are one-line errors, never a
black blob, a NaN in JSON or a wiped set of people (issue 16, items 3, 6 and 7)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.errors import PhotokitError
from photokit.validation import checked_number

runner = CliRunner()


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e30", "-0.1"])
def test_enhance_refuses_a_beta_that_is_not_a_small_finite_number(tmp_path, value):
    photo = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (16, 16)).save(photo)
    result = runner.invoke(app, ["enhance", str(photo), f"--beta={value}", "--json"])
    assert_one_line_error(result, "beta")
    assert result.stdout == ""  # nothing half-written on stdout


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-2", "1e9"])
def test_enhance_refuses_a_scale_that_is_not_a_sensible_finite_number(tmp_path, value):
    photo = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (16, 16)).save(photo)
    assert_one_line_error(runner.invoke(app, ["enhance", str(photo), f"--scale={value}"]), "scale")


def test_library_functions_check_numbers_themselves():
    from photokit.prior.schedule import BuildOptions
    from photokit.restore.options import EnhanceOptions

    with pytest.raises(PhotokitError, match="beta"):
        EnhanceOptions(beta=float("nan"))
    with pytest.raises(PhotokitError, match="budget"):
        BuildOptions(budget_s=float("nan"))
    assert EnhanceOptions(beta=0.05, scale=2).beta == 0.05
    assert checked_number("x", "0.5", 0, 1) == 0.5


@pytest.mark.parametrize(
    ("option", "value"), [(o, v) for o in ("max-distance", "spread") for v in ("nan", "-1", "0", "inf", "1e9")]
)
def test_recluster_refuses_bad_distances_and_keeps_people(option, value):
    from photokit.db import open_database
    from photokit.db.models import Person
    from photokit.settings import Settings

    db = open_database(Settings.load())
    with db.session() as session:
        session.add(Person(name=None))
    result = runner.invoke(app, ["people", "recluster", f"--{option}={value}"])
    assert_one_line_error(result, option.replace("-", " "))
    with db.session() as session:
        assert session.query(Person).count() == 1
    db.dispose()


@pytest.mark.parametrize("ref", ["99999999999999999999999", "²", "٣"])
def test_people_show_with_an_impossible_id_is_a_one_line_error(ref):
    assert_one_line_error(runner.invoke(app, ["people", "show", ref]), "unknown person")
    assert_one_line_error(runner.invoke(app, ["people", "remove-face", ref]), "unknown face")


def test_models_sample_refuses_a_nan_truncation(tmp_path):
    from photokit.stylegan2 import save_generator
    from photokit.stylegan2.network import build_tiny_generator

    gen = tmp_path / "g.safetensors"
    save_generator(build_tiny_generator(), gen)
    result = runner.invoke(
        app, ["models", "sample", "--generator", str(gen), "--out", str(tmp_path / "s.png"), "--truncation", "nan"]
    )
    assert_one_line_error(result, "truncation")
