"""Getting alerts out: the drain that every DAG ends with, and the direct mail that
replaces the outbox while the warehouse is down.

- `deliver` is what every `send_alerts` task (and the `alert_outbox` DAG, every 10
  minutes) runs: move the spooled notices into the outbox, then send what is pending.
  An outage (SMTP, the warehouse, the store) is reported in its result and the log,
  never raised: the alerts wait, pending or spooled, for the next drain.
- `notify_directly` is the failure callback's way out when the outbox cannot be
  written: spool the notice, mail it through `smtp_default` with the Message-ID of its
  dedup key, and record in the spool that it was mailed. The drain then queues it as
  `sent`, so it is never mailed a second time; if SMTP was down too, it is queued as
  `pending` (or mailed by the drain while the warehouse is still down).
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from nightscore import sql
from nightscore.errors import InfrastructureError, classify
from nightscore.monitoring import spool
from nightscore.monitoring.spool import Notice
from nightscore.store import StoreError

if TYPE_CHECKING:
    from nightscore.config import Settings
    from nightscore.monitoring.mailer import SmtpSettings
    from nightscore.monitoring.rules import RuleSet

logger = logging.getLogger(__name__)
MAILED_NOTE = "mailed directly while the outbox could not be written"


@dataclass(frozen=True)
class DrainResult:
    """What one drain of the spool did: notices queued in the outbox (of which already
    mailed), notices mailed from the spool, and one line per problem."""

    queued: int = 0
    already_mailed: int = 0
    mailed: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryResult:
    """What one `deliver` did: the spool's drain and the outbox's send."""

    drained: DrainResult
    sent: int
    failed: int
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def summary(self) -> str:
        d = self.drained
        head = (
            f"{self.sent} alert(s) sent, {self.failed} failed and left pending; spool: "
            f"{d.queued} notice(s) queued ({d.already_mailed} already mailed), "
            f"{d.mailed} mailed directly"
        )
        return "\n".join([head, *(f" - {e}" for e in self.errors)])


def deliver(settings: Settings, *, limit: int = 100) -> DeliveryResult:
    """Drain the spool into the outbox, then email up to `limit` pending alerts. Never
    raises for an outage: each one is a line of the result's `errors`, logged as a
    warning, and what could not go out waits for the next drain."""
    from nightscore.monitoring.outbox import send_pending

    drained = drain_spool(settings)
    errors = list(drained.errors)
    sent = failed = 0
    try:
        result = send_pending(settings, limit=limit)
        sent, failed = result.sent, result.failed
        errors += result.errors
    except Exception as exc:
        fault = classify(exc)
        if not isinstance(fault, InfrastructureError):
            raise
        errors.append(f"the outbox cannot be sent now: {fault}")
    outcome = DeliveryResult(drained, sent, failed, tuple(errors))
    (logger.warning if errors else logger.info)(outcome.summary)
    return outcome


def notify_directly(notice: Notice, settings: Settings) -> Notice:
    """Spool `notice`, mail it, and record that it was mailed; returns it as kept.
    Never raises: the failure it reports must not be hidden by a second one.

    Spooled first, so a crash after it loses nothing; a drain that reads the notice in
    the moment between the spool write and the mail mails it too (at least once, with
    the same Message-ID, as the outbox itself)."""
    kept = _keep(notice, settings)
    try:
        mail_notice(notice, settings)
    except Exception as exc:
        logger.error(
            "could not mail the notice %s directly either (%s); it stays %s",
            notice.dedup_key,
            exc,
            "spooled for the next drain" if kept else "in this log only",
        )
        return notice
    mailed = notice.mailed()
    if kept:
        _keep(mailed, settings)
    logger.warning("notice %s mailed directly (the outbox cannot be written)", notice.dedup_key)
    return mailed


def mail_notice(notice: Notice, settings: Settings, smtp: SmtpSettings | None = None) -> None:
    """Email one notice to the engineers through `smtp_default`, with the Message-ID of
    its dedup key. Raises when it cannot be sent (no recipients, SMTP down)."""
    from nightscore.monitoring import mailer

    if not settings.alert_email_to:
        raise ValueError("no recipients: NIGHTSCORE_ALERT_EMAIL_TO is empty")
    smtp = smtp or mailer.smtp_settings()
    msg = mailer.build_alert_email(
        notice.as_alert(), to=settings.alert_email_to, from_email=smtp.from_email
    )
    mailer.send_message(msg, smtp)


def drain_spool(settings: Settings) -> DrainResult:
    """Move every spooled notice into the outbox: queued (`raise_alert`, so its dedup key
    and cooldown hold), then marked sent when it was mailed already, then removed from the
    spool. While the warehouse still does not answer, a notice not mailed yet is mailed
    from the spool instead, and stays there until the warehouse is back."""
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    try:
        notices = spool.spooled(settings)
    except StoreError as exc:
        return DrainResult(errors=(f"the alert spool cannot be read now: {exc}",))
    if not notices:
        return DrainResult()
    rules = load_rules(settings)
    engine = engine_for(settings)
    queued = already_mailed = mailed = 0
    errors: list[str] = []
    warehouse_down: str | None = None
    smtp_down = False  # one timeout per drain, not one per notice
    for where, notice in notices:
        if warehouse_down is None:
            try:
                with engine.begin() as conn:
                    _queue(conn, notice, rules)
                queued += 1
                already_mailed += notice.mailed_at is not None
                spool.discard(where)
                continue
            except StoreError as exc:  # queued; removed by the next drain (a no-op then)
                errors.append(f"{notice.dedup_key} queued, but not removed from the spool: {exc}")
                continue
            except Exception as exc:
                fault = classify(exc)
                if not isinstance(fault, InfrastructureError):
                    raise
                warehouse_down = str(fault)
                errors.append(f"spooled notices cannot be queued now: {fault}")
        if notice.mailed_at is None and not smtp_down:
            try:
                mail_notice(notice, settings)
            except (OSError, smtplib.SMTPException, ValueError) as exc:
                smtp_down = True
                errors.append(f"spooled notices stay spooled, not mailed: {exc}")
                continue
            mailed += 1
            try:
                spool.keep(notice.mailed(), settings)
            except StoreError as exc:
                errors.append(f"{notice.dedup_key} mailed, but not marked so: {exc}")
    return DrainResult(queued, already_mailed, mailed, tuple(errors))


def _queue(conn: Connection, notice: Notice, rules: RuleSet) -> None:
    from nightscore.monitoring.outbox import raise_alert

    raise_alert(
        conn,
        rule=notice.rule,
        severity=notice.severity,
        subject=notice.subject,
        body=notice.body,
        dedup_key=notice.dedup_key,
        service_date=notice.service_date,
        details={**notice.details, "noticed_at": notice.noticed_at.isoformat()},
        cooldown_key=notice.cooldown_key,
        rules=rules,
    )
    if notice.mailed_at is not None:
        conn.execute(
            text(sql.load("monitoring/outbox_mark_mailed")),
            {"key": notice.dedup_key, "sent_at": notice.mailed_at, "note": MAILED_NOTE},
        )


def _keep(notice: Notice, settings: Settings) -> bool:
    try:
        spool.keep(notice, settings)
        return True
    except Exception as exc:
        logger.error(
            "the alert spool cannot be written either (%s); the notice, whole: %s",
            exc,
            notice.to_json(),
        )
        return False
