"""Sweep the fast preset's settings on the planted 64 px references of ``bench_prior_schedule`` (not run by
``run_all``): how the numbers in the comments of ``photokit/prior/schedule.py`` were found.

Each JSON argument overrides the fast preset's projector (``p``) and tuning (``t``) settings; one line of
JSON per setting: anchor and tuned MSE, mean inversion steps run, CPU seconds and the load average. ``paper``
instead of settings runs the paper schedule once (about 80 CPU-s). One thread; use two or more generator
seeds so as not to tune to one random generator. ``--channels N`` widens every layer of the generator
(default ``QUALITY_CHANNELS``): does a setting chosen at 32 channels hold where a rank is a smaller fraction
of a layer's width?

    python -m benchmarks.sweep_prior_schedule 0 '{}' '{"t": {"lr": 0.002}}'   # about 7-12 CPU-s per setting
    python -m benchmarks.sweep_prior_schedule 1 paper
    python -m benchmarks.sweep_prior_schedule 0 --channels 128 paper '{}'
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

import torch

from benchmarks.bench_prior_schedule import (
    QUALITY_CHANNELS,
    QUALITY_REFS,
    fast_schedule_for,
    planted_references,
    quality_generator,
    run_schedule,
)
from photokit.prior.projector import ProjectorConfig
from photokit.prior.tuning import TuningConfig
from photokit.stylegan2.network import w_statistics


def _overridden(config, overrides: dict):
    return replace(config, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def split_channels(args: list[str]) -> tuple[int, list[str]]:
    """(channels, the other arguments): ``--channels N`` taken out of ``args`` wherever it stands."""
    if "--channels" not in args:
        return QUALITY_CHANNELS, args
    at = args.index("--channels")
    if at + 1 >= len(args) or not args[at + 1].isdigit() or int(args[at + 1]) < 1:
        raise SystemExit("--channels needs a positive whole number")
    return int(args[at + 1]), args[:at] + args[at + 2 :]


def main(seed: int, settings: list[str], channels: int = QUALITY_CHANNELS) -> None:
    torch.set_num_threads(1)
    G = quality_generator(seed, channels)
    _w_true, targets = planted_references(G, QUALITY_REFS, seed=1 + seed)
    w_stats = w_statistics(G, ProjectorConfig.w_avg_samples, torch.device("cpu"), ProjectorConfig.seed)
    fast = fast_schedule_for(QUALITY_REFS)
    for setting in settings:
        if setting == "paper":
            tuning = TuningConfig(checkpoint_every_s=1e9)
            result = run_schedule(G, targets, ProjectorConfig(), tuning, w_stats)
        else:
            given = json.loads(setting)
            projector = _overridden(fast["projector"], given.get("p", {}))
            result = run_schedule(G, targets, projector, _overridden(fast["tuning"], given.get("t", {})), w_stats)
        line = {"generator_seed": seed, "channels": channels, "setting": setting, "load_average": os.getloadavg()[0]}
        line |= {k: result[k] for k in ("anchor_mse", "tuned_mse", "invert_steps_run_mean", "cpu_s")}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    channels, args = split_channels(sys.argv[1:])
    main(int(args[0]), args[1:], channels)
