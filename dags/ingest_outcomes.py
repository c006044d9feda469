"""
### ingest_outcomes: what happened to yesterday's flights

Runs every morning at 06:00 UTC for service date **S = the previous day**. It waits
for the *outcomes batch* of S (actual departure and arrival times, delays,
cancellations, diversions) and for S's schedule batch to be loaded or rejected, since
outcomes must refer to scheduled flights; then it validates the batch with Great
Expectations (every outcome must refer to a flight scheduled for S, and be consistent:
a cancelled flight has no arrival time) and loads it into `core.outcomes`.

**Reads** `{landing}/outcomes/service_date=S/` · **writes** `ops.batches`,
`core.outcomes` (and `monitoring.alerts` when something is wrong).

**When it fails**
- `wait_for_outcomes_batch` timed out: the batch never landed, or S's schedule was
  never loaded (the alert says which); an alert is queued.
- `validate_outcomes_batch` failed: the batch was rejected whole (see the log and the
  Data Docs link). If S's schedule batch was rejected, its outcomes are rejected too:
  they refer to flights that are not in `core.flights`. Load the schedule first.
- `validate_outcomes_batch` failed with *held*: the batch would replace S's loaded rows
  with far fewer (a truncated export?); nothing was changed. Land the full batch and
  clear the task, or, if the smaller batch is right, trigger with
  `{"service_date": "S", "apply_held": true}`.
- Re-running is safe: loading replaces S's outcomes in one transaction.

**Manual runs** need the `service_date` param.
"""

from airflow.sdk import dag

from nightscore.calendar import OUTCOMES_SCHEDULE, outcomes_service_date
from nightscore.dagkit import (
    DEFAULT_ARGS,
    END_DATE,
    OWNER_LINKS,
    START_DATE,
    apply_held_param,
    ingestion_tasks,
    send_alerts_task,
    service_date_param,
)


@dag(
    dag_id="ingest_outcomes",
    schedule=OUTCOMES_SCHEDULE,
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    params={"service_date": service_date_param(), "apply_held": apply_held_param()},
    tags=["nightscore", "ingestion"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def ingest_outcomes():
    ingestion_tasks("outcomes", outcomes_service_date)
    send_alerts_task()


ingest_outcomes()
