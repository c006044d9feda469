"""The failure notifier: a failed task queues one critical `dag_failed` alert in the
outbox (through a fake Airflow context), and never raises itself."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from nightscore.monitoring.notify import task_failure_callback
from nightscore.warehouse.db import engine_for
from nightscore_dev.stack import free_port

pytestmark = pytest.mark.integration

RUN_ID = "scheduled__2013-02-11T22:00:00+00:00"
PUBLIC = "https://airflow.example"
LOG_URL = (
    f"{PUBLIC}/dags/nightly_scoring/runs/scheduled__2013-02-11T22%3A00%3A00%2B00%3A00"
    "/tasks/publish_predictions?try_number=3"
)
# What Airflow's own `ti.log_url` says on a worker without a base URL: no browser opens it.
INTERNAL_LOG_URL = LOG_URL.replace(PUBLIC, "http://localhost:8080")


def failure_context(try_number: int = 3, exception: BaseException | str | None = None) -> dict:
    ti = SimpleNamespace(
        dag_id="nightly_scoring",
        task_id="publish_predictions",
        run_id=RUN_ID,
        try_number=try_number,
        map_index=-1,
        log_url=INTERNAL_LOG_URL,
        xcom_pull=lambda task_ids: "2013-02-12" if task_ids == "resolve_service_date" else None,
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": RUN_ID,
        "params": {"service_date": None},
        "exception": exception or ValueError("could not publish 2013-02-12: lock timeout"),
    }


def alerts(settings) -> list[dict]:
    with engine_for(settings).connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT rule, severity, service_date, subject, body, details, dedup_key,"
                    " status, attempts FROM monitoring.alerts"
                )
            ).mappings()
        ]


def test_a_failed_task_queues_one_critical_alert(fresh_warehouse):
    settings = fresh_warehouse.replace(public_airflow_url=PUBLIC)
    task_failure_callback(failure_context(), settings=settings)
    task_failure_callback(failure_context(try_number=4), settings=settings)  # cleared

    [alert] = alerts(fresh_warehouse)
    assert alert["rule"] == "dag_failed"
    assert alert["severity"] == "critical"
    assert alert["status"] == "pending"
    assert alert["service_date"] == date(2013, 2, 12)
    assert alert["dedup_key"] == f"dag_failed:nightly_scoring:{RUN_ID}:publish_predictions"
    assert alert["subject"] == "[nightscore] nightly_scoring: task publish_predictions failed"
    assert "ValueError: could not publish 2013-02-12: lock timeout" in alert["body"]
    assert LOG_URL in alert["body"]  # the public address, not Airflow's internal one
    assert "localhost" not in alert["body"]
    assert alert["details"] == {
        "dag_id": "nightly_scoring",
        "task_id": "publish_predictions",
        "run_id": RUN_ID,
        "try_number": 3,
        "exception": "ValueError: could not publish 2013-02-12: lock timeout",
        "log_url": LOG_URL,
        "airflow_url": LOG_URL.split("/tasks/")[0],
    }


def test_a_mapped_task_and_a_string_exception(fresh_warehouse):
    context = failure_context(exception="Task received SIGTERM")
    context["ti"].map_index = 1
    context["params"] = {"service_date": "2013-03-01"}

    task_failure_callback(context, settings=fresh_warehouse)

    [alert] = alerts(fresh_warehouse)
    assert alert["service_date"] == date(2013, 3, 1)  # a manual run's param wins
    assert alert["subject"].endswith("task publish_predictions[1] failed")
    assert alert["details"]["map_index"] == 1
    assert alert["details"]["log_url"].endswith("/tasks/publish_predictions/mapped/1?try_number=3")
    assert alert["details"]["exception"] == "Task received SIGTERM"


def test_the_notifier_never_raises(fresh_warehouse, caplog):
    unreachable = fresh_warehouse.replace(
        warehouse_url=f"postgresql://nightscore_etl@127.0.0.1:{free_port()}/x"
    )

    task_failure_callback(failure_context(), settings=unreachable)
    task_failure_callback({}, settings=fresh_warehouse)  # a context with nothing in it

    assert "could not queue the task failure alert" in caplog.text
    [alert] = alerts(fresh_warehouse)
    assert alert["dedup_key"] == "dag_failed:?:?:?"
