"""W-space inversion (anchors): the StyleGAN2 projector schedule as PTI uses it.

Each reference crop is inverted to one w (repeated for every layer) by optimising w, together with the
generator's noise inputs, against a perceptual loss; the generator is frozen. References are inverted in
batches: every sample has its own w, its own noise maps and its own random stream, and the loss is a sum
over samples, so samples do not interact (Adam is element-wise) and a batch gives the one-at-a-time results.
Optionally (the fast preset) each sample stops early: once its loss curve has flattened its w is frozen and
it leaves the batch, so the steps that remain cost less.

Where photokit differs from PTI's code: the optimised noise maps are discarded after inversion (as PTI
does) and tuning/restoration use the generator's constant noise, so the anchor is only the w.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from photokit.stylegan2.losses import area_downsample
from photokit.stylegan2.network import w_statistics
from photokit.stylegan2.precision import synthesis_precision
from photokit.stylegan2.vocab import Precision


@dataclass(frozen=True)
class ProjectorConfig:
    """Defaults: PTI's W inversion (Roich et al. 2021, ``w_projector``), itself NVIDIA's StyleGAN2
    projector (``projector.py`` of stylegan2-ada-pytorch) with 450 instead of 1000 steps and peak lr
    0.01 instead of 0.1. NVIDIA's mean-w estimate from 10,000 mapped samples is kept (PTI uses 600)."""

    steps: int = 450
    initial_lr: float = 0.01
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    initial_noise_factor: float = 0.05  # w-noise, relative to the spread of W
    noise_ramp_length: float = 0.75  # w-noise fades out over the first 75% of steps
    regularize_noise_weight: float = 1e5
    w_avg_samples: int = 10_000
    loss_size: int = 256  # images are area-downsampled to this size before the loss
    lpips_net: str = "vgg"
    optimize_noise: bool = True
    batch_size: int = 8
    seed: int = 123
    early_stop_window: int = 0  # steps; 0 = every anchor runs every step (PTI, the paper schedule)
    early_stop_tol: float = 0.002  # relative drop of the windowed mean loss below which a curve is flat
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's
    precision: Precision = Precision.FP32  # the steps' synthesis (start and end losses: always fp32)

    def to_json(self) -> dict:
        return asdict(self)


def learning_rate(t: float, config: ProjectorConfig) -> float:
    """NVIDIA's ramp: a short linear warm-up, then a cosine ramp-down over the last quarter. ``t`` in [0, 1]."""
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / config.lr_rampup_length)
    return config.initial_lr * ramp


def w_noise_scale(t: float, w_std: float, config: ProjectorConfig) -> float:
    """Std of the noise added to w at progress ``t``: quadratic fade to 0 at ``noise_ramp_length``."""
    return w_std * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2's multi-scale noise autocorrelation penalty, per sample (B,). Maps are (B, 1, H, W)."""
    total = 0.0
    for noise in noise_maps:
        while True:
            total = total + (noise * torch.roll(noise, shifts=1, dims=3)).mean(dim=(1, 2, 3)) ** 2
            total = total + (noise * torch.roll(noise, shifts=1, dims=2)).mean(dim=(1, 2, 3)) ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return total


def noise_buffer_names(synthesis: nn.Module) -> list[str]:
    """The constant-noise buffers of the synthesis network (NVIDIA ``noise_const`` / rosinality ``noise_N``)."""
    names = []
    for name, buf in synthesis.named_buffers():
        leaf = name.rsplit(".", 1)[-1]
        if ("noise_const" in leaf or leaf.startswith("noise_")) and buf.dim() >= 2 and buf.shape[-1] == buf.shape[-2]:
            names.append(name)
    return names


def balanced_batch_size(count: int, batch_size: int) -> int:
    """The batch size that splits ``count`` items into as few batches as ``batch_size`` does, as evenly as
    possible (20 at 8: 7, 7, 6 instead of 8, 8, 4), so no batch runs the schedule for a few samples."""
    batches = -(-count // max(1, batch_size))
    return max(1, -(-count // max(1, batches)))


class SampleDraws:
    """One random stream per sample, seeded by the sample's own seed: what a sample draws (its starting
    noise maps, its w-noise) does not depend on which other samples share its batch, so a batched
    inversion and one-at-a-time inversions with the same seeds follow the same path."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def randn(self, shape: Sequence[int], device: torch.device) -> torch.Tensor:
        """(B, *shape): one standard-normal draw per sample from its own stream."""
        return torch.cat([torch.randn(1, *shape, generator=g) for g in self.generators]).to(device)

    def keep(self, rows: list[int]) -> None:
        self.generators = [self.generators[i] for i in rows]


class _BatchedNoise:
    """Per-sample noise maps fed to the synthesis network through ``functional_call``.

    Works with any generator that adds its noise buffer by broadcasting (``x + noise * strength``);
    if the network rejects batched maps, inversion falls back to its constant noise.
    """

    def __init__(self, synthesis: nn.Module, draws: SampleDraws, device: torch.device) -> None:
        self.synthesis = synthesis
        self.names = noise_buffer_names(synthesis)
        buffers = dict(synthesis.named_buffers())
        self.maps = [draws.randn((1, *buffers[n].shape[-2:]), device).requires_grad_(True) for n in self.names]

    def __call__(self, ws: torch.Tensor) -> torch.Tensor:
        overrides = dict(zip(self.names, self.maps))  # (B, 1, H, W) broadcasts against (B, C, H, W)
        return torch.func.functional_call(self.synthesis, overrides, (ws,), {"noise_mode": "const"}, strict=False)

    @torch.no_grad()
    def normalize(self) -> None:
        for noise in self.maps:
            noise -= noise.mean(dim=(1, 2, 3), keepdim=True)
            noise *= noise.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()


def _batched_noise_works(noise: _BatchedNoise, ws: torch.Tensor) -> bool:
    if not noise.names:
        return False
    try:
        with torch.no_grad():
            img = noise(ws[:1].expand(len(noise.maps[0]), -1, -1).contiguous())
        return img.shape[0] == noise.maps[0].shape[0]
    except Exception:
        return False


def loss_flattened(history: torch.Tensor, window: int, tol: float) -> torch.Tensor:
    """Which per-sample loss curves (T, B) have flattened (B,): the best loss of the last ``window`` steps
    is at most ``tol`` (relative) below the best of the ``window`` steps before. Window minima ride out the
    projector's w-noise, and an anchor already at its optimum (whose loss only jitters as Adam normalises
    round-off gradients) counts as flat; fewer than 2 x ``window`` steps, or ``window`` = 0, is never flat."""
    if window <= 0 or history.shape[0] < 2 * window:
        return torch.zeros(history.shape[1], dtype=torch.bool)
    previous = history[-2 * window : -window].amin(dim=0)
    last = history[-window:].amin(dim=0)
    return previous - last <= tol * previous.abs()


def keep_rows(optimizer: torch.optim.Optimizer, rows: list[int]) -> list[torch.Tensor]:
    """Shrink every parameter of ``optimizer`` (and its per-element state, e.g. Adam's moments) to the
    batch rows ``rows``, in place; returns the new leaf parameters. Scalar state (the step) is shared."""
    index = torch.tensor(rows, dtype=torch.long)
    new_params = []
    for group in optimizer.param_groups:
        kept = []
        for p in group["params"]:
            q = p.detach()[index.to(p.device)].clone().requires_grad_(True)
            state = optimizer.state.pop(p, {})
            optimizer.state[q] = {
                k: v[index.to(v.device)].clone() if torch.is_tensor(v) and v.dim() > 0 else v for k, v in state.items()
            }
            kept.append(q)
        group["params"] = kept
        new_params += kept
    return new_params


@dataclass
class InversionResult:
    ws: torch.Tensor  # (B, w_dim)
    start_loss: list[float]  # per sample, at the mean w
    final_loss: list[float]
    noise_optimized: bool
    steps: list[int] = field(default_factory=list)  # per sample: steps run before it froze (or all)


class _ActiveBatch:
    """The samples still being optimised: their rows in the caller's batch, their w (A, 1, w_dim) and
    noise maps, one Adam over all of them, and their recent loss curves for early stopping."""

    def __init__(
        self,
        G: nn.Module,
        target_small: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        w_avg: torch.Tensor,
        seeds: Sequence[int],
        config: ProjectorConfig,
    ) -> None:
        device, batch = target_small.device, target_small.shape[0]
        self.G, self.config, self.target_small, self.loss_fn = G, config, target_small, loss_fn
        self.rows = list(range(batch))
        self.draws = SampleDraws(seeds)
        self.w = w_avg.to(device).detach().clone().reshape(1, 1, -1).repeat(batch, 1, 1).requires_grad_(True)
        noise = _BatchedNoise(G.synthesis, self.draws, device) if config.optimize_noise else None
        if noise is not None and _batched_noise_works(noise, self.w.detach().repeat(1, G.num_ws, 1)):
            noise.normalize()
        else:
            noise = None
        self.noise = noise
        params = [self.w] + (noise.maps if noise is not None else [])
        self.optimizer = torch.optim.Adam(params, betas=config.betas, lr=config.initial_lr)
        self.history = torch.zeros(0, batch)

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        if self.noise is not None:
            return self.noise(ws)
        return self.G.synthesis(ws, noise_mode="const")

    def step(self, t: float, w_std: float) -> torch.Tensor:
        """One Adam step at progress ``t`` (lr ramp, w-noise); returns the per-sample loss (A,)."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(t, config)
        w_noisy = self.w + self.draws.randn(self.w.shape[1:], self.w.device) * w_noise_scale(t, w_std, config)
        image = area_downsample(self.synthesize(w_noisy.repeat(1, self.G.num_ws, 1)), self.target_small.shape[-1])
        loss = self.loss_fn(image, self.target_small)
        total = loss.sum()
        if self.noise is not None:
            total = total + config.regularize_noise_weight * noise_regularization(self.noise.maps).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        if self.noise is not None:
            self.noise.normalize()
        recent = torch.cat([self.history, loss.detach().cpu().reshape(1, -1)])
        self.history = recent[-2 * max(1, config.early_stop_window) :]
        return loss.detach()

    def converged(self) -> list[int]:
        """Positions (in the active batch) of the samples whose loss curve has flattened."""
        flat = loss_flattened(self.history, self.config.early_stop_window, self.config.early_stop_tol)
        return [i for i, f in enumerate(flat.tolist()) if f]

    def drop(self, positions: list[int]) -> None:
        """Take the samples at ``positions`` out of the batch; the others continue where they were."""
        keep = [i for i in range(len(self.rows)) if i not in positions]
        params = keep_rows(self.optimizer, keep)
        self.w = params[0]
        if self.noise is not None:
            self.noise.maps = params[1:]
        self.rows = [self.rows[i] for i in keep]
        self.draws.keep(keep)
        self.target_small = self.target_small[torch.tensor(keep, device=self.target_small.device)]
        self.history = self.history[:, keep]


def _anchor_losses(G: nn.Module, ws: torch.Tensor, target_small: torch.Tensor, loss_fn) -> list[float]:
    """The loss of each w as the anchor will be used: the generator's constant noise."""
    with torch.no_grad():
        image = G.synthesis(ws.unsqueeze(1).repeat(1, G.num_ws, 1), noise_mode="const")
        return [float(x) for x in loss_fn(area_downsample(image, target_small.shape[-1]), target_small)]


def invert_w(
    G: nn.Module,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    config: ProjectorConfig = ProjectorConfig(),
    w_stats: tuple[torch.Tensor, float] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    seeds: Sequence[int] | None = None,
) -> InversionResult:
    """Invert a batch of images (B, 3, R, R) in [-1, 1] to W codes (B, w_dim) of the frozen generator ``G``.

    ``loss_fn(pred, target) -> (B,)`` is the per-sample perceptual loss (LPIPS-VGG in the product);
    both images are area-downsampled to ``config.loss_size`` first when larger. ``seeds``: one per sample
    (default ``config.seed + row``); a sample's result depends on its seed, not on its batch.
    With ``config.early_stop_window`` > 0 a sample whose loss curve has flattened is frozen and leaves the
    batch, so later steps cost less. ``on_step(step, mean_loss)`` is called after every step (progress
    bars, tests injecting interrupts).
    """
    batch = targets.shape[0]
    w_avg, w_std = (
        w_stats if w_stats is not None else w_statistics(G, config.w_avg_samples, targets.device, config.seed)
    )
    seeds = list(seeds) if seeds is not None else [config.seed + i for i in range(batch)]
    target_small = area_downsample(targets, min(config.loss_size, targets.shape[-1]))
    start = _anchor_losses(G, w_avg.to(targets.device).reshape(1, -1).expand(batch, -1), target_small, loss_fn)
    active = _ActiveBatch(G, target_small, loss_fn, w_avg, seeds, config)
    noise_optimized = active.noise is not None
    with synthesis_precision(G, config.precision):
        ws, steps = _optimize(active, w_std, on_step)
    return InversionResult(ws, start, _anchor_losses(G, ws, target_small, loss_fn), noise_optimized, steps)


def _optimize(
    active: _ActiveBatch, w_std: float, on_step: Callable[[int, float], None] | None
) -> tuple[torch.Tensor, list[int]]:
    """Run the schedule; samples freeze as their curves flatten. Returns (ws (B, w_dim), steps per sample)."""
    total = active.config.steps
    ws = active.w.detach()[:, 0, :].clone()
    steps = [total] * len(active.rows)
    for step in range(total):
        loss = active.step(step / total, w_std)
        if on_step is not None:
            on_step(step, float(loss.mean()))
        frozen = active.converged() if step + 1 < total else []
        for position in frozen:
            ws[active.rows[position]] = active.w.detach()[position, 0]
            steps[active.rows[position]] = step + 1
        if len(frozen) == len(active.rows):
            return ws, steps
        if frozen:
            active.drop(frozen)
    ws[active.rows] = active.w.detach()[:, 0]
    return ws, steps


def inversion_step_probe(
    G: nn.Module, targets: torch.Tensor, loss_fn: Callable, config: ProjectorConfig
) -> Callable[[], None]:
    """One inversion step's work (forward + backward through the frozen generator and the loss) for
    ``photokit.stylegan2.timing.time_step``: what an up-front estimate multiplies by the number of steps."""
    size = min(config.loss_size, targets.shape[-1])
    target_small = area_downsample(targets, size)
    w = G.w_avg.detach().reshape(1, 1, -1).repeat(targets.shape[0], G.num_ws, 1).to(targets.device)

    def step() -> None:
        ws = w.clone().requires_grad_(True)
        with synthesis_precision(G, config.precision):
            image = G.synthesis(ws, noise_mode="const")
        loss_fn(area_downsample(image, size), target_small).sum().backward()

    return step
