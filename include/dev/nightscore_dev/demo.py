"""`nightscore-dev demo`: replay a window of days through the real Airflow scheduler.

It brings the local stack up (`nightscore_dev.stack`), loads the history before the
window, then, for each service date in order, lands the day's batches (`replay_source`)
and lets `nightly_scoring` and `ingest_outcomes` pick them up. It ends with what the
warehouse holds. The default window, 2013-02-07 to 2013-02-13, has the 8-9 February
blizzard and, on 2013-02-12, a weather reading of 1048 mph that validation rejects:
a failed run that day is expected and reported, not a failure of the demo.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from nightscore import config
from nightscore.calendar import date_range, days_before
from nightscore.contract import BATCH_KINDS
from nightscore.landing import REPLAY_FIRST
from nightscore_dev import stack as local

DEMO_DAGS = (
    "replay_source",
    "load_history",
    "retrain",
    "nightly_scoring",
    "ingest_outcomes",
    "monitoring",
    "alert_outbox",  # the 10-minute sweep of the alert outbox
)
EVENING_DAGS = ("replay_source", "nightly_scoring")
MORNING_DAGS = ("ingest_outcomes", "monitoring")
DAILY_DAGS = (*EVENING_DAGS, *MORNING_DAGS)
DEFAULT_START = date(2013, 2, 7)
DEFAULT_END = date(2013, 2, 13)
# History before the window: as much of 2013 as there is, up to 60 days. The first
# champion trains on it, and the features look back 28 days.
HISTORY_DAYS = 60
FINISHED = ("success", "failed")
PARSE_TIMEOUT_S = 120.0
DEFAULT_TIMEOUT_S = 45 * 60
POLL_S = 2.0
HEARTBEAT_S = 60.0


class DemoError(RuntimeError):
    """A failure of the demo itself, with a message for the person running it."""


# --- the Airflow REST API ---------------------------------------------------------------


class AirflowClient:
    """Just enough of Airflow's REST API v2, authenticated as the SimpleAuthManager admin."""

    def __init__(self, base_url: str, username: str, password: str, timeout_s: float = 30) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)
        self._credentials = {"username": username, "password": password}
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def _login(self) -> str:
        try:
            response = self._http.post("/auth/token", json=self._credentials)
        except httpx.TransportError as exc:
            raise DemoError(f"cannot reach Airflow at {self._http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise DemoError(
                f"cannot log in to Airflow as {self._credentials['username']}: "
                f"{response.status_code} {response.text[:200]}"
            )
        return str(response.json()["access_token"])

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A JSON request; None for 404. Logs in again once when the token expired."""
        for attempt in (1, 2):
            self._token = self._token or self._login()
            headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise DemoError(
                    f"the Airflow API server at {self._http.base_url} did not answer ({exc}); "
                    "is it still running? Its log is logs/api-server.log in the state folder"
                ) from exc
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            if response.status_code == 404:
                return None
            if response.status_code >= 400:
                raise DemoError(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return response.json() if response.content else {}
        return None

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        return self.request("GET", f"/api/v2/dags/{dag_id}")

    def import_errors(self) -> list[dict[str, Any]]:
        found = self.request("GET", "/api/v2/importErrors", params={"limit": 100}) or {}
        return list(found.get("import_errors", []))

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        # No logical date: our DAGs read the service date from conf, and several manual
        # runs of one DAG may exist side by side.
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf, "note": "nightscore demo"}
        self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        found = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        if found is None:
            raise DemoError(f"the run {run_id} of {dag_id} disappeared")
        return dict(found)

    def runs(self, dag_id: str, states: tuple[str, ...]) -> list[dict[str, Any]]:
        found = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"state": list(states), "limit": 100}
        )
        return list((found or {}).get("dag_runs", []))

    def task_instances(self, dag_id: str, run_id: str, state: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        found = self.request("GET", path, params={"state": state}) or {}
        return list(found.get("task_instances", []))

    def task_error(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str | None:
        """The exception a task attempt ended with, from its log."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        found = self.request("GET", path) or {}
        for message in reversed(found.get("content", [])):
            details = message.get("error_detail") if isinstance(message, dict) else None
            if details:
                return _error_text(details[0])
        return None


def _error_text(detail: dict[str, Any]) -> str:
    """One line: the message (with the exception type unless it is a deliberate failure)."""
    value = " ".join(str(detail.get("exc_value", "")).split())
    kind = str(detail.get("exc_type", ""))
    text = value if kind == "AirflowFailException" else f"{kind}: {value}"
    return text if len(text) <= 240 else text[:237] + "..."


# --- runs -------------------------------------------------------------------------------


@dataclass
class Run:
    """One DAG run the demo triggered and follows."""

    dag_id: str
    label: str  # what the run is about, e.g. the service date
    run_id: str
    conf: dict[str, Any]
    triggered_at: float = field(default_factory=time.monotonic)
    state: str = "queued"
    seconds: float | None = None
    # The failed tasks, each with the error it ended with (None when the log has none).
    failed_tasks: dict[str, str | None] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def _run_id(label: str) -> str:
    # Run ids may not hold "..", spaces or slashes; the stamp keeps re-runs apart.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"demo__{re.sub(r'[^A-Za-z0-9_-]+', '_', label)}__{stamp}"


def trigger(client: AirflowClient, dag_id: str, label: str, conf: dict[str, Any]) -> Run:
    run = Run(dag_id, label, _run_id(label), conf)
    client.trigger(dag_id, run.run_id, conf)
    return run


def refresh(client: AirflowClient, run: Run) -> None:
    """Read the run's state; on finishing, its duration and failed tasks."""
    found = client.run(run.dag_id, run.run_id)
    run.state = str(found["state"])
    if run.finished:
        duration = found.get("duration")
        run.seconds = (
            float(duration) if duration is not None else time.monotonic() - run.triggered_at
        )
        if run.state == "failed":
            for ti in client.task_instances(run.dag_id, run.run_id, "failed"):
                error = client.task_error(run.dag_id, run.run_id, ti["task_id"], ti["try_number"])
                run.failed_tasks[ti["task_id"]] = error


def describe(run: Run) -> str:
    text = f"{run.dag_id:<16} {run.label} {run.state:<7}"
    if run.seconds is not None:
        text += f" {run.seconds:6.1f} s"
    for task_id, error in run.failed_tasks.items():
        text += f"\n          {task_id}: {error or 'failed (see its log)'}"
    return text


class Progress:
    """Prints one line per finished run, and a heartbeat when nothing finishes for a while."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.last_output = time.monotonic()

    def finished(self, run: Run) -> None:
        self.done += 1
        width = len(str(self.total))
        print(f"  [{self.done:>{width}}/{self.total}] {describe(run)}", flush=True)
        self.last_output = time.monotonic()

    def heartbeat(self, client: AirflowClient, waiting: list[Run]) -> None:
        if time.monotonic() - self.last_output < HEARTBEAT_S:
            return
        parts = []
        for run in waiting:
            tasks = [
                ti["task_id"] for ti in client.task_instances(run.dag_id, run.run_id, "running")
            ]
            elapsed = time.monotonic() - run.triggered_at
            doing = f" at {', '.join(tasks)}" if tasks else f" {run.state}"
            parts.append(f"{run.dag_id} {run.label}{doing} ({elapsed:.0f} s)")
        print("    still waiting: " + "; ".join(parts), flush=True)
        self.last_output = time.monotonic()


def wait_for_runs(
    client: AirflowClient, runs: list[Run], progress: Progress, deadline: float
) -> None:
    """Poll the runs until all finished; print each as it finishes."""
    waiting = list(runs)
    while waiting:
        if time.monotonic() > deadline:
            still = ", ".join(f"{r.dag_id} {r.label} ({r.state})" for r in waiting)
            raise DemoError(
                f"timed out waiting for: {still}. They keep running in Airflow; look at them "
                "in the UI, or raise NIGHTSCORE_DEMO_TIMEOUT_S."
            )
        for run in list(waiting):
            refresh(client, run)
            if run.finished:
                waiting.remove(run)
                progress.finished(run)
        if waiting:
            progress.heartbeat(client, waiting)
            time.sleep(POLL_S)


# --- the steps of the demo --------------------------------------------------------------


def window(start: date | None, end: date | None) -> tuple[date, date]:
    """The service dates to replay: arguments, else NIGHTSCORE_DEMO_START/END, else Feb 7-13."""
    start = start or _env_date("NIGHTSCORE_DEMO_START") or DEFAULT_START
    end = end or _env_date("NIGHTSCORE_DEMO_END") or max(start, DEFAULT_END)
    if end < start:
        raise DemoError(f"the window ends ({end}) before it starts ({start})")
    return start, end


def _env_date(name: str) -> date | None:
    value = os.environ.get(name, "").strip()
    return date.fromisoformat(value) if value else None


def wait_for_dags(
    client: AirflowClient,
    paths: local.StatePaths,
    dag_ids: tuple[str, ...] = DEMO_DAGS,
    timeout_s: float = PARSE_TIMEOUT_S,
) -> float:
    """Wait until the DAG processor has parsed our DAGs; return the seconds waited."""
    started = time.monotonic()
    seen: set[str] = set()
    reported_errors: set[str] = set()
    while True:
        seen |= {dag_id for dag_id in dag_ids if dag_id not in seen and client.dag(dag_id)}
        missing = [dag_id for dag_id in dag_ids if dag_id not in seen]
        if not missing:
            return time.monotonic() - started
        errors = client.import_errors()
        for error in errors:
            if error["filename"] not in reported_errors:
                reported_errors.add(error["filename"])
                first = error["stack_trace"].strip().splitlines()[-1:]
                print(f"    import error in {error['filename']}: {' '.join(first)}", flush=True)
        if time.monotonic() - started > timeout_s:
            raise DemoError(_parse_timeout_message(missing, errors, paths, timeout_s))
        time.sleep(POLL_S)


def _parse_timeout_message(
    missing: list[str], errors: list[dict[str, Any]], paths: local.StatePaths, timeout_s: float
) -> str:
    lines = [
        f"these DAGs did not appear within {timeout_s:.0f} s: {', '.join(missing)}.",
        f"DAG processor log: {paths.log('dag-processor')} (per file: {paths.logs / 'dag_processor'})",
    ]
    for error in errors:
        lines.append(f"import error in {error['filename']}:\n{error['stack_trace'].strip()}")
    if not errors:
        lines.append(
            f"no import errors reported; is there a DAG file for each in {config.PROJECT_ROOT / 'dags'}?"
        )
    return "\n".join(lines)


def bootstrap(client: AirflowClient, first_day: date, deadline: float) -> Run:
    """Load the days before the window, so features have history to look back on."""
    start, end = days_before(first_day, HISTORY_DAYS)
    start = max(start, REPLAY_FIRST)
    label = f"{start} to {end}"
    conf = {"start_date": start.isoformat(), "end_date": end.isoformat(), "replay": True}
    run = trigger(client, "load_history", label, conf)
    wait_for_runs(client, [run], Progress(1), deadline)
    return run


def train_champion(client: AirflowClient, cutoff: date, deadline: float) -> Run:
    """Train on the history through `retrain`; the gate makes the first model champion."""
    conf = {"cutoff": cutoff.isoformat(), "reason": "demo: the first champion"}
    run = trigger(client, "retrain", f"cutoff {cutoff}", conf)
    wait_for_runs(client, [run], Progress(1), deadline)
    return run


def replay(
    client: AirflowClient,
    start: date,
    end: date,
    deadline: float,
    retrains: list[Run] | None = None,
) -> list[Run]:
    """Replay each service date in order, as the nights and mornings would follow each other.

    The evening of S: `replay_source` lands S's batches and `nightly_scoring` (its sensor
    waits for the landing) loads the schedule. The morning after: `ingest_outcomes` for S,
    started once S's flights are loaded, since validation checks that every outcome is of
    a scheduled flight, and `monitoring` for S, whose sensor waits for those outcomes.
    They run alongside the next evening, whose scoring reads outcomes up to S-1 only. A
    date starts once the one before it is done.

    A retrain that a morning's monitoring asked for runs that day, hours before the
    evening's scoring: the replay waits for it before the next evening, so the model it
    promotes scores the same nights however fast the machine is. Those runs are added
    to `retrains`.
    """
    days = list(date_range(start, end))
    progress = Progress(len(days) * len(DAILY_DAGS))
    runs: list[Run] = []
    morning: list[Run] = []
    for day in days:
        waited = wait_for_triggered_retrains(client, deadline, before=day.isoformat())
        if retrains is not None:
            retrains += waited
        conf = {"service_date": day.isoformat()}
        evening = [trigger(client, dag_id, day.isoformat(), conf) for dag_id in EVENING_DAGS]
        wait_for_runs(client, evening + morning, progress, deadline)
        morning = [trigger(client, dag_id, day.isoformat(), conf) for dag_id in MORNING_DAGS]
        runs += evening + morning
    wait_for_runs(client, morning, progress, deadline)
    return runs


def wait_for_triggered_retrains(
    client: AirflowClient, deadline: float, before: str | None = None
) -> list[Run]:
    """Wait for the retrains that monitoring triggered (its rules asked for them)."""
    found = client.runs("retrain", ("queued", "running"))
    runs = [
        Run("retrain", f"cutoff {r.get('conf', {}).get('cutoff', '?')}", r["dag_run_id"], {})
        for r in found
        if str(r["dag_run_id"]).startswith("monitoring__")
    ]
    if runs:
        if before:
            print(f"    monitoring asked for a retrain: it finishes before the evening of {before}")
        wait_for_runs(client, runs, Progress(len(runs)), deadline)
    return runs


# --- the summary ------------------------------------------------------------------------

_LATEST_BATCHES = """
    SELECT DISTINCT ON (kind, service_date) kind, service_date, status, error
    FROM ops.batches
    WHERE service_date BETWEEN %(start)s AND %(end)s
    ORDER BY kind, service_date, updated_at DESC
"""
_ROWS_PER_DAY = """
    SELECT service_date, count(*) FROM core.{table}
    WHERE service_date BETWEEN %(start)s AND %(end)s
    GROUP BY service_date
"""
_PENDING_ALERTS = "SELECT count(*) FROM monitoring.alerts WHERE status = 'pending'"
_ALERTS = """
    SELECT rule, status, count(*) FROM monitoring.alerts
    WHERE service_date BETWEEN %(start)s AND %(end)s OR service_date IS NULL
    GROUP BY rule, status ORDER BY rule, status
"""
_MONITORING = """
    SELECT d.service_date, d.model_version, d.share_drifted, d.mean_score, p.roc_auc,
           (SELECT string_agg(c.rule, ', ' ORDER BY c.rule) FROM monitoring.rule_checks c
            WHERE c.service_date = d.service_date AND c.model_name = d.model_name
              AND c.breached)
    FROM monitoring.drift_runs d
    LEFT JOIN monitoring.performance p
      ON p.service_date = d.service_date AND p.model_name = d.model_name
     AND p.model_version = d.model_version AND p.segment_type = 'all'
    WHERE d.service_date BETWEEN %(start)s AND %(end)s
    ORDER BY d.service_date, d.model_version
"""
_RETRAINS = """
    SELECT service_date, reason FROM monitoring.retrain_triggers
    WHERE service_date BETWEEN %(start)s AND %(end)s ORDER BY service_date
"""
_PREDICTIONS_PER_DAY = """
    SELECT service_date, count(*) FROM scoring.predictions
    WHERE service_date BETWEEN %(start)s AND %(end)s
    GROUP BY service_date
"""
_CHAMPION = """
    SELECT model_name, version, champion_from, roc_auc_at_promotion
    FROM analytics.champion_history WHERE champion_until IS NULL
"""
_RISKIEST = """
    SELECT service_date, carrier, flight, origin, dest, to_char(sched_departure_local, 'HH24:MI'),
           risk
    FROM analytics.predictions
    WHERE service_date = (SELECT max(service_date) FROM scoring.predictions
                          WHERE service_date BETWEEN %(start)s AND %(end)s)
    ORDER BY risk DESC LIMIT 5
"""


def _query(connection: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]] | None:
    """Rows, or None when the table is not there (a summary must not fail on that)."""
    import psycopg2

    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    except psycopg2.Error:
        connection.rollback()
        return None


def summary(
    warehouse_url: str,
    start: date,
    end: date,
    *,
    ui_url: str | None = None,
    password: str | None = None,
    viewer_password: str | None = None,
    logs: str | None = None,
    mlflow_url: str | None = None,
    mlflow_login: str | None = None,
    mail: str | None = None,
    reports: str | None = None,
    evidently: str | None = None,
) -> str:
    """What the warehouse holds for the window, and where to look next."""
    import psycopg2

    params = {"start": start, "end": end}
    with psycopg2.connect(config.libpq_url(warehouse_url), connect_timeout=10) as connection:
        batches = _query(connection, _LATEST_BATCHES, params)
        counts = {
            table: _query(connection, _ROWS_PER_DAY.format(table=table), params)
            for table in ("flights", "weather", "outcomes")
        }
        alerts = _query(connection, _PENDING_ALERTS, {})
        predictions = _query(connection, _PREDICTIONS_PER_DAY, params)
        champion = _query(connection, _CHAMPION, {})
        riskiest = _query(connection, _RISKIEST, params)
        monitored = _query(connection, _MONITORING, params)
        alert_counts = _query(connection, _ALERTS, params)
        retrains = _query(connection, _RETRAINS, params)
    connection.close()

    status = {(kind, day): (state, error) for kind, day, state, error in batches or []}
    rows = {table: dict(found or []) for table, found in counts.items()}
    rows["predictions"] = dict(predictions or [])
    lines = [
        f"Warehouse, service dates {start} to {end}:",
        f"  {'service date':<12}  {'schedule':<9}  {'outcomes':<9}  "
        f"{'flights':>7}  {'weather':>7}  {'outcomes':>8}  {'scored':>6}",
    ]
    for day in date_range(start, end):
        schedule = status.get(("schedule", day), ("-", None))[0]
        outcomes = status.get(("outcomes", day), ("-", None))[0]
        lines.append(
            f"  {day.isoformat():<12}  {schedule:<9}  {outcomes:<9}  "
            f"{rows['flights'].get(day, 0):>7}  {rows['weather'].get(day, 0):>7}  "
            f"{rows['outcomes'].get(day, 0):>8}  {rows['predictions'].get(day, 0):>6}"
        )
    rejected = [
        (day, kind, status[(kind, day)][1])
        for day in date_range(start, end)
        for kind in BATCH_KINDS
        if status.get((kind, day), ("-", None))[0] == "rejected"
    ]
    for day, kind, error in rejected:
        reason = [
            line.strip() for line in (error or "no reason recorded").splitlines() if line.strip()
        ]
        lines.append(f"  rejected: {kind} batch of {day}: {reason[0]}")
        # The first line is the verdict; the next names the first failed expectation.
        lines += [f"            {detail}" for detail in reason[1:2]]
    if batches is None:
        lines.append("  (ops.batches is missing: has `nightscore db upgrade` run?)")
    missing = [f"core.{table}" for table, found in counts.items() if found is None]
    if missing:
        lines.append(f"  (missing: {', '.join(missing)})")
    for name, version, since, roc_auc in champion or []:
        lines.append(
            f"Champion: {name} v{version} (since {since:%Y-%m-%d %H:%M}, ROC AUC "
            f"{roc_auc:.3f} on its gate window)"
        )
    if riskiest:
        lines.append(f"Riskiest flights of {riskiest[0][0]} (analytics.predictions):")
        for _, carrier, flight, origin, dest, departs, risk in riskiest:
            lines.append(f"  {carrier} {flight:<5} {origin}-{dest}  {departs}  risk {risk:.2f}")
    if monitored:
        lines.append("Monitoring (monitoring DAG; breached rules of monitoring.rule_checks):")
        for day, version, share, mean_score, roc_auc, breached in monitored:
            auc = "n/a" if roc_auc is None else f"{roc_auc:.3f}"
            lines.append(
                f"  {day}  v{version}  ROC AUC {auc}  drifted {share:.0%}  mean risk "
                f"{mean_score:.3f}  breached: {breached or '-'}"
            )
    for day, reason in retrains or []:
        lines.append(f"  retrain triggered after {day}: {reason}")
    if alert_counts:
        tally = ", ".join(f"{rule} {status} {n}" for rule, status, n in alert_counts)
        lines.append(f"Alerts (monitoring.alerts): {tally}")
    pending = "n/a (monitoring.alerts is missing)" if alerts is None else str(alerts[0][0])
    lines.append(f"Pending alerts: {pending}")
    if mail:
        received = sorted(Path(mail).glob("*.eml")) if Path(mail).is_dir() else []
        lines.append(f"Mail received by the local SMTP sink: {len(received)} message(s) in {mail}")
        lines += [f"  {eml.name}" for eml in received[-12:]]
    if reports:
        lines.append(f"Reports (Evidently drift, weekly): {reports}")
    if evidently:
        lines.append(f"Evidently UI: evidently ui --workspace {evidently}  (drift trend)")
    if ui_url:
        login = f"admin / {password}" if password else "admin"
        viewer = f"; read-only: viewer / {viewer_password}" if viewer_password else ""
        lines.append(f"Airflow UI: {ui_url}  (login: {login}{viewer})")
    if mlflow_url:
        login = f"; the browser asks for a login: {mlflow_login}" if mlflow_login else ""
        lines.append(f"MLflow UI:  {mlflow_url}  (runs and the model registry{login})")
    if logs:
        lines.append(f"Logs: {logs}  (task logs under tasks/)")
    lines.append("Stop everything: make stop")
    return "\n".join(lines)


# --- entry points -----------------------------------------------------------------------


def _timeout_s() -> float:
    return float(os.environ.get("NIGHTSCORE_DEMO_TIMEOUT_S", "").strip() or DEFAULT_TIMEOUT_S)


def _header(start: date, end: date, paths: local.StatePaths) -> None:
    days = (end - start).days + 1
    dates = f"{days} service dates, {start} to {end}" if days > 1 else f"service date {start}"
    print(f"nightscore demo: {dates}, through the Airflow scheduler")
    print(f"  state folder: {paths.root}")
    print(
        f"  mail (alerts, the weekly report) is saved as .eml + .html in: {paths.mail}", flush=True
    )


def run_demo(
    start: date | None,
    end: date | None,
    *,
    paths: local.StatePaths | None = None,
    api_port: int | None = None,
    executor: str = "local",
) -> int:
    """Bring the stack up, replay the window, print the summary. Returns an exit code."""
    config.load_settings()  # loads .env, so NIGHTSCORE_* settings reach the components
    started = time.monotonic()
    try:
        first, last = window(start, end)
        paths = paths or local.state_paths()
        _header(first, last, paths)
        print("\n1. Starting the platform", flush=True)
        stack = local.up(paths, api_port=api_port or local.api_port_from_env(), executor=executor)
        deadline = time.monotonic() + _timeout_s()
        client = AirflowClient(stack.api_url, local.ADMIN_USER, stack.password)
        try:
            _drive(client, stack, first, last, deadline)
        finally:
            client.close()
        print("\n6. Summary", flush=True)
        print(_safe_summary(stack, first, last))
        if executor == "celery":
            print(local.task_hosts(stack.env))
        print(f"Done in {_minutes(time.monotonic() - started)}.")
    except (DemoError, RuntimeError) as exc:
        print(f"\nThe demo stopped: {exc}", flush=True)
        _still_running(paths)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.")
        _still_running(paths)
        return 130
    return 0


def _safe_summary(stack: local.Stack, first: date, last: date) -> str:
    """The summary; a warehouse that cannot be read must not hide where the UI is."""
    import psycopg2

    try:
        return summary(
            stack.warehouse_url,
            first,
            last,
            ui_url=stack.api_url,
            password=stack.password,
            viewer_password=local.viewer_password(stack.paths),
            logs=str(stack.paths.logs),
            mlflow_url=stack.mlflow_url,
            mlflow_login=_mlflow_login(stack),
            mail=str(stack.paths.mail),
            reports=stack.env.get("NIGHTSCORE_REPORTS_DIR") or str(stack.paths.root / "reports"),
            evidently=stack.env.get("NIGHTSCORE_EVIDENTLY_WORKSPACE")
            or str(stack.paths.root / "evidently"),
        )
    except psycopg2.Error as exc:
        return (
            f"Cannot read the warehouse ({local.redacted(stack.warehouse_url)}): {exc}\n"
            f"Airflow UI: {stack.api_url}  (login: admin / {stack.password})\n"
            f"MLflow UI:  {stack.mlflow_url}  (login: {_mlflow_login(stack)})\n"
            f"Logs: {stack.paths.logs}\nStop everything: make stop"
        )


def _mlflow_login(stack: local.Stack) -> str:
    """The MLflow server's generated login, as the demo prints it."""
    auth = local.mlflow_auth(stack.paths)
    return f"{auth.username} / {auth.password}"


def _minutes(seconds: float) -> str:
    return (
        f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds >= 60 else f"{seconds:.0f} s"
    )


def _still_running(paths: local.StatePaths | None) -> None:
    if paths and (local.running_components(paths) or local.embedded_postgres_port(paths)):
        print("The services it started keep running; `make stop` stops them.")


def _drive(
    client: AirflowClient, stack: local.Stack, first: date, last: date, deadline: float
) -> None:
    print("\n2. Waiting for the DAGs to be parsed", flush=True)
    waited = wait_for_dags(client, stack.paths)
    for dag_id in DEMO_DAGS:
        client.unpause(dag_id)
    print(f"  {', '.join(DEMO_DAGS)}: parsed and unpaused ({waited:.1f} s)", flush=True)

    print("\n3. Loading the history before the window", flush=True)
    bootstrap(client, first, deadline)

    print("\n4. Training the first champion on that history (retrain DAG)", flush=True)
    run = train_champion(client, first, deadline)
    if run.state != "success":
        raise DemoError("the retrain run failed, so nothing can be scored; see the Airflow UI")

    print("\n5. Replaying the window, one service date after the other", flush=True)
    retrains: list[Run] = []
    runs = replay(client, first, last, deadline, retrains)
    retrains += wait_for_triggered_retrains(client, deadline)
    if retrains:
        print(f"  monitoring triggered {len(retrains)} retrain(s); see the summary")
    failed = [run for run in runs if run.state == "failed"]
    if failed:
        print(
            f"  {len(failed)} run(s) failed; a rejected batch (2013-02-12 in the default window) "
            "fails its run on purpose. The Airflow UI shows why."
        )
