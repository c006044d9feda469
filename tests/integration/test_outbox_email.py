"""Sending the alert outbox by email, against a real SMTP server on loopback (aiosmtpd)
and a real warehouse: delivery, an SMTP outage and the retry, no double sends (re-runs,
two concurrent senders), no recipients, and a malformed connection."""

from __future__ import annotations

import asyncio
import smtplib
import sys
import threading
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import text

from nightscore.monitoring import mailer
from nightscore.monitoring.outbox import raise_alert, send_pending
from nightscore.warehouse.db import engine_for
from nightscore_dev.stack import free_port

pytestmark = pytest.mark.integration

TO = ("oncall@example.com", "ml-team@example.com")
FROM = "alerts@nightscore.example"


class Recorder:
    """An aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.reject: bytes | None = None  # refuse messages containing these bytes
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.reject and self.reject in envelope.original_content:
            return "554 5.6.0 Message rejected by policy"
        with self._lock:
            self.envelopes.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.envelopes]


class SmtpSink:
    """A real SMTP server on a fixed loopback port that can be stopped and started again."""

    def __init__(self, port: int, recorder: Recorder, **server_kwargs):
        self.port, self.recorder, self.server_kwargs = port, recorder, server_kwargs
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.recorder, hostname="127.0.0.1", port=self.port, **self.server_kwargs
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def sink(monkeypatch):
    port = free_port()
    server = SmtpSink(port, Recorder())
    server.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true&timeout=5"
        f"&from_email={FROM.replace('@', '%40')}",
    )
    yield server
    server.stop()


@pytest.fixture
def settings(fresh_warehouse):
    return fresh_warehouse.replace(alert_email_to=TO)


def queue(settings, n: int = 2, prefix: str = "drop") -> list[str]:
    """Queue n alerts with numbers in their body and details; returns their dedup keys."""
    keys = []
    with engine_for(settings).begin() as conn:
        for i in range(n):
            key = f"{prefix}:{i}"
            raise_alert(
                conn,
                rule="performance_drop",
                severity="critical",
                service_date=date(2013, 2, 8),
                subject=f"[nightscore] ROC AUC of 2013-02-08 below the floor ({i})",
                body=f"ROC AUC 0.6{i}12 fell below the floor 0.65 on 930 flights.",
                details={
                    "roc_auc": float(f"0.6{i}12"),
                    "floor": 0.65,
                    "flights": 930,
                    "report_url": f"http://reports.example/2013-02-08/{i}.html",
                    "airflow_url": "http://127.0.0.1:8080/dags/monitoring/runs/r1",
                },
                dedup_key=key,
            )
            keys.append(key)
    return keys


def rows(settings) -> list[dict]:
    with engine_for(settings).connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT alert_id, dedup_key, status, attempts, last_error, sent_at"
                    " FROM monitoring.alerts ORDER BY alert_id"
                )
            ).mappings()
        ]


def test_pending_alerts_are_emailed_and_marked_sent(settings, sink):
    queue(settings, 2)

    result = send_pending(settings)

    assert (result.sent, result.failed, result.errors) == (2, 0, ())
    envelopes = sink.recorder.envelopes
    assert [(mail_from, sorted(rcpt)) for mail_from, rcpt, _ in envelopes] == [
        (FROM, sorted(TO)),
        (FROM, sorted(TO)),
    ]
    first, second = sink.recorder.messages()  # oldest first
    assert first["Subject"] == "[nightscore] CRITICAL: ROC AUC of 2013-02-08 below the floor (0)"
    assert second["Subject"].endswith("below the floor (1)")
    assert first["To"] == ", ".join(TO)
    plain = first.get_body(("plain",)).get_content()
    for shown in (
        "ROC AUC 0.6012 fell below the floor 0.65 on 930 flights.",
        "Severity:     CRITICAL",
        "Service date: 2013-02-08",
        "roc_auc",
        "0.6012",
        "flights",
        "930",
        "Report: http://reports.example/2013-02-08/0.html",
        "Airflow run: http://127.0.0.1:8080/dags/monitoring/runs/r1",
    ):
        assert shown in plain, shown
    html = first.get_body(("html",)).get_content()
    assert '<a href="http://reports.example/2013-02-08/0.html">Report</a>' in html
    assert "0.6012" in html
    for row in rows(settings):
        assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)
        assert row["sent_at"] is not None


def test_an_smtp_outage_loses_nothing_and_the_next_run_sends(settings, sink):
    queue(settings, 3)
    sink.stop()

    down = send_pending(settings)

    assert (down.sent, down.failed) == (0, 3)
    assert len(down.errors) == 1  # one outage, not one error per alert
    assert "connection refused" in down.errors[0].lower()
    for row in rows(settings):
        assert (row["status"], row["attempts"], row["sent_at"]) == ("pending", 1, None)
        assert "connection refused" in row["last_error"].lower()

    sink.start()
    up = send_pending(settings)

    assert (up.sent, up.failed, up.errors) == (3, 0, ())
    assert len(sink.recorder.envelopes) == 3
    for row in rows(settings):
        assert (row["status"], row["attempts"]) == ("sent", 2)  # one failed run, one sent
        assert row["sent_at"] is not None
        assert "connection refused" in row["last_error"].lower()  # the history stays


def test_one_refused_alert_does_not_hold_up_the_others(settings, sink):
    queue(settings, 3)
    sink.recorder.reject = b"below the floor (1)"

    first = send_pending(settings)

    assert (first.sent, first.failed) == (2, 1)
    assert "554" in first.errors[0]
    assert [(r["status"], r["attempts"]) for r in rows(settings)] == [
        ("sent", 1),
        ("pending", 1),
        ("sent", 1),
    ]
    assert "Message rejected by policy" in rows(settings)[1]["last_error"]

    sink.recorder.reject = None
    second = send_pending(settings)

    assert (second.sent, second.failed) == (1, 0)
    assert [(r["status"], r["attempts"]) for r in rows(settings)][1] == ("sent", 2)
    assert len(sink.recorder.envelopes) == 3


def test_a_run_sends_at_most_limit_alerts_oldest_first(settings, sink):
    queue(settings, 3)

    assert send_pending(settings, limit=2).sent == 2

    assert [r["status"] for r in rows(settings)] == ["sent", "sent", "pending"]


def test_a_rerun_sends_nothing_twice(settings, sink):
    keys = queue(settings, 2)
    assert send_pending(settings).sent == 2

    again = send_pending(settings)
    with engine_for(settings).begin() as conn:  # the same problem raised again
        requeued = raise_alert(
            conn,
            rule="performance_drop",
            severity="critical",
            subject="the same drop",
            body="raised again by a re-run",
            dedup_key=keys[0],
        )

    assert (again.sent, again.failed, again.errors) == (0, 0, ())
    assert requeued is None
    assert send_pending(settings).sent == 0
    assert len(sink.recorder.envelopes) == 2
    assert [row["attempts"] for row in rows(settings)] == [1, 1]


def test_two_concurrent_senders_never_send_the_same_alert(settings, sink):
    sink.recorder.delay_s = 0.05  # keep both senders busy at the same time
    n = 30
    queue(settings, n)
    start = threading.Barrier(2)
    results = []

    def sender():
        start.wait()
        results.append(send_pending(settings))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    ids = [m["X-Nightscore-Alert-Id"] for m in sink.recorder.messages()]
    assert len(ids) == n
    assert len(set(ids)) == n
    assert sum(r.sent for r in results) == n
    assert all(r.failed == 0 for r in results)
    assert all(r.sent > 0 for r in results), "both senders should have taken a share"
    assert {(row["status"], row["attempts"]) for row in rows(settings)} == {("sent", 1)}


def test_no_recipients_leaves_alerts_pending_and_says_so(fresh_warehouse, sink):
    queue(fresh_warehouse, 2)

    result = send_pending(fresh_warehouse)  # alert_email_to is empty

    assert (result.sent, result.failed) == (0, 0)
    assert "NIGHTSCORE_ALERT_EMAIL_TO" in result.errors[0]
    assert "2 pending alert(s)" in result.errors[0]
    assert sink.recorder.envelopes == []
    assert {(row["status"], row["attempts"]) for row in rows(fresh_warehouse)} == {("pending", 0)}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("smtp://127.0.0.1:notaport", "not a valid SMTP URI"),
        ("smtp://user:s3cret@127.0.0.1:99999", "not a valid SMTP URI"),
        ("http://127.0.0.1:1025", "must be an smtp:// URI"),
        ("127.0.0.1:1025", "must be an smtp:// URI"),
        ("smtp://:1025?disable_tls=true", "has no host"),
        ("smtp://127.0.0.1:1025?disable_ssl=maybe", "disable_ssl must be true or false"),
        ("smtp://127.0.0.1:1025?timeout=soon", "timeout must be a number"),
        ('{"host": "127.0.0.1", "port": 1025', "not valid JSON"),
        ('{"conn_type": "postgres", "host": "db"}', "expected 'smtp'"),
    ],
)
def test_a_malformed_smtp_connection_is_a_clear_error(monkeypatch, value, says):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", value)

    with pytest.raises(mailer.SmtpConfigError, match="AIRFLOW_CONN_SMTP_DEFAULT") as error:
        mailer.smtp_settings()

    assert says in str(error.value)
    assert "s3cret" not in str(error.value)


def test_a_malformed_smtp_connection_fails_the_run_and_touches_nothing(settings, monkeypatch):
    queue(settings, 1)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", "smtp://127.0.0.1:notaport")

    with pytest.raises(mailer.SmtpConfigError, match="not a valid SMTP URI"):
        send_pending(settings)

    assert [(r["status"], r["attempts"]) for r in rows(settings)] == [("pending", 0)]


def test_an_unset_smtp_connection_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.delitem(sys.modules, "airflow.sdk", raising=False)

    with pytest.raises(mailer.SmtpConfigError, match="AIRFLOW_CONN_SMTP_DEFAULT is not set"):
        mailer.smtp_settings()


def test_uri_and_json_forms_give_the_same_settings():
    uri = (
        "smtp://alerts%40corp:p%40ss@mail.example:587"
        "?disable_ssl=true&from_email=ns%40corp.example&timeout=7"
    )
    json_form = (
        '{"conn_type": "smtp", "host": "mail.example", "port": 587, "login": "alerts@corp",'
        ' "password": "p@ss", "extra": {"disable_ssl": true, "from_email": "ns@corp.example",'
        ' "timeout": 7}}'
    )
    expected = mailer.SmtpSettings(
        host="mail.example",
        port=587,
        login="alerts@corp",
        password="p@ss",
        ssl=False,
        starttls=True,
        from_email="ns@corp.example",
        timeout=7.0,
    )

    assert mailer.parse_connection(uri) == expected
    assert mailer.parse_connection(json_form) == expected
    # The Airflow provider's defaults: SSL on, the sender nightscore@localhost, 30 s.
    assert mailer.parse_connection("smtp://mail.example") == mailer.SmtpSettings(
        host="mail.example"
    )
    assert "p@ss" not in repr(expected)


def test_send_message_logs_in_when_the_connection_has_a_login():
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd answers 535 itself (else the client waits forever).
        return AuthResult(success=auth_data.password == b"right", handled=False)

    recorder = Recorder()
    server = SmtpSink(free_port(), recorder, authenticator=authenticator, auth_require_tls=False)
    server.start()
    try:
        base = f"127.0.0.1:{server.port}?disable_ssl=true&disable_tls=true&timeout=5"
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = "hello", FROM, TO[0]
        msg.set_content("body")

        mailer.send_message(msg, mailer.parse_connection(f"smtp://bot:right@{base}"))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            mailer.send_message(msg, mailer.parse_connection(f"smtp://bot:wrong@{base}"))
    finally:
        server.stop()

    assert seen[0] == (b"bot", b"right")
    assert set(seen[1:]) == {(b"bot", b"wrong")}  # smtplib tries each mechanism
    assert len(recorder.envelopes) == 1
