"""`make test-faults`: six faults injected into the real components of one stack
(`nightscore_dev.faults.stack`), each while a real DAG run needs the component, every run
let run to its end, then checked.

    python -m nightscore_dev.faults

History (2013-01-01 to 2013-02-09) is seeded straight into the warehouse, the first
champion is trained through `retrain`, then two service dates are replayed:

  1 warehouse  its Postgres stopped when `load_schedule_batch` of night 1 starts, started
               again once that try has failed;
  2 mlflow     the MLflow server SIGKILLed when `plan_scoring` of night 1 starts, started
               again at once (it takes 25-60 s to answer);
  3 smtp       the mail sink down for a whole `monitoring` run (with the weekly report),
               then back;
  4 warehouse  the warehouse down while `ingest_outcomes` of night 2 fails: its failure
               notice must go out directly over SMTP, and be queued once the warehouse is
               back; then the run is made again;
  5 scheduler  the scheduler SIGKILLed (its process group and session: its executor's
               workers and their tasks) when `score_partition` of night 2 starts, started
               again 5 s later;
  6 store      the reports' tmpfs remounted read-only when `measure_drift` of morning 1
               starts, writable again once that try has failed.

For each: rows against the source batch or the expected count (none lost), keys and
Message-IDs (no duplicate), the alerts (an `infrastructure_unavailable` alert naming the
component when retries ran out, none when a retry recovered, never a data alert) and
their delivery within 15 minutes of the injection (the sink's receive time). It prints a
table; the last line is JSON; it exits 1 naming each failed check.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from nightscore_dev import demo
from nightscore_dev.faults import evidence
from nightscore_dev.faults.evidence import INFRA_RULE, Mail, Rows
from nightscore_dev.faults.stack import FaultStack, settings_of, up
from nightscore_dev.faults.watch import Watch
from nightscore_dev.stack.airflow import ADMIN_USER

NIGHT_1, NIGHT_2 = date(2013, 2, 10), date(2013, 2, 11)
HISTORY_FIRST = date(2013, 1, 1)
LATE_S = 15 * 60  # an alert later than this after its cause is late
SCHEDULER_DOWN_S = 5
# An injection that waits for the task's failed try gives up after this long.
FAILED_TRY_WAIT_S = 180
TIMEOUT_S = 40 * 60
# What a failure notice may look like when no retry recovered: the infrastructure rule.
NOTICE_RULES = (INFRA_RULE, "dag_failed")


@dataclass
class Fault:
    """One injection: where, into which runs and tasks, and what it left."""

    number: int
    component: str
    what: str
    dag_id: str = ""
    task_id: str = ""  # the task the fault hits
    runs: list[str] = field(default_factory=list)
    injected_at: float = 0.0
    restored_at: float = 0.0
    outcome: str = ""
    rows: list[Rows] = field(default_factory=list)
    mail_duplicates: int = 0
    alert: str = "-"
    delay_s: float | None = None
    late: int = 0
    injection_error: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rows)

    @property
    def duplicates(self) -> int:
        return sum(r.duplicates for r in self.rows) + self.mail_duplicates

    def fail(self, check: str) -> None:
        self.problems.append(f"fault {self.number} ({self.component}): {check}")


# --- injections -------------------------------------------------------------------------


def _wait_for_failed_try(stack: FaultStack, fault: Fault, first_try: int) -> None:
    """Until the hit task's try has failed (it is up for retry, or failed for good)."""
    deadline = time.monotonic() + FAILED_TRY_WAIT_S
    while time.monotonic() < deadline:
        state, tries = evidence.task_tries(
            stack.airflow_db_url, fault.dag_id, fault.runs[0], fault.task_id
        )
        if state not in ("running", "queued", "scheduled", "restarting") or tries > first_try:
            return  # up for retry, or ended (failed, success, skipped)
        time.sleep(0.2)


def _outage(
    stack: FaultStack, fault: Fault, down: Callable[[], Any], back: Callable[[], Any]
) -> Callable[[Watch], None]:
    """Break the component; mend it once the hit try has failed."""

    def act(watch: Watch) -> None:
        down()
        fault.injected_at = time.time()
        _wait_for_failed_try(stack, fault, watch.try_number)
        back()
        fault.restored_at = time.time()

    return act


def _watch(stack: FaultStack, fault: Fault, act: Callable[[Watch], None]) -> Watch:
    holder: list[Watch] = []

    def action() -> None:
        try:
            act(holder[0])
        except Exception as exc:
            fault.injection_error = f"{type(exc).__name__}: {exc}"[:300]
            raise

    watch = Watch(stack.airflow_db_url, fault.dag_id, fault.task_id, fault.runs[0], action)
    holder.append(watch)
    watch.start()
    return watch


def _trigger(client: demo.AirflowClient, dag_id: str, day: date, **conf: Any) -> demo.Run:
    run = demo.trigger(client, dag_id, day.isoformat(), {"service_date": day.isoformat(), **conf})
    time.sleep(1.1)  # run ids carry a stamp to the second
    return run


def wait_for_runs(client: demo.AirflowClient, runs: list[demo.Run], deadline: float) -> None:
    """`demo.wait_for_runs`, through moments when the API server is too busy to answer
    within 30 s (two cores shared with a training and Evidently)."""
    progress = demo.Progress(len(runs))
    while True:
        try:
            demo.wait_for_runs(client, [r for r in runs if not r.finished], progress, deadline)
            return
        except demo.DemoError as exc:
            if not any(s in str(exc) for s in ("did not answer", "cannot reach")):
                raise
            if time.monotonic() > deadline:
                raise
            print(f"    (the API server is slow; asking again: {str(exc)[:80]})", flush=True)
            time.sleep(5)


class Driver:
    """Runs the nights with their faults, and keeps every run it triggered."""

    def __init__(self, stack: FaultStack, client: demo.AirflowClient, deadline: float) -> None:
        self.stack = stack
        self.client = client
        self.deadline = deadline
        self.runs: list[demo.Run] = []

    def wait(self, *runs: demo.Run) -> None:
        self.runs += runs
        wait_for_runs(self.client, list(runs), self.deadline)

    def night_1_evening(self, f1: Fault, f2: Fault) -> None:
        stack = self.stack
        self.client_trigger_replay(NIGHT_1)
        run = _trigger(self.client, "nightly_scoring", NIGHT_1)
        for fault in (f1, f2):
            fault.dag_id, fault.runs = "nightly_scoring", [run.run_id]
        f1.task_id, f2.task_id = "load_schedule_batch", "plan_scoring"
        w1 = _watch(stack, f1, _outage(stack, f1, stack.stop_warehouse, stack.start_warehouse))

        def mlflow(watch: Watch) -> None:
            stack.kill_mlflow()
            f2.injected_at = time.time()
            stack.start_mlflow(wait=True)
            f2.restored_at = time.time()

        w2 = _watch(stack, f2, mlflow)
        self.wait(run)
        for watch in (w1, w2):
            watch.finish()
        # Counted as the run left them, before anything is done about it.
        f1.rows = evidence.batch_rows(stack.warehouse_url, "schedule", NIGHT_1)
        f2.rows = [evidence.prediction_rows(stack.warehouse_url, NIGHT_1)]
        if run.state != "success":
            # What an engineer does next: run the night again, so the morning has scores.
            self.wait(_trigger(self.client, "nightly_scoring", NIGHT_1))

    def client_trigger_replay(self, day: date) -> None:
        self.wait(_trigger(self.client, "replay_source", day))

    def night_1_morning(self, f6: Fault) -> None:
        stack = self.stack
        self.wait(_trigger(self.client, "ingest_outcomes", NIGHT_1))
        run = _trigger(self.client, "monitoring", NIGHT_1)
        f6.dag_id, f6.task_id, f6.runs = "monitoring", "measure_drift", [run.run_id]
        watch = _watch(
            stack,
            f6,
            _outage(
                stack,
                f6,
                lambda: stack.reports_read_only(True),
                lambda: stack.reports_read_only(False),
            ),
        )
        self.wait(run)
        watch.finish()

    def night_2_evening(self, f5: Fault) -> None:
        stack = self.stack
        self.client_trigger_replay(NIGHT_2)
        run = _trigger(self.client, "nightly_scoring", NIGHT_2)
        f5.dag_id, f5.task_id, f5.runs = "nightly_scoring", "score_partition", [run.run_id]

        def crash(watch: Watch) -> None:
            stack.kill_scheduler()
            f5.injected_at = time.time()
            time.sleep(SCHEDULER_DOWN_S)
            stack.start_scheduler()
            f5.restored_at = time.time()

        watch = _watch(stack, f5, crash)
        self.wait(run)
        watch.finish()
        f5.rows = [evidence.prediction_rows(stack.warehouse_url, NIGHT_2)]

    def night_2_morning(self, f4: Fault, f3: Fault) -> None:
        stack = self.stack
        stack.stop_warehouse()
        f4.injected_at = time.time()
        run = _trigger(self.client, "ingest_outcomes", NIGHT_2)
        f4.dag_id, f4.runs = "ingest_outcomes", [run.run_id]
        self.wait(run)
        stack.start_warehouse()
        f4.restored_at = time.time()
        failed = evidence.query(
            stack.airflow_db_url,
            "SELECT task_id FROM task_instance WHERE dag_id = %s AND run_id = %s "
            "AND state IN ('failed', 'upstream_failed') ORDER BY start_date NULLS LAST LIMIT 1",
            (f4.dag_id, run.run_id),
        )
        f4.task_id = failed[0][0] if failed else ""
        again = _trigger(self.client, "ingest_outcomes", NIGHT_2)  # what an engineer does
        f4.runs.append(again.run_id)
        self.wait(again)

        stack.stop_sink()
        f3.injected_at = time.time()
        run = _trigger(self.client, "monitoring", NIGHT_2, weekly_report=True)
        f3.dag_id, f3.task_id, f3.runs = "monitoring", "send_alerts", [run.run_id]
        self.wait(run)
        stack.start_sink()
        f3.restored_at = time.time()


def _settle(stack: FaultStack, faults: list[Fault], settle_s: float) -> None:
    """Wait until the outbox is empty (the drain has sent what the faults left pending),
    or `settle_s` after the last injection: what has not arrived then counts as late."""
    latest = max((f.injected_at for f in faults if f.injected_at), default=time.time())
    while time.time() < latest + settle_s:
        try:
            if evidence.pending_alerts(stack.warehouse_url) == 0:
                return
        except Exception:  # the warehouse answering slowly after its restart
            pass
        time.sleep(5)


# --- judging ----------------------------------------------------------------------------


def _judge(stack: FaultStack, fault: Fault, mails: list[Mail], recovered: bool) -> None:
    """The alert checks: a recovered fault raises none; one whose retries ran out raises
    an infrastructure alert naming its component, in time; never a data alert."""
    related = [
        m
        for m in mails
        if m.received >= fault.injected_at - 1
        and m.about(fault.runs)
        and (not fault.task_id or fault.task_id in m.text)
    ]
    subjects = Counter(m.subject for m in related)
    fault.mail_duplicates += sum(n - 1 for n in subjects.values())
    data = [m for m in related if m.rule in evidence.DATA_RULES]
    if data:
        fault.fail(f"a data alert for an infrastructure fault: {data[0].subject}")
    named = [m for m in related if m.rule == INFRA_RULE and fault.component in m.components]
    if recovered:
        fault.alert = "none" if not related else ", ".join(sorted({m.rule for m in related}))
        if related:
            fault.fail(f"a retry recovered, yet it alerted: {related[0].subject}")
        return
    if named:
        fault.alert = f"{INFRA_RULE} ({fault.component})"
        fault.delay_s = min(m.received for m in named) - fault.injected_at
    else:
        fault.alert = ", ".join(sorted({m.rule or "?" for m in related})) or "none"
        fault.fail(
            f"no {INFRA_RULE} alert naming {fault.component} arrived (received: {fault.alert})"
        )
    if fault.delay_s is None or fault.delay_s > LATE_S:
        fault.late = 1
        if fault.delay_s is not None:
            fault.fail(f"its alert arrived {fault.delay_s:.0f} s after the injection")


def _target(stack: FaultStack, fault: Fault) -> tuple[str, int]:
    state, tries = evidence.task_tries(
        stack.airflow_db_url, fault.dag_id, fault.runs[0], fault.task_id
    )
    fault.outcome = f"{fault.task_id} {state}, {tries} tr{'y' if tries == 1 else 'ies'}"
    return state, tries


def judge(stack: FaultStack, faults: list[Fault]) -> None:
    mails = evidence.mails(stack.paths.mail)
    by_number = {f.number: f for f in faults}
    url = stack.warehouse_url
    for fault in faults:
        if fault.injection_error:
            fault.fail(f"the injection itself failed: {fault.injection_error}")
        if not fault.injected_at:
            fault.fail(f"never injected: {fault.dag_id}.{fault.task_id} was not seen running")
            fault.outcome = "not injected"
            continue
        if fault.number == 4:
            _judge_notice(stack, fault, mails)
            continue
        if fault.number == 3:
            _judge_mail_outage(stack, fault, mails)
            continue
        state, tries = _target(stack, fault)
        if fault.number in (1, 6) and tries < 2 and state == "success":
            fault.fail("the outage missed the task: it succeeded at its first try")
        _judge(stack, fault, mails, recovered=state == "success")
    by_number[6].rows = [evidence.report_rows(url, NIGHT_1)]
    for fault in faults:
        for rows in fault.rows:
            if rows.lost:
                fault.fail(f"{rows.lost} of {rows.expected} rows of {rows.table} lost")
            if rows.duplicates:
                fault.fail(f"{rows.duplicates} duplicate rows in {rows.table}")
        if fault.mail_duplicates:
            fault.fail(f"{fault.mail_duplicates} duplicate mail(s)")


def _judge_notice(stack: FaultStack, fault: Fault, mails: list[Mail]) -> None:
    """Fault 4: the run failed with the warehouse down; its notice went out over SMTP at
    once, then was queued (and not sent again) once the warehouse was back."""
    if not fault.task_id:
        fault.fail("the run with the warehouse down did not fail")
    fault.outcome = f"{fault.task_id or 'nothing'} failed; again: " + (
        "success" if _run_state(stack, fault.dag_id, fault.runs[1]) == "success" else "failed"
    )
    fault.runs = fault.runs[:1]
    _judge(stack, fault, mails, recovered=False)
    queued = evidence.query(
        stack.warehouse_url,
        "SELECT status FROM monitoring.alerts WHERE details->>'run_id' = %s",
        (fault.runs[0],),
    )
    if not queued:
        fault.fail("its notice was not queued in the outbox once the warehouse was back")
    elif any(status != "sent" for (status,) in queued):
        fault.fail(f"its queued notice is {queued[0][0]}, not marked sent")
    fault.rows = evidence.batch_rows(stack.warehouse_url, "outcomes", NIGHT_2)


def _judge_mail_outage(stack: FaultStack, fault: Fault, mails: list[Mail]) -> None:
    """Fault 3: once the sink was back, the weekly report arrived once, and the outbox
    emptied."""
    state, _ = _target(stack, fault)
    weekly = [m for m in mails if m.rule == "weekly_report" and m.received >= fault.injected_at]
    fault.mail_duplicates += max(len(weekly) - 1, 0)
    pending = evidence.pending_alerts(stack.warehouse_url)
    fault.rows = [Rows("weekly report mail", 1, min(len(weekly), 1), 0)]
    fault.rows.append(Rows("outbox (sent)", pending, 0, 0))
    if weekly and weekly[0].received - fault.injected_at > LATE_S:
        fault.fail(f"the weekly report arrived {weekly[0].received - fault.injected_at:.0f} s late")
        fault.late += 1
    _judge(stack, fault, mails, recovered=state == "success")
    if weekly:  # the delay that matters here: the report's, through the outage
        fault.delay_s = weekly[0].received - fault.injected_at


def _run_state(stack: FaultStack, dag_id: str, run_id: str) -> str:
    found = evidence.query(
        stack.airflow_db_url,
        "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
        (dag_id, run_id),
    )
    return str(found[0][0]) if found else "missing"


# --- the whole run ------------------------------------------------------------------------


def _seed_history(stack: FaultStack) -> int:
    from nightscore_dev.seed import seed_days

    return seed_days(settings_of(stack), HISTORY_FIRST, NIGHT_1 - timedelta(days=1))


def _unpause_all(client: demo.AirflowClient) -> list[str]:
    found = client.request("GET", "/api/v2/dags", params={"limit": 100}) or {}
    dag_ids = [d["dag_id"] for d in found.get("dags", [])]
    for dag_id in dag_ids:
        client.unpause(dag_id)
    return dag_ids


def run(root: Path, settle_s: float = LATE_S) -> tuple[list[Fault], float]:
    started = time.monotonic()
    faults = [
        Fault(1, "warehouse", "Postgres restarted during the batch load"),
        Fault(2, "mlflow", "MLflow server killed during plan_scoring, started again"),
        Fault(3, "smtp", "mail sink down for a whole monitoring run, then back"),
        Fault(4, "warehouse", "warehouse down when a task fails"),
        Fault(5, "scheduler", "scheduler SIGKILLed mid-run, restarted"),
        Fault(6, "store", "reports store read-only while drift reports are written"),
    ]
    print("1. Starting the stack", flush=True)
    stack = up(root)
    try:
        client = demo.AirflowClient(stack.api_url, ADMIN_USER, stack.password)
        deadline = time.monotonic() + TIMEOUT_S
        print("2. Seeding the history, parsing the DAGs, training the first champion", flush=True)
        seeder = threading.Thread(target=_seed_history, args=(stack,), daemon=True)
        seeder.start()
        demo.wait_for_dags(client, stack.paths)
        seeder.join()
        dags = _unpause_all(client)
        print(f"  unpaused: {', '.join(sorted(dags))}", flush=True)
        conf = {"cutoff": NIGHT_1.isoformat(), "reason": "fault suite: the first champion"}
        trained = demo.trigger(client, "retrain", f"cutoff {NIGHT_1}", conf)
        wait_for_runs(client, [trained], deadline)
        if trained.state != "success":
            raise demo.DemoError("the first champion could not be trained")
        driver = Driver(stack, client, deadline)
        by_number = {f.number: f for f in faults}
        print("3. Night 1: faults 1 (warehouse) and 2 (mlflow)", flush=True)
        driver.night_1_evening(by_number[1], by_number[2])
        print("4. Morning 1: fault 6 (store read-only)", flush=True)
        driver.night_1_morning(by_number[6])
        print("5. Night 2: fault 5 (scheduler killed)", flush=True)
        driver.night_2_evening(by_number[5])
        print("6. Morning 2: faults 4 (warehouse down at a failure) and 3 (smtp)", flush=True)
        driver.night_2_morning(by_number[4], by_number[3])
        print("7. Waiting for the outbox to empty", flush=True)
        _settle(stack, faults, settle_s)
        judge(stack, faults)
        client.close()
    finally:
        stack.down()
    return faults, time.monotonic() - started


def table(faults: list[Fault]) -> str:
    lines = [
        f"{'#':<2} {'component':<10} {'outcome':<46} {'rows lost':>9} {'dups':>4} "
        f"{'alert':<38} {'delay':>6}  ok",
    ]
    for f in faults:
        delay = "-" if f.delay_s is None else f"{f.delay_s:.0f} s"
        lines.append(
            f"{f.number:<2} {f.component:<10} {f.outcome[:46]:<46} {f.lost:>9} "
            f"{f.duplicates:>4} {f.alert[:38]:<38} {delay:>6}  {'yes' if not f.problems else 'NO'}"
        )
    return "\n".join(lines)


def summary(faults: list[Fault]) -> dict[str, int]:
    return {
        "faults": len(faults),
        "survived": sum(1 for f in faults if not f.problems),
        "rows_lost": sum(f.lost for f in faults),
        "duplicates": sum(f.duplicates for f in faults),
        "alerts_late": sum(f.late for f in faults),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    from nightscore_dev.faults.stack import can_run

    parser = argparse.ArgumentParser(prog="python -m nightscore_dev.faults")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=LATE_S,
        help="after the last injection, wait at most this long for the outbox to empty "
        "(default: 900, the lateness bound; what is still unsent then counts as late)",
    )
    args = parser.parse_args(argv)
    reason = can_run()
    if reason:
        print(f"the fault suite {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="nightscore-faults-") as root:
        faults, seconds = run(Path(root), args.settle_s)
    print(table(faults))
    for fault in faults:
        for problem in fault.problems:
            print(f"  FAILED: {problem}", flush=True)
    print(f"wall time: {seconds:.0f} s", flush=True)
    print(json.dumps(summary(faults)), flush=True)
    return 1 if any(f.problems for f in faults) else 0
