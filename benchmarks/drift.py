"""How fast nightscore's drift check is on a large night, next to Evidently's full report.

The rows are real features when the warehouse has them: a 5,000-row reference sample of
REFERENCE's flights (as a model stores with itself), and a night of N flights made by
resampling CURRENT's flights with replacement. The score is a stand-in, a fixed
logistic function of a few features (float32, like the model's): the score's drift is
computed like any numeric column's, so no model or MLflow is needed. Without a
warehouse (or with `--source synthetic`) both sides are synthetic columns of the same
names and types, drawn from seeded distributions.

Each path runs in a fresh subprocess, so that peak RSS is per path, and builds its rows
before the clock starts:

- fast: `drift_fast.fast_drift` from the reference statistics (JSON, read inside the clock)
  over the N rows, in memory;
- evidently: `drift.evidently_drift`, Evidently's `Report([DataDriftPreset()])` with
  default settings, on the same rows;
- streamed: `fast_drift` over chunks made on the fly, for N and for `--stream-rows`
  (10M by default): memory is per chunk, so the larger night must not need more (a
  night smaller than one chunk, `--chunk-rows`, naturally needs less);
- html: Evidently's report for one real day (~1,000 flights), saved with
  `drift.save_html`: its size must stay under 5 MB.

Run with `make bench-drift` (`ARGS="--rows 200000 --stream-rows 0"`). The last line is
JSON with the headline figures; the line before it has the details.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from harness import become_child, emit, rss_mb, run_child, say

REFERENCE = (date(2013, 1, 1), date(2013, 1, 28))
CURRENT = (date(2013, 1, 29), date(2013, 2, 11))
REFERENCE_ROWS = 5_000
GOALS = {"speedup": 5.0, "peak_rss_mb": 1024.0, "html_mb": 5.0, "stream_rss_growth": 0.05}
LABELS = {
    "fast": "fast_drift, in memory",
    "evidently": "Evidently DataDriftPreset",
    "stream": "fast_drift, streamed",
}


# --- the rows -------------------------------------------------------------------------------


def stand_in_score(frame: Any) -> Any:
    """A fixed logistic function of a few features, as float32 like the model's score."""
    import numpy as np

    def col(name: str, default: float) -> Any:
        return frame[name].fillna(default).to_numpy(dtype="float64")

    z = (
        -1.1
        + 4.0 * (col("hist_route_hour_rate", 0.25) - 0.25)
        + 3.0 * (col("hist_flight_rate", 0.25) - 0.25)
        + 2.0 * (col("recent_origin_rate", 0.25) - 0.25)
        + 0.12 * col("day_precip_hours", 0)
        + 0.04 * (col("dep_hour", 12) - 12)
    )
    return (1 / (1 + np.exp(-z))).astype("float32")


def warehouse_rows(url: str) -> tuple[Any, Any] | None:
    """Real features of REFERENCE's and CURRENT's flights, or None without them."""
    from sqlalchemy import create_engine, text

    from nightscore.config import sqlalchemy_url
    from nightscore.features import build_features

    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            days = conn.execute(
                text(
                    "SELECT count(DISTINCT service_date) FROM core.flights "
                    "WHERE service_date BETWEEN :a AND :b"
                ),
                {"a": REFERENCE[0], "b": CURRENT[1]},
            ).scalar_one()
    except Exception as exc:
        say(f"no warehouse at {url} ({exc.__class__.__name__}): synthetic rows instead")
        return None
    wanted = (CURRENT[1] - REFERENCE[0]).days + 1
    if days < 0.9 * wanted:
        say(f"the warehouse has {days} of the {wanted} days {REFERENCE[0]} to {CURRENT[1]}")
        return None
    started = time.monotonic()
    reference = build_features(engine, *REFERENCE)
    current = build_features(engine, *CURRENT)
    engine.dispose()
    say(
        f"real features: {len(reference):,} flights {REFERENCE[0]} to {REFERENCE[1]}, "
        f"{len(current):,} flights {CURRENT[0]} to {CURRENT[1]} "
        f"(feature query {time.monotonic() - started:.0f} s)"
    )
    return reference, current


def synthetic_rows(rows: int, seed: int, season: float) -> Any:
    """Columns of FEATURES' names and types from seeded distributions; `season` shifts
    the weather and the calendar a little, as a later window would."""
    import numpy as np
    import pandas as pd

    from nightscore.features import HISTORY_FEATURES

    rng = np.random.default_rng(seed)

    def nulls(values: Any, share: float) -> Any:
        values = values.astype("float64")
        values[rng.random(rows) < share] = np.nan
        return values

    carriers = np.array(["UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E", "WN", "VX", "FL"])
    carrier_p = np.array([18, 16, 16, 14, 10, 8, 6, 5, 4, 2, 1]) / 100
    dests = np.array([f"D{i:02d}" for i in range(100)])
    dest_p = 1 / np.arange(1, 101)
    hour = rng.integers(5, 24, rows)
    frame = {
        "service_date": date(2013, 1, 1),
        "carrier": rng.choice(carriers, rows, p=carrier_p),
        "origin": rng.choice(np.array(["EWR", "JFK", "LGA"]), rows, p=[0.36, 0.33, 0.31]),
        "dest": rng.choice(dests, rows, p=dest_p / dest_p.sum()),
        "month": np.full(rows, 1.0 + (season > 0)),
        "day_of_week": rng.integers(1, 8, rows).astype("float64"),
        "dep_hour": hour.astype("float64"),
        "dep_minute": rng.choice(np.arange(0, 60, 5), rows).astype("float64"),
        "arr_hour": ((hour + rng.integers(1, 6, rows)) % 24).astype("float64"),
        "distance": rng.choice(np.round(rng.lognormal(6.6, 0.6, 200)), rows),
        "days_to_holiday": rng.integers(0, 25, rows).astype("float64"),
        "origin_hour_departures": rng.poisson(18, rows).astype("float64"),
        "origin_day_departures": rng.poisson(300, rows).astype("float64"),
        "carrier_day_departures": rng.poisson(150, rows).astype("float64"),
        "nyc_hour_departures": rng.poisson(55, rows).astype("float64"),
        "plane_leg_of_day": rng.integers(0, 5, rows).astype("float64"),
        "plane_prev_gap_min": nulls(rng.gamma(3, 60, rows).round(), 0.7),
        "temp": np.round(rng.normal(38 + 6 * season, 10, rows), 2),
        "dewp": np.round(rng.normal(22 + 4 * season, 12, rows), 2),
        "humid": np.clip(rng.normal(60, 18, rows), 10, 100).round(2),
        "wind_speed": nulls(rng.gamma(2.5, 4.5, rows).round(3), 0.01),
        "wind_gust": nulls(rng.gamma(8, 3, rows).round(3), 0.7),
        "precip": nulls(rng.choice([0, 0, 0, 0, 0, 0, 0.01, 0.02, 0.05, 0.1], rows), 0.01),
        "pressure": nulls(rng.normal(1017, 8, rows).round(1), 0.1),
        "visib": rng.choice([10.0, 10, 10, 10, 8, 5, 2, 1, 0.5], rows),
        "day_precip": rng.exponential(0.05, rows).round(2),
        "day_precip_hours": rng.poisson(1.5, rows).astype("float64"),
        "day_min_visib": rng.choice([10.0, 8, 5, 3, 2, 1, 0.5, 0.25], rows),
        "day_max_wind_speed": rng.gamma(6, 3, rows).round(3),
        "precip_before_departure": rng.exponential(0.01, rows).round(2),
        "min_visib_before_departure": rng.choice([10.0, 10, 8, 5, 2, 1], rows),
        "precip_after_departure": rng.exponential(0.01, rows).round(2),
        "nyc_day_precip": rng.exponential(0.05, rows).round(3),
        "plane_age": nulls(rng.integers(0, 30, rows), 0.17),
        "plane_seats": nulls(rng.choice([20, 55, 100, 149, 178, 200, 379], rows), 0.16),
        "plane_engines": nulls(rng.choice([1, 2, 2, 2, 2, 3], rows), 0.16),
        "plane_known": (rng.random(rows) > 0.16).astype("float64"),
    }
    for name in HISTORY_FEATURES:
        frame[name] = rng.beta(5, 15 - 2 * season, rows)
    frame["hist_flight_count"] = rng.integers(0, 29, rows).astype("float64")
    return pd.DataFrame(frame)


def prepare(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The reference sample, its statistics and the pool of flights that nights resample."""
    from nightscore.features import FEATURES
    from nightscore.monitoring import drift_fast

    found = None if args.source == "synthetic" else warehouse_rows(args.warehouse_url)
    if found is None and args.source == "warehouse":
        raise SystemExit("--source warehouse: the warehouse lacks the benchmark's days")
    if found is not None:
        source = "warehouse"
        reference_window, pool = found
    else:
        source = "synthetic"
        reference_window = synthetic_rows(REFERENCE_ROWS * 4, args.seed, season=0.0)
        pool = synthetic_rows(14_000, args.seed + 1, season=1.0)
        days = [date(2013, 2, 1 + i) for i in range(14)]  # ~1,000 flights a day
        pool["service_date"] = [days[i % 14] for i in range(len(pool))]
    reference_window["score"] = stand_in_score(reference_window)
    pool["score"] = stand_in_score(pool)
    columns = ["service_date", *FEATURES, "score"]
    reference = reference_window.sample(REFERENCE_ROWS, random_state=args.seed)[columns]
    pool = pool[columns].reset_index(drop=True)
    started = time.perf_counter()
    stats = drift_fast.reference_stats(reference)
    stats_seconds = time.perf_counter() - started
    paths = {
        "reference": tmp / "reference.parquet",
        "pool": tmp / "pool.parquet",
        "stats": tmp / "reference_stats.json",
    }
    reference.to_parquet(paths["reference"])
    pool.to_parquet(paths["pool"])
    paths["stats"].write_text(json.dumps(stats))
    # The report's day: the pool's real day whose flight count is nearest 1,000.
    sizes = pool.groupby("service_date").size()
    day = (sizes - 1000).abs().idxmin()
    say(
        f"reference: {len(reference):,} rows; statistics in {stats_seconds:.2f} s, "
        f"{paths['stats'].stat().st_size / 1e6:.1f} MB of JSON; "
        f"pool of {len(pool):,} flights to resample ({source})"
    )
    return {
        "source": source,
        "reference_rows": len(reference),
        "pool_rows": len(pool),
        "stats_seconds": round(stats_seconds, 3),
        "stats_json_mb": round(paths["stats"].stat().st_size / 1e6, 2),
        "html_day": str(day),
        "html_day_rows": int(sizes[day]),
        **{k: str(v) for k, v in paths.items()},
    }


def indices(pool_rows: int, rows: int, chunk_rows: int, seed: int):
    """Row numbers of the pool for each chunk of the night: the same whether the night is
    built whole or streamed."""
    import numpy as np

    for i in range(math.ceil(rows / chunk_rows)):
        size = min(chunk_rows, rows - i * chunk_rows)
        yield np.random.default_rng([seed, i]).integers(0, pool_rows, size)


# --- the paths, each in a subprocess of its own ---------------------------------------------


def _rows_of(pool: Any, rows: Any) -> Any:
    """The pool's rows as a new frame, copied once (reset_index would copy them again)."""
    import pandas as pd

    frame = pool.take(rows)
    frame.index = pd.RangeIndex(len(frame))
    return frame


def _night(spec: dict[str, Any], pool: Any) -> Any:
    import numpy as np

    rows = np.concatenate(list(indices(len(pool), spec["rows"], spec["chunk_rows"], spec["seed"])))
    return _rows_of(pool, rows)


def run_fast(spec: dict[str, Any], pool: Any) -> tuple[Any, Any]:
    from nightscore.monitoring import drift_fast

    night = _night(spec, pool)

    def work() -> Any:
        stats = json.loads(Path(spec["stats"]).read_text())
        return drift_fast.fast_drift(stats, night)

    return work, None


def run_evidently(spec: dict[str, Any], pool: Any) -> tuple[Any, Any]:
    import pandas as pd

    from nightscore.monitoring import drift

    night = _night(spec, pool)
    reference = pd.read_parquet(spec["reference"])
    return (lambda: drift.evidently_drift(reference, night)), None


def run_stream(spec: dict[str, Any], pool: Any) -> tuple[Any, Any]:
    from nightscore.monitoring import drift_fast

    def chunks():
        for rows in indices(len(pool), spec["rows"], spec["chunk_rows"], spec["seed"]):
            yield _rows_of(pool, rows)

    def work() -> Any:
        stats = json.loads(Path(spec["stats"]).read_text())
        return drift_fast.fast_drift(stats, chunks())

    return work, None


def run_html(spec: dict[str, Any], pool: Any) -> tuple[Any, Any]:
    import pandas as pd

    from nightscore.monitoring import drift

    day = pool[pool["service_date"].astype(str) == spec["html_day"]].reset_index(drop=True)
    reference = pd.read_parquet(spec["reference"])
    out = Path(spec["html_out"])

    def work() -> Any:
        result = drift.evidently_drift(reference, day)
        return result, drift.save_html(result.snapshot, out)

    return work, len(day)


RUNNERS = {"fast": run_fast, "evidently": run_evidently, "stream": run_stream, "html": run_html}


def child(path: str, spec_file: str) -> None:
    """One path in this (fresh) process; prints `RESULT {json}` on stdout."""
    become_child()
    spec = json.loads(Path(spec_file).read_text())
    import pandas as pd
    import scipy.spatial.distance  # (imports before the clock starts)
    import scipy.stats  # noqa: F401

    if path in ("evidently", "html"):
        import evidently.presets  # noqa: F401

    pool = pd.read_parquet(spec["pool"])
    work, day_rows = RUNNERS[path](spec, pool)
    base = rss_mb()
    started = time.perf_counter()
    outcome = work()
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"seconds": seconds, "peak_rss_mb": rss_mb(), "base_rss_mb": base}
    if path == "html":
        result, size = outcome
        out.update(rows=day_rows, html_bytes=size)
    else:
        result = outcome
        out["rows"] = result.current_rows
    out["drift"] = result.to_dict()
    emit(out)


def measure(path: str, spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    spec_file = tmp / f"spec-{path}-{spec['rows']}.json"
    spec_file.write_text(json.dumps(spec))
    rows = spec["html_day_rows"] if path == "html" else spec["rows"]
    say(f"\n{LABELS.get(path, 'Evidently report and save_html, one day')}, {rows:,} rows ...")
    result = run_child(__file__, path, spec_file)
    say(
        f"  {result['rows']:,} rows in {result['seconds']:.1f} s, peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB ({result['base_rss_mb']:,.0f} MB before the clock)"
    )
    return result


# --- comparison and the report ----------------------------------------------------------------


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Per column (features and the score): same test, same flag, statistic difference."""
    a = {c["column"]: c for c in [*ours["columns"], *([ours["score"]] if ours["score"] else [])]}
    b = {
        c["column"]: c
        for c in [*theirs["columns"], *([theirs["score"]] if theirs["score"] else [])]
    }
    rows = []
    for name in b:
        x, y = a.get(name), b[name]
        rows.append(
            {
                "column": name,
                "method": y["method"],
                "evidently": y["statistic"],
                "fast": x["statistic"] if x else None,
                "error": abs(x["statistic"] - y["statistic"]) if x else math.inf,
                "bound": x["error_bound"] if x else None,
                "flag": y["drifted"],
                "agree": bool(x) and x["drifted"] == y["drifted"] and x["method"] == y["method"],
            }
        )
    agree = (
        all(r["agree"] for r in rows)
        and set(a) == set(b)
        and set(ours["skipped"]) == set(theirs["skipped"])
    )
    return {"rows": rows, "flags_agree": agree, "max_abs_error": max(r["error"] for r in rows)}


def report(args: argparse.Namespace, info: dict[str, Any], results: dict[str, Any]) -> None:
    fast, evidently = results["fast"], results.get("evidently")
    streams = results.get("stream", {})
    print(
        f"\n{'path':<30}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}{'data MB':>9}"
    )
    lines = [("fast", fast), ("evidently", evidently)] + [("stream", r) for r in streams.values()]
    for path, r in lines:
        if r is None:
            print(f"{LABELS[path]:<30}{'skipped':>12}")
            continue
        print(
            f"{LABELS[path]:<30}{r['rows']:>12,}{r['seconds']:>10.1f}"
            f"{r['rows'] / r['seconds']:>12,.0f}{r['peak_rss_mb']:>13,.0f}{r['base_rss_mb']:>9,.0f}"
        )
    print("(data MB: the process's RSS with its rows built, before the clock)")

    if evidently:
        cmp = compare(fast["drift"], evidently["drift"])
        print(
            f"\n{'column':<28}{'test':<15}{'Evidently':>12}{'fast':>12}"
            f"{'|diff|':>10}{'bound':>10}  drift"
        )
        for r in cmp["rows"]:
            mark = "" if r["agree"] else "  DISAGREE"
            print(
                f"{r['column']:<28}{r['method']:<15}{r['evidently']:>12.6g}{r['fast']:>12.6g}"
                f"{r['error']:>10.1e}{r['bound']:>10.1e}  {'yes' if r['flag'] else 'no'}{mark}"
            )
        skipped = evidently["drift"]["skipped"]
        if skipped:
            print(f"no values in the current rows, not tested by either: {', '.join(skipped)}")
    else:
        cmp = {"flags_agree": None, "max_abs_error": None}
    streamed_same = None
    if args.rows in streams:
        s = streams[args.rows]["drift"]
        pairs = zip(
            [*fast["drift"]["columns"], fast["drift"]["score"]],
            [*s["columns"], s["score"]],
            strict=True,
        )
        streamed_same = max(abs(x["statistic"] - y["statistic"]) for x, y in pairs if x and y)

    html = results.get("html")
    figures = {
        "rows": args.rows,
        "seconds": round(fast["seconds"], 3),
        "peak_rss_mb": round(fast["peak_rss_mb"]),
        "evidently_full_seconds": round(evidently["seconds"], 2) if evidently else None,
        "speedup": round(evidently["seconds"] / fast["seconds"], 1) if evidently else None,
        "flags_agree": cmp["flags_agree"],
        "max_abs_error": float(f"{cmp['max_abs_error']:.3g}") if evidently else None,
    }
    print()
    verdicts = []
    if evidently:
        verdicts.append(
            ("Evidently's time over fast_drift's", figures["speedup"], ">=", GOALS["speedup"], "x")
        )
    verdicts.append(
        ("fast_drift's peak RSS", figures["peak_rss_mb"], "<=", GOALS["peak_rss_mb"], " MB")
    )
    growth = None
    if len(streams) == 2:
        small, large = (streams[k] for k in sorted(streams))
        growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
        verdicts.append(
            (
                f"streamed {large['rows'] / 1e6:g}M's peak RSS over {small['rows'] / 1e6:g}M's",
                round(100 * growth, 1) + 0.0,  # no "-0.0"
                "<=",
                100 * GOALS["stream_rss_growth"],
                " %",
            )
        )
    if html:
        verdicts.append(
            (
                f"HTML report, one day ({html['rows']:,} rows)",
                round(html["html_bytes"] / 1e6, 2),
                "<",
                GOALS["html_mb"],
                " MB",
            )
        )
    for what, value, op, goal, unit in verdicts:
        met = value >= goal if op == ">=" else value < goal if op == "<" else value <= goal
        verdict = "met" if met else "MISSED"
        print(f"{what:<46}{value:>9,}{unit:<4}goal {op} {goal:g}{unit:<4} {verdict}")
    if evidently:
        print(
            f"{'flags equal to Evidently full, every column':<46}"
            f"{'yes' if cmp['flags_agree'] else 'NO':>9}"
        )
        print(
            f"{'largest |statistic - Evidently full|':<46}{cmp['max_abs_error']:>9.2g}"
            f"    (tolerance 1e-4; error bound, largest: "
            f"{max(r['bound'] for r in cmp['rows']):.2g})"
        )
    if streamed_same is not None:
        print(f"{'streamed vs in memory, largest |difference|':<46}{streamed_same:>9.2g}")
    print(
        f"Timings are wall clock on a shared {os.cpu_count()}-core machine; load average "
        f"{info['load_avg_before']:.1f} before the paths, {info['load_avg_after']:.1f} after. "
        f"Rows: {info['source']}."
    )
    details = {
        **{k: info[k] for k in ("source", "reference_rows", "pool_rows", "stats_seconds")},
        "stats_json_mb": info["stats_json_mb"],
        "chunk_rows": args.chunk_rows,
        "fast_base_rss_mb": round(fast["base_rss_mb"]),
        "evidently_peak_rss_mb": round(evidently["peak_rss_mb"]) if evidently else None,
        "evidently_base_rss_mb": round(evidently["base_rss_mb"]) if evidently else None,
        "streamed": {
            str(rows): {
                "seconds": round(r["seconds"], 2),
                "peak_rss_mb": round(r["peak_rss_mb"]),
                "base_rss_mb": round(r["base_rss_mb"]),
            }
            for rows, r in streams.items()
        },
        "streamed_rss_growth": round(growth, 4) if growth is not None else None,
        "streamed_vs_in_memory_max_diff": streamed_same,
        "html_day": info.get("html_day"),
        "html_day_rows": html["rows"] if html else None,
        "html_bytes": html["html_bytes"] if html else None,
        "html_seconds": round(html["seconds"], 2) if html else None,
        "drifted_columns": fast["drift"]["drifted_columns"],
        "score_drifted": fast["drift"]["score"]["drifted"] if fast["drift"]["score"] else None,
        "load_avg_before": info["load_avg_before"],
        "load_avg_after": info["load_avg_after"],
        "total_seconds": info["total_seconds"],
    }
    print("details " + json.dumps(details))
    print(json.dumps(figures))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="flights in the night")
    parser.add_argument(
        "--stream-rows",
        type=int,
        default=10_000_000,
        help="also stream this many rows (and --rows) in chunks, to compare peak RSS; 0: skip",
    )
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="rows per streamed chunk")
    parser.add_argument("--skip-evidently", action="store_true", help="do not run Evidently")
    parser.add_argument("--skip-html", action="store_true", help="do not measure the HTML report")
    parser.add_argument(
        "--source",
        choices=("auto", "warehouse", "synthetic"),
        default="auto",
        help="real features from the warehouse (auto: when it has the days) or synthetic rows",
    )
    parser.add_argument(
        "--warehouse-url",
        default=None,
        help="read-only use; default: the configured warehouse (NIGHTSCORE_WAREHOUSE_URL)",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", type=Path, default=None, help="copy the HTML report here")
    parser.add_argument("--child", choices=RUNNERS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.spec)
        return
    if args.warehouse_url is None:
        from nightscore.config import load_settings

        args.warehouse_url = load_settings().warehouse_url

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nightscore-bench-drift-") as name:
        tmp = Path(name)
        info = prepare(args, tmp)
        base = {**info, "rows": args.rows, "chunk_rows": args.chunk_rows, "seed": args.seed}
        info["load_avg_before"] = round(os.getloadavg()[0], 2)
        results: dict[str, Any] = {"fast": measure("fast", base, tmp)}
        if not args.skip_evidently:
            results["evidently"] = measure("evidently", base, tmp)
        if args.stream_rows:
            results["stream"] = {
                rows: measure("stream", {**base, "rows": rows}, tmp)
                for rows in sorted({args.rows, args.stream_rows})
            }
        if not args.skip_html:
            html_out = args.keep or tmp / "drift_report.html"
            results["html"] = measure("html", {**base, "html_out": str(html_out)}, tmp)
        info["load_avg_after"] = round(os.getloadavg()[0], 2)
    info["total_seconds"] = round(time.monotonic() - started, 1)
    report(args, info, results)


if __name__ == "__main__":
    main()
