"""A truncated schedule never costs the loaded night: it is held, recorded, alerted, and
loads only when applied on purpose (real Postgres)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from nightscore.cli import main
from nightscore.errors import DataError
from nightscore.ingest import BatchHeld, IngestError, ingest, load, ready_to_ingest, validate
from nightscore.landing import Landing, replay_parts
from nightscore.warehouse.db import engine_for

# Slow: whole nights validated and loaded, then held and applied.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def rows(settings, sql, **params):
    with engine_for(settings).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def digest(settings, table, day):
    return rows(
        settings,
        f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) AS d FROM {table} t "
        "WHERE service_date = :d",
        d=day,
    )[0]["d"]


def truncated(day, keep):
    """The day's schedule batch with only the first `keep` share of its flights."""
    parts = replay_parts("schedule", day)
    flights = parts["flights"]
    return {**parts, "flights": flights.head(int(len(flights) * keep))}


def held_alerts(settings, day):
    return rows(
        settings,
        "SELECT severity, body FROM monitoring.alerts WHERE rule = 'batch_held' "
        "AND service_date = :d",
        d=day,
    )


def test_a_truncated_night_is_held_until_applied_on_purpose(warehouse, monkeypatch):
    day = date(2013, 8, 21)
    landing = Landing(warehouse.landing_root)
    landing.write_batch("schedule", day, replay_parts("schedule", day))
    loaded = ingest("schedule", day, settings=warehouse)
    night = len(replay_parts("schedule", day)["flights"])
    before = {t: digest(warehouse, t, day) for t in ("core.flights", "core.weather")}

    landing.write_batch("schedule", day, truncated(day, 0.5))
    with pytest.raises(BatchHeld) as held:
        ingest("schedule", day, settings=warehouse)
    message = str(held.value)
    assert isinstance(held.value, DataError) and not held.value.retryable
    assert f"{night // 2:,} incoming rows vs {night:,} loaded" in message
    assert "NIGHTSCORE_HOLD_BELOW_SHARE=0.9" in message
    assert "--apply-held" in message and '"apply_held": true' in message

    # Nothing of the loaded night was touched.
    assert {t: digest(warehouse, t, day) for t in before} == before
    ledger = rows(
        warehouse,
        "SELECT batch_id, status, rows, error, validation->'hold' AS hold, applied_by "
        "FROM ops.batches WHERE kind = 'schedule' AND service_date = :d ORDER BY batch_id",
        d=day,
    )
    assert [b["status"] for b in ledger] == ["loaded", "held"]
    hold = ledger[1]["hold"]
    assert hold["severity"] == "critical" and hold["threshold"] == 0.9
    assert hold["parts"] == [{"part": "flights", "loaded_rows": night, "incoming_rows": night // 2}]
    assert ledger[1]["applied_by"] is None and "held" in ledger[1]["error"]
    alerts = held_alerts(warehouse, day)
    assert [a["severity"] for a in alerts] == ["critical"]
    assert f"{night:,} loaded" in alerts[0]["body"]

    # The load step refuses the held batch too; outcomes need not wait for it.
    with pytest.raises(IngestError, match="is held"):
        load("schedule", day, settings=warehouse)
    assert ready_to_ingest("outcomes", day, warehouse) is False  # not landed yet
    Landing(warehouse.landing_root).write_batch("outcomes", day, replay_parts("outcomes", day))
    assert ready_to_ingest("outcomes", day, warehouse) is True

    # A re-run without the flag keeps holding: same ledger row, no second alert.
    with pytest.raises(BatchHeld):
        validate("schedule", day, settings=warehouse)
    assert len(held_alerts(warehouse, day)) == 1
    assert (
        rows(
            warehouse,
            "SELECT count(*) AS n FROM ops.batches WHERE service_date = :d AND status = 'held'",
            d=day,
        )[0]["n"]
        == 1
    )
    assert {t: digest(warehouse, t, day) for t in before} == before

    # Applied on purpose, from the CLI: loaded, and the ledger says who and how.
    monkeypatch.setenv("NIGHTSCORE_WAREHOUSE_URL", warehouse.warehouse_url)
    monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", warehouse.admin_url)
    monkeypatch.setenv("NIGHTSCORE_LANDING_ROOT", warehouse.landing_root)
    monkeypatch.setenv("NIGHTSCORE_DATA_DOCS_ROOT", warehouse.data_docs_root)
    assert main(["ingest", "schedule", "--service-date", day.isoformat()]) == 6  # held
    assert main(["ingest", "schedule", "--service-date", day.isoformat(), "--apply-held"]) == 0
    applied = rows(
        warehouse,
        "SELECT status, applied_by, validation->'hold' AS hold FROM ops.batches "
        "WHERE batch_id = :b",
        b=ledger[1]["batch_id"],
    )[0]
    assert applied["status"] == "loaded" and applied["applied_by"].startswith("cli:")
    assert applied["hold"]["parts"][0]["incoming_rows"] == night // 2
    count = rows(
        warehouse, "SELECT count(*) AS n FROM core.flights WHERE service_date = :d", d=day
    )[0]["n"]
    assert count == night // 2 and loaded.batch_id != ledger[1]["batch_id"]
    assert len(held_alerts(warehouse, day)) == 1


def test_a_batch_just_above_the_threshold_loads_and_a_new_day_is_never_held(warehouse):
    day = date(2013, 8, 22)
    landing = Landing(warehouse.landing_root)
    landing.write_batch("schedule", day, truncated(day, 0.5))
    ingest("schedule", day, settings=warehouse)  # nothing loaded before: not held
    landing.write_batch("schedule", day, truncated(day, 0.46))  # 92 % of the loaded half
    result = ingest("schedule", day, settings=warehouse)
    assert result.status == "loaded" and held_alerts(warehouse, day) == []
    # Control: the same shrink under a stricter threshold is held.
    strict = warehouse.model_copy(update={"hold_below_share": 0.95})
    landing.write_batch("schedule", day, truncated(day, 0.43))
    with pytest.raises(BatchHeld, match=r"NIGHTSCORE_HOLD_BELOW_SHARE=0\.95"):
        ingest("schedule", day, settings=strict)
    assert [a["severity"] for a in held_alerts(warehouse, day)] == ["critical"]
