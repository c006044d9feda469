"""Ingestion DAGs end to end with `dag.test()`: real DAG files, real Great Expectations,
real Postgres warehouse, a throwaway Airflow metadata database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from nightscore.warehouse.db import engine_for

# Slow: DAG runs end to end.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def warehouse(history_warehouse, mlflow_server):
    """The seeded history, and a champion in a real registry, so nights can be scored."""
    from nightscore import gate, training

    settings = history_warehouse.replace(
        mlflow_tracking_uri=mlflow_server,
        model_name="flight_disruption_e2e",
        tuning_trials=1,
        gate_floor_roc_auc=0.5,
    )
    cutoff = date(2013, 3, 11)
    outcome = training.train_challenger(cutoff, settings)
    assert gate.gate_challenger(outcome.model, cutoff, settings).applied
    return settings


@pytest.fixture(scope="module")
def airflow_env(warehouse, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "NIGHTSCORE_WAREHOUSE_URL": warehouse.warehouse_url,
        "NIGHTSCORE_ADMIN_URL": warehouse.admin_url or "",
        "NIGHTSCORE_LANDING_ROOT": warehouse.landing_root,
        "NIGHTSCORE_DATA_DOCS_ROOT": warehouse.data_docs_root,
        "NIGHTSCORE_SENSOR_POKE_S": "1",
        "NIGHTSCORE_SENSOR_TIMEOUT_S": "5",
        "NIGHTSCORE_MLFLOW_TRACKING_URI": warehouse.mlflow_tracking_uri,
        "NIGHTSCORE_MODEL_NAME": warehouse.model_name,
        "NIGHTSCORE_TUNING_TRIALS": "1",
        "NIGHTSCORE_GATE_FLOOR_ROC_AUC": "0.5",
        "NIGHTSCORE_SCORING_PARTITIONS": "2",
    }
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def run_dag(env, dag_id: str, logical_date: str, conf: str | None = None) -> dict[str, str]:
    args = [sys.executable, str(Path(__file__).parent / "dagrun.py"), dag_id, logical_date]
    out = subprocess.run(
        [*args, *([conf] if conf else [])], env=env, capture_output=True, text=True
    )
    states = {}
    for line in out.stdout.splitlines():
        if line.startswith(("TASK ", "STATE ")):
            _, name, state = line.split(" ", 2)
            states[name] = state
    assert dag_id in states, f"{dag_id} did not finish:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return states


def test_replay_then_ingest_a_day_through_the_dags(airflow_env, warehouse):
    # The scheduled runs, in the order their clocks give, with no service_date param:
    # the calendar rules pick the dates. Evening of 05-06: replay lands the schedule of
    # 05-07, which nightly_scoring loads.
    replay = run_dag(airflow_env, "replay_source", "2013-05-06T20:00:00+00:00")
    assert replay["replay_source"] == "success"
    scoring = run_dag(airflow_env, "nightly_scoring", "2013-05-06T22:00:00+00:00")
    assert scoring["nightly_scoring"] == "success", scoring
    # Evening of 05-07: replay lands 05-07's outcomes; morning of 05-08: they are ingested.
    run_dag(airflow_env, "replay_source", "2013-05-07T20:00:00+00:00")
    outcomes = run_dag(airflow_env, "ingest_outcomes", "2013-05-08T06:00:00+00:00")
    assert outcomes["ingest_outcomes"] == "success", outcomes

    with engine_for(warehouse).connect() as conn:
        statuses = conn.execute(
            text("SELECT kind, status FROM ops.batches WHERE service_date = '2013-05-07'")
        ).all()
        flights = conn.execute(
            text("SELECT count(*) FROM core.flights WHERE service_date = '2013-05-07'")
        ).scalar_one()
        outcomes_rows = conn.execute(
            text("SELECT count(*) FROM core.outcomes WHERE service_date = '2013-05-07'")
        ).scalar_one()
        scored = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT scoring_run_id) FROM scoring.predictions "
                "WHERE service_date = '2013-05-07' AND model_name = :m"
            ),
            {"m": warehouse.model_name},
        ).one()
        run = conn.execute(
            text(
                "SELECT status, partitions, rows FROM scoring.runs WHERE service_date = '2013-05-07'"
            )
        ).one()
    assert sorted(statuses) == [("outcomes", "loaded"), ("schedule", "loaded")]
    assert flights == outcomes_rows > 900
    # Scored by two mapped partitions, published as one run.
    assert scoring["score_partition"] == "success"
    assert tuple(scored) == (flights, 1)
    assert tuple(run) == ("succeeded", 2, flights)


def test_retrain_trains_gates_and_records_its_decision(airflow_env, warehouse):
    conf = '{"cutoff": "2013-03-11", "reason": "e2e: a manual retrain"}'
    states = run_dag(airflow_env, "retrain", "2013-03-11T12:00:00+00:00", conf)
    assert states["retrain"] == "success", states
    with engine_for(warehouse).connect() as conn:
        decision = conn.execute(
            text(
                "SELECT decision, trigger, training_cutoff::text, airflow_run_id IS NOT NULL "
                "FROM ml.model_decisions WHERE model_name = :m ORDER BY decision_id DESC LIMIT 1"
            ),
            {"m": warehouse.model_name},
        ).one()
    assert decision[1:] == ("e2e: a manual retrain", "2013-03-11", True)
    assert decision[0] in ("promote", "reject")


def test_a_rejected_batch_fails_the_run_and_loads_nothing(airflow_env, warehouse):
    # 2013-02-12 carries a real 1048 mph wind reading at EWR.
    conf = '{"service_date": "2013-02-12"}'
    run_dag(airflow_env, "replay_source", "2013-02-11T20:00:00+00:00", conf)
    states = run_dag(airflow_env, "nightly_scoring", "2013-02-11T22:00:00+00:00")
    assert states["nightly_scoring"] == "failed"
    assert states["validate_schedule_batch"] == "failed"
    assert states["load_schedule_batch"] in ("upstream_failed", "None")
    with engine_for(warehouse).connect() as conn:
        status = conn.execute(
            text(
                "SELECT status FROM ops.batches WHERE service_date = '2013-02-12' AND kind = 'schedule'"
            )
        ).scalar_one()
        loaded = conn.execute(
            text("SELECT count(*) FROM core.flights WHERE service_date = '2013-02-12'")
        ).scalar_one()
        alerts = conn.execute(
            text(
                "SELECT count(*) FROM monitoring.alerts WHERE rule = 'batch_rejected' AND service_date = '2013-02-12'"
            )
        ).scalar_one()
    assert (status, loaded, alerts) == ("rejected", 0, 1)


def test_a_batch_that_never_lands_times_out_with_an_alert(airflow_env, warehouse):
    states = run_dag(airflow_env, "ingest_outcomes", "2013-07-02T06:00:00+00:00")
    assert states["wait_for_outcomes_batch"] == "failed"
    with engine_for(warehouse).connect() as conn:
        alerts = conn.execute(
            text(
                "SELECT count(*) FROM monitoring.alerts WHERE dedup_key = 'batch_missing:outcomes:2013-07-01'"
            )
        ).scalar_one()
    assert alerts == 1
