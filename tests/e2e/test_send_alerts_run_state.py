"""`send_alerts` under Airflow (`dag.test()` in a fresh process, a throwaway metadata
database): a failed task still fails the run, the task's alert is mailed by the same
run's `send_alerts`, and the control shows why `send_alerts` is a teardown: a plain
`all_done` leaf that succeeds turns a failed run green."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import text

from nightscore.monitoring.mailer import alert_message_id
from nightscore.warehouse.db import engine_for
from nightscore_dev.mailsink import MailSink
from nightscore_dev.stack import free_port

# Slow: DAG runs end to end.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = '''
"""Test DAGs for send_alerts: one fails, one succeeds, and a control without the factory."""
from airflow.sdk import dag, task

from nightscore.dagkit import DEFAULT_ARGS, START_DATE, send_alerts_task

ARGS = {**DEFAULT_ARGS, "retries": 0}


@dag(dag_id="fails_then_sends", schedule=None, start_date=START_DATE, default_args=ARGS)
def fails_then_sends():
    @task
    def breaks():
        raise ValueError("3 rows have no carrier")

    @task
    def after(value):
        return value

    @task
    def fine():
        return 1

    after(breaks())
    fine()
    send_alerts_task()


@dag(dag_id="succeeds_then_sends", schedule=None, start_date=START_DATE, default_args=ARGS)
def succeeds_then_sends():
    @task
    def fine():
        return 1

    fine()
    send_alerts_task()


@dag(dag_id="control_all_done_leaf", schedule=None, start_date=START_DATE, default_args=ARGS)
def control_all_done_leaf():
    @task
    def breaks():
        raise ValueError("3 rows have no carrier")

    @task(trigger_rule="all_done")
    def send():
        return "sent"

    breaks() >> send()


fails_then_sends()
succeeds_then_sends()
control_all_done_leaf()
'''

# Like dagrun.py, plus each task's end, to time the mail against the failure.
RUNNER = """
import sys
from datetime import datetime
from airflow.utils.cli import get_bagged_dag
dag = get_bagged_dag(None, sys.argv[1])
run = dag.test(logical_date=datetime.fromisoformat(sys.argv[2]))
for ti in run.get_task_instances():
    print(f"TASK {ti.task_id} {ti.state} {ti.end_date.timestamp() if ti.end_date else ''}")
print(f"STATE {sys.argv[1]} {run.state}")
"""


@pytest.fixture(scope="module")
def env(warehouse, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    (dags / "send_alerts_dags.py").write_text(DAG_FILE)
    port = free_port()
    sink = MailSink(home / "mail", port=port).start()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true",
        "NIGHTSCORE_WAREHOUSE_URL": warehouse.warehouse_url,
        "NIGHTSCORE_ADMIN_URL": warehouse.admin_url or "",
        "NIGHTSCORE_ALERT_EMAIL_TO": "oncall@example.com",
        "NIGHTSCORE_ALERT_SPOOL_ROOT": str(home / "spool"),
    }
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    yield env, sink
    sink.stop()


def run(
    env, dag_id: str, logical_date: str = "2013-02-11T22:00:00+00:00"
) -> tuple[str, dict[str, tuple[str, float | None]]]:
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, dag_id, logical_date],
        env=env,
        capture_output=True,
        text=True,
    )
    tasks, state = {}, None
    for line in out.stdout.splitlines():
        if line.startswith("TASK "):
            _, task_id, ti_state, *end = line.split(" ")
            tasks[task_id] = (ti_state, float(end[0]) if end and end[0] else None)
        elif line.startswith("STATE "):
            state = line.split(" ")[2]
    assert state, f"{dag_id} did not finish:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return state, tasks


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    import uuid

    from nightscore_suite import drop_database, make_settings  # tests/conftest.py

    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import engine_for

    name = f"nightscore_test_{uuid.uuid4().hex[:10]}"
    settings = make_settings(tmp_path_factory.mktemp("wh"), name)
    upgrade(settings)
    yield settings
    engine_for(settings).dispose()
    drop_database(name)


def test_a_failed_task_fails_the_run_and_its_alert_leaves_with_the_run(env):
    environment, sink = env
    state, tasks = run(environment, "fails_then_sends")

    assert state == "failed"
    assert tasks["breaks"][0] == "failed"
    assert tasks["after"][0] == "upstream_failed"
    assert tasks["fine"][0] == "success"
    assert tasks["send_alerts"][0] == "success"
    [saved] = [m for m in sink.saved if "fails_then_sends: task breaks" in m.subject]
    mail = message_from_bytes(saved.eml.read_bytes(), policy=policy.default)
    assert "fails_then_sends: task breaks failed" in mail["Subject"]
    # From the task's failure to the mail in the sink, within the same run.
    delay = saved.eml.stat().st_mtime - tasks["breaks"][1]
    print(f"failure -> mail in the sink: {delay:.2f} s (dag.test, 2 cores)")
    assert 0 < delay < tasks["send_alerts"][1] - tasks["breaks"][1] + 1


def test_a_run_without_failures_succeeds(env):
    state, tasks = run(env[0], "succeeds_then_sends")
    assert state == "success"
    assert tasks["send_alerts"][0] == "success"


def test_control_a_plain_all_done_leaf_turns_a_failed_run_green(env):
    state, tasks = run(env[0], "control_all_done_leaf")
    assert tasks["breaks"][0] == "failed"
    assert state == "success"  # why send_alerts is a teardown


def test_warehouse_down_the_failure_is_mailed_directly_then_queued_once(env, warehouse):
    environment, sink = env
    closed = f"postgresql://nightscore_etl@127.0.0.1:{free_port()}/x"
    day = "2013-02-12T22:00:00+00:00"
    before = len(sink.saved)

    state, tasks = run({**environment, "NIGHTSCORE_WAREHOUSE_URL": closed}, "fails_then_sends", day)

    assert state == "failed"
    assert tasks["send_alerts"][0] == "success"  # it warned: the warehouse is down
    [mailed] = [m for m in sink.saved[before:] if "fails_then_sends: task breaks" in m.subject]
    spool = Path(environment["NIGHTSCORE_ALERT_SPOOL_ROOT"])
    assert len(list(spool.glob("*.json"))) == 1

    # The warehouse is back: the next DAG to end drains the spool.
    state, _ = run(environment, "succeeds_then_sends", day)

    assert state == "success"
    assert list(spool.glob("*.json")) == []
    message_id = message_from_bytes(mailed.eml.read_bytes(), policy=policy.default)["Message-ID"]
    with engine_for(warehouse).connect() as conn:
        rows = conn.execute(
            text("SELECT dedup_key, status FROM monitoring.alerts WHERE rule = 'dag_failed'")
        ).all()
    # The outbox row of the notice mailed directly: the Message-ID is its dedup key's.
    assert [status for key, status in rows if alert_message_id(key) == message_id] == ["sent"]
    assert [m for m in sink.saved[before:] if "fails_then_sends: task breaks" in m.subject] == [
        mailed
    ]  # once
