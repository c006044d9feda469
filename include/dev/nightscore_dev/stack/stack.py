"""The whole local stack behind `make demo`: bring it up (Postgres, the MLflow server,
the mail sink, the warehouse, Airflow's database and components; with the CeleryExecutor,
Redis and two Celery workers too), and stop it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nightscore import config
from nightscore_dev.stack import celery
from nightscore_dev.stack.airflow import (
    admin_password,
    airflow_db_migrate,
    airflow_env,
    api_base_url,
    start_components,
    wait_for_api,
    write_env_file,
    write_passwords_file,
)
from nightscore_dev.stack.mlflow import (
    MLFLOW_START_TIMEOUT_S,
    mlflow_base_url,
    mlflow_health_url,
    start_mlflow_server,
)
from nightscore_dev.stack.paths import (
    CELERY_WORKERS,
    MAIL_SINK,
    MANAGED,
    MLFLOW,
    REDIS,
    StatePaths,
)
from nightscore_dev.stack.ports import (
    Ports,
    choose_ports,
    ensure_port_free,
    mlflow_port_from_env,
)
from nightscore_dev.stack.postgres import (
    ensure_postgres,
    redacted,
    stop_embedded_postgres,
    warehouse_url_for,
)
from nightscore_dev.stack.processes import (
    component_pid,
    run_logged,
    running_components,
    start_detached,
    stop_processes,
    wait_until,
)
from nightscore_dev.stack.roles import (
    ANALYST_ROLE,
    ETL_ROLE,
    own_database,
    role_password,
    without_superuser,
)


@dataclass(frozen=True)
class Stack:
    """A running local stack: where it keeps its files and how to reach it."""

    paths: StatePaths
    admin_url: str
    warehouse_url: str
    ports: Ports
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return api_base_url(self.ports.api)

    @property
    def mlflow_url(self) -> str:
        """The MLflow tracking URI, which is also its UI's address."""
        return mlflow_base_url(self.ports.mlflow)

    @property
    def password(self) -> str:
        return admin_password(self.paths)


def start_mail_sink(paths: StatePaths, port: int, host: str = "127.0.0.1") -> tuple[int, bool]:
    """Start the SMTP sink detached (`nightscore_dev.mailsink`); (pid, started)."""
    if component_pid(paths, MAIL_SINK) is None:
        ensure_port_free(port, "the mail sink")
    command = [sys.executable, "-m", "nightscore_dev.mailsink", "--folder", str(paths.mail)]
    command += ["--host", host, "--port", str(port)]
    return start_detached(paths, MAIL_SINK, command, without_superuser())


def upgrade_warehouse(paths: StatePaths, warehouse_url: str, admin_url: str) -> None:
    """Run `nightscore db upgrade` as the superuser (set-up): the warehouse database, its
    roles (the analyst's password: NIGHTSCORE_ANALYST_PASSWORD, else generated), schema."""
    analyst = os.environ.get("NIGHTSCORE_ANALYST_PASSWORD", "").strip()
    env = {
        **os.environ,
        "NIGHTSCORE_STATE_DIR": str(paths.root),
        "NIGHTSCORE_WAREHOUSE_URL": warehouse_url,
        "NIGHTSCORE_ADMIN_URL": admin_url,
        "NIGHTSCORE_ANALYST_PASSWORD": analyst or role_password(paths, ANALYST_ROLE),
    }
    run_logged(
        [sys.executable, "-m", "nightscore.cli", "db", "upgrade"],
        env,
        paths.log("db-upgrade"),
        what="nightscore db upgrade",
    )


def _start_broker(paths: StatePaths, ports: Ports) -> None:
    """The Celery broker: the stack's own Redis (started here) or NIGHTSCORE_DEMO_REDIS_URL."""
    started = time.monotonic()
    url = celery.redis_url(ports)
    if not celery.explicit_redis_url():
        pid, started_now = celery.start_redis(paths, ports.redis)
        state = "started" if started_now else "already running"
        print(f"  redis          {state} (pid {pid}), log: {paths.log(REDIS)}", flush=True)
    celery.wait_for_redis(paths, url)
    _step(f"celery broker answers at {config.redact_url(url)}", started)


def _step(title: str, started: float) -> None:
    print(f"  {title} ({time.monotonic() - started:.1f} s)", flush=True)


def up(
    paths: StatePaths,
    *,
    api_port: int,
    airflow_db: str = "airflow",
    warehouse_db: str | None = None,
    dags_folder: Path | None = None,
    mlflow_port: int | None = None,
    mlflow_db: str = "mlflow",
    executor: str = "local",
) -> Stack:
    """Bring the stack up: Postgres, the MLflow server, the warehouse, Airflow's database,
    the components.

    `warehouse_db` None means NIGHTSCORE_WAREHOUSE_URL, else `warehouse` on the server.
    `mlflow_port` is preferred (None: the port of NIGHTSCORE_MLFLOW_TRACKING_URI, or 5000);
    a free one replaces it when it is taken. Safe to run again: what runs is left alone.
    `executor` "celery" adds a Redis broker and two Celery workers (`stack.celery`).
    """
    # First: a taken port or the other executor's stack should fail before any work.
    celery.check_executor(paths, executor)
    with_celery = executor == "celery"
    ports = choose_ports(
        paths,
        api_port,
        mlflow_port or mlflow_port_from_env(),
        celery_workers=len(CELERY_WORKERS) if with_celery else 0,
        redis=with_celery and not celery.explicit_redis_url(),
    )
    started = time.monotonic()
    admin_url = ensure_postgres(paths)
    env_url = os.environ.get("NIGHTSCORE_WAREHOUSE_URL", "").strip()
    if warehouse_db is None and env_url:
        warehouse_url = env_url
    else:
        database = warehouse_db or "warehouse"
        warehouse_url = warehouse_url_for(admin_url, database, role_password(paths, ETL_ROLE))
    # Airflow connects as its own role, owner of its database only (MLflow's: below).
    airflow_db_url = own_database(admin_url, airflow_db, role_password(paths, airflow_db))
    _step(
        f"postgres: {redacted(admin_url)}, roles and databases {airflow_db}, {mlflow_db}", started
    )

    # The MLflow server takes a while to import; it starts now and is waited for last.
    mlflow_started = time.monotonic()
    pid, started_now = start_mlflow_server(paths, admin_url, ports.mlflow, mlflow_db)
    state = "started" if started_now else "already running"
    print(f"  mlflow server  {state} (pid {pid}), log: {paths.log(MLFLOW)}", flush=True)
    pid, sink_started = start_mail_sink(paths, ports.smtp)
    state = "started" if sink_started else "already running"
    print(
        f"  mail sink      {state} (pid {pid}) on smtp://127.0.0.1:{ports.smtp}, "
        f"mail saved to {paths.mail}",
        flush=True,
    )

    if with_celery:
        _start_broker(paths, ports)

    started = time.monotonic()
    upgrade_warehouse(paths, warehouse_url, admin_url)
    _step(f"warehouse: {redacted(warehouse_url)} upgraded, log: {paths.log('db-upgrade')}", started)

    env = airflow_env(
        paths,
        airflow_db_url=airflow_db_url,
        warehouse_url=warehouse_url,
        ports=ports,
        dags_folder=dags_folder,
    )
    if with_celery:
        env.update(celery.executor_env(env, celery.redis_url(ports)))
    write_passwords_file(paths)
    write_env_file(paths, env)
    started = time.monotonic()
    airflow_db_migrate(paths, env)
    _step("airflow db migrate: done", started)

    started = time.monotonic()
    start_components(paths, env)
    if with_celery:
        celery.start_workers(paths, env, ports)
    wait_for_api(paths, ports.api)
    _step(f"airflow API server answers at {api_base_url(ports.api)}", started)
    if with_celery:
        started = time.monotonic()
        celery.wait_for_workers(paths)
        _step(f"celery workers ready: {', '.join(CELERY_WORKERS)}", started)

    since = mlflow_started if started_now else time.monotonic()
    wait_until(
        mlflow_health_url(mlflow_base_url(ports.mlflow)),
        timeout_s=MLFLOW_START_TIMEOUT_S,
        log=paths.log(MLFLOW),
        alive=lambda: component_pid(paths, MLFLOW) is not None,
        what="the MLflow server",
    )
    _step(f"mlflow server answers at {mlflow_base_url(ports.mlflow)}", since)
    return Stack(paths, admin_url, warehouse_url, ports, env)


def stop(paths: StatePaths | None = None, timeout_s: float = 30, *, postgres: bool = True) -> int:
    """Stop every process of the stack and the embedded Postgres; safe when none runs.

    `postgres=False` leaves the embedded Postgres up (a test drops its databases after).
    """
    paths = paths or StatePaths(config.STATE_DIR)  # no ensure(): stopping creates nothing
    pids = running_components(paths)
    if pids:
        print("Stopping " + ", ".join(f"{name} (pid {pid})" for name, pid in pids.items()))
        stop_processes(pids, timeout_s)
    for name in MANAGED:
        paths.pid_file(name).unlink(missing_ok=True)
    paths.ports_file.unlink(missing_ok=True)
    stopped_pg = False
    try:
        stopped_pg = postgres and stop_embedded_postgres(paths)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"  could not stop the embedded Postgres: {exc}")
        return 1
    if stopped_pg:
        print(f"Stopped the embedded Postgres ({paths.pg_data})")
    if not pids and not stopped_pg:
        print("Nothing was running.")
    return 0
