"""The evening's early warning on real services: the session's champion (trained with its
drift profile, logged to a real MLflow server), a night scored into a real warehouse,
checked by `evening.check_drift` as the `check_drift` task runs it; the mail through a
real SMTP server on loopback; the morning's verdict on how the night turned out.

The rule's quality over a whole year is measured by `make bench-alerts`; here the rules
file forces each verdict, so that both paths run on real data."""

from __future__ import annotations

import json
from datetime import date
from email import message_from_bytes, policy

import numpy as np
import pytest
from sqlalchemy import text

from nightscore import registry, scoring, store
from nightscore.features import build_features
from nightscore.monitoring import early_warning, evening, performance
from nightscore.monitoring.monitor_drift import scored_versions
from nightscore.monitoring.outbox import send_pending
from nightscore.monitoring.rules import WarningRule
from nightscore.reasons import FEATURE_WORDS
from nightscore.warehouse.db import engine_for
from nightscore_dev.mailsink import MailSink
from nightscore_dev.stack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Nights no other module scores under the shared champion's name.
QUIET, WARNED = date(2013, 3, 7), date(2013, 3, 9)
TO = ("stakeholders@example.com",)

QUIET_RULES = """
rules: {}
early_warning: {importance_excess_above: null, score_sd_above: null, expected_auc_below: null}
"""
# Any feature a hair off its training nights' mean counts: the night is warned.
WARNING_RULES = """
rules: {}
early_warning: {limit_sd: 0.01, importance_excess_above: 0.0, score_sd_above: null}
"""


@pytest.fixture(scope="module")
def settings(champion_settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("evening")
    settings = champion_settings.replace(
        reports_dir=str(folder / "reports"),
        alert_email_to=("oncall@example.com",),
        report_email_to=TO,
        public_airflow_url="http://airflow.example:8080",
    )
    for day in (QUIET, WARNED):
        scoring.score(day, settings)
    yield settings
    # The champion is the session's: its later nights would become the other modules'
    # `analytics.tonight`, and their performance rows. Leave the warehouse as found.
    with engine_for(settings).begin() as conn:
        conn.execute(
            text(
                "DELETE FROM scoring.predictions WHERE model_name = :m "
                "AND service_date IN (:quiet, :warned)"
            ),
            {"m": settings.model_name, "quiet": QUIET, "warned": WARNED},
        )


def with_rules(settings, tmp_path, rules: str):
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    return settings.replace(alert_rules_path=str(path))


def rows(settings, sql, **params):
    with engine_for(settings).connect() as conn:
        return conn.execute(text(sql), {"m": settings.model_name, **params}).mappings().all()


def test_the_champion_carries_its_drift_profile(settings):
    with engine_for(settings).connect() as conn:
        version = scored_versions(conn, QUIET, settings.model_name)[0]
    profile = registry.drift_profile(settings, version.mlflow_run_id)
    assert profile is not None and profile["format"] == early_warning.PROFILE_FORMAT
    # One night per labelled day of the training window (40 days, two days' lag).
    assert 30 <= profile["nights"] <= 40
    assert set(early_warning.WATCHED) <= set(profile["columns"])
    shares = [profile["columns"][f]["importance"] for f in early_warning.WATCHED]
    assert all(s >= 0 for s in shares) and 0.5 < sum(shares) <= 1.0 + 1e-9
    for name in ("wind_speed", "hist_route_hour_rate", "score"):
        c = profile["columns"][name]
        assert c["low"] <= c["mean"] <= c["high"] and c["sd"] > 0
    json.dumps(profile)  # JSON-ready, as stored


def test_a_quiet_night_is_stored_and_mails_nobody(settings, tmp_path):
    quiet = with_rules(settings, tmp_path, QUIET_RULES)
    result = evening.check_drift(QUIET, quiet)
    assert result.assessment is not None and not result.assessment.warned
    assert result.alert_id is None and result.report_url is None
    assert result.summary.startswith("quiet")
    (run,) = rows(
        settings,
        "SELECT * FROM monitoring.early_warnings WHERE service_date = :d AND model_name = :m",
        d=QUIET,
    )
    assert not run["warned"] and run["alert_id"] is None and run["report_id"] is None
    assert run["flights"] == result.assessment.rows > 500
    features = rows(
        settings,
        "SELECT * FROM monitoring.early_warning_features "
        "WHERE service_date = :d AND model_name = :m",
        d=QUIET,
    )
    assert {f["column_name"] for f in features} == set(early_warning.WATCHED)
    # Evidently's default test ran on the same rows for every watched feature.
    assert all(f["evidently_method"] for f in features)
    assert not rows(
        settings,
        "SELECT 1 FROM monitoring.alerts WHERE rule = 'early_warning' AND service_date = :d",
        d=QUIET,
    )


def test_the_streamed_check_equals_the_check_of_the_whole_night(settings, tmp_path):
    """The warehouse path (features joined with scores, in chunks) and a frame built
    with `build_features` plus the published scores give the same night averages."""
    quiet = with_rules(settings, tmp_path, QUIET_RULES)
    streamed = evening.check_drift(QUIET, quiet).assessment
    with engine_for(settings).connect() as conn:
        version = scored_versions(conn, QUIET, settings.model_name)[0]
        frame = build_features(conn, QUIET, QUIET)
        scores = conn.execute(
            text(
                "SELECT carrier, flight, origin, score FROM scoring.predictions "
                "WHERE service_date = :d AND model_name = :m"
            ),
            {"d": QUIET, "m": settings.model_name},
        ).all()
    score_of = {(c, int(f), o): s for c, f, o, s in scores}
    frame["score"] = [
        score_of[(c, f, o)]
        for c, f, o in frame[["carrier", "flight", "origin"]].itertuples(index=False)
    ]
    profile = registry.drift_profile(settings, version.mlflow_run_id)
    whole = early_warning.check_night(profile, frame, WarningRule())
    assert streamed.rows == whole.rows == len(frame)
    for a, b in zip(streamed.features, whole.features, strict=True):
        assert a.column == b.column
        assert a.tonight == pytest.approx(b.tonight, rel=1e-9, abs=1e-12)
        assert a.evidently_statistic == pytest.approx(b.evidently_statistic, rel=1e-6, abs=1e-9)
    assert streamed.expected_auc == pytest.approx(whole.expected_auc, abs=1e-9)
    assert streamed.score_mean == pytest.approx(float(np.mean(frame["score"])), rel=1e-6)


def test_a_warned_night_mails_the_stakeholders_in_words_with_the_page(
    settings, tmp_path, monkeypatch
):
    warned = with_rules(settings, tmp_path, WARNING_RULES)
    result = evening.check_drift(WARNED, warned)
    assessment = result.assessment
    assert assessment is not None and assessment.warned and assessment.moved
    assert result.alert_id is not None and result.report_url
    assert result.report_url.startswith("http://airflow.example:8080/")
    # Evidently's page of the night's sample, recorded and in the store.
    (report,) = rows(
        settings,
        "SELECT path, bytes, url FROM monitoring.reports "
        "WHERE kind = 'evening' AND service_date = :d",
        d=WARNED,
    )
    assert store.exists(report["path"]) and 0 < report["bytes"] < 5_000_000
    assert report["url"] == result.report_url

    # A re-run replaces the night's check and queues no second alert.
    again = evening.check_drift(WARNED, warned)
    assert again.alert_id is None
    (run,) = rows(
        settings,
        "SELECT * FROM monitoring.early_warnings WHERE service_date = :d AND model_name = :m",
        d=WARNED,
    )
    assert run["warned"] and run["moved_features"] == [c.column for c in assessment.moved]
    (alert,) = rows(
        settings,
        "SELECT * FROM monitoring.alerts WHERE rule = 'early_warning' AND service_date = :d",
        d=WARNED,
    )
    assert alert["audience"] == "stakeholders" and alert["status"] == "pending"

    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true&timeout=5",
    )
    with MailSink(str(tmp_path / "mail"), port=port) as sink:
        sent = send_pending(warned)
        saved = list(sink.saved)
    assert sent.ok, sent.summary
    (mail,) = [m for m in saved if "deserve less trust" in m.subject]
    assert mail.recipients == TO
    msg = message_from_bytes(mail.eml.read_bytes(), policy=policy.default)
    assert str(WARNED) in msg["Subject"] and msg["X-Nightscore-Rule"] == "early_warning"
    body = msg.get_body(("plain",)).get_content()
    first = assessment.moved[0]
    assert FEATURE_WORDS[first.column] in body and "training window" in body
    html = msg.get_body(("html",)).get_content()
    assert result.report_url in html


def test_the_morning_records_how_the_night_turned_out(settings, tmp_path):
    quiet = with_rules(settings, tmp_path, QUIET_RULES)
    evening.check_drift(QUIET, quiet)
    performance.measure(QUIET, quiet)
    with engine_for(settings).begin() as conn:
        (outcome,) = [
            r
            for r in evening.record_outcome(conn, QUIET, quiet)
            if r["model_name"] == settings.model_name
        ]
    (run,) = rows(
        settings,
        "SELECT * FROM monitoring.early_warnings WHERE service_date = :d AND model_name = :m",
        d=QUIET,
    )
    observed = outcome["positives"] / outcome["rows"]
    expected = early_warning.bad_night(
        outcome["roc_auc"], outcome["mean_score"], observed, settings.gate_floor_roc_auc
    )
    assert run["observed_rate"] == pytest.approx(observed)
    assert run["turned_out_bad"] is (expected is not None)
    (view,) = rows(
        settings,
        "SELECT * FROM analytics.early_warnings WHERE service_date = :d AND model_name = :m",
        d=QUIET,
    )
    assert view["turned_out_bad"] is run["turned_out_bad"] and view["warned"] is False
