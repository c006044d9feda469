"""Great Expectations Data Docs for one validated batch.

Each batch gets its own small static site, built by GX's own SiteBuilder from the
ephemeral context that validated it (so the site holds exactly that batch's suites and
results):

    {data_docs_root}/{kind}/service_date={date}/{checksum[:12]}/index.html

A local root is written in place; any other fsspec URL (s3://...) is built in a
temporary folder and uploaded. Re-validating the same bytes replaces the same folder.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SITE_NAME = "nightscore"

# GX copies ~4 MB of images and fonts into every site; its pages inline their styles and
# use only the favicon, so the rest would cost 4 MB per batch for nothing.
_KEEP_STATIC = ("images/favicon.ico", "styles")


def batch_docs_location(root: str, kind: str, service_date: date, checksum: str) -> str:
    """The folder of one batch's Data Docs site below the Data Docs root."""
    return "/".join(
        [root.rstrip("/"), kind, f"service_date={service_date.isoformat()}", checksum[:12]]
    )


def build_data_docs(context: Any, location: str) -> str:
    """Build the context's Data Docs into `location`; returns the URL of its index.html."""
    local = _local_path(location)
    if local is not None:
        if local.exists():
            shutil.rmtree(local)
        _build_site(context, local)
        return (local / "index.html").resolve().as_uri()

    import fsspec

    fs, _, _ = fsspec.get_fs_token_paths(location)
    with tempfile.TemporaryDirectory(prefix="nightscore-docs-") as tmp:
        _build_site(context, Path(tmp))
        if fs.exists(location):
            fs.rm(location, recursive=True)
        fs.put(tmp.rstrip("/") + "/", location, recursive=True)
    return location.rstrip("/") + "/index.html"


def publish_docs(context: Any | None, location: str, report: Any) -> str:
    """Write a batch's docs into `location`; returns the URL to record in `ops`.

    Two things are written. GX's own site, built from the results of the parts that
    parsed. Its index lists them with JavaScript fetched from a CDN, so it is blank
    offline. And `summary.html`, a self-contained page: the verdict, every expectation
    with its outcome and examples, parse problems that never reached GX, and links to
    GX's page for each part. The summary is what `ops` links to.
    """
    has_site = context is not None
    if has_site:
        build_data_docs(context, location)
    page = location.rstrip("/") + "/summary.html"
    links = _validation_pages(location) if has_site else {}
    _write_text(page, _summary_page(report, links))
    local = _local_path(page)
    return local.resolve().as_uri() if local is not None else page


def _validation_pages(location: str) -> dict[str, str]:
    """GX's validation result page of each part, relative to the site's folder."""
    local = _local_path(location)
    if local is None:
        return {}
    return {
        page.relative_to(local / "validations").parts[0]: page.relative_to(local).as_posix()
        for page in sorted(local.glob("validations/**/*.html"))
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


def _write_text(path: str, text: str) -> None:
    local = _local_path(path)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text, encoding="utf-8")
        return
    import fsspec

    with fsspec.open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


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


def _local_path(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if not parsed.scheme or len(parsed.scheme) == 1:  # a plain path (C:\ on Windows)
        return Path(location)
    return None
