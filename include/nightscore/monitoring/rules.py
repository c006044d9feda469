"""Alert rules, from YAML: what the monitoring DAG checks, how bad a breach is, how often
it is mailed (cooldown), and which breaches ask for a retrain.

The packaged default is `nightscore/alert_rules.yaml`; `NIGHTSCORE_ALERT_RULES` points at
another file. A malformed file is an error that names the rule and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightscore.errors import DataError

if TYPE_CHECKING:
    from nightscore.config import Settings

DEFAULT_RULES = Path(__file__).resolve().parents[1] / "alert_rules.yaml"
SEVERITIES = ("info", "warning", "critical")
# What the monitoring DAG measures for a service date (see `monitor_rules.day_numbers`).
METRICS = ("drift_share", "score_mean_shift", "roc_auc", "pr_auc", "precision", "recall", "f1")
_FIELDS = {"description", "metric", "above", "below", "severity", "cooldown_days", "retrain"}


class RulesError(DataError, ValueError):
    """The alert rules file is malformed."""


@dataclass(frozen=True)
class WarningRule:
    """The evening check's verdict (`early_warning.assess`): tonight's scores deserve
    less trust when any enabled condition holds.

    - `importance_excess_above`: the sum over watched features of importance x how far
      beyond `limit_sd` standard deviations of the training nights tonight's average is;
    - `score_sd_above`: tonight's mean risk this many standard deviations from the
      training nights' mean risks;
    - `expected_auc_below`: the AUC tonight's scores can be expected to reach.
    None disables a condition.
    """

    limit_sd: float = 3.0
    importance_excess_above: float | None = 0.4
    score_sd_above: float | None = 3.0
    expected_auc_below: float | None = 0.61


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    cooldown_days: int = 0
    metric: str | None = None  # None: an event rule, raised where the event happens
    above: float | None = None
    below: float | None = None
    retrain: bool = False
    description: str = ""

    @property
    def comparison(self) -> str:
        return "above" if self.above is not None else "below"

    @property
    def threshold(self) -> float:
        value = self.above if self.above is not None else self.below
        assert value is not None, f"{self.name} is an event rule"
        return value

    def breached(self, value: float | None) -> bool | None:
        """True/False; None when there is nothing to compare (no outcomes yet, say)."""
        if value is None or value != value:  # None or NaN
            return None
        return value > self.threshold if self.above is not None else value < self.threshold

    def describe(self, value: float | None) -> str:
        shown = "n/a" if value is None else f"{value:.3f}"
        sign = ">" if self.above is not None else "<"
        return f"{self.metric} = {shown} ({sign} {self.threshold:g})"


@dataclass(frozen=True)
class RuleSet:
    rules: dict[str, Rule]
    retrain_breaches: int = 2
    retrain_days: int = 5
    source: str = ""
    # The evening check's conditions (`early_warning.WarningRule`); the file's
    # `early_warning` section, else the defaults.
    early_warning: WarningRule = field(default_factory=WarningRule)

    @property
    def metric_rules(self) -> list[Rule]:
        return [r for r in self.rules.values() if r.metric]

    def get(self, name: str) -> Rule | None:
        return self.rules.get(name)

    def retrain_window(self, service_date: date) -> tuple[date, date]:
        """The days whose breaches count towards a retrain: the last `retrain_days`."""
        return service_date - timedelta(days=self.retrain_days - 1), service_date


def parse_rules(document: Any, source: str = "<rules>") -> RuleSet:
    """A RuleSet from the parsed YAML, with an error naming what is wrong and where."""

    def fail(message: str) -> RulesError:
        return RulesError(f"{source}: {message}")

    if not isinstance(document, dict) or not isinstance(document.get("rules"), dict):
        raise fail("expected a mapping with a 'rules' mapping")
    rules = {}
    for name, spec in document["rules"].items():
        if not isinstance(spec, dict):
            raise fail(f"rule {name!r} must be a mapping")
        unknown = set(spec) - _FIELDS
        if unknown:
            raise fail(f"rule {name!r}: unknown field(s) {', '.join(sorted(unknown))}")
        severity = spec.get("severity")
        if severity not in SEVERITIES:
            raise fail(f"rule {name!r}: severity must be one of {SEVERITIES}, not {severity!r}")
        cooldown = spec.get("cooldown_days", 0)
        if not isinstance(cooldown, int) or isinstance(cooldown, bool) or cooldown < 0:
            raise fail(f"rule {name!r}: cooldown_days must be a whole number >= 0")
        metric = spec.get("metric")
        above, below = spec.get("above"), spec.get("below")
        if metric is not None:
            if metric not in METRICS:
                raise fail(f"rule {name!r}: unknown metric {metric!r} (known: {METRICS})")
            if (above is None) == (below is None):
                raise fail(f"rule {name!r}: a metric rule needs exactly one of above / below")
            for bound in (above, below):
                if bound is not None and not isinstance(bound, int | float):
                    raise fail(f"rule {name!r}: the threshold must be a number, not {bound!r}")
        elif above is not None or below is not None or spec.get("retrain"):
            raise fail(f"rule {name!r}: a threshold or retrain needs a metric")
        rules[name] = Rule(
            name=name,
            severity=severity,
            cooldown_days=cooldown,
            metric=metric,
            above=None if above is None else float(above),
            below=None if below is None else float(below),
            retrain=bool(spec.get("retrain", False)),
            description=str(spec.get("description", "")),
        )
    after = document.get("retrain_after") or {}
    breaches, days = after.get("breaches", 2), after.get("days", 5)
    if not (isinstance(breaches, int) and isinstance(days, int) and 1 <= breaches <= days):
        raise fail("retrain_after needs whole numbers with 1 <= breaches <= days")
    return RuleSet(rules, breaches, days, source, _warning_rule(document, fail))


def _warning_rule(document: dict[str, Any], fail: Callable[[str], RulesError]) -> WarningRule:
    """The `early_warning` section: each condition a number, or null to disable it."""
    spec = document.get("early_warning")
    if spec is None:
        return WarningRule()
    if not isinstance(spec, dict):
        raise fail("early_warning must be a mapping")
    known = {f.name for f in fields(WarningRule)}
    unknown = set(spec) - known
    if unknown:
        raise fail(f"early_warning: unknown field(s) {', '.join(sorted(unknown))}")
    for name, value in spec.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise fail(f"early_warning: {name} must be a number or null, not {value!r}")
    if spec.get("limit_sd", 1) is None or spec.get("limit_sd", 1) <= 0:
        raise fail("early_warning: limit_sd must be a number above 0")
    values: dict[str, Any] = {k: None if v is None else float(v) for k, v in spec.items()}
    return WarningRule(**values)


@cache
def _load(path: str, mtime: float) -> RuleSet:
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    return parse_rules(document, path)


def load_rules(settings: Settings | None = None, path: str | Path | None = None) -> RuleSet:
    """The rules in force: `path`, else `settings.alert_rules_path`, else the default."""
    chosen = Path(path or (settings.alert_rules_path if settings else "") or DEFAULT_RULES)
    if not chosen.is_file():
        raise RulesError(f"no alert rules file at {chosen} (NIGHTSCORE_ALERT_RULES)")
    return _load(str(chosen), chosen.stat().st_mtime)
