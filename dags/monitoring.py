"""
### monitoring: how the model did yesterday, drift, alerts, and the weekly report

Runs every morning at 07:00 UTC for service date **S = the previous day**, once S's
outcomes batch is loaded (or rejected) by `ingest_outcomes`.

1. `measure_performance`: ROC AUC, PR AUC, precision, recall, F1, Brier and calibration
   error of each model version that scored S, overall, by origin, by carrier and over the
   trailing 7 days (`monitoring.performance`).
2. `measure_drift`: each feature and the score of S against the reference sample stored
   with the scoring model (Evidently), per column and as a share of the features
   (`monitoring.drift`, `monitoring.drift_runs`); the day's HTML report
   (`monitoring.reports`) and a snapshot in the Evidently workspace (`evidently ui`).
3. `check_rules`: the alert rules (`NIGHTSCORE_ALERT_RULES`, YAML: threshold, severity,
   cooldown). Breaches go to the outbox `monitoring.alerts`; every check to
   `monitoring.rule_checks`.
4. `decide_retrain` → `trigger_retrain`: a rule marked `retrain` breached on 2 of the last
   5 days (S included) triggers the `retrain` DAG with the reason
   (`monitoring.retrain_triggers`).
5. `weekly_report`: on Sundays, the stakeholders' report (KPIs, trend chart, riskiest
   routes, the model and its age, drifted features, the Evidently report attached).
6. `send_alerts` (the last task of every nightscore DAG): emails what the outbox holds,
   through the `smtp_default` connection. It runs even when a step before it failed,
   and leaves the run's state to the other tasks; a failed send stays pending and goes
   out with the next drain (another DAG's end, or `alert_outbox` within 10 minutes).

**Reads** `scoring.predictions`, `core.*`, MLflow (the reference sample) · **writes**
`monitoring.*`, the reports folder (`NIGHTSCORE_REPORTS_DIR`), the Evidently workspace.

**When it fails**
- `wait_for_outcomes` timed out: `ingest_outcomes` of S did not finish; look there.
- `measure_drift` is *skipped* when nothing was scored for S (a rejected schedule batch).
- `send_alerts` warns that the SMTP server is unreachable: nothing is lost, the next
  drain (or `nightscore alerts send`) sends what is pending.
- Re-running is safe: every step replaces what it wrote for S; an alert is queued once.

**Manual runs** need the `service_date` param; `weekly_report: true` sends the report
for the week ending S on any day.
"""

from datetime import date, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, PokeReturnValue, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from nightscore.calendar import MONITORING_SCHEDULE, monitoring_service_date
from nightscore.dagkit import (
    DEFAULT_ARGS,
    END_DATE,
    OWNER_LINKS,
    SENSOR_EXECUTION_TIMEOUT,
    SETTINGS,
    START_DATE,
    core_asset,
    notify_failure,
    run_step,
    run_url,
    send_alerts_task,
    service_date_param,
    task_doc,
)

REQUEST = "ti.xcom_pull(task_ids='decide_retrain')"


@dag(
    dag_id="monitoring",
    schedule=MONITORING_SCHEDULE,
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "service_date": service_date_param(),
        "weekly_report": Param(
            False, type="boolean", description="Send the weekly report for the week ending S."
        ),
    },
    tags=["nightscore", "monitoring"],
    owner_links=OWNER_LINKS,
    doc_md=__doc__,
)
def monitoring():
    @task(
        retries=0,
        doc_md=task_doc(
            "The service date S to monitor: the day before the logical date, or the "
            "`service_date` param of a manual run.",
            reads="the run's logical date and params",
            writes="nothing (S as its XCom)",
            fails='a manual run without a valid `service_date`: trigger with `{"service_date": '
            '"2013-02-07"}`.',
        ),
    )
    def resolve_service_date(**context) -> str:
        params = context["params"]
        return run_step(
            lambda: monitoring_service_date(context.get("logical_date"), params["service_date"])
        ).isoformat()

    @task.sensor(
        poke_interval=SETTINGS.sensor_poke_s,
        timeout=SETTINGS.sensor_timeout_s,
        mode=SETTINGS.sensor_mode,
        retries=0,
        execution_timeout=SENSOR_EXECUTION_TIMEOUT,
        on_failure_callback=notify_failure,
        doc_md=task_doc(
            "Waits until S's outcomes batch is settled: loaded or rejected by `ingest_outcomes`.",
            reads="`ops.batches`",
            writes="nothing",
            fails="timed out: `ingest_outcomes` of S did not finish; look at that run, "
            "then clear this task.",
        ),
    )
    def wait_for_outcomes(service_date: str) -> PokeReturnValue:
        from nightscore.monitoring.monitor import outcomes_settled

        return PokeReturnValue(is_done=outcomes_settled(date.fromisoformat(service_date), SETTINGS))

    @task(
        outlets=[core_asset("monitoring.performance")],
        doc_md=task_doc(
            "ROC AUC, PR AUC, precision, recall, F1, Brier and calibration error of each "
            "model version that scored S: overall, by origin, by carrier, trailing 7 days.",
            reads="`scoring.predictions`, `core.outcomes`",
            writes="`monitoring.performance` (S's rows, replaced)",
            fails="the warehouse unreachable (retried). Re-running replaces S's rows.",
        ),
    )
    def measure_performance(service_date: str) -> int:
        from nightscore.monitoring.monitor import measure_performance

        rows = run_step(lambda: measure_performance(date.fromisoformat(service_date), SETTINGS))
        print(f"{len(rows)} performance row(s) stored for {service_date}")
        return len(rows)

    @task(
        outlets=[core_asset("monitoring.drift")],
        execution_timeout=timedelta(seconds=SETTINGS.report_timeout_s),
        doc_md=task_doc(
            "Compares S's features and scores with the reference sample stored with the "
            "scoring model (Evidently): drift per column and as a share of the features, "
            "the day's HTML report and an Evidently UI snapshot. *Skipped* when nothing "
            "was scored for S.",
            reads="`scoring.predictions`, `core.*`, MLflow (the reference sample)",
            writes="`monitoring.drift`, `monitoring.drift_runs`, `monitoring.reports`, the "
            "reports folder, the Evidently workspace",
            fails="MLflow, the warehouse or the store unreachable (retried), or the report "
            "ran past `NIGHTSCORE_REPORT_TIMEOUT_S`. Re-running replaces S's drift.",
        ),
    )
    def measure_drift(service_date: str) -> list[dict]:
        from nightscore.monitoring.monitor_drift import NothingScored, measure_drift

        def measure() -> list:
            try:
                return measure_drift(date.fromisoformat(service_date), SETTINGS)
            except NothingScored as exc:  # a data error, but nothing to do: skipped
                raise AirflowSkipException(str(exc)) from None

        found = run_step(measure)
        for d in found:
            print(
                f"{d.model_name} v{d.model_version}: {d.share_drifted:.0%} of features drifted "
                f"({', '.join(d.drifted_columns) or 'none'}); report: {d.report_url}"
            )
        return [{"version": d.model_version, "share": d.share_drifted} for d in found]

    @task(
        doc_md=task_doc(
            "Evaluates the alert rules (`NIGHTSCORE_ALERT_RULES`: threshold, severity, "
            "cooldown) on S's performance and drift; each breach is queued in the outbox.",
            reads="`monitoring.performance`, `monitoring.drift`, the rules file",
            writes="`monitoring.rule_checks`, `monitoring.alerts`",
            fails="a rules file that does not parse (the log names the line), or the "
            "warehouse unreachable (retried). An alert is queued once, even on a re-run.",
        ),
    )
    def check_rules(service_date: str, **context) -> int:
        from nightscore.monitoring.monitor_rules import check_rules

        checks = run_step(
            lambda: check_rules(
                date.fromisoformat(service_date), SETTINGS, run_url=run_url(context)
            )
        )
        for check in checks:
            print(check.line)
        return sum(c.breached for c in checks)

    @task.short_circuit(
        ignore_downstream_trigger_rules=False,
        doc_md=task_doc(
            "Asks for a retrain when a rule marked `retrain` breached on 2 of the last 5 "
            "days (S included); otherwise skips `trigger_retrain`.",
            reads="`monitoring.rule_checks`, `monitoring.retrain_triggers`",
            writes="`monitoring.retrain_triggers`",
            fails="the warehouse unreachable (retried).",
        ),
    )
    def decide_retrain(service_date: str) -> dict | None:
        from nightscore.monitoring.monitor_rules import retrain_request

        request = run_step(lambda: retrain_request(date.fromisoformat(service_date), SETTINGS))
        if request is None:
            print("no retrain needed")
            return None
        print(f"retrain requested: {request.reason}")
        return {"run_id": request.run_id, **request.conf}

    trigger_retrain = TriggerDagRunOperator(
        task_id="trigger_retrain",
        trigger_dag_id="retrain",
        trigger_run_id="{{ " + REQUEST + "['run_id'] }}",
        conf={
            "cutoff": "{{ " + REQUEST + "['cutoff'] }}",
            "reason": "{{ " + REQUEST + "['reason'] }}",
        },
        logical_date=None,
        skip_when_already_exists=True,
        doc_md=task_doc(
            "Triggers the `retrain` DAG with the cut-off and reason `decide_retrain` chose "
            "(one run per request: an existing one is not triggered again).",
            reads="`decide_retrain`'s XCom",
            writes="a `retrain` DAG run",
            fails="the `retrain` DAG is missing or paused in a way the API refuses: check "
            "it in the DAG list, then clear this task.",
        ),
    )

    @task(
        doc_md=task_doc(
            "On Sundays (or with the `weekly_report` param): the stakeholders' report of the "
            "week ending S (KPIs, trend chart, riskiest routes, the model, drifted "
            "features), queued as mail with the Evidently report attached. Skipped on "
            "other days.",
            reads="`monitoring.*`, `scoring.predictions`, `ml.model_decisions`",
            writes="the reports folder, `monitoring.reports`, `monitoring.alerts`",
            fails="nothing was scored in the week (no retry: score the week first), or the "
            "warehouse or the store unreachable (retried). A re-run mails nothing twice.",
        ),
    )
    def weekly_report(service_date: str, **context) -> int | None:
        day = date.fromisoformat(service_date)
        if day.weekday() != 6 and not context["params"].get("weekly_report"):
            raise AirflowSkipException(f"{day} is not a Sunday: no weekly report")
        from nightscore.monitoring.report import queue_weekly_report

        alert_id = run_step(lambda: queue_weekly_report(day, SETTINGS))
        print(f"weekly report for the week ending {day}: queued as alert {alert_id}")
        return alert_id

    day = resolve_service_date()
    performance = measure_performance(day)
    wait_for_outcomes(day) >> performance
    drift = measure_drift(day)
    performance >> drift
    checked = check_rules(day)
    drift >> checked
    decided = decide_retrain(day)
    checked >> decided >> trigger_retrain
    report = weekly_report(day)
    checked >> report
    send_alerts_task()


monitoring()
