"""Airflow plugins in `plugins/`: the MLflow links plugin is discovered by Airflow's plugins
manager, and the REST endpoint the UI calls returns its URLs for a real, `dag.test()`-run
task instance that pushed them, and nothing for the ones that did not.

The Airflow part runs in a fresh process (run as `python test_plugins.py OUT_JSON`), with its
own AIRFLOW_HOME and sqlite metadata database: plugins are loaded once per process and cached.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Slow: a process of its own with Airflow's plugins manager and a `dag.test()` run.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
RUN_URL = "http://127.0.0.1:5000/#/experiments/1/runs/0123abcd"
MODEL_URL = "http://127.0.0.1:5000/#/models/flight_disruption/versions/3"

DAG_FILE = f'''
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, get_current_context, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def mlflow_links_probe():
    @task
    def train():
        ti = get_current_context()["ti"]
        ti.xcom_push(key="mlflow_run_url", value="{RUN_URL}")
        ti.xcom_push(key="mlflow_model_url", value="{MODEL_URL}")
        return "done"

    @task
    def other():
        return 1

    @task
    def not_a_url():
        get_current_context()["ti"].xcom_push(key="mlflow_run_url", value="javascript:alert(1)")

    @task
    def mapped(n):
        get_current_context()["ti"].xcom_push(key="mlflow_run_url", value=f"http://mlflow/runs/{{n}}")

    train() >> other() >> not_a_url() >> EmptyOperator(task_id="empty")
    mapped.expand(n=[0, 1])


mlflow_links_probe()
'''

PROBES = [
    ("train", -1),
    ("other", -1),
    ("not_a_url", -1),
    ("empty", -1),
    ("mapped", 0),
    ("mapped", 1),
]


def _probe(out: str) -> None:
    """In the fresh process: load plugins, run the DAG, ask the REST endpoint for links."""
    from datetime import UTC, datetime

    from airflow import plugins_manager
    from airflow.api_fastapi.app import create_app
    from airflow.utils.cli import get_bagged_dag
    from airflow.utils.db import upgradedb
    from fastapi.testclient import TestClient

    upgradedb()
    result: dict = {
        "plugins": [p["name"] for p in plugins_manager.get_plugin_info()],
        "import_errors": plugins_manager._get_plugins()[1],
        "operator_links": [link.name for link in plugins_manager.get_operator_extra_links()],
        "global_links": [link.name for link in plugins_manager.get_global_operator_extra_links()],
    }
    run = get_bagged_dag(None, "mlflow_links_probe").test(
        logical_date=datetime(2024, 1, 2, tzinfo=UTC)
    )
    result["states"] = {
        f"{ti.task_id}[{ti.map_index}]": ti.state for ti in run.get_task_instances()
    }
    client = TestClient(create_app(apps="core"))
    result["links"] = {}
    for task_id, map_index in PROBES:
        response = client.get(
            f"/api/v2/dags/mlflow_links_probe/dagRuns/{run.run_id}/taskInstances/{task_id}/links",
            params={"map_index": map_index},
        )
        assert response.status_code == 200, response.text
        result["links"][f"{task_id}[{map_index}]"] = response.json()["extra_links"]
    Path(out).write_text(json.dumps(result))


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("plugins")
    home, dags = tmp / "airflow_home", tmp / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "mlflow_links_probe.py").write_text(DAG_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    out = tmp / "probe.json"
    proc = subprocess.run(
        [sys.executable, __file__, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and out.exists(), f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(out.read_text())


def test_the_plugins_manager_discovers_the_mlflow_links_plugin(probe):
    assert "nightscore_mlflow_links" in probe["plugins"]
    assert probe["import_errors"] == {}
    assert {"MLflow run", "MLflow model"} <= set(probe["operator_links"])
    assert probe["global_links"] == [], "links are scoped to @task tasks, not every operator"


def test_the_probe_dag_ran(probe):
    assert set(probe["states"].values()) == {"success"}, probe["states"]


def test_the_links_endpoint_returns_the_urls_the_task_pushed(probe):
    assert probe["links"]["train[-1]"] == {"MLflow run": RUN_URL, "MLflow model": MODEL_URL}
    # Mapped @task instances each get their own link.
    assert probe["links"]["mapped[0]"] == {
        "MLflow run": "http://mlflow/runs/0",
        "MLflow model": None,
    }
    assert probe["links"]["mapped[1]"] == {
        "MLflow run": "http://mlflow/runs/1",
        "MLflow model": None,
    }


def test_tasks_without_the_xcom_get_no_url(probe):
    # null URLs are not shown by the UI; other operators do not get the links at all.
    assert probe["links"]["other[-1]"] == {"MLflow run": None, "MLflow model": None}
    assert probe["links"]["not_a_url[-1]"] == {"MLflow run": None, "MLflow model": None}
    assert probe["links"]["empty[-1]"] == {}


def test_only_http_urls_become_links():
    spec = importlib.util.spec_from_file_location("_links", PLUGINS / "nightscore_mlflow_links.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._as_url(RUN_URL) == RUN_URL
    assert module._as_url(json.dumps(MODEL_URL)) == MODEL_URL
    for value in (None, "", "javascript:alert(1)", "/relative", 3, {"url": RUN_URL}):
        assert module._as_url(value) == ""


if __name__ == "__main__":
    _probe(sys.argv[1])
