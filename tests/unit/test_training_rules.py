"""Training's pure parts: the gate's rule, the threshold rule, the time split, the checks."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from nightscore.features import NUMERIC_FEATURES
from nightscore.gate import decide
from nightscore.metrics import classification_metrics
from nightscore.training import (
    TrainingError,
    best_f1_threshold,
    check_training_data,
    split_by_time,
)


@pytest.mark.parametrize(
    ("challenger", "champion", "decision", "phrase"),
    [
        (0.72, None, "promote", "no champion yet"),
        (0.69, None, "reject", "below the floor"),
        (0.75, 0.74, "promote", "within the margin"),
        (0.735, 0.74, "promote", "within the margin"),  # worse, but by less than 0.01
        (0.72, 0.74, "reject", "worse than the champion"),
        (0.69, 0.60, "reject", "below the floor"),  # the floor holds even vs a weak champion
        (float("nan"), None, "reject", "below the floor"),
    ],
)
def test_the_gate_promotes_and_rejects_by_floor_and_margin(challenger, champion, decision, phrase):
    got, reason = decide(
        {"roc_auc": challenger},
        None if champion is None else {"roc_auc": champion},
        floor=0.70,
        margin=0.01,
    )
    assert got == decision
    assert phrase in reason


def test_threshold_is_the_best_f1_cut():
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.65, 0.9])
    threshold = best_f1_threshold(y, p)
    f1_at = classification_metrics(y, p, threshold)["f1"]
    for other in p:
        assert classification_metrics(y, p, other)["f1"] <= f1_at + 1e-12
    assert threshold == pytest.approx(0.35)


def test_metrics_of_a_perfect_and_a_useless_model():
    y = np.array([0, 1, 0, 1])
    perfect = classification_metrics(y, np.array([0.0, 1.0, 0.0, 1.0]), 0.5)
    assert perfect["roc_auc"] == 1 and perfect["brier"] == 0 and perfect["precision"] == 1
    flat = classification_metrics(y, np.full(4, 0.5), 0.5)
    assert flat["roc_auc"] == 0.5 and flat["recall"] == 1
    one_class = classification_metrics(np.zeros(4), np.full(4, 0.2), 0.5)
    assert one_class["roc_auc"] is None and one_class["recall"] is None


def _frame(days: int, rate: float = 0.25) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for d in range(days):
        for i in range(100):
            rows.append(
                {
                    **dict.fromkeys(NUMERIC_FEATURES, 1.0),  # inside every range
                    "service_date": date(2013, 1, 1) + timedelta(days=d),
                    "carrier": "UA",
                    "origin": "EWR",
                    "dest": "ORD",
                    "flight": i,
                    "disrupted": int(rng.random() < rate),
                }
            )
    return pd.DataFrame(rows)


def test_the_time_split_holds_out_the_last_days():
    train, valid = split_by_time(_frame(20), validation_days=14)
    assert train["service_date"].max() < valid["service_date"].min()
    assert valid["service_date"].nunique() == 14 and train["service_date"].nunique() == 6
    with pytest.raises(TrainingError, match="cannot be split"):
        split_by_time(_frame(10), validation_days=14)


def test_a_sound_training_set_passes_its_checks():
    check_training_data(_frame(15))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.assign(disrupted=(f.index % 10 != 0).astype(int)),
            "column_mean_to_be_between\\(disrupted\\): observed 0.9",
        ),
        (
            lambda f: f.assign(disrupted=f["disrupted"].where(f.index % 7 != 0)),
            "not_be_null\\(disrupted\\)",
        ),
        (lambda f: f.assign(dep_hour=f["dep_hour"].where(f.index != 3, 31)), "dep_hour"),
        (lambda f: f.assign(hist_carrier_rate=1.7), "hist_carrier_rate"),
        (lambda f: f.head(500), "row_count"),
    ],
)
def test_a_broken_training_set_fails_with_what_broke(change, message):
    with pytest.raises(TrainingError, match=message):
        check_training_data(change(_frame(15)))
