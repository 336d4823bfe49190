"""The prior layer's closed vocabularies, importable without loading torch (the CLI's option types)."""

from __future__ import annotations

from enum import StrEnum


class Preset(StrEnum):
    """A build schedule."""

    AUTO = "auto"  # paper on a GPU, fast elsewhere
    PAPER = "paper"  # the published schedule (100 references, 1000 inversion steps, 350 epochs)
    FAST = "fast"  # CPU-sized: fewer, most diverse references and steps, shrunk to fit a time budget


class PriorKind(StrEnum):
    """How a prior stores its change against the base generator."""

    FULL = "full"  # a delta for every synthesis tensor
    LOWRANK = "lowrank"  # rank-R adapter factors (a compact prior)


class EditPolicy(StrEnum):
    """What ``photokit edit`` does when an edit needs more dilation than beta (MyStyle appendix B.4)."""

    STOP = "stop"  # stop where the straight line leaves P_beta
    CONTINUE = "continue"  # go the whole way, even out of P_beta (the prior fades)
    PROJECT = "project"  # go the whole way, then project back onto P_beta


class LrDecay(StrEnum):
    """How a learning rate falls after its warm-up."""

    CONSTANT = "constant"  # stays at its peak (MyStyle's tuning)
    COSINE = "cosine"  # half a cosine down to 0 at the last step


class ProjectionOptimizer(StrEnum):
    """How a projection searches its latent space (``photokit.restore.optimize``)."""

    AUTO = "auto"  # the device's default: Adam on a GPU, the CPU default elsewhere
    ADAM = "adam"  # the paper's: Adam, 1000 steps
    LBFGS = "lbfgs"  # quasi-Newton with a strong-Wolfe line search, stopped when the loss curve is flat
    GAUSS_NEWTON = "gauss-newton"  # L-BFGS from a relaxed eq. (7), then Levenberg-Marquardt (restore/gauss_newton.py)
