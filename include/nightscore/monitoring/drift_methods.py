"""Evidently 0.7's drift tests, as both drift paths (`drift.evidently_drift`, the fast
`drift_fast.fast_drift`) choose and report them: `Method`, `default_method`, and the
result types `ColumnDrift` and `DriftResult`.

Evidently 0.7.23 picks the test per column from the reference size (rows that are not
null) and from the number of distinct values in reference and current together
(`evidently.legacy.calculations.stattests.registry._get_default_stattest`):

| reference rows | column | distinct values | test | drift when |
|---|---|---|---|---|
| > 1000 | numeric | > 5 | Wasserstein distance / std of reference | >= 0.1 |
| > 1000 | numeric | <= 5 | Jensen-Shannon distance of the value shares | >= 0.1 |
| > 1000 | categorical | any | Jensen-Shannon distance of the value shares | >= 0.1 |
| <= 1000 | numeric | > 5 | two-sample Kolmogorov-Smirnov p-value | <= 0.05 |
| <= 1000 | any | 3 to 5 (numeric), > 2 (categorical) | chi-squared p-value | < 0.05 |
| <= 1000 | any | <= 2 | two-proportion z-test p-value | < 0.05 |

Nulls and infinities are dropped first, on both sides. The reference sample of a model
has 5,000 rows, so in production the tests are Wasserstein and Jensen-Shannon; a column
that is mostly null (wind gust, the plane's previous gap) can fall to 1,000 or fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nightscore.features import CATEGORICAL

if TYPE_CHECKING:
    import pandas as pd

SCORE = "score"
NUMERIC, CATEGORICAL_KIND = "numeric", "categorical"
# Evidently 0.7's default choice of test (see the module docstring).
SMALL_REFERENCE_ROWS = 1000
FEW_VALUES = 5


@dataclass(frozen=True)
class Method:
    """One of Evidently's drift tests: its name in Evidently's output, default threshold,
    and whether drift is a large statistic (a distance) or a small one (a p-value)."""

    name: str
    evidently_name: str
    threshold: float
    distance: bool
    inclusive: bool  # drift at statistic == threshold

    def drifted(self, statistic: float, threshold: float | None = None) -> bool:
        limit = self.threshold if threshold is None else threshold
        if self.distance:
            return statistic >= limit if self.inclusive else statistic > limit
        return statistic <= limit if self.inclusive else statistic < limit


METHODS = {
    m.name: m
    for m in (
        Method("wasserstein", "Wasserstein distance (normed)", 0.1, True, True),
        Method("jensenshannon", "Jensen-Shannon distance", 0.1, True, True),
        Method("ks", "K-S p_value", 0.05, False, True),
        Method("chisquare", "chi-square p_value", 0.05, False, False),
        Method("z", "Z-test p_value", 0.05, False, False),
    )
}
BY_EVIDENTLY_NAME = {m.evidently_name: m for m in METHODS.values()}


def default_method(kind: str, reference_rows: int, distinct_values: int) -> Method:
    """Evidently 0.7's default test for a column (nulls already dropped)."""
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if kind == NUMERIC and distinct_values > FEW_VALUES:
            return METHODS["ks"]
        return METHODS["chisquare" if distinct_values > 2 else "z"]
    if kind == NUMERIC and distinct_values > FEW_VALUES:
        return METHODS["wasserstein"]
    return METHODS["jensenshannon"]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric or categorical
    method: str  # a key of METHODS
    statistic: float  # a distance or a p-value, as `method` says
    threshold: float
    drifted: bool
    # The fast path's statistic is within this of the exact one (0: exact).
    error_bound: float = 0.0


@dataclass(frozen=True)
class DriftResult:
    """Per-column drift of the features, and of the score on its own: a drifting score
    is a consequence of the features, so it does not count in `share_drifted`."""

    columns: tuple[ColumnDrift, ...]
    score: ColumnDrift | None
    reference_rows: int
    current_rows: int
    # Columns with no value in the current rows (wind gust on a calm day): nothing to test.
    skipped: tuple[str, ...] = ()
    # Evidently's snapshot, for `save_html` (None from the fast path).
    snapshot: Any = field(default=None, repr=False, compare=False)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    def column(self, name: str) -> ColumnDrift:
        for c in (*self.columns, *([self.score] if self.score else [])):
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "share_drifted": self.share_drifted,
            "drifted_columns": self.drifted_columns,
            "skipped": list(self.skipped),
            "score": asdict(self.score) if self.score else None,
            "columns": [asdict(c) for c in self.columns],
        }


def kind(name: str, frame: pd.DataFrame) -> str:
    """`CATEGORICAL_KIND` for a categorical feature or a column that is not numeric, else
    `NUMERIC`."""
    import pandas as pd

    if name in CATEGORICAL or not pd.api.types.is_numeric_dtype(frame[name]):
        return CATEGORICAL_KIND
    return NUMERIC


def with_score(columns: Sequence[str], score: str | None, *frames: Any) -> list[str]:
    """`columns`, and `score` after them when every frame has it."""
    names = list(columns)
    if score and score not in names and all(score in f for f in frames):
        names.append(score)
    return names


def clean(series: pd.Series) -> pd.Series:
    """What Evidently tests: infinities are nulls, nulls are dropped."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series):
        return series.replace([np.inf, -np.inf], np.nan).dropna()
    return series.dropna()
