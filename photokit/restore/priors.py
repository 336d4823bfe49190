"""Where the restoration pipeline gets its priors and people from.

The pipeline asks two small interfaces, so tests can hand it a tiny generator with random anchors and
the product hands it the model store and the library database:

- ``PriorSource``: ``base()`` -> the base generator (the generic W+ prior) or None; ``personal(person_id)``
  -> that person's ``PersonalPrior`` or None.
- ``PeopleIndex``: ``identify(embedding)`` -> (person id, name, distance); ``resolve(ref)`` -> (id, name);
  optionally ``embeddings(person_id)`` -> the person's face descriptors (the identity check's references).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from photokit.errors import MissingModelError, PhotokitError, Remedy
from photokit.faces.vocab import DescriptorKind
from photokit.settings import Settings
from photokit.stylegan2.base import INSTALL_HINT, BaseGenerator, resolve_base


@dataclass
class PriorChoice:
    """What one face is projected into."""

    kind: str  # 'personal' or 'generic'
    generator: nn.Module
    anchors: torch.Tensor | None  # (N, w_dim) for 'personal'
    name: str  # e.g. "prior of Obama (12 anchors)" or "generic ffhq-256 W+"


class PriorSource(Protocol):
    def base(self) -> BaseGenerator | None: ...

    def personal(self, person_id: int) -> Any | None: ...


class StorePriors:
    """Priors from the model store (``photokit models install``, ``photokit prior build``), loaded once.

    ``owner_of(person_id)`` (``photokit.prior.storage.person_owner``) lets loading refuse a prior that was
    built for another library or for an earlier person with the same id.
    """

    def __init__(
        self, settings: Settings, device: torch.device, owner_of: Callable[[int], dict | None] | None = None
    ) -> None:
        self.settings = settings
        self.device = device
        self.owner_of = owner_of
        self._base: BaseGenerator | bool | None = False
        self._personal: dict[int, Any] = {}

    def base(self) -> BaseGenerator | None:
        if self._base is False:
            try:
                self._base = resolve_base(self.settings, self.device)
            except MissingModelError:
                self._base = None
        return self._base

    def personal(self, person_id: int) -> Any | None:
        """That person's prior, None without one; a prior that cannot be loaded raises its one-line
        PhotokitError, remembered, so an album does not re-read and re-hash its files for every face."""
        if person_id not in self._personal:
            try:
                self._personal[person_id] = self._load_personal(person_id)
            except PhotokitError as exc:
                self._personal[person_id] = exc
        cached = self._personal[person_id]
        if isinstance(cached, PhotokitError):
            raise cached.with_traceback(None)
        return cached

    def _load_personal(self, person_id: int) -> Any | None:
        from photokit.prior.meta import has_prior
        from photokit.prior.storage import load_personal_prior

        if not has_prior(self.settings, person_id):
            return None
        owner = self.owner_of(person_id) if self.owner_of else None
        # The base (and its fingerprint, hashed once) is shared by every person's prior.
        return load_personal_prior(self.settings, person_id, self.device, base_generator=self.base(), owner=owner)


@dataclass
class StaticPriors:
    """Priors given directly (tests, benchmarks, library users)."""

    base_generator: BaseGenerator | None = None
    priors: dict[int, Any] = field(default_factory=dict)

    def base(self) -> BaseGenerator | None:
        return self.base_generator

    def personal(self, person_id: int) -> Any | None:
        return self.priors.get(person_id)


def choose_prior(priors: PriorSource, person_id: int | None, person_name: str | None) -> tuple[PriorChoice | None, str]:
    """The prior a face is restored with, or None and the reason it is left alone."""
    prior = priors.personal(person_id) if person_id is not None else None
    if prior is not None:
        label = f"personal prior of {person_name or f'person {person_id}'} ({prior.anchors.shape[0]} anchors)"
        return PriorChoice("personal", prior.generator, prior.anchors, label), ""
    base = priors.base()
    who = person_name or (f"person {person_id}" if person_id is not None else "this unknown face")
    if base is None:
        return None, f"no personal prior for {who} and no base generator: {INSTALL_HINT}"
    return PriorChoice("generic", base.generator, None, f"generic prior ({base.name} W+)"), ""


class PeopleIndex(Protocol):
    def identify(self, embedding: np.ndarray) -> tuple[int | None, str | None, float]: ...

    def resolve(self, ref: str) -> tuple[int, str | None]: ...


class DatabasePeople:
    """The library's people (``photokit scan`` + ``photokit people``)."""

    def __init__(self, db) -> None:
        self.db = db

    def identify(self, embedding: np.ndarray) -> tuple[int | None, str | None, float]:
        from photokit.faces.people import identify

        with self.db.session(write=False) as session:
            person, distance = identify(session, embedding)
            return (person.id, person.name, distance) if person is not None else (None, None, distance)

    def descriptor_kind(self) -> DescriptorKind:
        """The library's active descriptor kind: faces to identify must be described by it."""
        from photokit.faces.descriptors import active_kind

        with self.db.session(write=False) as session:
            return active_kind(session)

    def resolve(self, ref: str) -> tuple[int, str | None]:
        from photokit.faces.people import resolve_person

        with self.db.session(write=False) as session:
            person = resolve_person(session, ref)
            return person.id, person.name

    def embeddings(self, person_id: int) -> np.ndarray:
        """The person's face descriptors (M, D) of the library's active kind, faces the user rejected left
        out: the identity check's reference faces."""
        from sqlalchemy import select

        from photokit.db.models import Face
        from photokit.faces.descriptors import active_kind
        from photokit.faces.people import embedding_from_bytes

        with self.db.session() as session:
            kind = active_kind(session)
            rows = session.scalars(
                select(Face.embedding).where(
                    Face.person_id == int(person_id),
                    Face.user_rejected.is_(False),
                    Face.embedding.is_not(None),
                    Face.descriptor_kind == str(kind),
                )
            ).all()
        return np.stack([embedding_from_bytes(r, kind) for r in rows]) if rows else np.zeros((0, kind.dim), np.float32)


class NoPeople:
    """No library: every face is unknown (the generic prior), and --person cannot be resolved."""

    def identify(self, embedding: np.ndarray) -> tuple[int | None, str | None, float]:
        return None, None, float("inf")

    def resolve(self, ref: str) -> tuple[int, str | None]:
        raise PhotokitError(f"unknown person '{ref}'", Remedy.SCAN_LIBRARY)

    def embeddings(self, person_id: int) -> np.ndarray:
        return np.zeros((0, DescriptorKind.DLIB128.dim), np.float32)

    def descriptor_kind(self) -> DescriptorKind:
        return DescriptorKind.DLIB128  # no library: the default descriptor


__all__ = [
    "DatabasePeople",
    "NoPeople",
    "PeopleIndex",
    "PriorChoice",
    "PriorSource",
    "StaticPriors",
    "StorePriors",
    "choose_prior",
]
