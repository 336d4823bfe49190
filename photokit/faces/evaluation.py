"""Measuring clustering against known identities (benchmarks and tests; the product never imports this)."""

from __future__ import annotations


def pairwise_precision_recall(predicted: list, truth: list) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering against true labels.

    A pair of items is predicted-together when both have the same non-empty predicted label
    (``None`` / 0 = unassigned never pairs); it is truly together when the true labels agree.
    """
    pred = list(predicted)
    true = list(truth)
    tp = fp = fn = 0
    for i in range(len(pred)):
        for j in range(i + 1, len(pred)):
            together = pred[i] not in (None, 0) and pred[i] == pred[j]
            same = true[i] == true[j]
            tp += together and same
            fp += together and not same
            fn += (not together) and same
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall
