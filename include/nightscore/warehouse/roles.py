"""Postgres roles and what each may do, set up as a superuser (never by a task).

Each service connects as a login role of its own, with a password, owning only its
database; nobody else may connect to it. In the warehouse, the analyst role reads the
`analytics` views and nothing more: no advisory locks (the ETL's), no large objects,
no temporary tables, a statement timeout, an idle-in-transaction timeout, a connection
limit and `search_path = analytics`. `nightscore db upgrade` (the warehouse), the local
stack and the cluster (Airflow's and MLflow's databases) all go through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from nightscore import sql

ANALYST_ROLE = "nightscore_analyst"


class RoleError(RuntimeError):
    """A role or database cannot be set up as asked; the message says what to do."""


def quote(name: str) -> str:
    """`name` as a Postgres identifier (roles and databases never come from data)."""
    return '"' + name.replace('"', '""') + '"'


def ensure_login_role(conn: Connection, role: str, password: str | None) -> None:
    """Create the login role if it is missing; set its password when one is given.

    `conn` is a superuser's (or CREATEROLE) connection in autocommit mode.
    """
    if not conn.execute(text(sql.load("warehouse/role_exists")), {"role": role}).scalar():
        conn.exec_driver_sql(f"CREATE ROLE {quote(role)} LOGIN")
    if password:
        # Bound, not spliced: the password never appears in the SQL text or the logs.
        conn.exec_driver_sql(f"ALTER ROLE {quote(role)} PASSWORD %(p)s", {"p": password})


def ensure_owned_database(conn: Connection, database: str, owner: str) -> bool:
    """Create `database` owned by `owner` if missing, and let nobody else connect to it.

    True when it was created. A database that exists with another owner is an error, not
    silently taken over: its tables would stay the other role's.
    """
    found = conn.execute(
        text(sql.load("warehouse/database_owner")), {"database": database}
    ).scalar()
    if found is None:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(database)} OWNER {quote(owner)}")
    elif found != owner:
        raise RoleError(
            f"database {database!r} exists, owned by {found!r}, not by its role {owner!r}: "
            f"drop it (DROP DATABASE {quote(database)}) to let the set-up create it again, "
            f"or give it and its tables to {owner!r}"
        )
    # The owner keeps its rights; PUBLIC (every other role, the analyst too) loses CONNECT
    # and TEMPORARY, which it has by default.
    conn.exec_driver_sql(f"REVOKE ALL ON DATABASE {quote(database)} FROM PUBLIC")
    return found is None


@dataclass(frozen=True)
class AnalystLimits:
    """What bounds one analyst's use of the warehouse (see `Settings`)."""

    statement_timeout_s: int = 60
    idle_in_transaction_timeout_s: int = 60
    connection_limit: int = 10


def limit_analyst(conn: Connection, role: str, limits: AnalystLimits) -> None:
    """The analyst role's own settings: timeouts, connection limit, search path.

    Role settings apply at each new session; a superuser's connection is needed. Only what
    differs is changed: two set-ups altering one role at once fail ("tuple concurrently
    updated"), and every test session runs one.
    """
    name = quote(role)
    current_limit, current = conn.execute(
        text(sql.load("warehouse/role_settings")), {"role": role}
    ).one()
    if current_limit != limits.connection_limit:
        conn.exec_driver_sql(f"ALTER ROLE {name} CONNECTION LIMIT {int(limits.connection_limit)}")
    wanted = {
        # A runaway query holds its locks (and a CPU) until it ends; an open transaction
        # left idle holds them for ever, blocking the ETL's partition DDL.
        "statement_timeout": f"{int(limits.statement_timeout_s)}s",
        "idle_in_transaction_session_timeout": f"{int(limits.idle_in_transaction_timeout_s)}s",
        # Unqualified names mean the views; nothing else is readable anyway.
        "search_path": "analytics",
    }
    for setting, value in wanted.items():
        if f"{setting}={value}" not in current:
            conn.exec_driver_sql(f"ALTER ROLE {name} SET {setting} = '{value}'")


def harden_warehouse(conn: Connection, database: str, etl: str, analyst: str) -> None:
    """Inside the warehouse database (`conn` is a superuser's on it, autocommit): only the
    ETL role takes advisory locks, nobody else creates large objects or temporary tables,
    and only the ETL (its owner) and the analyst may connect."""
    rows = conn.execute(text(sql.load("warehouse/guarded_functions"))).all()
    every = ", ".join(f"pg_catalog.{signature}" for signature, _ in rows)
    advisory = ", ".join(f"pg_catalog.{signature}" for signature, is_lock in rows if is_lock)
    # Function privileges live in each database's catalog: this touches the warehouse only.
    conn.exec_driver_sql(f"REVOKE EXECUTE ON FUNCTION {every} FROM PUBLIC")
    conn.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION {advisory} TO {quote(etl)}")
    conn.exec_driver_sql(f"REVOKE ALL ON DATABASE {quote(database)} FROM PUBLIC")
    conn.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {quote(database)} TO {quote(analyst)}")
