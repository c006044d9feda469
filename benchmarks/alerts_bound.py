"""How far could any evening warning go? Two bounds for `make bench-alerts` (`alerts.py`).

1. **The model's own world** (`own_world`): suppose every score were exactly right, each
   flight disrupted with its own probability. A night would still turn out bad by
   chance: its ROC AUC has a sampling spread (Hanley and McNeil's standard error, with
   the expected counts of disrupted and undisrupted flights and the night's expected AUC,
   which the evening knows), and its observed rate a binomial one. Per night, that gives
   the chance of a bad night; a warning that knew those chances exactly (the best any
   evening rule can do there) warns the likeliest nights first, and its expected share
   of bad nights warned at one false alarm in 20 ordinary nights is the bound.
2. **Learned from the year** (`learned`): a gradient-boosted classifier over every
   number the evening check has (each feature's z, the night's averages, the mean risk
   and its z, the expected AUC, Evidently's share, the importance excess), trained on
   eleven months and tested on the twelfth, month by month. Its out-of-fold scores give
   the share of bad nights it would warn at one false alarm in 20, with the threshold
   read off those same scores: optimistic, an upper bound on what a rule fitted on
   past nights would reach.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FALSE_ALARMS = 0.05  # at most one false alarm in 20 ordinary nights


def auc_standard_error(auc: float, positives: float, negatives: float) -> float:
    """Hanley and McNeil (1982): the standard error of a ROC AUC from its value and the
    counts of each class."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def chance_of_bad(
    flights: int, mean_score: float, expected_auc: float, auc_floor: float, miss: float
) -> float:
    """The chance a night turns out bad if its scores are right (see the module)."""
    from scipy.stats import norm

    positives = mean_score * flights
    negatives = flights - positives
    if positives < 2 or negatives < 2 or not math.isfinite(expected_auc):
        return 0.0
    se = auc_standard_error(expected_auc, positives, negatives)
    low_auc = float(norm.cdf((auc_floor - expected_auc) / se)) if se > 0 else 0.0
    rate_sd = math.sqrt(mean_score * (1 - mean_score) / flights)
    off = float(2 * norm.sf(miss / rate_sd)) if rate_sd > 0 else 0.0
    return 1 - (1 - low_auc) * (1 - off)


def best_at_false_alarms(chances: np.ndarray) -> dict[str, float]:
    """Warn the nights likeliest to be bad first, until the expected false alarms reach
    FALSE_ALARMS of the expected ordinary nights: the expected share of bad nights warned."""
    order = np.sort(chances)[::-1]
    bad, ordinary = order.sum(), (1 - order).sum()
    false = np.cumsum(1 - order) / ordinary
    warned = int(np.searchsorted(false, FALSE_ALARMS, side="right"))
    return {
        "bad_nights_by_chance": round(float(bad), 1),
        "share_of_nights": round(float(bad / len(order)), 3),
        "nights_warned": warned,
        "warned_bad_share": round(float(np.cumsum(order)[warned - 1] / bad), 3) if warned else 0.0,
    }


def own_world(nights: Any, auc_floor: float, miss: float) -> dict[str, float]:
    """Bound 1 over `nights` (columns flights, mean_score, expected_auc)."""
    chances = np.array(
        [
            chance_of_bad(
                int(r.flights), float(r.mean_score), float(r.expected_auc), auc_floor, miss
            )
            for r in nights.itertuples()
        ]
    )
    return best_at_false_alarms(chances)


def learned(numbers: Any, bad: np.ndarray, months: np.ndarray) -> dict[str, float]:
    """Bound 2: `numbers` is one row of evening numbers per night, `bad` the outcome,
    `months` each night's month (the folds)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    x = np.nan_to_num(np.asarray(numbers, dtype="float64"))
    bad = np.asarray(bad, dtype=bool)
    scores = np.zeros(len(bad))
    for month in np.unique(months):
        test = months == month
        if bad[~test].all() or not bad[~test].any():
            scores[test] = bad[~test].mean()
            continue
        model = HistGradientBoostingClassifier(max_depth=3, max_iter=150, learning_rate=0.05)
        model.fit(x[~test], bad[~test])
        scores[test] = model.predict_proba(x[test])[:, 1]
    ordinary = np.sort(scores[~bad])[::-1]
    allowed = math.floor(FALSE_ALARMS * len(ordinary))
    threshold = ordinary[allowed] if allowed < len(ordinary) else -np.inf
    warned = scores > threshold
    return {
        "out_of_fold_auc": round(float(roc_auc_score(bad, scores)), 3)
        if 0 < bad.sum() < len(bad)
        else float("nan"),
        "false_alarms": int((warned & ~bad).sum()),
        "ordinary_nights": int((~bad).sum()),
        "warned_bad": int((warned & bad).sum()),
        "bad_nights": int(bad.sum()),
        "warned_bad_share": round(float((warned & bad).sum() / max(bad.sum(), 1)), 3),
    }
