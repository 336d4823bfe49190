"""Quick commands must not pay for torch (~2 s) or Alembic (~0.3 s) at start-up (issue 14).

Behaviour, not timing: ``python -X importtime`` lists every module a command imported; the figures in
seconds are measured by ``benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "alembic")


def imported_modules(*args: str) -> set[str]:
    """Top-level names of every module ``photokit ARGS`` imported (from ``-X importtime``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "photokit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return {name.split(".")[0] for name in names}


def test_help_imports_neither_torch_nor_alembic_nor_sqlalchemy():
    modules = imported_modules("--help")
    assert "typer" in modules  # the parse worked: the command really ran
    assert not modules & {*HEAVY, "sqlalchemy"}


def test_first_status_migrates_then_later_ones_skip_alembic():
    first = imported_modules("status", "--json")
    assert "alembic" in first  # a new library is created by running the migrations
    assert "torch" not in first
    again = imported_modules("status", "--json")
    assert "sqlalchemy" in again  # it did read the database
    assert not again & set(HEAVY)


@pytest.mark.parametrize("args", [("people", "list"), ("models", "list"), ("prior", "list")])
def test_listing_commands_skip_torch_and_alembic(args):
    imported_modules("db", "upgrade")
    modules = imported_modules(*args)
    assert "photokit" in modules
    assert not modules & set(HEAVY)


def test_script_head_matches_alembic(tmp_path):
    """The text-only head (what lets start-up skip Alembic) agrees with Alembic's own answer."""
    from sqlalchemy import create_engine

    from photokit.db import migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert migrate.script_head() == migrate.head_revision(engine) is not None
    assert not migrate.is_current(engine)
    migrate.upgrade(engine)
    assert migrate.is_current(engine)
    migrate.downgrade(engine, "-1")
    assert not migrate.is_current(engine)
    engine.dispose()
