"""Edit directions in W, of three kinds, for ``photokit edit`` (MyStyle sec. 3.4 personalises any of them):

- **personal**: fitted on the person's own anchors against what photokit measured on the matching
  reference photos (``attributes.py``): ridge regression ``y ~ b + (w - w_mean) . c`` in its dual (n x n)
  form, the ridge chosen by closed-form leave-one-out error; R^2 is reported both fitted and
  cross-validated (leave-one-out), and an attribute with too few values, too little spread or no
  predictive fit is refused with the reason. The edit direction is ``c / |c|^2``: an amount of 1 changes
  the fitted attribute by one of its units (+10 on ``years`` = ten years older, as this person aged).
- **SeFa** (Shen and Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021): the top
  eigenvectors of ``A^T A`` where A stacks the style affine weights of the base generator's synthesis
  layers (to-RGB layers excluded; every style channel's row normalised to unit length, as the authors'
  code does). Unit vectors: amounts are distances in W. Signs are made deterministic (largest entry > 0).
- **file**: directions a user installed (``photokit models install NAME --from FILE.npy``), e.g.
  InterFaceGAN boundaries; amounts are multiples of the stored vector.

Pure math on tensors plus the small ``DirectionCatalog`` that names them and refuses unknown names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import torch
from torch import nn

from photokit.errors import PhotokitError
from photokit.prior.attributes import ATTRIBUTES, MIN_SPREAD

SEFA_COUNT = 10  # numbered directions listed per generator
MIN_FIT_ANCHORS = 5  # references with a value an attribute needs
MIN_CV_R2 = 0.1  # below it the anchors do not predict the attribute: refused


class DirectionKind(StrEnum):
    PERSONAL = "personal"
    SEFA = "sefa"
    FILE = "file"


@dataclass
class Direction:
    name: str
    kind: DirectionKind
    vector: torch.Tensor | None  # (w_dim,) or (num_ws, w_dim); None when refused
    unit: str  # what an amount of 1 means
    detail: dict = field(default_factory=dict)
    refused: str | None = None  # why it cannot be used

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "usable": self.refused is None,
            "unit": self.unit,
            "refused": self.refused,
            "shape": None if self.vector is None else list(self.vector.shape),
            **self.detail,
        }


# -- personal directions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RidgeFit:
    coefficients: torch.Tensor  # c (w_dim,): d attribute / d w
    r2_fit: float
    r2_cv: float  # leave-one-out
    ridge: float
    count: int


def fit_ridge(anchors: torch.Tensor, values: torch.Tensor) -> RidgeFit:
    """Ridge regression of ``values`` (n,) on ``anchors`` (n, w_dim) in dual form.

    The ridge is the largest whose leave-one-out error is within one standard error of the best (the
    "one-standard-error rule", Hastie et al., Elements of Statistical Learning, sec. 7.10): with fewer
    anchors than W dimensions a small ridge predicts as well but points partly along the anchors' noise,
    and an edit wants the cleanest direction that still predicts.
    """
    x = anchors.double() - anchors.double().mean(dim=0)
    y = values.double() - values.double().mean()
    n = x.shape[0]
    gram = x @ x.T
    scale = float(torch.trace(gram)) / n or 1.0
    total = float(y @ y)
    eye = torch.eye(n, dtype=torch.float64)
    fits = []
    for ridge in scale * torch.logspace(-4, 2, 25, dtype=torch.float64):
        inv = torch.linalg.inv(gram + ridge * eye)
        hat = gram @ inv + 1.0 / n  # the intercept's share
        residual = y - gram @ inv @ y
        loo = (residual / (1.0 - hat.diagonal()).clamp_min(1e-9)).pow(2)
        fits.append((float(ridge), inv, float(loo.sum()), float(loo.std()) * n**0.5, float(residual @ residual)))
    best = min(fits, key=lambda f: f[2])
    ridge, inv, error, _, fitted = max((f for f in fits if f[2] <= best[2] + best[3]), key=lambda f: f[0])
    coefficients = x.T @ (inv @ y)
    return RidgeFit(coefficients.float(), 1.0 - fitted / total, 1.0 - error / total, ridge, n)


def personal_direction(name: str, anchors: torch.Tensor, values: list[float | None]) -> Direction:
    """Fit one attribute on the anchors that have a value, or say why it cannot be done."""
    unit = ATTRIBUTES[name]
    keep = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    detail = {"anchors": len(keep), "of_anchors": len(values)}
    refused = Direction(name, DirectionKind.PERSONAL, None, unit, detail)
    if len(keep) < MIN_FIT_ANCHORS:
        refused.refused = f"only {len(keep)} of {len(values)} references have a value (needs {MIN_FIT_ANCHORS})"
        return refused
    y = torch.tensor([values[i] for i in keep], dtype=torch.float64)
    spread = float(y.std())
    detail["spread"] = round(spread, 3)
    if spread < MIN_SPREAD[name]:
        refused.refused = f"too little spread in the references (std {spread:.2f} < {MIN_SPREAD[name]:g} {unit})"
        return refused
    fit = fit_ridge(anchors[keep], y)
    detail.update(r2=round(fit.r2_cv, 3), r2_fit=round(fit.r2_fit, 3))
    norm2 = float(fit.coefficients.double().pow(2).sum())
    if fit.r2_cv < MIN_CV_R2 or norm2 <= 0:
        refused.refused = f"the anchors do not predict it (cross-validated R^2 {fit.r2_cv:.2f} < {MIN_CV_R2})"
        return refused
    return Direction(name, DirectionKind.PERSONAL, (fit.coefficients.double() / norm2).float(), unit, detail)


# -- SeFa ----------------------------------------------------------------------------------------------
def style_affine_weights(generator: nn.Module) -> torch.Tensor:
    """A: the style affine weights of every synthesis conv layer stacked, (sum of channels, w_dim)."""
    from photokit.stylegan2.layers import SynthesisLayer

    synthesis = getattr(generator, "synthesis", generator)
    rows = [m.affine.weight.detach().float().cpu() for m in synthesis.modules() if isinstance(m, SynthesisLayer)]
    if not rows:
        raise PhotokitError("the generator has no style layers to factorise")
    return torch.cat(rows)


def sefa(weights: torch.Tensor, count: int = SEFA_COUNT) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``count`` eigenvectors (rows, unit length) and eigenvalues of A^T A, rows of A normalised."""
    a = weights.double()
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(a.T @ a)  # ascending
    order = torch.argsort(values, descending=True)[:count]
    top = vectors[:, order].T
    signs = torch.sign(top.gather(1, top.abs().argmax(dim=1, keepdim=True)))
    return (top * signs).float(), values[order].float()


def sefa_directions(generator: nn.Module, count: int = SEFA_COUNT) -> list[Direction]:
    vectors, values = sefa(style_affine_weights(generator), count)
    return [
        Direction(f"sefa-{k}", DirectionKind.SEFA, v, "W distance (unit vector)", {"eigenvalue": round(float(e), 4)})
        for k, (v, e) in enumerate(zip(vectors, values))
    ]


# -- files ---------------------------------------------------------------------------------------------
def file_direction(name: str, array: np.ndarray, w_dim: int, num_ws: int, source: str = "") -> Direction:
    """An installed direction, checked against the generator it is used with."""
    vector = torch.from_numpy(np.asarray(array, dtype=np.float32))
    if vector.dim() == 2 and vector.shape[0] == 1:
        vector = vector[0]  # InterFaceGAN saves boundaries as (1, w_dim)
    detail = {"file": source}
    unit = "multiples of the stored vector"
    expected = f"({w_dim},) or ({num_ws}, {w_dim})"
    if vector.shape not in (torch.Size([w_dim]), torch.Size([num_ws, w_dim])):
        return Direction(name, DirectionKind.FILE, None, unit, detail, f"shape {tuple(vector.shape)}, not {expected}")
    detail["norm"] = round(float(vector.norm()), 4)
    return Direction(name, DirectionKind.FILE, vector, unit, detail)


# -- the catalogue ---------------------------------------------------------------------------------------
@dataclass
class DirectionCatalog:
    directions: list[Direction]

    def usable(self) -> list[Direction]:
        return [d for d in self.directions if d.refused is None]

    def get(self, name: str) -> Direction:
        """The usable direction called ``name``; a one-line error otherwise, listing what is available."""
        found = next((d for d in self.directions if d.name == name), None)
        available = ", ".join(d.name for d in self.usable()) or "none"
        if found is None:
            raise PhotokitError(f"unknown edit direction '{name}': available: {available}")
        if found.refused:
            raise PhotokitError(f"edit direction '{name}' is not available: {found.refused} (available: {available})")
        return found

    def to_json(self) -> list[dict]:
        return [d.to_json() for d in self.directions]


def build_catalog(
    anchors: torch.Tensor,
    measures: dict[str, list[float | None]],
    base: nn.Module | None,
    files: dict[str, tuple[np.ndarray, str]],
    num_ws: int,
    sefa_count: int = SEFA_COUNT,
) -> DirectionCatalog:
    """All directions for one person: personal fits, SeFa of ``base`` (when given), installed files."""
    directions = [personal_direction(name, anchors, measures.get(name, [])) for name in ATTRIBUTES]
    if base is not None:
        directions += sefa_directions(base, sefa_count)
    w_dim = int(anchors.shape[1])
    for name, (array, source) in sorted(files.items()):
        directions.append(file_direction(name, array, w_dim, num_ws, source))
    return DirectionCatalog(directions)


# -- assembling a person's directions (I/O at the edge) ---------------------------------------------
def installed_file_directions(models_root) -> tuple[dict[str, tuple[np.ndarray, str]], list[Direction]]:
    """The store's direction files, read safely; damaged ones come back as refused directions."""
    from photokit.store.directions import installed_directions, read_direction

    files, broken = {}, []
    for name, path in installed_directions(models_root).items():
        try:
            files[name] = (read_direction(path), str(path))
        except PhotokitError as exc:
            broken.append(Direction(name, DirectionKind.FILE, None, "", {"file": str(path)}, str(exc)))
    return files, broken


def person_catalog(db, anchors: torch.Tensor, meta: dict, base: nn.Module | None, models_root, num_ws: int):
    """Every direction for one person's prior: ``meta`` is its prior.json (references in anchor order)."""
    from photokit.prior.attributes import reference_measures

    face_ids = [int(r["face_id"]) for r in meta.get("references", [])]
    measures = reference_measures(db, face_ids) if db is not None and face_ids else {}
    files, broken = installed_file_directions(models_root)
    catalog = build_catalog(anchors.detach().float().cpu(), measures, base, files, num_ws)
    catalog.directions.extend(broken)
    return catalog


def stored_anchors(settings, person_id: int) -> torch.Tensor:
    """A prior's anchors without loading its generator (for summaries)."""
    from safetensors.torch import load_file

    from photokit.prior.meta import ANCHORS_FILE, prior_dir

    path = prior_dir(settings, person_id) / ANCHORS_FILE
    try:
        return load_file(str(path))["anchors"].float()
    except Exception as exc:  # a damaged file: the summary says so, loading the prior would refuse it
        raise PhotokitError(f"cannot read {path.name} of person {person_id}'s prior ({type(exc).__name__})") from None


def directions_summary(db, settings, person_id: int) -> dict:
    """What ``photokit edit`` can do for a person, without loading any generator (for ``people show``)."""
    from photokit.prior.meta import has_prior, read_prior_meta
    from photokit.store.directions import installed_directions
    from photokit.store.models import ModelStore

    if not has_prior(settings, person_id):
        return {"prior": False}
    try:
        anchors, meta = stored_anchors(settings, person_id), read_prior_meta(settings, person_id)
    except PhotokitError as exc:  # a damaged prior: say so, the rest of the summary still shows
        return {"prior": True, "error": str(exc)}
    catalog = person_catalog(db, anchors, meta, None, settings.models_dir, 1)
    personal = [d for d in catalog.directions if d.kind is DirectionKind.PERSONAL]
    has_base = ModelStore(settings).default_generator_path() is not None
    return {
        "prior": True,
        "personal": [d.name for d in personal if d.refused is None],
        "refused": {d.name: d.refused for d in personal if d.refused},
        "sefa": [f"sefa-{k}" for k in range(SEFA_COUNT)] if has_base else [],
        "files": sorted(installed_directions(settings.models_dir)),
    }
