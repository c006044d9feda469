"""What every nightscore DAG shares: default args, schedule bounds, params, and the
ingestion tasks (wait for a batch, validate it, load it).

Imported by DAG files at parse time, so it imports nothing heavy: the task bodies
import `nightscore.ingest` (and through it pandas and Great Expectations) when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from airflow.sdk import Asset, Param, PokeReturnValue, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from nightscore import links
from nightscore.config import load_settings
from nightscore.contract import BatchKind

SETTINGS = load_settings()
T = TypeVar("T")


def notify_failure(context: Any) -> None:
    """Every failed task (after its last retry) queues a `dag_failed` alert for engineers;
    the outbox sends it, so an SMTP outage loses nothing."""
    from nightscore.monitoring.notify import task_failure_callback

    task_failure_callback(context, settings=SETTINGS)


# Retries are for what may come back (an unavailable component, an unknown error): the
# pause doubles from retry_delay_s up to max_retry_delay_s. A data error is never retried
# (`run_step`). Every task has an execution timeout; the long ones set their own.
OWNER = "nightscore"
# Every DAG's `owner_links`: the owner's name in the UI links to the team (runbook or mail).
OWNER_LINKS = {OWNER: links.owner_url(SETTINGS)}
DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": SETTINGS.retries,
    "retry_delay": timedelta(seconds=SETTINGS.retry_delay_s),
    # Airflow 3 reads this as the multiplier of the pause: 2 doubles it after each try.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(seconds=SETTINGS.max_retry_delay_s),
    "execution_timeout": timedelta(seconds=SETTINGS.task_timeout_s),
    "on_failure_callback": notify_failure,
}
# A sensor may wait up to its timeout (in "poke" mode, in one execution), so its own
# execution timeout is that plus a poke.
SENSOR_EXECUTION_TIMEOUT = timedelta(seconds=SETTINGS.sensor_timeout_s + SETTINGS.sensor_poke_s)

START_DATE = datetime.combine(SETTINGS.schedule_start, datetime.min.time(), tzinfo=UTC)
END_DATE = (
    datetime.combine(SETTINGS.schedule_end, datetime.max.time(), tzinfo=UTC)
    if SETTINGS.schedule_end
    else None
)


def task_doc(does: str, *, reads: str, writes: str, fails: str) -> str:
    """A task's `doc_md`, shown on its page in the Airflow UI: what it does, what it reads
    and writes, what to do when it fails (a policy test checks every task has one)."""
    return f"{does}\n\n**Reads** {reads} · **writes** {writes}\n\n**When it fails** {fails}"


def service_date_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        format="date",
        description="The service date (YYYY-MM-DD) to process. Required for runs "
        "triggered by hand; scheduled runs derive it from their logical date.",
    )


def apply_held_param() -> Param:
    return Param(
        False,
        type="boolean",
        description="Load the batch even if it would replace the loaded day with far fewer "
        "rows (a held batch, e.g. a truncated export). Set it only for a batch you have "
        "checked; the ledger records the run that applied it.",
    )


def run_url(context: Any) -> str | None:
    """The Airflow UI's page of the running DAG run (its public address), for links in emails."""
    ti = context.get("ti")
    if ti is None:
        return None
    return links.dag_run_url(SETTINGS, ti.dag_id, context["run_id"])


def core_asset(table: str) -> Asset:
    """The Asset a task publishes when it has written a warehouse table."""
    return Asset(name=table, uri=f"nightscore://warehouse/{table.replace('.', '/')}")


def run_step(fn: Callable[[], T]) -> T:
    """Run a task's step and fail it the way its error asks (`nightscore.errors`).

    - a data error (`DataError`): `AirflowFailException`, no retry. A rejected batch is
      rejected again, and retrying only delays the alert;
    - an unavailable component (`InfrastructureError`, or a client error `classify`
      recognises, such as a refused connection to MLflow): raised as an
      `InfrastructureError` naming the component, so Airflow retries it with backoff;
    - anything else: re-raised unchanged, with Airflow's retries.

    The original error stays as the cause, so the failure alert can `classify` it.
    """
    from nightscore.errors import DataError, InfrastructureError, classify

    try:
        return fn()
    except AirflowException:  # the step already told Airflow what to do (skip, fail)
        raise
    except Exception as exc:
        found = classify(exc)
        if isinstance(found, DataError):
            raise AirflowFailException(str(found)) from found
        if isinstance(found, InfrastructureError) and found is not exc:
            raise found from exc
        raise


def ingestion_tasks(kind: BatchKind, resolve: Callable[[datetime | None, Any], date]):
    """The wait -> validate -> load chain for one batch kind, as TaskFlow tasks.

    `resolve(logical_date, service_date_param)` is the calendar rule of the DAG.
    Returns the load task's output (the loaded batch's id).
    """

    folder = "schedules" if kind == "schedule" else "outcomes"
    tables = ", ".join(f"`core.{name}`" for name in _parts(kind))

    @task(
        task_id="resolve_service_date",
        retries=0,
        doc_md=task_doc(
            "The service date S this run is for: from the logical date by the DAG's calendar "
            "rule, or the `service_date` param of a manual run.",
            reads="the run's logical date and params",
            writes="nothing (S as its XCom)",
            fails="a manual run without `service_date`, or with a date that is not "
            'YYYY-MM-DD: trigger it again with `{"service_date": "2013-02-07"}`.',
        ),
    )
    def resolve_service_date(**context) -> str:
        day = run_step(
            lambda: resolve(context.get("logical_date"), context["params"].get("service_date"))
        )
        return day.isoformat()

    def _missing(context) -> None:
        from nightscore.ingest import record_missing

        day = date.fromisoformat(context["ti"].xcom_pull(task_ids="resolve_service_date"))
        record_missing(kind, day, SETTINGS.sensor_timeout_s, SETTINGS)

    @task.sensor(
        task_id=f"wait_for_{kind}_batch",
        poke_interval=SETTINGS.sensor_poke_s,
        timeout=SETTINGS.sensor_timeout_s,
        mode=SETTINGS.sensor_mode,
        retries=0,
        execution_timeout=SENSOR_EXECUTION_TIMEOUT,
        on_failure_callback=[_missing, notify_failure],
        doc_md=task_doc(
            f"Waits for S's {kind} batch to be complete in the landing zone (its `_SUCCESS` "
            "marker)"
            + (
                ", and for S's schedule batch to be loaded or rejected."
                if kind == "outcomes"
                else "."
            )
            + " A landing zone that cannot be read is looked at again at the next poke.",
            reads=f"`{{landing}}/{folder}/service_date=S/`"
            + (", `ops.batches`" if kind == "outcomes" else ""),
            writes="`ops.batches` and an alert when it gives up",
            fails="timed out after `NIGHTSCORE_SENSOR_TIMEOUT_S`: the batch never landed "
            "(the alert says what is missing). Land it, then clear this task.",
        ),
    )
    def wait_for_batch(service_date: str) -> PokeReturnValue:
        """Done when the batch is complete in the landing zone (and, for outcomes, its
        schedule settled). The sensor is not retried, and its failure reports the batch as
        missing: a store outage is therefore waited out poke by poke, up to the deadline."""
        from nightscore.ingest import ready_to_ingest
        from nightscore.store import StoreError

        try:
            ready = ready_to_ingest(kind, date.fromisoformat(service_date), SETTINGS)
        except StoreError as exc:
            print(f"the landing zone cannot be read now; looking again at the next poke: {exc}")
            ready = False
        return PokeReturnValue(is_done=ready)

    @task(
        task_id=f"validate_{kind}_batch",
        doc_md=task_doc(
            f"Validates S's {kind} batch with Great Expectations; a batch that fails a "
            "critical expectation is rejected whole, and nothing of it is loaded.",
            reads=f"`{{landing}}/{folder}/service_date=S/`, `core.*` (what S already holds)",
            writes="`ops.batches` (status, summary), the Data Docs, an alert when rejected",
            fails="*rejected*: the log and the alert list the failed expectations with "
            "example values and link the Data Docs; fix the data upstream, then clear the "
            "run. *held*: the batch would replace S's rows with far fewer; land the full "
            'batch, or trigger with `{"service_date": "S", "apply_held": true}`.',
        ),
    )
    def validate_batch(service_date: str, **context) -> int:
        from nightscore.ingest import validate

        result = run_step(
            lambda: validate(
                kind,
                date.fromisoformat(service_date),
                settings=SETTINGS,
                run_id=context["run_id"],
                apply_held=bool(context["params"].get("apply_held")),
                applied_by=f"airflow:{context['run_id']}",
            )
        )
        print(result.summary)
        if result.data_docs_url:
            print(f"Data Docs: {result.data_docs_url}")
        return result.batch_id

    outlets = [core_asset(f"core.{name}") for name in _parts(kind)]

    @task(
        task_id=f"load_{kind}_batch",
        outlets=outlets,
        doc_md=task_doc(
            f"Loads the validated batch into {tables}, replacing S's rows in one "
            "transaction, and publishes their Assets.",
            reads="the validated batch files, `ops.batches`",
            writes=f"{tables}, `ops.batches` (status loaded)",
            fails="the files changed after validation, or a newer batch was validated: "
            f"clear `validate_{kind}_batch` and what follows. An unreachable warehouse is "
            "retried with backoff. Re-running is safe: S's rows are replaced, never "
            "duplicated.",
        ),
    )
    def load_batch(service_date: str, batch_id: int) -> int:
        from nightscore.ingest import load

        result = run_step(
            lambda: load(
                kind, date.fromisoformat(service_date), settings=SETTINGS, batch_id=batch_id
            )
        )
        print(result.summary)
        return result.batch_id

    day = resolve_service_date()
    # TaskFlow: calling a task with XComArgs is resolved at run time (stubs type the raw args).
    waited = wait_for_batch(day)  # type: ignore[arg-type]
    batch_id = validate_batch(day)  # type: ignore[arg-type]
    waited >> batch_id
    return load_batch(day, batch_id)  # type: ignore[arg-type]


def scoring_tasks(after: Any) -> Any:
    """plan -> score_partition (mapped over K partitions) -> publish, after `after`.

    The plan, made on a worker, decides K: it returns one job per partition, and the
    mapped task expands over that list at run time. So K is NIGHTSCORE_SCORING_PARTITIONS
    as the workers have it, whatever the DAG processor's environment says.
    """

    @task(
        task_id="plan_scoring",
        doc_md=task_doc(
            "Pins the model with the registry alias `champion` for every partition, checks "
            "its signature against the feature builder, and records the scoring run. Its "
            "*Extra Links* open the pinned model version in MLflow.",
            reads="the MLflow registry",
            writes="`scoring.runs`; an alert when there is no usable champion",
            fails="no `champion` or a signature that does not match the features: run the "
            "`retrain` DAG, then clear this task. MLflow unreachable: retried; check the "
            "MLflow server.",
        ),
    )
    def plan_scoring(**context) -> list[dict]:
        from nightscore import scoring

        day = date.fromisoformat(context["ti"].xcom_pull(task_ids="resolve_service_date"))
        planned = run_step(
            lambda: scoring.plan(
                day, SETTINGS, SETTINGS.scoring_partitions, airflow_run_id=context["run_id"]
            )
        )
        print(
            f"scoring {day} with {SETTINGS.model_name} v{planned['model_version']} in "
            f"{planned['parts']} partition(s); scoring run {planned['scoring_run_id']}"
        )
        # Shown as the "MLflow model" link (plugins/nightscore_mlflow_links.py).
        model_url = links.mlflow_model_url(SETTINGS, SETTINGS.model_name, planned["model_version"])
        context["ti"].xcom_push(key="mlflow_model_url", value=model_url)
        return [{"planned": planned, "part": part} for part in range(planned["parts"])]

    @task(
        task_id="score_partition",
        map_index_template="{{ partition }}",
        doc_md=task_doc(
            "Builds the features of its share of S's flights in the warehouse and scores "
            "them with the pinned model in chunks (one mapped copy per partition, "
            "`NIGHTSCORE_SCORING_PARTITIONS`).",
            reads="`core.flights`, `core.weather`, `core.outcomes` (up to S-2), the model",
            writes="`scoring.staged_predictions` (its partition's rows, replaced)",
            fails="a feature or model input error (no retry; the log names the column) or "
            "an unavailable warehouse or MLflow (retried). Clearing one partition is safe.",
        ),
    )
    def score_partition(job: dict, **context) -> int:
        from airflow.sdk import get_current_context

        from nightscore import scoring

        planned, part = job["planned"], job["part"]
        get_current_context()["partition"] = part  # type: ignore[typeddict-unknown-key]
        rows = run_step(
            lambda: scoring.score_partition(
                planned, part, SETTINGS, airflow_run_id=context["run_id"]
            )
        )
        print(f"partition {part + 1}/{planned['parts']}: {rows:,} flights scored and staged")
        return rows

    @task(
        task_id="publish_predictions",
        outlets=[core_asset("scoring.predictions")],
        doc_md=task_doc(
            "Replaces S's rows in `scoring.predictions` with the run's staged rows in one "
            "transaction and publishes the `scoring.predictions` Asset.",
            reads="`scoring.staged_predictions`, `scoring.runs`",
            writes="`scoring.predictions`, `scoring.runs`",
            fails="the run staged no rows (S has no flights to score?), or the warehouse "
            "was unreachable (retried). Nothing changes until all rows are in: the previous "
            "predictions stay; clear `plan_scoring` and what follows to score S again.",
        ),
    )
    def publish_predictions(jobs: list[dict], staged: list[int]) -> int:
        from nightscore import scoring

        result = run_step(lambda: scoring.publish(jobs[0]["planned"], SETTINGS))
        print(result.summary)
        return result.rows

    @task(
        task_id="check_drift",
        doc_md=task_doc(
            "The evening's early warning: tonight's features and scores against the "
            "training nights of the model that scored them (night averages against control "
            "limits, weighted by importance; the mean risk). A warned night mails the "
            "stakeholders the features that moved, with Evidently's page of a sample.",
            reads="tonight's features, `scoring.predictions`, the model's drift profile",
            writes="`monitoring.early_warnings` (and `_features`), the outbox, the page",
            fails="the warehouse, MLflow or the store unreachable (retried). The "
            "predictions are already published. Clearing it is safe (it replaces S's check).",
        ),
    )
    def check_drift(rows: int, **context) -> str:
        from nightscore.monitoring.evening import check_drift as check

        day = date.fromisoformat(context["ti"].xcom_pull(task_ids="resolve_service_date"))
        result = run_step(lambda: check(day, SETTINGS, progress=print))
        return result.summary

    jobs = plan_scoring()
    after >> jobs
    staged = score_partition.expand(job=jobs)
    # XComArgs, resolved to the jobs and the list of row counts at run time.
    published = publish_predictions(jobs, staged)  # type: ignore[arg-type]
    check_drift(published)
    return published


def _parts(kind: BatchKind) -> list[str]:
    from nightscore.contract import BATCH_FILES

    return [f.name for f in BATCH_FILES[kind]]


def send_alerts_task() -> Any:
    """The DAG's last task, `send_alerts`: after every other task, whatever their states,
    it sends what the outbox holds (see `nightscore.alert_tasks`). Call it last."""
    from nightscore.alert_tasks import send_alerts_task as add

    return add(SETTINGS, notify_failure)
