"""Measuring clustering against known identities (benchmarks and tests; the product never imports this)."""

from __future__ import annotations


def pairwise_precision_recall(predicted: list, truth: list) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering against true labels (counted, not enumerated).

    A pair of items is predicted-together when both have the same non-empty predicted label
    (``None`` / 0 = unassigned never pairs); it is truly together when the true labels agree.
    """
    from collections import Counter

    def pairs(counter: Counter) -> int:
        return sum(c * (c - 1) // 2 for c in counter.values())

    placed = [(p, t) for p, t in zip(predicted, truth) if p not in (None, 0)]
    together = pairs(Counter(p for p, _ in placed))
    tp = pairs(Counter(placed))
    same = pairs(Counter(truth))
    precision = tp / together if together else 1.0
    recall = tp / same if same else 1.0
    return precision, recall
