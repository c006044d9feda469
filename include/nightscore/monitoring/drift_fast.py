"""The fast drift path: the tests Evidently's default picks (`drift_methods`), computed
from statistics of the reference precomputed once per model (`reference_stats`, JSON-ready)
and from the current rows streamed in chunks (`fast_drift`), so 10M rows need no more
memory than 1M.

It gives the same tests and statistics as Evidently up to float rounding (about 1e-14),
except the Wasserstein distance: it comes from binned current rows (see `_Numeric`) and
is within its `error_bound` of the exact one, a bound computed from the data. The stated
tolerance is 1e-4 (in standard deviations of the reference, against a threshold of 0.1);
on 1M real rows the largest deviation is 1.5e-6, within its bound (`benchmarks/drift.py`
measures it against Evidently). A flag could differ from Evidently's only if the distance
were within `error_bound` of 0.1. pandas and scipy are imported when used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nightscore.features import FEATURES
from nightscore.monitoring.drift_methods import (
    CATEGORICAL_KIND,
    FEW_VALUES,
    NUMERIC,
    SCORE,
    SMALL_REFERENCE_ROWS,
    ColumnDrift,
    DriftResult,
    Method,
    clean,
    default_method,
    kind,
    with_score,
)

if TYPE_CHECKING:
    import pandas as pd

# scipy's ks_2samp computes the exact p-value up to this many rows per sample.
KS_EXACT_ROWS = 10_000
# The Wasserstein grid: each gap between two consecutive reference values in SUBBINS
# equal bins, plus UNIFORM_EDGES evenly over the reference's range (sparse tails).
SUBBINS = 8
UNIFORM_EDGES = 4096
STATS_FORMAT = 1


def reference_stats(
    reference: pd.DataFrame, columns: Sequence[str] = FEATURES, score: str | None = SCORE
) -> dict[str, Any]:
    """What `fast_drift` needs of the reference sample, as JSON-ready data.

    Numeric columns keep their distinct values with counts and the standard deviation
    (as Evidently computes it); categorical columns their value counts. For a 5,000-row
    sample that is at most the sample itself.
    """
    names = with_score(columns, score, reference)
    stats: dict[str, Any] = {}
    for name in names:
        column_kind = kind(name, reference)
        values_present = clean(reference[name])
        if values_present.empty:
            raise ValueError(f"the reference has no values in column {name!r}")
        if column_kind == NUMERIC:
            values, counts = np.unique(values_present.to_numpy(dtype="float64"), return_counts=True)
            entry = {
                "values": values.tolist(),
                "counts": counts.tolist(),
                # Evidently's norm: np.std of the reference as it comes (its dtype too).
                "std": float(np.std(values_present)),
            }
        else:
            counts = values_present.value_counts()
            entry = {"values": counts.index.tolist(), "counts": counts.to_numpy().tolist()}
        stats[name] = {
            "kind": column_kind,
            "role": "score" if name == score else "feature",
            **entry,
        }
    return {
        "format": STATS_FORMAT,
        "reference_rows": len(reference),
        "score": score if score in names else None,
        "columns": stats,
    }


class _Categorical:
    """Value counts of the current rows."""

    def __init__(self, name: str, stats: dict[str, Any]):
        self.name = name
        self.reference = dict(zip(stats["values"], stats["counts"], strict=True))
        self.n = sum(self.reference.values())
        self.current: dict[Any, int] = {}
        self.m = 0

    def add(self, series: pd.Series) -> None:
        for value, count in clean(series).value_counts().items():
            self.current[value] = self.current.get(value, 0) + int(count)
            self.m += int(count)

    def result(self) -> ColumnDrift:
        keys = list(self.reference.keys() | self.current.keys())
        method = default_method(CATEGORICAL_KIND, self.n, len(keys))
        return _counts_test(self.name, CATEGORICAL_KIND, method, keys, self)


class _Numeric:
    """Histogram of the current rows on a grid made of the reference's distinct values
    (each gap split into SUBBINS equal bins) and UNIFORM_EDGES even steps over its range;
    per bin, the count and the sum and sum of squares of the rows' offsets from its left
    edge: about 2 MB per column for a 5,000-row reference, however many rows stream by.
    Plus, when Evidently would need them: counts per value while there are at most
    FEW_VALUES distinct values, and for Kolmogorov-Smirnov the counts at each reference
    value and the raw rows while there are at most KS_EXACT_ROWS.

    Wasserstein is the integral of |F_ref - F_cur|. F_ref is constant on each bin, so
    the integral over a bin follows from its count and sum, exactly, unless F_cur
    crosses F_ref's level inside the bin. Then it lies between two bounds: at most the
    value with all the bin's rows at their mean, and at least that minus
    2 (share of rows) x std x sqrt(a (1 - a)), where a is where the level cuts the
    bin's rows (and never below |level x width - integral of F_cur|). Rows that repeat
    one value (real features often do) have std 0: exact. The estimate is the
    midpoint; half the gap is the bin's error bound.
    """

    def __init__(self, name: str, stats: dict[str, Any]):
        self.name = name
        self.values = np.asarray(stats["values"], dtype="float64")
        counts = np.asarray(stats["counts"], dtype="int64")
        self.n = int(counts.sum())
        self.std = float(stats["std"])
        self.reference_counts = counts
        self.reference_cdf = np.cumsum(counts) / self.n
        k = len(self.values)
        if k > 1:
            gaps = np.diff(self.values)[:, None] * (np.arange(SUBBINS) / SUBBINS)
            grid = np.concatenate(
                [
                    (self.values[:-1, None] + gaps).ravel(),
                    self.values[-1:],
                    np.linspace(self.values[0], self.values[-1], UNIFORM_EDGES),
                ]
            )
            self.grid = np.unique(grid)  # sorted; rounding could merge edges of tiny gaps
        else:
            self.grid = self.values.copy()
        # Bin b holds grid[b-1] <= x < grid[b]; bin 0 is below the reference, the last
        # one at or above its maximum.
        self.left = np.concatenate([self.grid[:1], self.grid])
        where = np.searchsorted(self.values, self.grid, side="right") - 1
        self.level = np.concatenate([[0.0], self.reference_cdf[where]])  # F_ref on bin b
        self.count = np.zeros(len(self.grid) + 1, dtype="int64")
        self.offset = np.zeros(len(self.grid) + 1, dtype="float64")
        self.square = np.zeros(len(self.grid) + 1, dtype="float64")
        self.m = 0
        # Counts per value while reference and current have at most FEW_VALUES in all.
        self.few: dict[float, int] | None = {} if k <= FEW_VALUES else None
        self.ks = self.n <= SMALL_REFERENCE_ROWS
        self.at_value = np.zeros(k, dtype="int64") if self.ks else None
        self.raw: list[np.ndarray] | None = [] if self.ks else None

    def add(self, series: pd.Series) -> None:
        x = series.to_numpy(dtype="float64", na_value=np.nan)
        # Sorted, each bin is a run of rows: sorting and searching the grid's edges in
        # the rows costs a fifth of searching each row in the grid.
        x = np.sort(x[np.isfinite(x)])
        if not x.size:
            return
        self.m += x.size
        below = np.searchsorted(x, self.grid, side="left")  # rows below each edge
        counts = np.diff(below, prepend=0, append=x.size)
        self.count += counts
        bins = np.repeat(np.arange(len(counts)), counts)
        offsets = x - self.left[bins]
        self.offset += np.bincount(bins, weights=offsets, minlength=len(counts))
        self.square += np.bincount(bins, weights=offsets * offsets, minlength=len(counts))
        if self.few is not None:
            self._add_few(x)
        if self.ks:
            assert self.at_value is not None
            at_or_below = np.searchsorted(x, self.values, side="right")
            self.at_value += at_or_below - np.searchsorted(x, self.values, side="left")
            if self.raw is not None:
                self.raw.append(x)
                if self.m > KS_EXACT_ROWS:
                    self.raw = None

    def _add_few(self, x: np.ndarray) -> None:
        """Counts per value of sorted rows, until there are more than FEW_VALUES."""
        assert self.few is not None
        starts = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
        if len(starts) > FEW_VALUES:
            self.few = None
            return
        counts = np.diff(starts, append=x.size)
        for value, count in zip(x[starts].tolist(), counts.tolist(), strict=True):
            self.few[value] = self.few.get(value, 0) + count
        if len(set(self.few) | set(self.values.tolist())) > FEW_VALUES:
            self.few = None

    def distinct_values(self) -> int:
        """Distinct values of reference and current together, or FEW_VALUES + 1 for more."""
        if self.few is None:
            return FEW_VALUES + 1
        return len(set(self.few) | set(self.values.tolist()))

    def result(self) -> ColumnDrift:
        method = default_method(NUMERIC, self.n, self.distinct_values())
        if method.name == "wasserstein":
            statistic, bound = self._wasserstein()
        elif method.name == "ks":
            statistic, bound = self._ks(), 0.0
        else:
            keys = sorted(set(self.few or {}) | set(self.values.tolist()))
            return _counts_test(self.name, NUMERIC, method, keys, self)
        return ColumnDrift(
            column=self.name,
            kind=NUMERIC,
            method=method.name,
            statistic=statistic,
            threshold=method.threshold,
            drifted=method.drifted(statistic),
            error_bound=bound,
        )

    @property
    def reference(self) -> dict[float, int]:
        return dict(zip(self.values.tolist(), self.reference_counts.tolist(), strict=True))

    @property
    def current(self) -> dict[float, int]:
        return self.few or {}

    def _wasserstein(self) -> tuple[float, float]:
        m = self.m
        count, offset = self.count, self.offset
        # Below the reference's minimum F_ref = 0, at or above its maximum F_ref = 1:
        # the integral of |F_ref - F_cur| there is the rows' distance to that edge.
        tails = (-offset[0] + offset[-1]) / m
        inner = slice(1, len(count) - 1)
        width = np.diff(self.grid)
        level = self.level[inner]
        n_bin = count[inner]
        before = np.cumsum(count)[:-2]  # current rows below each inner bin
        lo, hi = before / m, (before + n_bin) / m
        integral = hi * width - offset[inner] / m  # of F_cur over the bin
        low = np.abs(level * width - integral)
        crossing = (level > lo) & (level < hi)
        has = n_bin > 0
        mean = np.divide(offset[inner], n_bin, out=np.zeros(len(n_bin)), where=has)
        second = np.divide(self.square[inner], n_bin, out=np.zeros(len(n_bin)), where=has)
        spread = np.sqrt(np.clip(second - mean * mean, 0, None))
        high = (level - lo) * mean + (hi - level) * (width - mean)
        cut = np.clip(np.divide(level - lo, hi - lo, out=np.zeros(len(n_bin)), where=has), 0, 1)
        low = np.maximum(low, high - 2 * (hi - lo) * spread * np.sqrt(cut * (1 - cut)))
        estimate = np.where(crossing, (low + high) / 2, low)
        bound = np.where(crossing, np.maximum(high - low, 0) / 2, 0.0)
        norm = max(self.std, 0.001)
        return float((tails + estimate.sum()) / norm), float(bound.sum() / norm)

    def _ks(self) -> float:
        from scipy import stats

        reference = np.repeat(self.values, self.reference_counts)
        if self.raw is not None:  # scipy's exact p-value, on the rows themselves
            return float(stats.ks_2samp(reference, np.concatenate(self.raw))[1])
        n, m = self.n, self.m
        # Current rows below each reference value, then at or below it.
        # Bin b holds [grid[b-1], grid[b]), so bins 0..i are below grid[i] = a value.
        below = np.cumsum(self.count)[np.searchsorted(self.grid, self.values, side="left")]
        at_or_below = below + self.at_value
        cdf = self.reference_cdf
        diffs = np.concatenate(
            [
                [0.0, -below[0] / m],
                cdf - at_or_below / m,  # at each reference value
                cdf[:-1] - below[1:] / m,  # just before the next one
            ]
        )
        d = max(float(diffs.max()), float(np.clip(-diffs.min(), 0, 1)))
        big, small = sorted([float(n), float(m)], reverse=True)
        p = stats.kstwo.sf(d, np.round(big * small / (big + small)))
        return float(np.clip(p, 0, 1))


def _counts_test(
    name: str, kind: str, method: Method, keys: list[Any], acc: _Numeric | _Categorical
) -> ColumnDrift:
    """Jensen-Shannon, chi-squared or z on value counts, as Evidently computes them."""
    from scipy import stats
    from scipy.spatial import distance

    ref = np.array([acc.reference.get(k, 0) for k in keys], dtype="float64")
    cur = np.array([acc.current.get(k, 0) for k in keys], dtype="float64")
    n, m = acc.n, acc.m
    if method.name == "jensenshannon":
        statistic = float(distance.jensenshannon(ref / n, cur / m))
    elif method.name == "chisquare":
        with np.errstate(divide="ignore", invalid="ignore"):  # values new in current
            statistic = float(stats.chisquare(cur, ref * (m / n))[1])
    else:  # z: the share of rows that are not the smallest value, reference vs current
        ref_values = [k for k in keys if acc.reference.get(k, 0)]
        cur_values = [k for k in keys if acc.current.get(k, 0)]
        if len(ref_values) == 1 and len(cur_values) == 1 and ref_values == cur_values:
            statistic = 1.0
        else:
            first = sorted(keys)[0]
            p1 = float(n - acc.reference.get(first, 0)) / n
            p2 = float(m - acc.current.get(first, 0)) / m
            pooled = float(p1 * n + p2 * m) / (n + m)
            z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n + 1.0 / m))
            statistic = float(2 * (1 - stats.norm.cdf(np.abs(z))))
    return ColumnDrift(
        column=name,
        kind=kind,
        method=method.name,
        statistic=statistic,
        threshold=method.threshold,
        drifted=method.drifted(statistic),
    )


def fast_drift(
    stats: dict[str, Any],
    current: pd.DataFrame | Iterable[pd.DataFrame],
    columns: Sequence[str] | None = None,
) -> DriftResult:
    """The tests Evidently's default picks, from `reference_stats` and the current rows
    (a DataFrame, or an iterator of DataFrame chunks read once; memory is per chunk).

    `columns` defaults to every feature in `stats`; the score is added when `stats` has it.
    """
    import pandas as pd

    if stats.get("format") != STATS_FORMAT:
        raise ValueError(
            f"reference statistics of format {stats.get('format')!r}, not {STATS_FORMAT}"
        )
    score = stats.get("score")
    known = stats["columns"]
    names = [n for n in known if n != score] if columns is None else list(columns)
    if score and score not in names:
        names.append(score)
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"no reference statistics for: {', '.join(missing)}")
    accumulators = {
        n: (_Numeric if known[n]["kind"] == NUMERIC else _Categorical)(n, known[n]) for n in names
    }
    chunks = [current] if isinstance(current, pd.DataFrame) else current
    rows = 0
    for chunk in chunks:
        rows += len(chunk)
        for name, acc in accumulators.items():
            acc.add(chunk[name])
        del chunk  # before the next one is made: one chunk in memory at a time
    skipped = tuple(n for n, acc in accumulators.items() if acc.m == 0)
    results = {n: acc.result() for n, acc in accumulators.items() if n not in skipped}
    return DriftResult(
        columns=tuple(results[n] for n in names if n != score and n in results),
        score=results.get(score) if score else None,
        reference_rows=int(stats["reference_rows"]),
        current_rows=rows,
        skipped=skipped,
    )
