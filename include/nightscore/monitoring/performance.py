"""Performance once outcomes land: for each model version that scored service date S,
how good were its predictions, overall, by origin, by carrier and over the trailing 7 days.

Results replace S's rows in `monitoring.performance` in one transaction (a re-run leaves
the same rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text

from nightscore import sql
from nightscore.config import Settings
from nightscore.errors import DataError
from nightscore.metrics import Metrics, classification_metrics

if TYPE_CHECKING:
    import pandas as pd

TRAILING_DAYS = 7


class NothingToMeasure(DataError, LookupError):
    """No predictions joined with outcomes for the date."""


def segment_metrics(frame: pd.DataFrame) -> Metrics:
    """The metrics of one group of predictions joined with their outcomes
    (`nightscore.metrics`, with the flags scoring set and the group's threshold)."""
    return classification_metrics(
        frame["disrupted"].to_numpy(dtype=int),
        frame["score"].to_numpy(dtype=float),
        float(frame["threshold"].iloc[0]),
        flagged=frame["label"].to_numpy(dtype=bool),
    )


@dataclass(frozen=True)
class PerformanceRow:
    model_name: str
    model_version: int
    segment_type: str
    segment: str
    metrics: Metrics


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
        result = conn.execute(
            text(sql.load("monitoring/performance_joined")), {"first": first, "last": service_date}
        )
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if frame.empty or not (frame["service_date"] == service_date).any():
        raise NothingToMeasure(
            f"no predictions of {service_date} have outcomes yet: was it scored, and are its "
            "outcomes loaded?"
        )
    rows = measure_frame(frame, service_date)
    with engine.begin() as conn:
        conn.execute(
            text(sql.load("monitoring/performance_delete_day")), {"service_date": service_date}
        )
        conn.execute(
            text(sql.load("monitoring/performance_insert")),
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
