"""The evening early warning's pure parts: the profile, the streamed night, the verdict,
the expected AUC, the bad-night definition and the rule's section of the rules file."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from nightscore.features import CATEGORICAL, FEATURES
from nightscore.monitoring import early_warning as ew
from nightscore.monitoring.evening import describe, summarize
from nightscore.monitoring.rules import RulesError, WarningRule, parse_rules

RNG = np.random.default_rng(7)
NUMERIC = [f for f in FEATURES if f not in CATEGORICAL]


def nights(first: date, count: int, flights: int = 400, wind_shift: float = 0.0) -> pd.DataFrame:
    """Nights of synthetic flights whose score rises with the wind."""
    frames = []
    for i in range(count):
        f = pd.DataFrame({c: RNG.normal(10, 2, flights) for c in NUMERIC})
        f["wind_speed"] += wind_shift
        for c in CATEGORICAL:
            f[c] = RNG.choice(["A", "B", "C"], flights)
        f["service_date"] = first + timedelta(days=i)
        f["score"] = 1 / (1 + np.exp(-(f["wind_speed"] - 10) / 2 + 1))
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def profile():
    training = nights(date(2013, 1, 1), 30)
    importance = {c: (4.0 if c == "wind_speed" else 0.1) for c in FEATURES}
    return ew.build_profile(training, training.sample(2000, random_state=1), importance)


def test_the_profile_is_json_and_describes_the_training_nights(profile):
    assert json.loads(json.dumps(profile)) == profile
    assert profile["nights"] == 30
    wind = profile["columns"]["wind_speed"]
    assert wind["low"] <= wind["mean"] <= wind["high"] and wind["sd"] > 0
    # Importance is a share of the model's total, over the watched features here.
    assert wind["importance"] == pytest.approx(4.0 / (4.0 + 0.1 * (len(FEATURES) - 1)))
    assert set(profile["columns"]) == {*ew.WATCHED, "score"}


def test_an_ordinary_night_is_quiet(profile):
    result = ew.check_night(profile, nights(date(2013, 2, 1), 1), WarningRule())
    assert not result.warned and result.reasons == () and result.moved == []
    assert result.rows == 400


def test_a_night_far_outside_on_an_important_feature_is_warned(profile):
    result = ew.check_night(profile, nights(date(2013, 2, 1), 1, wind_shift=3.0), WarningRule())
    assert result.warned
    assert result.moved[0].column == "wind_speed" and result.moved[0].beyond
    assert result.moved[0].z > 3
    words = summarize(result)
    assert words.startswith("warned") and "far above anything in the training window" in words


def test_an_unimportant_feature_alone_does_not_warn(profile):
    night = nights(date(2013, 2, 1), 1)
    # Half a standard deviation of the flights: ten of the nights' averages.
    night["plane_age"] += 1.0
    result = ew.check_night(profile, night, WarningRule(score_sd_above=None))
    moved = {c.column: c for c in result.features}["plane_age"]
    assert moved.beyond and moved.excess > 0
    # Its importance (0.1 of 8.8) x (10 - 3) sd: 0.08, below the threshold of 0.25.
    assert not result.warned
    control = WarningRule(importance_excess_above=0.0, score_sd_above=None)
    assert ew.check_night(profile, night, control).warned


def test_chunks_give_the_same_verdict_as_the_whole_night(profile):
    night = nights(date(2013, 2, 1), 1, wind_shift=1.0)
    whole = ew.check_night(profile, night, WarningRule())
    chunked = ew.check_night(profile, [night.iloc[:150], night.iloc[150:]], WarningRule())
    assert chunked.warned == whole.warned
    for a, b in zip(whole.features, chunked.features, strict=True):
        assert a.tonight == pytest.approx(b.tonight, rel=1e-12)
        assert a.evidently_statistic == pytest.approx(b.evidently_statistic, rel=1e-9)
    assert chunked.expected_auc == pytest.approx(whole.expected_auc, abs=1e-12)


def test_the_sample_is_bounded_and_drawn_from_every_chunk(profile, monkeypatch):
    monkeypatch.setattr(ew, "SAMPLE_ROWS", 100)
    night = nights(date(2013, 2, 1), 1, flights=1000)
    night["row"] = np.arange(len(night))
    result = ew.check_night(
        profile, [night.iloc[i : i + 250] for i in range(0, 1000, 250)], WarningRule()
    )
    rows = result.sample["row"].to_numpy()
    assert len(rows) == 100 and len(set(rows)) == 100
    assert {r // 250 for r in rows} == {0, 1, 2, 3}  # not just the first chunk


def test_the_expected_auc_is_the_mean_auc_of_outcomes_drawn_from_the_scores():
    from sklearn.metrics import roc_auc_score

    scores = RNG.beta(2, 5, 2000)
    expected = ew.expected_auc(*ew.score_histogram(scores))
    drawn = [roc_auc_score(RNG.random(2000) < scores, scores) for _ in range(300)]
    assert expected == pytest.approx(np.mean(drawn), abs=0.005)
    # Flights that all look alike cannot be ranked: 0.5.
    assert ew.expected_auc(*ew.score_histogram(np.full(500, 0.3))) == pytest.approx(0.5)
    assert np.isnan(ew.expected_auc(*ew.score_histogram(np.zeros(10))))


@pytest.mark.parametrize(
    ("auc", "mean", "observed", "bad"),
    [
        (0.70, 0.25, 0.30, False),
        (0.64, 0.25, 0.30, True),  # ranking below the floor
        (0.70, 0.25, 0.36, True),  # 11 points under
        (0.70, 0.40, 0.29, True),  # 11 points over
        (None, 0.25, 0.30, False),  # one class only: judged on calibration
        (0.65, 0.25, 0.35, False),  # at the limits is ordinary
    ],
)
def test_a_bad_night(auc, mean, observed, bad):
    assert (ew.bad_night(auc, mean, observed, 0.65) is not None) is bad


def test_describe_says_far_beyond_the_window_in_words():
    check = ew.FeatureCheck("wind_speed", 24.1, 10.0, 2.0, 5.2, 17.8, 7.05, 0.3, True, 1.2)
    assert describe(check) == (
        "the wind speed at the origin at departure: tonight's average 24.1, far above "
        "anything in the training window (its nights averaged 5.2 to 17.8)"
    )


def test_the_rules_file_sets_the_warning_rule():
    base = {"rules": {}}
    assert parse_rules(base).early_warning == WarningRule()
    custom = parse_rules({**base, "early_warning": {"limit_sd": 2, "score_sd_above": None}})
    assert custom.early_warning == WarningRule(limit_sd=2.0, score_sd_above=None)
    for bad, message in [
        ({"limit_sd": 0}, "limit_sd"),
        ({"limit_sd": None}, "limit_sd"),
        ({"score_sd_above": "high"}, "score_sd_above"),
        ({"threshold": 1}, "unknown field"),
        ([1, 2], "mapping"),
    ]:
        with pytest.raises(RulesError, match=message):
            parse_rules({**base, "early_warning": bad})
