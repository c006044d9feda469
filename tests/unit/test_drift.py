"""Drift: known shifts are flagged, and only they, by Evidently and by the fast path; the
fast path agrees with Evidently's full computation; the day's HTML report stays small."""

from __future__ import annotations

import json
import math
import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nightscore.features import FEATURES, NUMERIC_FEATURES
from nightscore.monitoring import drift, drift_fast
from nightscore.monitoring.drift_methods import DriftResult

# Evidently's report on 5,000-row frames (the module's `production`): 24 s of CPU,
# 31 s for the module (2 cores, `--durations`); `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

CARRIERS = ["UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E", "WN", "VX"]
DESTS = [f"D{i:02d}" for i in range(20)]
SHIFTED = {"temp", "carrier", "distance"}
# Statistics of the fast path vs Evidently's: p-values and Jensen-Shannon to float
# rounding, Wasserstein within its error bound; the module states 1e-4.
TOLERANCE = 1e-4


def flights(rows: int, seed: int) -> pd.DataFrame:
    """Flights with every feature, of the warehouse's types: strings, integers, rounded
    readings with nulls, few-valued plane columns, rates; and a score."""
    rng = np.random.default_rng(seed)

    def nulls(values: np.ndarray, share: float) -> np.ndarray:
        values = values.astype("float64")
        values[rng.random(rows) < share] = np.nan
        return values

    def ints(low: int, high: int) -> np.ndarray:
        return rng.integers(low, high, rows).astype("float64")

    frame = {
        "carrier": rng.choice(CARRIERS, rows, p=np.arange(10, 0, -1) / 55),
        "origin": rng.choice(["EWR", "JFK", "LGA"], rows),
        "dest": rng.choice(DESTS, rows),
        "month": np.full(rows, 3.0),
        "day_of_week": ints(1, 8),
        "dep_hour": ints(5, 24),
        "dep_minute": ints(0, 60),
        "arr_hour": ints(0, 24),
        "distance": np.round(rng.lognormal(6.6, 0.5, rows)),
        "days_to_holiday": ints(0, 20),
        "plane_leg_of_day": ints(0, 5),  # 5 values: Jensen-Shannon, not Wasserstein
        "plane_prev_gap_min": nulls(rng.gamma(3, 60, rows).round(), 0.6),
        "temp": np.round(rng.normal(45, 10, rows), 2),
        "wind_gust": nulls(rng.gamma(8, 3, rows).round(3), 0.7),
        "precip": nulls(rng.choice([0, 0, 0, 0, 0.01, 0.02, 0.05], rows), 0.01),
        "visib": rng.choice([10.0, 10, 10, 5, 2, 1], rows),
        "plane_age": nulls(ints(0, 30), 0.17),
        "plane_seats": nulls(rng.choice([55, 100, 149, 178, 200, 379], rows), 0.16),
        "plane_engines": nulls(rng.choice([1, 2, 2, 2, 3], rows), 0.16),
        "plane_known": (rng.random(rows) > 0.16).astype("float64"),
        "hist_flight_count": ints(0, 29),
        "score": rng.beta(2, 5, rows).astype("float32"),
    }
    for name in NUMERIC_FEATURES:
        if name not in frame:  # counts, the rest of the weather, history rates
            frame[name] = np.round(rng.gamma(4 + len(name) % 5, 2 + len(name) % 3, rows), 3)
    return pd.DataFrame(frame)[[*FEATURES, "score"]]


def shift(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The known shifts: warmer, another carrier mix, longer flights."""
    out = frame.copy()
    out["temp"] = out["temp"] + 15
    out.loc[np.random.default_rng(seed).random(len(out)) < 0.5, "carrier"] = "WN"
    out["distance"] = out["distance"] * 1.3
    return out


class Run(NamedTuple):
    evidently: DriftResult
    fast: DriftResult
    current: pd.DataFrame
    stats: dict


def both(reference: pd.DataFrame, current: pd.DataFrame, columns=FEATURES) -> Run:
    """Evidently on the frames; the fast path from the statistics, through JSON."""
    stats_json = json.loads(json.dumps(drift_fast.reference_stats(reference, columns)))
    return Run(
        evidently=drift.evidently_drift(reference, current, columns),
        fast=drift_fast.fast_drift(stats_json, current, columns),
        current=current,
        stats=stats_json,
    )


@pytest.fixture(scope="module")
def production():
    """A model's 5,000-row reference and a night of 5,000 flights drawn independently
    from the same distribution, then shifted; wind gust is null all night (calm weather).

    5,000 rows, not a day's 1,000: with 1,000, sampling noise alone takes the normed
    Wasserstein distance of some column over 0.1 for about one seed in three (Evidently's
    default is that sensitive); with 5,000 the largest over 30 seeds is 0.082."""
    reference = flights(5000, seed=1)
    current = shift(flights(5000, seed=2), seed=3)
    current["wind_gust"] = np.nan
    return both(reference, current)


@pytest.fixture(scope="module")
def small():
    """A reference of 800 rows (so Evidently tests p-values) and 500 of its own rows,
    shifted. A p-value test flags 5 % of columns by chance on independent samples; on
    the reference's own rows the unshifted columns' p-values stay high."""
    reference = flights(800, seed=4)
    columns = [
        *("carrier", "origin", "dest", "distance", "temp", "dep_hour"),
        *("plane_engines", "plane_known", "visib", "plane_prev_gap_min", "plane_age"),
    ]
    current = shift(reference.sample(500, random_state=5), seed=6)
    return both(reference, current, columns)


def test_production_sizes_use_wasserstein_and_jensen_shannon(production):
    methods = {c.column: c.method for c in production.evidently.columns}
    assert methods["temp"] == "wasserstein" and methods["carrier"] == "jensenshannon"
    assert methods["plane_leg_of_day"] == "jensenshannon"  # numeric, 5 distinct values
    assert production.evidently.score.method == "wasserstein"


@pytest.mark.parametrize("path", ["evidently", "fast"])
@pytest.mark.parametrize("which", ["production", "small"])
def test_known_shifts_are_flagged_and_nothing_else(request, which, path):
    result = getattr(request.getfixturevalue(which), path)
    assert set(result.drifted_columns) == SHIFTED
    assert result.share_drifted == pytest.approx(len(SHIFTED) / len(result.columns))
    # The score is reported on its own, and did not move.
    assert result.score.column == "score" and not result.score.drifted
    assert "score" not in [c.column for c in result.columns]


def test_small_references_use_p_values(small):
    methods = {c.column: c.method for c in small.evidently.columns}
    assert methods["temp"] == "ks"
    assert methods["carrier"] == "chisquare" and methods["origin"] == "chisquare"
    assert methods["plane_engines"] == "chisquare"  # numeric, 3 distinct values
    assert methods["plane_known"] == "z"


@pytest.mark.parametrize("which", ["production", "small"])
def test_fast_path_equals_evidently(request, which):
    run = request.getfixturevalue(which)
    full, fast = run.evidently, run.fast
    assert [c.column for c in fast.columns] == [c.column for c in full.columns]
    assert fast.skipped == full.skipped
    for ours, theirs in zip([*fast.columns, fast.score], [*full.columns, full.score], strict=True):
        if theirs is None:
            assert ours is None
            continue
        assert (ours.method, ours.threshold, ours.drifted) == (
            theirs.method,
            theirs.threshold,
            theirs.drifted,
        ), theirs.column
        assert abs(ours.statistic - theirs.statistic) <= max(TOLERANCE, ours.error_bound)
        assert ours.error_bound <= TOLERANCE


def test_a_column_with_no_values_tonight_is_skipped_by_both(production):
    assert production.evidently.skipped == production.fast.skipped == ("wind_gust",)


def test_streamed_chunks_give_the_whole_frames_answer(production):
    current, whole = production.current, production.fast
    chunks = (current.iloc[i : i + 1500] for i in range(0, len(current), 1500))
    streamed = drift_fast.fast_drift(production.stats, chunks)
    assert streamed.current_rows == whole.current_rows == len(current)
    for a, b in zip(
        [*streamed.columns, streamed.score], [*whole.columns, whole.score], strict=True
    ):
        assert a.drifted == b.drifted
        assert a.statistic == pytest.approx(b.statistic, abs=1e-12)


def test_fast_wasserstein_on_continuous_rows_is_within_its_bound():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"x": rng.lognormal(0, 1, 5000)})
    current = pd.DataFrame({"x": rng.lognormal(0.02, 1, 200_000)})
    result = drift_fast.fast_drift(
        drift_fast.reference_stats(reference, ["x"], score=None), current
    )
    exact = stats.wasserstein_distance(reference["x"], current["x"]) / np.std(reference["x"])
    column = result.column("x")
    assert abs(column.statistic - exact) <= column.error_bound <= TOLERANCE


def test_the_html_report_stays_under_the_limit(production, tmp_path):
    size = drift.save_html(production.evidently.snapshot, tmp_path / "drift.html")
    assert size == (tmp_path / "drift.html").stat().st_size
    assert size < drift.HTML_MAX_BYTES
    text = (tmp_path / "drift.html").read_text()
    assert "drawDashboard" in text and "__nightscore_plotly_template_0" in text


def test_ks_on_a_large_night_has_scipys_p_value():
    """Past 10,000 rows the p-value comes from the statistic alone (scipy's asymptotic
    formula, as ks_2samp uses there), so the rows need not be kept."""
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"x": np.round(rng.normal(0, 1, 800), 2)})
    current = pd.DataFrame({"x": np.round(rng.normal(0.03, 1, 60_000), 2)})
    stats_json = drift_fast.reference_stats(reference, ["x"], score=None)
    column = drift_fast.fast_drift(stats_json, current).column("x")
    assert column.method == "ks"
    assert column.statistic == pytest.approx(
        stats.ks_2samp(reference["x"], current["x"]).pvalue, rel=1e-9, abs=1e-15
    )


def _restore(value, templates):
    if isinstance(value, str) and value.startswith("__nightscore_plotly_template_"):
        return json.loads(templates[int(value.rsplit("_", 1)[1])])
    if isinstance(value, list):
        return [_restore(v, templates) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v, templates) for k, v in value.items()}
    return value


def _same(a, b, path=""):
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-300) or a == b, path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _same(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_the_compact_report_holds_what_evidentlys_page_holds(production):
    """What the page's script reads (the dashboard and its graph map) is unchanged, but
    for floats to 6 digits and the table's second copy of the graphs, which it never reads."""
    page = production.evidently.snapshot.get_html_str(as_iframe=False)
    compact = drift.compact_html(page)
    before, after = drift._DATA_BLOCK.search(page), drift._DATA_BLOCK.search(compact)
    templates = json.loads(re.search(r"\}\)\((\[.*\]), \[metric_", compact)[1])
    dashboard = json.loads(before["dashboard"])
    for widget in dashboard["widgets"]:
        for child in widget.get("widgets") or []:
            child.pop("additionalGraphs", None)
    _same(dashboard, _restore(json.loads(after["dashboard"]), templates))
    _same(json.loads(before["graphs"]), _restore(json.loads(after["graphs"]), templates))
    assert len(compact) < 0.7 * len(page)


def test_a_large_night_gets_evidentlys_flags_and_a_page_of_a_sample():
    """The morning's drift of a night larger than SAMPLE_ROWS: the flags of every column
    are those of Evidently on the whole night (the streaming path), the snapshot for the
    page is Evidently's of a sample; a night that fits keeps Evidently's own result."""
    from nightscore.monitoring.early_warning import SAMPLE_ROWS
    from nightscore.monitoring.monitor_drift import night_drift

    reference = flights(5000, seed=11)
    large = shift(flights(SAMPLE_ROWS + 3000, seed=12), seed=13)
    whole = drift.evidently_drift(reference, large, FEATURES)
    result = night_drift(reference, large, list(FEATURES))
    assert result.current_rows == len(large) and result.snapshot is not None
    assert [(c.column, c.drifted) for c in result.columns] == [
        (c.column, c.drifted) for c in whole.columns
    ]
    assert {"temp", "carrier", "distance"} <= set(result.drifted_columns)
    small = large.iloc[:1000]
    assert night_drift(reference, small, list(FEATURES)).current_rows == 1000
