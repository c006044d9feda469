"""What the Airflow API server serves below `/nightscore` (`plugins/nightscore_files.py`):
files of the store's served areas, their content types, and the reports index page.

Nothing here needs Airflow: the plugin adds the routes and the login check. Files are read
with fsspec, so a root may be a local folder or an `s3://...` URL. The index lists:

    reports/weekly/weekly_report_{week_end}.html                     weekly reports
    reports/drift/drift_report_{service_date}.html                   daily drift reports
    data_docs/{kind}/service_date={date}/{checksum[:12]}/summary.html   validation summaries

each newest first (by the date in its name, then by when it was written).
"""

from __future__ import annotations

import html
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import fsspec

from nightscore import store
from nightscore.config import Settings
from nightscore.links import area_root

# Python 3.11's table says application/javascript for .js, and lacks some web types.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
}
# Entries shown open per section; older ones are folded away.
SHOWN_PER_SECTION = 14
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def content_type(key: str) -> str:
    """The Content-Type of a served file, from its name; octet-stream when unknown."""
    name = key.rsplit("/", 1)[-1].lower()
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# What a served page may do. Data values reach these pages (a landing file's carrier
# codes, column names): they are escaped where the pages are written, and the browser is
# also told to run no script at all, so one missed escape is text, not code.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
# Evidently's drift reports are a JavaScript app inlined into the page: they may run
# scripts, but sandboxed into an opaque origin (no Airflow cookie, no same-origin request)
# and with no network.
SCRIPTED_POLICY = (
    "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'none'"
)
_SCRIPTED = (("reports", "drift/"),)


def security_headers(area: str, key: str) -> dict[str, str]:
    """The headers every served file and page gets: its Content-Security-Policy, no
    content sniffing (a .txt stays text), no caching by shared proxies."""
    scripted = any(area == a and key.startswith(prefix) for a, prefix in _SCRIPTED)
    return {
        "Content-Security-Policy": SCRIPTED_POLICY if scripted else PAGE_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
        "Referrer-Policy": "same-origin",
    }


def read_bytes(location: str) -> bytes:
    """The bytes of a file in the store; FileNotFoundError if there is no such file (a
    folder is none)."""
    try:
        return store.read_bytes(location)
    except (IsADirectoryError, NotADirectoryError) as exc:
        raise FileNotFoundError(location) from exc


@dataclass(frozen=True)
class Entry:
    """One listed file: its link (relative to the index page) and what to call it."""

    area: str
    key: str
    title: str
    detail: str
    day: str  # the date in its name, YYYY-MM-DD ("" if none)
    modified: float  # seconds since the epoch (0 if the store does not say)

    @property
    def href(self) -> str:
        # The index is served at /nightscore/reports, files at /nightscore/files/...
        return f"files/{self.area}/{quote(self.key)}"


@dataclass(frozen=True)
class Section:
    title: str
    entries: list[Entry]


def _modified(info: dict[str, Any]) -> float:
    value = info.get("mtime", info.get("LastModified", info.get("updated", 0)))
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _find(settings: Settings, area: str, pattern: str) -> list[tuple[str, float]]:
    """(key, modified) of the files below an area's root that match a glob pattern."""
    store.apply_env()  # the endpoint of an S3-compatible store, as nightscore.store does
    fs, root = fsspec.core.url_to_fs(area_root(settings, area))
    root = root.rstrip("/")
    found = fs.glob(f"{root}/{pattern}", detail=True)
    return [(path[len(root) + 1 :], _modified(info)) for path, info in found.items()]


def _day(key: str) -> str:
    match = _DATE.search(key)
    return match.group(0) if match else ""


def _newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.day, e.modified, e.key), reverse=True)


def list_sections(settings: Settings) -> list[Section]:
    """The weekly reports, drift reports and Data Docs summaries in the store."""
    weekly = [
        Entry("reports", key, f"Week ending {_day(key)}", "weekly report", _day(key), modified)
        for key, modified in _find(settings, "reports", "weekly/*.html")
    ]
    drift = [
        Entry("reports", key, _day(key) or key, "drift report", _day(key), modified)
        for key, modified in _find(settings, "reports", "drift/*.html")
    ]
    docs = []
    for key, modified in _find(settings, "data_docs", "*/service_date=*/*/summary.html"):
        kind, _, checksum, _ = key.split("/", 3)
        docs.append(
            Entry("data_docs", key, f"{_day(key)} {kind}", f"batch {checksum}", _day(key), modified)
        )
    return [
        Section("Weekly reports", _newest_first(weekly)),
        Section("Drift reports", _newest_first(drift)),
        Section("Data Docs: validation summaries", _newest_first(docs)),
    ]


INDEX_STYLE = """
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --link: #0b62d6; }
@media (prefers-color-scheme: dark) { :root { --muted: #9ca3af; --line: #374151;
  --link: #6ea8fe; } }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; max-width: 46rem; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.25rem 0; }
p.back { margin: 0; font-size: 0.9rem; }
p.back a { color: var(--link); text-decoration: none; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 0.5rem; border-bottom: 1px solid var(--line);
  padding-bottom: 0.25rem; }
p.lead, .detail, .empty, summary { color: var(--muted); }
ul { list-style: none; padding: 0; margin: 0; }
li { border-bottom: 1px solid var(--line); }
li a { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0 1rem;
  padding: 0.6rem 0.25rem; color: var(--link); text-decoration: none; }
li a:hover, li a:focus { background: rgba(127, 127, 127, 0.12); }
.detail { font-size: 0.9rem; }
summary { cursor: pointer; padding: 0.6rem 0.25rem; }
"""


def _items(entries: list[Entry]) -> str:
    return "\n".join(
        f'<li><a href="{html.escape(e.href)}"><span>{html.escape(e.title)}</span>'
        f'<span class="detail">{html.escape(e.detail)}</span></a></li>'
        for e in entries
    )


def _section(section: Section) -> str:
    title = html.escape(section.title)
    count = len(section.entries)
    if not section.entries:
        return f'<h2>{title}</h2>\n<p class="empty">None yet.</p>'
    shown, older = section.entries[:SHOWN_PER_SECTION], section.entries[SHOWN_PER_SECTION:]
    body = f"<h2>{title} ({count})</h2>\n<ul>\n{_items(shown)}\n</ul>"
    if older:
        body += (
            f"\n<details><summary>{len(older)} older</summary>\n<ul>\n{_items(older)}\n</ul>"
            "\n</details>"
        )
    return body


def page(title: str, lead: str, body: str) -> str:
    """The shell of the pages served below /nightscore: one style, a way back to Airflow,
    a heading and a lead. `title` and `lead` are text (escaped here), `body` is HTML whose
    values its writer has escaped."""
    title, lead = html.escape(title), html.escape(lead)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{INDEX_STYLE}</style>
</head>
<body>
<p class="back"><a href="../" target="_top">&larr; Airflow</a></p>
<h1>{title}</h1>
<p class="lead">{lead}</p>
{body}
</body>
</html>
"""


def index_page(sections: list[Section]) -> str:
    """The reports index: one section per kind of file, newest first, readable on a phone."""
    return page(
        "nightscore reports",
        "Weekly and drift reports from monitoring, and the validation summary of "
        "every landed batch.",
        "\n".join(_section(s) for s in sections),
    )
