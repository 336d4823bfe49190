"""What pivotal tuning changes, and how that change is stored.

MyStyle tunes every synthesis parameter and saves the whole tuned synthesis network (about 120 MB per
person at 1024 px). photokit stores only the *change* against the base generator, in one of two forms:

- ``FullDelta``: every synthesis parameter is trainable; stored as ``tuned - base`` per tensor.
- ``LowRankAdapters`` (``--adapter-rank R``): each synthesis weight W (out, in, k, k) or (out, in) gets
  W + up @ down with ``up`` (out, R), ``down`` (R, in*k*k) — LoRA-style, ``up`` starts at zero so tuning
  starts from the base generator. Only the factors are trained and stored. Weights where a rank-R factor
  would not be smaller than the weight itself, biases, and the constant input stay frozen.

Both forms are applied to a base generator by ``apply_stored`` — the same arithmetic the trainer uses to
finalise its result — so a stored prior reloads to bit-identical weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

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

    def synthesize(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis(ws, noise_mode="const")

    def stored_tensors(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        current = synthesis_parameters(self.synthesis)
        return {f"delta.{k}": (current[k].detach() - self.base[k]).to(dtype).cpu().contiguous() for k in self.base}


class LowRankAdapters(_Tunable):
    """Tune rank-R factors per synthesis weight; the synthesis module itself stays the base."""

    kind = PriorKind.LOWRANK

    def __init__(self, synthesis: nn.Module, rank: int, seed: int = 0) -> None:
        if rank < 1:
            raise ValueError("adapter rank must be >= 1")
        self.synthesis = synthesis
        self.rank = rank
        self.base = {k: p.detach().clone() for k, p in synthesis_parameters(synthesis).items()}
        for p in synthesis.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(seed)
        self.factors: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        for name, weight in self.base.items():
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


def make_tunable(synthesis: nn.Module, adapter_rank: int | None, seed: int = 0) -> FullDelta | LowRankAdapters:
    return LowRankAdapters(synthesis, adapter_rank, seed) if adapter_rank else FullDelta(synthesis)


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


def stored_bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())
