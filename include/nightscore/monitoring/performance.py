"""Performance once outcomes land: for each model version that scored service date S,
how good were its predictions, overall, by origin, by carrier and over the trailing 7 days.

Results replace S's rows in `monitoring.performance` in one transaction (a re-run leaves
the same rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from nightscore.config import Settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TRAILING_DAYS = 7
ECE_BINS = 10

# The label comes from analytics.flights, the one place outside the feature query that
# says what "disrupted" means; NULL until the flight's outcome is loaded.
_JOINED = """
SELECT p.service_date, p.carrier, p.origin, p.model_name, p.model_version, p.score,
       p.label, p.threshold, f.disrupted::int AS disrupted
FROM scoring.predictions p
JOIN analytics.flights f USING (service_date, carrier, flight, origin)
WHERE p.service_date BETWEEN :first AND :last AND f.disrupted IS NOT NULL
"""


class NothingToMeasure(LookupError):
    """No predictions joined with outcomes for the date."""


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by size."""
    import numpy as np

    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(y))


def segment_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """The metrics of one group of predictions joined with their outcomes."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = frame["disrupted"].to_numpy(dtype=int)
    p = frame["score"].to_numpy(dtype=float)
    label = frame["label"].to_numpy(dtype=bool)
    both = len(np.unique(y)) == 2
    tp = int((label & (y == 1)).sum())
    flagged, positives = int(label.sum()), int(y.sum())
    precision = tp / flagged if flagged else None
    recall = tp / positives if positives else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    return {
        "rows": len(y),
        "positives": positives,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
        "mean_score": float(p.mean()),
        "threshold": float(frame["threshold"].iloc[0]),
    }


@dataclass(frozen=True)
class PerformanceRow:
    model_name: str
    model_version: int
    segment_type: str
    segment: str
    metrics: dict[str, Any]


def measure_frame(frame: pd.DataFrame, service_date: date) -> list[PerformanceRow]:
    """Every row of `monitoring.performance` for S, from predictions joined with outcomes
    of S and the days before it (for the trailing window). Pure: DataFrame in."""
    rows: list[PerformanceRow] = []
    today = frame[frame["service_date"] == service_date]
    for (name, version), group in today.groupby(["model_name", "model_version"]):
        rows.append(PerformanceRow(name, int(version), "all", "all", segment_metrics(group)))
        for segment_type in ("origin", "carrier"):
            for value, part in group.groupby(segment_type):
                rows.append(
                    PerformanceRow(
                        name, int(version), segment_type, str(value), segment_metrics(part)
                    )
                )
        trailing = frame[
            (frame["model_name"] == name)
            & (frame["model_version"] == version)
            & (frame["service_date"] > service_date - timedelta(days=TRAILING_DAYS))
        ]
        days = trailing["service_date"].nunique()
        rows.append(
            PerformanceRow(
                name, int(version), "trailing_7d", f"{days} days", segment_metrics(trailing)
            )
        )
    return rows


def measure(service_date: date, settings: Settings) -> list[PerformanceRow]:
    """Compute and store S's performance; NothingToMeasure when nothing joined."""
    import pandas as pd

    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    first = service_date - timedelta(days=TRAILING_DAYS - 1)
    with engine.connect() as conn:
        result = conn.execute(text(_JOINED), {"first": first, "last": service_date})
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if frame.empty or not (frame["service_date"] == service_date).any():
        raise NothingToMeasure(
            f"no predictions of {service_date} have outcomes yet: was it scored, and are its "
            "outcomes loaded?"
        )
    rows = measure_frame(frame, service_date)
    columns = list(rows[0].metrics)
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM monitoring.performance WHERE service_date = :d"),
            {"d": service_date},
        )
        conn.execute(
            text(
                f"""
                INSERT INTO monitoring.performance
                    (service_date, model_name, model_version, segment_type, segment,
                     {", ".join(columns)})
                VALUES (:service_date, :model_name, :model_version, :segment_type, :segment,
                        {", ".join(":" + c for c in columns)})
                """
            ),
            [
                {
                    "service_date": service_date,
                    "model_name": r.model_name,
                    "model_version": r.model_version,
                    "segment_type": r.segment_type,
                    "segment": r.segment,
                    **r.metrics,
                }
                for r in rows
            ],
        )
    return rows
