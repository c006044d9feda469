"""Great Expectations Data Docs for one validated batch.

Each batch gets its own small static site, built by GX's own SiteBuilder from the
ephemeral context that validated it (so the site holds exactly that batch's suites and
results), in a temporary folder, then published to the store (`store.put_folder`):

    {data_docs_root}/{kind}/service_date={date}/{checksum[:12]}/summary.html
    {data_docs_root}/{kind}/service_date={date}/{checksum[:12]}/index.html, validations/...

Re-validating the same bytes replaces the same folder.
"""

from __future__ import annotations

import html
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from nightscore import store

SITE_NAME = "nightscore"
SUMMARY = "summary.html"

# GX copies ~4 MB of images and fonts into every site; its pages inline their styles and
# use only the favicon, so the rest would cost 4 MB per batch for nothing.
_KEEP_STATIC = ("images/favicon.ico", "styles")


def batch_docs_location(root: str, kind: str, service_date: date, checksum: str) -> str:
    """The folder of one batch's Data Docs site below the Data Docs root."""
    return "/".join(
        [root.rstrip("/"), kind, f"service_date={service_date.isoformat()}", checksum[:12]]
    )


def publish_docs(context: Any | None, location: str, report: Any) -> str:
    """Write a batch's docs into the store folder `location`; returns the store location
    of the page to link to, its summary.

    Two things are written. GX's own site, built from the results of the parts that
    parsed. Its index lists them with JavaScript fetched from a CDN, so it is blank
    offline. And `summary.html`, a self-contained page: the verdict, every expectation
    with its outcome and examples, parse problems that never reached GX, and links to
    GX's page for each part. The summary is published last.
    """
    with tempfile.TemporaryDirectory(prefix="nightscore-docs-") as tmp:
        folder = Path(tmp)
        if context is not None:
            _build_site(context, folder)
        links = _validation_pages(folder)
        (folder / SUMMARY).write_text(_summary_page(report, links), encoding="utf-8")
        return store.put_folder(folder, location, linked=SUMMARY)


def _validation_pages(site: Path) -> dict[str, str]:
    """GX's validation result page of each part, relative to the site's folder."""
    return {
        page.relative_to(site / "validations").parts[0]: page.relative_to(site).as_posix()
        for page in sorted(site.glob("validations/**/*.html"))
    }


def _summary_page(report: Any, links: dict[str, str]) -> str:
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
    site = "".join(
        f'<li><a href="{html.escape(href)}">{html.escape(part)}</a></li>'
        for part, href in links.items()
    )
    site = (
        f"<p>Great Expectations' result page of each part:</p><ul>{site}</ul>"
        if site
        else "<p>No part could be parsed, so Great Expectations did not run.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left;vertical-align:top}table{border-collapse:collapse}"
        ".bad{color:#b00}.warn{color:#a60}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>This batch {verdict} ({html.escape(parts)}; "
        f"checksum <code>{report.checksum[:12]}</code>).</p>"
        f"<pre>{html.escape(report.summary())}</pre><table><tr><th>part</th>"
        f"<th>expectation</th><th>result</th><th>bad rows</th><th>examples</th></tr>{rows}"
        f"</table>{site}</body></html>\n"
    )


def _build_site(context: Any, folder: Path) -> None:
    context.add_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(folder),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.build_data_docs(site_names=[SITE_NAME])
    _prune_static(folder / "static")


def _prune_static(static: Path) -> None:
    if not static.is_dir():
        return
    keep = {static / k for k in _KEEP_STATIC}
    for path in sorted(static.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if any(path == k or k in path.parents or path in k.parents for k in keep):
            continue
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()
