"""The performance metrics' own rules: calibration error and segment metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nightscore.metrics import expected_calibration_error
from nightscore.monitoring.performance import segment_metrics


def test_a_calibrated_model_has_no_calibration_error():
    p = np.repeat([0.1, 0.5, 0.9], 10)
    y = np.concatenate([[1] + [0] * 9, [1] * 5 + [0] * 5, [1] * 9 + [0]])
    assert expected_calibration_error(y, p) == pytest.approx(0.0)


def test_an_overconfident_model_has_a_calibration_error_of_its_gap():
    p = np.full(10, 0.9)
    y = np.array([1] * 5 + [0] * 5)
    assert expected_calibration_error(y, p) == pytest.approx(0.4)


def test_segment_metrics_of_a_small_segment():
    frame = pd.DataFrame(
        {
            "disrupted": [1, 0, 1, 0],
            "score": [0.9, 0.2, 0.4, 0.6],
            "label": [True, False, False, True],
            "threshold": 0.5,
        }
    )
    m = segment_metrics(frame)
    assert (m["rows"], m["positives"]) == (4, 2)
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    assert m["roc_auc"] == 0.75
    one_class = segment_metrics(frame.assign(disrupted=0))
    assert one_class["roc_auc"] is None and one_class["recall"] is None
