"""CLI start-up: wall and CPU time of quick commands, and which heavy modules they imported (issue 14).

Each command runs in a fresh interpreter against a small library whose schema is already current (as on
every run after the first): 200 photos, 600 faces, 40 people, the suggestions cache of ``people list``
already kept. ``repeats`` rounds, interleaved with a bare ``python -c pass`` so the interpreter's own
start-up under the current machine load is on record next to the figures. Target: <= 0.4 s each (wall);
CPU seconds (user + system) are recorded too: on a shared, busy machine they are the steadier figure.
photokit's modules are byte-compiled before the runs (an installed package ships its .pyc files).

With ``BENCH_STARTUP_BEFORE=REV`` (a git revision of this checkout) the same commands of that revision run
in the same rounds, side by side, each tree on its own copy of the library:

    python -m benchmarks.run_all startup
    BENCH_STARTUP_BEFORE=main python -m benchmarks.run_all startup
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "--help": ["--help"],
    "status": ["status"],
    "people list": ["people", "list"],
    "models list": ["models", "list"],
    "prior list": ["prior", "list"],
}
HEAVY = ("torch", "alembic", "sqlalchemy", "numpy", "pydantic")
FILL = """
from photokit.db import open_database
from photokit.db.models import Face, Person, Photo, PhotoLocation
from photokit.settings import Settings

db = open_database(Settings.load())
with db.session() as session:
    people = [Person(name=f"person {i}" if i % 2 else None) for i in range(40)]
    photos = [Photo(sha256=f"{i:064x}", size=1, format="JPEG", width=8, height=8, faces_status="done") for i in range(200)]
    session.add_all(people + photos)
    session.flush()
    for i, photo in enumerate(photos):
        session.add(PhotoLocation(photo_id=photo.id, path=f"/photos/{i}.jpg", size=1, mtime_ns=1))
        for j in range(3):
            owner = people[(i + j) % 40].id if j < 2 else None
            session.add(Face(photo_id=photo.id, detector="hog", box=[0, 0, 9, 9], score=1.0, person_id=owner))
db.dispose()
"""


def _run(args: list[str], env: dict, importtime: bool = False) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system: barely affected by other processes) and stderr."""
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), *args]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=env["PYTHONPATH"].split(os.pathsep)[0], timeout=300
    )
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu, proc.stderr


def _heavy_imports(stderr: str) -> list[str]:
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in stderr.splitlines() if "|" in line}
    return sorted(names & set(HEAVY))


def _export(revision: str, where: Path) -> Path:
    """The tree of ``revision`` of this checkout, unpacked into ``where`` (no worktree is registered)."""
    archive = where.with_suffix(".tar")
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), revision], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where


def _env(tree: Path, home: Path) -> dict:
    env = {
        **os.environ,
        "PHOTOKIT_HOME": str(home),
        "PHOTOKIT_MODELS": str(home / "models"),
        "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("PHOTOKIT_DB_URL", None)
    return env


def _library(tree: Path, home: Path) -> dict:
    """A current library for ``tree``: migrated, filled, its suggestions cache made (the first run of all).

    The tree's modules are byte-compiled first, as an installed package's are: with PYTHONDONTWRITEBYTECODE
    set (as on the shared development machine) every run would otherwise compile photokit from source."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(tree / "photokit"), str(tree / "migrations")], check=True
    )
    env = _env(tree, home)
    _run(["-m", "photokit", "db", "upgrade"], env)
    _run(["-c", FILL], env)
    _run(["-m", "photokit", "people", "list"], env)
    return env


def _summary(runs: list[tuple[float, float]], trace: str) -> dict:
    wall = [t[0] for t in runs]
    return {
        "median_s": round(statistics.median(wall), 3),
        "min_s": round(min(wall), 3),
        "median_cpu_s": round(statistics.median(t[1] for t in runs), 3),
        "heavy_imports": _heavy_imports(trace),
        "meets_target_0_4s": statistics.median(wall) <= 0.4,
    }


def run(device: str = "cpu", quick: bool = False, root: Path = ROOT, before: str | None = None) -> dict:
    repeats = 3 if quick else 7
    before = before or os.environ.get("BENCH_STARTUP_BEFORE") or None
    load_at_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"now": root} | ({"before": _export(before, Path(scratch) / "before")} if before else {})
        envs = {name: _library(tree, Path(scratch) / f"home-{name}") for name, tree in trees.items()}
        bare: list[tuple[float, float]] = []
        times: dict[tuple[str, str], list[tuple[float, float]]] = {(t, name): [] for t in trees for name in COMMANDS}
        for _ in range(repeats):
            bare.append(_run(["-c", "pass"], envs["now"])[:2])
            for name, args in COMMANDS.items():
                for tree, env in envs.items():  # side by side: the same load for both trees
                    times[tree, name].append(_run(["-m", "photokit", *args], env)[:2])
        results = {
            tree: {
                name: _summary(times[tree, name], _run(["-m", "photokit", *args], env, importtime=True)[2])
                for name, args in COMMANDS.items()
            }
            for tree, env in envs.items()
        }
    return {
        "method": f"subprocess wall and CPU time, median of {repeats} interleaved runs, schema already current, "
        "200 photos / 600 faces / 40 people, suggestions cache kept",
        "load_average_at_start": load_at_start,
        "load_average_at_end": list(os.getloadavg()),
        "python_bare_startup_median_s": round(statistics.median(b[0] for b in bare), 3),
        "python_bare_startup_median_cpu_s": round(statistics.median(b[1] for b in bare), 3),
        "commands": results["now"],
        **({"before": {"revision": before, "commands": results["before"]}} if before else {}),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
