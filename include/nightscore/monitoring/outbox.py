"""The alert outbox (`monitoring.alerts`): alerts are written here first, sent later.

Writing is idempotent on a dedup key, so a re-run that hits the same problem does not
raise the same alert twice.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

SEVERITIES = ("info", "warning", "critical")


def raise_alert(
    conn: Connection,
    *,
    rule: str,
    severity: str,
    subject: str,
    body: str,
    dedup_key: str,
    service_date: date | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Queue an alert in the caller's transaction. Returns False when it was already queued."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    inserted = conn.execute(
        text(
            """
            INSERT INTO monitoring.alerts
                (rule, severity, service_date, subject, body, details, dedup_key)
            VALUES (:rule, :severity, :service_date, :subject, :body,
                    CAST(:details AS jsonb), :dedup_key)
            ON CONFLICT (dedup_key) DO NOTHING
            """
        ),
        {
            "rule": rule,
            "severity": severity,
            "service_date": service_date,
            "subject": subject,
            "body": body,
            "details": json.dumps(details or {}, default=str),
            "dedup_key": dedup_key,
        },
    ).rowcount
    return bool(inserted)
