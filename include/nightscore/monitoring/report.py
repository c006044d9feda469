"""The weekly stakeholder report: one email on Sundays about the week that ends that day.

What it says: how many flights were scored and how many were disrupted, how well the
champion ranked them (ROC AUC, precision, recall), against the previous week; a trend
chart per day; the riskiest routes; the champion and its age; the features that drifted;
the alerts of the week. The latest Evidently drift report of the week is attached.

In layers, so that the rendering is tested without a warehouse: `report_data.gather`
(queries, DataFrames in, a `report_model.WeeklyReport` out), the pure renderers
(`report_render.render_text` and `render_html`, `report_chart.trend_chart`, and
`build_email` here), and `queue_weekly_report`, which writes the HTML copy to the store
(`{reports_dir}/weekly/`), records it in `monitoring.reports` with its public link and
queues the prebuilt email in the outbox (idempotent on the week: a re-run queues nothing).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, cast

from nightscore import links, store
from nightscore.monitoring.report_chart import data_uri, trend_chart
from nightscore.monitoring.report_data import gather
from nightscore.monitoring.report_model import RULE, WeeklyReport
from nightscore.monitoring.report_render import render_html, render_text, subject

if TYPE_CHECKING:
    from nightscore.config import Settings

logger = logging.getLogger(__name__)


def build_email(
    report: WeeklyReport, chart_png: bytes, attachment: bytes | None = None
) -> EmailMessage:
    """The email: plain text, an HTML alternative with the chart inline (`cid:`), and the
    Evidently report attached when there is one. From and To are set when it is sent."""
    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["Date"] = formatdate(localtime=False)
    # The same week keeps the same Message-ID: a resend is recognised as the same mail.
    digest = hashlib.sha256(f"{RULE}:{report.week_end}".encode()).hexdigest()[:16]
    msg["Message-ID"] = f"<nightscore-weekly-{report.week_end.isoformat()}-{digest}@nightscore>"
    msg["X-Nightscore-Rule"] = RULE
    msg.set_content(render_text(report))
    msg.add_alternative(render_html(report, f"cid:{report.chart_cid}"), subtype="html")
    # A multipart/alternative now: its payload is the list of parts, HTML second.
    html_part = cast("list[EmailMessage]", msg.get_payload())[1]
    html_part.add_related(
        chart_png,
        "image",
        "png",
        cid=f"<{report.chart_cid}>",
        disposition="inline",
        filename=f"weekly_trend_{report.week_end.isoformat()}.png",
    )
    if attachment is not None and report.drift_report is not None:
        msg.add_attachment(attachment, "text", "html", filename=report.drift_report.filename)
    return msg


def report_location(week_end: date, settings: Settings) -> str:
    """Where the week's HTML copy is written in the store."""
    return f"{settings.reports_dir.rstrip('/')}/weekly/weekly_report_{week_end.isoformat()}.html"


def queue_weekly_report(week_end: date, settings: Settings) -> int | None:
    """Build the week's report, write its HTML copy, record it in `monitoring.reports` and
    queue the email for the stakeholders. Returns the alert id, or None when the week's
    report was already queued (a re-run sends nothing twice). Raises
    `report_model.NoScoredFlights` when nothing was scored in the week."""
    from nightscore.monitoring.outbox import raise_alert
    from nightscore.monitoring.report_store import record_report
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    report = gather(week_end, settings)
    chart = trend_chart(report.days, report.roc_auc_floor)
    attachment = (
        store.read_bytes(report.drift_report.path) if report.drift_report is not None else None
    )
    page = render_html(report, data_uri(chart)).encode("utf-8")
    location = report_location(week_end, settings)
    store.write_bytes(location, page)
    msg = build_email(report, chart, attachment)
    raw = msg.as_bytes()
    plain = render_text(report)
    details = {
        **report.kpis(),
        "report_url": links.file_url(settings, location),
        "chart_bytes": len(chart),
        "message_bytes": len(raw),
    }
    with engine_for(settings).begin() as conn:
        record_report(conn, settings, "weekly", week_end, location, len(page))
        alert_id = raise_alert(
            conn,
            rule=RULE,
            severity="info",
            audience="stakeholders",
            subject=subject(report),
            body=plain,
            message=raw,
            service_date=week_end,
            details=details,
            dedup_key=f"{RULE}:{week_end.isoformat()}",
            rules=load_rules(settings),
        )
    logger.info(
        "weekly report %s: %s (%s bytes with attachments)%s",
        week_end,
        location,
        f"{len(raw):,}",
        "" if alert_id else ", already queued",
    )
    return alert_id
