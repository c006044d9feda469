"""Task policy: every task of every DAG has an execution timeout, retries back off
exponentially up to a cap, and the long tasks (training, a history load, the drift
report) and the sensors get longer timeouts of their own, all from settings. Every task
has short docs for the UI (what it does, reads and writes, what to do when it fails), and
every DAG's owner links to the team."""

from __future__ import annotations

from datetime import timedelta

import pytest


@pytest.fixture(scope="module")
def dagbag(dagbag):
    """The session's DagBag (tests/conftest.py), with every file imported."""
    assert dagbag.import_errors == {}, dagbag.import_errors
    return dagbag


@pytest.fixture(scope="module")
def settings():
    from nightscore.dagkit import SETTINGS

    return SETTINGS


def without_timeout(dag) -> list[str]:
    """The tasks of `dag` that could run forever."""
    return [t.task_id for t in dag.tasks if not t.execution_timeout]


def test_every_task_of_every_dag_has_an_execution_timeout(dagbag):
    assert len(dagbag.dags) >= 6
    missing = {dag_id: without_timeout(dag) for dag_id, dag in dagbag.dags.items()}
    assert {dag_id: tasks for dag_id, tasks in missing.items() if tasks} == {}


def test_control_a_task_without_a_timeout_is_found():
    """The control: a DAG without the default args' timeout is caught by the check."""
    from airflow.sdk import DAG, task

    with DAG("policy_control", schedule=None) as dag:

        @task
        def unbounded() -> None:
            pass

        unbounded()
    assert without_timeout(dag) == ["unbounded"]


def test_retries_back_off_from_settings(dagbag, settings):
    for dag_id, dag in dagbag.dags.items():
        for t in dag.tasks:
            if t.retries:
                # A multiplier in Airflow 3 (True would be 1: a constant pause).
                assert t.retry_exponential_backoff == 2.0, f"{dag_id}.{t.task_id}"
                assert t.max_retry_delay == timedelta(seconds=settings.max_retry_delay_s)
    scoring = dagbag.dags["nightly_scoring"]
    for task_id in ("plan_scoring", "score_partition", "publish_predictions"):
        assert scoring.get_task(task_id).retries == settings.retries, task_id


def test_the_default_timeout_comes_from_settings(dagbag, settings):
    task = dagbag.dags["nightly_scoring"].get_task("publish_predictions")
    assert task.execution_timeout == timedelta(seconds=settings.task_timeout_s)


@pytest.mark.parametrize(
    ("dag_id", "task_id", "setting"),
    [
        ("retrain", "train_challenger", "training_timeout_s"),
        ("load_history", "load_range", "history_timeout_s"),
        ("monitoring", "measure_drift", "report_timeout_s"),
    ],
)
def test_long_tasks_have_their_own_timeout(dagbag, settings, dag_id, task_id, setting):
    task = dagbag.dags[dag_id].get_task(task_id)
    assert task.execution_timeout == timedelta(seconds=getattr(settings, setting))


def test_a_sensor_may_wait_its_whole_timeout(dagbag):
    """In "poke" mode a sensor waits in one execution: its execution timeout must not cut
    the wait short."""
    sensors = [
        t
        for dag in dagbag.dags.values()
        for t in dag.tasks
        if hasattr(t, "poke_interval") and hasattr(t, "timeout")
    ]
    assert len(sensors) >= 3
    for sensor in sensors:
        assert sensor.execution_timeout >= timedelta(seconds=sensor.timeout), sensor.task_id


# A task's docs are read on its page in the UI: a few lines, not a manual.
MAX_TASK_DOC_CHARS = 900
DOC_PARTS = ("**Reads**", "**writes**", "**When it fails**")


def undocumented(dag) -> list[str]:
    """The tasks of `dag` whose docs lack a part, or run too long."""
    return [
        t.task_id
        for t in dag.tasks
        if not t.doc_md
        or any(part not in t.doc_md for part in DOC_PARTS)
        or len(t.doc_md) > MAX_TASK_DOC_CHARS
    ]


def test_every_task_of_every_dag_has_docs(dagbag):
    assert len(dagbag.dags) >= 6
    missing = {dag_id: undocumented(dag) for dag_id, dag in dagbag.dags.items()}
    assert {dag_id: tasks for dag_id, tasks in missing.items() if tasks} == {}


def test_control_a_task_without_docs_or_with_a_docstring_only_is_found():
    from airflow.sdk import DAG, task

    from nightscore.dagkit import task_doc

    with DAG("docs_control", schedule=None) as dag:

        @task
        def bare() -> None:
            pass

        @task
        def docstring_only() -> None:
            """Does something."""

        @task(doc_md=task_doc("Does it.", reads="a", writes="b", fails="c"))
        def documented() -> None:
            pass

        @task(doc_md=task_doc("x" * MAX_TASK_DOC_CHARS, reads="a", writes="b", fails="c"))
        def verbose() -> None:
            pass

        bare(), docstring_only(), documented(), verbose()
    assert sorted(undocumented(dag)) == ["bare", "docstring_only", "verbose"]


def test_shared_task_docs_name_their_batch_kind(dagbag):
    """Shared tasks are documented for the DAG they are in."""
    validate = dagbag.dags["ingest_outcomes"].get_task("validate_outcomes_batch").doc_md
    assert "outcomes batch" in validate and "schedule batch" not in validate
    load = dagbag.dags["nightly_scoring"].get_task("load_schedule_batch").doc_md
    assert "`core.flights`, `core.weather`" in load


def test_every_dag_links_its_owners(dagbag, settings):
    from nightscore import links

    for dag_id, dag in dagbag.dags.items():
        owners = {t.owner for t in dag.tasks}
        assert set(dag.owner_links) == owners, dag_id
        assert dag.owner_links == {"nightscore": links.owner_url(settings)}, dag_id
        for link in dag.owner_links.values():
            assert link.startswith(("http://", "https://", "mailto:")), (dag_id, link)
