"""The monitoring job for one service date S, once S's outcomes are loaded: the `monitoring`
DAG runs it step by step, `nightscore monitor` in one go.

1. `measure_performance`: how each model version that scored S fared (`performance`).
2. `measure_drift`: S's features and scores against the reference sample the scoring
   model was trained with (Evidently), stored per column; the day's HTML report; a
   snapshot in the Evidently workspace, so `evidently ui` shows the trend.
3. `check_rules`: the alert rules (`rules`) on the day's numbers; breaches go to the
   outbox (with cooldown), every check to `monitoring.rule_checks`.
4. `retrain_request`: a rule marked `retrain` breached on enough recent days asks for a
   retrain, recorded in `monitoring.retrain_triggers`.

Every step replaces what it wrote for S before, so a re-run is safe.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from nightscore.features import FEATURES, KEY_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.config import Settings
    from nightscore.monitoring.drift import DriftResult
    from nightscore.monitoring.performance import PerformanceRow
    from nightscore.monitoring.rules import Rule

# Constant within a day by construction (the whole batch has one month, one weekday): they
# always "drift" from a reference spread over months, so they are stored, not counted.
CALENDAR_COLUMNS = ("month", "day_of_week", "days_to_holiday")
EVIDENTLY_PROJECT = "nightscore"
logger = logging.getLogger(__name__)


class NothingScored(LookupError):
    """No predictions for the service date: nothing to monitor."""


@dataclass(frozen=True)
class ScoredVersion:
    model_name: str
    model_version: int
    mlflow_run_id: str
    rows: int


def scored_versions(conn: Connection, service_date: date, model_name: str) -> list[ScoredVersion]:
    """The versions of the model that scored S, the one that scored most first (the champion)."""
    rows = conn.execute(
        text(
            """
            SELECT model_name, model_version, mlflow_run_id, count(*) AS rows
            FROM scoring.predictions WHERE service_date = :day AND model_name = :name
            GROUP BY model_name, model_version, mlflow_run_id
            ORDER BY rows DESC, model_version DESC
            """
        ),
        {"day": service_date, "name": model_name},
    ).all()
    return [
        ScoredVersion(r.model_name, int(r.model_version), r.mlflow_run_id, r.rows) for r in rows
    ]


# --- 1. performance -------------------------------------------------------------------


def measure_performance(service_date: date, settings: Settings) -> list[PerformanceRow]:
    """S's performance rows, stored; empty when S has no outcomes (rejected, say)."""
    from nightscore.monitoring.performance import NothingToMeasure, measure

    try:
        return measure(service_date, settings)
    except NothingToMeasure as exc:
        logger.warning("performance of %s: %s", service_date, exc)
        return []


# --- 2. drift -------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSummary:
    model_name: str
    model_version: int
    current_rows: int
    share_drifted: float
    drifted_columns: list[str]
    score_drifted: bool | None
    mean_score: float
    reference_mean_score: float
    report_path: str | None = None

    @property
    def score_mean_shift(self) -> float:
        return abs(self.mean_score - self.reference_mean_score)


def reference_sample(settings: Settings, mlflow_run_id: str) -> pd.DataFrame:
    """The reference sample logged with the model's training run (features and score)."""
    import mlflow
    import pandas as pd

    from nightscore.registry import REFERENCE_ARTIFACT, RegistryError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=mlflow_run_id,
                artifact_path=REFERENCE_ARTIFACT,
                dst_path=tmp,
                tracking_uri=settings.mlflow_tracking_uri,
            )
        except Exception as exc:
            raise RegistryError(
                f"cannot download {REFERENCE_ARTIFACT} of MLflow run {mlflow_run_id} from "
                f"{settings.mlflow_tracking_uri}: {exc}"
            ) from exc
        return pd.read_parquet(path)


def current_rows(
    conn: Connection, service_date: date, version: ScoredVersion, features: pd.DataFrame
) -> pd.DataFrame:
    """S's features (`build_features`: as scoring saw them) with the score `version` gave
    each flight."""
    import pandas as pd

    result = conn.execute(
        text(
            """
            SELECT service_date, carrier, flight, origin, score
            FROM scoring.predictions
            WHERE service_date = :day AND model_name = :name AND model_version = :version
            """
        ),
        {"day": service_date, "name": version.model_name, "version": version.model_version},
    )
    scores = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    scores["flight"] = scores["flight"].astype("int64")
    scores["score"] = scores["score"].astype("float64")
    return features.merge(scores, on=list(KEY_COLUMNS), how="inner")


def summarize(
    result: DriftResult, version: ScoredVersion, reference_mean: float, current_mean: float
) -> DriftSummary:
    monitored = [c for c in result.columns if c.column not in CALENDAR_COLUMNS]
    drifted = [c.column for c in monitored if c.drifted]
    return DriftSummary(
        model_name=version.model_name,
        model_version=version.model_version,
        current_rows=result.current_rows,
        share_drifted=len(drifted) / len(monitored) if monitored else 0.0,
        drifted_columns=drifted,
        score_drifted=result.score.drifted if result.score else None,
        mean_score=current_mean,
        reference_mean_score=reference_mean,
    )


def measure_drift(
    service_date: date, settings: Settings, *, html: bool = True, workspace: bool = True
) -> list[DriftSummary]:
    """Drift of S against each scoring version's reference sample, stored. The champion's
    (the first version) also gets the HTML report and the workspace snapshot."""
    from nightscore.features import build_features
    from nightscore.monitoring.drift import evidently_drift, save_html
    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    with engine.connect() as conn:
        versions = scored_versions(conn, service_date, settings.model_name)
        if not versions:
            raise NothingScored(f"nothing was scored for {service_date}: is it loaded and scored?")
        features = build_features(conn, service_date, service_date)
    summaries = []
    for rank, version in enumerate(versions):
        reference = reference_sample(settings, version.mlflow_run_id)
        with engine.connect() as conn:
            current = current_rows(conn, service_date, version, features)
        if current.empty:
            raise NothingScored(f"no features for the flights of {service_date}")
        result = evidently_drift(
            reference,
            current,
            columns=[c for c in FEATURES if c in reference],
            timestamp=datetime.combine(service_date, datetime.min.time(), tzinfo=UTC),
            metadata={
                "service_date": service_date.isoformat(),
                "model": f"{version.model_name} v{version.model_version}",
            },
        )
        summary = summarize(
            result, version, float(reference["score"].mean()), float(current["score"].mean())
        )
        if rank == 0 and html:
            folder = Path(settings.reports_dir) / "drift"
            folder.mkdir(parents=True, exist_ok=True)
            report_path = folder / f"drift_report_{service_date}.html"
            save_html(result.snapshot, report_path)
            summary = dataclasses.replace(summary, report_path=str(report_path))
        if rank == 0 and workspace:
            add_to_workspace(settings, result.snapshot, service_date)
        with engine.begin() as conn:
            store_drift(conn, service_date, summary, result)
        summaries.append(summary)
    return summaries


def store_drift(
    conn: Connection, service_date: date, summary: DriftSummary, result: DriftResult
) -> None:
    """Replace S's drift rows for the summary's model version (and its report row; a run
    without a report keeps the link to the one written before)."""
    report_id = None
    if not summary.report_path:
        report_id = conn.execute(
            text(
                """
                SELECT d.report_id FROM monitoring.drift_runs d
                WHERE d.service_date = :day AND d.model_name = :name AND d.model_version = :version
                """
            ),
            {"day": service_date, "name": summary.model_name, "version": summary.model_version},
        ).scalar()
    if summary.report_path:
        report_id = conn.execute(
            text(
                """
                INSERT INTO monitoring.reports (kind, service_date, path, bytes)
                VALUES ('drift', :day, :path, :bytes)
                ON CONFLICT (kind, service_date)
                DO UPDATE SET path = EXCLUDED.path, bytes = EXCLUDED.bytes, created_at = now()
                RETURNING report_id
                """
            ),
            {
                "day": service_date,
                "path": summary.report_path,
                "bytes": Path(summary.report_path).stat().st_size,
            },
        ).scalar_one()
    key = {"day": service_date, "name": summary.model_name, "version": summary.model_version}
    conn.execute(
        text(
            "DELETE FROM monitoring.drift_runs WHERE service_date = :day "
            "AND model_name = :name AND model_version = :version"
        ),
        key,
    )
    conn.execute(
        text(
            """
            INSERT INTO monitoring.drift_runs
                (service_date, model_name, model_version, reference_rows, current_rows,
                 columns, drifted, share_drifted, drifted_columns, skipped_columns,
                 score_drifted, mean_score, reference_mean_score, report_id)
            VALUES (:day, :name, :version, :reference_rows, :current_rows, :columns, :drifted,
                    :share, :drifted_columns, :skipped, :score_drifted, :mean_score,
                    :reference_mean_score, :report_id)
            """
        ),
        {
            **key,
            "reference_rows": result.reference_rows,
            "current_rows": result.current_rows,
            "columns": len([c for c in result.columns if c.column not in CALENDAR_COLUMNS]),
            "drifted": len(summary.drifted_columns),
            "share": summary.share_drifted,
            "drifted_columns": summary.drifted_columns,
            "skipped": list(result.skipped),
            "score_drifted": summary.score_drifted,
            "mean_score": summary.mean_score,
            "reference_mean_score": summary.reference_mean_score,
            "report_id": report_id,
        },
    )
    columns = [*result.columns, *([result.score] if result.score else [])]
    conn.execute(
        text(
            """
            INSERT INTO monitoring.drift
                (service_date, model_name, model_version, column_name, kind, method,
                 statistic, threshold, drifted, monitored)
            VALUES (:day, :name, :version, :column, :kind, :method, :statistic, :threshold,
                    :drifted, :monitored)
            """
        ),
        [
            {
                **key,
                "column": c.column,
                "kind": c.kind,
                "method": c.method,
                "statistic": c.statistic,
                "threshold": c.threshold,
                "drifted": c.drifted,
                "monitored": c.column not in CALENDAR_COLUMNS and c is not result.score,
            }
            for c in columns
        ],
    )


def add_to_workspace(settings: Settings, snapshot: Any, service_date: date) -> None:
    """Put S's snapshot in the Evidently workspace (replacing an earlier one of S), with a
    dashboard of the drift share and the score's drift, for `evidently ui`."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace(settings.evidently_workspace)
    found = workspace.search_project(EVIDENTLY_PROJECT)
    if found:
        project = found[0]
    else:
        project = workspace.create_project(
            EVIDENTLY_PROJECT, description="Daily drift of flight_disruption's features and score"
        )
        _add_panels(project)
    for snapshot_id in workspace.list_runs(project.id):
        earlier = workspace.get_run(project.id, snapshot_id)
        if earlier and earlier.metadata.get("service_date") == service_date.isoformat():
            workspace.delete_run(project.id, snapshot_id)
    workspace.add_run(project.id, snapshot, name=f"drift {service_date}")


# The workspace dashboard: (title, legend, Evidently metric, its labels) per line plot.
_PANELS = (
    ("Share of drifted columns", "share", "DriftedColumnsCount", {"value_type": "share"}),
    ("Drift of the risk score", "score", "ValueDrift", {"column": "score"}),
)


def _add_panels(project: Any) -> None:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    for title, legend, metric, labels in _PANELS:
        value = PanelMetric(
            legend=legend, metric=f"evidently:metric_v2:{metric}", metric_labels=labels
        )
        project.dashboard.add_panel(line_plot_panel(title=title, values=[value]))


# --- 3. rules ---------------------------------------------------------------------------


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
    report_path: str | None = None


_DAY_NUMBERS = """
SELECT d.model_name, d.model_version, d.share_drifted, d.mean_score, d.reference_mean_score,
       r.path AS report_path, p.roc_auc, p.pr_auc, p.precision, p.recall, p.f1
FROM monitoring.drift_runs d
LEFT JOIN monitoring.reports r USING (report_id)
LEFT JOIN monitoring.performance p
  ON p.service_date = d.service_date AND p.model_name = d.model_name
 AND p.model_version = d.model_version AND p.segment_type = 'all'
WHERE d.service_date = :day AND d.model_name = :name
ORDER BY d.current_rows DESC, d.model_version DESC
LIMIT 1
"""


def day_numbers(conn: Connection, service_date: date, model_name: str) -> DayNumbers:
    row = (
        conn.execute(text(_DAY_NUMBERS), {"day": service_date, "name": model_name})
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
        report_path=row["report_path"],
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
        conn.execute(
            text(
                "DELETE FROM monitoring.rule_checks WHERE service_date = :day AND model_name = :name"
            ),
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
                text(
                    """
                    INSERT INTO monitoring.rule_checks
                        (service_date, rule, metric, value, comparison, threshold, severity,
                         breached, retrain, model_name, model_version, alert_id)
                    VALUES (:day, :rule, :metric, :value, :comparison, :threshold, :severity,
                            :breached, :retrain, :model_name, :model_version, :alert_id)
                    """
                ),
                {
                    "day": service_date,
                    **check.__dict__,
                    "model_name": numbers.model_name,
                    "model_version": numbers.model_version,
                },
            )
            checks.append(check)
    return checks


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
    if numbers.report_path:
        details["report_url"] = Path(numbers.report_path).resolve().as_uri()
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
                text(
                    "SELECT * FROM monitoring.retrain_triggers WHERE service_date BETWEEN :a AND :b"
                ),
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
            text(
                """
                SELECT c.rule, count(*) AS days, bool_or(c.service_date = :last) AS latest,
                       max(c.value) FILTER (WHERE c.service_date = :last) AS value
                FROM monitoring.rule_checks c
                JOIN monitoring.rule_checks today
                  ON today.service_date = :last AND today.rule = c.rule
                 AND today.model_name = c.model_name AND today.model_version = c.model_version
                WHERE c.service_date BETWEEN :first AND :last AND c.breached AND c.retrain
                  AND c.model_name = :name
                GROUP BY c.rule
                """
            ),
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
            text(
                """
                INSERT INTO monitoring.retrain_triggers
                    (service_date, model_name, reason, rules, cutoff, dag_run_id)
                VALUES (:day, :name, :reason, :rules, :cutoff, :run_id)
                """
            ),
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


# --- all of it ------------------------------------------------------------------------------


@dataclass
class MonitorResult:
    service_date: date
    performance: list[PerformanceRow]
    drift: list[DriftSummary]
    checks: list[RuleCheck]
    retrain: RetrainRequest | None

    @property
    def summary(self) -> str:
        lines = [f"monitoring of {self.service_date}:"]
        overall = [r for r in self.performance if r.segment_type == "all"]
        for row in overall:
            m = row.metrics
            lines.append(
                f"  performance {row.model_name} v{row.model_version}: {m['rows']:,} flights, "
                f"ROC AUC {_num(m['roc_auc'])}, precision {_num(m['precision'])}, "
                f"recall {_num(m['recall'])}"
            )
        if not overall:
            lines.append("  performance: no outcomes to measure against")
        for d in self.drift:
            lines.append(
                f"  drift {d.model_name} v{d.model_version}: {d.share_drifted:.0%} of monitored "
                f"features drifted ({', '.join(d.drifted_columns) or 'none'}); mean score "
                f"{d.mean_score:.3f} vs {d.reference_mean_score:.3f} in the reference"
            )
            if d.report_path:
                lines.append(f"  report: {d.report_path}")
        lines += [f"  rule {c.line}" for c in self.checks]
        if self.retrain:
            lines.append(f"  retrain requested: {self.retrain.reason}")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def monitor(
    service_date: date,
    settings: Settings,
    *,
    html: bool = True,
    workspace: bool = True,
    run_url: str | None = None,
) -> MonitorResult:
    """Steps 1 to 4 for S, as the DAG runs them."""
    performance = measure_performance(service_date, settings)
    drift = measure_drift(service_date, settings, html=html, workspace=workspace)
    checks = check_rules(service_date, settings, run_url=run_url)
    return MonitorResult(
        service_date, performance, drift, checks, retrain_request(service_date, settings)
    )


def outcomes_settled(service_date: date, settings: Settings) -> bool:
    """True once S's outcomes batch is loaded or rejected: monitoring can run (a rejected
    batch leaves no performance to measure, but drift and the alert still matter)."""
    from nightscore.warehouse.db import engine_for

    with engine_for(settings).connect() as conn:
        status = conn.execute(
            text(
                """
                SELECT status FROM ops.batches
                WHERE kind = 'outcomes' AND service_date = :day
                ORDER BY updated_at DESC, batch_id DESC LIMIT 1
                """
            ),
            {"day": service_date},
        ).scalar()
    return status in ("loaded", "rejected")
