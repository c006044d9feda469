"""A nightscore deployment in its production shape, on one Linux machine:

    control   10.N.0.1   scheduler, DAG processor, API server, triggerer; the services
                         (Postgres, Redis, the S3 store, MLflow, the mail sink)
    worker-1  10.N.0.11  `airflow celery worker`, in a namespace of its own
    worker-2  10.N.0.12  the same
    client    10.N.0.13  nothing runs there: a browser's host, that fetches the links

The workers see none of the control host's files: everything they share goes through
the services (Postgres, the broker, the store, MLflow's artifact server, Airflow's
execution API). Every component reaches Postgres as a role of its own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from nightscore import config
from nightscore_dev.cluster.network import Host, Network
from nightscore_dev.cluster.services import (
    BUCKET,
    Services,
    s3_env,
    start_services,
    stop_postgres,
)
from nightscore_dev.stack.airflow import (
    ADMIN_USER,
    API_START_TIMEOUT_S,
    admin_password,
    airflow_command,
    airflow_db_migrate,
    airflow_env,
    load_secrets,
    process_env,
    write_passwords_file,
)
from nightscore_dev.stack.paths import COMPONENTS, MANAGED, StatePaths
from nightscore_dev.stack.ports import Ports, free_port
from nightscore_dev.stack.processes import (
    component_pid,
    running_components,
    start_detached,
    stop_processes,
    wait_until,
)
from nightscore_dev.stack.stack import upgrade_warehouse

WORKERS = ("worker-1", "worker-2")
# Every process a cluster runs on the control host or its workers (Postgres aside).
PROCESSES = (*MANAGED, "redis", "s3", "evidently", *WORKERS)
WORKER_CONCURRENCY = 2
# A worker that stops heartbeating (killed, unplugged) has its task failed and retried
# after this long; Airflow's default is 5 minutes.
HEARTBEAT_TIMEOUT_S = 30
QUEUED_TIMEOUT_S = 120
# Variables only the control host holds: the workers get no superuser, no state folder.
_CONTROL_ONLY = ("NIGHTSCORE_ADMIN_URL", "NIGHTSCORE_STATE_DIR")


@dataclass
class Cluster:
    paths: StatePaths
    network: Network
    services: Services
    api_port: int
    control_env: dict[str, str]
    worker_env: dict[str, str]
    workers: dict[str, Host] = field(default_factory=dict)
    client: Host | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.network.control_address}:{self.api_port}"

    @property
    def warehouse_url(self) -> str:
        return self.services.role_url("nightscore_etl")

    @property
    def airflow_db_url(self) -> str:
        return self.services.role_url("airflow")

    @property
    def password(self) -> str:
        return admin_password(self.paths)

    @property
    def user(self) -> str:
        return ADMIN_USER

    def start_worker(self, name: str) -> int:
        host = self.workers[name]
        argv = [
            *airflow_command("celery", "worker"),
            "--concurrency", str(WORKER_CONCURRENCY),
            "--celery-hostname", f"{name}@%h",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        pid, _ = start_detached(self.paths, name, host.command(argv), self.worker_env)
        return pid

    def restart_workers(self, **env: str) -> None:
        """Stop the workers (SIGTERM: a warm shutdown), then start them with `env` added."""
        pids = running_components(self.paths, self.workers)
        if pids:
            stop_processes(pids, timeout_s=60)
        for name in self.workers:
            self.paths.pid_file(name).unlink(missing_ok=True)
        self.worker_env.update(env)
        for name in self.workers:
            self.start_worker(name)

    def restart_scheduler(self, executor: str) -> None:
        """Restart the scheduler with another executor (the same everything else)."""
        stop_processes({"scheduler": running_components(self.paths, ("scheduler",))["scheduler"]})
        self.paths.pid_file("scheduler").unlink(missing_ok=True)
        self.control_env["AIRFLOW__CORE__EXECUTOR"] = executor
        env = process_env(self.control_env)
        start_detached(self.paths, "scheduler", airflow_command("scheduler"), env)

    def down(self) -> None:
        """Stop everything and remove the hosts; safe to repeat."""
        teardown(self.paths, self.network)


def teardown(paths: StatePaths, network: Network) -> None:
    pids = running_components(paths, PROCESSES)
    if pids:
        stop_processes(pids, timeout_s=20)
    network.down()
    stop_postgres(paths)


def _control_env(paths: StatePaths, services: Services, api_port: int) -> dict[str, str]:
    address = services.address
    api = f"http://{address}:{api_port}"
    ports = Ports(api_port, free_port(), free_port(), services.mlflow_port, services.smtp_port)
    env = airflow_env(
        paths, airflow_db_url=services.role_url("airflow"),
        warehouse_url=services.role_url("nightscore_etl"), ports=ports,
    )  # fmt: skip
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": services.role_url(
                "airflow", "postgresql+psycopg2"
            ),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": services.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + services.role_url("celery"),
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "8",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
            # A task a dead worker had taken off the queue but not started stays queued
            # (Redis gives the message back only after the visibility timeout, 24 h):
            # after this long the scheduler queues it again (Airflow's default: 600 s).
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT_S),
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
            "AIRFLOW__API__HOST": address,
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow.utils.net.get_host_ip_address",
            "NIGHTSCORE_MLFLOW_TRACKING_URI": services.mlflow_url,
            "MLFLOW_TRACKING_URI": services.mlflow_url,
            "NIGHTSCORE_STORE_URL": f"s3://{BUCKET}",
            "NIGHTSCORE_PUBLIC_AIRFLOW_URL": api,
            "NIGHTSCORE_PUBLIC_MLFLOW_URL": services.mlflow_url,
            "NIGHTSCORE_PUBLIC_EVIDENTLY_URL": services.evidently_url,
            # The sink's mail, which the API server shows (NIGHTSCORE_MAIL_DIR: airflow_env).
            "NIGHTSCORE_PUBLIC_MAIL_URL": f"{api}/nightscore/mail",
            # Every link setting is checked at start-up.
            "NIGHTSCORE_ENVIRONMENT": "production",
            "NIGHTSCORE_SCORING_PARTITIONS": os.environ.get("NIGHTSCORE_SCORING_PARTITIONS", "4"),
            "AIRFLOW_CONN_SMTP_DEFAULT": (
                f"smtp://{address}:{services.smtp_port}?disable_ssl=true&disable_tls=true"
                "&from_email=nightscore%40nightscore.example"
            ),
            **s3_env(services),
        }
    )
    return env


def _worker_env(control: dict[str, str]) -> dict[str, str]:
    """A worker's whole environment: what a task needs, nothing of the control host's."""
    keep_prefixes = ("NIGHTSCORE_", "AWS_", "FSSPEC_", "MLFLOW_")
    env = {k: v for k, v in control.items() if k.startswith(keep_prefixes)}
    for key in _CONTROL_ONLY:
        env.pop(key, None)
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE",
        "AIRFLOW__API__BASE_URL",  # Airflow's own links (ti.log_url)
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        # The worker's log server, where the API server reads task logs; it checks the
        # API server's tokens, signed with [api] secret_key.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW_CONN_WAREHOUSE_DB",
        "AIRFLOW_CONN_SMTP_DEFAULT",
    ):
        env[key] = control[key]
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "AIRFLOW_HOME": "/tmp/home/airflow",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": "/tmp/home/airflow/logs",
            "NIGHTSCORE_STATE_DIR": "/tmp/home/nightscore",
        }
    )
    return env


def up(root: Path, *, workers: tuple[str, ...] = WORKERS, log=print) -> Cluster:
    """Build the network, start the services, the control host's components and the
    workers; return once the API server answers. `down()` undoes it all."""
    paths = StatePaths(root).ensure()
    network = Network().up()
    try:
        hidden = tuple(p for p in (str(config.STATE_DIR),) if Path(p).is_dir())
        hosts = {name: network.add_host(name, hidden=hidden) for name in workers}
        client = network.add_host("client", hidden=hidden)
        started = time.monotonic()
        services = start_services(paths, network.control_address)
        log(f"  services on {network.control_address} ({time.monotonic() - started:.0f} s)")
        load_secrets(paths)
        write_passwords_file(paths)
        control = _control_env(paths, services, free_port())
        cluster = Cluster(
            paths, network, services, int(control["AIRFLOW__API__PORT"]), control,
            _worker_env(control), hosts, client,
        )  # fmt: skip
        upgrade_warehouse(paths, cluster.warehouse_url, services.admin_url)
        airflow_db_migrate(paths, control)
        env = process_env(control)
        for name in COMPONENTS:
            start_detached(paths, name, airflow_command(name), env)
        for name in workers:
            cluster.start_worker(name)
        wait_until(
            f"{cluster.api_url}/api/v2/monitor/health",
            timeout_s=API_START_TIMEOUT_S,
            log=paths.log("api-server"),
            alive=lambda: component_pid(paths, "api-server") is not None,
            what="the Airflow API server",
        )
        log(f"  airflow at {cluster.api_url}, workers {', '.join(workers)}")
        return cluster
    except BaseException:
        teardown(paths, network)
        raise
