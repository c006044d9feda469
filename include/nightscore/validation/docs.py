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

    GX builds its site from the expectation results of the parts that parsed. A file
    that could not be parsed never reached GX, so its problems get a page of their own
    (linking the GX site, if any), and that page is the one recorded.
    """
    url = build_data_docs(context, location) if context is not None else None
    problems = [o for o in report.outcomes if o.expectation == "parse"]
    if not problems:
        return url or ""
    page = location.rstrip("/") + "/parse_problems.html"
    _write_text(page, _problems_page(report, problems, has_site=url is not None))
    local = _local_path(page)
    return local.resolve().as_uri() if local is not None else page


def _problems_page(report: Any, problems: list[Any], *, has_site: bool) -> str:
    title = (
        f"{report.kind} batch for {report.service_date.isoformat()}: files that could not be parsed"
    )
    rows = "".join(
        f"<tr><td>{html.escape(o.part)}</td><td>{html.escape(o.description)}</td>"
        f"<td><code>{html.escape(', '.join(map(str, o.examples)))}</code></td></tr>"
        for o in problems
    )
    site = (
        '<p>Expectation results for the parts that parsed: <a href="index.html">Data Docs</a>.</p>'
        if has_site
        else "<p>No part could be validated further.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:left}table{border-collapse:collapse}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>The batch was <b>rejected</b> "
        f"(checksum <code>{report.checksum[:12]}</code>).</p><table><tr><th>file</th>"
        f"<th>problem</th><th>examples</th></tr>{rows}</table>{site}</body></html>\n"
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
