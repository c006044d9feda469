"""Steps 3 and 4 of the monitoring job (`monitor`): the alert rules and the retrain trigger.

3. `check_rules`: the metric rules (`rules`) on S's numbers (`day_numbers`: the champion's
   drift run and overall performance); a breach is queued in the outbox (its cooldown
   decides whether it is mailed), every check is recorded in `monitoring.rule_checks`
   (replacing S's earlier checks).
4. `retrain_request`: a rule marked `retrain` breached on enough recent days asks for a
   retrain, recorded in `monitoring.retrain_triggers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from nightscore import sql
from nightscore.monitoring.evening import record_outcome
from nightscore.monitoring.monitor_drift import NothingScored

if TYPE_CHECKING:
    from nightscore.config import Settings
    from nightscore.monitoring.rules import Rule


@dataclass(frozen=True)
class RuleCheck:
    rule: str
    metric: str
    value: float | None
    threshold: float
    comparison: str
    severity: str
    breached: bool
    retrain: bool
    alert_id: int | None = None

    @property
    def line(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.3f}"
        verdict = "BREACHED" if self.breached else "ok"
        return f"{self.rule}: {self.metric} = {shown} ({self.comparison} {self.threshold:g}?) {verdict}"


@dataclass
class DayNumbers:
    """What the rules look at for S: the champion's (most flights) numbers."""

    model_name: str
    model_version: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    report_url: str | None = None  # the public link of the day's drift report
    # Last evening's early warning next to what happened (`evening.record_outcome`).
    evening: str | None = None


def day_numbers(conn: Connection, service_date: date, model_name: str) -> DayNumbers:
    row = (
        conn.execute(
            text(sql.load("monitoring/rules_day_numbers")),
            {"day": service_date, "name": model_name},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NothingScored(f"no drift measured for {service_date}: run the drift step first")
    return DayNumbers(
        model_name=row["model_name"],
        model_version=row["model_version"],
        metrics={
            "drift_share": row["share_drifted"],
            "score_mean_shift": abs(row["mean_score"] - row["reference_mean_score"]),
            **{m: row[m] for m in ("roc_auc", "pr_auc", "precision", "recall", "f1")},
        },
        report_url=row["report_url"],
    )


def check_rules(
    service_date: date, settings: Settings, *, run_url: str | None = None
) -> list[RuleCheck]:
    """Check every metric rule on S's numbers; queue an alert for each breach (the rule's
    cooldown decides whether it is mailed) and record every check."""
    from nightscore.monitoring.outbox import raise_alert
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    rules = load_rules(settings)
    checks = []
    with engine_for(settings).begin() as conn:
        numbers = day_numbers(conn, service_date, settings.model_name)
        numbers.evening = evening_line(record_outcome(conn, service_date, settings), numbers)
        conn.execute(
            text(sql.load("monitoring/rule_checks_delete_day")),
            {"day": service_date, "name": numbers.model_name},
        )
        for rule in rules.metric_rules:
            assert rule.metric is not None
            value = numbers.metrics.get(rule.metric)
            breached = bool(rule.breached(value))
            alert_id = None
            if breached:
                alert_id = raise_alert(
                    conn,
                    rule=rule.name,
                    severity=rule.severity,
                    service_date=service_date,
                    subject=_subject(rule, value, numbers, service_date),
                    body=_body(rule, value, numbers, service_date),
                    details=_details(rule, value, numbers, run_url),
                    dedup_key=f"{rule.name}:{numbers.model_name}:{service_date}",
                    cooldown_key=f"{rule.name}:{numbers.model_name}",
                    rules=rules,
                )
            check = RuleCheck(
                rule.name,
                rule.metric,
                value,
                rule.threshold,
                rule.comparison,
                rule.severity,
                breached,
                rule.retrain,
                alert_id,
            )
            conn.execute(
                text(sql.load("monitoring/rule_checks_insert")),
                {
                    "day": service_date,
                    **check.__dict__,
                    "model_name": numbers.model_name,
                    "model_version": numbers.model_version,
                },
            )
            checks.append(check)
    return checks


def evening_line(outcomes: list[dict[str, Any]], numbers: DayNumbers) -> str | None:
    """Last evening's verdict on the champion's scores, and how the night went."""
    for row in outcomes:
        if row["model_version"] != numbers.model_version:
            continue
        verdict = "warned" if row["warned"] else "stayed quiet"
        how = (
            f"the night turned out bad ({row['bad_because']})"
            if row["bad_because"]
            else "the night turned out ordinary"
        )
        return f"Last evening's early warning {verdict}; {how}."
    return None


def _subject(rule: Rule, value: float | None, numbers: DayNumbers, day: date) -> str:
    what = rule.description or rule.name
    return (
        f"{what[:1].upper() + what[1:]} {rule.comparison} {rule.threshold:g} on {day}: {value:.3f} "
        f"({numbers.model_name} v{numbers.model_version})"
    )


def _body(rule: Rule, value: float | None, numbers: DayNumbers, day: date) -> str:
    lines = [
        f"Rule {rule.name} breached for service date {day}: {rule.describe(value)}.",
        f"Model: {numbers.model_name} v{numbers.model_version} (the version that scored the day).",
        "",
        "The day's numbers:",
        *(f"  {name}: {'n/a' if v is None else f'{v:.3f}'}" for name, v in numbers.metrics.items()),
    ]
    if numbers.evening:
        lines += ["", numbers.evening]
    if rule.retrain:
        lines += ["", "Repeated breaches of this rule trigger a retrain (see the rules file)."]
    return "\n".join(lines)


def _details(
    rule: Rule, value: float | None, numbers: DayNumbers, run_url: str | None
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "metric": rule.metric,
        "value": None if value is None else round(value, 4),
        "threshold": rule.threshold,
        "comparison": rule.comparison,
        "model_version": numbers.model_version,
    }
    if numbers.report_url:
        details["report_url"] = numbers.report_url
    if run_url:
        details["airflow_url"] = run_url
    return details


# --- 4. the retrain trigger ---------------------------------------------------------------


@dataclass(frozen=True)
class RetrainRequest:
    service_date: date
    cutoff: date
    rules: tuple[str, ...]
    reason: str

    @property
    def conf(self) -> dict[str, str]:
        return {"cutoff": self.cutoff.isoformat(), "reason": self.reason}

    @property
    def run_id(self) -> str:
        return f"monitoring__{self.service_date}__retrain"


def retrain_request(service_date: date, settings: Settings) -> RetrainRequest | None:
    """A retrain, when a `retrain` rule was breached on at least N of the last D days (the
    rules file's `retrain_after`), S included, by the model that scored S, and no retrain
    was asked for in those days already. Recorded; asking again for S returns the same."""
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    rules = load_rules(settings)
    first, last = rules.retrain_window(service_date)
    with engine_for(settings).begin() as conn:
        earlier = (
            conn.execute(
                text(sql.load("monitoring/retrain_triggers_in_window")),
                {"a": first, "b": last},
            )
            .mappings()
            .all()
        )
        for row in earlier:
            if row["service_date"] == service_date:
                return RetrainRequest(
                    service_date, row["cutoff"], tuple(row["rules"]), row["reason"]
                )
        if earlier:
            return None
        counts = conn.execute(
            text(sql.load("monitoring/retrain_breach_counts")),
            {"first": first, "last": last, "name": settings.model_name},
        ).all()
        due = [r for r in counts if r.latest and r.days >= rules.retrain_breaches]
        if not due:
            return None
        reason = "monitoring: " + "; ".join(
            f"{r.rule} breached on {r.days} of the last {rules.retrain_days} days" for r in due
        )
        request = RetrainRequest(
            service_date, service_date + timedelta(days=1), tuple(r.rule for r in due), reason
        )
        conn.execute(
            text(sql.load("monitoring/retrain_triggers_insert")),
            {
                "day": service_date,
                "name": settings.model_name,
                "reason": reason,
                "rules": list(request.rules),
                "cutoff": request.cutoff,
                "run_id": request.run_id,
            },
        )
    return request
