"""Sampling a person's space (MyStyle sec. 5.1, appendix B.1): new faces of that person from P0 or P_beta.

P0 is the anchors' convex hull, which has no density to sample from. B.1's protocol: pick three anchors at
random and give them weights drawn uniformly from [0, 1), normalised to sum 1; the other anchors get 0.

With a dilation ``beta > 0`` photokit extends the same protocol (the paper only samples P0): the three
draws are read as *shifted* coordinates ``alpha + beta`` and rescaled to sum ``1 + 3 beta``, i.e. the
picked triangle grows about its centroid by ``1 + 3 beta``. Weights then reach down to ``-beta``, still
sum to 1, and beta = 0 is exactly B.1. This is ``alpha.normalise_rows``' rescaling, applied to the three
picked anchors.

Pure tensor math, seeded by a ``torch.Generator``; rendering and files are at the edges (``render_codes``).
"""

from __future__ import annotations

import torch

from photokit.prior.alpha import normalise_rows
from photokit.reporting import NULL_REPORTER, Reporter

PICKS = 3  # anchors per sample (B.1)


def sample_weights(
    num_anchors: int, count: int, generator: torch.Generator, beta: float = 0.0, picks: int = PICKS
) -> torch.Tensor:
    """(count, N) barycentric weights: ``picks`` anchors per row, uniform draws, sum 1, each >= -beta.

    With fewer anchors than ``picks``, every anchor is picked.
    """
    if num_anchors < 1:
        raise ValueError("sampling needs at least one anchor")
    k = min(picks, num_anchors)
    weights = torch.zeros(count, num_anchors, dtype=torch.float64)
    for row in range(count):
        chosen = torch.randperm(num_anchors, generator=generator)[:k]
        draws = torch.rand(k, generator=generator, dtype=torch.float64)
        draws = draws.clamp_min(1e-12)  # [0, 1): an all-zero draw has no direction to normalise
        weights[row, chosen] = normalise_rows((draws - beta).unsqueeze(0), beta)[0]
    return weights


def codes_from_weights(weights: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Eq. (3): w = sum_i alpha_i w_i, (count, N) x (N, w_dim) -> (count, w_dim)."""
    return (weights.to(anchors.dtype)) @ anchors


@torch.no_grad()
def render_codes(generator: torch.nn.Module, codes: torch.Tensor, batch: int = 4, on_batch=None) -> torch.Tensor:
    """Images (count, 3, R, R) in [-1, 1] for W codes (count, w_dim), the same w on every layer."""
    device = next(generator.parameters()).device
    images = []
    for start in range(0, codes.shape[0], batch):
        chunk = codes[start : start + batch].to(device)
        ws = chunk.unsqueeze(1).repeat(1, int(generator.num_ws), 1)
        images.append(generator.synthesis(ws, noise_mode="const").float().cpu())
        if on_batch is not None:
            on_batch(len(chunk))
    return torch.cat(images) if images else torch.zeros(0, 3, generator.resolution, generator.resolution)


def sample_sheet(
    prior, out, count: int = 16, beta: float = 0.0, seed: int = 0, reporter: Reporter = NULL_REPORTER
) -> dict:
    """Sample ``count`` faces of ``prior`` (a PersonalPrior) into a PNG contact sheet at ``out``, atomically.

    The same seed gives the same sheet. The cost estimate (one timed face) is reported before the rest.
    """
    import time
    from pathlib import Path

    from PIL import Image

    from photokit.store.atomic import atomic_path
    from photokit.stylegan2.sampling import images_to_grid

    anchors = prior.anchors.detach().float()
    weights = sample_weights(anchors.shape[0], count, torch.Generator().manual_seed(int(seed)), beta)
    codes = codes_from_weights(weights, anchors.cpu())
    started = time.perf_counter()
    first = render_codes(prior.generator, codes[:1])
    per_image = time.perf_counter() - started
    reporter.note(f"sampling {count} faces at {per_image:.3g} s/face = about {per_image * count:.0f} s")
    reporter.task_started("sample", "sampling faces", total=count, completed=1)
    rest = render_codes(prior.generator, codes[1:], on_batch=lambda n: reporter.task_advanced("sample", n))
    reporter.task_finished("sample")
    images = torch.cat([first, rest]) if count > 1 else first
    with atomic_path(Path(out)) as tmp:
        Image.fromarray(images_to_grid(images)).save(tmp, format="PNG")
    refs = [r.get("face_id") for r in prior.meta.get("references", [])]
    samples = []
    for row in weights:
        picked = [int(i) for i in torch.nonzero(row).flatten()]
        samples.append(
            {
                "anchors": picked,
                "weights": [round(float(row[i]), 6) for i in picked],
                "face_ids": [refs[i] if i < len(refs) else None for i in picked],
            }
        )
    return {
        "out": str(out),
        "count": count,
        "beta": beta,
        "seed": int(seed),
        "resolution": int(prior.generator.resolution),
        "seconds": round(time.perf_counter() - started, 3),
        "samples": samples,
    }
