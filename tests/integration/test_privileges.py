"""Least privilege in Postgres, each rule shown by a denied attempt beside a control.

The module starts an embedded server of its own (the stack's: scram-sha-256, the
superuser's password in the state folder), sets it up the way `make demo` does (Airflow's
and MLflow's databases each owned by its role, the warehouse by `nightscore db upgrade`)
and then tries, as each role, what it must not do. Its roles and databases are unique to
the run: nothing is shared with the suite's other tests or the demo. A last group checks
the same set-up on the suite's server (127.0.0.1:5432, trust authentication).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from nightscore_suite import ADMIN_URL, postgres_available
from psycopg2 import errors

from nightscore import sql
from nightscore.config import Settings
from nightscore_dev.stack import airflow, postgres
from nightscore_dev.stack.paths import StatePaths, state_paths
from nightscore_dev.stack.ports import Ports
from nightscore_dev.stack.roles import (
    ANALYST_ROLE,
    ETL_ROLE,
    SUPERUSER,
    SUPERUSER_VARIABLES,
    own_database,
    passwords_file,
    role_password,
)

# Slow: an embedded Postgres of its own, Airflow's and MLflow's databases.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small limits, so that the tests wait seconds: the defaults are 60 s and 10 sessions.
STATEMENT_TIMEOUT_S = 1
IDLE_TIMEOUT_S = 1
CONNECTION_LIMIT = 3


@dataclass(frozen=True)
class Server:
    """The module's embedded server, set up as the stack sets one up."""

    paths: StatePaths
    admin: str
    airflow_db: str
    mlflow_db: str
    warehouse_db: str
    settings: Settings

    def url(self, role: str, database: str) -> str:
        password = role_password(self.paths, role)
        return postgres._url(self.admin, username=role, password=password, database=database)

    def connect(self, role: str, database: str | None = None, **options):
        connection = psycopg2.connect(self.url(role, database or self.warehouse_db), **options)
        connection.autocommit = True
        return connection


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import engine_for

    # Not below pytest's temporary folder: the server runs as another account, which
    # must traverse its parents, and every pytest session resets that one to 0700.
    root = Path(tempfile.mkdtemp(prefix="nightscore-privileges-"))
    paths = state_paths(root)
    suffix = uuid.uuid4().hex[:8]
    airflow_db, mlflow_db, warehouse_db = (
        f"airflow_{suffix}",
        f"mlflow_{suffix}",
        f"warehouse_{suffix}",
    )
    admin = postgres.start_embedded_postgres(paths)
    try:
        own_database(admin, airflow_db, role_password(paths, airflow_db))
        own_database(admin, mlflow_db, role_password(paths, mlflow_db))
        settings = Settings(
            warehouse_url=postgres.warehouse_url_for(
                admin, warehouse_db, role_password(paths, ETL_ROLE)
            ),
            admin_url=admin,
            analyst_password=role_password(paths, ANALYST_ROLE),
            analyst_statement_timeout_s=STATEMENT_TIMEOUT_S,
            analyst_idle_in_transaction_timeout_s=IDLE_TIMEOUT_S,
            analyst_connection_limit=CONNECTION_LIMIT,
            landing_root=str(paths.root / "landing"),
            data_docs_root=str(paths.root / "data_docs"),
        )
        upgrade(settings)
        engine_for(settings).dispose()
        yield Server(paths, admin, airflow_db, mlflow_db, warehouse_db, settings)
    finally:
        postgres.stop_embedded_postgres(paths)
        shutil.rmtree(root, ignore_errors=True)


def denied(server: Server, role: str, statement: str, database: str | None = None) -> str:
    """The error `role` gets for `statement`; fails the test if it ran."""
    connection = server.connect(role, database)
    try:
        with connection.cursor() as cursor, pytest.raises(psycopg2.Error) as raised:
            cursor.execute(statement)
        return str(raised.value)
    finally:
        connection.close()


def run(server: Server, role: str, statement: str, database: str | None = None):
    connection = server.connect(role, database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchone() if cursor.description else None
    finally:
        connection.close()


def run_all(server: Server, statement: str, params=()) -> list[tuple]:
    """Rows of `statement`, as the superuser."""
    connection = psycopg2.connect(server.admin)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
    finally:
        connection.close()


# --- the embedded server asks for passwords -------------------------------------------


def test_the_embedded_server_refuses_a_connection_without_the_password(server):
    no_password = server.admin.replace(f":{role_password(server.paths, SUPERUSER)}@", "@")
    assert no_password != server.admin
    wrong = postgres._url(server.admin, password="not-the-password")
    for url in (no_password, wrong):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(url, connect_timeout=5)
    psycopg2.connect(server.admin, connect_timeout=5).close()  # control: the stored one
    hba = (server.paths.pg_data / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules and {rule[-1] for rule in rules} == {"scram-sha-256"}


def test_an_embedded_server_made_with_trust_asks_for_passwords_after_its_next_start():
    """A data folder from before (initdb --auth=trust, no superuser password) is switched
    to scram-sha-256 when the stack starts it."""
    root = Path(tempfile.mkdtemp(prefix="nightscore-privileges-trust-"))
    paths = state_paths(root)
    try:
        user = postgres._pg_user()
        paths.pg_data.mkdir(parents=True)
        if user is not None:
            postgres._embedded_postgres().utils.ensure_prefix_permissions(paths.pg_data)
            postgres._give_to(user, paths.pg_data)
        initdb = [postgres._pg_bin("initdb"), "-D", str(paths.pg_data), "--auth=trust"]
        postgres._pg_run([*initdb, "-U", SUPERUSER], user, timeout_s=180)
        admin = postgres.start_embedded_postgres(paths)
        psycopg2.connect(admin, connect_timeout=5).close()  # control: with the password
        password = role_password(paths, SUPERUSER)
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(admin.replace(f":{password}@", "@"), connect_timeout=5)
    finally:
        postgres.stop_embedded_postgres(paths)
        shutil.rmtree(root, ignore_errors=True)


def test_passwords_are_kept_in_the_state_folder_for_its_owner_only(server):
    path = passwords_file(server.paths)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert {SUPERUSER, ETL_ROLE, ANALYST_ROLE, server.airflow_db, server.mlflow_db} <= set(stored)
    assert len(set(stored.values())) == len(stored)  # each its own


def test_every_login_role_has_a_scram_password(server):
    roles = [ETL_ROLE, ANALYST_ROLE, server.airflow_db, server.mlflow_db]
    hashes = dict(
        run_all(
            server,
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
            (roles,),
        )
    )
    assert set(hashes) == set(roles)
    assert all(h and h.startswith("SCRAM-SHA-256$") for h in hashes.values()), hashes


# --- each role reaches its own database only ------------------------------------------


@pytest.mark.parametrize(
    ("role", "database"),
    [
        (ANALYST_ROLE, "airflow"),
        (ANALYST_ROLE, "mlflow"),
        (ANALYST_ROLE, "postgres"),
        ("airflow", "warehouse"),  # Airflow's role cannot read the warehouse
        ("mlflow", "warehouse"),
        (ETL_ROLE, "airflow"),  # the ETL cannot read Airflow's database
        (ETL_ROLE, "mlflow"),
    ],
)
def test_a_role_cannot_connect_to_another_database(server, role, database):
    names = {
        "airflow": server.airflow_db,
        "mlflow": server.mlflow_db,
        "warehouse": server.warehouse_db,
        "postgres": "postgres",
    }
    role = names.get(role, role)  # Airflow's and MLflow's roles are named after their database
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        server.connect(role, names[database])
    # Control: the same role, the same password, its own database.
    own = server.warehouse_db if role in (ETL_ROLE, ANALYST_ROLE) else role
    assert run(server, role, "SELECT current_user, current_database()", own) == (role, own)


# --- the analyst's limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        "pg_advisory_lock(1)",
        "pg_advisory_lock_shared(1)",
        "pg_advisory_xact_lock(1)",
        "pg_try_advisory_lock(1)",
        "pg_try_advisory_xact_lock_shared(1, 2)",
        "pg_advisory_unlock_all()",
    ],
)
def test_the_analyst_cannot_take_advisory_locks(server, function):
    error = denied(server, ANALYST_ROLE, f"SELECT {function}")
    assert "permission denied for function" in error
    run(server, ETL_ROLE, f"SELECT {function}")  # control: the ETL may


def test_the_analyst_cannot_stall_the_etls_night(server):
    """The scoring night's own lock: a role that may take it blocks the ETL (the control,
    as the superuser); the analyst's try is refused, and the ETL goes through."""
    key = {"lock_key": "score:2013-02-07:flight_disruption"}
    lock = sql.load("scoring/lock_night").replace(":lock_key", "%(lock_key)s")
    etl = server.connect(ETL_ROLE)
    etl.autocommit = False
    holder = psycopg2.connect(postgres._url(server.admin, database=server.warehouse_db))
    holder.autocommit = False
    try:
        with holder.cursor() as cursor:
            cursor.execute(lock, key)  # the control: a holder of the key...
        with etl.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")
            with pytest.raises(errors.LockNotAvailable):
                cursor.execute(lock, key)  # ...stops the ETL
        etl.rollback()
        holder.rollback()

        assert "permission denied" in denied(
            server, ANALYST_ROLE, "SELECT pg_advisory_lock(hashtext('" + key["lock_key"] + "'))"
        )
        with etl.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")
            cursor.execute(lock, key)
        etl.commit()
    finally:
        etl.close()
        holder.close()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
        "SELECT lo_from_bytea(0, 'x'::bytea)",
        "SELECT lo_import('/etc/hostname')",
    ],
)
def test_the_analyst_cannot_create_large_objects(server, statement):
    assert "permission denied for function" in denied(server, ANALYST_ROLE, statement)


def test_large_objects_are_only_a_superusers_to_create(server):
    # Control: the function works, for the superuser; nobody else is granted it.
    connection = psycopg2.connect(postgres._url(server.admin, database=server.warehouse_db))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT lo_create(0)")
            (oid,) = cursor.fetchone()
            cursor.execute("SELECT lo_unlink(%s)", (oid,))
            cursor.execute("SHOW lo_compat_privileges")
            assert cursor.fetchone() == ("off",)  # on would skip large objects' own checks
    finally:
        connection.close()
    assert "permission denied for function" in denied(server, ETL_ROLE, "SELECT lo_create(0)")


def test_the_analysts_statements_time_out(server):
    assert run(server, ANALYST_ROLE, "SHOW statement_timeout") == (f"{STATEMENT_TIMEOUT_S}s",)
    error = denied(server, ANALYST_ROLE, f"SELECT pg_sleep({STATEMENT_TIMEOUT_S + 1})")
    assert "canceling statement due to statement timeout" in error
    # Control: the ETL has no such limit; the same sleep completes.
    assert run(server, ETL_ROLE, "SHOW statement_timeout") == ("0",)
    run(server, ETL_ROLE, f"SELECT pg_sleep({STATEMENT_TIMEOUT_S + 0.5})")


def test_an_analyst_left_idle_in_a_transaction_is_disconnected(server):
    def idle_then_query(role: str) -> None:
        connection = server.connect(role)
        connection.autocommit = False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # opens the transaction
                time.sleep(IDLE_TIMEOUT_S + 1)
                cursor.execute("SELECT 2")
        finally:
            connection.close()

    with pytest.raises(psycopg2.OperationalError):
        idle_then_query(ANALYST_ROLE)
    idle_then_query(ETL_ROLE)  # control


def test_the_analyst_has_a_connection_limit(server):
    sessions = [server.connect(ANALYST_ROLE) for _ in range(CONNECTION_LIMIT)]  # control
    try:
        with pytest.raises(psycopg2.OperationalError, match="too many connections for role"):
            server.connect(ANALYST_ROLE)
    finally:
        for session in sessions:
            session.close()


def test_the_analysts_search_path_is_analytics(server):
    assert run(server, ANALYST_ROLE, "SHOW search_path") == ("analytics",)
    assert run(server, ANALYST_ROLE, "SELECT count(*) FROM batches") == (0,)
    # Control: the same unqualified name, on the default search path, is no view.
    assert "does not exist" in denied(server, ETL_ROLE, "SELECT count(*) FROM batches")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE analytics.mine (x int)",
        "CREATE VIEW analytics.mine AS SELECT 1",
        "INSERT INTO analytics.weather (origin) VALUES ('EWR')",
        "DELETE FROM analytics.weather",
        "CREATE TEMP TABLE mine (x int)",
        "CREATE TABLE public.mine (x int)",
    ],
)
def test_the_analyst_writes_nowhere(server, statement):
    assert "permission denied" in denied(server, ANALYST_ROLE, statement)


def test_the_analyst_reads_the_views_the_etl_writes_the_tables(server):
    # Controls for the denials above: reading analytics works, the ETL may write.
    assert run(server, ANALYST_ROLE, "SELECT count(*) FROM analytics.batches") == (0,)
    run(server, ETL_ROLE, "CREATE TEMP TABLE mine (x int)")


# --- no superuser in a task's environment ----------------------------------------------


def test_airflow_components_get_no_superuser_url(server, tmp_path, monkeypatch):
    # As `make demo` sees it: the superuser URL in the environment and in the .env file.
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"NIGHTSCORE_ADMIN_URL={server.admin}\n")
    monkeypatch.setenv("NIGHTSCORE_ENV_FILE", str(dotenv))
    monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", server.admin)
    monkeypatch.setenv("NIGHTSCORE_TEST_ADMIN_URL", server.admin)
    paths = state_paths(tmp_path / "state")
    airflow_url = server.url(server.airflow_db, server.airflow_db)
    env = airflow.airflow_env(
        paths,
        airflow_db_url=airflow_url,
        warehouse_url=server.settings.warehouse_url,
        ports=Ports(api=18080, worker_log=18793, trigger_log=18794, mlflow=15000, smtp=11025),
    )
    whole = airflow.process_env(env)
    superuser_password = role_password(server.paths, SUPERUSER)
    for name in SUPERUSER_VARIABLES:
        assert name not in whole
    assert not [k for k, v in whole.items() if superuser_password in v]
    # Control: what the components do need is there, as their own roles.
    assert whole["NIGHTSCORE_WAREHOUSE_URL"] == server.settings.warehouse_url
    assert server.airflow_db in whole["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    # What a task reads: settings loaded in a process with that environment.
    probe = (
        "import os; from nightscore.config import load_settings; "
        "print(load_settings().admin_url, 'NIGHTSCORE_ADMIN_URL' in os.environ)"
    )

    def task_sees(environment: dict[str, str]) -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env={**environment, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    assert task_sees(whole) == "None False"
    # Control: a process given this process's environment as is would read it.
    assert task_sees(dict(os.environ)) == f"{server.admin} True"


# --- the same set-up on a server that trusts local connections --------------------------


def test_on_a_trusting_server_the_stacks_roles_still_own_their_databases_only():
    if not postgres_available():
        pytest.fail(f"no Postgres at {ADMIN_URL}")
    suffix = uuid.uuid4().hex[:8]
    first, second = f"nightscore_test_own_{suffix}_a", f"nightscore_test_own_{suffix}_b"
    try:
        urls = {name: own_database(ADMIN_URL, name, f"pw-{name}") for name in (first, second)}
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            psycopg2.connect(postgres._url(urls[second], database=first))
        connection = psycopg2.connect(urls[first])  # control: the owner
        connection.close()
        connection = psycopg2.connect(ADMIN_URL)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%%', rolsuper, rolcreatedb "
                "FROM pg_authid WHERE rolname = ANY(%s) ORDER BY 1",
                ([first, second],),
            )
            assert cursor.fetchall() == [(first, True, False, False), (second, True, False, False)]
        connection.close()
    finally:
        for name in (first, second):
            postgres.drop_database(ADMIN_URL, name)
    connection = psycopg2.connect(ADMIN_URL)
    with connection.cursor() as cursor:  # the roles went with their databases
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", ([first, second],))
        assert cursor.fetchone() == (0,)
    connection.close()


def test_on_the_suites_warehouse_the_analyst_takes_no_advisory_lock(warehouse):
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import ProgrammingError

    url = make_url(warehouse.warehouse_sqlalchemy_url)
    analyst = create_engine(url.set(username=ANALYST_ROLE, password=None))
    etl = create_engine(url)
    try:
        with analyst.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT pg_advisory_lock(42)"))
        with etl.connect() as conn:  # control
            assert conn.execute(text("SELECT pg_try_advisory_xact_lock(42)")).scalar() is True
    finally:
        analyst.dispose()
        etl.dispose()


# --- the real stack: what its processes were given ----------------------------------------


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.e2e
def test_the_started_stacks_processes_hold_no_superuser_url(tmp_path, monkeypatch):
    """`make demo`'s stack, started for real on the suite's server: every process's own
    environment (/proc/PID/environ) lacks the superuser URL; each reaches Postgres as
    its own role."""
    from sqlalchemy import make_url

    from nightscore_dev import stack as local
    from nightscore_dev.stack.paths import COMPONENTS, MAIL_SINK, MLFLOW

    if not postgres_available():
        pytest.fail(f"no Postgres at {ADMIN_URL}")
    suffix = uuid.uuid4().hex[:8]
    airflow_db, warehouse_db = f"nightscore_priv_airflow_{suffix}", f"nightscore_priv_wh_{suffix}"
    mlflow_db = f"nightscore_priv_mlflow_{suffix}"
    admin = make_url(ADMIN_URL)
    monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", ADMIN_URL)  # as a developer's .env sets it
    monkeypatch.setenv("NIGHTSCORE_LANDING_ROOT", str(tmp_path / "state" / "landing"))
    monkeypatch.setenv("NIGHTSCORE_DATA_DOCS_ROOT", str(tmp_path / "state" / "data_docs"))
    monkeypatch.setenv(
        "NIGHTSCORE_WAREHOUSE_URL",
        f"postgresql://nightscore_etl@{admin.host}:{admin.port or 5432}/{warehouse_db}",
    )
    paths = local.state_paths(tmp_path / "state")
    try:
        running = local.up(
            paths,
            api_port=local.free_port(),
            airflow_db=airflow_db,
            warehouse_db=warehouse_db,
            mlflow_db=mlflow_db,
            mlflow_port=local.free_port(),
        )
        pids = local.running_components(paths, (*COMPONENTS, MLFLOW, MAIL_SINK))
        assert set(pids) == {*COMPONENTS, MLFLOW, MAIL_SINK}
        read = {name: _environ(pid) for name, pid in pids.items()}
        # MLflow's server and the mail sink keep their environment block as given.
        for name in (MLFLOW, MAIL_SINK):
            environ = read.pop(name)
            assert "PATH" in environ, name
            assert not set(SUPERUSER_VARIABLES) & set(environ), name
            assert not [k for k, v in environ.items() if ADMIN_URL in v], name
        mlflow_store = _environ(pids[MLFLOW])["MLFLOW_BACKEND_STORE_URI"]
        assert make_url(mlflow_store).username == mlflow_db
        # Airflow's processes set their title (setproctitle), which overwrites that block:
        # what remains of it must not hold the URL, and what they were started with is the
        # environment the stack saved for them (airflow.env).
        for name, environ in read.items():
            assert ADMIN_URL not in " ".join(f"{k}={v}" for k, v in environ.items()), name
        started_with = airflow.process_env(local.read_env_file(paths))
        assert not set(SUPERUSER_VARIABLES) & set(started_with)
        assert not [k for k, v in started_with.items() if ADMIN_URL in v]
        assert make_url(started_with["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).username == airflow_db
        assert make_url(started_with["NIGHTSCORE_WAREHOUSE_URL"]).username == ETL_ROLE
        assert started_with["NIGHTSCORE_ENV_FILE"] == os.devnull
        # Control: this process, which set the stack up, does hold it.
        assert os.environ["NIGHTSCORE_ADMIN_URL"] == ADMIN_URL
        assert running.admin_url == ADMIN_URL
    finally:
        local.stop(paths, postgres=False)
        for name in (airflow_db, warehouse_db, mlflow_db):
            local.drop_database(ADMIN_URL, name)
