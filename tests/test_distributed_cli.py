"""`--ray` without Ray installed says what to install; cluster helpers size their workers."""

from __future__ import annotations

import shutil
import sys

import pytest
from typer.testing import CliRunner

from photokit.cli.app import app
from photokit.distributed.cluster import ClusterInfo, wants_gpu, worker_count
from photokit.errors import PhotokitError
from tests.conftest import shared_path

runner = CliRunner()


def test_ray_flag_without_ray_installed_says_what_to_install(tmp_path, monkeypatch):
    photo = tmp_path / "a.jpg"
    shutil.copy(shared_path("data", "faces", "face_recognition", "obama_small.jpg"), photo)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    result = runner.invoke(app, ["enhance", str(photo), "--loss", "mse", "--ray"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "pip install 'photokit[ray]'" in lines[0]
    assert not list(tmp_path.glob("*_restored*"))


def test_workers_follow_gpus_when_the_work_runs_on_them():
    info = ClusterInfo("127.0.0.1:6379", cpus=16, gpus=2, nodes=2)
    assert wants_gpu("auto", info) and wants_gpu("cuda", info) and not wants_gpu("cpu", info)
    assert worker_count(info, None, gpu=True) == 2 and worker_count(info, None, gpu=False) == 16
    assert worker_count(info, 3, gpu=False) == 3
    with pytest.raises(PhotokitError, match="no GPU"):
        worker_count(ClusterInfo("x", cpus=4, gpus=0, nodes=1), None, gpu=True)
    with pytest.raises(PhotokitError, match="1 or more"):
        worker_count(info, 0, gpu=False)


def _parsed(path: list[str], args: list[str]) -> dict:
    """The parameters a command line gives the command at ``path`` (parsing only: nothing runs)."""
    import typer._click as click
    from typer.main import get_command

    command = get_command(app)
    for name in path:
        command = command.get_command(click.Context(command), name)
    return command.make_context(name, list(args)).params


@pytest.mark.parametrize(
    "path, first",
    [(["enhance"], ["Album"]), (["scan"], ["Album"]), (["prior", "build"], ["--all"])],
)
def test_ray_is_usable_bare_or_with_an_address_on_every_distributed_command(path, first):
    assert _parsed(path, first)["ray"] is None  # no flag: one process
    assert _parsed(path, [*first, "--ray"])["ray"] == "local"  # bare, last
    assert _parsed(path, ["--ray", *first])["ray"] == "local"  # bare, before a path or another option
    params = _parsed(path, [*first, "--ray", "--workers", "2"])
    assert params["ray"] == "local" and params["workers"] == 2
    assert _parsed(path, [*first, "--ray", "ray://h:10001"])["ray"] == "ray://h:10001"
    assert _parsed(path, ["--ray", "head.example:6379", *first])["ray"] == "head.example:6379"
    assert _parsed(path, [*first, "--ray=10.0.0.5:6379"])["ray"] == "10.0.0.5:6379"
    if path != ["prior", "build"]:
        assert _parsed(path, ["--ray", "Album", "Other"])["raw_paths" if path == ["enhance"] else "paths"] == [
            "Album",
            "Other",
        ]


def test_a_ray_value_that_is_not_an_address_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["scan", str(tmp_path), "--ray=Album"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --ray 'Album'")
    assert len(result.stderr.strip().splitlines()) == 1
