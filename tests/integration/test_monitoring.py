"""The monitoring job against a real warehouse, a real MLflow server (the reference sample)
and a real SMTP server on loopback: performance, Evidently drift stored per column with
its report and workspace snapshot, alert rules with cooldown, the retrain trigger, and the
alert email."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy

import pytest
from sqlalchemy import text

from nightscore import gate, links, scoring, store, training
from nightscore.features import FEATURES
from nightscore.monitoring import monitor, monitor_drift, monitor_rules
from nightscore.monitoring.drift import HTML_MAX_BYTES
from nightscore.monitoring.outbox import send_pending
from nightscore.warehouse.db import engine_for
from nightscore_dev.mailsink import MailSink
from nightscore_dev.stack import free_port

# Slow: a champion trained and three nights scored first.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CUTOFF = date(2013, 3, 4)
DAYS = (date(2013, 3, 7), date(2013, 3, 8), date(2013, 3, 9))
TO = ("oncall@example.com",)
RUN_URL = "http://airflow.example:8080/dags/monitoring/runs/scheduled__2013-03-08"

# roc_auc_floor always breaches (a floor of 0.99), drift_share never does (above 1.0).
RULES = """
retrain_after: {breaches: 2, days: 5}
rules:
  roc_auc_floor:
    description: ROC AUC of the day
    metric: roc_auc
    below: 0.99
    severity: critical
    cooldown_days: 2
    retrain: true
  drift_share:
    metric: drift_share
    above: 1.0
    severity: warning
    cooldown_days: 3
    retrain: true
"""


@pytest.fixture(scope="module")
def settings(history_warehouse, mlflow_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("monitoring")
    rules = folder / "rules.yaml"
    rules.write_text(RULES)
    settings = history_warehouse.replace(
        mlflow_tracking_uri=mlflow_server,
        model_name="flight_disruption_monitoring",
        training_window_days=40,
        validation_days=10,
        tuning_trials=1,
        gate_floor_roc_auc=0.5,
        alert_rules_path=str(rules),
        reports_dir=str(folder / "reports"),
        evidently_workspace=str(folder / "evidently"),
        alert_email_to=TO,
        public_airflow_url="http://airflow.example:8080",
    )
    outcome = training.train_challenger(CUTOFF, settings)
    assert gate.gate_challenger(outcome.model, CUTOFF, settings).applied
    for day in DAYS:
        scoring.score(day, settings)
    return settings


def rows(settings, sql, **params):
    with engine_for(settings).connect() as conn:
        return conn.execute(text(sql), {"m": settings.model_name, **params}).mappings().all()


def test_a_day_is_measured_drift_stored_per_column_with_report_and_snapshot(settings):
    day = DAYS[0]
    result = monitor.monitor(day, settings, run_url=RUN_URL)
    again = monitor.monitor(day, settings, run_url=RUN_URL)  # a re-run replaces, never duplicates

    overall = [r for r in again.performance if r.segment_type == "all"]
    assert len(overall) == 1 and overall[0].metrics["rows"] > 500
    assert 0.5 < overall[0].metrics["roc_auc"] < 1
    drift = rows(
        settings,
        "SELECT column_name, method, statistic, threshold, drifted, monitored "
        "FROM monitoring.drift WHERE service_date = :d AND model_name = :m",
        d=day,
    )
    (stored,) = rows(
        settings,
        "SELECT * FROM monitoring.drift_runs WHERE service_date = :d AND model_name = :m",
        d=day,
    )
    assert {r["column_name"] for r in drift} == {*FEATURES, "score"} - set(
        stored["skipped_columns"]
    )
    assert stored["current_rows"] == overall[0].metrics["rows"]
    assert result.drift[0].share_drifted == again.drift[0].share_drifted
    assert all(r["method"] in ("wasserstein", "jensenshannon") for r in drift)
    assert all(r["drifted"] == (r["statistic"] >= r["threshold"]) for r in drift)
    monitored = [r for r in drift if r["monitored"]]
    assert {r["column_name"] for r in drift if not r["monitored"]} == {
        *monitor_drift.CALENDAR_COLUMNS,
        "score",
    }
    (run,) = rows(
        settings,
        "SELECT * FROM analytics.drift WHERE service_date = :d AND model_name = :m",
        d=day,
    )
    assert float(run["share_drifted"]) == pytest.approx(
        sum(r["drifted"] for r in monitored) / len(monitored), abs=1e-3
    )
    assert sorted(run["drifted_columns"]) == sorted(
        r["column_name"] for r in monitored if r["drifted"]
    )
    # analytics.drift shows the report's link; monitoring.reports also has its location.
    key = f"drift/drift_report_{day}.html"
    assert run["report"] == f"http://airflow.example:8080/nightscore/files/reports/{key}"
    (report,) = rows(
        settings,
        "SELECT path, bytes FROM monitoring.reports WHERE kind = 'drift' AND service_date = :d",
        d=day,
    )
    assert report["path"] == links.resolve(settings, "reports", key)
    html = store.read_bytes(report["path"])
    assert report["bytes"] == len(html)
    assert 100_000 < len(html) < HTML_MAX_BYTES and b"hist_route_rate" in html

    from evidently.ui.workspace import Workspace

    workspace = Workspace(settings.evidently_workspace)
    (project,) = workspace.search_project(monitor_drift.EVIDENTLY_PROJECT)
    snapshots = [workspace.get_run(project.id, s) for s in workspace.list_runs(project.id)]
    assert [s.metadata["service_date"] for s in snapshots] == [day.isoformat()]


def test_rules_alert_with_cooldown_and_ask_for_a_retrain_on_repeated_breaches(
    settings, monkeypatch
):
    results = [
        monitor.monitor(day, settings, html=day == DAYS[0], workspace=False, run_url=RUN_URL)
        for day in DAYS
    ]

    checks = rows(
        settings,
        "SELECT service_date, rule, breached, alert_id FROM monitoring.rule_checks "
        "WHERE model_name = :m ORDER BY service_date, rule",
    )
    assert [(c["service_date"], c["rule"], c["breached"]) for c in checks] == [
        (day, rule, rule == "roc_auc_floor")
        for day in DAYS
        for rule in ("drift_share", "roc_auc_floor")
    ]
    alerts = rows(
        settings,
        "SELECT service_date, status, severity, subject, details FROM monitoring.alerts "
        "WHERE cooldown_key = 'roc_auc_floor:' || :m ORDER BY service_date",
    )
    # Cooldown 2 days: the 7th is mailed, the 8th is suppressed, the 9th is mailed again.
    assert [(a["service_date"], a["status"]) for a in alerts] == [
        (DAYS[0], "pending"),
        (DAYS[1], "suppressed"),
        (DAYS[2], "pending"),
    ]
    assert alerts[0]["severity"] == "critical"
    # The retrain: asked for on the second breach, once within the window.
    assert results[0].retrain is None
    assert results[1].retrain is not None and results[2].retrain is None
    request = results[1].retrain
    assert request.cutoff == date(2013, 3, 9)
    assert "roc_auc_floor breached on 2 of the last 5 days" in request.reason
    (trigger,) = rows(settings, "SELECT * FROM monitoring.retrain_triggers WHERE model_name = :m")
    assert (trigger["service_date"], trigger["rules"]) == (DAYS[1], ["roc_auc_floor"])
    assert monitor_rules.retrain_request(DAYS[1], settings) == request  # a re-run asks the same

    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true&timeout=5",
    )
    with MailSink(settings.reports_dir + "/mail", port=port) as sink:
        sent = send_pending(settings)
        saved = list(sink.saved)
    assert sent.ok, sent.summary
    mine = [m for m in saved if "ROC AUC of the day" in m.subject]
    assert [m.recipients for m in mine] == [TO, TO]
    value = alerts[0]["details"]["value"]
    msg = message_from_bytes(mine[0].eml.read_bytes(), policy=policy.default)
    assert "CRITICAL" in msg["Subject"] and str(DAYS[0]) in msg["Subject"]
    body = msg.get_body(("plain",)).get_content()
    assert f"{value:.3f}" in body and "0.99" in body
    html = msg.get_body(("html",)).get_content()
    # The first day's alert links the run that raised it and the day's Evidently report.
    report = (
        f"http://airflow.example:8080/nightscore/files/reports/drift/drift_report_{DAYS[0]}.html"
    )
    assert RUN_URL in html and report in html and "file://" not in html
    assert mine[0].html is not None and RUN_URL in mine[0].html.read_text()
