"""The alert rules file: the shipped default, breaches, and clear errors on bad files."""

from __future__ import annotations

import os
from datetime import date

import pytest
import yaml

from nightscore.monitoring.rules import (
    DEFAULT_RULES,
    RulesError,
    load_rules,
    parse_rules,
)


def test_the_default_rules_cover_metrics_and_events():
    rules = load_rules(path=DEFAULT_RULES)
    metric_rules = {r.name: r for r in rules.metric_rules}
    assert set(metric_rules) == {
        "drift_share",
        "score_mean_shift",
        "roc_auc_floor",
        "precision_floor",
    }
    for event in ("batch_missing", "batch_rejected", "dag_failed", "weekly_report"):
        assert rules.get(event) is not None and rules.get(event).metric is None
    assert (rules.retrain_breaches, rules.retrain_days) == (2, 5)
    assert rules.get("roc_auc_floor").severity == "critical"


def test_above_and_below_breach_on_the_right_side():
    rules = parse_rules(
        {
            "rules": {
                "floor": {"metric": "roc_auc", "below": 0.65, "severity": "critical"},
                "ceiling": {"metric": "drift_share", "above": 0.75, "severity": "warning"},
            }
        }
    )
    floor, ceiling = rules.get("floor"), rules.get("ceiling")
    assert (floor.breached(0.64), floor.breached(0.65), floor.breached(0.7)) == (True, False, False)
    assert (ceiling.breached(0.8), ceiling.breached(0.75)) == (True, False)
    # No value (no outcomes yet) or NaN is not a breach: there is nothing to compare.
    assert floor.breached(None) is None and floor.breached(float("nan")) is None
    assert floor.describe(0.6) == "roc_auc = 0.600 (< 0.65)"


def test_the_retrain_window_is_the_last_days_including_the_latest():
    rules = parse_rules({"retrain_after": {"breaches": 2, "days": 5}, "rules": {}})
    assert rules.retrain_window(date(2013, 2, 9)) == (date(2013, 2, 5), date(2013, 2, 9))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"metric": "roc_auc", "below": 0.6, "severity": "loud"}, "severity must be one of"),
        ({"metric": "accuracy", "below": 0.6, "severity": "info"}, "unknown metric 'accuracy'"),
        ({"metric": "roc_auc", "severity": "info"}, "exactly one of above / below"),
        (
            {"metric": "roc_auc", "above": 1, "below": 0, "severity": "info"},
            "exactly one of above / below",
        ),
        ({"metric": "roc_auc", "below": "low", "severity": "info"}, "must be a number"),
        ({"severity": "info", "retrain": True}, "needs a metric"),
        ({"severity": "info", "cooldown_days": -1}, "cooldown_days must be"),
        ({"severity": "info", "treshold": 3}, "unknown field(s) treshold"),
    ],
)
def test_a_malformed_rule_is_an_error_naming_the_rule_and_field(spec, message):
    with pytest.raises(RulesError, match="rule 'r'") as raised:
        parse_rules({"rules": {"r": spec}}, source="rules.yaml")
    assert message in str(raised.value) and str(raised.value).startswith("rules.yaml: ")


def test_files_that_are_not_rules_are_refused(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [unclosed\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(path=broken)
    with pytest.raises(RulesError, match="no alert rules file"):
        load_rules(path=tmp_path / "missing.yaml")
    with pytest.raises(RulesError, match="retrain_after"):
        parse_rules({"rules": {}, "retrain_after": {"breaches": 6, "days": 5}})


def test_an_edited_file_is_read_again(tmp_path):
    path = tmp_path / "rules.yaml"
    document = {"rules": {"floor": {"metric": "roc_auc", "below": 0.6, "severity": "info"}}}
    path.write_text(yaml.safe_dump(document))
    assert load_rules(path=path).get("floor").threshold == 0.6
    document["rules"]["floor"]["below"] = 0.7
    path.write_text(yaml.safe_dump(document))
    os.utime(path, (1, 1))  # a different mtime, even within the clock's resolution
    assert load_rules(path=path).get("floor").threshold == 0.7
