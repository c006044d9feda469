"""`monitoring.reports`, the table of report files (a day's Evidently drift report, a
week's stakeholder report): written here only."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

from nightscore import sql

KINDS = ("drift", "weekly")


def record_report(
    conn: Connection, kind: str, service_date: date, path: str | Path, size_bytes: int
) -> int:
    """Record the report of `kind` for the date (replacing an earlier one of the same kind
    and date) in the caller's transaction; returns its `report_id`."""
    if kind not in KINDS:
        raise ValueError(f"report kind must be one of {KINDS}, not {kind!r}")
    return int(
        conn.execute(
            text(sql.load("monitoring/reports_upsert")),
            {"kind": kind, "day": service_date, "path": str(path), "bytes": size_bytes},
        ).scalar_one()
    )
