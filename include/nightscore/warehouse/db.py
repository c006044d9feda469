"""Connections, database and role set-up, and migrations for the warehouse."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import URL

from nightscore import sql
from nightscore.config import Settings, SettingsError, load_settings, sqlalchemy_url
from nightscore.errors import InfrastructureError
from nightscore.warehouse.roles import (
    ANALYST_ROLE,
    AnalystLimits,
    ensure_login_role,
    harden_warehouse,
    limit_analyst,
    quote,
)

__all__ = ["ANALYST_ROLE", "WarehouseError", "engine_for", "ensure_database", "upgrade"]
log = logging.getLogger(__name__)
_HERE = Path(__file__).resolve().parent


class WarehouseError(InfrastructureError):
    """The warehouse cannot be reached or set up; the message says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__("warehouse", message)


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)


def engine_for(settings: Settings | None = None) -> Engine:
    """The SQLAlchemy engine of the warehouse (as the ETL role)."""
    settings = settings or load_settings()
    return _engine(settings.warehouse_sqlalchemy_url)


def analyst_url(settings: Settings) -> URL:
    """The warehouse as the read-only analyst role (its password: NIGHTSCORE_ANALYST_PASSWORD)."""
    password = settings.analyst_password
    return make_url(settings.warehouse_sqlalchemy_url).set(
        username=ANALYST_ROLE, password=password.get_secret_value() if password else None
    )


def admin_url(settings: Settings) -> URL:
    """A superuser URL on the warehouse's server: NIGHTSCORE_ADMIN_URL, else user postgres."""
    if settings.admin_url:
        return make_url(sqlalchemy_url(settings.admin_url))
    url = make_url(settings.warehouse_sqlalchemy_url)
    return url.set(username="postgres", password=None, database="postgres")


def ensure_database(settings: Settings) -> None:
    """Create the ETL and analyst roles and the warehouse database if they are missing,
    and set what each may do (`nightscore.warehouse.roles`).

    The ETL role (the warehouse URL's user) owns the database and so every schema in it;
    the analyst role may connect and, after the migrations, read `analytics` only.
    """
    url = make_url(settings.warehouse_sqlalchemy_url)
    etl, database = url.username, url.database
    if not etl or not database:
        raise SettingsError(f"NIGHTSCORE_WAREHOUSE_URL needs a user and a database: {url!r}")
    admin = admin_url(settings)
    limits = AnalystLimits(
        statement_timeout_s=settings.analyst_statement_timeout_s,
        idle_in_transaction_timeout_s=settings.analyst_idle_in_transaction_timeout_s,
        connection_limit=settings.analyst_connection_limit,
    )
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            ensure_login_role(conn, etl, url.password)
            analyst = settings.analyst_password
            ensure_login_role(conn, ANALYST_ROLE, analyst.get_secret_value() if analyst else None)
            limit_analyst(conn, ANALYST_ROLE, limits)
            found = conn.execute(
                text(sql.load("warehouse/database_exists")), {"database": database}
            ).scalar()
            if not found:
                conn.exec_driver_sql(f"CREATE DATABASE {quote(database)} OWNER {quote(etl)}")
        engine.dispose()
        engine = create_engine(admin.set(database=database), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            harden_warehouse(conn, database, etl=etl, analyst=ANALYST_ROLE)
        engine.dispose()
    except Exception as exc:  # admin access is optional when the database already exists
        log.warning("could not create or harden the warehouse as admin (%s); carrying on", exc)
        try:
            with engine_for(settings).connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            raise WarehouseError(
                f"cannot set up the warehouse {url.render_as_string(hide_password=True)}: "
                f"{exc}. Set NIGHTSCORE_ADMIN_URL to a superuser URL, or create the "
                f"database and roles yourself."
            ) from exc


def current_revision(settings: Settings | None = None) -> str | None:
    with engine_for(settings).connect() as conn:
        if not conn.execute(text(sql.load("warehouse/has_version_table"))).scalar():
            return None
        return conn.execute(text(sql.load("warehouse/revision"))).scalar()


def upgrade(settings: Settings | None = None, revision: str = "head") -> dict[str, object]:
    """Create what is missing, migrate to `revision`, write the data dictionary's comments
    (`nightscore.warehouse.dictionary`), and load the reference tables.

    Returns the revision reached and the reference tables' row counts."""
    from alembic import command
    from alembic.config import Config

    from nightscore.warehouse import dictionary, reference

    settings = settings or load_settings()
    ensure_database(settings)
    config = Config(str(_HERE / "alembic.ini"))
    with engine_for(settings).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        # After every upgrade, not in one migration: a later migration that recreates a
        # view drops its comments, and the next upgrade writes them back.
        dictionary.write(conn)
    counts = reference.load(engine_for(settings))
    return {"revision": current_revision(settings), "reference_rows": counts}
