"""The alert spool: failure notices the warehouse could not take, kept in the store.

When a task fails and the outbox (`monitoring.alerts`) cannot be written, the failure
callback mails the notice directly and keeps it here; the next drain (every DAG's
`send_alerts`, the `alert_outbox` DAG) moves it into the outbox, as `sent` when it was
mailed, as `pending` when it was not, and removes it from the spool.

Why the store (`{store_url}/alert_spool`, `NIGHTSCORE_ALERT_SPOOL_ROOT`):
- The failure callback runs on whichever worker ran the task, possibly a Celery worker
  on another host, and the drain runs on any host. A local spool folder would be drained
  only by a drain that happens to run on the same host (no shared local disk).
- An Airflow Variable is reachable from every host through the API server, but the Task
  SDK can only get, set and delete one by key: it cannot list. Notices would then need a
  shared index Variable, rewritten read-modify-write with no compare-and-set, by the many
  callbacks that fail at the same moment when the warehouse goes down: exactly when
  notices would be lost.
- The store is shared by every host and listable, and each notice is one object named
  by its dedup key, written atomically: concurrent callbacks never overwrite each other,
  and spooling the same notice twice keeps one.
The store can be down too: then the notice is still mailed directly, and the task log
keeps it whole (ERROR), the one place left.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from nightscore import store

if TYPE_CHECKING:
    from nightscore.config import Settings

logger = logging.getLogger(__name__)
SUFFIX = ".json"


@dataclass(frozen=True)
class Notice:
    """One alert as the outbox would hold it, and when it was mailed directly (None:
    not yet)."""

    rule: str
    severity: str
    subject: str
    body: str
    dedup_key: str
    cooldown_key: str | None = None
    service_date: date | None = None
    details: dict[str, Any] = field(default_factory=dict)
    noticed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    mailed_at: datetime | None = None

    def as_alert(self) -> dict[str, Any]:
        """The notice as a `monitoring.alerts` row, for `mailer.build_alert_email`."""
        return {**asdict(self), "created_at": self.noticed_at}

    def mailed(self, when: datetime | None = None) -> Notice:
        return replace(self, mailed_at=when or datetime.now(UTC))

    def to_json(self) -> str:
        data = asdict(self)
        data["service_date"] = self.service_date.isoformat() if self.service_date else None
        data["noticed_at"] = self.noticed_at.isoformat()
        data["mailed_at"] = self.mailed_at.isoformat() if self.mailed_at else None
        return json.dumps(data, default=str, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Notice:
        data = json.loads(text)
        data["service_date"] = (
            date.fromisoformat(data["service_date"]) if data.get("service_date") else None
        )
        data["noticed_at"] = datetime.fromisoformat(data["noticed_at"])
        data["mailed_at"] = (
            datetime.fromisoformat(data["mailed_at"]) if data.get("mailed_at") else None
        )
        return cls(**data)


def location(settings: Settings, dedup_key: str) -> str:
    """Where the notice of `dedup_key` is kept: one file per dedup key."""
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
    return f"{settings.alert_spool_root.rstrip('/')}/{digest}{SUFFIX}"


def keep(notice: Notice, settings: Settings) -> str:
    """Spool `notice` (replacing an earlier version of it); returns its location.
    Raises `StoreError` when the store is down."""
    where = location(settings, notice.dedup_key)
    store.write_text(where, notice.to_json())
    return where


def spooled(settings: Settings) -> list[tuple[str, Notice]]:
    """Every spooled notice with its location, oldest first. A file that is not a notice
    is left where it is, with an error in the log: nothing is dropped unread. Raises
    `StoreError` when the store is down."""
    root = settings.alert_spool_root.rstrip("/")
    found = []
    for name in store.list_files(root):
        if not name.endswith(SUFFIX) or "/" in name:
            continue
        where = f"{root}/{name}"
        try:
            found.append((where, Notice.from_json(store.read_text(where))))
        except FileNotFoundError:  # drained by a concurrent sender meanwhile
            continue
        except (ValueError, TypeError, KeyError) as exc:
            logger.error("%s is not a spooled alert notice (%s); left in place", where, exc)
    return sorted(found, key=lambda item: (item[1].noticed_at, item[1].dedup_key))


def discard(where: str) -> None:
    """Remove a spooled notice once the outbox holds it."""
    store.remove(where)
