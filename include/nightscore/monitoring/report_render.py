"""The weekly report as words: the subject, the plain-text part and the HTML part
(`templates/weekly_report.html.j2`, autoescaped). Pure: a `WeeklyReport` in, text out."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
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
    WeekKpis,
    WeeklyReport,
)

if TYPE_CHECKING:
    import jinja2

    from nightscore.monitoring.report_chart import Chart

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


def _whole_pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _flagged_last_week(before: WeekKpis | None) -> str:
    if before is None:
        return "no week before to compare"
    if before.flights_with_outcomes == 0:
        return "last week not known yet"
    if before.precision is None:
        return "last week none flagged"
    return f"last week {_whole_pct(before.precision)}"


def subject(report: WeeklyReport) -> str:
    """The subject in plain words, the number that matters first: among the flights
    flagged as likely disrupted, the share that were, against the week before."""
    k = report.this_week
    if k.flights_with_outcomes == 0:
        head = f"{k.flights_scored:,} flights scored, their outcomes are not in yet"
    elif k.precision is None:
        head = (
            f"No flight flagged as likely disrupted; {_whole_pct(k.disruption_rate or 0)} "
            "were disrupted"
        )
    else:
        head = (
            f"Flagged flights: {_whole_pct(k.precision)} were disrupted, "
            f"{_flagged_last_week(report.last_week)}"
        )
    # ASCII only ("4-10 Feb", not "4–10 Feb"): Python's email package folds an encoded
    # subject with a stray space inside it.
    return f"{head} (week of {report.week_label.replace('–', '-')})"


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
        row("Flagged flights that were disrupted", "precision", "pct", True),
        row("Disruptions the model had flagged", "recall", "pct", True),
        row("Flights disrupted", "disruption_rate", "pct", None),
        row("Disruption the model expected", "mean_risk", "pct", None),
        row("Ranking quality (AUC)", "roc_auc", "score", True),
        row("Flights scored", "flights_scored", "count", None),
        row("Flights with outcomes", "flights_with_outcomes", "count", None),
        row("Flights flagged", "flagged", "count", None),
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


def _headline(report: WeeklyReport) -> list[str]:
    """The week in a few short paragraphs: what happened, what the flags caught, and how
    well the model ranked the flights."""
    k = report.this_week
    if k.flights_with_outcomes == 0:
        return [
            f"{k.flights_scored:,} flights were scored; their outcomes have not landed yet, "
            f"so how the model did is not known (n/a). Mean predicted risk {_pct(k.mean_risk)}."
        ]
    missing = k.flights_scored - k.flights_with_outcomes
    pending = f" ({missing:,} still without outcomes)" if missing > 0 else ""
    if k.precision is not None:
        flagged = (
            f"It flagged {_count(k.flagged) + ' ' if k.flagged is not None else ''}flights as "
            f"likely disrupted, and {_pct(k.precision)} of those were; it had flagged "
            f"{_pct(k.recall)} of the disruptions."
        )
    else:
        flagged = "It flagged no flight as likely disrupted."
    return [
        f"{k.flights_scored:,} flights were scored{pending}; {_pct(k.disruption_rate)} of those "
        f"with outcomes were disrupted (late by 15 min or more, cancelled or diverted), "
        f"where the model expected {_pct(k.mean_risk)}.",
        flagged,
        f"Its AUC, the chance that a disrupted flight got a higher risk than an on-time "
        f"one, was {_num(k.roc_auc)} (0.5 is guessing, 1 is perfect).",
    ]


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
        ("AUC at promotion", _num(c.roc_auc_at_promotion)),
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


def _evening_summary(report: WeeklyReport) -> str:
    """The week's evening early warnings, next to how the nights turned out."""
    e = report.evenings
    if e is None:
        return "No evening early warning was checked this week."
    warned = (
        f"The evening early warning fired on {e.warned} of the {e.nights} night(s) scored"
        if e.warned
        else f"The evening early warning stayed quiet on all {e.nights} night(s) scored"
    )
    if not e.judged:
        return f"{warned}; no outcomes are in yet to judge it."
    bad = (
        f"{e.bad} of the {e.judged} night(s) with outcomes turned out bad (AUC under the "
        "floor, or the expected rate more than 10 points off)"
    )
    return (
        f"{warned}. {bad}: {e.warned_bad} of them had been warned; "
        f"{e.warned_ordinary} warning(s) came on nights that turned out ordinary."
    )


def _drift_report_note(report: WeeklyReport) -> str:
    """What the mail says of the week's Evidently report: linked, never attached (an
    interactive page of about 4 MB that mail apps do not run)."""
    r = report.drift_report
    if r is None:
        return "No Evidently drift report was written this week."
    what = (
        f"The Evidently drift report of {_day(r.service_date)} (interactive, "
        f"{r.size_bytes / 1e6:.1f} MB)"
    )
    if r.url is None:
        return f"{what} is in the report store: {r.path}"
    return f"{what} opens in a browser after signing in to Airflow."


def _alert_text(a: AlertLine) -> str:
    when = a.service_date.isoformat() if a.service_date else "-"
    quiet = " (suppressed: in cooldown)" if a.status == "suppressed" else ""
    return (
        f"{when}  {a.severity.upper():8}  {a.subject.removeprefix('[nightscore]').strip()}{quiet}"
    )


def _links(report: WeeklyReport) -> list[tuple[str, str]]:
    """(label, URL) of every link the mail gives, the drift report first."""
    links = []
    if report.drift_report is not None and report.drift_report.url:
        links.append(("Drift report", report.drift_report.url))
    if report.report_url:
        links.append(("This report in a browser", report.report_url))
    if report.airflow_url:
        links.append(("Monitoring DAG in Airflow", f"{report.airflow_url}/dags/monitoring"))
    return links


def render_text(report: WeeklyReport) -> str:
    """The plain-text part: the same sections as the HTML, in aligned columns."""
    k_rows = _kpi_rows(report)
    width = max(len(r[0]) for r in k_rows)
    lines = [
        f"nightscore weekly report: {report.week_label} ({report.model_name})",
        "",
        _wrap(" ".join(_headline(report))),
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
    lines += ["", "PER DAY", "  day          flights  disrupted   expected      AUC"]
    lines += [
        f"  {_day(d.service_date):<11}  {d.flights:>7,}  {_pct(d.disruption_rate):>9}  "
        f"{_pct(d.mean_risk):>9}  {_num(d.roc_auc):>7}"
        for d in report.days
    ]
    lines += ["", "  AUC: the chance that a disrupted flight got a higher risk than an on-time one"]
    lines += ["  (0.5 is guessing, 1 is perfect)."]
    lines += ["", f"RISKIEST ROUTES (by the risk expected, at least {MIN_ROUTE_FLIGHTS} flights)"]
    if report.routes:
        lines.append("  route        flights   expected  disrupted")
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
    lines += ["", "DRIFT", _wrap(_evening_summary(report), indent="  ")]
    lines += ["", _wrap(_drift_summary(report), indent="  ")]
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
    lines += ["", "DRIFT REPORT", _wrap(_drift_report_note(report), indent="  ")]
    links = _links(report)
    if links:
        lines += ["", "LINKS (they open after signing in to Airflow)"]
        # A URL on a line of its own: a mail app makes it a link, and nothing wraps it.
        for label, url in links:
            lines += [f"  {label}:", f"  {url}"]
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


def render_html(report: WeeklyReport, charts: Sequence[tuple[Chart, str]]) -> str:
    """The HTML part: one column for a phone, inline CSS, simple tables, no script, no
    external resources. `charts` are (chart, its image source): `cid:...` in the email,
    a `data:` URI in the copy written to the store."""
    template = _environment().get_template("weekly_report.html.j2")
    return template.render(
        report=report,
        subject=subject(report),
        headline=[_unbroken(paragraph) for paragraph in _headline(report)],
        kpi_rows=_kpi_rows(report),
        has_last_week=report.last_week is not None,
        note=_comparison_note(report),
        charts=charts,
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
        evening_summary=_evening_summary(report),
        drift_summary=_drift_summary(report),
        drifted_rows=[
            (d.feature, d.days_drifted, f"{d.statistic:.4f}", d.method) for d in report.drifted
        ],
        alerts_title=_alerts_title(report),
        alert_lines=[_alert_line(a) for a in report.alerts[:MAX_ALERT_LINES]],
        more_alerts=len(report.alerts) - MAX_ALERT_LINES,
        drift_report=report.drift_report,
        drift_report_note=_drift_report_note(report),
        links=_links(report),
        footer=_footer(report),
        muted=MUTED,
    )


def _unbroken(text: str) -> str:
    """A number and its unit stay on one line in HTML ("57.1 %", "+9.0 pts")."""
    return text.replace(" %", "\u00a0%").replace(" pts", "\u00a0pts")


def _alert_line(a: AlertLine) -> tuple[str, str, str, str]:
    """(day, severity, subject, note) of an alert, for the HTML list."""
    return (
        _day(a.service_date) if a.service_date else "-",
        a.severity.upper(),
        a.subject.removeprefix("[nightscore]").strip(),
        "suppressed: in cooldown" if a.status == "suppressed" else "",
    )
