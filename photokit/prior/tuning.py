"""Pivotal tuning of the synthesis network on all anchors at once (MyStyle section 3.1).

Each step takes a batch of (anchor w, reference crop) pairs and updates the synthesis network (or its
low-rank adapters) so that G(w_i) reproduces x_i. The mapping network is never touched and noise inputs
stay constant. Tuning checkpoints every few minutes and on Ctrl-C, and resumes exactly: the visiting
order of the anchors is a pure function of (seed, epoch), and Adam's state is saved with the weights. Bits
match an uninterrupted run only where the kernels are deterministic (one CPU thread): with several threads,
CPU convolution backward sums in a timing-dependent order, so even two uninterrupted runs differ in the last
float bit (~4e-6 after 40 steps).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from photokit.errors import PhotokitError, Remedy
from photokit.interrupts import deferred_interrupt
from photokit.prior.adapters import STORAGE_DTYPES, RankRule, apply_stored, make_tunable
from photokit.prior.vocab import LrDecay
from photokit.store.atomic import atomic_path
from photokit.stylegan2.precision import resolve_precision, synthesis_precision
from photokit.stylegan2.vocab import Precision


@dataclass(frozen=True)
class TuningConfig:
    """Defaults: MyStyle's tuning (Nitzan et al. 2022, sec. 3.1 and B.3; its code: Adam lr 3e-4, batch 1,
    LPIPS(AlexNet) + 1.0 x MSE at full resolution, constant noise), inherited from PTI (Roich et al. 2021).
    ``epochs`` = 350 follows PTI's 350 steps per image, which matches MyStyle's ~48 s per anchor on a V100."""

    epochs: int = 350
    steps: int | None = None  # overrides epochs: total optimiser steps
    lr: float = 3e-4
    batch_size: int = 1
    mse_weight: float = 1.0
    lpips_net: str = "alex"
    adapter_rank: int | None = None  # R = rank-R adapters; None/0 and no fraction: all weights (MyStyle)
    adapter_rank_fraction: float | None = None  # a weight's rank: this fraction of its own, where more than R
    adapter_rank_cap: int | None = None  # ... and at most this (None: no cap)
    adapter_lr: float = 3e-3  # adapters start from zero and have few parameters: a larger step works
    adapter_lr_channels: int | None = None  # wider weights: adapter lr x (this / their channels) ** power
    adapter_lr_power: float = 0.5  # that power (None channels: lr not scaled)
    lr_warmup: float = 0.0  # fraction of the steps over which lr ramps up linearly (0: MyStyle's constant lr)
    lr_decay: LrDecay = LrDecay.CONSTANT  # after the warm-up: constant (MyStyle) or a cosine down to 0
    betas: tuple[float, float] = (0.9, 0.999)
    precision: Precision = Precision.FP32  # the tuning steps' synthesis (losses before / after: always fp32)
    storage_dtype: str = "float16"  # stored delta / factors; deltas are small, so fp16 loses nothing visible
    checkpoint_every_s: float = 180.0
    seed: int = 0

    def total_steps(self, num_anchors: int) -> int:
        if self.steps is not None:
            return self.steps
        return self.epochs * steps_per_epoch(num_anchors, self.batch_size)

    def rank_rule(self) -> RankRule | None:
        """The adapters' ranks (``adapter_rank``, or the fraction where that is more), or None: all weights."""
        if not (self.adapter_rank or self.adapter_rank_fraction):
            return None
        return RankRule(self.adapter_rank or 0, self.adapter_rank_fraction or 0.0, self.adapter_rank_cap or 0)

    @property
    def peak_lr(self) -> float:
        return self.lr if self.rank_rule() is None else self.adapter_lr

    def to_json(self) -> dict:
        return asdict(self)


def tuning_lr(step: int, total: int, peak: float, warmup: float, decay: LrDecay) -> float:
    """The learning rate of optimiser step ``step`` (0-based) of ``total``: a linear warm-up to ``peak``
    over the first ``warmup`` fraction of steps, then ``peak`` (constant) or a cosine ramp down to 0 at the
    end (cosine). A pure function of the step, so a resumed run follows the same schedule."""
    t = step / max(1, total)
    ramp = min(1.0, (step + 1) / max(1.0, warmup * total)) if warmup > 0 else 1.0
    if decay == LrDecay.COSINE and t > warmup:
        ramp *= 0.5 + 0.5 * math.cos(math.pi * (t - warmup) / (1.0 - warmup))
    return peak * ramp


def ceil_div(a: int, b: int) -> int:
    """How many groups of ``b`` hold ``a`` items."""
    return -(-a // b)


def steps_per_epoch(num_anchors: int, batch_size: int) -> int:
    return ceil_div(num_anchors, batch_size)


def batch_indices(step: int, num_anchors: int, batch_size: int, seed: int) -> torch.Tensor:
    """The anchors visited at ``step``: epoch-wise random permutations, reproducible from (seed, epoch)."""
    per_epoch = steps_per_epoch(num_anchors, batch_size)
    epoch, position = divmod(step, per_epoch)
    order = torch.randperm(num_anchors, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return order[position * batch_size : (position + 1) * batch_size]


@torch.no_grad()
def reconstruction_losses(
    synthesize: Callable[[torch.Tensor], torch.Tensor],
    anchors: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    num_ws: int,
    batch_size: int = 8,
) -> list[float]:
    """Per-reference loss of G(anchor_i) against reference i (the quantity tuning minimises)."""
    out: list[float] = []
    for start in range(0, len(anchors), batch_size):
        ws = anchors[start : start + batch_size].unsqueeze(1).repeat(1, num_ws, 1)
        out += [float(x) for x in loss_fn(synthesize(ws), targets[start : start + batch_size])]
    return out


@dataclass
class TuningResult:
    generator: nn.Module  # the base with the stored change applied (eval, frozen): what loading reproduces
    stored: dict[str, torch.Tensor]  # tensors for delta.safetensors / adapters.safetensors
    kind: str  # 'full' | 'lowrank'
    losses_before: list[float]
    losses_after: list[float]
    steps: int
    resumed_from: int
    seconds: float
    loss_history: list[float] = field(default_factory=list)


# TuningConfig fields added after checkpoints were first written, with the values those checkpoints implied.
LATER_FIELDS: dict[str, object] = {
    "adapter_rank_fraction": None,
    "adapter_rank_cap": None,
    "adapter_lr_channels": None,
    "adapter_lr_power": 0.5,
    "precision": Precision.FP32,
}


def _signature(config: TuningConfig, anchors: torch.Tensor, loss_name: str, base_fingerprint: str) -> str:
    """What must not change between an interrupted run and its resumption."""
    data = {k: v for k, v in config.to_json().items() if k not in ("steps", "epochs", "checkpoint_every_s")}
    for key, default in LATER_FIELDS.items():  # at its default: a checkpoint from before the field still fits
        if data[key] == default:
            del data[key]
    data.update(
        loss=loss_name,
        base=base_fingerprint,
        anchors=hashlib.sha256(anchors.detach().cpu().float().numpy().tobytes()).hexdigest(),
    )
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def save_checkpoint(
    path: Path,
    signature: str,
    step: int,
    trainable: list[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    history: list[float],
    elapsed: float,
) -> None:
    state = {
        "signature": signature,
        "step": step,
        "trainable": [t.detach().cpu() for t in trainable],
        "optimizer": optimizer.state_dict(),
        "history": history,
        "elapsed": elapsed,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, signature: str) -> dict | None:
    """The saved state, or None when there is none; a checkpoint of other settings is refused."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never plain unpickling
    except Exception as exc:
        raise PhotokitError(
            f"tuning checkpoint {path} is unreadable ({exc.__class__.__name__})", Remedy.RESTART
        ) from None
    if state.get("signature") != signature:
        raise PhotokitError(
            f"tuning checkpoint {path} was made with other settings, anchors or base generator (use the same options)",
            Remedy.RESTART,
        )
    return state


def tune(
    base: nn.Module,
    anchors: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: nn.Module,
    config: TuningConfig = TuningConfig(),
    base_fingerprint: str = "",
    checkpoint: Path | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TuningResult:
    """Tune a copy of ``base`` so that G(anchors[i]) reproduces targets[i] (B, 3, R, R) in [-1, 1].

    ``on_step(step, total, loss)`` runs after each step (progress; tests raise KeyboardInterrupt from it).
    On KeyboardInterrupt a checkpoint is written first; with ``checkpoint`` set, an existing compatible
    checkpoint is resumed from.
    """
    device = anchors.device
    num = len(anchors)
    total = config.total_steps(num)
    work = copy.deepcopy(base).to(device).train(False)
    tunable = make_tunable(work.synthesis, config.rank_rule(), config.seed)
    trainable = tunable.trainable()
    optimizer = adam_for(tunable, config, config.peak_lr)
    signature = _signature(config, anchors, getattr(loss_fn, "name", type(loss_fn).__name__), base_fingerprint)

    losses_before = reconstruction_losses(tunable.synthesize, anchors, targets, loss_fn, work.num_ws)
    start_step, history, elapsed_before = _resume(checkpoint, signature, tunable, optimizer, device)

    started = time.perf_counter()

    def save(step: int) -> None:
        if checkpoint is not None:
            elapsed = elapsed_before + time.perf_counter() - started
            save_checkpoint(checkpoint, signature, step, trainable, optimizer, history, elapsed)

    batches = _Batches(anchors, targets, config, work.num_ws)
    with synthesis_precision(work, config.precision):
        step = _run_steps(tunable, optimizer, batches, loss_fn, start_step, total, history, on_step, save)

    stored = tunable.stored_tensors(STORAGE_DTYPES[config.storage_dtype])
    tuned, losses_after = _tuned_copy(base, stored, anchors, targets, loss_fn)
    return TuningResult(
        generator=tuned,
        stored=stored,
        kind=tunable.kind,
        losses_before=losses_before,
        losses_after=losses_after,
        steps=step,
        resumed_from=start_step,
        seconds=elapsed_before + time.perf_counter() - started,
        loss_history=history,
    )


def lr_groups(trainable: list[torch.Tensor], scales: list[float], peak: float) -> list[dict]:
    """Adam parameter groups, one per distinct lr scale (in first-seen order): ``lr_scale`` x the schedule's lr."""
    by_scale: dict[float, list[torch.Tensor]] = {}
    for tensor, scale in zip(trainable, scales, strict=True):
        by_scale.setdefault(scale, []).append(tensor)
    return [{"params": params, "lr": peak * scale, "lr_scale": scale} for scale, params in by_scale.items()]


def adam_for(tunable, config: TuningConfig, peak: float) -> torch.optim.Adam:
    """Adam over ``tunable``'s tensors, each weight's at its own share of the ``peak`` lr (``lr_groups``)."""
    scales = tunable.lr_scales(config.adapter_lr_channels, config.adapter_lr_power)
    return torch.optim.Adam(lr_groups(tunable.trainable(), scales, peak), lr=peak, betas=config.betas)


@dataclass
class _Batches:
    """The (ws, targets) batch of each step: a seeded shuffle of the anchors, epoch by epoch."""

    anchors: torch.Tensor
    targets: torch.Tensor
    config: TuningConfig
    num_ws: int

    def at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batch_indices(step, len(self.anchors), self.config.batch_size, self.config.seed).to(self.anchors.device)
        return self.anchors[idx].unsqueeze(1).repeat(1, self.num_ws, 1), self.targets[idx]


def _run_steps(
    tunable,
    optimizer: torch.optim.Optimizer,
    batches: _Batches,
    loss_fn: nn.Module,
    step: int,
    total: int,
    history: list[float],
    on_step: Callable[[int, int, float], None] | None,
    save: Callable[[int], None],
) -> int:
    """Optimiser steps from ``step`` to ``total``, saving every ``checkpoint_every_s`` and on Ctrl-C."""
    last_save = time.perf_counter()
    try:
        while step < total:
            ws, targets = batches.at(step)
            loss = loss_fn(tunable.synthesize(ws), targets).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            config = batches.config
            lr = tuning_lr(step, total, config.peak_lr, config.lr_warmup, config.lr_decay)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)  # checkpoints before per-weight lrs: 1
            with deferred_interrupt():  # the update and its step count land together, so resume is exact
                optimizer.step()
                step += 1
                history.append(float(loss.detach()))
            if time.perf_counter() - last_save >= batches.config.checkpoint_every_s:
                save(step)
                last_save = time.perf_counter()
            if on_step is not None:
                on_step(step, total, history[-1])
    except KeyboardInterrupt:
        save(step)
        raise
    return step


def _resume(
    checkpoint: Path | None, signature: str, tunable, optimizer: torch.optim.Optimizer, device: torch.device
) -> tuple[int, list[float], float]:
    """(step, loss history, seconds spent) of a compatible checkpoint, loaded into ``tunable`` and
    ``optimizer``; (0, [], 0.0) when there is none."""
    state = load_checkpoint(checkpoint, signature) if checkpoint is not None else None
    if state is None:
        return 0, [], 0.0
    tunable.load_trainable_state([t.to(device) for t in state["trainable"]])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state["history"]), float(state["elapsed"])


def _tuned_copy(
    base: nn.Module, stored: dict[str, torch.Tensor], anchors: torch.Tensor, targets: torch.Tensor, loss_fn: nn.Module
) -> tuple[nn.Module, list[float]]:
    """The base with the stored change applied (frozen, as it will be loaded) and its per-anchor losses."""
    device = anchors.device
    tuned = copy.deepcopy(base).to(device)
    apply_stored(tuned.synthesis, {k: v.to(device) for k, v in stored.items()})
    tuned.eval().requires_grad_(False)
    losses = reconstruction_losses(
        lambda ws: tuned.synthesis(ws, noise_mode="const"), anchors, targets, loss_fn, tuned.num_ws
    )
    return tuned, losses


def tuning_step_probe(
    base: nn.Module, anchors: torch.Tensor, targets: torch.Tensor, loss_fn: Callable, config: TuningConfig
) -> Callable[[], None]:
    """One tuning step's work (forward + backward into the weights, one Adam update) on a throw-away copy."""
    work = copy.deepcopy(base).to(anchors.device)
    tunable = make_tunable(work.synthesis, config.rank_rule(), config.seed)
    optimizer = adam_for(tunable, config, 0.0)
    ws = anchors[: config.batch_size].unsqueeze(1).repeat(1, work.num_ws, 1)
    target = targets[: config.batch_size]

    work.synthesis.precision = resolve_precision(config.precision, anchors.device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(tunable.synthesize(ws), target).mean().backward()
        optimizer.step()

    return step
