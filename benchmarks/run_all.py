"""`make bench`: run every ``benchmarks/bench_*.py`` and write one JSON file of results per script.

Each script exposes ``run(device: str = "cpu", quick: bool = False) -> dict``. Results go to
``benchmarks/results/<name>.json`` together with the machine they were measured on.

    python -m benchmarks.run_all                 # everything, CPU
    python -m benchmarks.run_all scan faces      # some of them
    python -m benchmarks.run_all --device cuda   # GPU figures where a script supports them
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine_info(device: str) -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        # 1-, 5- and 15-minute load: figures measured on a busy machine are inflated
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "names",
        nargs="*",
        help="bench script names (scan, faces, generator, prior, prior_schedule, restore, web, startup, ...)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    available = sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))
    names = args.names or available
    unknown = set(names) - set(available)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: {available}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in names:
        print(f"== bench {name} ({args.device})", file=sys.stderr, flush=True)
        started = time.time()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            results = module.run(device=args.device, quick=args.quick)
        except Exception as exc:  # keep going: one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
            results = {"error": f"{type(exc).__name__}: {exc}"}
        doc = {
            "benchmark": name,
            "machine": machine_info(args.device),
            "seconds": round(time.time() - started, 1),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "results": results,
        }
        suffix = "" if args.device == "cpu" else f"_{args.device.replace(':', '')}"
        path = args.out / f"{name}{suffix}.json"
        path.write_text(json.dumps(doc, indent=2, default=str))
        print(json.dumps(doc["results"], indent=2, default=str))
        print(f"-> {path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
