"""The evening's drift check (`check_drift`), right after `nightly_scoring` publishes S.

Tonight's features and scores, streamed from the warehouse in chunks (the feature query
joined with the published scores), are checked against the profile the scoring version
was trained with (`early_warning`). The verdict and every watched feature are stored in
`monitoring.early_warnings` / `monitoring.early_warning_features` (a re-run replaces
S's rows). A warned night queues an `early_warning` alert for the stakeholders the same
evening, naming the features that moved in words, and gets Evidently's page for the
people who read it (from a bounded sample of tonight's rows, SAMPLE_ROWS, against the
reference sample), linked from the mail. A quiet night writes no page: the check stays
a few seconds.

A version trained before profiles existed has none: the check says so in the log and
records nothing (retraining gives the champion a profile).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from nightscore import links, sql
from nightscore.monitoring.early_warning import Assessment, FeatureCheck, bad_night
from nightscore.monitoring.monitor_drift import NothingScored, scored_versions
from nightscore.reasons import FEATURE_WORDS

if TYPE_CHECKING:
    from nightscore.config import Settings
    from nightscore.monitoring.rules import WarningRule

logger = logging.getLogger(__name__)

RULE = "early_warning"
# Features named in the mail and the summary, the most consequential first.
NAMED = 3


@dataclass(frozen=True)
class EveningResult:
    service_date: date
    model_name: str
    model_version: int
    assessment: Assessment | None  # None: the version has no profile
    summary: str
    alert_id: int | None = None
    report_url: str | None = None


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def describe(check: FeatureCheck) -> str:
    """One moved feature in words: what it is, tonight against the training nights."""
    words = FEATURE_WORDS.get(check.column, check.column)
    if check.beyond and check.z is not None:
        where = "far above" if check.z > 0 else "far below"
        span = "anything in the training window"
    else:
        where = "well above" if (check.z or 0) > 0 else "well below"
        span = "the training window's usual nights"
    return (
        f"{words}: tonight's average {_number(check.tonight)}, {where} {span} "
        f"(its nights averaged {_number(check.low)} to {_number(check.high)})"
    )


def summarize(assessment: Assessment) -> str:
    """The verdict in a sentence or two, for the log, the table and the mail."""
    if not assessment.warned:
        return (
            f"quiet: {assessment.rows:,} flights like the model's {assessment.training_nights} "
            "training nights"
        )
    parts = list(assessment.reasons)
    moved = assessment.moved[:NAMED]
    if moved:
        parts.append("; ".join(describe(c) for c in moved))
    if assessment.score_z is not None and "mean risk" in " ".join(assessment.reasons):
        parts.append(f"tonight's mean risk {_number(assessment.score_mean)}")
    return "warned: " + ". ".join(parts)


def scored_chunks(settings: Settings, conn: Connection, service_date: date, version: Any):
    """Tonight's features with the version's scores, chunk by chunk."""
    from nightscore.scoring import feature_chunks

    return feature_chunks(conn, service_date, scored_by=(version.model_name, version.model_version))


def check_drift(
    service_date: date,
    settings: Settings,
    *,
    html: bool = True,
    progress: Callable[[str], None] = logger.info,
) -> EveningResult:
    """S's scored flights against the scoring version's training nights: stored, and an
    alert (with Evidently's page) when tonight's scores deserve less trust."""
    from nightscore import registry
    from nightscore.monitoring.early_warning import check_night
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    with engine.connect() as conn:
        versions = scored_versions(conn, service_date, settings.model_name)
    if not versions:
        raise NothingScored(f"nothing was scored for {service_date}: is it loaded and scored?")
    version = versions[0]
    profile = registry.drift_profile(settings, version.mlflow_run_id)
    if profile is None:
        summary = (
            f"{version.model_name} v{version.model_version} has no drift profile (trained "
            "before profiles were logged): no evening check; retrain to get one"
        )
        progress(summary)
        return EveningResult(service_date, version.model_name, version.model_version, None, summary)
    rule = load_rules(settings).early_warning
    with engine.connect() as conn:
        assessment = check_night(
            profile, scored_chunks(settings, conn, service_date, version), rule
        )
    summary = summarize(assessment)
    progress(f"{service_date}, {version.model_name} v{version.model_version}: {summary}")
    report_path = report_url = None
    size = 0
    if assessment.warned and html:
        report_path, size = _write_report(settings, service_date, version, assessment)
        report_url = links.file_url(settings, report_path)
        progress(f"Evidently's page of tonight's sample: {report_url}")
    with engine.begin() as conn:
        report_id = None
        if report_path:
            from nightscore.monitoring.report_store import record_report

            report_id = record_report(conn, settings, "evening", service_date, report_path, size)
        alert_id = None
        if assessment.warned:
            alert_id = _queue_warning(
                conn, settings, service_date, version, assessment, summary, report_url
            )
        store(conn, service_date, version, assessment, rule, summary, alert_id, report_id)
    return EveningResult(
        service_date,
        version.model_name,
        version.model_version,
        assessment,
        summary,
        alert_id,
        report_url,
    )


def _write_report(
    settings: Settings, service_date: date, version: Any, assessment: Assessment
) -> tuple[str, int]:
    """Evidently's report of tonight's sample against the reference sample."""
    from nightscore.features import FEATURES
    from nightscore.monitoring.drift import evidently_drift, save_html
    from nightscore.monitoring.monitor_drift import reference_sample

    reference = reference_sample(settings, version.mlflow_run_id)
    result = evidently_drift(
        reference, assessment.sample, columns=[c for c in FEATURES if c in reference]
    )
    location = f"{settings.reports_dir.rstrip('/')}/drift/evening_{service_date}.html"
    return location, save_html(result.snapshot, location)


def _queue_warning(
    conn: Connection,
    settings: Settings,
    service_date: date,
    version: Any,
    assessment: Assessment,
    summary: str,
    report_url: str | None,
) -> int | None:
    from nightscore.monitoring.outbox import raise_alert

    moved = assessment.moved[:NAMED]
    lead = FEATURE_WORDS.get(moved[0].column, moved[0].column) if moved else "the mean risk"
    lines = [
        f"Tonight's risk scores for {service_date} deserve less trust than usual: "
        f"{'; '.join(assessment.reasons)}.",
        "",
        *(f"- {describe(c)}" for c in moved),
    ]
    if assessment.score_mean is not None:
        lines.append(
            f"- the mean risk tonight: {_number(assessment.score_mean)} "
            f"({_number(assessment.score_z)} standard deviations from the training nights')"
        )
    lines += [
        "",
        "The scores are published; read them with care, and compare with what happens "
        "tomorrow: the morning monitoring reports how the night really went.",
    ]
    return raise_alert(
        conn,
        rule=RULE,
        severity="warning",
        subject=f"Tonight's scores ({service_date}) deserve less trust: {lead} moved",
        body="\n".join(lines),
        dedup_key=f"{RULE}:{version.model_name}:{version.model_version}:{service_date}",
        service_date=service_date,
        audience="stakeholders",
        details={
            "model": f"{version.model_name} v{version.model_version}",
            "flights": assessment.rows,
            "moved_features": ", ".join(c.column for c in moved) or "none",
            "expected_auc": assessment.expected_auc,
            **({"report_url": report_url} if report_url else {}),
        },
    )


def store(
    conn: Connection,
    service_date: date,
    version: Any,
    assessment: Assessment,
    rule: WarningRule,
    summary: str,
    alert_id: int | None,
    report_id: int | None,
) -> None:
    """Replace S's evening check for the version, in the caller's transaction."""
    key = {"day": service_date, "name": version.model_name, "version": version.model_version}
    conn.execute(text(sql.load("monitoring/early_warnings_delete")), key)
    conn.execute(
        text(sql.load("monitoring/early_warnings_insert")),
        {
            **key,
            "flights": assessment.rows,
            "training_nights": assessment.training_nights,
            "warned": assessment.warned,
            "reasons": list(assessment.reasons),
            "moved": [c.column for c in assessment.moved],
            "excess": assessment.importance_excess,
            "mean_score": assessment.score_mean,
            "score_z": assessment.score_z,
            "expected_auc": assessment.expected_auc,
            "evidently_share": assessment.evidently_share,
            "rule": json.dumps(asdict(rule)),
            "summary": summary,
            "alert_id": alert_id,
            "report_id": report_id,
        },
    )
    conn.execute(
        text(sql.load("monitoring/early_warning_features_insert")),
        [
            {
                **key,
                "column": c.column,
                "tonight": c.tonight,
                "mean": c.mean,
                "sd": c.sd,
                "low": c.low,
                "high": c.high,
                "z": c.z,
                "importance": c.importance,
                "beyond": c.beyond,
                "excess": c.excess,
                "method": c.evidently_method,
                "statistic": c.evidently_statistic,
                "drifted": c.evidently_drifted,
            }
            for c in assessment.features
        ],
    )


def record_outcome(conn: Connection, service_date: date, settings: Settings) -> list[dict]:
    """The morning after: what happened on S, next to the evening's verdict (the
    champion's overall performance), stored on S's checks. Returns them, for the mail."""
    rows = conn.execute(text(sql.load("monitoring/early_warning_outcomes")), {"day": service_date})
    recorded = []
    for row in rows.mappings().all():
        observed = row["positives"] / row["rows"] if row["rows"] else None
        why = (
            bad_night(row["roc_auc"], row["mean_score"], observed, settings.gate_floor_roc_auc)
            if observed is not None and row["mean_score"] is not None
            else None
        )
        conn.execute(
            text(sql.load("monitoring/early_warning_outcome_update")),
            {
                "day": service_date,
                "name": row["model_name"],
                "version": row["model_version"],
                "observed_rate": observed,
                "roc_auc": row["roc_auc"],
                "bad": None if observed is None else why is not None,
            },
        )
        recorded.append({**row, "observed_rate": observed, "bad_because": why})
    return recorded
