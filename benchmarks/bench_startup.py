"""CLI start-up: wall time of quick commands, and whether they imported torch or Alembic (issue 14).

Each command runs in a fresh interpreter against a library whose schema is already current (as on every
run after the first), ``repeats`` times, interleaved with a bare ``python -c pass`` so the interpreter's own
start-up under the current machine load is on record next to the figures. Target: <= 0.4 s each (wall);
CPU seconds (user + system) are recorded too: on a shared, busy machine they are the steadier figure.

    python -m benchmarks.run_all startup
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
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
HEAVY = ("torch", "alembic", "sqlalchemy", "numpy")


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


def run(device: str = "cpu", quick: bool = False, root: Path = ROOT) -> dict:
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "PHOTOKIT_HOME": home,
            "PHOTOKIT_MODELS": str(Path(home) / "models"),
            "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        env.pop("PHOTOKIT_DB_URL", None)
        _run(["-m", "photokit", "db", "upgrade"], env)  # the first run of all migrates; measured below: the rest
        bare: list[tuple[float, float]] = []
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
        for _ in range(repeats):
            bare.append(_run(["-c", "pass"], env)[:2])
            for name, args in COMMANDS.items():
                times[name].append(_run(["-m", "photokit", *args], env)[:2])
        commands = {}
        for name, args in COMMANDS.items():
            trace = _run(["-m", "photokit", *args], env, importtime=True)[2]
            wall = [t[0] for t in times[name]]
            commands[name] = {
                "median_s": round(statistics.median(wall), 3),
                "min_s": round(min(wall), 3),
                "median_cpu_s": round(statistics.median(t[1] for t in times[name]), 3),
                "heavy_imports": _heavy_imports(trace),
                "meets_target_0_4s": statistics.median(wall) <= 0.4,
            }
    return {
        "method": f"subprocess wall time, median of {repeats} interleaved runs, schema already current",
        "load_average_at_start": list(os.getloadavg()),
        "python_bare_startup_median_s": round(statistics.median(b[0] for b in bare), 3),
        "python_bare_startup_median_cpu_s": round(statistics.median(b[1] for b in bare), 3),
        "commands": commands,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
