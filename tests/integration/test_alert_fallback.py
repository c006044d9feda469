"""Alerts when the warehouse is down: the failure callback mails the notice directly
(real SMTP sink on loopback) and spools it; the next drain queues it in the real
warehouse's outbox as sent, and no second mail goes out. SMTP down too: the notice stays
spooled and the next drain mails it once. Two drains at once mail each alert once."""

from __future__ import annotations

import threading
from datetime import date
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, text

from nightscore.monitoring import spool
from nightscore.monitoring.delivery import deliver
from nightscore.monitoring.mailer import alert_message_id
from nightscore.monitoring.notify import task_failure_callback
from nightscore.monitoring.outbox import raise_alert
from nightscore.warehouse.db import engine_for
from nightscore_dev.mailsink import MailSink
from nightscore_dev.stack import free_port

pytestmark = pytest.mark.integration

TO = ("oncall@example.com",)
FROM = "alerts@nightscore.example"
RUN_ID = "scheduled__2013-02-11T22:00:00+00:00"
KEY = f"infrastructure_unavailable:nightly_scoring:{RUN_ID}:publish_predictions"


class Sink:
    """The real SMTP sink on a fixed loopback port, stopped and started at will."""

    def __init__(self, folder, port: int):
        self.folder, self.port = folder, port
        self.server: MailSink | None = None
        self.received: list = []

    def start(self) -> None:
        self.server = MailSink(self.folder, port=self.port).start()

    def stop(self) -> None:
        if self.server is not None:
            self.received += self.server.saved
            self.server.stop()
            self.server = None

    def messages(self) -> list:
        saved = self.received + (self.server.saved if self.server else [])
        return [message_from_bytes(m.eml.read_bytes(), policy=policy.default) for m in saved]


@pytest.fixture
def sink(tmp_path, monkeypatch):
    server = Sink(tmp_path / "mail", free_port())
    server.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{server.port}?disable_ssl=true&disable_tls=true&timeout=5"
        f"&from_email={FROM.replace('@', '%40')}",
    )
    yield server
    server.stop()


@pytest.fixture
def up(fresh_warehouse, tmp_path):
    """The warehouse answering, with a spool of the test's own."""
    return fresh_warehouse.replace(alert_email_to=TO, alert_spool_root=str(tmp_path / "spool"))


@pytest.fixture
def down(up):
    """The same settings with the warehouse at a closed port."""
    return up.replace(warehouse_url=f"postgresql://nightscore_etl@127.0.0.1:{free_port()}/x")


def warehouse_error(settings) -> BaseException:
    """The real error of a warehouse that does not answer."""
    engine = create_engine(engine_for(settings).url)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the warehouse answered")


def failure_context(exception: BaseException, task_id: str = "publish_predictions") -> dict:
    ti = SimpleNamespace(
        dag_id="nightly_scoring",
        task_id=task_id,
        run_id=RUN_ID,
        try_number=3,
        map_index=-1,
        xcom_pull=lambda task_ids: "2013-02-12",
    )
    return {"ti": ti, "run_id": RUN_ID, "params": {}, "exception": exception}


def rows(settings) -> list[dict]:
    with engine_for(settings).connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT rule, dedup_key, status, attempts, sent_at, details"
                    " FROM monitoring.alerts ORDER BY alert_id"
                )
            ).mappings()
        ]


def test_warehouse_down_the_notice_is_mailed_then_queued_once_as_sent(up, down, sink):
    task_failure_callback(failure_context(warehouse_error(down)), settings=down)

    [mail] = sink.messages()  # mailed at once, without the outbox
    assert mail["Message-ID"] == alert_message_id(KEY, FROM)
    assert "warehouse is unavailable" in mail["Subject"]
    [(_, notice)] = spool.spooled(up)
    assert notice.dedup_key == KEY and notice.mailed_at is not None
    assert notice.details["component"] == "warehouse"
    assert rows(up) == []  # the outbox could not be written

    first = deliver(up)  # the warehouse is back: the next drain

    assert (first.drained.queued, first.drained.already_mailed, first.sent) == (1, 1, 0)
    [row] = rows(up)
    assert (row["rule"], row["dedup_key"], row["status"]) == (
        "infrastructure_unavailable",
        KEY,
        "sent",
    )
    assert row["sent_at"] == notice.mailed_at
    assert row["details"]["component"] == "warehouse"
    assert spool.spooled(up) == []
    again = deliver(up)
    assert (again.drained.queued, again.sent) == (0, 0)
    assert len(sink.messages()) == 1  # no second mail
    assert len(rows(up)) == 1


def test_a_notice_spooled_twice_is_one_alert(up, down, sink):
    """The callback of a cleared task that fails again the same way: one notice, one row."""
    context = failure_context(warehouse_error(down))
    task_failure_callback(context, settings=down)
    task_failure_callback(context, settings=down)

    assert len(spool.spooled(up)) == 1
    deliver(up)
    assert len(rows(up)) == 1


def test_smtp_down_too_the_notice_stays_spooled_and_the_next_drain_mails_it_once(up, down, sink):
    sink.stop()
    task_failure_callback(failure_context(warehouse_error(down)), settings=down)

    [(_, notice)] = spool.spooled(up)
    assert notice.mailed_at is None

    stuck = deliver(up)  # the warehouse is back, SMTP is not
    assert (stuck.drained.queued, stuck.sent, stuck.failed) == (1, 0, 1)
    assert not stuck.ok and "cannot reach SMTP" in stuck.summary
    [row] = rows(up)
    assert (row["status"], row["attempts"]) == ("pending", 1)

    sink.start()
    sent = deliver(up)
    assert sent.sent == 1
    [mail] = sink.messages()
    assert mail["Message-ID"] == alert_message_id(KEY, FROM)
    assert [r["status"] for r in rows(up)] == ["sent"]
    deliver(up)
    assert len(sink.messages()) == 1


def test_while_the_warehouse_stays_down_the_drain_mails_from_the_spool(up, down, sink):
    sink.stop()
    task_failure_callback(failure_context(warehouse_error(down)), settings=down)
    sink.start()

    meanwhile = deliver(down)  # SMTP is back, the warehouse is not

    assert meanwhile.drained.mailed == 1
    assert "cannot be queued now" in meanwhile.summary  # a warning, not an exception
    assert len(sink.messages()) == 1
    [(_, notice)] = spool.spooled(up)
    assert notice.mailed_at is not None
    deliver(down)
    assert len(sink.messages()) == 1  # mailed once, however many drains wait

    deliver(up)
    assert [r["status"] for r in rows(up)] == ["sent"]
    assert len(sink.messages()) == 1


def test_store_down_too_the_notice_is_still_mailed_and_logged_whole(
    up, down, sink, tmp_path, caplog
):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    nowhere = down.replace(alert_spool_root=str(blocked / "spool"))

    task_failure_callback(failure_context(warehouse_error(down)), settings=nowhere)

    assert len(sink.messages()) == 1
    assert "the alert spool cannot be written either" in caplog.text
    assert KEY in caplog.text


def test_a_data_failure_with_the_warehouse_down_is_a_dag_failed_notice(up, down, sink):
    """The rule follows the error model: a data error is no infrastructure alert."""
    task_failure_callback(failure_context(ValueError("3 rows have no carrier")), settings=down)

    [(_, notice)] = spool.spooled(up)
    assert notice.rule == "dag_failed"
    assert "component" not in notice.details
    assert notice.dedup_key == f"dag_failed:nightly_scoring:{RUN_ID}:publish_predictions"


def test_an_infrastructure_failure_is_queued_naming_the_component(up, sink):
    from smtplib import SMTPServerDisconnected

    task_failure_callback(failure_context(SMTPServerDisconnected("gone")), settings=up)

    [row] = rows(up)
    assert row["rule"] == "infrastructure_unavailable"
    assert row["details"]["component"] == "smtp"
    assert row["status"] == "pending"
    assert sink.messages() == []  # queued, not mailed: the DAG's send_alerts mails it


def test_two_concurrent_drains_mail_each_alert_once(up, down, sink):
    with engine_for(up).begin() as conn:
        for i in range(20):
            raise_alert(
                conn,
                rule="batch_rejected",
                severity="critical",
                service_date=date(2013, 2, 8),
                subject=f"batch {i} rejected",
                body="3 rows have no carrier",
                dedup_key=f"rejected:{i}",
            )
    sink.stop()  # five notices spooled while both were down, not mailed
    error = warehouse_error(down)
    for task_id in ("a", "b", "c", "d", "e"):
        task_failure_callback(failure_context(error, task_id=task_id), settings=down)
    sink.start()

    barrier = threading.Barrier(2)
    results = []

    def drain() -> None:
        barrier.wait()
        results.append(deliver(up))

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    ids = [m["Message-ID"] for m in sink.messages()]
    assert len(ids) == 25 == len(set(ids))
    assert sum(r.sent for r in results) == 25
    assert {r["status"] for r in rows(up)} == {"sent"}
    assert spool.spooled(up) == []
