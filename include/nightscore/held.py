"""Held batches: a batch that would replace a loaded day with far fewer rows.

A truncated export looks like a valid batch: every row is fine, there are only too few
of them. Loading it would delete the day's good rows and keep the remnant, so such a
batch is *held*: recorded as `held` in `ops.batches` with the counts, a critical alert
is queued, nothing in `core` is touched, and the task fails as a data problem. It loads
only when someone applies it on purpose (`nightscore ingest ... --apply-held`, or the
ingestion DAGs' `apply_held` param), and the ledger records who did and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from nightscore import sql
from nightscore.contract import BATCH_FILES, BatchKind

# The DAG that ingests each kind, for the message that says how to apply a held batch.
INGESTION_DAGS: dict[BatchKind, str] = {
    "schedule": "nightly_scoring",
    "outcomes": "ingest_outcomes",
}


@dataclass(frozen=True)
class PartShrink:
    """One part of a batch that is smaller than what `core` holds for its day."""

    part: str
    loaded_rows: int
    incoming_rows: int

    @property
    def share(self) -> float:
        return self.incoming_rows / self.loaded_rows


@dataclass(frozen=True)
class Hold:
    """Why a batch is held: the parts that shrink below `threshold` of the loaded day."""

    kind: BatchKind
    service_date: date
    threshold: float
    shrinks: tuple[PartShrink, ...]

    def to_json(self) -> dict:
        return {
            "severity": "critical",
            "threshold": self.threshold,
            "setting": "NIGHTSCORE_HOLD_BELOW_SHARE",
            "parts": [
                {"part": s.part, "loaded_rows": s.loaded_rows, "incoming_rows": s.incoming_rows}
                for s in self.shrinks
            ],
        }

    def counts(self) -> str:
        """ "flights: 120 incoming rows vs 1,003 loaded (12 %)"; one line per part."""
        return "; ".join(
            f"{s.part}: {s.incoming_rows:,} incoming rows vs {s.loaded_rows:,} loaded ({s.share:.0%})"
            for s in self.shrinks
        )

    def message(self) -> str:
        """What the task log, the ledger and the alert say, with how to apply it on purpose."""
        day = self.service_date.isoformat()
        return (
            f"{self.kind} batch for {day} held: it would replace the loaded day with far "
            f"fewer rows ({self.counts()}; under {self.threshold:.0%} of the loaded rows, "
            f"NIGHTSCORE_HOLD_BELOW_SHARE={self.threshold:g}). Nothing was changed: the "
            "loaded rows stay. If the upstream export was truncated, land the full batch "
            "again and clear the task. If the smaller batch is right, apply it on purpose: "
            f"`nightscore ingest {self.kind} --service-date {day} --apply-held`, or trigger "
            f'{INGESTION_DAGS[self.kind]} with params {{"service_date": "{day}", '
            '"apply_held": true}.'
        )


def loaded_rows(conn: Connection, kind: BatchKind, service_date: date) -> dict[str, int]:
    """The rows `core` holds for the day, per part of a `kind` batch."""
    return {
        part.name: int(
            conn.execute(
                text(sql.render("ingest/loaded_rows", table=part.name)),
                {"service_date": service_date},
            ).scalar_one()
        )
        for part in BATCH_FILES[kind]
    }


def find_hold(
    kind: BatchKind,
    service_date: date,
    loaded: dict[str, int],
    incoming: dict[str, int],
    threshold: float,
) -> Hold | None:
    """The hold for a batch whose parts bring fewer than `threshold` x the loaded rows.

    A day with nothing loaded, or a part that grows, is never held."""
    shrinks = tuple(
        PartShrink(part, loaded[part], incoming.get(part, 0))
        for part in loaded
        if loaded[part] > 0 and incoming.get(part, 0) < threshold * loaded[part]
    )
    return Hold(kind, service_date, threshold, shrinks) if shrinks else None
