"""The base generator every personal prior and every restoration starts from.

One place decides whether it is a real face model: only a generator installed through
``photokit models`` under a catalogue name (which checks its architecture) counts, and never one
built by ``build_tiny_generator``. Reports must say so plainly when it is not (never pretend a
random generator restores faces).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from photokit.errors import PhotokitError
from photokit.settings import Settings

INSTALL_HINT = (
    "install a pretrained face generator from the model catalog (ffhq-256, or ffhq-1024; a file you "
    "downloaded works too)"
)


def is_test_generator(generator: nn.Module) -> bool:
    """Built by ``build_tiny_generator`` (random weights, for tests and demos)."""
    return getattr(getattr(generator, "config", None), "source", "") == "tiny"


@dataclass
class BaseGenerator:
    generator: nn.Module
    name: str  # catalogue name ('ffhq-1024') or the file name
    path: Path | None = None
    pretrained: bool = False  # an installed catalogue face generator (not a random-weight fixture or unknown file)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        """Identity of the weights (priors are deltas against exactly these)."""
        if self._fingerprint is None:
            from photokit.stylegan2 import state  # looked up at call time, so tests can count the hashing

            self._fingerprint = state.generator_fingerprint(self.generator)
        return self._fingerprint

    def to_json(self) -> dict:
        cfg = self.generator.config
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "fingerprint": self.fingerprint,
            "resolution": cfg.resolution,
            "w_dim": cfg.w_dim,
            "num_ws": self.generator.num_ws,
            "source": cfg.source,
            "pretrained_face_model": self.pretrained,
        }

    def warning(self) -> str | None:
        if self.pretrained:
            return None
        if is_test_generator(self.generator):
            return (
                f"base generator {self.name} has random weights (a test generator): its faces are noise, "
                f"so this is NOT a real face prior or restoration; {INSTALL_HINT}"
            )
        return (
            f"base generator {self.name} is not an installed FFHQ model from the model catalog: "
            "if its weights are random (test fixtures are), this is NOT a real face prior"
        )


def resolve_base(settings: Settings, device: torch.device, generator_path: str | Path | None = None) -> BaseGenerator:
    """The installed default face generator, or ``generator_path`` when given (MissingModelError if none)."""
    from photokit.store.models import ModelStore
    from photokit.stylegan2 import load_generator

    store = ModelStore(settings)
    installed = {}
    for name in ("ffhq-1024", "ffhq-256"):
        p = store.installed_path(name)
        if p is not None:
            installed[p.resolve()] = name
    if generator_path is None:
        path = store.require_generator()
    else:
        path = Path(generator_path).expanduser()
        if not path.is_file():
            raise PhotokitError(f"generator file not found: {path}")
    generator = load_generator(path, device)
    name = installed.get(path.resolve(), path.name)
    pretrained = path.resolve() in installed and not is_test_generator(generator)
    return BaseGenerator(generator, name, path, pretrained)
