"""Classification metrics: the one definition used by training, the gate, `evaluate`,
monitoring and the weekly report.

A metric that is undefined for the data is None, never 0 or NaN: ROC AUC and PR AUC of a
single class, precision when nothing is flagged, recall when nothing is positive, F1 when
either is undefined or both are 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ECE_BINS = 10

Metrics = dict[str, Any]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by size."""
    import numpy as np

    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(y))


def classification_metrics(y: Any, p: Any, threshold: float, flagged: Any = None) -> Metrics:
    """Rows, positives, ROC AUC, PR AUC, Brier, ECE, mean score, and precision, recall
    and F1 of the flags (`flagged`, or `p >= threshold` when not given)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    label = np.asarray(flagged, dtype=bool) if flagged is not None else p >= threshold
    both = len(np.unique(y)) == 2
    tp = int((label & (y == 1)).sum())
    n_flagged, positives = int(label.sum()), int(y.sum())
    precision = tp / n_flagged if n_flagged else None
    recall = tp / positives if positives else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    return {
        "rows": len(y),
        "positives": positives,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else None,
        "ece": expected_calibration_error(y, p) if len(y) else None,
        "mean_score": float(p.mean()) if len(y) else None,
        "threshold": float(threshold),
    }


def defined(metrics: Metrics) -> dict[str, float]:
    """The metrics that have a value, as floats (what MLflow and JSON columns take)."""
    return {key: float(value) for key, value in metrics.items() if value is not None}


def fmt(value: float | None, digits: int = 4) -> str:
    """A metric for people: `n/a` when undefined."""
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"
