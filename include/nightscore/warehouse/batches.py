"""Reading `ops.batches`: the one rule for "the latest batch of a day"."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from nightscore import sql


def latest_batch(conn: Connection, kind: str, service_date: date) -> dict[str, Any] | None:
    """The latest batch of (kind, S): batch_id, status, uri, checksum; None if none landed.

    Latest = most recently updated, the newest batch on a tie (`analytics.batches` shows
    the same one)."""
    row = conn.execute(
        text(sql.load("warehouse/latest_batch")), {"kind": kind, "service_date": service_date}
    ).first()
    return None if row is None else dict(row._mapping)


def settled(conn: Connection, kind: str, service_date: date) -> bool:
    """True once the latest batch of (kind, S) is loaded, rejected or held: no more to wait
    for (a held batch leaves the loaded day as it was)."""
    batch = latest_batch(conn, kind, service_date)
    return batch is not None and batch["status"] in ("loaded", "rejected", "held")
