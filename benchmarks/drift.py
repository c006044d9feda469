"""How fast nightscore's evening drift check is on a large night, end to end, next to
Evidently's full report on the same rows.

The rows are real features when the warehouse has them: the training frame is
REFERENCE's flights (28 nights, one row group per night), the reference sample 5,000 of
them (as a model stores with itself), and a night of N flights is made by resampling
CURRENT's flights with replacement. The score is a stand-in, a fixed logistic function of
a few features (float32, like the model's), and the importance of each feature its mean
|contribution| to that function on the reference sample (what TreeSHAP gives for a
linear model), so no model or MLflow is needed. Without a warehouse (or with `--source
synthetic`) all three are synthetic columns of the same names and types, drawn from
seeded distributions.

Each path runs in a fresh subprocess, so that peak RSS is per path, and builds its rows
before the clock starts:

- nightscore: what training and the evening's `check_drift` do, inside the clock:
  `early_warning.build_profile` (the nightly control limits and the reference statistics)
  from the training frame and the reference sample, the profile written as JSON and read
  back (as it is logged with the model and downloaded), then `early_warning.check_night`
  with the default `WarningRule()` over the N rows in chunks of `--chunk-rows` (scoring's
  CHUNK_ROWS, as the warehouse gives them), built before the clock;
- evidently: `drift.evidently_drift`, Evidently's `Report([DataDriftPreset()])` with
  default settings, on the same N rows in one frame;
- streamed: the nightscore path with the chunks made on the fly, for N and for
  `--stream-rows` (10M by default): memory is per chunk, so the larger night must not
  need more (a night smaller than one chunk naturally needs less);
- html: Evidently's page for one real day (~1,000 flights), as the morning monitoring
  writes it, and for the evening's sample of the N-row night (SAMPLE_ROWS rows, as
  `check_drift` writes it for a warned night), saved with `drift.save_html`: each must
  stay under 5 MB.

The flags compared are Evidently's default tests on every feature and the score: those
`check_night` ran on its pass (`Assessment.evidently`), and those it stored per watched
feature (`Assessment.features[*].evidently_drifted`).

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
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from harness import become_child, emit, rss_mb, run_child, say

REFERENCE = (date(2013, 1, 1), date(2013, 1, 28))
CURRENT = (date(2013, 1, 29), date(2013, 2, 11))
REFERENCE_ROWS = 5_000
GOALS = {"speedup": 5.0, "peak_rss_mb": 1024.0, "html_mb": 5.0, "stream_rss_growth": 0.05}
LABELS = {
    "nightscore": "nightscore: profile + check",
    "evidently": "Evidently DataDriftPreset",
    "stream": "nightscore, streamed",
    "html": "Evidently's page, one day",
    "page": "Evidently's page, evening",
}
# The stand-in score's log-odds: an intercept, and per feature (weight, value for a null,
# centre).
STAND_IN_INTERCEPT = -1.1
STAND_IN = {
    "hist_route_hour_rate": (4.0, 0.25, 0.25),
    "hist_flight_rate": (3.0, 0.25, 0.25),
    "recent_origin_rate": (2.0, 0.25, 0.25),
    "day_precip_hours": (0.12, 0.0, 0.0),
    "dep_hour": (0.04, 12.0, 12.0),
}


# --- the rows -------------------------------------------------------------------------------


def _stand_in_terms(frame: Any) -> dict[str, Any]:
    """Each stand-in feature's term in the log-odds, per row."""
    return {
        name: weight * (frame[name].fillna(fill).to_numpy(dtype="float64") - centre)
        for name, (weight, fill, centre) in STAND_IN.items()
    }


def stand_in_score(frame: Any) -> Any:
    """A fixed logistic function of a few features, as float32 like the model's score."""
    import numpy as np

    z = sum(_stand_in_terms(frame).values(), start=STAND_IN_INTERCEPT)
    return (1 / (1 + np.exp(-z))).astype("float32")


def stand_in_importance(reference: Any) -> dict[str, float]:
    """Each feature's mean |contribution| to the stand-in's log-odds on `reference`: for a
    linear function, what TreeSHAP gives (the term's distance from its mean); 0 for the
    features it does not use."""
    import numpy as np

    from nightscore.features import FEATURES

    terms = _stand_in_terms(reference)
    return {
        name: float(np.abs(terms[name] - terms[name].mean()).mean()) if name in terms else 0.0
        for name in FEATURES
    }


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
    """The training frame, the reference sample, the importance and the pool of flights
    that nights resample, as files the paths read."""
    from nightscore.features import FEATURES
    from nightscore.monitoring.early_warning import build_profile

    found = None if args.source == "synthetic" else warehouse_rows(args.warehouse_url)
    if found is None and args.source == "warehouse":
        raise SystemExit("--source warehouse: the warehouse lacks the benchmark's days")
    if found is not None:
        source = "warehouse"
        training, pool = found
    else:
        source = "synthetic"
        training = synthetic_rows(REFERENCE_ROWS * 4, args.seed, season=0.0)
        nights = (REFERENCE[1] - REFERENCE[0]).days + 1
        training["service_date"] = [
            REFERENCE[0] + timedelta(days=i % nights) for i in range(len(training))
        ]
        pool = synthetic_rows(14_000, args.seed + 1, season=1.0)
        days = [date(2013, 2, 1 + i) for i in range(14)]  # ~1,000 flights a day
        pool["service_date"] = [days[i % 14] for i in range(len(pool))]
    training["score"] = stand_in_score(training)
    pool["score"] = stand_in_score(pool)
    columns = ["service_date", *FEATURES, "score"]
    training = training[columns].reset_index(drop=True)
    reference = training.sample(REFERENCE_ROWS, random_state=args.seed).reset_index(drop=True)
    pool = pool[columns].reset_index(drop=True)
    importance = stand_in_importance(reference)
    profile = build_profile(training, reference, importance)  # to describe it; timed in a path
    paths = {
        "training": tmp / "training.parquet",
        "reference": tmp / "reference.parquet",
        "pool": tmp / "pool.parquet",
        "sample": tmp / "evening_sample.parquet",
    }
    training.to_parquet(paths["training"])
    reference.to_parquet(paths["reference"])
    pool.to_parquet(paths["pool"])
    # The morning's page: the pool's real day whose flight count is nearest 1,000.
    sizes = pool.groupby("service_date").size()
    day = (sizes - 1000).abs().idxmin()
    profile_mb = len(json.dumps(profile)) / 1e6
    say(
        f"training frame: {len(training):,} flights, {profile['nights']} nights "
        f"{profile['first_night']} to {profile['last_night']}; reference sample "
        f"{len(reference):,} rows; profile {profile_mb:.1f} MB of JSON; "
        f"pool of {len(pool):,} flights to resample ({source})"
    )
    return {
        "source": source,
        "training_rows": len(training),
        "training_nights": profile["nights"],
        "reference_rows": len(reference),
        "pool_rows": len(pool),
        "importance": importance,
        "html_day": str(day),
        "html_day_rows": int(sizes[day]),
        "tmp": str(tmp),
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


def _evening(spec: dict[str, Any], chunks: Callable[[], Iterable[Any]]) -> Callable[[], Any]:
    """The nightscore path as a function to time: the profile from the training frame,
    its JSON round trip through a file, `check_night` over `chunks()`."""
    import pandas as pd

    from nightscore.monitoring.early_warning import build_profile, check_night
    from nightscore.monitoring.rules import WarningRule

    training = pd.read_parquet(spec["training"])
    reference = pd.read_parquet(spec["reference"])
    profile_file = Path(spec["tmp"]) / f"profile-{os.getpid()}.json"

    def work() -> tuple[Any, dict[str, float]]:
        started = time.perf_counter()
        profile = build_profile(training, reference, spec["importance"])
        built = time.perf_counter()
        profile_file.write_text(json.dumps(profile))
        profile = json.loads(profile_file.read_text())
        loaded = time.perf_counter()
        assessment = check_night(profile, chunks(), WarningRule())
        steps = {
            "profile_seconds": built - started,
            "json_seconds": loaded - built,
            "check_seconds": time.perf_counter() - loaded,
            "profile_json_mb": profile_file.stat().st_size / 1e6,
        }
        return assessment, steps

    return work


def run_nightscore(spec: dict[str, Any], pool: Any) -> Callable[[], Any]:
    chunks = [_rows_of(pool, rows) for rows in _indices(spec, pool)]
    return _evening(spec, lambda: iter(chunks))


def run_stream(spec: dict[str, Any], pool: Any) -> Callable[[], Any]:
    return _evening(spec, lambda: (_rows_of(pool, rows) for rows in _indices(spec, pool)))


def run_evidently(spec: dict[str, Any], pool: Any) -> Callable[[], Any]:
    import numpy as np
    import pandas as pd

    from nightscore.monitoring import drift

    night = _rows_of(pool, np.concatenate(list(_indices(spec, pool))))
    reference = pd.read_parquet(spec["reference"])
    return lambda: drift.evidently_drift(reference, night)


def _page(reference: Any, rows: Any, out: Path) -> Callable[[], Any]:
    """Evidently's report of `rows` against the reference, saved as the jobs save it."""
    from nightscore.features import FEATURES
    from nightscore.monitoring import drift

    def work() -> tuple[Any, int]:
        result = drift.evidently_drift(
            reference, rows, columns=[c for c in FEATURES if c in reference]
        )
        return result, drift.save_html(result.snapshot, out)

    return work


def run_html(spec: dict[str, Any], pool: Any) -> Callable[[], Any]:
    import pandas as pd

    day = pool[pool["service_date"].astype(str) == spec["html_day"]].reset_index(drop=True)
    reference = pd.read_parquet(spec["reference"])
    return _page(reference, day, Path(spec["html_out"]))


def run_page(spec: dict[str, Any], pool: Any) -> Callable[[], Any]:
    import pandas as pd

    sample = pd.read_parquet(spec["sample"])
    reference = pd.read_parquet(spec["reference"])
    return _page(reference, sample, Path(spec["html_out"]))


RUNNERS = {
    "nightscore": run_nightscore,
    "evidently": run_evidently,
    "stream": run_stream,
    "html": run_html,
    "page": run_page,
}


def _indices(spec: dict[str, Any], pool: Any) -> Iterator[Any]:
    return indices(len(pool), spec["rows"], spec["chunk_rows"], spec["seed"])


def summary(assessment: Any) -> dict[str, Any]:
    """What the evening check concluded, as JSON: the verdict, the night's figures, the
    flags it stored per watched feature, and a hash of the kept sample."""
    import pandas as pd

    return {
        "rows": assessment.rows,
        "warned": assessment.warned,
        "reasons": list(assessment.reasons),
        "moved": [c.column for c in assessment.moved],
        "score_mean": assessment.score_mean,
        "score_z": assessment.score_z,
        "expected_auc": assessment.expected_auc,
        "importance_excess": assessment.importance_excess,
        "evidently_share": assessment.evidently_share,
        "training_nights": assessment.training_nights,
        "tonight": {c.column: c.tonight for c in assessment.features},
        "flags": {c.column: c.evidently_drifted for c in assessment.features},
        "sample_rows": len(assessment.sample),
        "sample_hash": int(pd.util.hash_pandas_object(assessment.sample).sum()),
    }


def child(path: str, spec_file: str) -> None:
    """One path in this (fresh) process; prints `RESULT {json}` on stdout."""
    become_child()
    spec = json.loads(Path(spec_file).read_text())
    import pandas as pd
    import scipy.spatial.distance  # (imports before the clock starts)
    import scipy.stats  # noqa: F401

    if path in ("evidently", "html", "page"):
        import evidently.presets  # noqa: F401

    pool = pd.read_parquet(spec["pool"])
    work = RUNNERS[path](spec, pool)
    base = rss_mb()
    started = time.perf_counter()
    outcome = work()
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"seconds": seconds, "peak_rss_mb": rss_mb(), "base_rss_mb": base}
    if path in ("html", "page"):
        result, size = outcome
        out.update(rows=result.current_rows, html_bytes=size)
    elif path == "evidently":
        result = outcome
        out["rows"] = result.current_rows
    else:
        assessment, steps = outcome
        result = assessment.evidently
        out.update(rows=assessment.rows, steps=steps, assessment=summary(assessment))
        if path == "nightscore":  # for the evening page's path, after the clock
            assessment.sample.to_parquet(spec["sample"])
    out["drift"] = result.to_dict()
    emit(out)


def measure(path: str, spec: dict[str, Any], tmp: Path, rows: int | None = None) -> dict[str, Any]:
    spec_file = tmp / f"spec-{path}-{spec['rows']}.json"
    spec_file.write_text(json.dumps(spec))
    say(f"\n{LABELS[path]}, {rows or spec['rows']:,} rows ...")
    result = run_child(__file__, path, spec_file)
    say(
        f"  {result['rows']:,} rows in {result['seconds']:.1f} s, peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB ({result['base_rss_mb']:,.0f} MB before the clock)"
    )
    if "steps" in result:
        steps = result["steps"]
        say(
            f"  profile {steps['profile_seconds']:.2f} s, JSON round trip "
            f"{steps['json_seconds']:.2f} s ({steps['profile_json_mb']:.1f} MB), "
            f"check_night {steps['check_seconds']:.2f} s"
        )
    return result


class LoadWatch:
    """The 1-minute load average, read every `every` seconds while the paths run: the
    machine is shared, and the timings mean little without it."""

    def __init__(self, every: float = 5.0):
        import threading

        self.values = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.values.append(os.getloadavg()[0])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.values.append(os.getloadavg()[0])
        return {
            "before": round(self.values[0], 2),
            "mean": round(sum(self.values) / len(self.values), 2),
            "max": round(max(self.values), 2),
            "after": round(self.values[-1], 2),
        }


# --- comparison and the report ----------------------------------------------------------------


def compare(
    ours: dict[str, Any], theirs: dict[str, Any], flags: dict[str, bool | None] | None = None
) -> dict[str, Any]:
    """Per column (features and the score): same test, same flag, statistic difference;
    and `flags` (the watched features' stored flags) equal to Evidently's."""
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
    stored = {k: v for k, v in (flags or {}).items() if k in b}
    stored_agree = all(v == b[k]["drifted"] for k, v in stored.items())
    agree = (
        all(r["agree"] for r in rows)
        and set(a) == set(b)
        and set(ours["skipped"]) == set(theirs["skipped"])
        and stored_agree
    )
    return {
        "rows": rows,
        "flags_agree": agree,
        "stored_flags": len(stored),
        "stored_flags_agree": stored_agree,
        "max_abs_error": max(r["error"] for r in rows),
    }


def streamed_difference(one: dict[str, Any], other: dict[str, Any]) -> float:
    """The largest |difference| between two runs of the nightscore path over the same
    rows: every statistic, every night average, the mean risk and the expected AUC."""
    x, y = one["drift"], other["drift"]
    pairs = [
        (p["statistic"], q["statistic"])
        for p, q in zip([*x["columns"], x["score"]], [*y["columns"], y["score"]], strict=True)
        if p and q
    ]
    a, b = one["assessment"], other["assessment"]
    pairs += [(a["tonight"][k], b["tonight"][k]) for k in a["tonight"]]
    pairs += [(a[k], b[k]) for k in ("score_mean", "expected_auc")]
    return max(abs(p - q) for p, q in pairs if p is not None and q is not None)


def report(args: argparse.Namespace, info: dict[str, Any], results: dict[str, Any]) -> None:
    ours, evidently = results["nightscore"], results.get("evidently")
    streams = results.get("stream", {})
    print(
        f"\n{'path':<30}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}{'data MB':>9}"
    )
    lines = [("nightscore", ours), ("evidently", evidently)]
    lines += [("stream", r) for r in streams.values()]
    lines += [(p, results[p]) for p in ("html", "page") if p in results]
    for path, r in lines:
        if r is None:
            print(f"{LABELS[path]:<30}{'skipped':>12}")
            continue
        print(
            f"{LABELS[path]:<30}{r['rows']:>12,}{r['seconds']:>10.1f}"
            f"{r['rows'] / r['seconds']:>12,.0f}{r['peak_rss_mb']:>13,.0f}{r['base_rss_mb']:>9,.0f}"
        )
    print("(data MB: the process's RSS with its rows built, before the clock)")
    steps = ours["steps"]
    print(
        f"nightscore's {ours['seconds']:.2f} s: the profile {steps['profile_seconds']:.2f} s "
        f"(from {info['training_rows']:,} flights of {info['training_nights']} nights and "
        f"{info['reference_rows']:,} reference rows), its JSON round trip "
        f"{steps['json_seconds']:.2f} s ({steps['profile_json_mb']:.1f} MB), check_night "
        f"{steps['check_seconds']:.2f} s ({args.rows:,} rows in chunks of {args.chunk_rows:,})"
    )
    verdict = ours["assessment"]
    print(
        f"the evening's verdict: {'warned' if verdict['warned'] else 'quiet'}"
        f"{': ' + '; '.join(verdict['reasons']) if verdict['reasons'] else ''} "
        f"(moved: {', '.join(verdict['moved']) or 'none'}; mean risk "
        f"{verdict['score_mean']:.4f}, z {verdict['score_z']:.2f}; expected AUC "
        f"{verdict['expected_auc']:.4f}; sample of {verdict['sample_rows']:,} rows)"
    )

    if evidently:
        cmp = compare(ours["drift"], evidently["drift"], verdict["flags"])
        print(
            f"\n{'column':<28}{'test':<15}{'Evidently':>12}{'nightscore':>12}"
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
        cmp = {"flags_agree": None, "max_abs_error": None, "rows": []}
    streamed_same = None
    if args.rows in streams:
        streamed_same = streamed_difference(ours, streams[args.rows])
        same_sample = streams[args.rows]["assessment"]["sample_hash"] == verdict["sample_hash"]
    growth = None
    if len(streams) == 2:
        small, large = (streams[k] for k in sorted(streams))
        growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1

    html, page = results.get("html"), results.get("page")
    figures = {
        "rows": args.rows,
        "seconds": round(ours["seconds"], 3),
        "peak_rss_mb": round(ours["peak_rss_mb"]),
        "evidently_full_seconds": round(evidently["seconds"], 2) if evidently else None,
        "evidently_peak_rss_mb": round(evidently["peak_rss_mb"]) if evidently else None,
        "speedup": round(evidently["seconds"] / ours["seconds"], 1) if evidently else None,
        "flags_agree": cmp["flags_agree"],
        "max_abs_error": float(f"{cmp['max_abs_error']:.3g}") if evidently else None,
        "stream_rss_growth": round(growth, 4) if growth is not None else None,
    }

    # The goals, nightscore and Evidently side by side.
    print(f"\n{'goal':<48}{'nightscore':>12}{'Evidently':>12}{'ratio':>9}  {'goal':<14}")
    rows_m = f"{args.rows / 1e6:g}M"

    def goal(what: str, value: str, theirs: str, ratio: str, target: str, met: bool) -> None:
        print(
            f"{what:<48}{value:>12}{theirs:>12}{ratio:>9}  {target:<14}{'met' if met else 'MISSED'}"
        )

    if evidently:
        goal(
            f"wall time, {rows_m} rows",
            f"{ours['seconds']:.2f} s",
            f"{evidently['seconds']:.1f} s",
            f"{figures['speedup']:g}x",
            f">= {GOALS['speedup']:g}x",
            figures["speedup"] >= GOALS["speedup"],
        )
    goal(
        f"peak RSS, {rows_m} rows",
        f"{ours['peak_rss_mb']:,.0f} MB",
        f"{evidently['peak_rss_mb']:,.0f} MB" if evidently else "-",
        f"{evidently['peak_rss_mb'] / ours['peak_rss_mb']:.1f}x" if evidently else "",
        f"<= {GOALS['peak_rss_mb']:,.0f} MB",
        ours["peak_rss_mb"] <= GOALS["peak_rss_mb"],
    )
    if evidently:
        columns = len(cmp["rows"])
        goal(
            f"flags equal, {columns} columns (+{cmp['stored_flags']} stored)",
            "yes" if cmp["flags_agree"] else "NO",
            "",
            "",
            "all equal",
            bool(cmp["flags_agree"]),
        )
    if growth is not None:
        small, large = (streams[k] for k in sorted(streams))
        goal(
            f"streamed {large['rows'] / 1e6:g}M's peak RSS over {small['rows'] / 1e6:g}M's",
            f"{100 * growth:+.1f} %",
            "",
            "",
            f"<= {100 * GOALS['stream_rss_growth']:g} %",
            growth <= GOALS["stream_rss_growth"],
        )
    for name, r in (("one day", html), ("evening sample", page)):
        if r:
            goal(
                f"Evidently's page, {name} ({r['rows']:,} rows)",
                f"{r['html_bytes'] / 1e6:.2f} MB",
                "",
                "",
                f"< {GOALS['html_mb']:g} MB",
                r["html_bytes"] / 1e6 < GOALS["html_mb"],
            )
    if evidently:
        print(
            f"{'largest |statistic - Evidently full|':<48}{cmp['max_abs_error']:>12.2g}"
            f"    (tolerance 1e-4; error bound, largest: "
            f"{max(r['bound'] for r in cmp['rows']):.2g})"
        )
    if streamed_same is not None:
        print(
            f"{'streamed vs in memory, largest |diff|':<48}{streamed_same:>12.2g}"
            f"    (the same evening sample: {'yes' if same_sample else 'NO'})"
        )
    load = info["load_avg"]
    print(
        f"Timings are wall clock on a shared {os.cpu_count()}-core machine; load average "
        f"{load['before']:.1f} before the paths, {load['mean']:.1f} on average while they ran "
        f"(at most {load['max']:.1f}), {load['after']:.1f} after. Rows: {info['source']}."
    )
    details = {
        **{
            k: info[k]
            for k in ("source", "training_rows", "training_nights", "reference_rows", "pool_rows")
        },
        "chunk_rows": args.chunk_rows,
        "steps": {k: round(v, 3) for k, v in steps.items()},
        "nightscore_base_rss_mb": round(ours["base_rss_mb"]),
        "evidently_base_rss_mb": round(evidently["base_rss_mb"]) if evidently else None,
        "streamed": {
            str(rows): {
                "seconds": round(r["seconds"], 2),
                "peak_rss_mb": round(r["peak_rss_mb"]),
                "base_rss_mb": round(r["base_rss_mb"]),
            }
            for rows, r in streams.items()
        },
        "streamed_vs_in_memory_max_diff": streamed_same,
        "html_day": info.get("html_day"),
        "html_day_rows": html["rows"] if html else None,
        "html_bytes": html["html_bytes"] if html else None,
        "html_seconds": round(html["seconds"], 2) if html else None,
        "evening_page_rows": page["rows"] if page else None,
        "evening_page_bytes": page["html_bytes"] if page else None,
        "evening_page_seconds": round(page["seconds"], 2) if page else None,
        "warned": verdict["warned"],
        "reasons": verdict["reasons"],
        "moved": verdict["moved"],
        "expected_auc": verdict["expected_auc"],
        "drifted_columns": ours["drift"]["drifted_columns"],
        "score_drifted": ours["drift"]["score"]["drifted"] if ours["drift"]["score"] else None,
        "stored_flags": cmp.get("stored_flags"),
        "load_avg": load,
        "cpus": os.cpu_count(),
        "total_seconds": info["total_seconds"],
    }
    print("details " + json.dumps(details))
    print(json.dumps(figures))


def main(argv: list[str] | None = None) -> None:
    from nightscore.scoring import CHUNK_ROWS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="flights in the night")
    parser.add_argument(
        "--stream-rows",
        type=int,
        default=10_000_000,
        help="also stream this many rows (and --rows) in chunks, to compare peak RSS; 0: skip",
    )
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=CHUNK_ROWS,
        help="rows per chunk (default: scoring's, as the warehouse gives them)",
    )
    parser.add_argument("--skip-evidently", action="store_true", help="do not run Evidently")
    parser.add_argument("--skip-html", action="store_true", help="do not measure the HTML pages")
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
    parser.add_argument("--keep", type=Path, default=None, help="copy the HTML pages here")
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
        load = LoadWatch()
        results: dict[str, Any] = {"nightscore": measure("nightscore", base, tmp)}
        if not args.skip_evidently:
            results["evidently"] = measure("evidently", base, tmp)
        if args.stream_rows:
            results["stream"] = {
                rows: measure("stream", {**base, "rows": rows}, tmp)
                for rows in sorted({args.rows, args.stream_rows})
            }
        if not args.skip_html:
            out = args.keep or tmp
            out.mkdir(parents=True, exist_ok=True)
            results["html"] = measure(
                "html",
                {**base, "html_out": str(out / "drift_report_day.html")},
                tmp,
                rows=info["html_day_rows"],
            )
            results["page"] = measure(
                "page",
                {**base, "html_out": str(out / "drift_report_evening.html")},
                tmp,
                rows=results["nightscore"]["assessment"]["sample_rows"],
            )
        info["load_avg"] = load.stop()
    info["total_seconds"] = round(time.monotonic() - started, 1)
    report(args, info, results)


if __name__ == "__main__":
    main()
