"""The one feature builder: training, scoring and evaluation all call `build_features`.

Features for service date S use only what was known on the evening of S-1: the schedule
and the weather forecast for S, the reference tables, and outcomes up to S-2 (the
outcomes of S-1 land the morning after S is scored). The SQL below enforces that in one
place: every history window ends two days before the flight's service date.

The query (`sql/features/features.sql.j2`) runs in the warehouse, so history is
aggregated where the data lives; scoring streams its result out with COPY.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text

from nightscore import sql

if TYPE_CHECKING:
    import pandas as pd

# Identify a flight; never model inputs.
KEY_COLUMNS = ("service_date", "carrier", "flight", "origin")
LABEL = "disrupted"
# Categorical inputs, encoded with a vocabulary stored with the model.
CATEGORICAL = ("carrier", "origin", "dest")
# Trailing history: outcomes of days [S - HISTORY_DAYS - 1, S - 2], i.e. 28 labelled days.
HISTORY_DAYS = 28
HISTORY_LAG_DAYS = 2
RECENT_DAYS = 7
# Rates are shrunk towards the window's overall rate with this many pseudo-flights, so a
# route flown twice does not get a rate of 0 or 1.
PRIOR_WEIGHT = 20

SCHEDULE_FEATURES = (
    "month",
    "day_of_week",
    "dep_hour",
    "dep_minute",
    "arr_hour",
    "distance",
    "days_to_holiday",
    "origin_hour_departures",
    "origin_day_departures",
    "carrier_day_departures",
    "nyc_hour_departures",
    "plane_leg_of_day",
    "plane_prev_gap_min",
)
WEATHER_FEATURES = (
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
    # The day's weather at the origin, as forecast the evening before: storms that delay
    # the morning delay the evening too.
    "day_precip",
    "day_precip_hours",
    "day_min_visib",
    "day_max_wind_speed",
    "precip_before_departure",
    "min_visib_before_departure",
    "precip_after_departure",
    "nyc_day_precip",
)
PLANE_FEATURES = ("plane_age", "plane_seats", "plane_engines", "plane_known")
HISTORY_FEATURES = (
    "hist_carrier_rate",
    "hist_route_rate",
    "hist_origin_hour_rate",
    "hist_route_hour_rate",
    "hist_flight_rate",
    "hist_dest_rate",
    "hist_flight_count",
    "hist_plane_rate",
    "recent_origin_rate",
    "recent_carrier_rate",
    "last_day_origin_rate",
    "last_day_carrier_rate",
)
NUMERIC_FEATURES = SCHEDULE_FEATURES + WEATHER_FEATURES + PLANE_FEATURES + HISTORY_FEATURES
FEATURES = CATEGORICAL + NUMERIC_FEATURES

# History windows, in days before S (inclusive). Each has a prior: the rate of all flights
# in the window, towards which the rates of its keys are shrunk.
_WINDOWS = {
    "hist": (HISTORY_DAYS + 1, HISTORY_LAG_DAYS),
    # The last week: a trend that the 28 days smooth away.
    "recent": (RECENT_DAYS + 1, HISTORY_LAG_DAYS),
    "last_day": (HISTORY_LAG_DAYS, HISTORY_LAG_DAYS),
}
# One CTE per grouping: its key columns and windows; each window makes `{window}_{name}_rate`.
_HISTORY = {
    "carrier": (("carrier",), ("hist", "recent", "last_day")),
    "route": (("origin", "dest"), ("hist",)),
    "origin_hour": (("origin", "dep_hour"), ("hist",)),
    "route_hour": (("origin", "dest", "dep_hour"), ("hist",)),
    "flight": (("carrier", "flight", "origin"), ("hist",)),
    "dest": (("dest",), ("hist",)),
    "plane": (("tailnum",), ("hist",)),
    "origin": (("origin",), ("recent", "last_day")),
}
_RATES = {f"{w}_{name}_rate": (name, w) for name, (_, windows) in _HISTORY.items() for w in windows}


@lru_cache(maxsize=4)
def feature_sql(ordered: bool = True, partitioned: bool = False) -> str:
    """The feature query (`sql/features/features.sql.j2`), with parameters :start, :end
    (service dates) and :holidays.

    `ordered` sorts the rows by KEY_COLUMNS; scoring, which needs no order, skips that sort
    (hundreds of MB on disk for a million flights). `partitioned` keeps the flights of
    partition :part of :parts (`scoring.partition_of`).
    """
    return sql.render(
        "features/features",
        windows=_WINDOWS,
        history=_HISTORY,
        rates=_RATES,
        history_features=HISTORY_FEATURES,
        history_days=HISTORY_DAYS,
        lag_days=HISTORY_LAG_DAYS,
        prior_weight=PRIOR_WEIGHT,
        label=LABEL,
        ordered=ordered,
        partitioned=partitioned,
    )


GOLDEN = sql.HOME / "features" / "features.golden.sql"


def write_golden() -> Path:
    """Rewrite the checked-in rendering of the feature query (`make golden`)."""
    GOLDEN.write_text(feature_sql())
    return GOLDEN


@lru_cache(maxsize=8)
def us_holidays(first_year: int, last_year: int) -> tuple[date, ...]:
    """US federal holidays, plus Thanksgiving's Friday and Christmas Eve (travel peaks)."""
    from pandas.tseries.holiday import USFederalHolidayCalendar

    found = USFederalHolidayCalendar().holidays(f"{first_year}-01-01", f"{last_year}-12-31")
    days = {d.date() for d in found}
    days |= {d + timedelta(days=1) for d in days if d.month == 11 and d.weekday() == 3}
    days |= {date(y, 12, 24) for y in range(first_year, last_year + 1)}
    return tuple(sorted(days))


def feature_params(start: date, end: date) -> dict[str, Any]:
    if end < start:
        raise ValueError(f"feature window ends ({end}) before it starts ({start})")
    holidays = us_holidays(start.year - 1, end.year + 1)
    return {"start": start, "end": end, "holidays": [d.isoformat() for d in holidays]}


_DTYPES = {name: "float64" for name in NUMERIC_FEATURES} | {"flight": "int64"}


def typed_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature frame's dtypes, however it was read (a cursor, or COPY's CSV)."""
    import pandas as pd

    # A night has one date, a training window a few hundred: convert each once, as
    # pd.to_datetime(...).dt.date would (COPY's CSV gives ISO strings, a cursor dates).
    dates = frame["service_date"]
    frame["service_date"] = dates.map(
        {d: pd.Timestamp(d).date() for d in dates.unique()}, na_action="ignore"
    )
    frame = frame.astype(_DTYPES)
    frame[LABEL] = frame[LABEL].astype("Int8")
    return frame


# The feature query's planner settings (`sql/features/planner_settings.sql` says why).
PLANNER_SETTINGS = tuple(
    statement.strip()
    for statement in re.sub(r"--[^\n]*", "", sql.load("features/planner_settings")).split(";")
    if statement.strip()
)


@contextmanager
def _feature_rows(source: Engine | Connection, start: date, end: date):
    """Run the feature query in its own transaction (or the caller's); yield the result."""
    with ExitStack() as stack:
        if isinstance(source, Engine):
            conn = stack.enter_context(source.connect())
            stack.enter_context(conn.begin())
        else:
            conn = source
        for statement in PLANNER_SETTINGS:
            conn.exec_driver_sql(statement)
        yield conn.execute(text(feature_sql()), feature_params(start, end))


def build_features(source: Engine | Connection, start: date, end: date) -> pd.DataFrame:
    """Features (and the label, NULL until outcomes land) for every flight of [start, end].

    Given a Connection, it runs in the caller's transaction.
    Rows are keyed by KEY_COLUMNS and ordered by them.
    """
    import pandas as pd

    with _feature_rows(source, start, end) as result:
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return typed_features(frame)


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the flights whose outcome is known."""
    return frame[frame[LABEL].notna()].reset_index(drop=True)


# --- model input ----------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """How categorical values become model inputs: stored with the model, reused at scoring.

    Values not seen in training become missing, which the trees handle.
    """

    vocabulary: Mapping[str, Sequence[str]]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Encoding:
        return cls({col: sorted(frame[col].dropna().unique().tolist()) for col in CATEGORICAL})

    def to_dict(self) -> dict[str, list[str]]:
        return {col: list(values) for col, values in self.vocabulary.items()}

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns, in FEATURES order, all float64."""
        import numpy as np
        import pandas as pd

        missing = [c for c in FEATURES if c not in frame.columns]
        if missing:
            raise ValueError(f"feature frame lacks columns: {', '.join(missing)}")
        data = {}
        for col in FEATURES:
            if col in self.vocabulary:
                codes = pd.Categorical(frame[col], categories=self.vocabulary[col]).codes
                data[col] = np.where(codes < 0, np.nan, codes).astype("float64")
            else:
                data[col] = frame[col].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(data, index=frame.index)


def feature_types() -> list[str]:
    """XGBoost feature types for FEATURES: categorical codes as 'c', the rest as 'q'."""
    return ["c" if col in CATEGORICAL else "q" for col in FEATURES]
