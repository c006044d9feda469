"""The failure notifier: when a task fails, an engineer gets an email.

`task_failure_callback` is what every DAG's `default_args["on_failure_callback"]`
(`dagkit.notify_failure`) calls. It does not send mail itself: it queues an alert in the outbox, which the sender delivers, so an
SMTP outage at the moment of the failure loses nothing. Imported at DAG parse time, so
it imports nothing heavy at module level.
"""

from __future__ import annotations

import logging
import traceback
from datetime import date
from typing import TYPE_CHECKING, Any

from nightscore import links

if TYPE_CHECKING:
    from nightscore.config import Settings

RULE = "dag_failed"
MAX_EXCEPTION_CHARS = 4000
logger = logging.getLogger(__name__)


def task_failure_callback(context: Any, settings: Settings | None = None) -> None:
    """Queue a critical `dag_failed` alert for the failed task in `context` (Airflow's
    Context: `ti` and `exception`), once per DAG run and task. Never raises: a broken
    notifier must not hide the failure it reports."""
    try:
        _queue_failure(context, settings)
    except Exception:
        logger.exception("could not queue the task failure alert")


def failure_details(context: Any, settings: Settings) -> dict[str, Any]:
    """What the alert says about the failure, from the callback's context; its links are
    built from the public Airflow address (`links`), as a browser on any host opens them."""
    ti = context.get("ti") or context.get("task_instance")
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    dag_id, task_id = getattr(ti, "dag_id", None), getattr(ti, "task_id", None)
    try_number, map_index = getattr(ti, "try_number", None), getattr(ti, "map_index", None)
    details: dict[str, Any] = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "try_number": try_number,
        "exception": _exception_text(context.get("exception")),
    }
    if map_index is not None and map_index >= 0:
        details["map_index"] = map_index
    if dag_id and run_id:
        details["airflow_url"] = links.dag_run_url(settings, dag_id, run_id)
        if task_id:
            details["log_url"] = links.task_url(
                settings, dag_id, run_id, task_id, try_number=try_number, map_index=map_index
            )
    return {key: value for key, value in details.items() if value is not None}


def _queue_failure(context: Any, settings: Settings | None) -> None:
    from nightscore.config import load_settings
    from nightscore.monitoring.outbox import raise_alert
    from nightscore.warehouse.db import engine_for

    settings = settings or load_settings()
    details = failure_details(context, settings)
    dag_id = details.get("dag_id", "?")
    task_id = details.get("task_id", "?")
    run_id = details.get("run_id", "?")
    where = f"task {task_id}" + (f"[{details['map_index']}]" if "map_index" in details else "")
    body = (
        f"{where} of DAG {dag_id} failed in run {run_id}"
        f" (try {details.get('try_number', '?')}).\n\n"
        f"{details.get('exception') or 'No exception was recorded.'}\n\n"
        + (f"Log: {details['log_url']}\n" if "log_url" in details else "")
    )
    with engine_for(settings).begin() as conn:
        raise_alert(
            conn,
            rule=RULE,
            severity="critical",
            service_date=_service_date(context),
            subject=f"[nightscore] {dag_id}: {where} failed",
            body=body,
            details=details,
            dedup_key=f"{RULE}:{dag_id}:{run_id}:{task_id}",
            cooldown_key=f"{RULE}:{dag_id}:{task_id}",
        )


def _exception_text(exception: Any) -> str | None:
    if exception is None:
        return None
    if isinstance(exception, BaseException):
        text = "".join(traceback.format_exception_only(exception)).strip()
    else:
        text = str(exception).strip()
    if len(text) > MAX_EXCEPTION_CHARS:
        text = text[:MAX_EXCEPTION_CHARS] + " [...]"
    return text


def _service_date(context: Any) -> date | None:
    """The run's service date when it is known: the `service_date` param of a manual run,
    else what the DAG's `resolve_service_date` task pushed."""
    try:
        value = (context.get("params") or {}).get("service_date")
        ti = context.get("ti")
        if not value and hasattr(ti, "xcom_pull"):
            value = ti.xcom_pull(task_ids="resolve_service_date")
        return date.fromisoformat(str(value)) if value else None
    except Exception:  # a best effort: the alert goes out without it
        return None
