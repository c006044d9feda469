"""The alert outbox (`monitoring.alerts`): alerts are written here first, sent later.

Writing is idempotent on a dedup key, so a re-run that hits the same problem does not
raise the same alert twice. Sending (`send_pending`) takes one pending alert at a time
under a row lock (`FOR UPDATE SKIP LOCKED`), so two senders never send the same alert,
and commits each alert's outcome on its own, so one failure loses nothing. Delivery is
at least once: a crash after the SMTP server accepted a mail and before the commit sends
it again on the next run (with the same Message-ID).
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, text

from nightscore import sql

if TYPE_CHECKING:
    from nightscore.config import Settings
    from nightscore.monitoring.mailer import SmtpSettings
    from nightscore.monitoring.rules import RuleSet

SEVERITIES = ("info", "warning", "critical")
AUDIENCES = ("engineers", "stakeholders")
MAX_ERROR_CHARS = 2000
logger = logging.getLogger(__name__)


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
    cooldown_key: str | None = None,
    audience: str = "engineers",
    message: bytes | None = None,
    rules: RuleSet | None = None,
) -> int | None:
    """Queue an alert in the caller's transaction; returns its id, or None when the same
    `dedup_key` was already queued.

    The alert rules file has the last word on the severity and sets the cooldown: while
    an alert with the same `cooldown_key` (default: the rule) is pending or sent for a
    service date fewer than `cooldown_days` away (or, without a service date, was queued
    fewer than `cooldown_days` ago), the new one is recorded as `suppressed`, not mailed.
    `message` is a prebuilt MIME message (the weekly report) that the sender sends as is.
    """
    from nightscore.monitoring.rules import load_rules

    if rules is None:
        from nightscore.config import load_settings

        rules = load_rules(load_settings())
    configured = rules.get(rule)
    severity = configured.severity if configured else severity
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}, not {audience!r}")
    cooldown_key = cooldown_key or rule
    cooldown_days = configured.cooldown_days if configured else 0
    quieted_by = (
        conn.execute(
            text(sql.load("monitoring/outbox_cooldown_holder")),
            {"key": cooldown_key, "day": service_date, "days": cooldown_days},
        )
        .scalars()
        .first()
        if cooldown_days
        else None
    )
    details = dict(details or {})
    if quieted_by is not None:
        details["suppressed_by_alert"] = quieted_by
    return conn.execute(
        text(sql.load("monitoring/outbox_insert_alert")),
        {
            "rule": rule,
            "severity": severity,
            "service_date": service_date,
            "subject": subject,
            "body": body,
            "details": json.dumps(details, default=str),
            "dedup_key": dedup_key,
            "cooldown_key": cooldown_key,
            "audience": audience,
            "message": message,
            "status": "pending" if quieted_by is None else "suppressed",
        },
    ).scalar()


@dataclass(frozen=True)
class SendResult:
    """What one `send_pending` run did: alerts sent, alerts that failed and stay pending,
    and one line per problem (empty when all went well)."""

    sent: int
    failed: int
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def summary(self) -> str:
        head = f"{self.sent} alert(s) sent, {self.failed} failed and left pending"
        return "\n".join([head, *(f" - {e}" for e in self.errors)])


def send_pending(
    settings: Settings, *, limit: int = 100, smtp: SmtpSettings | None = None
) -> SendResult:
    """Email up to `limit` pending alerts, oldest first: alerts to `alert_email_to`, the
    stakeholders' reports to `report_email_to` (see `recipients`).

    A sent alert becomes `sent` with `sent_at`; a failed one stays `pending` with
    `attempts` + 1 and `last_error`, and is retried on the next run. `attempts` counts the
    runs that tried to deliver an alert, the successful one included. When the SMTP
    server cannot be reached (or refuses the login), the run stops there and records the
    error on every alert it was going to send, rather than waiting out a timeout per
    alert. With no recipients configured nothing is touched: the alerts stay pending and
    the result says why. A malformed SMTP connection raises `SmtpConfigError`.
    """
    from nightscore.monitoring import mailer
    from nightscore.warehouse.db import engine_for

    engine = engine_for(settings)
    if not settings.alert_email_to and not settings.report_email_to:
        with engine.connect() as conn:
            waiting = conn.execute(text(sql.load("monitoring/outbox_count_pending"))).scalar_one()
        if not waiting:
            return SendResult(0, 0)
        error = (
            "no recipients: NIGHTSCORE_ALERT_EMAIL_TO and NIGHTSCORE_REPORT_EMAIL_TO are "
            f"empty, so {waiting} pending "
            "alert(s) were left pending (not sent, not dropped); set it and they go out "
            "on the next run"
        )
        logger.warning(error)
        return SendResult(0, 0, (error,))
    smtp = smtp or mailer.smtp_settings()

    sent = failed = 0
    errors: list[str] = []
    tried: list[int] = []
    client: smtplib.SMTP | None = None
    try:
        while len(tried) < limit:
            with engine.begin() as conn:
                alert = (
                    conn.execute(
                        text(sql.load("monitoring/outbox_claim_pending")), {"tried": tried}
                    )
                    .mappings()
                    .first()
                )
                if alert is None:
                    break
                alert_id = alert["alert_id"]
                tried.append(alert_id)
                if client is None:
                    try:
                        client = mailer.connect(smtp)
                    except (OSError, smtplib.SMTPException) as exc:
                        # The same for every alert: record it on all of this run's
                        # alerts and stop, instead of one timeout per alert.
                        error = f"cannot reach SMTP server {smtp.address}: {_describe(exc)}"
                        count = _record_failure(conn, [alert_id], error)
                        count += _record_failure_on_rest(conn, tried, limit - len(tried), error)
                        failed += count
                        errors.append(f"{error} ({count} alert(s) left pending)")
                        break
                try:
                    to = recipients(settings, alert["audience"])
                    if not to:  # left as it is: it goes out once its audience is set
                        errors.append(f"alert {alert_id}: no {alert['audience']} recipients")
                        continue
                    msg = (
                        mailer.prebuilt_email(
                            bytes(alert["message"]), to=to, from_email=smtp.from_email
                        )
                        if alert["message"] is not None
                        else mailer.build_alert_email(
                            cast("Mapping[str, Any]", alert), to=to, from_email=smtp.from_email
                        )
                    )
                    refused = client.send_message(msg)
                except Exception as exc:
                    error = _describe(exc)
                    _record_failure(conn, [alert_id], error)
                    failed += 1
                    errors.append(f"alert {alert_id} ({alert['rule']}): {error}")
                    # The session may be broken; the next alert gets a fresh one.
                    mailer.quit_session(client)
                    client = None
                    continue
                note = f"refused by the server: {_describe_refused(refused)}" if refused else None
                _mark_sent(conn, alert_id, note)
                sent += 1
    finally:
        if client is not None:
            mailer.quit_session(client)
    result = SendResult(sent, failed, tuple(errors))
    (logger.warning if errors else logger.info)(result.summary)
    return result


def recipients(settings: Settings, audience: str) -> tuple[str, ...]:
    """Engineers get alerts; stakeholders get reports (engineers, when none are set)."""
    if audience == "stakeholders" and settings.report_email_to:
        return settings.report_email_to
    return settings.alert_email_to


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def _describe_refused(refused: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{who} ({code} {reply.decode(errors='replace')})" for who, (code, reply) in refused.items()
    )[:MAX_ERROR_CHARS]


def _mark_sent(conn: Connection, alert_id: int, note: str | None) -> None:
    conn.execute(
        text(sql.load("monitoring/outbox_mark_sent")), {"alert_id": alert_id, "note": note}
    )


def _record_failure(conn: Connection, alert_ids: list[int], error: str) -> int:
    return conn.execute(
        text(sql.load("monitoring/outbox_record_failure")), {"ids": alert_ids, "error": error}
    ).rowcount


def _record_failure_on_rest(conn: Connection, tried: list[int], limit: int, error: str) -> int:
    """Record `error` on the next `limit` pending alerts this run has not tried (and no
    other sender holds); `tried` is extended with them."""
    if limit <= 0:
        return 0
    ids = list(
        conn.execute(
            text(sql.load("monitoring/outbox_claim_pending_ids")),
            {"tried": tried, "limit": limit},
        ).scalars()
    )
    tried.extend(ids)
    return _record_failure(conn, ids, error) if ids else 0
