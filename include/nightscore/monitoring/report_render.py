"""The weekly report as words: the subject, the plain-text part and the HTML part
(`templates/weekly_report.html.j2`, autoescaped). Pure: a `WeeklyReport` in, text out."""

from __future__ import annotations

import textwrap
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from nightscore.monitoring.report_model import (
    BAD,
    GOOD,
    MAX_ALERT_LINES,
    MIN_ROUTE_FLIGHTS,
    MONTHS,
    MUTED,
    TOP_ROUTES,
    WEEK_DAYS,
    WEEKDAYS,
    AlertLine,
    WeeklyReport,
)

if TYPE_CHECKING:
    import jinja2

TEXT_WIDTH = 78
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _day(d: date) -> str:
    return f"{WEEKDAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]}"


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
        colour = MUTED
        if change and higher_is_better is not None and value != old:
            colour = GOOD if (value > old) == higher_is_better else BAD
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


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def render_html(report: WeeklyReport, image_src: str) -> str:
    """The HTML part: inline CSS, tables, no external resources. `image_src` is the chart:
    `cid:...` in the email, a `data:` URI in the copy written to disk."""
    template = _environment().get_template("weekly_report.html.j2")
    return template.render(
        report=report,
        subject=subject(report),
        headline=_headline(report),
        kpi_rows=_kpi_rows(report),
        note=_comparison_note(report),
        image_src=image_src,
        day_rows=[
            (
                _day(d.service_date),
                f"{d.flights:,}",
                _num(d.roc_auc),
                _pct(d.disruption_rate),
                _pct(d.mean_risk),
            )
            for d in report.days
        ],
        top_routes=TOP_ROUTES,
        min_route_flights=MIN_ROUTE_FLIGHTS,
        route_rows=[
            (
                r.origin,
                r.dest,
                r.dest_name,
                f"{r.flights:,}",
                _pct(r.mean_risk),
                _pct(r.disruption_rate),
            )
            for r in report.routes
        ],
        champion_lines=_champion_lines(report),
        drift_summary=_drift_summary(report),
        drifted_rows=[
            (d.feature, str(d.days_drifted), f"{d.statistic:.4f}", d.method) for d in report.drifted
        ],
        alerts_title=_alerts_title(report),
        alert_lines=[_alert_text(a) for a in report.alerts[:MAX_ALERT_LINES]],
        more_alerts=len(report.alerts) - MAX_ALERT_LINES,
        attachment=_attachment_note(report),
        links=_links(report),
        footer=_footer(report),
        muted=MUTED,
    )
