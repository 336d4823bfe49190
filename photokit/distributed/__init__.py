"""Heavy work on a Ray cluster: workers (actors) that keep their models loaded, claim jobs from the shared
library database (``photokit.jobs``), and report back to the submitting terminal.

Ray is an optional extra (``pip install 'photokit[ray]'``); nothing here imports it at module level.
"""

from __future__ import annotations

from photokit.errors import PhotokitError

RAY_INSTALL_HINT = "Ray is not installed here (every node of a cluster needs it): pip install 'photokit[ray]'"


def require_ray():
    """The ``ray`` module, or a one-line error saying what to install."""
    try:
        import ray
    except ImportError:
        raise PhotokitError(RAY_INSTALL_HINT) from None
    return ray
