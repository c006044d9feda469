"""Nightly scoring: the champion scores service date S into `scoring.predictions`.

The data path is built for large nights with bounded memory:

1. the feature query runs in the warehouse and is COPYed out to a temporary file;
2. the file is read back in chunks; each chunk is encoded, scored, and COPYed into the
   predictions table;
3. all of it inside one transaction that holds an advisory lock on (S, model), after
   deleting S's previous rows for that model. A failure anywhere rolls back: the
   previous predictions stay as they were, and two runs for S never interleave.

A night can also be split into K partitions scored by mapped Airflow tasks: `plan`
records the run and pins the model version, each `score_partition` writes its share to
`scoring.staged_predictions`, and `publish` moves the run's rows in one transaction.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from nightscore.config import Settings
from nightscore.features import (
    FEATURES,
    KEY_COLUMNS,
    PLANNER_SETTINGS,
    feature_params,
    feature_sql,
    typed_features,
)

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.registry import LoadedModel

logger = logging.getLogger(__name__)

CHUNK_ROWS = 100_000
PREDICTION_COLUMNS = (
    "service_date",
    "carrier",
    "flight",
    "origin",
    "model_name",
    "model_version",
    "mlflow_run_id",
    "score",
    "label",
    "threshold",
    "scored_at",
    "airflow_run_id",
    "scoring_run_id",
)


class ScoringError(RuntimeError):
    """Scoring cannot go ahead: no champion, a model that does not fit the features, ..."""


@dataclass(frozen=True)
class ScoringResult:
    scoring_run_id: int
    service_date: date
    model_name: str
    model_version: int
    rows: int
    seconds: float

    @property
    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0
        return (
            f"scored {self.rows:,} flights of {self.service_date} with {self.model_name} "
            f"v{self.model_version} in {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        )


# --- the model ----------------------------------------------------------------------------


def check_signature(model: LoadedModel) -> None:
    """The model must take exactly the features the builder makes, in its order."""
    expected = list(FEATURES)
    declared = model.signature_inputs or model.features
    if declared != expected or model.features != expected:
        missing = [c for c in declared if c not in expected]
        extra = [c for c in expected if c not in declared]
        raise ScoringError(
            f"{model.name} v{model.version} does not match the feature builder: its signature "
            f"has {len(declared)} inputs, the builder makes {len(expected)}"
            + (f"; unknown to the builder: {', '.join(missing)}" if missing else "")
            + (f"; not in the model: {', '.join(extra)}" if extra else "")
            + (
                "; same columns in another order"
                if not missing and not extra and declared != expected
                else ""
            )
            + ". Retrain (the retrain DAG) so the champion matches the current features."
        )


def champion(settings: Settings) -> LoadedModel:
    from nightscore import registry

    try:
        registry.check_server(settings)
        model = registry.load_model(settings, alias=registry.CHAMPION)
    except (registry.NoChampionError, registry.RegistryError) as exc:
        raise ScoringError(str(exc)) from None
    check_signature(model)
    return model


def pinned_version(settings: Settings, version: int) -> LoadedModel:
    from nightscore import registry

    model = registry.load_version(settings, version)
    check_signature(model)
    return model


# --- reading features, writing predictions --------------------------------------------------


def _copy_sql(conn: Connection, sql: str, params: dict[str, Any]) -> str:
    """The feature query with its parameters bound by psycopg2, as COPY takes none."""
    import re

    from nightscore.warehouse.io import _cursor

    pyformat = re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql.replace("%", "%%"))
    return _cursor(conn).mogrify(pyformat, params).decode()


PARTITION_FILTER = """
SELECT * FROM ({query}) night_features
WHERE mod(abs(hashtext(carrier || ':' || flight || ':' || origin)), {parts}) = {part}
"""


def feature_chunks(
    conn: Connection,
    service_date: date,
    *,
    part: int = 0,
    parts: int = 1,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """S's feature rows in chunks: COPY out to a temporary file, then read it back.

    Memory holds one chunk at a time; the file is on disk and removed afterwards.
    """
    import pandas as pd

    from nightscore.warehouse.io import _cursor

    params = feature_params(service_date, service_date)
    # Predictions need no order: the unordered query skips a sort of the whole night.
    query = _copy_sql(conn, feature_sql(ordered=False), params).strip().rstrip(";")
    if parts > 1:
        query = PARTITION_FILTER.format(query=query, parts=int(parts), part=int(part))
    cursor = _cursor(conn)
    for statement in PLANNER_SETTINGS:
        cursor.execute(statement)
    with tempfile.TemporaryFile(mode="w+b") as spool:
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", spool)
        spool.seek(0)
        reader = pd.read_csv(
            spool,
            chunksize=chunk_rows,
            dtype={"carrier": str, "origin": str, "dest": str, "disrupted": "Int8"},
        )
        for chunk in reader:
            yield typed_features(chunk)


def run_columns(
    model: LoadedModel, *, scoring_run_id: int, scored_at: datetime, airflow_run_id: str | None
) -> dict[str, Any]:
    """The prediction columns that are the same on every row of a scoring run."""
    import pandas as pd

    return {
        "model_name": model.name,
        "model_version": model.version,
        "mlflow_run_id": model.run_id,
        "threshold": model.threshold,
        "scored_at": pd.Timestamp(scored_at).isoformat(),
        "airflow_run_id": airflow_run_id,
        "scoring_run_id": scoring_run_id,
    }


def scores_frame(features: pd.DataFrame, model: LoadedModel) -> pd.DataFrame:
    """The prediction columns that vary by flight: its key, score and label."""
    scores = model.predict(features)
    frame = features[list(KEY_COLUMNS)].copy()
    frame["score"] = scores.astype("float32")
    frame["label"] = scores >= model.threshold
    return frame


def predictions_frame(
    features: pd.DataFrame,
    model: LoadedModel,
    *,
    scoring_run_id: int,
    scored_at: datetime,
    airflow_run_id: str | None,
) -> pd.DataFrame:
    """Every prediction column (PREDICTION_COLUMNS), one row per flight."""
    run = run_columns(
        model, scoring_run_id=scoring_run_id, scored_at=scored_at, airflow_run_id=airflow_run_id
    )
    return scores_frame(features, model).assign(**run)[list(PREDICTION_COLUMNS)]


def _copy_predictions(
    conn: Connection, table: str, scores: pd.DataFrame, run: dict[str, Any]
) -> int:
    """COPY `scores_frame` rows with the run's columns into `table`.

    The run's columns are formatted once and appended to every CSV line: written by
    `to_csv`, they would be formatted again on every row (seconds per million).
    """
    import csv
    import io

    from nightscore.warehouse.io import _cursor, _ident

    tail = io.StringIO()
    csv.writer(tail, lineterminator="\n").writerow(["", *run.values()])  # "" gives the comma
    lines = scores.to_csv(index=False, header=False, lineterminator="\n")
    columns = ", ".join(_ident(c) for c in [*scores.columns, *run])
    _cursor(conn).copy_expert(
        f"COPY {_ident(table)} ({columns}) FROM STDIN WITH (FORMAT csv)",
        io.StringIO(lines.replace("\n", tail.getvalue())),
    )
    return len(scores)


def ensure_partition(conn: Connection, service_date: date) -> str:
    """The monthly partition that holds `service_date`, created if it does not exist."""
    first = service_date.replace(day=1)
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    name = f"scoring.predictions_{first:%Y_%m}"
    # Two first nights of a month at once: one creates, the other waits and finds it.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('scoring.partitions'))"))
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF scoring.predictions "
        f"FOR VALUES FROM ('{first}') TO ('{after}')"
    )
    return name


def _clear_night(conn: Connection, service_date: date, model_name: str) -> None:
    """Take the night's lock (a second run waits here), then delete its rows for the model,
    in the caller's transaction: they stay visible to others until the new ones commit."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
        {"k": f"score:{service_date}:{model_name}"},
    )
    ensure_partition(conn, service_date)
    conn.execute(
        text("DELETE FROM scoring.predictions WHERE service_date = :d AND model_name = :m"),
        {"d": service_date, "m": model_name},
    )


# --- scoring runs ---------------------------------------------------------------------------


def _start_run(
    conn: Connection, service_date: date, model: LoadedModel, parts: int, airflow_run_id: str | None
) -> int:
    return conn.execute(
        text(
            """
            INSERT INTO scoring.runs (service_date, model_name, model_version, mlflow_run_id,
                                      threshold, partitions, airflow_run_id)
            VALUES (:d, :m, :v, :r, :t, :k, :a) RETURNING scoring_run_id
            """
        ),
        {
            "d": service_date,
            "m": model.name,
            "v": model.version,
            "r": model.run_id,
            "t": model.threshold,
            "k": parts,
            "a": airflow_run_id,
        },
    ).scalar_one()


def _finish_run(engine: Any, run_id: int, status: str, rows: int | None, error: str | None):
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                UPDATE scoring.runs
                SET status = :s, rows = :n, error = :e, finished_at = clock_timestamp(),
                    duration_s = extract(epoch FROM clock_timestamp() - started_at)
                WHERE scoring_run_id = :id
                """
            ),
            {"s": status, "n": rows, "e": error, "id": run_id},
        )


def _register_run(settings: Settings, service_date, model, parts, airflow_run_id) -> int:
    from nightscore.warehouse.db import engine_for

    with engine_for(settings).begin() as conn:
        return _start_run(conn, service_date, model, parts, airflow_run_id)


def _alert(settings: Settings, service_date: date, reason: str, error: str) -> None:
    from nightscore.monitoring.outbox import raise_alert
    from nightscore.warehouse.db import engine_for

    try:
        with engine_for(settings).begin() as conn:
            raise_alert(
                conn,
                rule=f"scoring_{reason}",
                severity="critical",
                service_date=service_date,
                subject=f"Scoring of {service_date} failed: {reason.replace('_', ' ')}",
                body=error,
                dedup_key=f"scoring_{reason}:{service_date}",
            )
    except Exception:  # the failure itself must still surface
        logger.warning("could not queue the scoring alert", exc_info=True)


def score(
    service_date: date,
    settings: Settings,
    *,
    airflow_run_id: str | None = None,
    model: LoadedModel | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[str], None] = logger.info,
) -> ScoringResult:
    """Score S with the champion (or `model`) and replace S's predictions atomically."""
    from nightscore.warehouse.db import engine_for

    if model is None:
        try:
            model = champion(settings)
        except ScoringError as exc:
            _alert(settings, service_date, "no_usable_champion", str(exc))
            raise
    engine = engine_for(settings)
    run_id = _register_run(settings, service_date, model, 1, airflow_run_id)
    started = time.monotonic()
    run = run_columns(
        model,
        scoring_run_id=run_id,
        scored_at=datetime.now().astimezone(),
        airflow_run_id=airflow_run_id,
    )
    rows = 0
    try:
        with engine.begin() as conn:
            _clear_night(conn, service_date, model.name)
            for chunk in feature_chunks(conn, service_date, chunk_rows=chunk_rows):
                rows += _copy_predictions(
                    conn, "scoring.predictions", scores_frame(chunk, model), run
                )
                progress(f"  {rows:,} rows scored")
            if rows == 0:
                raise ScoringError(
                    f"no flights are loaded for {service_date}: was its schedule batch "
                    "rejected or not loaded yet? Nothing was changed."
                )
    except Exception as exc:
        _finish_run(engine, run_id, "failed", None, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    seconds = time.monotonic() - started
    _finish_run(engine, run_id, "succeeded", rows, None)
    return ScoringResult(run_id, service_date, model.name, model.version, rows, seconds)


# --- the same, split into K partitions (dynamic task mapping) -------------------------------


def plan(
    service_date: date, settings: Settings, parts: int, *, airflow_run_id: str | None = None
) -> dict[str, Any]:
    """Record a partitioned run and pin the champion's version for all its partitions."""
    if parts < 1:
        raise ValueError(f"the number of partitions must be at least 1, not {parts}")
    try:
        model = champion(settings)
    except ScoringError as exc:
        _alert(settings, service_date, "no_usable_champion", str(exc))
        raise
    run_id = _register_run(settings, service_date, model, parts, airflow_run_id)
    return {
        "scoring_run_id": run_id,
        "service_date": service_date.isoformat(),
        "model_version": model.version,
        "parts": parts,
    }


def score_partition(
    planned: dict[str, Any],
    part: int,
    settings: Settings,
    *,
    airflow_run_id: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Score one partition into the staging table; re-running it replaces its rows."""
    from nightscore.warehouse.db import engine_for

    service_date = date.fromisoformat(planned["service_date"])
    model = pinned_version(settings, planned["model_version"])
    run_id = planned["scoring_run_id"]
    run = run_columns(
        model,
        scoring_run_id=run_id,
        scored_at=datetime.now().astimezone(),
        airflow_run_id=airflow_run_id,
    )
    rows = 0
    with engine_for(settings).begin() as conn:
        conn.execute(
            text(
                "DELETE FROM scoring.staged_predictions WHERE scoring_run_id = :id "
                "AND mod(abs(hashtext(carrier || ':' || flight || ':' || origin)), :k) = :p"
            ),
            {"id": run_id, "k": planned["parts"], "p": part},
        )
        for chunk in feature_chunks(
            conn, service_date, part=part, parts=planned["parts"], chunk_rows=chunk_rows
        ):
            rows += _copy_predictions(
                conn, "scoring.staged_predictions", scores_frame(chunk, model), run
            )
    return rows


def publish(planned: dict[str, Any], settings: Settings) -> ScoringResult:
    """Replace S's predictions with the run's staged rows, in one transaction."""
    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    service_date = date.fromisoformat(planned["service_date"])
    run_id = planned["scoring_run_id"]
    try:
        with engine.begin() as conn:
            model_name = conn.execute(
                text("SELECT model_name FROM scoring.runs WHERE scoring_run_id = :id"),
                {"id": run_id},
            ).scalar_one()
            _clear_night(conn, service_date, model_name)
            rows = conn.execute(
                text(
                    "INSERT INTO scoring.predictions SELECT * FROM scoring.staged_predictions "
                    "WHERE scoring_run_id = :id"
                ),
                {"id": run_id},
            ).rowcount
            if rows == 0:
                raise ScoringError(
                    f"scoring run {run_id} staged no rows for {service_date}; nothing was changed"
                )
            conn.execute(
                text("DELETE FROM scoring.staged_predictions WHERE scoring_run_id = :id"),
                {"id": run_id},
            )
            duration = conn.execute(
                text(
                    "SELECT extract(epoch FROM clock_timestamp() - started_at) "
                    "FROM scoring.runs WHERE scoring_run_id = :id"
                ),
                {"id": run_id},
            ).scalar_one()
    except Exception as exc:
        _finish_run(engine, run_id, "failed", None, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _finish_run(engine, run_id, "succeeded", rows, None)
    return ScoringResult(
        run_id, service_date, model_name, planned["model_version"], rows, float(duration)
    )
