"""The stack's Postgres roles and their passwords.

Each database the stack makes for a service (Airflow's metadata, MLflow's backend store)
is owned by a login role of the same name, and nobody else may connect to it; the
warehouse's roles (`nightscore_etl`, `nightscore_analyst`) are made by `nightscore db
upgrade`. Every password, and the superuser's of an embedded server, is generated once
and kept in the state folder (`postgres.json`, mode 0600). The superuser URL is for
set-up only: no Airflow process is given it (see `airflow.process_env`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from nightscore import config
from nightscore.warehouse.roles import ensure_login_role, ensure_owned_database, quote
from nightscore_dev.stack.paths import StatePaths

ETL_ROLE = "nightscore_etl"
ANALYST_ROLE = "nightscore_analyst"
SUPERUSER = "postgres"
# Superuser URLs: for set-up only, never in the environment of a process the stack leaves
# running (Airflow's, whose tasks could read them or a log print them; MLflow's; the sink).
SUPERUSER_VARIABLES = (
    "NIGHTSCORE_ADMIN_URL",
    "NIGHTSCORE_TEST_ADMIN_URL",
    "NIGHTSCORE_BENCH_ADMIN_URL",
)
# Marks the roles the stack made, so that dropping a database drops its role, never another.
_COMMENT = "nightscore stack: owns database {database}"


def without_superuser(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (this process's by default) without the superuser's URLs."""
    env = os.environ if env is None else env
    return {key: value for key, value in env.items() if key not in SUPERUSER_VARIABLES}


def passwords_file(paths: StatePaths) -> Path:
    return paths.root / "postgres.json"


def role_password(paths: StatePaths, role: str) -> str:
    """The password of `role` on the stack's server: generated at first use, then kept."""
    path = passwords_file(paths)
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if role not in stored:
        stored[role] = secrets.token_urlsafe(24)  # URL-safe: it goes into URLs as is
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return stored[role]


def _admin_engine(admin_url: str, database: str | None = None):
    from sqlalchemy import create_engine, make_url

    url = make_url(config.sqlalchemy_url(admin_url))
    if database is not None:
        url = url.set(database=database)
    return create_engine(url, isolation_level="AUTOCOMMIT")


def own_database(admin_url: str, database: str, password: str) -> str:
    """Make `database` the own database of a login role of the same name (created when
    missing, with `password`); nobody else may connect. Returns the role's URL on it."""
    from sqlalchemy.engine import make_url

    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            ensure_login_role(conn, database, password)
            comment = _COMMENT.format(database=database).replace("'", "''")
            conn.exec_driver_sql(f"COMMENT ON ROLE {quote(database)} IS '{comment}'")
            ensure_owned_database(conn, database, owner=database)
    finally:
        engine.dispose()
    url = make_url(config.libpq_url(admin_url)).set(
        username=database, password=password, database=database
    )
    return url.render_as_string(hide_password=False)


def drop_own_role(admin_url: str, database: str) -> None:
    """Drop the role the stack made for `database` (after the database): tests' clean-up."""
    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            comment = conn.exec_driver_sql(
                "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %(r)s",
                {"r": database},
            ).scalar()
            if comment == _COMMENT.format(database=database):
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {quote(database)}")
    finally:
        engine.dispose()


def protect_server(admin_url: str) -> None:
    """On a server of the stack's own: nobody but the superuser connects to `postgres`."""
    engine = _admin_engine(admin_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("REVOKE ALL ON DATABASE postgres FROM PUBLIC")
    finally:
        engine.dispose()
