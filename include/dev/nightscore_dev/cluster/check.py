"""`make test-distributed`: replay service dates through a cluster in its production shape
(`nightscore_dev.cluster.cluster`) and check what a team deploying it relies on.

    python -m nightscore_dev.cluster [--start 2013-02-11] [--end 2013-02-12]

It loads the history and trains the first champion, then replays the window through the
real scheduler on two Celery workers with NIGHTSCORE_SCORING_PARTITIONS=4. While the
first night is scored, the worker host running a `score_partition` is killed (SIGKILL to
every process on it). Then it checks that
- tasks ran on both worker hosts (each task instance's hostname), and none failed but
  the deliberate rejection (2013-02-12's weather holds a 1048 mph reading);
- the killed partition was retried on the other worker and the night published once,
  with no duplicate prediction;
- the predictions equal those of the same nights re-scored with the LocalExecutor;
- every link the run stored or mailed, and the Airflow UI's links to MLflow, the Evidently
  UI and the reports, opens, logged in as an Airflow user, from a host that wrote none of
  them (`links_ok` counts a 200 with the expected content).
Its last line is JSON; it exits 1 when a check fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from nightscore import config
from nightscore_dev import demo
from nightscore_dev.cluster.cluster import Cluster, up
from nightscore_dev.stack.mlflow import mlflow_auth

START, END = date(2013, 2, 11), date(2013, 2, 12)
REJECTED = date(2013, 2, 12)
TIMEOUT_S = 40 * 60
_URL = re.compile(r"""https?://[^\s"'<>)\]]+""")


def _query(url: str, sql: str, params: Any = None) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(config.libpq_url(url))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


@dataclass
class Kill:
    """What the killer did: the host, and the task instance it interrupted."""

    host: str = ""
    address: str = ""
    run_id: str = ""
    map_index: int = -1
    try_number: int = 0
    at: float = 0.0


class Killer(threading.Thread):
    """Watches for a `score_partition` running on a worker, and kills that worker's host."""

    SQL = (
        "SELECT hostname, run_id, map_index, try_number FROM task_instance "
        "WHERE dag_id = 'nightly_scoring' AND task_id = 'score_partition' "
        "AND state = 'running' AND hostname = ANY(%s) LIMIT 1"
    )

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.kill = Kill()
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg2

        by_address = {host.address: name for name, host in self.cluster.workers.items()}
        # One connection for the whole watch: it polls ten times a second.
        connection = psycopg2.connect(config.libpq_url(self.cluster.airflow_db_url))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute(self.SQL, (list(by_address),))
                    found = cursor.fetchone()
                    if found:
                        self._kill(by_address[found[0]], *found)
                        return
                    time.sleep(0.1)
        finally:
            connection.close()

    def _kill(self, name: str, address: str, run_id: str, map_index: int, try_number: int):
        killed = self.cluster.workers[name].kill()
        self.kill = Kill(name, address, run_id, map_index, try_number, time.monotonic())
        print(
            f"  killed {name} ({address}: {killed} processes) while it ran "
            f"score_partition[{map_index}] of {run_id}",
            flush=True,
        )


def _task_instances(cluster: Cluster) -> list[tuple]:
    """(dag_id, task_id, run_id, map_index, try_number, state, hostname): every try."""
    columns = "dag_id, task_id, run_id, map_index, try_number, state, hostname"
    return _query(
        cluster.airflow_db_url,
        f"SELECT {columns} FROM task_instance UNION ALL "
        f"SELECT {columns} FROM task_instance_history",
    )


def _predictions(cluster: Cluster, days: list[date]) -> dict[tuple, tuple]:
    rows = _query(
        cluster.warehouse_url,
        "SELECT service_date, carrier, flight, origin, model_version, score, label "
        "FROM scoring.predictions WHERE service_date = ANY(%s)",
        (days,),
    )
    return {row[:4]: row[4:] for row in rows}


def _duplicates(cluster: Cluster, days: list[date]) -> int:
    (found,) = _query(
        cluster.warehouse_url,
        "SELECT count(*) - count(DISTINCT (service_date, carrier, flight, origin)) "
        "FROM scoring.predictions WHERE service_date = ANY(%s)",
        (days,),
    )
    return int(found[0])


def _published(cluster: Cluster, day: date) -> tuple[int, int, int]:
    """(succeeded scoring runs, predictions, scheduled flights) of a night."""
    (runs,) = _query(
        cluster.warehouse_url,
        "SELECT count(*) FROM scoring.runs WHERE service_date = %s AND status = 'succeeded'",
        (day,),
    )
    (scored,) = _query(
        cluster.warehouse_url,
        "SELECT count(*) FROM scoring.predictions WHERE service_date = %s",
        (day,),
    )
    (flights,) = _query(
        cluster.warehouse_url, "SELECT count(*) FROM core.flights WHERE service_date = %s", (day,)
    )
    return int(runs[0]), int(scored[0]), int(flights[0])


def _rescore_locally(cluster: Cluster, client: demo.AirflowClient, runs: list[demo.Run]) -> None:
    """Restart the scheduler with the LocalExecutor and re-run the scoring of `runs`."""
    cluster.restart_scheduler("LocalExecutor")
    for run in runs:
        client.request(
            "POST",
            "/api/v2/dags/nightly_scoring/clearTaskInstances",
            json={"dag_run_id": run.run_id, "dry_run": False, "reset_dag_runs": True,
                  "only_failed": False, "task_ids": ["plan_scoring", "score_partition",
                                                      "publish_predictions"]},
        )  # fmt: skip
        run.state = "queued"
    demo.wait_for_runs(client, runs, demo.Progress(len(runs)), time.monotonic() + 15 * 60)


def nav_links(client: demo.AirflowClient) -> list[str]:
    """The links the Airflow UI shows in its menus (the plugins' external views)."""
    plugins = client.request("GET", "/api/v2/plugins")["plugins"]
    return [view["href"] for p in plugins for view in p.get("external_views") or []]


def _expected(url: str, evidently_url: str = "") -> str:
    """What the page behind a link must show."""
    if evidently_url and url.startswith(evidently_url):
        return "evidently"
    if "/nightscore/files/data_docs/" in url:
        return "batch for"
    if "/nightscore/files/reports/drift/" in url:
        return "drift"  # Evidently 0.7's page never names itself
    if "/nightscore/files/reports/weekly/" in url:
        return "week"
    if "/nightscore/" in url:
        return "nightscore"
    if "/dags/" in url:
        return "airflow"
    return "mlflow"


def collect_links(cluster: Cluster) -> list[str]:
    """Every http(s) link the run stored (warehouse, XComs) or mailed."""
    found: set[str] = set()
    stored = [
        (cluster.warehouse_url, "SELECT data_docs_url FROM ops.batches"),
        (cluster.warehouse_url, "SELECT to_jsonb(r)::text FROM monitoring.reports r"),
        (cluster.warehouse_url, "SELECT details::text FROM monitoring.alerts"),
        (
            cluster.airflow_db_url,
            "SELECT value::text FROM xcom WHERE key IN ('mlflow_run_url', 'mlflow_model_url')",
        ),
    ]
    for url, sql in stored:
        for (text,) in _query(url, sql):
            found.update(_URL.findall(text or ""))
    for path in sorted(cluster.paths.mail.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        for part in message.walk():
            if part.get_content_maintype() == "text":
                found.update(_URL.findall(part.get_content()))
    return sorted(link.rstrip(".,;") for link in found)


def fetch_links(cluster: Cluster, links: list[str]) -> list[dict[str, Any]]:
    """Fetch the links from the client host, logged in as the Airflow admin."""
    assert cluster.client is not None
    auth = mlflow_auth(cluster.paths)
    job = {
        "airflow": cluster.api_url,
        "user": cluster.user,
        "password": cluster.password,
        "mlflow_login": [auth.username, auth.password],
        "links": [
            {"url": link, "expect": _expected(link, cluster.services.evidently_url)}
            for link in links
        ],
    }
    command = cluster.client.command([sys.executable, "-m", "nightscore_dev.cluster.fetch"])
    result = subprocess.run(
        command, input=json.dumps(job), capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"fetching links failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def run(root: Path, start: date = START, end: date = END) -> dict[str, Any]:
    started = time.monotonic()
    problems: list[str] = []
    cluster = up(root)
    try:
        client = demo.AirflowClient(cluster.api_url, cluster.user, cluster.password)
        deadline = time.monotonic() + TIMEOUT_S
        demo.wait_for_dags(client, cluster.paths)
        for dag_id in demo.DEMO_DAGS:
            client.unpause(dag_id)
        setup = [
            demo.bootstrap(client, start, deadline),
            demo.train_champion(client, start, deadline),
        ]
        killer = Killer(cluster)
        killer.start()
        runs = demo.replay(client, start, end, deadline)
        killer.stop.set()
        days = [d for d in (start, end) if d != REJECTED]
        report = _report(cluster, setup + runs, killer.kill, days, problems)

        celery = _predictions(cluster, days)
        scoring = [r for r in runs if r.dag_id == "nightly_scoring" and r.label in map(str, days)]
        _rescore_locally(cluster, client, scoring)
        local = _predictions(cluster, days)
        if not celery or celery != local:
            differ = sum(1 for k in celery.keys() | local.keys() if celery.get(k) != local.get(k))
            problems.append(
                f"predictions differ from the LocalExecutor's: {differ} of {len(celery)}"
            )
        links = sorted(set(collect_links(cluster)) | set(nav_links(client)))
        fetched = fetch_links(cluster, links)
        for result in fetched:
            if not result["ok"]:
                problems.append(f"link did not open: {result['url']} -> {result['status']}")
        report.update(
            links_total=len(fetched),
            links_ok=sum(1 for r in fetched if r["ok"]),
            seconds=round(time.monotonic() - started, 1),
        )
        client.close()
    finally:
        cluster.down()
    for problem in problems:
        print(f"  FAILED: {problem}", flush=True)
    report["problems"] = problems
    return report


def _report(
    cluster: Cluster, runs: list[demo.Run], kill: Kill, days: list[date], problems: list[str]
) -> dict[str, Any]:
    tries = _task_instances(cluster)
    workers = {host.address for host in cluster.workers.values()}
    used = {row[6] for row in tries if row[6] in workers}
    latest: dict[tuple, tuple] = {}
    for row in tries:
        key = row[:4]
        if key not in latest or row[4] > latest[key][4]:
            latest[key] = row
    rejected_runs = {r.run_id for r in runs if r.label == REJECTED.isoformat()}
    failed = [
        row
        for row in latest.values()
        if row[5] == "failed" and not (row[2] in rejected_runs and row[1].startswith("validate_"))
    ]
    for row in failed:
        problems.append(f"task failed: {row[0]}.{row[1]}[{row[3]}] in {row[2]}")
    if len(used) < len(workers):
        problems.append(f"tasks ran on {len(used)} of {len(workers)} worker hosts")

    recovered = False
    if kill.host:
        retried = [
            row for row in latest.values()
            if row[0] == "nightly_scoring" and row[1] == "score_partition"
            and row[2] == kill.run_id and row[3] == kill.map_index
        ]  # fmt: skip
        day = next(d for d in days if d.isoformat() in kill.run_id)
        runs_published, scored, flights = _published(cluster, day)
        recovered = bool(
            retried
            and retried[0][5] == "success"
            and retried[0][4] > kill.try_number
            and retried[0][6] not in ("", kill.address)
            and runs_published == 1
            and scored == flights > 0
        )
        if not recovered:
            problems.append(
                f"the killed partition did not recover: {retried}, published {runs_published}, "
                f"{scored} predictions of {flights} flights"
            )
    else:
        problems.append("no score_partition was seen running on a worker: nothing was killed")
    duplicates = _duplicates(cluster, days)
    if duplicates:
        problems.append(f"{duplicates} duplicate predictions")
    return {
        "worker_hosts_used": len(used),
        "tasks": len(latest),
        "failed_tasks": len(failed),
        "duplicate_predictions": duplicates,
        "worker_killed_recovered": recovered,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    from nightscore.cli import date_arg

    parser = argparse.ArgumentParser(prog="python -m nightscore_dev.cluster")
    parser.add_argument("--start", type=date_arg, default=START)
    parser.add_argument("--end", type=date_arg, default=END)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nightscore-cluster-") as root:
        report = run(Path(root), args.start, args.end)
    problems = report.pop("problems")
    print(json.dumps(report), flush=True)
    return 1 if problems else 0
