"""A second photokit process for the album tests: ``python -m tests.batch_worker DB_URL ALBUM OUT SIGNALS
[--hold NAME] [--meet]`` restores ALBUM with the tests' tiny enhancer (``run_batch``, as `photokit enhance`
does) and prints its summary as JSON. It marks each photo it starts (``SIGNALS/<photo>.<pid>``); with
``--meet`` its first photo waits until two processes have started one (so both surely take part); with
``--hold NAME`` it stalls on that photo while ``SIGNALS/hold`` exists (so a test can SIGKILL it there)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("db_url", "album", "out", "signals"):
        parser.add_argument(name)
    parser.add_argument("--hold")
    parser.add_argument("--meet", action="store_true")
    args = parser.parse_args()

    import torch

    from photokit.db import open_database
    from photokit.restore.batch import run_batch
    from photokit.settings import Settings
    from tests.ray_helpers import tiny_enhancer

    torch.set_num_threads(1)
    signals = Path(args.signals)
    enhancer = tiny_enhancer(Path(args.out))
    restore = enhancer.enhance

    def marked(path, target=None):
        name = Path(path).name
        (signals / f"{name}.{os.getpid()}").touch()
        deadline = time.monotonic() + 300
        while args.meet and len({p.suffix for p in signals.iterdir()}) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        while name == args.hold and (signals / "hold").exists():
            time.sleep(0.05)
        return restore(path, target)

    enhancer.enhance = marked
    db = open_database(Settings.load(db_url=args.db_url))
    summary = run_batch(db, [args.album], enhancer)
    db.dispose()
    print(json.dumps(summary.to_json()))


if __name__ == "__main__":
    main()
