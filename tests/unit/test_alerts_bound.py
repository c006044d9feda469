"""The bounds of `make bench-alerts` (benchmarks/alerts_bound.py): how far any evening
warning could go. No database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bound():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import alerts_bound

        yield alerts_bound


def test_the_auc_standard_error_matches_simulated_nights(bound):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    scores = rng.beta(2, 5, 900)
    drawn = [roc_auc_score(rng.random(900) < scores, scores) for _ in range(400)]
    from nightscore.monitoring.early_warning import expected_auc, score_histogram

    auc = expected_auc(*score_histogram(scores))
    se = bound.auc_standard_error(auc, scores.sum(), (1 - scores).sum())
    assert se == pytest.approx(np.std(drawn), rel=0.2)


def test_a_night_ranked_far_above_the_floor_is_rarely_bad_by_chance(bound):
    good = bound.chance_of_bad(900, 0.25, 0.80, auc_floor=0.65, miss=0.10)
    near = bound.chance_of_bad(900, 0.25, 0.655, auc_floor=0.65, miss=0.10)
    assert good < 0.001 and 0.3 < near < 0.7  # control: at the floor, a coin flip


def test_the_best_warning_takes_the_likeliest_nights_first(bound):
    # 10 nights sure to be bad and 90 sure to be fine: all 10 warned, no false alarm.
    sure = bound.best_at_false_alarms(np.array([1.0] * 10 + [0.0] * 90))
    assert sure["warned_bad_share"] == pytest.approx(1.0) and sure["nights_warned"] >= 10
    # Every night a coin flip: nothing tells them apart, so 5 % of false alarms buys
    # about 5 % of the bad nights.
    flips = bound.best_at_false_alarms(np.full(200, 0.5))
    assert flips["warned_bad_share"] == pytest.approx(0.05, abs=0.01)


def test_the_learned_bound_finds_a_real_signal_and_not_noise(bound):
    rng = np.random.default_rng(5)
    months = np.repeat(np.arange(1, 13), 30)
    signal = rng.normal(size=len(months))
    bad = signal > 0.3
    found = bound.learned(pd.DataFrame({"signal": signal}), bad, months)
    assert found["warned_bad_share"] > 0.8 and found["false_alarms"] <= 0.05 * (~bad).sum() + 1
    noise = bound.learned(pd.DataFrame({"noise": rng.normal(size=len(months))}), bad, months)
    assert noise["warned_bad_share"] < 0.3
