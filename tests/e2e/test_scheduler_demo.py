"""The demo's path through the real scheduler: API server, scheduler, DAG processor and
triggerer as separate processes, LocalExecutor, Postgres metadata, one service date from
its landing to its monitoring, with mail to the stack's SMTP sink.

The stack is isolated from `make demo`: its own state folder, API port, log-server
ports and databases (dropped at the end). Everything it starts is stopped, even when
the test fails.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from conftest import admin_url as suite_admin_url
from sqlalchemy import make_url

from nightscore import config
from nightscore_dev import demo
from nightscore_dev import stack as local

# Slow: the demo's stack and a night through the real scheduler.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICE_DATE = date(2013, 2, 7)


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Iterator[local.Stack]:
    state = tmp_path / "state"
    # Settings that could point the components at the demo's files.
    monkeypatch.setenv("NIGHTSCORE_LANDING_ROOT", str(state / "landing"))
    monkeypatch.setenv("NIGHTSCORE_DATA_DOCS_ROOT", str(state / "data_docs"))
    suffix = uuid.uuid4().hex[:8]
    airflow_db, warehouse_db = f"nightscore_e2e_airflow_{suffix}", f"nightscore_e2e_wh_{suffix}"
    mlflow_db = f"nightscore_e2e_mlflow_{suffix}"
    # The same server as the rest of the suite (conftest's admin_url), never the demo's.
    admin = make_url(suite_admin_url())
    monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", suite_admin_url())
    monkeypatch.setenv(
        "NIGHTSCORE_WAREHOUSE_URL",
        f"postgresql://nightscore_etl@{admin.host}:{admin.port or 5432}/{warehouse_db}",
    )
    paths = local.state_paths(state)
    admin_url: str | None = None
    try:
        admin_url = local.ensure_postgres(paths)
        yield local.up(
            paths,
            api_port=local.free_port(),
            airflow_db=airflow_db,
            warehouse_db=warehouse_db,
            mlflow_db=mlflow_db,
            mlflow_port=local.free_port(),
        )
    finally:
        local.stop(paths, postgres=False)
        try:
            if admin_url is not None:
                for name in (airflow_db, warehouse_db, mlflow_db):
                    local.drop_database(admin_url, name)
        finally:
            local.stop_embedded_postgres(paths)


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


@pytest.mark.timeout(1800)
def test_one_service_date_goes_through_the_scheduler(stack: local.Stack) -> None:
    client = demo.AirflowClient(stack.api_url, local.ADMIN_USER, stack.password)
    deadline = time.monotonic() + 20 * 60
    try:
        demo.wait_for_dags(client, stack.paths)
        for dag_id in demo.DEMO_DAGS:
            client.unpause(dag_id)
        history = demo.bootstrap(client, SERVICE_DATE, deadline)
        trained = demo.train_champion(client, SERVICE_DATE, deadline)
        runs = demo.replay(client, SERVICE_DATE, SERVICE_DATE, deadline)
    finally:
        client.close()

    all_runs = [history, trained, *runs]
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
    print(demo.summary(stack.warehouse_url, SERVICE_DATE, SERVICE_DATE))
