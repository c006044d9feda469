"""Validated ingestion: landing zone -> Great Expectations -> `core`, recorded in `ops`.

Two steps, so that Airflow shows them apart and a load can be re-run on its own:

- `validate` reads a batch, validates it and records the result in `ops.batches`.
  A batch that fails a critical expectation is rejected whole: it is recorded as
  rejected with its results, an alert is queued in the outbox, and `BatchRejected`
  carries a short human summary. Nothing reaches `core`. A valid batch that would
  replace a loaded day with far fewer rows is held instead (`nightscore.held`,
  `BatchHeld`) until it is applied on purpose.
- `load` loads a validated batch into `core` in one transaction, replacing that
  service date's rows, after checking that the files still have the checksum that was
  validated. Re-running leaves identical rows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from nightscore import links, sql
from nightscore.calendar import date_range
from nightscore.config import Settings, load_settings
from nightscore.contract import BATCH_FILES, BatchKind
from nightscore.errors import DataError
from nightscore.held import Hold, find_hold, loaded_rows
from nightscore.landing import Landing, batch_files, replay_parts
from nightscore.monitoring.outbox import raise_alert
from nightscore.store import exists
from nightscore.warehouse.batches import latest_batch, settled
from nightscore.warehouse.db import engine_for
from nightscore.warehouse.io import upsert

log = logging.getLogger(__name__)


class IngestError(DataError):
    """An ingestion step cannot go on; the message says why and what to do."""


class BatchMissing(IngestError):
    """No batch has landed where it should be."""


class BatchRejected(IngestError):
    """The batch failed a critical expectation or could not be parsed."""

    def __init__(self, summary: str, batch_id: int | None = None):
        super().__init__(summary)
        self.summary = summary
        self.batch_id = batch_id


class BatchHeld(IngestError):
    """The batch would replace a loaded day with far fewer rows (`nightscore.held`): it is
    recorded as held and waits to be applied on purpose. A data problem: no retry."""

    def __init__(self, hold: Hold, batch_id: int | None = None) -> None:
        super().__init__(hold.message())
        self.hold = hold
        self.batch_id = batch_id


@dataclass(frozen=True)
class IngestResult:
    batch_id: int
    kind: BatchKind
    service_date: date
    status: str
    rows: int
    warnings: int
    summary: str
    data_docs_url: str | None = None


# --- where a batch is --------------------------------------------------------------


def batch_uri(settings: Settings, kind: BatchKind, service_date: date, path: str | None) -> str:
    """The batch's folder in the landing zone, or an explicit folder or file."""
    return path if path else Landing(settings.landing_root).batch_dir(kind, service_date)


def batch_landed(kind: BatchKind, service_date: date, settings: Settings | None = None) -> bool:
    """True once the batch's `_SUCCESS` marker is in the landing zone."""
    settings = settings or load_settings()
    return Landing(settings.landing_root).is_complete(kind, service_date)


def ready_to_ingest(kind: BatchKind, service_date: date, settings: Settings | None = None) -> bool:
    """The sensors' test: the batch has landed and what it depends on is settled.

    Outcomes refer to scheduled flights, so they wait until the schedule batch of the
    same date has been loaded, rejected or held (a backfill may land both at once). After a
    rejection they go ahead, and validation rejects them with the unscheduled flights.
    """
    settings = settings or load_settings()
    if not batch_landed(kind, service_date, settings):
        return False
    if kind != "outcomes":
        return True
    with engine_for(settings).connect() as conn:
        return settled(conn, "schedule", service_date)


# --- validate ----------------------------------------------------------------------


def _reference(conn: Connection, kind: BatchKind, service_date: date, settings: Settings):
    from nightscore.validation import ReferenceData

    carriers = frozenset(conn.execute(text(sql.load("ingest/carriers"))).scalars())
    airports = frozenset(conn.execute(text(sql.load("ingest/airports"))).scalars())
    if not carriers or not airports:
        raise IngestError("core.airlines or core.airports is empty: run `nightscore db upgrade`")
    places = {
        faa: (lat, lon, tzone)
        for faa, lat, lon, tzone in conn.execute(text(sql.load("ingest/airport_places")))
    }
    scheduled = schedule = None
    if kind == "outcomes":
        schedule = {
            (c, f, o): tuple(rest)
            for c, f, o, *rest in conn.execute(
                text(sql.load("ingest/scheduled_flights")), {"service_date": service_date}
            )
        }
        scheduled = frozenset(schedule)
    trailing = {}
    since = service_date - timedelta(days=settings.row_count_window_days)
    for part in BATCH_FILES[kind]:
        avg = conn.execute(
            text(sql.render("ingest/trailing_rows", table=part.name)),
            {"since": since, "service_date": service_date},
        ).scalar()
        if avg is not None:
            trailing[part.name] = float(avg)
    return ReferenceData(
        carriers=carriers,
        airports=airports,
        scheduled_keys=scheduled,
        trailing_rows=trailing,
        places=places,
        schedule=schedule,
    )


def _record(
    conn: Connection,
    report,
    uri: str,
    run_id: str | None,
    hold: Hold | None = None,
    applied_by: str | None = None,
) -> int:
    """Record the batch in `ops.batches`. With a `hold` it is `held`, unless `applied_by`
    says who applied it on purpose: then it is validated, and the counts stay recorded."""
    status, error = "validated", None
    validation = report.to_json()
    if hold is not None:
        validation["hold"] = {**hold.to_json(), "applied_by": applied_by}
        if not applied_by:
            status, error = "held", hold.message()
    if not report.success:
        status, error = "rejected", report.summary()
    return conn.execute(
        text(sql.load("ingest/record_batch")),
        {
            "kind": report.kind,
            "service_date": report.service_date,
            "uri": uri,
            "checksum": report.checksum,
            "rows": sum(report.rows.values()),
            "status": status,
            "validation": json.dumps(validation, default=str),
            "warnings": len(report.warnings),
            "data_docs_url": report.data_docs_url,
            "error": error,
            "airflow_run_id": run_id,
            "applied_by": applied_by,
        },
    ).scalar_one()


def validate(
    kind: BatchKind,
    service_date: date,
    *,
    settings: Settings | None = None,
    path: str | None = None,
    run_id: str | None = None,
    apply_held: bool = False,
    applied_by: str | None = None,
) -> IngestResult:
    """Validate a landed batch and record the result. Raises `BatchRejected` on failure,
    and `BatchHeld` when it would replace a loaded day with far fewer rows (see
    `nightscore.held`), unless `apply_held`: then `applied_by` (who, and how) is recorded.
    """
    from nightscore.validation import validate_batch
    from nightscore.validation.parsing import InputLimits

    settings = settings or load_settings()
    uri = batch_uri(settings, kind, service_date, path)
    try:
        paths = batch_files(kind, uri)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    if not any(exists(p) for p in paths.values()):
        raise BatchMissing(f"no {kind} batch for {service_date} at {uri}: has it landed?")
    engine = engine_for(settings)
    with engine.connect() as conn:
        reference = _reference(conn, kind, service_date, settings)
    report = validate_batch(
        kind,
        service_date,
        paths,
        reference,
        data_docs_root=settings.data_docs_root,
        row_count_band=settings.row_count_band,
        limits=InputLimits.from_settings(settings),
    )
    if report.data_docs_location:
        report.data_docs_url = links.file_url(settings, report.data_docs_location)
    with engine.begin() as conn:
        hold = None
        if report.success:
            loaded = loaded_rows(conn, kind, service_date)
            hold = find_hold(kind, service_date, loaded, report.rows, settings.hold_below_share)
        if hold is not None and apply_held:
            applied_by = applied_by or "unknown"
            log.warning("applying a held batch on purpose (%s): %s", applied_by, hold.counts())
        else:
            applied_by = None
        batch_id = _record(conn, report, uri, run_id, hold, applied_by)
        if applied_by:
            hold = None  # applied: validated, loads next
        details = {"batch_id": batch_id, "uri": uri, "data_docs_url": report.data_docs_url}
        if hold is not None:
            raise_alert(
                conn,
                rule="batch_held",
                severity="critical",
                service_date=service_date,
                subject=f"[nightscore] {kind} batch for {service_date} held: far fewer rows",
                body=hold.message(),
                details={**details, "hold": hold.to_json()},
                dedup_key=f"batch_held:{kind}:{service_date}:{report.checksum}",
                cooldown_key=f"batch_held:{kind}",
            )
        if not report.success:
            raise_alert(
                conn,
                rule="batch_rejected",
                severity="critical",
                service_date=service_date,
                subject=f"[nightscore] {kind} batch for {service_date} rejected",
                body=report.summary(),
                details=details,
                dedup_key=f"batch_rejected:{kind}:{service_date}:{report.checksum}",
                cooldown_key=f"batch_rejected:{kind}",
            )
        elif report.warnings:
            raise_alert(
                conn,
                rule="batch_warning",
                severity="warning",
                service_date=service_date,
                subject=f"[nightscore] {kind} batch for {service_date} passed with warnings",
                body=report.summary(),
                details=details,
                dedup_key=f"batch_warning:{kind}:{service_date}:{report.checksum}",
                cooldown_key=f"batch_warning:{kind}",
            )
    if not report.success:
        raise BatchRejected(report.summary(), batch_id)
    if hold is not None:
        raise BatchHeld(hold, batch_id)
    return IngestResult(
        batch_id=batch_id,
        kind=kind,
        service_date=service_date,
        status="validated",
        rows=sum(report.rows.values()),
        warnings=len(report.warnings),
        summary=report.summary(),
        data_docs_url=report.data_docs_url,
    )


# --- load --------------------------------------------------------------------------


def _latest_validated(conn: Connection, kind: BatchKind, service_date: date) -> dict[str, Any]:
    row = latest_batch(conn, kind, service_date)
    if row is None:
        raise IngestError(
            f"the {kind} batch for {service_date} was never validated: validate it first"
        )
    if row["status"] == "rejected":
        raise BatchRejected(
            f"the latest {kind} batch for {service_date} (batch {row['batch_id']}) was "
            "rejected; fix the data and validate it again",
            row["batch_id"],
        )
    if row["status"] == "held":
        raise IngestError(
            f"the latest {kind} batch for {service_date} (batch {row['batch_id']}) is held: "
            "it would replace the loaded day with far fewer rows. Validate it again with "
            "`--apply-held` (CLI) or the `apply_held` param (DAG) to load it on purpose"
        )
    return row


def load(
    kind: BatchKind,
    service_date: date,
    *,
    settings: Settings | None = None,
    batch_id: int | None = None,
) -> IngestResult:
    """Load the latest validated batch of (kind, service_date) into `core`, in one transaction."""
    from nightscore.validation import parse_batch
    from nightscore.validation.parsing import InputLimits

    settings = settings or load_settings()
    engine = engine_for(settings)
    started = time.monotonic()
    with engine.begin() as conn:
        # One load per (kind, date) at a time; a second waits for the first to commit.
        conn.execute(
            text(sql.load("ingest/lock_load")), {"lock_key": f"load:{kind}:{service_date}"}
        )
        batch = _latest_validated(conn, kind, service_date)
        if batch_id is not None and batch["batch_id"] != batch_id:
            raise IngestError(
                f"batch {batch_id} is no longer the latest {kind} batch for {service_date} "
                f"(batch {batch['batch_id']} is): re-run validation"
            )
        parsed = parse_batch(
            kind, batch_files(kind, batch["uri"]), InputLimits.from_settings(settings)
        )
        if parsed.checksum != batch["checksum"]:
            raise IngestError(
                f"the files at {batch['uri']} changed after validation "
                f"(checksum {parsed.checksum[:12]}, validated {batch['checksum'][:12]}): "
                "validate the batch again"
            )
        if parsed.frames is None:
            raise IngestError(f"the {kind} batch at {batch['uri']} cannot be parsed any more")
        rows = 0
        for part in BATCH_FILES[kind]:
            frame = parsed.frames[part.name].assign(batch_id=batch["batch_id"])
            try:
                upsert(
                    conn,
                    f"core.{part.name}",
                    frame,
                    key=part.key,
                    columns=[*part.column_names, "batch_id"],
                    replace_where=("service_date", service_date),
                )
            except IntegrityError as exc:
                # A corrected schedule that drops flights whose outcomes are loaded: we
                # will not delete outcomes silently. The transaction rolls back whole.
                detail = getattr(getattr(exc.orig, "diag", None), "message_detail", None)
                raise IngestError(
                    f"the {kind} batch for {service_date} cannot replace core.{part.name}: "
                    f"{detail or exc.orig}. It removes rows that loaded outcomes refer to; "
                    "nothing was changed. Fix the batch, or correct the outcomes first."
                ) from None
            rows += len(frame)
        conn.execute(text(sql.load("ingest/mark_loaded")), {"batch_id": batch["batch_id"]})
    seconds = time.monotonic() - started
    log.info("loaded %s batch for %s: %d rows in %.2f s", kind, service_date, rows, seconds)
    return IngestResult(
        batch_id=batch["batch_id"],
        kind=kind,
        service_date=service_date,
        status="loaded",
        rows=rows,
        warnings=0,
        summary=f"{kind} batch for {service_date}: {rows} rows loaded into core in {seconds:.2f} s",
    )


def ingest(
    kind: BatchKind,
    service_date: date,
    *,
    settings: Settings | None = None,
    path: str | None = None,
    run_id: str | None = None,
    apply_held: bool = False,
    applied_by: str | None = None,
) -> IngestResult:
    """Validate, then load: what the CLI runs."""
    settings = settings or load_settings()
    validated = validate(
        kind,
        service_date,
        settings=settings,
        path=path,
        run_id=run_id,
        apply_held=apply_held,
        applied_by=applied_by,
    )
    loaded = load(kind, service_date, settings=settings, batch_id=validated.batch_id)
    return replace(loaded, warnings=validated.warnings, data_docs_url=validated.data_docs_url)


# --- history and missing batches ----------------------------------------------------


def record_missing(
    kind: BatchKind, service_date: date, waited_s: float, settings: Settings | None = None
) -> None:
    """Queue the alert for a batch that did not land in time (the sensor timed out)."""
    settings = settings or load_settings()
    where = Landing(settings.landing_root).batch_dir(kind, service_date)
    waited = f"after {waited_s / 60:.0f} minutes of waiting"
    if batch_landed(kind, service_date, settings):
        # Only outcomes wait for something else: their schedule batch.
        subject = f"[nightscore] {kind} batch for {service_date} waited in vain for its schedule"
        body = (
            f"The {kind} batch for {service_date} landed at {where}, but the schedule batch "
            f"of that date was neither loaded nor rejected {waited}. Check nightly_scoring."
        )
    else:
        subject = f"[nightscore] {kind} batch for {service_date} did not land"
        body = f"No complete {kind} batch for {service_date} at {where} {waited}."
    with engine_for(settings).begin() as conn:
        raise_alert(
            conn,
            rule="batch_missing",
            severity="critical",
            service_date=service_date,
            subject=subject,
            body=body,
            details={"uri": where},
            dedup_key=f"batch_missing:{kind}:{service_date}",
            cooldown_key=f"batch_missing:{kind}",
        )


def _first_reason(summary: str) -> str:
    """The first failed expectation of a rejection summary, else its first line."""
    lines = summary.splitlines()
    return next((x.strip(" -") for x in lines if x.startswith(" - ")), lines[0] if lines else "")


@dataclass
class HistoryResult:
    loaded: list[tuple[BatchKind, date, int]]
    rejected: list[tuple[BatchKind, date, str]]

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary(self) -> str:
        lines = [f"{len(self.loaded)} batches loaded, {len(self.rejected)} rejected or missing"]
        lines += [f"  {k} {d}: {_first_reason(why)}" for k, d, why in self.rejected]
        return "\n".join(lines)


def load_history(
    start: date,
    end: date,
    *,
    settings: Settings | None = None,
    replay: bool = False,
    progress=print,
) -> HistoryResult:
    """Validate and load every batch from start to end; with `replay`, land missing ones first.

    A rejected day does not stop the others; the result lists it, and the caller fails.
    """
    settings = settings or load_settings()
    landing = Landing(settings.landing_root)
    result = HistoryResult(loaded=[], rejected=[])
    days = list(date_range(start, end))
    for i, day in enumerate(days, 1):
        line = []
        for kind in BATCH_FILES:
            if replay and not landing.is_complete(kind, day):
                landing.write_batch(kind, day, replay_parts(kind, day))
            try:
                done = ingest(kind, day, settings=settings)
                result.loaded.append((kind, day, done.rows))
                line.append(f"{kind} {done.rows} rows")
            except IngestError as exc:
                result.rejected.append((kind, day, str(exc)))
                line.append(f"{kind} REJECTED")
        progress(f"[{i:>3}/{len(days)}] {day}: " + ", ".join(line))
    return result
