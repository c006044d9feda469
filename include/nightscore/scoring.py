"""Nightly scoring: the champion scores service date S into `scoring.predictions`.

The data path is built for large nights with bounded memory:

1. the feature query runs in the warehouse and is COPYed out to a temporary file, on a
   connection of its own (it reads only committed tables that scoring never writes);
2. the file is read back in chunks as soon as they are written: each chunk is encoded and
   scored while the query still computes the rest, and its predictions are fed to one
   COPY into the predictions table;
3. the writes happen inside one transaction that holds an advisory lock on (S, model),
   after deleting S's previous rows for that model. A failure anywhere rolls back (and
   cancels the feature query): the previous predictions stay as they were, and two runs
   for S never interleave.

A night can also be split into K partitions scored by mapped Airflow tasks: `plan`
records the run and pins the model version, each `score_partition` writes its share to
`scoring.staged_predictions`, and `publish` moves the run's rows in one transaction.

Each prediction keeps its three strongest drivers, from the model's exact TreeSHAP
contributions (`nightscore.reasons`); `NIGHTSCORE_SCORING_REASONS=false` skips them.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from nightscore import sql
from nightscore.config import Settings
from nightscore.errors import DataError
from nightscore.features import (
    FEATURES,
    KEY_COLUMNS,
    PLANNER_SETTINGS,
    feature_params,
    feature_sql,
    typed_features,
)
from nightscore.reasons import REASON_COLUMNS, TOP, sync_words, top_reasons

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.model import LoadedModel

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


class ScoringError(DataError):
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
    from nightscore.model_files import UnsafeModelError

    # An unreachable MLflow (RegistryError) is not "no usable champion": it propagates,
    # is retried, and alerts as an MLflow outage.
    registry.check_server(settings)
    try:
        model = registry.load_model(settings, alias=registry.CHAMPION)
    except (registry.NoChampionError, UnsafeModelError) as exc:
        raise ScoringError(str(exc)) from exc
    check_signature(model)
    return model


def pinned_version(settings: Settings, version: int) -> LoadedModel:
    from nightscore import registry

    model = registry.load_version(settings, version)
    check_signature(model)
    return model


# --- reading features, writing predictions --------------------------------------------------


def feature_chunks(
    conn: Connection,
    service_date: date,
    *,
    part: int = 0,
    parts: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    scored_by: tuple[str, int] | None = None,
) -> Generator[pd.DataFrame, None, None]:
    """S's feature rows in chunks, from a COPY out that runs while they are consumed.
    With `scored_by` (model name, version), only the flights that version scored, each
    with its `score` (the evening's drift check).

    The feature query runs on a connection of its own (the same server, the same planner
    settings), so that `conn` stays free: the caller can COPY each chunk's predictions in
    while the warehouse still computes the rest of the night. The features read only
    committed tables that scoring never writes, so they are the same as in `conn`'s
    transaction. The COPY writes to a temporary file from a thread; the chunks are read
    back as soon as they are written. Memory holds one chunk at a time; the file is on
    disk and removed afterwards.
    """
    import threading

    import pandas as pd

    from nightscore.warehouse.io import bind, cursor
    from nightscore.warehouse.stream import Spool

    params = feature_params(service_date, service_date) | {"parts": parts, "part": part}
    # Predictions need no order: the unordered query skips a sort of the whole night.
    statement = feature_sql(ordered=False, partitioned=parts > 1)
    if scored_by is not None:
        statement = sql.render("monitoring/evening_rows", features=statement.strip().rstrip(";"))
        params |= {"model_name": scored_by[0], "model_version": scored_by[1]}
    query = bind(conn, statement, params).strip().rstrip(";")
    with (
        conn.engine.connect() as reading,
        reading.begin(),
        tempfile.TemporaryFile(mode="w+b") as file,
    ):
        cur = cursor(reading)
        for setting in PLANNER_SETTINGS:
            cur.execute(setting)
        spool = Spool(file.fileno())

        def copy_out() -> None:
            try:
                copy = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)"
                cur.copy_expert(copy, spool)
            except BaseException as exc:
                spool.finish(exc)
            else:
                spool.finish()

        writer = threading.Thread(target=copy_out, name="nightscore-copy-out", daemon=True)
        writer.start()
        try:
            # round_trip: the C parser's default can be an ulp off what Postgres sent, and the
            # features must equal those training saw (build_features reads them exactly).
            chunks = pd.read_csv(
                spool, chunksize=chunk_rows, dtype=_CSV_DTYPES, float_precision="round_trip"
            )
            for chunk in chunks:
                yield typed_features(chunk)
        finally:
            if writer.is_alive():  # the consumer stopped early or failed: stop the query
                reading.connection.dbapi_connection.cancel()  # type: ignore[union-attr]
            writer.join()


_CSV_DTYPES = {"carrier": str, "origin": str, "dest": str, "disrupted": "Int8", "score": "float64"}


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


def scores_frame(features: pd.DataFrame, model: LoadedModel, reasons: bool = True) -> pd.DataFrame:
    """The prediction columns that vary by flight: its key, score and label, and with
    `reasons` its three strongest drivers (`nightscore.reasons`)."""
    scores = model.predict(features)
    frame = features[list(KEY_COLUMNS)].copy()
    frame["score"] = scores.astype("float32")
    frame["label"] = scores >= model.threshold
    if reasons:
        names, effects = top_reasons(model.contributions(features), list(FEATURES))
        for rank in range(TOP):
            frame[f"reason_{rank + 1}_feature"] = names[:, rank]
            frame[f"reason_{rank + 1}_effect"] = effects[:, rank]
    return frame


def _run_tail(run: dict[str, Any]) -> str:
    """The run's columns as the end of a CSV line, comma first: formatted once, appended
    to every line (written by `to_csv`, they would be formatted again on every row)."""
    import csv
    import io

    tail = io.StringIO()
    csv.writer(tail, lineterminator="\n").writerow(["", *run.values()])  # "" gives the comma
    return tail.getvalue()


def _score_into(
    conn: Connection,
    table: str,
    service_date: date,
    model: LoadedModel,
    run: dict[str, Any],
    *,
    reasons: bool = True,
    part: int = 0,
    parts: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Score S's flights (or one partition of them) and COPY the predictions into `table`.

    Three things run at once: the feature query (`feature_chunks`, on a connection of its
    own), the scoring of chunks (here), and one COPY into `table` on `conn`, in a thread
    fed with each chunk's CSV lines. Returns the number of rows.
    """
    import threading
    from contextlib import closing

    from nightscore.warehouse.io import cursor, ident
    from nightscore.warehouse.stream import Feed

    tail = _run_tail(run)
    flight_columns = [*KEY_COLUMNS, "score", "label", *(REASON_COLUMNS if reasons else ())]
    columns = ", ".join(ident(c) for c in [*flight_columns, *run])
    feed = Feed()
    failures: list[BaseException] = []

    def copy_in() -> None:
        try:
            cursor(conn).copy_expert(
                f"COPY {ident(table)} ({columns}) FROM STDIN WITH (FORMAT csv)",
                feed,
                size=1 << 20,
            )
        except BaseException as exc:
            failures.append(exc)
            feed.failed = True

    writer = threading.Thread(target=copy_in, name="nightscore-copy-in", daemon=True)
    rows = 0
    chunks = feature_chunks(conn, service_date, part=part, parts=parts, chunk_rows=chunk_rows)
    try:
        with closing(chunks):  # on a failure, stop the feature query before `conn` rolls back
            for chunk in chunks:
                if writer.ident is None:
                    writer.start()  # once the chunks have started: `conn` is the COPY's now
                scores = scores_frame(chunk, model, reasons)
                # The CSV has str(date): made once per date, not by to_csv once per row.
                dates = scores["service_date"]
                scores["service_date"] = dates.map({d: str(d) for d in dates.unique()})
                lines = scores.to_csv(index=False, header=False, lineterminator="\n")
                feed.put(lines.replace("\n", tail).encode())
                rows += len(scores)
                if progress is not None:
                    progress(f"  {rows:,} rows scored")
                if failures:
                    break
    except BaseException as exc:
        feed.close(exc)
        raise
    else:
        feed.close()
    finally:
        if writer.ident is not None:
            writer.join()
    if failures:
        raise failures[0]
    return rows


def ensure_partition(conn: Connection, service_date: date) -> str:
    """The monthly partition that holds `service_date`, created if it does not exist."""
    first = service_date.replace(day=1)
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    name = f"scoring.predictions_{first:%Y_%m}"
    conn.execute(text(sql.load("scoring/lock_partitions")))
    # DDL takes no parameters: the name and bounds are dates formatted here.
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF scoring.predictions "
        f"FOR VALUES FROM ('{first}') TO ('{after}')"
    )
    return name


def _clear_night(conn: Connection, service_date: date, model_name: str) -> None:
    """Take the night's lock (a second run waits here), then delete its rows for the model,
    in the caller's transaction: they stay visible to others until the new ones commit."""
    conn.execute(
        text(sql.load("scoring/lock_night")), {"lock_key": f"score:{service_date}:{model_name}"}
    )
    ensure_partition(conn, service_date)
    conn.execute(
        text(sql.load("scoring/delete_night")),
        {"service_date": service_date, "model_name": model_name},
    )


# --- scoring runs ---------------------------------------------------------------------------


def _start_run(
    conn: Connection, service_date: date, model: LoadedModel, parts: int, airflow_run_id: str | None
) -> int:
    return conn.execute(
        text(sql.load("scoring/start_run")),
        {
            "service_date": service_date,
            "model_name": model.name,
            "model_version": model.version,
            "mlflow_run_id": model.run_id,
            "threshold": model.threshold,
            "partitions": parts,
            "airflow_run_id": airflow_run_id,
        },
    ).scalar_one()


def _finish_run(engine: Any, run_id: int, status: str, rows: int | None, error: str | None):
    with engine.begin() as conn:
        conn.execute(
            text(sql.load("scoring/finish_run")),
            {"status": status, "rows": rows, "error": error, "scoring_run_id": run_id},
        )


def _register_run(settings: Settings, service_date, model, parts, airflow_run_id) -> int:
    from nightscore.warehouse.db import engine_for

    with engine_for(settings).begin() as conn:
        return _start_run(conn, service_date, model, parts, airflow_run_id)


def _sync_words(settings: Settings) -> None:
    """The words the analytics view shows for each reason, current before any row needs them."""
    from nightscore.warehouse.db import engine_for

    if settings.scoring_reasons:
        with engine_for(settings).begin() as conn:
            sync_words(conn)


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
    _sync_words(settings)
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
            rows = _score_into(
                conn,
                "scoring.predictions",
                service_date,
                model,
                run,
                reasons=settings.scoring_reasons,
                chunk_rows=chunk_rows,
                progress=progress,
            )
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
        raise ScoringError(f"the number of partitions must be at least 1, not {parts}")
    try:
        model = champion(settings)
    except ScoringError as exc:
        _alert(settings, service_date, "no_usable_champion", str(exc))
        raise
    _sync_words(settings)
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
            text(sql.load("scoring/delete_staged_partition")),
            {"scoring_run_id": run_id, "parts": planned["parts"], "part": part},
        )
        rows = _score_into(
            conn,
            "scoring.staged_predictions",
            service_date,
            model,
            run,
            reasons=settings.scoring_reasons,
            part=part,
            parts=planned["parts"],
            chunk_rows=chunk_rows,
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
            run = {"scoring_run_id": run_id}
            model_name = conn.execute(text(sql.load("scoring/run_model_name")), run).scalar_one()
            _clear_night(conn, service_date, model_name)
            rows = conn.execute(text(sql.load("scoring/publish_staged")), run).rowcount
            if rows == 0:
                raise ScoringError(
                    f"scoring run {run_id} staged no rows for {service_date}; nothing was changed"
                )
            conn.execute(text(sql.load("scoring/delete_staged")), run)
            duration = conn.execute(text(sql.load("scoring/run_duration")), run).scalar_one()
    except Exception as exc:
        _finish_run(engine, run_id, "failed", None, f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _finish_run(engine, run_id, "succeeded", rows, None)
    return ScoringResult(
        run_id, service_date, model_name, planned["model_version"], rows, float(duration)
    )
