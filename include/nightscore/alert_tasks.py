"""The task every DAG ends with: `send_alerts`, which sends what the outbox holds.

A failure at 22:00 is then mailed when its DAG run ends, not at the next morning's
monitoring run; the `alert_outbox` DAG's sweep every `NIGHTSCORE_ALERT_DRAIN_EVERY_MIN`
minutes bounds the wait when a run ends late or its send failed.

How it ends a DAG without changing the run's state. Airflow 3 decides a DAG run's state
from its leaves: failed when a leaf is failed or upstream_failed, success when every
leaf succeeded. A plain `trigger_rule="all_done"` leaf that succeeds after a real task
failed would therefore turn the failed run green. So `send_alerts` is a *teardown*
task: Airflow leaves teardowns out of the run's state (`on_failure_fail_dagrun` stays
False) and looks at the tasks before it, the DAG's real leaves. Its trigger rule is
teardown's `all_done_setup_success`, which, with no setup task upstream, is `all_done`:
it runs once every other task is done, whatever their states. Clearing a task with its
downstream tasks (or a leaf) clears `send_alerts` too, so a re-run's alerts go out at
its end as well; otherwise the sweep sends them.

Imported at DAG parse time (through `dagkit`): it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import task

if TYPE_CHECKING:
    from nightscore.config import Settings

TASK_ID = "send_alerts"


def send_alerts_task(settings: Settings, on_failure: Callable[[Any], None]) -> Any:
    """Add `send_alerts` to the DAG being defined, downstream of all its current leaves;
    call it last in the DAG function. Returns the task's XComArg."""

    @task(
        task_id=TASK_ID,
        # The next DAG end, or the sweep, retries within minutes; an Airflow retry would
        # only hold the run open.
        retries=0,
        execution_timeout=timedelta(seconds=settings.alert_send_timeout_s),
        on_failure_callback=on_failure,
        doc_md=(
            "Moves failure notices spooled while the warehouse was down into the outbox, "
            "then emails every pending alert through `smtp_default`. It runs last, whatever "
            "the other tasks did, and leaves the run's state to them.\n\n"
            "**Reads** `monitoring.alerts`, the alert spool · **writes** `monitoring.alerts` "
            "(sent, or pending with its error), mail\n\n"
            "**When it fails** an outage of SMTP, the warehouse or the store is only a warning "
            "in the log: the alerts stay pending for the next drain (the `alert_outbox` DAG, "
            "or `nightscore alerts send`). A failure is a bug; its `dag_failed` alert says "
            "which."
        ),
    )
    def send_alerts() -> str:
        """Move spooled notices into the outbox and email what is pending. An outage of
        SMTP, the warehouse or the store is a warning in the log, not a failure: the
        alerts stay pending (or spooled) for the next drain."""
        from nightscore.monitoring.delivery import deliver

        result = deliver(settings)
        print(result.summary)
        return result.summary

    sent = send_alerts()
    operator = sent.operator
    dag = operator.dag
    if dag is None:
        raise RuntimeError("send_alerts_task() must be called inside a DAG definition")
    leaves = [t for t in dag.leaves if t is not operator]
    operator.set_upstream(leaves)
    sent.as_teardown()
    return sent
