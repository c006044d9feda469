"""The failure notifier: when a task fails, an engineer gets an email.

`task_failure_callback` is what every DAG's `default_args["on_failure_callback"]`
(`dagkit.notify_failure`) calls. The alert follows the error model (`errors.classify`):
an `InfrastructureError` raises `infrastructure_unavailable` naming the component that
did not answer, anything else `dag_failed`. It queues the alert in the outbox, which the
DAG's own `send_alerts` sends minutes later, so an SMTP outage loses nothing. When the
outbox itself cannot be written (the warehouse is down), it mails the notice directly and
spools it for the next drain (`delivery.notify_directly`). Imported at DAG parse time, so
it imports nothing heavy at module level.
"""

from __future__ import annotations

import logging
import traceback
from datetime import date
from typing import TYPE_CHECKING, Any

from nightscore import links
from nightscore.errors import InfrastructureError, classify

if TYPE_CHECKING:
    from nightscore.config import Settings
    from nightscore.monitoring.spool import Notice

RULE = "dag_failed"
INFRASTRUCTURE_RULE = "infrastructure_unavailable"
MAX_EXCEPTION_CHARS = 4000
CONNECT_TIMEOUT_S = 10
logger = logging.getLogger(__name__)


def task_failure_callback(context: Any, settings: Settings | None = None) -> None:
    """Queue a critical alert for the failed task in `context` (Airflow's Context: `ti`
    and `exception`), once per DAG run and task; mail it directly when the outbox cannot
    be written. Never raises: a broken notifier must not hide the failure it reports."""
    try:
        from nightscore.config import load_settings

        settings = settings or load_settings()
        notice = failure_notice(context, settings)
    except Exception:
        logger.exception("could not describe the task failure")
        return
    try:
        queue_notice(notice, settings)
    except Exception as exc:
        logger.warning(
            "could not queue the task failure alert %s in the outbox (%s: %s); mailing it "
            "directly and spooling it for the next drain",
            notice.dedup_key,
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        )
        try:
            from nightscore.monitoring.delivery import notify_directly

            notify_directly(notice, settings)
        except Exception:
            logger.exception("could not mail the task failure alert %s", notice.dedup_key)


def failure_notice(context: Any, settings: Settings) -> Notice:
    """The alert for the failed task in `context`: `infrastructure_unavailable` (naming
    the component) when `errors.classify` reads the exception as an infrastructure
    failure, `dag_failed` otherwise."""
    from nightscore.monitoring.spool import Notice

    details = failure_details(context, settings)
    dag_id = details.get("dag_id", "?")
    task_id = details.get("task_id", "?")
    run_id = details.get("run_id", "?")
    where = f"task {task_id}" + (f"[{details['map_index']}]" if "map_index" in details else "")
    exception = context.get("exception")
    fault = classify(exception) if isinstance(exception, BaseException) else None
    rule, what, cooldown_key = RULE, "failed", f"{RULE}:{dag_id}:{task_id}"
    if isinstance(fault, InfrastructureError):
        details["component"] = fault.component
        rule, what = INFRASTRUCTURE_RULE, f"failed: the {fault.component} is unavailable"
        # One component down fails many tasks; a cooldown, if the rules set one, is per
        # component.
        cooldown_key = f"{INFRASTRUCTURE_RULE}:{fault.component}"
    body = (
        f"{where} of DAG {dag_id} {what} in run {run_id}"
        f" (try {details.get('try_number', '?')}).\n\n"
        f"{details.get('exception') or 'No exception was recorded.'}\n\n"
        + (f"Log: {details['log_url']}\n" if "log_url" in details else "")
    )
    return Notice(
        rule=rule,
        severity="critical",
        service_date=_service_date(context),
        subject=f"[nightscore] {dag_id}: {where} {what}",
        body=body,
        details=details,
        dedup_key=f"{rule}:{dag_id}:{run_id}:{task_id}",
        cooldown_key=cooldown_key,
    )


def queue_notice(notice: Notice, settings: Settings) -> int | None:
    """Queue `notice` in the outbox; its id, or None when its dedup key was queued before."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from nightscore.monitoring.outbox import raise_alert
    from nightscore.monitoring.rules import load_rules

    rules = load_rules(settings)
    # An engine of its own, with a short connect timeout: a warehouse host that does not
    # answer at all would otherwise hold the callback for the kernel's TCP timeout
    # (about 2 minutes on Linux) before the notice is mailed directly.
    engine = create_engine(
        settings.warehouse_sqlalchemy_url,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        poolclass=NullPool,
    )
    try:
        with engine.begin() as conn:
            return raise_alert(
                conn,
                rule=notice.rule,
                severity=notice.severity,
                service_date=notice.service_date,
                subject=notice.subject,
                body=notice.body,
                details=notice.details,
                dedup_key=notice.dedup_key,
                cooldown_key=notice.cooldown_key,
                rules=rules,
            )
    finally:
        engine.dispose()


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
