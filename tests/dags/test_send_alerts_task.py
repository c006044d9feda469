"""Every DAG ends with `send_alerts`, and the `alert_outbox` DAG drains the outbox on
its own schedule: the wiring, checked on the real DAG files."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_every_dag_ends_with_send_alerts_after_every_other_task(dagbag):
    assert dagbag.import_errors == {}
    assert "alert_outbox" in dagbag.dag_ids
    for dag_id, dag in dagbag.dags.items():
        send = dag.get_task("send_alerts")
        assert [t.task_id for t in dag.leaves] == ["send_alerts"], dag_id
        others = {t.task_id for t in dag.tasks} - {"send_alerts"}
        assert send.get_flat_relative_ids(upstream=True) == others, dag_id
        # A teardown: left out of the run's state, so a failed task still fails the run.
        assert send.is_teardown and not send.on_failure_fail_dagrun, dag_id
        # all_done_setup_success with no setup upstream is all_done: it runs whatever
        # the other tasks' states.
        assert send.trigger_rule == "all_done_setup_success", dag_id
        assert not any(dag.get_task(t).is_setup for t in send.upstream_task_ids), dag_id
        assert send.retries == 0 and send.execution_timeout == timedelta(seconds=300), dag_id


def test_the_drain_dag_runs_every_ten_minutes_one_at_a_time(dagbag):
    from airflow.sdk import DeltaTriggerTimetable

    dag = dagbag.dags["alert_outbox"]
    assert isinstance(dag.timetable, DeltaTriggerTimetable)
    assert dag.timetable.delta == timedelta(minutes=10)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.dagrun_timeout is not None and dag.dagrun_timeout <= timedelta(minutes=10)
    assert [t.task_id for t in dag.tasks] == ["send_alerts"]
    assert "alert spool" in dag.doc_md.lower()


# Slow: the DAG file imported in a fresh Python (7 s of CPU on 2 cores).
@pytest.mark.slow
def test_the_drain_interval_and_timeout_are_settings(tmp_path):
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; "
        "dag = DagBag(dag_folder=sys.argv[1]).dags['alert_outbox']; "
        "print(dag.timetable.delta, dag.get_task('send_alerts').execution_timeout)"
    )
    env = {
        **os.environ,
        "NIGHTSCORE_ALERT_DRAIN_EVERY_MIN": "3",
        "NIGHTSCORE_ALERT_SEND_TIMEOUT_S": "120",
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "alert_outbox.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split()[-2:] == ["0:03:00", "0:02:00"]
