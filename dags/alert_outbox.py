"""
### alert_outbox: alerts out within minutes, whatever ran before

Every `NIGHTSCORE_ALERT_DRAIN_EVERY_MIN` minutes (default 10) one task, `send_alerts`,
drains the alert outbox `monitoring.alerts`:

1. failure notices spooled while the warehouse could not be written
   (`NIGHTSCORE_ALERT_SPOOL_ROOT`, default `{store}/alert_spool`) are queued in the
   outbox: as *sent* when the failure callback already mailed them, as *pending*
   otherwise; then removed from the spool;
2. every pending alert is emailed through the `smtp_default` connection.

Every other nightscore DAG ends with the same task, so an alert normally leaves when its
run ends; this sweep bounds the wait when a run is still going or its send could not
reach SMTP. Two drains at once are safe: each alert is taken under a row lock
(`FOR UPDATE SKIP LOCKED`) and mailed by one of them only.

**Reads and writes** `monitoring.alerts`, the alert spool · **sends** mail.

**When it warns or fails**
- *SMTP unreachable* (a warning in the log, the task succeeds): the alerts stay
  `pending` with `attempts` and `last_error`; the next sweep sends them.
- *Warehouse unreachable* (a warning): spooled notices stay in the spool; those not
  mailed yet are mailed from it; they are queued once the warehouse answers.
- *Store unreachable* (a warning): the spool waits; the outbox is still sent.
- The task *failed*: a bug, not an outage; its `dag_failed` alert says which.
  `nightscore alerts send` does the same drain by hand.
- Runs do not pile up: one at a time, each stopped after
  `NIGHTSCORE_ALERT_SEND_TIMEOUT_S` (300 s), no catch-up.
"""

from datetime import timedelta

from airflow.sdk import DeltaTriggerTimetable, dag

from nightscore.dagkit import (
    DEFAULT_ARGS,
    OWNER_LINKS,
    SETTINGS,
    START_DATE,
    send_alerts_task,
)


@dag(
    dag_id="alert_outbox",
    schedule=DeltaTriggerTimetable(timedelta(minutes=SETTINGS.alert_drain_every_min)),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(seconds=SETTINGS.alert_send_timeout_s + 60),
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["nightscore", "monitoring", "alerts"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def alert_outbox():
    send_alerts_task()


alert_outbox()
