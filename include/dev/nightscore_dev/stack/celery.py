"""The stack under the CeleryExecutor (`make demo EXECUTOR=celery`): a Redis broker and
two `airflow celery worker` processes, managed like the other components.

The broker is a `redis-server` the stack starts on a free loopback port, keeping nothing
on disk, unless NIGHTSCORE_DEMO_REDIS_URL names one. Celery's results go to Airflow's
metadata database. Each worker has its own Celery node name, task hostname (what
`task_instance.hostname` records) and log server port, so two of them share one machine.
Task logs are written to the stack's log folder, which the API server reads directly.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from nightscore_dev.stack.airflow import airflow_command, process_env
from nightscore_dev.stack.paths import CELERY_WORKERS, COMPONENTS, REDIS, StatePaths
from nightscore_dev.stack.ports import Ports, ensure_port_free
from nightscore_dev.stack.processes import (
    component_pid,
    running_components,
    start_detached,
    wait_until,
)

EXECUTORS = ("local", "celery")
REDIS_URL_VARIABLE = "NIGHTSCORE_DEMO_REDIS_URL"
WORKER_CONCURRENCY = 2
WORKER_START_TIMEOUT_S = 180
# Read by `worker_hostname`, in the worker and the task processes it starts.
HOSTNAME_VARIABLE = "NIGHTSCORE_DEV_WORKER_HOSTNAME"


def explicit_redis_url() -> str:
    """NIGHTSCORE_DEMO_REDIS_URL: a broker to use instead of starting one ("" if unset)."""
    return os.environ.get(REDIS_URL_VARIABLE, "").strip()


def redis_url(ports: Ports) -> str:
    """The broker's URL: the explicit one, else the stack's own Redis."""
    return explicit_redis_url() or f"redis://127.0.0.1:{ports.redis}/0"


def check_executor(paths: StatePaths, executor: str) -> None:
    """Refuse to start one executor's stack over the other's, which still runs."""
    if executor not in EXECUTORS:
        raise RuntimeError(f"unknown executor {executor!r}; expected one of {EXECUTORS}")
    running = running_components(paths)
    workers = [name for name in CELERY_WORKERS if name in running]
    airflow = [name for name in COMPONENTS if name in running]
    if airflow and bool(workers) != (executor == "celery"):
        now = "the CeleryExecutor" if workers else "the LocalExecutor"
        raise RuntimeError(
            f"the running stack uses {now}; run `make stop` first to switch executors"
        )


def start_redis(paths: StatePaths, port: int) -> tuple[int, bool]:
    """Start Debian's `redis-server` on 127.0.0.1:`port`, saving nothing; (pid, started)."""
    if component_pid(paths, REDIS) is None:
        ensure_port_free(port, "Redis")
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError(
            "EXECUTOR=celery needs redis-server (apt-get install redis-server), or "
            f"{REDIS_URL_VARIABLE} naming a running Redis"
        )
    folder = paths.root / "redis"
    folder.mkdir(exist_ok=True)
    command = [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)]
    command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    return start_detached(paths, REDIS, command)


def wait_for_redis(paths: StatePaths, url: str) -> float:
    """Wait until the broker answers PING; return the seconds waited."""
    import redis

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    own = component_pid(paths, REDIS) is not None
    return wait_until(
        answers,
        timeout_s=30,
        log=paths.log(REDIS),
        alive=lambda: not own or component_pid(paths, REDIS) is not None,
        what=f"Redis at {url}",
    )


def executor_env(env: Mapping[str, str], broker_url: str) -> dict[str, str]:
    """What the CeleryExecutor changes in the environment of every Airflow process."""
    metadata = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        # Celery's SQLAlchemy backend: `db+` and the metadata database's URL.
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql://" + metadata.split("://", 1)[1],
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    }


def worker_env(env: Mapping[str, str], name: str, log_port: int) -> dict[str, str]:
    """One worker's environment: its own log server port and task hostname."""
    return {
        **env,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
        HOSTNAME_VARIABLE: name,
    }


def worker_hostname() -> str:
    """Airflow's hostname callable in a worker of the stack: the worker's name.

    Both workers run on the same machine, whose one host name would not tell them apart.
    """
    import socket

    return os.environ.get(HOSTNAME_VARIABLE) or socket.getfqdn()


def worker_command(name: str) -> list[str]:
    """`airflow celery worker` with the worker's own Celery node name."""
    return airflow_command(
        "celery",
        "worker",
        "--concurrency",
        str(WORKER_CONCURRENCY),
        "--celery-hostname",
        f"{name}@%h",
    )


def start_workers(paths: StatePaths, env: Mapping[str, str], ports: Ports) -> dict[str, int]:
    """Start the workers that do not run yet, each on its log port; print one line each."""
    pids = {}
    for name, log_port in zip(CELERY_WORKERS, ports.celery_logs, strict=True):
        whole = process_env(worker_env(env, name, log_port))
        pid, started = start_detached(paths, name, worker_command(name), whole)
        state = "started" if started else "already running"
        print(f"  {name:<14} {state} (pid {pid}), log: {paths.log(name)}", flush=True)
        pids[name] = pid
    return pids


def _ready(log: Path) -> bool:
    """Whether a worker's log says, since its last start, that it is ready."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return " ready." in text.rsplit("\n--- starting ", 1)[-1]  # see start_detached


def wait_for_workers(paths: StatePaths, timeout_s: float = WORKER_START_TIMEOUT_S) -> float:
    """Wait until each worker's log says it is ready (connected, consuming)."""
    started = time.monotonic()
    for name in CELERY_WORKERS:
        wait_until(
            partial(_ready, paths.log(name)),
            timeout_s=timeout_s,
            log=paths.log(name),
            alive=partial(_running, paths, name),
            what=f"the Celery worker {name}",
        )
    return time.monotonic() - started


def _running(paths: StatePaths, name: str) -> bool:
    return component_pid(paths, name) is not None


_TASK_HOSTS = """
    SELECT hostname, queue, count(*) FROM task_instance
    WHERE hostname <> '' AND state IS NOT NULL
    GROUP BY hostname, queue ORDER BY hostname, queue
"""


def task_hosts(env: Mapping[str, str]) -> str:
    """Where the stack's tasks ran: task instances by hostname and queue (metadata DB)."""
    import psycopg2

    from nightscore import config

    url = config.libpq_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        connection = psycopg2.connect(url, connect_timeout=10)
        with connection, connection.cursor() as cursor:
            cursor.execute(_TASK_HOSTS)
            rows = cursor.fetchall()
        connection.close()
    except psycopg2.Error as exc:
        return f"Where tasks ran: cannot read Airflow's metadata database ({exc})"
    lines = ["Where tasks ran (task_instance: hostname, queue, task instances):"]
    lines += [f"  {hostname:<18} {queue or '-':<10} {count:>5}" for hostname, queue, count in rows]
    return "\n".join(lines)
