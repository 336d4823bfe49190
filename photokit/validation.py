"""Checks for numbers that come from users (CLI options, web forms, job payloads): finite and in range.

Library functions call these themselves, so every front end (CLI, web app, Ray workers) gets the same
refusal: a one-line ``PhotokitError`` naming the value, never a NaN that silently spreads through a result.
"""

from __future__ import annotations

import math

from photokit.errors import PhotokitError


def checked_number(
    name: str, value: float, low: float | None = None, high: float | None = None, *, low_open: bool = False
) -> float:
    """``value`` as a float when it is finite and within [low, high] (``(low, high]`` with ``low_open``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PhotokitError(f"{name} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise PhotokitError(f"{name} must be a finite number (got {value!r})")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and number > high
    if too_low or too_high:
        lower = "" if low is None else f"{'above' if low_open else 'at least'} {low:g}"
        upper = "" if high is None else f"at most {high:g}"
        raise PhotokitError(f"{name} must be {' and '.join(p for p in (lower, upper) if p)} (got {value!r})")
    return number
