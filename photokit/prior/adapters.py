"""What pivotal tuning changes, and how that change is stored.

MyStyle tunes every synthesis parameter and saves the whole tuned synthesis network (about 120 MB per
person at 1024 px). photokit stores only the *change* against the base generator, in one of two forms:

- ``FullDelta``: every synthesis parameter is trainable; stored as ``tuned - base`` per tensor.
- ``LowRankAdapters`` (``--adapter-rank R``): each synthesis weight W (out, in, k, k) or (out, in) gets
  W + up @ down with ``up`` (out, R), ``down`` (R, in*k*k) — LoRA-style, ``up`` starts at zero so tuning
  starts from the base generator. Only the factors are trained and stored. Weights where a rank-R factor
  would not be smaller than the weight itself, biases, and the constant input stay frozen. The rank is one
  number for every weight, or (``RankRule.fraction``) a fraction of each weight's own full rank, so that it
  grows with the layer's width; the stored factor shapes carry each weight's rank.

Both forms are applied to a base generator by ``apply_stored`` — the same arithmetic the trainer uses to
finalise its result — so a stored prior reloads to bit-identical weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from photokit.prior.vocab import PriorKind

STORAGE_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def synthesis_parameters(synthesis: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable tensors of the synthesis network by name (buffers such as constant noise excluded)."""
    return dict(synthesis.named_parameters())


def low_rank_shape(shape: torch.Size) -> tuple[int, int]:
    """(rows, cols) of a weight seen as a matrix: output channels x everything else."""
    return int(shape[0]), int(math.prod(shape[1:]))


def adaptable(shape: torch.Size, rank: int) -> bool:
    """A weight gets an adapter when it is a matrix or conv kernel and rank-R factors are smaller than it."""
    if len(shape) < 2:
        return False
    rows, cols = low_rank_shape(shape)
    return rank * (rows + cols) < rows * cols


@dataclass(frozen=True)
class RankRule:
    """The rank of each weight's adapter: ``rank``, or ``fraction`` of the weight's full rank min(out, in*k*k)
    (rounded up) where that is more -- a fixed rank is a smaller share of a wider layer -- and at most
    ``cap`` (0: none; forming a rank-R change of an (out, in*k*k) weight costs out x R x in*k*k per step,
    which the widest layers' cheap low-resolution convolutions do not dwarf). Without a fraction: ``rank``
    for every weight."""

    rank: int = 0
    fraction: float = 0.0
    cap: int = 0

    def __post_init__(self) -> None:
        if self.rank < 0 or not 0.0 <= self.fraction <= 1.0 or self.rank == 0 == self.fraction:
            raise ValueError("an adapter rank rule needs a rank >= 1 or a fraction in (0, 1]")
        if self.cap < 0 or 0 < self.cap < self.rank:
            raise ValueError("an adapter rank cap must be 0 (none) or at least the rank")

    def for_shape(self, shape: torch.Size) -> int:
        rank = max(self.rank, math.ceil(self.fraction * min(low_rank_shape(shape))), 1)
        return min(rank, self.cap) if self.cap else rank


def feature_channels(shape: torch.Size) -> int:
    """How many feature channels a synthesis weight mixes: a conv's input channels; a style affine's outputs
    (each scales one input channel of its conv, and the conv sums over all of them)."""
    return int(shape[1]) if len(shape) == 4 else int(shape[0])


def scaled_lr(base_lr: float, channels: int, reference_channels: int | None, power: float = 0.5) -> float:
    """A weight's adapter lr: ``base_lr`` x (reference_channels / channels) ** power for weights wider than
    the reference, ``base_lr`` for the others (``None``: ``base_lr`` everywhere).

    Adam moves every factor entry by about the lr whatever the width, and a coherent change summed over C
    channels grows as sqrt(C) against the output's own scale (weights are stored unscaled and multiplied by
    1/sqrt(fan_in) at run time; demodulation normalises each output): power 0.5 keeps the per-step change
    of a layer's output what it was at the width ``base_lr`` was tuned on."""
    if reference_channels is None:
        return base_lr
    return base_lr * (reference_channels / max(reference_channels, channels)) ** power


def is_constant_input(name: str) -> bool:
    """The learned 4x4 input (``b4.const``): an image, not a linear map, so a low-rank factor means nothing."""
    return name == "const" or name.endswith(".const")


def low_rank_delta(up: torch.Tensor, down: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The weight change ``up @ down`` reshaped to the weight's shape (pure; used by training and loading)."""
    return (up @ down).reshape(shape)


class _Tunable:
    """What tuning resumes from a checkpoint: the trainable tensors, in ``trainable()`` order."""

    def trainable(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def load_trainable_state(self, tensors: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, t in zip(self.trainable(), tensors, strict=True):
                p.copy_(t)


class FullDelta(_Tunable):
    """Tune all synthesis parameters in place; store tuned - base."""

    kind = PriorKind.FULL

    def __init__(self, synthesis: nn.Module) -> None:
        self.synthesis = synthesis
        self.base = {k: p.detach().clone() for k, p in synthesis_parameters(synthesis).items()}

    def trainable(self) -> list[torch.Tensor]:
        params = list(synthesis_parameters(self.synthesis).values())
        for p in params:
            p.requires_grad_(True)
        return params

    def lr_scales(self, reference_channels: int | None, power: float = 0.5) -> list[float]:
        return [1.0] * len(self.base)  # all weights share one lr (MyStyle)

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis(ws, noise_mode="const")

    def stored_tensors(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        current = synthesis_parameters(self.synthesis)
        return {f"delta.{k}": (current[k].detach() - self.base[k]).to(dtype).cpu().contiguous() for k in self.base}


class LowRankAdapters(_Tunable):
    """Tune low-rank factors per synthesis weight (ranks from ``rule``); the synthesis module stays the base."""

    kind = PriorKind.LOWRANK

    def __init__(self, synthesis: nn.Module, rule: RankRule, seed: int = 0) -> None:
        self.synthesis = synthesis
        self.rule = rule
        self.base = {k: p.detach().clone() for k, p in synthesis_parameters(synthesis).items()}
        for p in synthesis.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(seed)
        self.factors: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        for name, weight in self.base.items():
            rank = rule.for_shape(weight.shape) if len(weight.shape) >= 2 else 0
            if is_constant_input(name) or not adaptable(weight.shape, rank):
                continue
            rows, cols = low_rank_shape(weight.shape)
            # down ~ N(0, 1/R), up = 0: the adapted weight starts exactly at the base weight.
            down = torch.randn(rank, cols, generator=gen) / math.sqrt(rank)
            up = torch.zeros(rows, rank)
            self.factors[name] = (
                nn.Parameter(up.to(weight.device, weight.dtype)),
                nn.Parameter(down.to(weight.device, weight.dtype)),
            )

    def trainable(self) -> list[torch.Tensor]:
        return [t for pair in self.factors.values() for t in pair]

    def ranks(self) -> dict[str, int]:
        return {name: int(up.shape[1]) for name, (up, _down) in self.factors.items()}

    def lr_scales(self, reference_channels: int | None, power: float = 0.5) -> list[float]:
        """Each trainable tensor's lr relative to the peak (``trainable()`` order): one per factor pair,
        from its weight's width (``scaled_lr``)."""
        widths = [feature_channels(self.base[n].shape) for n in self.factors]
        scales = [scaled_lr(1.0, c, reference_channels, power) for c in widths]
        return [s for s in scales for _ in range(2)]

    def merged_parameters(self) -> dict[str, torch.Tensor]:
        return {
            name: (w + low_rank_delta(*self.factors[name], w.shape)) if name in self.factors else w
            for name, w in self.base.items()
        }

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            self.synthesis, self.merged_parameters(), (ws,), {"noise_mode": "const"}, strict=False
        )

    def stored_tensors(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        out = {}
        for name, (up, down) in self.factors.items():
            out[f"up.{name}"] = up.detach().to(dtype).cpu().contiguous()
            out[f"down.{name}"] = down.detach().to(dtype).cpu().contiguous()
        return out


def make_tunable(synthesis: nn.Module, rule: RankRule | None, seed: int = 0) -> FullDelta | LowRankAdapters:
    """Adapters with ranks from ``rule``, or (``None``) all weights."""
    return LowRankAdapters(synthesis, rule, seed) if rule is not None else FullDelta(synthesis)


def stored_kind(tensors: dict[str, torch.Tensor]) -> PriorKind:
    return PriorKind.LOWRANK if any(k.startswith("up.") for k in tensors) else PriorKind.FULL


def _stored_entries(tensors: dict[str, torch.Tensor]) -> Iterator[tuple[str, str]]:
    for key in tensors:
        prefix, _, name = key.partition(".")
        yield prefix, name


@torch.no_grad()
def apply_stored(synthesis: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Turn a base synthesis network into the tuned one, in place, from ``stored_tensors`` output.

    Raises ValueError when a tensor does not fit the network (another base generator).
    """
    params = synthesis_parameters(synthesis)
    entries = list(_stored_entries(tensors))
    unknown = {name for prefix, name in entries if prefix not in ("delta", "up", "down") or name not in params}
    if unknown:
        raise ValueError(f"stored tensors do not match this generator (e.g. {sorted(unknown)[0]!r})")
    for prefix, name in entries:
        p = params[name]
        if prefix == "delta":
            delta = tensors[f"delta.{name}"]
            if delta.shape != p.shape:
                raise ValueError(f"shape of {name!r} does not match this generator")
            p.copy_(p + delta.to(p.device, p.dtype))
        elif prefix == "up":
            up = tensors[f"up.{name}"].to(p.device, p.dtype)
            down = tensors.get(f"down.{name}")
            if down is None or low_rank_shape(p.shape) != (up.shape[0], down.shape[1]) or up.shape[1] != down.shape[0]:
                raise ValueError(f"adapter factors of {name!r} do not match this generator")
            p.copy_(p + low_rank_delta(up, down.to(p.device, p.dtype), p.shape))


def stored_ranks(tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    """Each adapted weight's rank, read off its stored ``up`` factor (empty for a full delta)."""
    return {key.partition(".")[2]: int(t.shape[1]) for key, t in tensors.items() if key.startswith("up.")}


def rank_range(ranks: dict[str, int]) -> list[int] | None:
    """[lowest, highest] adapter rank (None: no adapters), as prior.json records it."""
    return [min(ranks.values()), max(ranks.values())] if ranks else None


def stored_bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())
