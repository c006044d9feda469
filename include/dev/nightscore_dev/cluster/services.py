"""The services of a cluster, on the control host's network address: Postgres with a role
per component, a Redis broker with a password, an S3-compatible store (moto's server),
the MLflow server and the mail sink. Each is a process of the cluster's `StatePaths`."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from nightscore_dev.stack.mlflow import mlflow_auth, mlflow_server_command, mlflow_server_env
from nightscore_dev.stack.paths import StatePaths
from nightscore_dev.stack.ports import free_port, tcp_answers
from nightscore_dev.stack.postgres import _give_to, _init_embedded, _pg_bin, _pg_run, _pg_user
from nightscore_dev.stack.processes import component_pid, start_detached, wait_until
from nightscore_dev.stack.roles import SUPERUSER, protect_server
from nightscore_dev.stack.stack import start_mail_sink

# Each component reaches Postgres over the network as a role of its own.
ROLES = {
    "airflow": "airflow",  # the scheduler, DAG processor, API server, triggerer
    "celery": "celery_results",  # the Celery result backend (workers and the scheduler)
    "mlflow": "mlflow",  # the MLflow server's backend store
    "nightscore_etl": "warehouse",  # the tasks: the warehouse (its owner)
}
BUCKET = "nightscore"
S3_KEY_ID = "nightscore-cluster"


@dataclass
class Secrets:
    """Passwords generated for one cluster run (never written to the repository)."""

    roles: dict[str, str] = field(
        default_factory=lambda: {role: secrets.token_urlsafe(16) for role in ROLES}
    )
    superuser: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    redis: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    s3_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))


@dataclass
class Services:
    """Where the services listen."""

    address: str
    postgres_port: int
    redis_port: int
    s3_port: int
    mlflow_port: int
    smtp_port: int
    evidently_port: int
    secrets: Secrets

    def role_url(self, role: str, scheme: str = "postgresql") -> str:
        password = self.secrets.roles[role]
        return f"{scheme}://{role}:{password}@{self.address}:{self.postgres_port}/{ROLES[role]}"

    @property
    def admin_url(self) -> str:
        password = self.secrets.superuser
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.postgres_port}/postgres"

    @property
    def broker_url(self) -> str:
        return f"redis://:{self.secrets.redis}@{self.address}:{self.redis_port}/0"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.address}:{self.s3_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.address}:{self.mlflow_port}"

    @property
    def evidently_url(self) -> str:
        return f"http://{self.address}:{self.evidently_port}"


def start_services(paths: StatePaths, address: str) -> Services:
    """Start every service and wait until each answers."""
    services = Services(
        address,
        postgres_port=free_port(),
        redis_port=free_port(),
        s3_port=free_port(),
        mlflow_port=free_port(),
        smtp_port=free_port(),
        evidently_port=free_port(),
        secrets=Secrets(),
    )
    _start_postgres(paths, services)
    _create_roles(services)
    _start_redis(paths, services)
    _start_s3(paths, services)
    _start_mlflow(paths, services)
    start_mail_sink(paths, services.smtp_port, host=services.address)
    for name, port in (
        ("redis", services.redis_port),
        ("s3", services.s3_port),
        ("mailsink", services.smtp_port),
    ):
        wait_until(
            partial(tcp_answers, address, port),
            timeout_s=60,
            log=paths.log(name),
            alive=partial(_runs, paths, name),
            what=name,
        )
    _create_bucket(services)
    _start_evidently_ui(paths, services)
    wait_until(
        f"{services.mlflow_url}/health",
        timeout_s=300,
        log=paths.log("mlflow"),
        alive=lambda: component_pid(paths, "mlflow") is not None,
        what="the MLflow server",
    )
    wait_until(
        services.evidently_url,
        timeout_s=180,
        log=paths.log("evidently"),
        alive=lambda: component_pid(paths, "evidently") is not None,
        what="the Evidently UI",
    )
    return services


def _runs(paths: StatePaths, name: str) -> bool:
    return component_pid(paths, name) is not None


def _start_postgres(paths: StatePaths, services: Services) -> None:
    user = _pg_user()
    _init_embedded(paths, user, services.secrets.superuser)
    # Every connection needs a password: the set-up's (the superuser, on the control host's
    # loopback) as the components' (their roles, over the network).
    hba = paths.pg_data / "pg_hba.conf"
    hba.write_text(
        f"host all {SUPERUSER} 127.0.0.1/32 scram-sha-256\n"
        f"host all all {services.address.rsplit('.', 1)[0]}.0/24 scram-sha-256\n"
    )
    _give_to(user, hba)
    log = paths.log("postgres")
    log.touch()
    _give_to(user, log)
    options = (
        f"-c listen_addresses=127.0.0.1,{services.address} -c port={services.postgres_port} "
        "-c unix_socket_directories= -c max_connections=200 -c password_encryption=scram-sha-256"
    )
    _pg_run(
        [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-l", str(log), "-o", options, "-w", "start"],
        user,
    )


def stop_postgres(paths: StatePaths) -> None:
    if (paths.pg_data / "postmaster.pid").exists():
        _pg_run(
            [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-m", "immediate", "-w", "stop"],
            _pg_user(),
        )


def _create_roles(services: Services) -> None:
    """Each role with its password, owning its database (the stack's way: roles.py)."""
    from sqlalchemy import create_engine

    from nightscore import config
    from nightscore.warehouse.roles import ensure_login_role, ensure_owned_database

    engine = create_engine(config.sqlalchemy_url(services.admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for role, database in ROLES.items():
                ensure_login_role(conn, role, services.secrets.roles[role])
                if role != "nightscore_etl":  # `nightscore db upgrade` creates the warehouse
                    ensure_owned_database(conn, database, owner=role)
    finally:
        engine.dispose()
    protect_server(services.admin_url)


def _start_redis(paths: StatePaths, services: Services) -> None:
    conf = paths.run / "redis.conf"
    conf.touch(mode=0o600)
    conf.write_text(
        f"bind {services.address}\nport {services.redis_port}\nrequirepass {services.secrets.redis}\n"
        f'save ""\nappendonly no\ndir {paths.run}\nprotected-mode yes\n'
    )
    start_detached(paths, "redis", ["redis-server", str(conf)])


def _start_s3(paths: StatePaths, services: Services) -> None:
    command = [sys.executable, "-m", "moto.server", "-H", services.address]
    start_detached(paths, "s3", [*command, "-p", str(services.s3_port)])


def s3_env(services: Services) -> dict[str, str]:
    """What every process that reads or writes the store needs (fsspec, s3fs, botocore)."""
    return {
        "FSSPEC_S3_ENDPOINT_URL": services.s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": services.secrets.s3_secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _create_bucket(services: Services) -> None:
    import boto3

    env = s3_env(services)
    boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    ).create_bucket(Bucket=BUCKET)


def _start_evidently_ui(paths: StatePaths, services: Services) -> None:
    """`evidently ui` on the workspace the monitoring tasks write to, in the store."""
    script = Path(sys.executable).with_name("evidently")
    command = [str(script), "ui", "--workspace", f"s3://{BUCKET}/evidently"]
    command += ["--host", services.address, "--port", str(services.evidently_port)]
    start_detached(paths, "evidently", command, {**os.environ, **s3_env(services)})


def _start_mlflow(paths: StatePaths, services: Services) -> None:
    artifacts = paths.mlflow_artifacts
    artifacts.mkdir(parents=True, exist_ok=True)
    command = mlflow_server_command(
        port=services.mlflow_port, artifacts_destination=artifacts, host=services.address
    )
    backend = services.role_url("mlflow")
    # Behind MLflow's basic-auth app, with the login the tasks get (`airflow_env`).
    start_detached(paths, "mlflow", command, mlflow_server_env(backend, mlflow_auth(paths)))
