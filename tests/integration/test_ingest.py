"""Validated ingestion against the real warehouse: loads, idempotent re-runs, rejections."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from nightscore import links, store
from nightscore.cli import main
from nightscore.ingest import (
    BatchRejected,
    IngestError,
    ingest,
    load,
    load_history,
    ready_to_ingest,
    record_missing,
    validate,
)
from nightscore.landing import Landing, replay_parts
from nightscore.warehouse.db import engine_for

pytestmark = pytest.mark.integration
# Marked slow: the tests that validate and load whole days, over about 3 s each on
# 2 cores (`make test-fast` keeps the others).


def land(settings, kind, day, parts=None):
    landing = Landing(settings.landing_root)
    return landing.write_batch(kind, day, parts or replay_parts(kind, day))


def docs_page(settings, url: str) -> str:
    """The Data Docs page a recorded link opens, read from the store where it points."""
    prefix = f"{settings.airflow_link_base}{links.FILES_PREFIX}/data_docs/"
    assert url.startswith(prefix), url
    return store.read_text(links.resolve(settings, "data_docs", url.removeprefix(prefix)))


def scalar(settings, sql, **params):
    with engine_for(settings).connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def table_digest(settings, table, day):
    """A fingerprint of a day's rows, to compare before and after a re-run."""
    return scalar(
        settings,
        f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t WHERE service_date = :d",
        d=day,
    )


@pytest.mark.slow
def test_a_day_loads_whole_and_reruns_leave_identical_rows(warehouse):
    day = date(2013, 4, 2)
    land(warehouse, "schedule", day)
    land(warehouse, "outcomes", day)
    first = ingest("schedule", day, settings=warehouse)
    ingest("outcomes", day, settings=warehouse)
    expected = len(replay_parts("schedule", day)["flights"])
    assert first.rows == expected + len(replay_parts("schedule", day)["weather"])
    assert (
        scalar(warehouse, "SELECT count(*) FROM core.flights WHERE service_date = :d", d=day)
        == expected
    )
    assert (
        scalar(warehouse, "SELECT count(*) FROM core.outcomes WHERE service_date = :d", d=day)
        == expected
    )

    digests = {
        t: table_digest(warehouse, t, day)
        for t in ("core.flights", "core.weather", "core.outcomes")
    }
    ingest("schedule", day, settings=warehouse)
    ingest("outcomes", day, settings=warehouse)
    assert {t: table_digest(warehouse, t, day) for t in digests} == digests
    assert (
        scalar(warehouse, "SELECT count(*) FROM ops.batches WHERE service_date = :d", d=day) == 2
    ), "re-running the same files must not add ledger rows"
    assert (
        scalar(
            warehouse,
            "SELECT string_agg(status, ',' ORDER BY kind) FROM ops.batches WHERE service_date = :d",
            d=day,
        )
        == "loaded,loaded"
    )


@pytest.mark.slow
def test_a_corrected_batch_replaces_the_days_rows(warehouse):
    day = date(2013, 4, 9)
    land(warehouse, "schedule", day)
    ingest("schedule", day, settings=warehouse)
    parts = replay_parts("schedule", day)
    parts["flights"] = parts["flights"].iloc[:-5]  # upstream withdrew five flights
    land(warehouse, "schedule", day, parts)
    ingest("schedule", day, settings=warehouse)
    count = scalar(warehouse, "SELECT count(*) FROM core.flights WHERE service_date = :d", d=day)
    assert count == len(parts["flights"])


@pytest.mark.slow
def test_a_rejected_batch_is_recorded_alerted_and_loads_nothing(warehouse):
    day = date(2013, 2, 12)  # the real data has a 1048 mph wind reading at EWR that day
    land(warehouse, "schedule", day)
    with pytest.raises(BatchRejected) as rejected:
        validate("schedule", day, settings=warehouse)
    assert "wind_speed" in rejected.value.summary
    assert "1048" in rejected.value.summary
    assert (
        scalar(
            warehouse,
            "SELECT status FROM ops.batches WHERE service_date = :d AND kind = 'schedule'",
            d=day,
        )
        == "rejected"
    )
    assert (
        scalar(warehouse, "SELECT count(*) FROM core.flights WHERE service_date = :d", d=day) == 0
    )
    assert (
        scalar(warehouse, "SELECT count(*) FROM core.weather WHERE service_date = :d", d=day) == 0
    )
    alert = scalar(
        warehouse,
        "SELECT subject FROM monitoring.alerts WHERE rule = 'batch_rejected' AND service_date = :d",
        d=day,
    )
    assert "rejected" in alert
    # A second attempt on the same file raises the same alert only once.
    with pytest.raises(BatchRejected):
        validate("schedule", day, settings=warehouse)
    assert (
        scalar(
            warehouse,
            "SELECT count(*) FROM monitoring.alerts WHERE rule = 'batch_rejected' AND service_date = :d",
            d=day,
        )
        == 1
    )
    # Loading is refused too: nothing unvalidated reaches core.
    with pytest.raises(BatchRejected):
        load("schedule", day, settings=warehouse)

    # Its outcomes refer to flights that were never loaded, so they are rejected as well.
    land(warehouse, "outcomes", day)
    with pytest.raises(BatchRejected, match="scheduled"):
        ingest("outcomes", day, settings=warehouse)


@pytest.mark.slow
def test_files_changed_after_validation_are_not_loaded(warehouse):
    day = date(2013, 4, 16)
    paths = land(warehouse, "schedule", day)
    validate("schedule", day, settings=warehouse)
    with open(paths["flights"], "a", encoding="utf-8") as handle:
        handle.write("2013-04-16,UA,9999,EWR,ORD,N12345,1200,1400,719\n")
    with pytest.raises(IngestError, match="changed after validation"):
        load("schedule", day, settings=warehouse)
    assert (
        scalar(warehouse, "SELECT count(*) FROM core.flights WHERE service_date = :d", d=day) == 0
    )


def test_a_malformed_file_is_rejected_with_a_clear_message(warehouse):
    day = date(2013, 4, 23)
    paths = land(warehouse, "schedule", day)
    raw = Path(paths["flights"]).read_bytes()
    Path(paths["flights"]).write_bytes(raw[: len(raw) - 30])  # truncated mid-line
    with pytest.raises(BatchRejected) as rejected:
        ingest("schedule", day, settings=warehouse)
    assert "flights.csv" in rejected.value.summary
    assert (
        scalar(warehouse, "SELECT count(*) FROM core.flights WHERE service_date = :d", d=day) == 0
    )


def test_a_batch_that_has_not_landed_is_reported_missing(warehouse):
    with pytest.raises(IngestError, match="has it landed"):
        validate("schedule", date(2013, 8, 30), settings=warehouse)


@pytest.mark.slow
def test_load_history_bootstraps_a_range_and_reports_progress(warehouse):
    lines = []
    result = load_history(
        date(2013, 3, 1), date(2013, 3, 3), settings=warehouse, replay=True, progress=lines.append
    )
    assert result.ok, result.summary()
    assert len(result.loaded) == 6
    assert len(lines) == 3 and lines[0].startswith("[  1/3] 2013-03-01")
    days = scalar(
        warehouse,
        "SELECT count(DISTINCT service_date) FROM core.outcomes WHERE service_date BETWEEN '2013-03-01' AND '2013-03-03'",
    )
    assert days == 3


@pytest.fixture
def cli_env(warehouse, monkeypatch):
    monkeypatch.setenv("NIGHTSCORE_WAREHOUSE_URL", warehouse.warehouse_url)
    monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", warehouse.admin_url)
    monkeypatch.setenv("NIGHTSCORE_LANDING_ROOT", warehouse.landing_root)
    monkeypatch.setenv("NIGHTSCORE_DATA_DOCS_ROOT", warehouse.data_docs_root)
    return warehouse


def test_cli_ingest_loads_and_exits_zero(cli_env, capsys):
    day = date(2013, 6, 4)
    land(cli_env, "schedule", day)
    assert main(["ingest", "schedule", "--service-date", "2013-06-04"]) == 0
    assert "rows loaded" in capsys.readouterr().out


def test_cli_ingest_rejection_exits_non_zero_with_the_summary(cli_env, capsys, tmp_path):
    day = date(2013, 6, 5)
    parts = replay_parts("schedule", day)
    parts["flights"].loc[parts["flights"].index[:3], "carrier"] = "ZZ"
    Landing(str(tmp_path)).write_batch("schedule", day, parts)
    folder = Landing(str(tmp_path)).batch_dir("schedule", day)
    rejected = main(["ingest", "schedule", "--service-date", "2013-06-05", "--path", folder])
    assert rejected == 5  # the rejected batch's exit code
    err = capsys.readouterr().err
    assert "REJECTED" in err and "carrier" in err and "ZZ" in err


@pytest.mark.slow
def test_a_schedule_that_drops_flights_with_outcomes_is_refused_whole(warehouse):
    day = date(2013, 4, 30)
    land(warehouse, "schedule", day)
    land(warehouse, "outcomes", day)
    ingest("schedule", day, settings=warehouse)
    ingest("outcomes", day, settings=warehouse)
    before = table_digest(warehouse, "core.flights", day)
    parts = replay_parts("schedule", day)
    parts["flights"] = parts["flights"].iloc[:-3]
    land(warehouse, "schedule", day, parts)
    with pytest.raises(IngestError, match="loaded outcomes refer to; nothing was changed"):
        ingest("schedule", day, settings=warehouse)
    assert table_digest(warehouse, "core.flights", day) == before


def test_outcomes_wait_until_their_schedule_is_settled(warehouse):
    day = date(2013, 5, 14)
    assert not ready_to_ingest("outcomes", day, settings=warehouse)  # nothing landed
    land(warehouse, "outcomes", day)
    assert not ready_to_ingest("outcomes", day, settings=warehouse)  # schedule not loaded
    land(warehouse, "schedule", day)
    assert ready_to_ingest("schedule", day, settings=warehouse)
    validate("schedule", day, settings=warehouse)
    assert not ready_to_ingest("outcomes", day, settings=warehouse)  # validated, not loaded
    load("schedule", day, settings=warehouse)
    assert ready_to_ingest("outcomes", day, settings=warehouse)


def test_a_missing_batch_alert_says_what_was_missing(warehouse):
    record_missing("schedule", date(2013, 9, 3), 3600, settings=warehouse)
    land(warehouse, "outcomes", date(2013, 9, 4))
    record_missing("outcomes", date(2013, 9, 4), 3600, settings=warehouse)
    with engine_for(warehouse).connect() as conn:
        subjects = dict(
            conn.execute(
                text(
                    "SELECT service_date::text, subject FROM monitoring.alerts "
                    "WHERE rule = 'batch_missing' AND service_date IN ('2013-09-03', '2013-09-04')"
                )
            ).all()
        )
    assert "did not land" in subjects["2013-09-03"]
    assert "waited in vain for its schedule" in subjects["2013-09-04"]


@pytest.mark.slow
def test_warnings_are_recorded_and_alerted_but_the_batch_loads(warehouse):
    # Two weeks of history make the trailing average; then a day with half its flights.
    load_history(
        date(2013, 10, 1),
        date(2013, 10, 14),
        settings=warehouse,
        replay=True,
        progress=lambda _: None,
    )
    day = date(2013, 10, 15)
    parts = replay_parts("schedule", day)
    parts["flights"] = parts["flights"].iloc[: len(parts["flights"]) // 3]
    land(warehouse, "schedule", day, parts)
    result = ingest("schedule", day, settings=warehouse)
    assert result.status == "loaded" and result.warnings == 1
    with engine_for(warehouse).connect() as conn:
        row = conn.execute(
            text(
                "SELECT status, warnings, data_docs_url FROM ops.batches "
                "WHERE kind = 'schedule' AND service_date = :d"
            ),
            {"d": day},
        ).one()
        alert = conn.execute(
            text(
                "SELECT severity FROM monitoring.alerts WHERE rule = 'batch_warning' AND service_date = :d"
            ),
            {"d": day},
        ).scalar_one()
    assert row.status == "loaded" and row.warnings == 1 and alert == "warning"
    assert "warning" in docs_page(warehouse, row.data_docs_url)


def test_an_unparseable_batch_still_gets_a_docs_page(warehouse):
    day = date(2013, 4, 24)
    paths = land(warehouse, "outcomes", day)
    Path(paths["outcomes"]).write_bytes(b"")
    with pytest.raises(BatchRejected, match="empty"):
        validate("outcomes", day, settings=warehouse)
    url = scalar(
        warehouse,
        "SELECT data_docs_url FROM ops.batches WHERE kind = 'outcomes' AND service_date = :d",
        d=day,
    )
    page = docs_page(warehouse, url)
    assert "rejected" in page and "empty" in page


def test_cli_replay_lands_both_batches(cli_env, capsys):
    assert main(["replay", "--start", "2013-11-02", "--end", "2013-11-03"]) == 0
    landing = Landing(cli_env.landing_root)
    assert all(
        landing.is_complete(k, date(2013, 11, d)) for k in ("schedule", "outcomes") for d in (2, 3)
    )
    assert capsys.readouterr().out.count("->") == 4
