"""What the Ray tests ship to their workers (importable there: the test fixture puts the checkout on
PYTHONPATH). Kept apart from the test modules so workers import only this."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from photokit.distributed.album import EnhanceHandler
from photokit.jobs import ClaimedJob


def tiny_enhancer(out_dir: Path):
    """The restoration the tests compare: a tiny random generator (seed 5), 2 projection steps, MSE."""
    from photokit.restore.options import EnhanceOptions
    from photokit.restore.pipeline import Enhancer
    from photokit.restore.priors import NoPeople, StaticPriors
    from photokit.stylegan2.base import BaseGenerator
    from photokit.stylegan2.network import build_tiny_generator

    options = EnhanceOptions(scale=2, steps=2, loss="mse", out_dir=out_dir)
    generator = build_tiny_generator(resolution=128, seed=5)
    return Enhancer(options, StaticPriors(BaseGenerator(generator, "tiny", pretrained=False)), NoPeople(), device="cpu")


class HoldingHandler(EnhanceHandler):
    """Marks each job it starts (``<signals>/<photo>.<pid>``) and, while ``<signals>/hold`` exists, stalls
    on the photo named ``hold_name`` (so a test can SIGKILL a worker in the middle of a job)."""

    def __init__(self, enhancer, targets, signals: Path, hold_name: str | None) -> None:
        super().__init__(enhancer, targets)
        self.signals, self.hold_name = signals, hold_name

    def __call__(self, job: ClaimedJob):
        name = Path(job.subject).name
        (self.signals / f"{name}.{os.getpid()}").touch()
        while name == self.hold_name and (self.signals / "hold").exists():
            time.sleep(0.1)
        return super().__call__(job)


@dataclass
class TinyAlbumFactory:
    out_dir: Path
    targets: dict[str, str]
    signals: Path
    hold_name: str | None = None

    def __call__(self) -> HoldingHandler:
        import torch

        torch.set_num_threads(1)
        return HoldingHandler(tiny_enhancer(self.out_dir), self.targets, self.signals, self.hold_name)
