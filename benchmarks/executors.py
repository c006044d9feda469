"""The same nights on the LocalExecutor and on Celery with two workers on hosts of their
own, and a 1M-flight night scored with K = 1, 2 and 4 partitions across the two workers.

1. LocalExecutor: the local stack (`nightscore_dev.stack`, the demo's) with databases of
   its own; the history is loaded and a champion trained, then the two nights are replayed
   through the scheduler and timed.
2. Celery: the cluster of `make test-distributed` (`nightscore_dev.cluster`): the same
   steps, the same nights, timed the same way.
3. On the cluster, the first night is grown to N flights (its real flights plus replicas
   under new flight numbers, as `make bench-scoring` builds them); for each K the workers
   restart with NIGHTSCORE_SCORING_PARTITIONS=K and the night's scoring (plan, K mapped
   `score_partition`s, publish) is cleared and re-run: the time from clearing to the run's
   success, and where the partitions ran.

Run with `make bench-executors` (ARGS="--rows 200000 --skip-local"). It needs root, as
the cluster does. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from harness import say
from scoring import REPLICATE, STRIDE

from nightscore import config
from nightscore_dev import demo
from nightscore_dev import stack as local
from nightscore_dev.cluster import cluster as celery
from nightscore_dev.cluster.check import _query
from nightscore_dev.cluster.network import can_build

START, END = date(2013, 2, 10), date(2013, 2, 11)
NIGHT = START
DEADLINE_S = 60 * 60
SCORING_TASKS = ["plan_scoring", "score_partition", "publish_predictions"]


def _tasks(client: demo.AirflowClient, runs: list[demo.Run]) -> int:
    total = 0
    for run in runs:
        found = client.request(
            "GET", f"/api/v2/dags/{run.dag_id}/dagRuns/{run.run_id}/taskInstances"
        )
        total += int(found["total_entries"])
    return total


def _replay(
    client: demo.AirflowClient, paths: Any, start: date = START, end: date = END
) -> dict[str, Any]:
    """History, champion, then the timed replay of start..end."""
    deadline = time.monotonic() + DEADLINE_S
    demo.wait_for_dags(client, paths)
    for dag_id in demo.DEMO_DAGS:
        client.unpause(dag_id)
    history = demo.bootstrap(client, start, deadline)
    training = demo.train_champion(client, start, deadline)
    started = time.monotonic()
    runs = demo.replay(client, start, end, deadline)
    seconds = time.monotonic() - started
    # A rejected batch fails its run on purpose (2013-02-12 of the demo's window).
    failed = [demo.describe(r) for r in runs if r.state != "success" and not _rejected(r)]
    if failed:
        raise SystemExit("runs failed:\n" + "\n".join(failed))
    tasks = _tasks(client, runs)
    by_dag: dict[str, float] = {}
    for run in runs:
        by_dag[run.dag_id] = round(by_dag.get(run.dag_id, 0.0) + (run.seconds or 0.0), 1)
    return {
        "seconds": round(seconds, 1),
        "tasks": tasks,
        "tasks_per_minute": round(tasks / seconds * 60, 1),
        "history_s": round(history.seconds or 0.0, 1),
        "training_s": round(training.seconds or 0.0, 1),
        "run_seconds_by_dag": by_dag,
        "runs": runs,
    }


def _rejected(run: demo.Run) -> bool:
    return bool(run.failed_tasks) and all(
        "REJECTED" in (error or "") for error in run.failed_tasks.values()
    )


def local_executor(root: Path, start: date = START, end: date = END) -> dict[str, Any]:
    say("== LocalExecutor: the local stack")
    suffix = uuid.uuid4().hex[:8]
    databases = {name: f"nightscore_bench_{name}_{suffix}" for name in ("af", "wh", "ml")}
    admin = os.environ.get("NIGHTSCORE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    os.environ["NIGHTSCORE_ADMIN_URL"] = admin
    paths = local.state_paths(root / "local")
    admin_url = local.ensure_postgres(paths)
    try:
        began = time.monotonic()
        stack = local.up(
            paths,
            api_port=local.free_port(),
            airflow_db=databases["af"],
            warehouse_db=databases["wh"],
            mlflow_db=databases["ml"],
            mlflow_port=local.free_port(),
        )
        up_s = round(time.monotonic() - began, 1)
        client = demo.AirflowClient(stack.api_url, local.ADMIN_USER, stack.password)
        result = {"stack_up_s": up_s, **_replay(client, paths, start, end)}
        result["total_s"] = round(time.monotonic() - began, 1)
        client.close()
    finally:
        local.stop(paths, postgres=False)
        for name in databases.values():
            local.drop_database(admin_url, name)
        local.stop_embedded_postgres(paths)
    result.pop("runs")
    say(f"  {start} to {end}: {result['seconds']} s, {result['tasks']} tasks")
    return result


def _grow_night(cluster: celery.Cluster, rows: int) -> int:
    """Replicate NIGHT's real flights under new numbers up to `rows` flights (the
    statement `make bench-scoring` builds its synthetic night with)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(config.sqlalchemy_url(cluster.warehouse_url))
    try:
        with engine.begin() as conn:
            real = conn.execute(
                text("SELECT count(*) FROM core.flights WHERE service_date = :d AND flight < :s"),
                {"d": NIGHT, "s": STRIDE},
            ).scalar_one()
            copies = -(-(rows - real) // real)
            step = max(1, 500_000 // real)
            for first in range(1, copies + 1, step):
                last = min(first + step - 1, copies)
                params = {"d": NIGHT, "first": first, "last": last, "rows": rows}
                conn.execute(text(REPLICATE), params)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE core.flights")
    finally:
        engine.dispose()
    return int(real)


def _rescore(cluster: celery.Cluster, client: demo.AirflowClient, run: demo.Run, k: int):
    cluster.restart_workers(NIGHTSCORE_SCORING_PARTITIONS=str(k))
    time.sleep(5)  # the workers connect to the broker
    started = time.monotonic()
    client.request(
        "POST",
        "/api/v2/dags/nightly_scoring/clearTaskInstances",
        json={"dag_run_id": run.run_id, "dry_run": False, "reset_dag_runs": True,
              "only_failed": False, "task_ids": SCORING_TASKS},
    )  # fmt: skip
    run.state = "queued"
    demo.wait_for_runs(client, [run], demo.Progress(1), time.monotonic() + DEADLINE_S)
    seconds = time.monotonic() - started
    if run.state != "success":
        raise SystemExit(f"scoring with K={k} failed: {demo.describe(run)}")
    hosts = _query(
        cluster.airflow_db_url,
        "SELECT hostname, count(*), round(max(extract(epoch FROM end_date - start_date))::numeric, 1) "
        "FROM task_instance WHERE dag_id = 'nightly_scoring' AND run_id = %s "
        "AND task_id = 'score_partition' AND state = 'success' "
        "GROUP BY hostname ORDER BY hostname",
        (run.run_id,),
    )
    (scored,) = _query(
        cluster.warehouse_url,
        "SELECT count(*) FROM scoring.predictions WHERE service_date = %s",
        (NIGHT,),
    )
    return {
        "k": k,
        "seconds": round(seconds, 1),
        "rows": int(scored[0]),
        "partitions_by_host": {h: int(n) for h, n, _ in hosts},
        "slowest_partition_s": max((float(s) for _, _, s in hosts), default=None),
    }


def celery_executor(root: Path, rows: int, ks: list[int]) -> dict[str, Any]:
    say("== Celery: two workers on hosts of their own")
    cluster = celery.up(root / "cluster", log=say)
    try:
        client = demo.AirflowClient(cluster.api_url, cluster.user, cluster.password)
        result = _replay(client, cluster.paths)
        runs = result.pop("runs")
        say(f"  two nights: {result['seconds']} s, {result['tasks']} tasks")
        night = next(r for r in runs if r.dag_id == "nightly_scoring" and r.label == str(NIGHT))
        started = time.monotonic()
        real = _grow_night(cluster, rows)
        say(
            f"  {NIGHT}: {real:,} real flights grown to {rows:,} in {time.monotonic() - started:.0f} s"
        )
        result["night"] = []
        for k in ks:
            measured = _rescore(cluster, client, night, k)
            say(
                f"  K={k}: {measured['seconds']} s, partitions by host {measured['partitions_by_host']}"
            )
            result["night"].append(measured)
        client.close()
    finally:
        cluster.down()
    return result


def report(
    local_result: dict[str, Any] | None, celery_result: dict[str, Any] | None, rows: int
) -> None:
    if celery_result is None:
        say(f"LocalExecutor only: {local_result}")
        return
    say("")
    say(
        f"{'two nights (' + str(START) + ', ' + str(END) + ')':<34}{'LocalExecutor':>15}{'Celery x2':>12}{'ratio':>8}"
    )
    for key, label in (
        ("seconds", "wall time (s)"),
        ("tasks", "tasks"),
        ("tasks_per_minute", "tasks per minute"),
    ):
        mine = celery_result[key]
        ref = local_result[key] if local_result else None
        ratio = f"{mine / ref:.2f}" if ref else "-"
        say(f"  {label:<32}{ref if ref is not None else '-':>15}{mine:>12}{ratio:>8}")
    say("")
    say(
        f"{'a ' + format(rows, ',') + '-flight night':<34}{'seconds':>15}{'vs K=1':>12}  partitions by host"
    )
    base = celery_result["night"][0]["seconds"] if celery_result["night"] else None
    for measured in celery_result["night"]:
        ratio = f"{base / measured['seconds']:.2f}x" if base else "-"
        say(
            f"  K={measured['k']:<30}{measured['seconds']:>15}{ratio:>12}  {measured['partitions_by_host']}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", default="1,2,4", help="the K to measure")
    parser.add_argument("--skip-local", action="store_true", help="Celery only")
    parser.add_argument("--skip-celery", action="store_true", help="LocalExecutor only")
    parser.add_argument(
        "--replay-partitions", type=int, default=4, help="K while the two nights replay"
    )
    args = parser.parse_args(argv)
    reason = can_build()
    if reason:
        raise SystemExit(f"the cluster {reason}")
    ks = [int(k) for k in args.partitions.split(",")]
    # Both executors replay the nights with the same K (the cluster's default, 4).
    os.environ["NIGHTSCORE_SCORING_PARTITIONS"] = str(args.replay_partitions)
    with tempfile.TemporaryDirectory(prefix="nightscore-bench-executors-") as tmp:
        root = Path(tmp)
        local_result = None if args.skip_local else local_executor(root)
        celery_result = None if args.skip_celery else celery_executor(root, args.rows, ks)
    report(local_result, celery_result, args.rows)
    print(json.dumps({"local": local_result, "celery": celery_result, "rows": args.rows}))


if __name__ == "__main__":
    main()
