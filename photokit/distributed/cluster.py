"""Connecting to a Ray cluster (or starting a local one) and sizing its workers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from photokit.distributed import require_ray
from photokit.errors import PhotokitError

LOCAL = "local"  # `--ray` without an address: RAY_ADDRESS if set, else a cluster on this machine


@dataclass(frozen=True)
class ClusterInfo:
    address: str
    cpus: float
    gpus: float
    nodes: int

    def describe(self) -> str:
        gpus = f", {self.gpus:g} GPUs" if self.gpus else ""
        return f"Ray cluster {self.address}: {self.nodes} node(s), {self.cpus:g} CPUs{gpus}"


def connect(address: str | None = LOCAL, num_cpus: int | None = None) -> ClusterInfo:
    """Join the cluster at ``address`` (``ray://host:10001`` or ``host:6379``), or start/join a local one.

    Nothing reaches the network beyond the cluster: no dashboard, no usage statistics."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        target = None if address in (None, "", LOCAL) else address
        kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if target is None:
            kwargs["num_cpus"] = num_cpus
        try:
            ray.init(address=target, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PhotokitError(f"cannot reach the Ray cluster at {address}: {first}") from None
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    context = ray.get_runtime_context()
    where = getattr(context, "gcs_address", None) or address or LOCAL
    return ClusterInfo(str(where), resources.get("CPU", 0.0), resources.get("GPU", 0.0), nodes)


def worker_count(info: ClusterInfo, requested: int | None, gpu: bool) -> int:
    """One worker per GPU when the work runs on GPUs, else one per CPU (each worker runs one job at a time)."""
    available = int(info.gpus if gpu else info.cpus)
    if requested is not None:
        if requested < 1:
            raise PhotokitError("the number of Ray workers must be 1 or more")
        return requested
    if available < 1:
        raise PhotokitError(f"the {info.describe()} has no {'GPU' if gpu else 'CPU'} to run workers on")
    return available


def wants_gpu(device: str, info: ClusterInfo) -> bool:
    """Workers request a GPU (``num_gpus=1``) when the cluster has GPUs and the device allows them."""
    return info.gpus >= 1 and device in ("auto", "cuda")
