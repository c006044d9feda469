"""The pure parts of `make bench-alerts` (benchmarks/alerts.py): a night's outcome from its
flights (the bad-night rule itself is `early_warning.bad_night`, tested with it), how a
rule's verdicts are counted, and which nights each champion scores. No database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
FLOOR = 0.65
DAY = date(2013, 7, 1)


@pytest.fixture(scope="module")
def alerts():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import alerts

        yield alerts


def night(seed: int = 13, rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Scores spread over 0.02-0.8 and outcomes drawn with exactly those probabilities: a
    calibrated night that ranks well (ROC AUC about 0.75)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.8, rows)
    return (rng.random(rows) < p).astype(int), p


def test_a_calibrated_night_that_ranks_well_is_ordinary(alerts):
    y, p = night()
    row = alerts.outcome(DAY, "m1", len(y), y, p, FLOOR)
    assert row.roc_auc > 0.7
    assert abs(row.mean_score - row.observed_rate) < 0.03
    assert row.why is None and not row.bad


def test_control_the_same_outcomes_with_shuffled_scores_are_a_bad_night(alerts):
    """The control: the same night, its scores no longer tied to its flights (calibrated
    on average still), is bad by its ranking alone."""
    y, p = night()
    shuffled = np.random.default_rng(1).permutation(p)
    row = alerts.outcome(DAY, "m1", len(y), y, shuffled, FLOOR)
    assert row.roc_auc < FLOOR
    assert abs(row.mean_score - row.observed_rate) < 0.03
    assert row.bad and "ROC AUC" in row.why and "mean risk" not in row.why


def test_a_night_that_ranks_well_but_misses_the_rate_is_bad(alerts):
    y, p = night()
    row = alerts.outcome(DAY, "m1", len(y), y, np.clip(p + 0.15, 0, 1), FLOOR)
    assert row.roc_auc > 0.7
    assert row.bad and "mean risk" in row.why and "ROC AUC" not in row.why


def test_tally_counts_each_kind_of_night(alerts):
    bad = [True, True, True, False, False, False, False]
    warned = [True, False, True, True, False, False, False]
    t = alerts.tally(bad, warned)
    assert (t.nights, t.bad_nights, t.warned_bad, t.missed_bad) == (7, 3, 2, 1)
    assert (t.false_alarms, t.ordinary_nights) == (1, 4)
    assert t.warned_share == pytest.approx(2 / 3)
    assert t.false_alarm_rate == pytest.approx(1 / 4)
    assert not t.goal_met  # 1 false alarm in 4 ordinary nights
    assert t.figures() == {
        "nights": 7,
        "bad_nights": 3,
        "warned_bad": 2,
        "false_alarms": 1,
        "ordinary_nights": 4,
    }


def test_the_goal_is_half_the_bad_nights_and_one_false_alarm_in_twenty(alerts):
    ordinary = [False] * 20
    met = alerts.tally([True, True, *ordinary], [True, False, True, *[False] * 19])
    assert met.goal_met  # 1 of 2 bad warned, 1 false alarm in 20
    too_noisy = alerts.tally([True, True, *ordinary], [True, False, True, True, *[False] * 18])
    assert not too_noisy.goal_met  # 2 in 20
    too_quiet = alerts.tally([True, True, True, *ordinary], [True, False, False, *[False] * 20])
    assert not too_quiet.goal_met  # 1 of 3 bad warned
    assert not alerts.tally(ordinary, [False] * 20).goal_met  # no bad night to warn of


def test_tally_refuses_verdicts_that_do_not_match_the_nights(alerts):
    with pytest.raises(ValueError, match="3 nights judged but 2 verdicts"):
        alerts.tally([True, False, False], [True, False])


def test_periods_start_after_a_whole_training_window(alerts):
    import alerts_cache

    plan = alerts_cache.periods(window_days=120, retrain_days=91)
    assert [(p.id, p.model_id, p.first_night, p.last_night) for p in plan] == [
        ("p1", "m1", date(2013, 5, 2), date(2013, 7, 31)),
        ("p2", "m2", date(2013, 8, 1), date(2013, 10, 30)),
        ("p3", "m3", date(2013, 10, 31), date(2013, 12, 31)),
    ]
    from nightscore.training import training_window

    # The first champion's window is the year's first 120 days, up to two days before
    # its first night: the outcomes of May 1 land after May 2 is scored.
    assert plan[0].cutoff == date(2013, 5, 1)
    assert training_window(plan[0].cutoff, 120) == (date(2013, 1, 1), date(2013, 4, 30))
