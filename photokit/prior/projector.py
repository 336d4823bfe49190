"""W-space inversion (anchors): the StyleGAN2 projector schedule as PTI uses it.

Each reference crop is inverted to one w (repeated for every layer) by optimising w, together with the
generator's noise inputs, against a perceptual loss; the generator is frozen. References are inverted in
batches: every sample has its own w and its own noise maps, and the loss is a sum over samples, so samples
do not interact (Adam is element-wise); only the random draws depend on the batch.

Where photokit differs from PTI's code: the optimised noise maps are discarded after inversion (as PTI
does) and tuning/restoration use the generator's constant noise, so the anchor is only the w.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from photokit.stylegan2.losses import area_downsample
from photokit.stylegan2.network import w_statistics


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


class _BatchedNoise:
    """Per-sample noise maps fed to the synthesis network through ``functional_call``.

    Works with any generator that adds its noise buffer by broadcasting (``x + noise * strength``);
    if the network rejects batched maps, inversion falls back to its constant noise.
    """

    def __init__(self, synthesis: nn.Module, batch: int, device: torch.device, gen: torch.Generator) -> None:
        self.synthesis = synthesis
        self.names = noise_buffer_names(synthesis)
        buffers = dict(synthesis.named_buffers())
        self.maps = [
            torch.randn(batch, 1, *buffers[n].shape[-2:], generator=gen).to(device).requires_grad_(True)
            for n in self.names
        ]

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


@dataclass
class InversionResult:
    ws: torch.Tensor  # (B, w_dim)
    start_loss: list[float]  # per sample, at the mean w
    final_loss: list[float]
    noise_optimized: bool


def invert_w(
    G: nn.Module,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    config: ProjectorConfig = ProjectorConfig(),
    w_stats: tuple[torch.Tensor, float] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> InversionResult:
    """Invert a batch of images (B, 3, R, R) in [-1, 1] to W codes (B, w_dim) of the frozen generator ``G``.

    ``loss_fn(pred, target) -> (B,)`` is the per-sample perceptual loss (LPIPS-VGG in the product);
    both images are area-downsampled to ``config.loss_size`` first when larger.
    ``on_step(step, mean_loss)`` is called after every step (progress bars, tests injecting interrupts).
    """
    device = targets.device
    batch = targets.shape[0]
    w_avg, w_std = w_stats if w_stats is not None else w_statistics(G, config.w_avg_samples, device, config.seed)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    target_small = area_downsample(targets, min(config.loss_size, targets.shape[-1]))

    w_opt = w_avg.to(device).detach().clone().reshape(1, 1, -1).repeat(batch, 1, 1).requires_grad_(True)
    params: list[torch.Tensor] = [w_opt]
    noise = _BatchedNoise(G.synthesis, batch, device, gen) if config.optimize_noise else None
    if noise is not None and _batched_noise_works(noise, w_opt.detach().repeat(1, G.num_ws, 1)):
        noise.normalize()
        params += noise.maps
        synthesize = noise
    else:
        noise = None
        synthesize = lambda ws: G.synthesis(ws, noise_mode="const")  # noqa: E731

    def per_sample_loss(ws: torch.Tensor, synth: Callable[[torch.Tensor], torch.Tensor] = synthesize) -> torch.Tensor:
        return loss_fn(area_downsample(synth(ws), target_small.shape[-1]), target_small)

    def anchor_loss() -> torch.Tensor:
        """The loss of the current w as the anchor will be used: the generator's constant noise."""
        with torch.no_grad():
            return per_sample_loss(
                w_opt.detach().repeat(1, G.num_ws, 1), lambda ws: G.synthesis(ws, noise_mode="const")
            )

    start = anchor_loss()

    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999), lr=config.initial_lr)
    for step in range(config.steps):
        t = step / config.steps
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(t, config)
        sigma = w_noise_scale(t, w_std, config)
        w_noisy = w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * sigma
        loss = per_sample_loss(w_noisy.repeat(1, G.num_ws, 1))
        total = loss.sum()
        if noise is not None:
            total = total + config.regularize_noise_weight * noise_regularization(noise.maps).sum()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if noise is not None:
            noise.normalize()
        if on_step is not None:
            on_step(step, float(loss.detach().mean()))

    final = anchor_loss()
    return InversionResult(
        ws=w_opt.detach()[:, 0, :].clone(),
        start_loss=[float(x) for x in start],
        final_loss=[float(x) for x in final],
        noise_optimized=noise is not None,
    )


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
        loss_fn(area_downsample(G.synthesis(ws, noise_mode="const"), size), target_small).sum().backward()

    return step
