"""Anchors: every reference inverted into one W code (MyStyle sec. 3), batch by batch, resumable.

Finished batches are saved to ``work/anchors.partial.safetensors`` under a signature of everything that
determines them (base generator, references, loss, projector settings), so an interrupted build loses at
most the batch in progress and a changed build never reuses stale anchors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from photokit.prior.meta import ANCHORS_PARTIAL
from photokit.prior.projector import ProjectorConfig, balanced_batch_size, invert_w
from photokit.prior.refs import ReferenceSet
from photokit.prior.storage import load_safetensors, save_safetensors
from photokit.reporting import NULL_REPORTER, Reporter, reported_task
from photokit.stylegan2.base import BaseGenerator
from photokit.stylegan2.network import w_statistics


def _anchor_signature(base: BaseGenerator, refs: ReferenceSet, projector: ProjectorConfig, loss_kind: str) -> str:
    data = {
        "base": base.fingerprint,
        "faces": [f["face_id"] for f in refs.faces],
        "loss": loss_kind,
        "projector": projector.to_json(),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def compute_anchors(
    base: BaseGenerator,
    refs: ReferenceSet,
    targets: torch.Tensor,
    loss_fn,
    projector: ProjectorConfig,
    loss_kind: str,
    work: Path,
    reporter: Reporter = NULL_REPORTER,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[torch.Tensor, list[float], list[float]]:
    """Invert every reference, batch by batch; finished batches are saved, so an interruption loses at
    most the batch in progress. Returns (anchors (N, w_dim), start losses, final losses)."""
    G = base.generator
    partial = work / ANCHORS_PARTIAL
    signature = _anchor_signature(base, refs, projector, loss_kind)
    done = torch.zeros(0, G.w_dim)
    start_losses: list[float] = []
    final_losses: list[float] = []
    if partial.is_file():
        tensors, meta = load_safetensors(partial)
        if meta.get("signature") == signature:
            done = tensors["anchors"]
            start_losses = json.loads(meta["start_losses"])
            final_losses = json.loads(meta["final_losses"])
    n = len(targets)
    size = balanced_batch_size(n, projector.batch_size)
    w_stats = w_statistics(G, projector.w_avg_samples, targets.device, projector.seed)
    with reported_task(
        reporter, "anchors", "anchors (W inversion)", n * projector.steps, len(done) * projector.steps
    ) as task:
        while len(done) < n:
            lo, hi = len(done), min(n, len(done) + size)
            step = _inversion_step_callback(reporter, task, hi - lo, lo // size + 1, on_step)
            seeds = [projector.seed + i for i in range(lo, hi)]  # reference i's anchor: the same in any batch
            result = invert_w(G, targets[lo:hi], loss_fn, projector, w_stats=w_stats, on_step=step, seeds=seeds)
            skipped = projector.steps - max(result.steps)  # the whole batch froze early (fast preset)
            if skipped:
                reporter.task_advanced(task, (hi - lo) * skipped, f"batch {lo // size + 1} converged")
            done = torch.cat([done, result.ws.cpu()])
            start_losses += result.start_loss
            final_losses += result.final_loss
            save_safetensors(
                partial,
                {"anchors": done},
                {
                    "signature": signature,
                    "start_losses": json.dumps(start_losses),
                    "final_losses": json.dumps(final_losses),
                },
            )
    return done.to(targets.device), start_losses, final_losses


def _inversion_step_callback(
    reporter: Reporter, task: str, batch_size: int, batch: int, on_step: Callable[[int, float], None] | None
) -> Callable[[int, float], None]:
    def step(i: int, loss: float) -> None:
        reporter.task_advanced(task, batch_size, f"batch {batch}, loss {loss:.4f}")
        if on_step is not None:
            on_step(i, loss)

    return step
