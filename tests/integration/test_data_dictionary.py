"""The data dictionary: every analytics view and column has a comment in the catalog, the
file names nothing that does not exist, the comments come back after a migration that
recreates a view (and a migration's own comments stay), and docs/data-dictionary.md is
what `nightscore dictionary` prints on a freshly migrated warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from nightscore import cli
from nightscore.warehouse import dictionary, upgrade
from nightscore.warehouse.db import analyst_url, engine_for
from nightscore.warehouse.dictionary import DictionaryError, Entry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "docs" / "data-dictionary.md"


def _as_analyst(settings) -> list[dictionary.Relation]:
    engine = create_engine(analyst_url(settings))
    try:
        with engine.connect() as conn:
            return dictionary.read(conn)
    finally:
        engine.dispose()


def test_every_analytics_view_and_column_has_a_comment(warehouse):
    relations = _as_analyst(warehouse)
    # 13 views, 176 columns: a new view the analyst cannot read would be missing here.
    assert len(relations) >= 13
    assert sum(len(r.columns) for r in relations) >= 176
    assert dictionary.undocumented(relations) == [], (
        "give these a comment in include/nightscore/warehouse/dictionary.yaml "
        "(or in their migration)"
    )


def test_a_column_without_a_comment_is_found(warehouse):
    """The control of the test above: it can fail."""
    with engine_for(warehouse).connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(text("COMMENT ON COLUMN analytics.flights.carrier IS NULL"))
            conn.execute(text("COMMENT ON VIEW analytics.weather IS NULL"))
            bare = dictionary.undocumented(dictionary.read(conn))
        finally:
            transaction.rollback()
    assert bare == ["analytics.flights.carrier", "analytics.weather"]


def test_the_dictionary_names_only_what_exists(warehouse):
    assert dictionary.unknown(dictionary.load(), _as_analyst(warehouse)) == []


def test_an_entry_that_does_not_exist_is_reported_and_skipped(warehouse):
    entries = [
        Entry("flights", "Flights.", {"carrier": "The airline.", "gate": "No such column."}),
        Entry("runways", "No such view.", {"length": "No such column."}),
    ]
    with engine_for(warehouse).connect() as conn:
        transaction = conn.begin()
        try:
            stale = dictionary.write(conn, entries)
            flights = next(r for r in dictionary.read(conn) if r.name == "flights")
        finally:
            transaction.rollback()
    assert stale == ["analytics.flights.gate", "analytics.runways"]
    assert flights.comment == "Flights."
    assert flights.columns[1].name == "carrier"
    assert flights.columns[1].comment == "The airline."


def test_comments_survive_a_migration_that_recreates_a_view(fresh_warehouse):
    """A later migration drops and recreates `tonight` (its comments go with it) and
    adds a column to `scoring_runs` with a comment of its own, which the file does not
    know. The next upgrade writes the file's comments back and leaves the new one."""
    migration = """
    DROP VIEW analytics.tonight;
    CREATE VIEW analytics.tonight AS
    SELECT * FROM analytics.predictions WHERE service_date = current_date;
    CREATE OR REPLACE VIEW analytics.scoring_runs AS
    SELECT scoring_run_id, service_date, model_name, model_version, partitions, status, rows,
           started_at, finished_at, duration_s, airflow_run_id, error, threshold
    FROM scoring.runs;
    COMMENT ON COLUMN analytics.scoring_runs.threshold IS 'Set by the migration.';
    """
    with engine_for(fresh_warehouse).begin() as conn:
        conn.exec_driver_sql(migration)
    bare = dictionary.undocumented(_as_analyst(fresh_warehouse))
    assert "analytics.tonight" in bare and "analytics.tonight.risk" in bare  # the control

    upgrade(fresh_warehouse)

    relations = {r.name: r for r in _as_analyst(fresh_warehouse)}
    assert dictionary.undocumented(list(relations.values())) == []
    expected = {e.name: e for e in dictionary.load()}
    assert relations["tonight"].comment == expected["tonight"].comment
    assert {c.name: c.comment for c in relations["tonight"].columns} == expected["tonight"].columns
    runs = {c.name: c.comment for c in relations["scoring_runs"].columns}
    assert runs["threshold"] == "Set by the migration."
    assert runs["rows"] == expected["scoring_runs"].columns["rows"]


def test_writing_twice_changes_nothing(warehouse):
    before = _as_analyst(warehouse)
    with engine_for(warehouse).begin() as conn:
        assert dictionary.write(conn) == []
    assert _as_analyst(warehouse) == before


def test_the_checked_in_data_dictionary_is_what_the_command_prints(warehouse, capsys, monkeypatch):
    """docs/data-dictionary.md cannot go stale: `make dictionary` regenerates it."""
    monkeypatch.setattr("nightscore.config.load_settings", lambda: warehouse)
    assert cli.main(["dictionary"]) == 0
    printed = capsys.readouterr().out
    assert "| `risk` | real | The model's probability" in printed
    assert printed == CHECKED_IN.read_text(), (
        "docs/data-dictionary.md is stale: run `make dictionary`"
    )


def test_the_command_says_why_it_cannot_read_the_warehouse(warehouse, capsys, monkeypatch):
    missing = warehouse.warehouse_url.rsplit("/", 1)[0] + "/nightscore_no_such_database"
    monkeypatch.setattr(
        "nightscore.config.load_settings", lambda: warehouse.replace(warehouse_url=missing)
    )
    assert cli.main(["dictionary"]) == 7  # ExitCode.UNAVAILABLE
    error = capsys.readouterr().err
    assert "cannot read the warehouse as nightscore_analyst" in error
    assert 'database "nightscore_no_such_database" does not exist' in error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "expected a mapping"),
        ("flights:\n  comment: x\n", "needs exactly 'comment' and 'columns'"),
        ("flights:\n  comment: x\n  columns: {}\n", "'columns' must map"),
        ("flights:\n  comment: '  '\n  columns: {a: b}\n", "analytics.flights: needs a non-empty"),
        ("flights:\n  comment: x\n  columns: {a: 3}\n", "analytics.flights.a: needs a non-empty"),
    ],
)
def test_a_malformed_dictionary_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "dictionary.yaml"
    path.write_text(content)
    with pytest.raises(DictionaryError, match=message):
        dictionary.load(path)
