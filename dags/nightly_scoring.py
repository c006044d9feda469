"""
### nightly_scoring: tonight's flights, validated, loaded and scored

Runs every evening at 22:00 UTC for service date **S = the next day**: the day the
flights fly. It waits for the *schedule batch* of S in the landing zone (flights
planned for S and the hourly weather at EWR, JFK and LGA), validates it with Great
Expectations and loads it into `core.flights` and `core.weather`. Then it scores S:

- `plan_scoring` pins the model with the registry alias `champion` (the same version
  for every partition) and checks its signature against the feature builder;
- `score_partition` (mapped, `NIGHTSCORE_SCORING_PARTITIONS` copies, default 1) builds
  the features of its share of S's flights in the warehouse, scores them in chunks and
  stages the predictions;
- `publish_predictions` replaces S's rows in `scoring.predictions` in one transaction
  and publishes the `scoring.predictions` Asset.

**Reads** `{landing}/schedules/service_date=S/`, `core.*`, the MLflow registry ·
**writes** `ops.batches`, `core.flights`, `core.weather`, `scoring.runs`,
`scoring.predictions` (and `monitoring.alerts` when something is wrong).

**When it fails**
- `wait_for_schedule_batch` timed out: the batch never landed; an alert is queued.
  Land it, then clear the task.
- `validate_schedule_batch` failed: the batch was *rejected whole*; the log and the
  alert say which expectations failed, with example values, and link the Data Docs.
  Nothing was loaded. Fix the data upstream (or run
  `nightscore ingest schedule --service-date S --path FIXED_FOLDER`), then clear the run.
- `plan_scoring` failed: there is no `champion` (run the `retrain` DAG), or the
  champion's signature does not match the features (retrain); an alert is queued.
- `validate_schedule_batch` failed with *held*: the batch would replace S's loaded rows
  with far fewer (a truncated export?); nothing was changed. Land the full batch and
  clear the task, or, if the smaller batch is right, trigger with
  `{"service_date": "S", "apply_held": true}`.
- Re-running is safe: loading and publishing each replace S's rows in one
  transaction, and the previous predictions stay until the new ones are complete.

**Manual runs** need the `service_date` param (`{"service_date": "2013-02-07"}`).
"""

from airflow.sdk import dag

from nightscore.calendar import SCORING_SCHEDULE, scoring_service_date
from nightscore.dagkit import (
    DEFAULT_ARGS,
    END_DATE,
    OWNER_LINKS,
    START_DATE,
    apply_held_param,
    ingestion_tasks,
    scoring_tasks,
    send_alerts_task,
    service_date_param,
)


@dag(
    dag_id="nightly_scoring",
    schedule=SCORING_SCHEDULE,
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    params={"service_date": service_date_param(), "apply_held": apply_held_param()},
    tags=["nightscore", "scoring", "ingestion"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def nightly_scoring():
    loaded = ingestion_tasks("schedule", scoring_service_date)
    scoring_tasks(loaded)
    send_alerts_task()


nightly_scoring()
