"""The weekly stakeholder report: one email on Sundays about the week that ends that day.

What it says: how many flights were scored and how many were disrupted, of the flights
flagged as likely disrupted the share that were (the subject), how well the champion
ranked them (AUC), against the previous week; two charts per day; the riskiest routes;
the champion and its age; the features that drifted; the alerts of the week. The latest
Evidently drift report of the week is linked, not attached: it is an interactive page of
about 4 MB that mail apps do not run. The mail stays well under 1 MB.

In layers, so that the rendering is tested without a warehouse: `report_data.gather`
(queries, DataFrames in, a `report_model.WeeklyReport` out), the pure renderers
(`report_render.render_text` and `render_html`, `report_chart.week_charts`, and
`build_email` here), and `queue_weekly_report`, which writes the HTML copy to the store
(`{reports_dir}/weekly/`), records it in `monitoring.reports` with its public link and
queues the prebuilt email in the outbox (idempotent on the week: a re-run queues nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, cast

from nightscore import links, store
from nightscore.monitoring.report_chart import Chart, data_uri, week_charts
from nightscore.monitoring.report_data import gather
from nightscore.monitoring.report_model import RULE, WeeklyReport
from nightscore.monitoring.report_render import render_html, render_text, subject

if TYPE_CHECKING:
    from nightscore.config import Settings

logger = logging.getLogger(__name__)


def build_email(report: WeeklyReport, charts: Sequence[Chart]) -> EmailMessage:
    """The email: plain text, and an HTML alternative with its charts inline (`cid:`).
    Nothing is attached. From and To are set when it is sent."""
    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["Date"] = formatdate(localtime=False)
    # The same week keeps the same Message-ID: a resend is recognised as the same mail.
    digest = hashlib.sha256(f"{RULE}:{report.week_end}".encode()).hexdigest()[:16]
    msg["Message-ID"] = f"<nightscore-weekly-{report.week_end.isoformat()}-{digest}@nightscore>"
    msg["X-Nightscore-Rule"] = RULE
    msg.set_content(render_text(report))
    sources = [(chart, f"cid:{report.chart_cid(chart.name)}") for chart in charts]
    msg.add_alternative(render_html(report, sources), subtype="html")
    # A multipart/alternative now: its payload is the list of parts, HTML second.
    html_part = cast("list[EmailMessage]", msg.get_payload())[1]
    for chart in charts:
        html_part.add_related(
            chart.png,
            "image",
            "png",
            cid=f"<{report.chart_cid(chart.name)}>",
            disposition="inline",
            filename=f"weekly_{chart.name}_{report.week_end.isoformat()}.png",
        )
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

    location = report_location(week_end, settings)
    report = dataclasses.replace(
        gather(week_end, settings), report_url=links.file_url(settings, location)
    )
    charts = week_charts(report)
    page = render_html(report, [(c, data_uri(c.png)) for c in charts]).encode("utf-8")
    store.write_bytes(location, page)
    msg = build_email(report, charts)
    raw = msg.as_bytes()
    plain = render_text(report)
    details = {
        **report.kpis(),
        "report_url": report.report_url,
        "drift_report_url": report.drift_report.url if report.drift_report else None,
        "chart_bytes": sum(len(c.png) for c in charts),
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
        "weekly report %s: %s (mail of %s bytes)%s",
        week_end,
        location,
        f"{len(raw):,}",
        "" if alert_id else ", already queued",
    )
    return alert_id
