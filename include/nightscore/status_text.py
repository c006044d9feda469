"""The human form of `nightscore status` and `nightscore alerts list`: short sections,
aligned columns, every line within 80 columns (a longer one ends in "...")."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from nightscore.status import Champion, NightStatus, Row

WIDTH = 80
# A link is never cut (a cut link opens nothing): it goes on a line of its own, indented
# this much, however long.
LINK_INDENT = 4
# Lines a batch's error or an alert's last error may take: the first says what failed,
# the Data Docs link and `alerts list` say the rest.
WHY_LINES = 2


def fit(line: str, width: int = WIDTH) -> str:
    """`line` cut to `width` columns, ending in "..." when cut."""
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def when(value: datetime | None) -> str:
    """A timestamp in UTC to the minute: "2013-03-06 21:04 UTC"; "-" for none."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def link(label: str, url: str, indent: int = 2) -> list[str]:
    """A labelled link: the label at `indent`, then the whole URL on a line of its own."""
    return [fit(f"{'':{indent}}{label}:"), " " * LINK_INDENT + url]


def number(value: Any, digits: int = 3) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{float(value):.{digits}f}"


def reasons(error: str | None) -> str | None:
    """What failed, from a ledger error: its " - " lines (the failed expectations), else its
    first line."""
    if not error:
        return None
    lines = error.strip().splitlines()
    failed = [line.strip(" -") for line in lines if line.startswith(" - ")]
    return "; ".join(failed) if failed else lines[0]


def _why(label: str, message: str | None, indent: int) -> list[str]:
    if not message:
        return []
    lines = textwrap.wrap(
        f"{label}: {message}",
        width=WIDTH,
        initial_indent=" " * indent,
        subsequent_indent=" " * (indent + 2),
        max_lines=WHY_LINES,
        placeholder=" ...",
    )
    return lines


def _batches(status: NightStatus) -> list[str]:
    lines = ["Batches"]
    if not status.batches:
        lines.append("  none landed (or none recorded) for this date")
    for b in status.batches:
        lines.append(
            fit(
                f"  {b['kind']:<9} #{b['batch_id']:<5} {b['status']:<9} {b['rows']:>9,} rows"
                f"  {b['warnings']} warnings  {when(b['updated_at'])}"
            )
        )
        if b["status"] in ("rejected", "held"):
            lines += _why("why", reasons(b["error"]), 18)
        if b["applied_by"]:
            lines.append(fit(f"{'':18}applied on purpose by {b['applied_by']}"))
        if b["status"] in ("rejected", "held") and b["data_docs_url"]:
            lines += link("Data Docs", b["data_docs_url"], indent=18)
    loaded = status.loaded
    lines.append(
        f"  in core   {loaded['flights']:,} flights, {loaded['weather']:,} weather hours, "
        f"{loaded['outcomes']:,} outcomes"
    )
    return lines


def _scoring(status: NightStatus) -> list[str]:
    lines = ["Scoring"]
    if not status.scoring_runs:
        return [*lines, "  not scored"]
    run = status.scoring_runs[0]
    rows = "-" if run["rows"] is None else f"{run['rows']:,}"
    lines.append(
        fit(
            f"  run #{run['scoring_run_id']:<5} {run['status']:<9} {rows:>9} rows  "
            f"v{run['model_version']} of {run['model_name']}"
        )
    )
    took = "" if run["duration_s"] is None else f", took {run['duration_s']:.1f} s"
    lines.append(fit(f"{'':12}started {when(run['started_at'])}{took}"))
    lines += _why("error", run["error"], 12)
    if len(status.scoring_runs) > 1:
        lines.append(f"{'':12}({len(status.scoring_runs) - 1} earlier run(s) for this date)")
    return lines


def champion_lines(found: Champion) -> list[str]:
    lines = ["Champion (now)"]
    if found.state == "unavailable":
        return lines + _why("MLflow unavailable", found.error, 2)
    if found.state == "none":
        return [*lines, fit(f"  no version of {found.model_name} has the alias @{found.alias}")]
    promoted = f", promoted {when(found.promoted_at)}" if found.promoted_at else ""
    lines.append(fit(f"  v{found.version} @{found.alias}{promoted}"))
    lines.append(fit(f"  of {found.model_name}"))
    if found.model_url:
        lines += link("in MLflow", found.model_url)
    return lines


def _monitoring(status: NightStatus) -> list[str]:
    lines = ["Monitoring"]
    for p in status.performance:
        lines.append(
            fit(
                f"  performance v{p['model_version']}: {p['rows']:,} flights, "
                f"ROC AUC {number(p['roc_auc'])}, precision {number(p['precision'])}, "
                f"recall {number(p['recall'])}"
            )
        )
    if not status.performance:
        lines.append("  performance: not measured (outcomes not in, or not monitored yet)")
    for d in status.drift:
        columns = ", ".join(d["drifted_columns"]) or "none"
        lines.append(
            fit(
                f"  drift       v{d['model_version']}: {d['share_drifted']:.0%} of features "
                f"drifted ({columns})"
            )
        )
        lines.append(
            fit(
                f"{'':16}mean score {number(d['mean_score'])} vs "
                f"{number(d['reference_mean_score'])} in the reference"
            )
        )
        if d["report_url"]:
            lines += link(f"drift report of v{d['model_version']}", d["report_url"])
    if not status.drift:
        lines.append("  drift: not measured")
    for r in status.breached_rules:
        lines.append(
            fit(
                f"  breached    {r['rule']}: {r['metric']} {number(r['value'])} "
                f"({r['comparison']} {r['threshold']:g}), {r['severity']}"
            )
        )
    for t in status.retrain:
        lines.append(fit(f"  retrain     asked (cut-off {t['cutoff']}): {t['reason']}"))
    return lines


def alert_line(a: Row, *, with_date: bool = False) -> str:
    day = f"{a['service_date'] or '-'!s:<10} " if with_date else ""
    # Every subject starts with the tag mail needs; the terminal needs the columns.
    subject = str(a["subject"]).removeprefix("[nightscore]").strip()
    return fit(f"  #{a['alert_id']:<5} {day}{a['status']:<10} {a['severity']:<8} {subject}")


def _alert_detail(a: Row) -> list[str]:
    if a["status"] == "sent":
        return [f"{'':9}sent {when(a['sent_at'])}"]
    if a["status"] == "pending" and a["attempts"]:
        return _why(f"{a['attempts']} failed attempt(s), last", a["last_error"], 9)
    return []


def _alerts(status: NightStatus) -> list[str]:
    lines = ["Alerts"]
    if not status.alerts:
        return [*lines, "  none"]
    pending = sum(a["status"] == "pending" for a in status.alerts)
    sent = sum(a["status"] == "sent" for a in status.alerts)
    lines.append(f"  {pending} pending, {sent} sent, {len(status.alerts) - pending - sent} other")
    for a in status.alerts:
        lines.append(alert_line(a))
        lines += _alert_detail(a)
    return lines


def render_status(status: NightStatus) -> str:
    """The human form of one night's status."""
    day = status.service_date
    head = [f"nightscore status for {day} ({day:%A})"]
    if status.empty:
        head.append(
            f"Nothing recorded for {day} yet: no batch, no scoring run, no monitoring, no alert."
        )
        sections = [champion_lines(status.champion)]
    else:
        sections = [
            _batches(status),
            _scoring(status),
            champion_lines(status.champion),
            _monitoring(status),
            _alerts(status),
        ]
    return "\n\n".join(["\n".join(fit(h) for h in head)] + ["\n".join(s) for s in sections])


def render_alerts(rows: list[Row]) -> str:
    """The human form of `alerts list`: one line an alert, newest first."""
    if not rows:
        return "no alerts match"
    head = fit(f"  {'id':<6} {'date':<10} {'status':<10} {'severity':<8} subject")
    lines = [head]
    for a in rows:
        lines.append(alert_line(a, with_date=True))
        lines += _alert_detail(a)
    return "\n".join(lines)
