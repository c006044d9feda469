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
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
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


class _Spool:
    """A temporary file that one thread appends to while another reads it back.

    The writer is psycopg2's COPY out (one `write` per row, gathered here into blocks);
    the reader (pandas) gets what has been written so far, and waits for more until the
    writer closes. The night sits on disk, not in memory; the reader's chunks can be
    scored while the warehouse still computes the rest of the night.
    """

    BLOCK = 1 << 20

    def __init__(self, fd: int) -> None:
        import threading

        self._fd = fd  # an empty file, read and written at explicit offsets
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._written = 0  # bytes on disk, readable
        self._read = 0
        self._closed = False
        self._error: BaseException | None = None
        self._ready = threading.Condition()

    # the writer's side ------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self.BLOCK:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        block = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        view = memoryview(block)
        while view:
            view = view[os.pwrite(self._fd, view, self._written + len(block) - len(view)) :]
        with self._ready:
            self._written += len(block)
            self._ready.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """The writer is done (or failed: the reader then raises its error)."""
        try:
            if error is None:
                self._flush()
        finally:
            with self._ready:
                self._closed, self._error = True, error
                self._ready.notify_all()

    # the reader's side ------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        with self._ready:
            while self._read >= self._written and not self._closed:
                self._ready.wait()
            if self._error is not None:
                raise self._error
            available = self._written - self._read
        data = os.pread(self._fd, available if size < 0 else min(size, available), self._read)
        self._read += len(data)
        return data

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[bytes]:  # pandas takes file-likes that iterate
        raise io.UnsupportedOperation("read the spool with read()")


def feature_chunks(
    conn: Connection,
    service_date: date,
    *,
    part: int = 0,
    parts: int = 1,
    chunk_rows: int = CHUNK_ROWS,
) -> Generator[pd.DataFrame, None, None]:
    """S's feature rows in chunks, from a COPY out that runs while they are consumed.

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

    from nightscore.warehouse.io import _cursor

    params = feature_params(service_date, service_date)
    # Predictions need no order: the unordered query skips a sort of the whole night.
    query = _copy_sql(conn, feature_sql(ordered=False), params).strip().rstrip(";")
    if parts > 1:
        query = PARTITION_FILTER.format(query=query, parts=int(parts), part=int(part))
    with (
        conn.engine.connect() as reading,
        reading.begin(),
        tempfile.TemporaryFile(mode="w+b") as file,
    ):
        cursor = _cursor(reading)
        for statement in PLANNER_SETTINGS:
            cursor.execute(statement)
        spool = _Spool(file.fileno())

        def copy_out() -> None:
            try:
                sql = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)"
                cursor.copy_expert(sql, spool)
            except BaseException as exc:
                spool.finish(exc)
            else:
                spool.finish()

        writer = threading.Thread(target=copy_out, name="nightscore-copy-out", daemon=True)
        writer.start()
        try:
            for chunk in pd.read_csv(spool, chunksize=chunk_rows, dtype=_CSV_DTYPES):
                yield typed_features(chunk)
        finally:
            if writer.is_alive():  # the consumer stopped early or failed: stop the query
                reading.connection.dbapi_connection.cancel()  # type: ignore[union-attr]
            writer.join()


_CSV_DTYPES = {"carrier": str, "origin": str, "dest": str, "disrupted": "Int8"}


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


def _run_tail(run: dict[str, Any]) -> str:
    """The run's columns as the end of a CSV line, comma first: formatted once, appended
    to every line (written by `to_csv`, they would be formatted again on every row)."""
    import csv

    tail = io.StringIO()
    csv.writer(tail, lineterminator="\n").writerow(["", *run.values()])  # "" gives the comma
    return tail.getvalue()


class _Feed:
    """What a COPY FROM STDIN reads in one thread, fed block by block from another.

    The queue holds a few chunks' lines at most; `close` ends the COPY, or fails it with
    the feeder's error (Postgres then discards every row the COPY has received).
    """

    def __init__(self, depth: int = 2) -> None:
        import queue

        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._block = b""
        self.failed = False  # set by the COPY's thread: stop feeding it

    def put(self, item: bytes | BaseException) -> None:
        import queue

        while not self.failed:
            try:
                return self._queue.put(item, timeout=0.5)
            except queue.Full:
                continue

    def close(self, error: BaseException | None = None) -> None:
        self.put(b"" if error is None else error)

    def read(self, size: int = -1) -> bytes:
        if not self._block:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            self._block = item  # b"": the end
        if size < 0 or size >= len(self._block):
            data, self._block = self._block, b""
        else:
            data, self._block = self._block[:size], self._block[size:]
        return data


def _score_into(
    conn: Connection,
    table: str,
    service_date: date,
    model: LoadedModel,
    run: dict[str, Any],
    *,
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

    from nightscore.warehouse.io import _cursor, _ident

    tail = _run_tail(run)
    columns = ", ".join(_ident(c) for c in [*KEY_COLUMNS, "score", "label", *run])
    feed = _Feed()
    failures: list[BaseException] = []

    def copy_in() -> None:
        try:
            _cursor(conn).copy_expert(
                f"COPY {_ident(table)} ({columns}) FROM STDIN WITH (FORMAT csv)",
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
                scores = scores_frame(chunk, model)
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
            rows = _score_into(
                conn,
                "scoring.predictions",
                service_date,
                model,
                run,
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
        rows = _score_into(
            conn,
            "scoring.staged_predictions",
            service_date,
            model,
            run,
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
