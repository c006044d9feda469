"""The data contract of the landing zone: which batches land, their files and columns.

A *schedule batch* for service date S holds two files: the flights planned for S and
the hourly weather forecast for S at each origin. An *outcomes batch* for S holds what
happened to those flights. The flight key is (service_date, carrier, flight, origin).

Types are the logical types of the CSV columns; `nightscore.validation` parses the
files strictly against them and `nightscore.warehouse` loads them into `core`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BatchKind = Literal["schedule", "outcomes"]
BATCH_KINDS: tuple[BatchKind, ...] = ("schedule", "outcomes")

FLIGHT_KEY = ("service_date", "carrier", "flight", "origin")
WEATHER_KEY = ("origin", "time_hour")
ORIGINS = ("EWR", "JFK", "LGA")
# The origins' time zone: local clock times and weather hours are in it.
ORIGIN_TZ = "America/New_York"

# Logical column types: "date" (YYYY-MM-DD), "timestamp" (ISO 8601 with offset),
# "str", "int", "float", "bool" (true/false).
ColumnType = Literal["date", "timestamp", "str", "int", "float", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False


@dataclass(frozen=True)
class BatchFile:
    """One CSV file of a batch."""

    name: str  # the part name, also the table in core
    filename: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


FLIGHTS = BatchFile(
    name="flights",
    filename="flights.csv",
    columns=(
        Column("service_date", "date"),
        Column("carrier", "str"),
        Column("flight", "int"),
        Column("origin", "str"),
        Column("dest", "str"),
        Column("tailnum", "str", nullable=True),
        Column("sched_dep_time", "int"),  # local HHMM
        Column("sched_arr_time", "int"),  # local HHMM at the destination
        Column("distance", "int"),  # miles
    ),
    key=FLIGHT_KEY,
)

WEATHER = BatchFile(
    name="weather",
    filename="weather.csv",
    columns=(
        Column("service_date", "date"),
        Column("origin", "str"),
        Column("hour", "int"),  # local hour, 0-23 (appears twice on the autumn DST day)
        Column("time_hour", "timestamp"),  # the hour in UTC: the unique key with origin
        Column("temp", "float", nullable=True),  # F
        Column("dewp", "float", nullable=True),  # F
        Column("humid", "float", nullable=True),  # %
        Column("wind_dir", "float", nullable=True),  # degrees
        Column("wind_speed", "float", nullable=True),  # mph
        Column("wind_gust", "float", nullable=True),  # mph
        Column("precip", "float", nullable=True),  # inches
        Column("pressure", "float", nullable=True),  # millibars
        Column("visib", "float", nullable=True),  # miles
    ),
    key=WEATHER_KEY,
)

OUTCOMES = BatchFile(
    name="outcomes",
    filename="outcomes.csv",
    columns=(
        Column("service_date", "date"),
        Column("carrier", "str"),
        Column("flight", "int"),
        Column("origin", "str"),
        Column("dep_time", "int", nullable=True),  # local HHMM, empty when cancelled
        Column("dep_delay", "float", nullable=True),  # minutes
        Column("arr_time", "int", nullable=True),  # local HHMM
        Column("arr_delay", "float", nullable=True),  # minutes, empty when diverted
        Column("air_time", "float", nullable=True),  # minutes
        Column("cancelled", "bool"),
        Column("diverted", "bool"),
    ),
    key=FLIGHT_KEY,
)

BATCH_FILES: dict[BatchKind, tuple[BatchFile, ...]] = {
    "schedule": (FLIGHTS, WEATHER),
    "outcomes": (OUTCOMES,),
}

# Marker written last, so that a sensor never sees a half-written batch.
SUCCESS_MARKER = "_SUCCESS"
