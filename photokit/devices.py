"""Where models run (auto, cpu, cuda or mps): one place that turns the choice into a ``torch.device``."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from photokit.errors import PhotokitError, Remedy

if TYPE_CHECKING:
    import torch


class Device(StrEnum):
    AUTO = "auto"  # a CUDA GPU, else Apple MPS, else the CPU
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


DEVICE_CHOICES = tuple(Device)


def resolve_device(name: str = Device.AUTO) -> torch.device:
    """The torch device for a choice (library callers may also name ``cuda:N``)."""
    import torch

    name = str(name or Device.AUTO).lower()
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise PhotokitError(f"unknown device '{name}': use one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PhotokitError("device cuda was asked for but no CUDA GPU is available", Remedy.OTHER_DEVICE)
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PhotokitError("device mps was asked for but Apple MPS is not available", Remedy.OTHER_DEVICE)
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
