"""The one feature builder: training, scoring and evaluation all call `build_features`.

Features for service date S use only what was known on the evening of S-1: the schedule
and the weather forecast for S, the reference tables, and outcomes up to S-2 (the
outcomes of S-1 land the morning after S is scored). The SQL below enforces that in one
place: every history window ends two days before the flight's service date.

The query runs in the warehouse, so history is aggregated where the data lives and the
result can be streamed out in chunks (`iter_feature_chunks`) for large nights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text

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


def _shrunk(k: str, n: str, prior: str) -> str:
    return f"(coalesce({k}, 0) + {PRIOR_WEIGHT} * {prior}) / (coalesce({n}, 0) + {PRIOR_WEIGHT})"


def _windowed(keys: Sequence[str], windows: Sequence[str], probes: str) -> str:
    """Trailing sums n_{window}, k_{window} of flights and disruptions at every probe (S, key).

    Daily counts per key and one zero "probe" row per (S, key) go through RANGE windows
    that end `last` days before the row's date, so a probe sees exactly its window and
    nothing from S-1 onwards.
    """
    cols = "".join(f"{k}, " for k in keys)
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    sums = "".join(
        f",\n               sum(n) OVER {w} AS n_{w}, sum(k) OVER {w} AS k_{w}" for w in windows
    )
    frames = ",\n               ".join(
        f"{w} AS ({partition}ORDER BY service_date RANGE BETWEEN "
        f"'{_WINDOWS[w][0]} days' PRECEDING AND '{_WINDOWS[w][1]} days' PRECEDING)"
        for w in windows
    )
    return f"""(
        SELECT service_date, {cols}probe{sums}
        FROM (
            SELECT service_date, {cols}count(*) AS n, sum(disrupted::int) AS k, false AS probe
            FROM labelled GROUP BY service_date{"".join(f", {k}" for k in keys)}
            UNION ALL
            {probes}
        ) rows
        WINDOW {frames}
    ) windowed"""


def _history_cte(name: str) -> str:
    """The shrunk rates of one grouping, once per (S, key) of the night, not per flight.

    Keys without any history get no row: their flights take the window's no-history rate.
    """
    keys, windows = _HISTORY[name]
    cols = ", ".join(keys)
    probes = (
        f"SELECT DISTINCT service_date, {cols}, 0, 0, true FROM night\n"
        f"            WHERE ({cols}) IN (SELECT {cols} FROM labelled)"
    )
    rates = "".join(
        f",\n           {_shrunk(f'k_{w}', f'n_{w}', f'days.{w}_prior')} AS {w}_{name}_rate"
        for w in windows
    )
    count = ",\n           coalesce(n_hist, 0) AS hist_flight_count" if name == "flight" else ""
    return f"""
hist_{name} AS (
    SELECT service_date, {cols}{rates}{count}
    FROM {_windowed(keys, windows, probes)}
    JOIN days USING (service_date)
    WHERE probe
)"""


def _days_cte() -> str:
    """One row per service date: the calendar features, each window's prior, and the rate
    of a key without history, computed once per date rather than once per flight."""
    probes = (
        "SELECT d::date, 0, 0, true\n"
        "            FROM generate_series(CAST(:start AS date), CAST(:end AS date), '1 day') d"
    )
    priors = "".join(
        f",\n           coalesce(k_{w}::float8 / nullif(n_{w}, 0), 0.25) AS {w}_prior"
        for w in _WINDOWS
    )
    # The shrunk rate of 0 flights, written as such: 20 * p / 20 may differ from p in its
    # last bit, and the features must not change.
    no_history = "".join(
        f",\n           {PRIOR_WEIGHT} * {w}_prior / {PRIOR_WEIGHT} AS {w}_no_history"
        for w in _WINDOWS
    )
    return f"""
priors AS (
    SELECT service_date{priors}
    FROM {_windowed((), tuple(_WINDOWS), probes)}
    WHERE probe
),
days AS (
    SELECT priors.*{no_history},
           extract(year FROM service_date)::int AS year,
           extract(month FROM service_date)::int AS month,
           extract(isodow FROM service_date)::int AS day_of_week,
           (SELECT min(abs(h - service_date)) FROM unnest(CAST(:holidays AS date[])) h)
               AS days_to_holiday
    FROM priors
)"""


def _history_column(column: str) -> str:
    if column == "hist_flight_count":
        return "coalesce(hist_flight.hist_flight_count, 0) AS hist_flight_count"
    name, window = _RATES[column]
    return f"coalesce(hist_{name}.{column}, days.{window}_no_history) AS {column}"


def _join(name: str) -> str:
    keys, _ = _HISTORY[name]
    on = " AND ".join(
        [f"hist_{name}.service_date = night.service_date"]
        + [f"hist_{name}.{k} = night.{k}" for k in keys]
    )
    return f"LEFT JOIN hist_{name} ON {on}"


@lru_cache(maxsize=2)
def feature_sql(ordered: bool = True) -> str:
    """The feature query, with parameters :start, :end (service dates) and :holidays.

    `ordered` sorts the rows by KEY_COLUMNS; scoring, which needs no order, skips that sort
    (hundreds of MB on disk for a million flights).
    """
    histories = ",".join(_history_cte(name) for name in _HISTORY)
    joins = "\n".join(_join(name) for name in _HISTORY)
    history_columns = ",\n       ".join(_history_column(c) for c in HISTORY_FEATURES)
    order = "ORDER BY night.service_date, night.carrier, night.flight, night.origin"
    return f"""
WITH night AS (
    SELECT f.service_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum, f.distance,
           f.sched_dep_time / 100 AS dep_hour, f.sched_dep_time % 100 AS dep_minute,
           (f.sched_arr_time / 100) % 24 AS arr_hour,
           count(*) OVER (PARTITION BY f.service_date, f.origin, f.sched_dep_time / 100)
               AS origin_hour_departures,
           count(*) OVER (PARTITION BY f.service_date, f.origin) AS origin_day_departures,
           count(*) OVER (PARTITION BY f.service_date, f.carrier) AS carrier_day_departures,
           count(*) OVER (PARTITION BY f.service_date, f.sched_dep_time / 100)
               AS nyc_hour_departures,
           CASE WHEN f.tailnum IS NOT NULL THEN
               (f.sched_dep_time / 100 * 60 + f.sched_dep_time % 100)
               - lag(f.sched_dep_time / 100 * 60 + f.sched_dep_time % 100)
                 OVER (PARTITION BY f.service_date, f.tailnum
                       ORDER BY f.sched_dep_time, f.flight) END AS plane_prev_gap_min,
           CASE WHEN f.tailnum IS NULL THEN 0 ELSE
               row_number() OVER (PARTITION BY f.service_date, f.tailnum
                                  ORDER BY f.sched_dep_time, f.flight) END AS plane_leg_of_day
    FROM core.flights f
    WHERE f.service_date BETWEEN :start AND :end
),
labelled AS (
    SELECT f.service_date, f.carrier, f.flight, f.origin, f.dest, f.tailnum,
           f.sched_dep_time / 100 AS dep_hour,
           (o.cancelled OR o.diverted OR o.arr_delay >= 15) AS disrupted
    FROM core.outcomes o
    JOIN core.flights f USING (service_date, carrier, flight, origin)
    WHERE o.service_date BETWEEN CAST(:start AS date) - {HISTORY_DAYS + 1}
                             AND CAST(:end AS date) - {HISTORY_LAG_DAYS}
      AND (o.cancelled OR o.diverted OR o.arr_delay IS NOT NULL)
),
hourly AS (
    -- One row per local hour (the autumn DST change repeats an hour: keep the first).
    SELECT DISTINCT ON (origin, service_date, hour) *
    FROM core.weather
    WHERE service_date BETWEEN :start AND :end
    ORDER BY origin, service_date, hour, time_hour
),
weather AS (
    SELECT origin, service_date, hour, temp, dewp, humid, wind_speed, wind_gust, precip,
           pressure, visib,
           sum(coalesce(precip, 0)) OVER day AS day_precip,
           count(*) FILTER (WHERE precip > 0) OVER day AS day_precip_hours,
           min(visib) OVER day AS day_min_visib,
           max(wind_speed) OVER day AS day_max_wind_speed,
           sum(coalesce(precip, 0)) OVER before AS precip_before_departure,
           min(visib) OVER before AS min_visib_before_departure,
           coalesce(sum(coalesce(precip, 0)) OVER after, 0) AS precip_after_departure,
           sum(coalesce(precip, 0)) OVER nyc / 3 AS nyc_day_precip
    FROM hourly
    WINDOW day AS (PARTITION BY origin, service_date),
           before AS (PARTITION BY origin, service_date ORDER BY hour
                      RANGE BETWEEN 3 PRECEDING AND CURRENT ROW),
           after AS (PARTITION BY origin, service_date ORDER BY hour
                     RANGE BETWEEN 1 FOLLOWING AND 3 FOLLOWING),
           nyc AS (PARTITION BY service_date)
),{_days_cte()},{histories}
SELECT night.service_date, night.carrier, night.flight, night.origin, night.dest,
       days.month, days.day_of_week,
       night.dep_hour, night.dep_minute, night.arr_hour, night.distance, days.days_to_holiday,
       night.origin_hour_departures, night.origin_day_departures,
       night.carrier_day_departures, night.nyc_hour_departures, night.plane_leg_of_day,
       night.plane_prev_gap_min,
       w.temp, w.dewp, w.humid, w.wind_speed, w.wind_gust, w.precip, w.pressure, w.visib,
       w.day_precip, w.day_precip_hours, w.day_min_visib, w.day_max_wind_speed,
       w.precip_before_departure, w.min_visib_before_departure, w.precip_after_departure,
       w.nyc_day_precip,
       days.year - p.year AS plane_age,
       p.seats AS plane_seats, p.engines AS plane_engines,
       (p.tailnum IS NOT NULL)::int AS plane_known,
       {history_columns},
       CASE WHEN o.service_date IS NULL THEN NULL
            ELSE (o.cancelled OR o.diverted OR o.arr_delay >= 15)::int END AS {LABEL}
FROM night
JOIN days ON days.service_date = night.service_date
LEFT JOIN weather w
       ON w.origin = night.origin AND w.service_date = night.service_date
      AND w.hour = night.dep_hour
LEFT JOIN core.planes p ON p.tailnum = night.tailnum
LEFT JOIN core.outcomes o
       ON o.service_date = night.service_date AND o.carrier = night.carrier
      AND o.flight = night.flight AND o.origin = night.origin
{joins}
{order if ordered else ""}
"""


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


# The CTEs hide row counts from the planner, which then picks merge and nested-loop
# joins that rescan tens of millions of rows; hash joins are right at every size here.
# With the default 4 MB of work_mem, a million-flight night spills its sorts, and hash
# joins sized for the planner's guesses spill the flights to disk at every join; JIT
# spends seconds compiling this wide query, more than it saves.
PLANNER_SETTINGS = (
    "SET LOCAL enable_mergejoin = off",
    "SET LOCAL enable_nestloop = off",
    "SET LOCAL work_mem = '64MB'",
    "SET LOCAL jit = off",
)


@contextmanager
def _feature_rows(
    source: Engine | Connection, start: date, end: date, chunk_rows: int | None = None
):
    """Run the feature query in its own transaction (or the caller's); yield the result."""
    with ExitStack() as stack:
        if isinstance(source, Engine):
            conn = stack.enter_context(source.connect())
            stack.enter_context(conn.begin())
        else:
            conn = source
        for statement in PLANNER_SETTINGS:
            conn.exec_driver_sql(statement)
        if chunk_rows:
            conn = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows)
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


def iter_feature_chunks(
    source: Engine, start: date, end: date, chunk_rows: int = 100_000
) -> Iterator[pd.DataFrame]:
    """The same rows as `build_features`, streamed through a server-side cursor."""
    import pandas as pd

    with _feature_rows(source, start, end, chunk_rows) as result:
        columns = list(result.keys())
        while rows := result.fetchmany(chunk_rows):
            yield typed_features(pd.DataFrame(rows, columns=columns))


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
