"""The models a restoration needs beyond the priors: the reconstruction loss and the face analyzer."""

from __future__ import annotations

import torch

from photokit.faces.vocab import DescriptorKind
from photokit.restore.options import EnhanceOptions
from photokit.restore.priors import PriorSource
from photokit.restore.project import SmallImageLoss
from photokit.stylegan2.base import INSTALL_HINT
from photokit.stylegan2.vocab import LossKind


def load_restoration_loss(
    options: EnhanceOptions, priors: PriorSource, device: torch.device, allow_random_lpips: bool = False
) -> SmallImageLoss | None:
    """The projection loss, or None when no generator is installed (then no face can be projected, faces
    stay as they are and the report says what to install). Fails before any photo when LPIPS's backbone is
    missing (the message says what to install)."""
    from photokit.stylegan2.losses import make_reconstruction_loss

    if priors.base() is None:
        return None
    return SmallImageLoss(
        make_reconstruction_loss(options.loss, options.lpips_net, device, allow_random_backbone=allow_random_lpips)
    )


def model_warnings(loss_fn: SmallImageLoss | None, priors: PriorSource) -> list[str]:
    """What the user must know about the models in use (never pretend a random model restores)."""
    out = []
    if loss_fn is None:
        out.append(f"no face generator is installed, so faces are left as they are: {INSTALL_HINT}")
    elif loss_fn.name == LossKind.MSE:
        out.append("loss is MSE only: expect blurrier faces than with LPIPS")
    elif "random" in loss_fn.name:
        out.append("LPIPS runs on a random backbone (test mode): its perceptual term is meaningless")
    base = priors.base()
    if base is not None and base.warning():
        out.append(base.warning())
    return out


def default_analyzer(device: torch.device, people=None):
    """The library's face analyzer (detection, landmarks, descriptors) on ``device``: its descriptors are of
    ``people``'s kind (``descriptor_kind()``; dlib's without one), so faces are compared with their own kind."""
    from photokit.faces.analyze import FaceAnalyzer, FaceConfig

    return FaceAnalyzer(FaceConfig(descriptor=descriptor_kind_of(people)), device=str(device))


def descriptor_kind_of(people) -> DescriptorKind:
    """The descriptor kind of a ``PeopleIndex`` (one without a library: dlib's, the default)."""
    kind_of = getattr(people, "descriptor_kind", None)
    return DescriptorKind(kind_of()) if kind_of is not None else DescriptorKind.DLIB128
