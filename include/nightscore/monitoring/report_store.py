"""`monitoring.reports`, the table of report files (a day's Evidently drift report, a
week's stakeholder report): written here only. Each row holds where the report is in the
store and its public link (`links.file_url`)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from nightscore import links, sql

if TYPE_CHECKING:
    from nightscore.config import Settings

KINDS = ("drift", "weekly", "evening")


def record_report(
    conn: Connection,
    settings: Settings,
    kind: str,
    service_date: date,
    location: str,
    size_bytes: int,
) -> int:
    """Record the report of `kind` for the date, written at `location` in the store
    (replacing an earlier one of the same kind and date), in the caller's transaction;
    returns its `report_id`."""
    if kind not in KINDS:
        raise ValueError(f"report kind must be one of {KINDS}, not {kind!r}")
    return int(
        conn.execute(
            text(sql.load("monitoring/reports_upsert")),
            {
                "kind": kind,
                "day": service_date,
                "path": location,
                "url": links.file_url(settings, location),
                "bytes": size_bytes,
            },
        ).scalar_one()
    )
