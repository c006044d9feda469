"""The validation page of one batch: nightscore's own, escaped, self-contained page.

Each batch gets one page in the store, written last so a reader never finds half of it:

    {data_docs_root}/{kind}/service_date={date}/{checksum[:12]}/summary.html

Re-validating the same bytes replaces it. Great Expectations' own Data Docs site is not
built: its validation pages put the batch's values into the HTML unescaped (a carrier
code `<img src=x onerror=...>` in a landing file ran as script there, GX 1.x), and its
index needs JavaScript from a CDN. Every value here goes through `html.escape`, and the
page forbids scripts itself (its Content-Security-Policy), wherever it is opened from.
"""

from __future__ import annotations

import html
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from nightscore import store

SUMMARY = "summary.html"
# No script, no remote resource, no form: the page is text and tables.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def batch_docs_location(root: str, kind: str, service_date: date, checksum: str) -> str:
    """The folder of one batch's validation page below the Data Docs root."""
    return "/".join(
        [root.rstrip("/"), kind, f"service_date={service_date.isoformat()}", checksum[:12]]
    )


def publish_docs(location: str, report: Any) -> str:
    """Write a batch's validation page into the store folder `location`; returns its store
    location. It shows the verdict, every expectation with its outcome and examples, and
    the parse problems that never reached Great Expectations."""
    with tempfile.TemporaryDirectory(prefix="nightscore-docs-") as tmp:
        folder = Path(tmp)
        (folder / SUMMARY).write_text(summary_page(report), encoding="utf-8")
        return store.put_folder(folder, location, linked=SUMMARY)


def summary_page(report: Any) -> str:
    """The page, every value escaped."""
    verdict = "passed" if report.success else "was rejected"
    title = f"{report.kind} batch for {report.service_date.isoformat()}"

    def status(o: Any) -> str:
        if o.success:
            return "ok"
        return "<b class='bad'>FAILED</b>" if o.critical else "<b class='warn'>warning</b>"

    rows = "".join(
        f"<tr><td>{html.escape(o.part)}</td><td>{html.escape(o.description)}</td>"
        f"<td>{status(o)}</td><td>{'' if o.success else o.unexpected_count}</td>"
        f"<td><code>{html.escape(', '.join(map(str, o.examples)))}</code></td></tr>"
        for o in sorted(report.outcomes, key=lambda o: (o.success, not o.critical))
    )
    parts = ", ".join(f"{name} {n} rows" for name, n in report.rows.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{PAGE_POLICY}\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left;vertical-align:top}table{border-collapse:collapse}"
        ".bad{color:#b00}.warn{color:#a60}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>This batch {verdict} ({html.escape(parts)}; "
        f"checksum <code>{html.escape(report.checksum[:12])}</code>).</p>"
        f"<pre>{html.escape(report.summary())}</pre><table><tr><th>part</th>"
        f"<th>expectation</th><th>result</th><th>bad rows</th><th>examples</th></tr>{rows}"
        "</table></body></html>\n"
    )
