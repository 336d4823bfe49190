"""The wheel must carry every sub-package and the Alembic scripts (an installed photokit migrates too)."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_every_subpackage_and_the_migrations_are_packaged():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "photokit").rglob("__init__.py")}
    assert on_disk - listed == set(), "sub-packages missing from pyproject's packages list"
    assert {"photokit.migrations", "photokit.migrations.versions"} <= listed
    assert config["package-dir"]["photokit.migrations"] == "migrations"
    assert (ROOT / "migrations" / "versions" / "__init__.py").is_file()
    assert (ROOT / "migrations" / "env.py").is_file()
