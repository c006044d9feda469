"""Airflow UI links from a TaskFlow task to its MLflow run and its MLflow model version.

Engineers see two buttons, "MLflow run" and "MLflow model", under *Extra Links* on a task
instance's page. They appear on an ``@task`` task instance that pushed these XComs:

    =====================  ==============================================================
    XCom key               value: a full http(s) URL into the MLflow UI
    =====================  ==============================================================
    ``mlflow_run_url``     ``http://127.0.0.1:5000/#/experiments/1/runs/<run_id>``
    ``mlflow_model_url``   ``http://127.0.0.1:5000/#/models/flight_disruption/versions/3``
    =====================  ==============================================================

The task pushes them itself; in ``dags/retrain.py``'s ``train`` task::

    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    ti.xcom_push(key="mlflow_run_url", value=run_url)
    ti.xcom_push(key="mlflow_model_url", value=model_url)

How this works in Airflow 3.3 (checked in its source): the worker only resolves links that an
operator *class* declares. It does not resolve plugin links, and ``@task`` has none. A plugin
link's ``get_link`` runs in the API server each time the UI asks for the task's links
(``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links``), so this one
reads the XCom above from the metadata database. The plugin attaches the links to the class
behind every ``@task`` task (``_PythonDecoratedOperator``). A task instance without the XCom,
or with a value that is not an http(s) URL, gets an empty link, which the UI does not show.
Other operators (sensors, ``@task.virtualenv``, ...) do not get the links at all.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin
from airflow.providers.standard.decorators.python import _PythonDecoratedOperator
from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

MLFLOW_RUN_URL_KEY = "mlflow_run_url"
MLFLOW_MODEL_URL_KEY = "mlflow_model_url"


def _as_url(value: Any) -> str:
    """The stored XCom value as a URL, or "" if it is not an http(s) URL."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # in case a value is stored JSON-encoded
            value = json.loads(value)
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return ""


class _XComUrlLink(BaseOperatorLink):
    """A link whose URL is the XCom value `xcom_key` of the task instance. Runs in the API server."""

    operators = [_PythonDecoratedOperator]  # noqa: RUF012 (a ClassVar in BaseOperatorLink)
    name: str
    xcom_key: str

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            value = session.scalar(
                XComModel.get_many(
                    key=self.xcom_key,
                    run_id=ti_key.run_id,
                    dag_ids=ti_key.dag_id,
                    task_ids=ti_key.task_id,
                    map_indexes=ti_key.map_index,
                )
                .with_only_columns(XComModel.value)
                .limit(1)
            )
        return _as_url(value)


class MlflowRunLink(_XComUrlLink):
    name = "MLflow run"
    xcom_key = MLFLOW_RUN_URL_KEY


class MlflowModelLink(_XComUrlLink):
    name = "MLflow model"
    xcom_key = MLFLOW_MODEL_URL_KEY


class NightscoreMlflowLinksPlugin(AirflowPlugin):
    name = "nightscore_mlflow_links"
    operator_extra_links = [MlflowRunLink(), MlflowModelLink()]  # noqa: RUF012
