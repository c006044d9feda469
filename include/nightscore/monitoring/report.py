"""The weekly stakeholder report: one email on Sundays about the week that ends that day.

What it says: how many flights were scored and how many were disrupted, how well the
champion ranked them (ROC AUC, precision, recall), against the previous week; a trend
chart per day; the riskiest routes; the champion and its age; the features that drifted;
the alerts of the week. The latest Evidently drift report of the week is attached.

Three layers, so that the rendering is tested without a warehouse:
`gather` (queries, DataFrames in, a `WeeklyReport` out), the pure renderers
(`render_text`, `render_html`, `trend_chart`, `build_email`), and `queue_weekly_report`,
which writes the HTML copy to the reports folder, records it in `monitoring.reports` and
queues the prebuilt email in the outbox (idempotent on the week: a re-run queues nothing).
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import math
import textwrap
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, text

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.config import Settings

RULE = "weekly_report"
WEEK_DAYS = 7
TOP_ROUTES = 10
MIN_ROUTE_FLIGHTS = 20
MAX_ALERT_LINES = 10
CHART_SIZE_IN = (7.0, 3.0)  # at CHART_DPI: 700 x 300 px
CHART_DPI = 100
TEXT_WIDTH = 78
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_GOOD, _BAD, _MUTED = "#1b7f3b", "#b00020", "#666"
logger = logging.getLogger(__name__)


class NoScoredFlights(LookupError):
    """Nothing was scored in the week: there is no report to send."""


# --- what the report says ---------------------------------------------------------------


@dataclass(frozen=True)
class WeekKpis:
    """The week's numbers; None where they cannot be known yet (no outcomes)."""

    flights_scored: int
    flights_with_outcomes: int
    disruption_rate: float | None
    mean_risk: float | None
    roc_auc: float | None
    precision: float | None
    recall: float | None
    alerts: int
    alerts_by_severity: dict[str, int] = field(default_factory=dict)
    model_versions: tuple[int, ...] = ()
    days_scored: int = WEEK_DAYS


@dataclass(frozen=True)
class DayPoint:
    service_date: date
    flights: int
    mean_risk: float | None
    disruption_rate: float | None
    roc_auc: float | None


@dataclass(frozen=True)
class RouteRisk:
    origin: str
    dest: str
    dest_name: str | None
    flights: int
    mean_risk: float
    disruption_rate: float | None


@dataclass(frozen=True)
class Champion:
    name: str
    version: int
    promoted_at: datetime
    age_days: int
    roc_auc_at_promotion: float | None
    training_cutoff: date | None = None


@dataclass(frozen=True)
class DriftedFeature:
    feature: str
    days_drifted: int
    statistic: float  # the strongest: the largest distance, or the smallest p-value
    method: str


@dataclass(frozen=True)
class AlertLine:
    service_date: date | None
    severity: str
    rule: str
    subject: str
    status: str


@dataclass(frozen=True)
class DriftReportFile:
    """The Evidently report attached to the email."""

    service_date: date
    path: str
    size_bytes: int

    @property
    def filename(self) -> str:
        return f"drift_report_{self.service_date.isoformat()}.html"


@dataclass(frozen=True)
class WeeklyReport:
    week_end: date
    model_name: str
    this_week: WeekKpis
    last_week: WeekKpis | None
    days: tuple[DayPoint, ...]
    routes: tuple[RouteRisk, ...] = ()
    champion: Champion | None = None
    drifted: tuple[DriftedFeature, ...] = ()
    drift_days_checked: int = 0
    alerts: tuple[AlertLine, ...] = ()
    drift_report: DriftReportFile | None = None
    roc_auc_floor: float | None = None
    airflow_url: str = ""

    @property
    def week_start(self) -> date:
        return self.week_end - timedelta(days=WEEK_DAYS - 1)

    @property
    def week_label(self) -> str:
        return week_label(self.week_start, self.week_end)

    @property
    def chart_cid(self) -> str:
        return f"weekly-trend-{self.week_end.isoformat()}@nightscore"

    def kpis(self) -> dict[str, Any]:
        """The numbers as JSON-able facts (the outbox row's `details`)."""
        facts: dict[str, Any] = {
            "week_start": self.week_start.isoformat(),
            "week_end": self.week_end.isoformat(),
            "model_name": self.model_name,
            **asdict(self.this_week),
        }
        facts["model_versions"] = list(self.this_week.model_versions)
        facts["champion_version"] = self.champion.version if self.champion else None
        facts["drifted_features"] = [d.feature for d in self.drifted]
        facts["drift_report"] = self.drift_report.path if self.drift_report else None
        return facts


# --- formatting -------------------------------------------------------------------------


def week_label(start: date, end: date) -> str:
    """The week as people write it: "4–10 Feb 2013", "28 Jan – 3 Feb 2013"."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {_MONTHS[end.month - 1]} {end.year}"
    if start.year == end.year:
        return f"{start.day} {_MONTHS[start.month - 1]} – {end.day} {_MONTHS[end.month - 1]} {end.year}"
    return (
        f"{start.day} {_MONTHS[start.month - 1]} {start.year} – "
        f"{end.day} {_MONTHS[end.month - 1]} {end.year}"
    )


def _day(d: date) -> str:
    return f"{_WEEKDAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _count(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def _change(now: float | None, before: float | None, kind: str) -> str:
    """The change from last week: points for rates, plain for scores and counts."""
    if now is None or before is None:
        return ""
    if kind == "pct":
        return f"{100 * (now - before):+.1f} pts"
    if kind == "count":
        return f"{round(now - before):+,}"
    return f"{now - before:+.3f}"


def subject(report: WeeklyReport) -> str:
    k = report.this_week
    disrupted = (
        f"{_pct(k.disruption_rate)} disrupted" if k.disruption_rate is not None else "outcomes n/a"
    )
    return (
        f"[nightscore] Weekly report, {report.week_label}: {k.flights_scored:,} flights, "
        f"{disrupted}, ROC AUC {_num(k.roc_auc, 2)}"
    )


def _kpi_rows(report: WeeklyReport) -> list[tuple[str, str, str, str, str]]:
    """(label, this week, last week, change, colour of the change)."""
    now, before = report.this_week, report.last_week

    def row(label: str, attr: str, kind: str, higher_is_better: bool | None):
        value, old = getattr(now, attr), getattr(before, attr) if before else None
        shown = {"pct": _pct, "count": _count, "score": _num}[kind]
        change = _change(value, old, kind)
        colour = _MUTED
        if change and higher_is_better is not None and value != old:
            colour = _GOOD if (value > old) == higher_is_better else _BAD
        return label, shown(value), shown(old) if before else "n/a", change, colour

    rows = [
        row("Flights scored", "flights_scored", "count", None),
        row("Flights with outcomes", "flights_with_outcomes", "count", None),
        row("Actual disruption rate", "disruption_rate", "pct", None),
        row("Mean predicted risk", "mean_risk", "pct", None),
        row("ROC AUC", "roc_auc", "score", True),
        row("Precision (flagged flights disrupted)", "precision", "pct", True),
        row("Recall (disruptions flagged)", "recall", "pct", True),
        row("Alerts raised", "alerts", "count", False),
    ]
    return rows


def _comparison_note(report: WeeklyReport) -> str:
    """Why the comparison with last week is partial, if it is."""
    before = report.last_week
    if before is None:
        return "Last week: nothing was scored, so there is nothing to compare with (n/a)."
    if before.days_scored < WEEK_DAYS:
        return (
            f"Last week: only {before.days_scored} of {WEEK_DAYS} days were scored, so its "
            "counts are not comparable."
        )
    return ""


def _alerts_title(report: WeeklyReport, heading: str = "Alerts of the week") -> str:
    k = report.this_week
    order = {s: i for i, s in enumerate(("critical", "warning", "info"))}
    counts = ", ".join(
        f"{n} {s}"
        for s, n in sorted(k.alerts_by_severity.items(), key=lambda i: order.get(i[0], 9))
    )
    return f"{heading} ({k.alerts}{': ' + counts if counts else ''})"


def _headline(report: WeeklyReport) -> str:
    k = report.this_week
    if k.flights_with_outcomes == 0:
        return (
            f"{k.flights_scored:,} flights were scored; their outcomes have not landed yet, "
            f"so how the model did is not known (n/a). Mean predicted risk {_pct(k.mean_risk)}."
        )
    missing = k.flights_scored - k.flights_with_outcomes
    pending = f" ({missing:,} still without outcomes)" if missing > 0 else ""
    return (
        f"{k.flights_scored:,} flights were scored{pending}; {_pct(k.disruption_rate)} of those "
        f"with outcomes were disrupted (late by 15 min or more, cancelled or diverted), "
        f"against a mean predicted risk of {_pct(k.mean_risk)}. "
        f"The model ranked them with a ROC AUC of {_num(k.roc_auc)}."
    )


def _champion_lines(report: WeeklyReport) -> list[tuple[str, str]]:
    c = report.champion
    scored_by = ", ".join(str(v) for v in report.this_week.model_versions) or "n/a"
    if c is None:
        return [
            ("Champion", f"none recorded for {report.model_name}"),
            ("Versions that scored the week", scored_by),
        ]
    lines = [
        ("Champion", f"{c.name} version {c.version}"),
        ("Promoted", f"{c.promoted_at:%Y-%m-%d %H:%M} ({c.age_days:,} days ago)"),
        ("ROC AUC at promotion", _num(c.roc_auc_at_promotion)),
    ]
    if c.training_cutoff:
        lag = (report.week_end - c.training_cutoff).days
        lines.append(
            (
                "Trained on data up to",
                f"{c.training_cutoff.isoformat()} ({lag:,} days before the week's end)",
            )
        )
    lines.append(("Versions that scored the week", scored_by))
    return lines


def _drift_summary(report: WeeklyReport) -> str:
    if not report.drift_days_checked:
        return "No drift check ran this week."
    if not report.drifted:
        return f"No monitored feature drifted on the {report.drift_days_checked} day(s) checked."
    return (
        f"{len(report.drifted)} monitored feature(s) drifted from the model's reference "
        f"sample on at least one of the {report.drift_days_checked} day(s) checked:"
    )


def _attachment_note(report: WeeklyReport) -> str:
    r = report.drift_report
    if r is None:
        return "No Evidently drift report was written this week, so none is attached."
    return (
        f"Attached: the Evidently drift report of {r.service_date.isoformat()} "
        f"({r.filename}, {r.size_bytes / 1e6:.1f} MB). Open it in a browser."
    )


def _alert_text(a: AlertLine) -> str:
    when = a.service_date.isoformat() if a.service_date else "-"
    quiet = " (suppressed: in cooldown)" if a.status == "suppressed" else ""
    return (
        f"{when}  {a.severity.upper():8}  {a.subject.removeprefix('[nightscore]').strip()}{quiet}"
    )


def _links(report: WeeklyReport) -> list[tuple[str, str]]:
    if not report.airflow_url:
        return []
    return [("Monitoring DAG in Airflow", f"{report.airflow_url}/dags/monitoring")]


# --- rendering (pure) -------------------------------------------------------------------


def render_text(report: WeeklyReport) -> str:
    """The plain-text part: the same sections as the HTML, in aligned columns."""
    k_rows = _kpi_rows(report)
    width = max(len(r[0]) for r in k_rows)
    lines = [
        f"nightscore weekly report: {report.week_label} ({report.model_name})",
        "",
        _wrap(_headline(report)),
        "",
        "KEY NUMBERS",
        f"  {'':{width}}  {'this week':<13}  {'last week':<13}  change",
    ]
    lines += [
        f"  {label.ljust(width)}  {value:<13}  {old:<13}  {change}".rstrip()
        for label, value, old, change, _ in k_rows
    ]
    if note := _comparison_note(report):
        lines.append(_wrap(note, indent="  "))
    lines += ["", "PER DAY", "  day          flights  ROC AUC  disrupted  mean risk"]
    lines += [
        f"  {_day(d.service_date):<11}  {d.flights:>7,}  {_num(d.roc_auc):>7}  "
        f"{_pct(d.disruption_rate):>9}  {_pct(d.mean_risk):>9}"
        for d in report.days
    ]
    lines += ["", f"RISKIEST ROUTES (mean predicted risk, at least {MIN_ROUTE_FLIGHTS} flights)"]
    if report.routes:
        lines.append("  route        flights  mean risk  disrupted")
        lines += [
            f"  {r.origin} -> {r.dest}   {r.flights:>7,}  {_pct(r.mean_risk):>9}  "
            f"{_pct(r.disruption_rate):>9}" + (f"  {r.dest_name}" if r.dest_name else "")
            for r in report.routes
        ]
    else:
        lines.append(f"  No route had {MIN_ROUTE_FLIGHTS} or more flights this week.")
    lines += ["", "MODEL"]
    c_lines = _champion_lines(report)
    c_width = max(len(label) for label, _ in c_lines)
    lines += [f"  {label.ljust(c_width)}  {value}" for label, value in c_lines]
    lines += ["", "DRIFT", _wrap(_drift_summary(report), indent="  ")]
    if report.drifted:
        lines.append("  feature                     days  statistic  method")
        lines += [
            f"  {d.feature:<26}  {d.days_drifted:>4}  {d.statistic:>9.4f}  {d.method}"
            for d in report.drifted
        ]
    lines += ["", _alerts_title(report, "ALERTS OF THE WEEK")]
    if report.alerts:
        lines += [f"  {_alert_text(a)}" for a in report.alerts[:MAX_ALERT_LINES]]
        if len(report.alerts) > MAX_ALERT_LINES:
            lines.append(f"  ... and {len(report.alerts) - MAX_ALERT_LINES} more")
    else:
        lines.append("  None.")
    lines += ["", _wrap(_attachment_note(report))]
    links = _links(report)
    if links:
        lines += ["", *[f"{label}: {url}" for label, url in links]]
    lines += ["", "-- ", _wrap(_footer(report))]
    return "\n".join(lines) + "\n"


def _wrap(paragraph: str, indent: str = "") -> str:
    return textwrap.fill(
        paragraph, width=TEXT_WIDTH, initial_indent=indent, subsequent_indent=indent
    )


def _footer(report: WeeklyReport) -> str:
    return (
        f"Sent by nightscore for the week {report.week_start.isoformat()} to "
        f"{report.week_end.isoformat()}. Disrupted = arrived 15 or more minutes late, "
        "cancelled or diverted. The same report is in the warehouse: analytics.model_performance, "
        "analytics.drift, analytics.alerts."
    )


_E = html.escape
_TD = "padding:6px 8px;border-bottom:1px solid #e6e6e6"
_TH = "padding:6px 8px;border-bottom:2px solid #ccc;font-weight:600;color:#333"
_NUM = "text-align:right;white-space:nowrap"
_H2 = "font-size:16px;margin:28px 0 8px 0;color:#1f3b5a"
_TABLE = "border-collapse:collapse;width:100%;font-size:14px"


def _table(
    head: Sequence[str] | None, rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """A table of already escaped cells; columns in `numeric` are right-aligned."""

    def style(i: int, base: str) -> str:
        return f"{base};{_NUM}" if i in numeric else f"{base};text-align:left"

    thead = (
        "<thead><tr>"
        + "".join(f'<th style="{style(i, _TH)}">{h}</th>' for i, h in enumerate(head))
        + "</tr></thead>"
        if head
        else ""
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td style="{style(i, _TD)}">{c}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table role="table" style="{_TABLE}">{thead}<tbody>{body}</tbody></table>'


def render_html(report: WeeklyReport, image_src: str) -> str:
    """The HTML part: inline CSS, tables, no external resources. `image_src` is the chart:
    `cid:...` in the email, a `data:` URI in the copy written to disk."""
    k_rows = [
        (
            _E(label),
            f"<strong>{_E(value)}</strong>",
            _E(old),
            f'<span style="color:{colour}">{_E(change)}</span>',
        )
        for label, value, old, change, colour in _kpi_rows(report)
    ]
    day_rows = [
        (
            _E(_day(d.service_date)),
            _E(f"{d.flights:,}"),
            _E(_num(d.roc_auc)),
            _E(_pct(d.disruption_rate)),
            _E(_pct(d.mean_risk)),
        )
        for d in report.days
    ]
    if report.routes:
        routes = _table(
            ("Route", "Flights", "Mean risk", "Disrupted"),
            [
                (
                    f"<strong>{_E(r.origin)} → {_E(r.dest)}</strong>"
                    + (
                        f'<br><span style="color:{_MUTED};font-size:12px">{_E(r.dest_name)}</span>'
                        if r.dest_name
                        else ""
                    ),
                    _E(f"{r.flights:,}"),
                    _E(_pct(r.mean_risk)),
                    _E(_pct(r.disruption_rate)),
                )
                for r in report.routes
            ],
            numeric=(1, 2, 3),
        )
    else:
        routes = f"<p>No route had {MIN_ROUTE_FLIGHTS} or more flights this week.</p>"
    model = _table(None, [(_E(label), _E(value)) for label, value in _champion_lines(report)])
    drift = f"<p>{_E(_drift_summary(report))}</p>"
    if report.drifted:
        drift += _table(
            ("Feature", "Days drifted", "Strongest statistic", "Method"),
            [
                (
                    f"<code>{_E(d.feature)}</code>",
                    _E(str(d.days_drifted)),
                    _E(f"{d.statistic:.4f}"),
                    _E(d.method),
                )
                for d in report.drifted
            ],
            numeric=(1, 2),
        )
    if report.alerts:
        items = "".join(f"<li>{_E(_alert_text(a))}</li>" for a in report.alerts[:MAX_ALERT_LINES])
        more = len(report.alerts) - MAX_ALERT_LINES
        alerts = f'<ul style="padding-left:20px;margin:0">{items}</ul>' + (
            f"<p>… and {more} more.</p>" if more > 0 else ""
        )
    else:
        alerts = "<p>None.</p>"
    links = "".join(
        f' <a href="{_E(url, quote=True)}" style="color:#1f5fa8">{_E(label)}</a>'
        for label, url in _links(report)
    )
    attachment = _E(_attachment_note(report))
    return (
        "<!DOCTYPE html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_E(subject(report))}</title></head>"
        '<body style="margin:0;padding:0;background:#f4f5f7">'
        '<div style="max-width:680px;margin:0 auto;padding:20px;background:#ffffff;'
        "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;"
        'line-height:1.45">'
        f'<p style="margin:0;color:{_MUTED};font-size:13px">nightscore · weekly report · '
        f"{_E(report.model_name)}</p>"
        f'<h1 style="font-size:22px;margin:4px 0 12px 0;color:#1f3b5a">{_E(report.week_label)}</h1>'
        f'<p style="font-size:15px">{_E(_headline(report))}</p>'
        f'<h2 style="{_H2}">Key numbers</h2>'
        + _table(("", "This week", "Last week", "Change"), k_rows, numeric=(1, 2, 3))
        + (
            f'<p style="color:{_MUTED};font-size:13px;margin:6px 0 0 0">{_E(note)}</p>'
            if (note := _comparison_note(report))
            else ""
        )
        + f'<h2 style="{_H2}">Day by day</h2>'
        f'<img src="{_E(image_src, quote=True)}" width="640" alt="Per day: ROC AUC; actual '
        'disruption rate and mean predicted risk" style="display:block;width:100%;'
        'max-width:640px;height:auto;border:0;margin:0 0 8px 0">'
        + _table(
            ("Day", "Flights", "ROC AUC", "Disrupted", "Mean risk"), day_rows, numeric=(1, 2, 3, 4)
        )
        + f'<h2 style="{_H2}">Riskiest routes</h2>'
        f'<p style="color:{_MUTED};font-size:13px;margin:0 0 6px 0">Top {TOP_ROUTES} by mean '
        f"predicted risk over the week, routes with at least {MIN_ROUTE_FLIGHTS} flights.</p>"
        + routes
        + f'<h2 style="{_H2}">Model</h2>'
        + model
        + f'<h2 style="{_H2}">Drift</h2>'
        + drift
        + f'<h2 style="{_H2}">{_E(_alerts_title(report))}</h2>'
        + alerts
        + f'<p style="margin:24px 0 0 0;padding:10px;background:#f0f4fa;border-radius:4px">'
        f"{attachment}</p>"
        + (f"<p>Links:{links}</p>" if links else "")
        + f'<p style="margin-top:28px;color:{_MUTED};font-size:12px">{_E(_footer(report))}</p>'
        "</div></body></html>"
    )


def trend_chart(days: Sequence[DayPoint], roc_auc_floor: float | None = None) -> bytes:
    """The week per day as a PNG (700 x 300 px): ROC AUC on the left; actual disruption
    rate against mean predicted risk on the right. Days without outcomes leave gaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    def series(attr: str) -> list[float]:
        return [math.nan if getattr(d, attr) is None else getattr(d, attr) for d in days]

    fig = Figure(figsize=CHART_SIZE_IN, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    x = list(range(len(days)))
    labels = [f"{_WEEKDAYS[d.service_date.weekday()]}\n{d.service_date.day}" for d in days]
    auc = series("roc_auc")
    left.plot(x, auc, marker="o", color="#1f5fa8", linewidth=2)
    left.axhline(0.5, color="#999", linestyle=":", linewidth=1)
    left.text(0, 0.5, "chance", color="#999", fontsize=7, va="bottom")
    if roc_auc_floor is not None:
        left.axhline(roc_auc_floor, color=_BAD, linestyle="--", linewidth=1)
        left.text(
            x[-1] if x else 0,
            roc_auc_floor,
            f"floor {roc_auc_floor:g}",
            color=_BAD,
            fontsize=7,
            ha="right",
            va="bottom",
        )
    known = [v for v in auc if not math.isnan(v)]
    left.set_ylim(min([0.45, *known]) - 0.02, 1.0)
    left.set_title("ROC AUC", fontsize=10)
    actual, risk = series("disruption_rate"), series("mean_risk")
    right.plot(x, actual, marker="o", color=_BAD, linewidth=2, label="actual disrupted")
    right.plot(
        x,
        risk,
        marker="s",
        color="#1f5fa8",
        linewidth=2,
        linestyle="--",
        label="mean predicted risk",
    )
    top = max([0.5, *(v for v in actual + risk if not math.isnan(v))])
    right.set_ylim(0, min(1.0, top * 1.15))
    right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    right.set_title("Disruption: actual vs predicted", fontsize=10)
    right.legend(fontsize=7, loc="upper left", frameon=False)
    for ax, values in ((left, auc), (right, actual)):
        ax.set_xticks(x, labels, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", color="#eee")
        ax.spines[["top", "right"]].set_visible(False)
        if all(math.isnan(v) for v in values):
            ax.text(
                0.5,
                0.5,
                "outcomes n/a",
                transform=ax.transAxes,
                ha="center",
                color=_MUTED,
                fontsize=9,
            )
    fig.tight_layout(pad=0.6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI, metadata={"Software": None})
    return buffer.getvalue()


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


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + b64encode(png).decode("ascii")


# --- gathering (pure over DataFrames) ---------------------------------------------------


def _joined(frame: pd.DataFrame) -> pd.DataFrame:
    joined = frame[frame["disrupted"].notna()]
    return joined.assign(disrupted=joined["disrupted"].astype(int))


def week_kpis(frame: pd.DataFrame, alerts: Sequence[AlertLine]) -> WeekKpis | None:
    """The KPIs of one week's predictions (`disrupted` NaN where no outcome yet); None
    when nothing was scored."""
    from nightscore.monitoring.performance import segment_metrics

    if frame.empty:
        return None
    joined = _joined(frame)
    metrics = segment_metrics(joined) if len(joined) else {}
    by_severity: dict[str, int] = {}
    for a in alerts:
        by_severity[a.severity] = by_severity.get(a.severity, 0) + 1
    return WeekKpis(
        flights_scored=len(frame),
        flights_with_outcomes=len(joined),
        disruption_rate=float(joined["disrupted"].mean()) if len(joined) else None,
        mean_risk=float(frame["score"].mean()),
        roc_auc=metrics.get("roc_auc"),
        precision=metrics.get("precision"),
        recall=metrics.get("recall"),
        alerts=len(alerts),
        alerts_by_severity=by_severity,
        model_versions=tuple(sorted(int(v) for v in frame["model_version"].unique())),
        days_scored=int(frame["service_date"].nunique()),
    )


def daily_points(frame: pd.DataFrame, week_end: date) -> tuple[DayPoint, ...]:
    """One point per day of the week, days without predictions included (empty)."""
    from nightscore.monitoring.performance import segment_metrics

    points = []
    for offset in range(WEEK_DAYS - 1, -1, -1):
        day = week_end - timedelta(days=offset)
        scored = frame[frame["service_date"] == day]
        joined = _joined(scored)
        metrics = segment_metrics(joined) if len(joined) else {}
        points.append(
            DayPoint(
                service_date=day,
                flights=len(scored),
                mean_risk=float(scored["score"].mean()) if len(scored) else None,
                disruption_rate=float(joined["disrupted"].mean()) if len(joined) else None,
                roc_auc=metrics.get("roc_auc"),
            )
        )
    return tuple(points)


def riskiest_routes(
    frame: pd.DataFrame, top: int = TOP_ROUTES, min_flights: int = MIN_ROUTE_FLIGHTS
) -> tuple[RouteRisk, ...]:
    """The routes with the highest mean predicted risk among those flown often enough."""
    if frame.empty:
        return ()
    routes = (
        frame.dropna(subset=["dest"])
        .groupby(["origin", "dest"], as_index=False)
        .agg(
            flights=("score", "size"),
            mean_risk=("score", "mean"),
            disruption_rate=("disrupted", "mean"),  # NaN (no outcome) is skipped
            dest_name=("dest_name", "first"),
        )
    )
    routes = routes[routes["flights"] >= min_flights].sort_values(
        ["mean_risk", "flights", "origin", "dest"], ascending=[False, False, True, True]
    )
    return tuple(
        RouteRisk(
            origin=r.origin,
            dest=r.dest,
            dest_name=r.dest_name if isinstance(r.dest_name, str) else None,
            flights=int(r.flights),
            mean_risk=float(r.mean_risk),
            disruption_rate=None if math.isnan(r.disruption_rate) else float(r.disruption_rate),
        )
        for r in routes.head(top).itertuples()
    )


def strongest_drift(rows: Sequence[dict[str, Any]]) -> tuple[DriftedFeature, ...]:
    """Per feature, from its drifted (day, method, statistic) rows: the days it drifted
    and its strongest statistic (largest distance, smallest p-value); most days first."""
    from nightscore.monitoring.drift import METHODS

    by_feature: dict[str, dict[str, Any]] = {}
    for row in rows:
        method = METHODS.get(row["method"])
        distance = method.distance if method else True
        entry = by_feature.setdefault(
            row["feature"], {"days": set(), "statistic": None, "methods": set()}
        )
        entry["days"].add(row["service_date"])
        entry["methods"].add(row["method"])
        best, value = entry["statistic"], float(row["statistic"])
        if best is None or (value > best if distance else value < best):
            entry["statistic"] = value
    features = [
        DriftedFeature(name, len(e["days"]), e["statistic"], ", ".join(sorted(e["methods"])))
        for name, e in by_feature.items()
    ]
    return tuple(sorted(features, key=lambda f: (-f.days_drifted, f.feature)))


# --- queries (IO) -----------------------------------------------------------------------

_PREDICTIONS = text(
    """
    SELECT p.service_date, p.origin, f.dest, f.dest_name, p.model_version,
           p.score, p.label, p.threshold, f.disrupted::int AS disrupted
    FROM scoring.predictions p
    JOIN analytics.flights f USING (service_date, carrier, flight, origin)
    WHERE p.model_name = :model AND p.service_date BETWEEN :first AND :last
    """
)
_ALERTS = text(
    """
    SELECT service_date, severity, rule, subject, status
    FROM monitoring.alerts
    WHERE service_date BETWEEN :first AND :last AND rule <> :rule
    ORDER BY service_date, alert_id
    """
)
_CHAMPION = text(
    """
    SELECT h.model_name, h.version, h.champion_from, h.roc_auc_at_promotion,
           (SELECT d.training_cutoff FROM ml.model_decisions d
            WHERE d.model_name = h.model_name AND d.challenger_version = h.version
              AND d.decided_at = h.champion_from LIMIT 1) AS training_cutoff
    FROM analytics.champion_history h
    WHERE h.model_name = :model AND h.champion_until IS NULL
    ORDER BY h.champion_from DESC LIMIT 1
    """
)
_DRIFTED = text(
    """
    SELECT column_name AS feature, service_date, method, statistic
    FROM monitoring.drift
    WHERE model_name = :model AND service_date BETWEEN :first AND :last
      AND monitored AND drifted
    """
)
_DRIFT_DAYS = text(
    """
    SELECT count(DISTINCT service_date) FROM monitoring.drift_runs
    WHERE model_name = :model AND service_date BETWEEN :first AND :last
    """
)
_DRIFT_REPORT = text(
    """
    SELECT service_date, path FROM monitoring.reports
    WHERE kind = 'drift' AND service_date BETWEEN :first AND :last
    ORDER BY service_date DESC, created_at DESC LIMIT 1
    """
)


def _local_path(path: str) -> Path:
    """A report path as stored: a plain path or a file:// URI."""
    if path.startswith("file://"):
        return Path(unquote(urlsplit(path).path))
    return Path(path)


def _frame(conn: Connection, model: str, first: date, last: date) -> pd.DataFrame:
    import pandas as pd

    result = conn.execute(_PREDICTIONS, {"model": model, "first": first, "last": last})
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["disrupted"] = pd.to_numeric(frame["disrupted"], errors="coerce")
    frame["score"] = frame["score"].astype(float)
    return frame


def _champion(conn: Connection, model: str, week_end: date) -> Champion | None:
    row = conn.execute(_CHAMPION, {"model": model}).mappings().first()
    if row is None:
        return None
    promoted: datetime = row["champion_from"]
    # In a replay the promotion (wall clock) comes after the service dates: age from now.
    reference = week_end if promoted.date() <= week_end else date.today()
    return Champion(
        name=row["model_name"],
        version=int(row["version"]),
        promoted_at=promoted,
        age_days=max(0, (reference - promoted.date()).days),
        roc_auc_at_promotion=row["roc_auc_at_promotion"],
        training_cutoff=row["training_cutoff"],
    )


def gather(week_end: date, settings: Settings) -> WeeklyReport:
    """Everything the report says about the week that ends on `week_end`."""
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    first = week_end - timedelta(days=WEEK_DAYS - 1)
    previous = first - timedelta(days=WEEK_DAYS)
    model = settings.model_name
    week = {"model": model, "first": first, "last": week_end}
    with engine_for(settings).connect() as conn:
        frame = _frame(conn, model, previous, week_end)
        alerts = [
            AlertLine(**row)
            for row in conn.execute(
                _ALERTS, {"first": previous, "last": week_end, "rule": RULE}
            ).mappings()
        ]
        champion = _champion(conn, model, week_end)
        drifted = strongest_drift(
            cast("list[dict[str, Any]]", list(conn.execute(_DRIFTED, week).mappings()))
        )
        drift_days = conn.execute(_DRIFT_DAYS, week).scalar_one()
        drift_row = conn.execute(_DRIFT_REPORT, week).mappings().first()

    this = frame[frame["service_date"] >= first]
    this_alerts = [a for a in alerts if a.service_date and a.service_date >= first]
    this_week = week_kpis(this, this_alerts)
    if this_week is None:
        raise NoScoredFlights(
            f"no flight was scored by {model!r} between {first} and {week_end}: "
            "there is nothing to report for that week"
        )
    drift_report = None
    if drift_row is not None:
        path = _local_path(drift_row["path"])
        if path.is_file():
            drift_report = DriftReportFile(
                drift_row["service_date"], str(path), path.stat().st_size
            )
        else:
            logger.warning("the drift report of %s is gone: %s", drift_row["service_date"], path)
    floor = load_rules(settings).get("roc_auc_floor")
    return WeeklyReport(
        week_end=week_end,
        model_name=model,
        this_week=this_week,
        last_week=week_kpis(
            frame[frame["service_date"] < first],
            [a for a in alerts if a.service_date and a.service_date < first],
        ),
        days=daily_points(this, week_end),
        routes=riskiest_routes(this),
        champion=champion,
        drifted=drifted,
        drift_days_checked=int(drift_days),
        alerts=tuple(this_alerts),
        drift_report=drift_report,
        roc_auc_floor=floor.threshold if floor and floor.metric else None,
        airflow_url=settings.airflow_url,
    )


def report_path(week_end: date, settings: Settings) -> Path:
    return Path(settings.reports_dir) / "weekly" / f"weekly_report_{week_end.isoformat()}.html"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def queue_weekly_report(week_end: date, settings: Settings) -> int | None:
    """Build the week's report, write its HTML copy, record it in `monitoring.reports` and
    queue the email for the stakeholders. Returns the alert id, or None when the week's
    report was already queued (a re-run sends nothing twice). Raises `NoScoredFlights`
    when nothing was scored in the week."""
    from nightscore.monitoring.outbox import raise_alert
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    report = gather(week_end, settings)
    chart = trend_chart(report.days, report.roc_auc_floor)
    attachment = (
        Path(report.drift_report.path).read_bytes() if report.drift_report is not None else None
    )
    page = render_html(report, data_uri(chart)).encode("utf-8")
    path = report_path(week_end, settings)
    _write(path, page)
    msg = build_email(report, chart, attachment)
    raw = msg.as_bytes()
    plain = render_text(report)
    details = {
        **report.kpis(),
        "report_url": path.resolve().as_uri(),
        "chart_bytes": len(chart),
        "message_bytes": len(raw),
    }
    with engine_for(settings).begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO monitoring.reports (kind, service_date, path, bytes)
                VALUES ('weekly', :day, :path, :bytes)
                ON CONFLICT (kind, service_date)
                DO UPDATE SET path = EXCLUDED.path, bytes = EXCLUDED.bytes, created_at = now()
                """
            ),
            {"day": week_end, "path": str(path), "bytes": len(page)},
        )
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
        path,
        f"{len(raw):,}",
        "" if alert_id else ", already queued",
    )
    return alert_id
