"""The demo's path through the real scheduler (the `replayed` stack of conftest.py): API
server, scheduler, DAG processor and triggerer as separate processes, LocalExecutor,
Postgres metadata, one service date from its landing to its monitoring, with mail to the
stack's SMTP sink.
"""

from __future__ import annotations

import os
from datetime import date

import pytest

from nightscore import config
from nightscore_dev import demo
from nightscore_dev import stack as local

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SERVICE_DATE = date(2013, 2, 8)  # conftest's replayed date (checked below)


def _failure_report(stack: local.Stack, runs: list[demo.Run]) -> str:
    """The runs, with each failed task's error, and where the logs are."""
    lines = [demo.describe(run) for run in runs]
    lines.append(f"task logs: {stack.paths.logs / 'tasks'}")
    return "\n".join(lines)


def _fetch(warehouse_url: str, sql: str) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(config.libpq_url(warehouse_url))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, {"day": SERVICE_DATE})
            return list(cursor.fetchall())
    finally:
        connection.close()


def _latest_batch_status(warehouse_url: str) -> dict[str, str]:
    rows = _fetch(
        warehouse_url,
        """
        SELECT DISTINCT ON (kind) kind, status FROM ops.batches
        WHERE service_date = %(day)s ORDER BY kind, updated_at DESC
        """,
    )
    return dict(rows)


def _flight_rows(warehouse_url: str) -> int:
    sql = "SELECT count(*) FROM core.flights WHERE service_date = %(day)s"
    return int(_fetch(warehouse_url, sql)[0][0])


@pytest.mark.timeout(3600)
def test_one_service_date_goes_through_the_scheduler(replayed) -> None:
    stack, all_runs = replayed.stack, replayed.runs
    assert replayed.service_date == SERVICE_DATE
    assert all(run.state == "success" for run in all_runs), _failure_report(stack, all_runs)
    assert _latest_batch_status(stack.warehouse_url) == {
        "schedule": "loaded",
        "outcomes": "loaded",
    }
    assert _flight_rows(stack.warehouse_url) > 0
    scored = _fetch(
        stack.warehouse_url,
        "SELECT count(*) FROM scoring.predictions WHERE service_date = %(day)s",
    )[0][0]
    assert scored == _flight_rows(stack.warehouse_url)
    # Monitoring measured the day against the champion's reference sample, wrote the
    # Evidently report, and mailed every alert it sent to the stack's SMTP sink.
    (report,) = _fetch(
        stack.warehouse_url,
        "SELECT r.path FROM monitoring.drift_runs d JOIN monitoring.reports r USING (report_id) "
        "WHERE d.service_date = %(day)s",
    )
    assert os.path.getsize(report[0]) > 100_000
    checks = _fetch(
        stack.warehouse_url,
        "SELECT count(*) FROM monitoring.rule_checks WHERE service_date = %(day)s",
    )[0][0]
    assert checks >= 4
    sent = _fetch(
        stack.warehouse_url, "SELECT count(*) FROM monitoring.alerts WHERE status = 'sent'"
    )
    assert len(list(stack.paths.mail.glob("*.eml"))) == sent[0][0]
    # The scheduler forked those tasks with their libraries preloaded (nightscore.preload).
    scheduler_log = stack.paths.log("scheduler").read_text()
    assert "nightscore: preloaded great_expectations, evidently, mlflow" in scheduler_log
    print(demo.summary(stack.warehouse_url, SERVICE_DATE, SERVICE_DATE))
