"""An oversized batch is rejected whole through ingestion: recorded, alerted, nothing
loaded, and the day's loaded rows untouched (real Postgres)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from nightscore.ingest import BatchRejected, ingest
from nightscore.landing import Landing, replay_parts
from nightscore.warehouse.db import engine_for

# Slow: an oversized batch parsed and refused after a day is loaded.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_oversized_batch_is_rejected_and_the_loaded_day_stays(warehouse):
    day = date(2013, 8, 23)
    landing = Landing(warehouse.landing_root)
    parts = replay_parts("schedule", day)
    landing.write_batch("schedule", day, parts)
    ingest("schedule", day, settings=warehouse)

    night = parts["flights"]
    bloated = pd.concat([night] * 4, ignore_index=True)  # never parsed: its size is enough
    paths = landing.write_batch("schedule", day, {**parts, "flights": bloated})
    limit = 100_000
    small = warehouse.model_copy(update={"max_batch_bytes": limit})
    with pytest.raises(BatchRejected) as rejected:
        ingest("schedule", day, settings=small)

    message = str(rejected.value)
    assert f"over the limit NIGHTSCORE_MAX_BATCH_BYTES={limit:,}; it was not read" in message
    total = sum(Path(p).stat().st_size for p in paths.values())
    assert f"schedule batch: {total:,} bytes" in message
    with engine_for(warehouse).connect() as conn:
        status = conn.execute(
            text(
                "SELECT status FROM ops.batches WHERE kind = 'schedule' AND service_date = :d "
                "ORDER BY batch_id"
            ),
            {"d": day},
        ).scalars()
        assert list(status) == ["loaded", "rejected"]
        flights = conn.execute(
            text("SELECT count(*) FROM core.flights WHERE service_date = :d"), {"d": day}
        ).scalar_one()
        alerts = conn.execute(
            text(
                "SELECT count(*) FROM monitoring.alerts WHERE rule = 'batch_rejected' "
                "AND service_date = :d"
            ),
            {"d": day},
        ).scalar_one()
    assert flights == len(night) and alerts == 1
    # Control: under the same limit, the real night (about 50 KB) is read and loads.
    landing.write_batch("schedule", day, parts)
    assert ingest("schedule", day, settings=small).rows == len(night) + len(parts["weather"])
