"""Great Expectations Data Docs for one validated batch.

Each batch gets its own small static site, built by GX's own SiteBuilder from the
ephemeral context that validated it (so the site holds exactly that batch's suites and
results):

    {data_docs_root}/{kind}/service_date={date}/{checksum[:12]}/index.html

A local root is written in place; any other fsspec URL (s3://...) is built in a
temporary folder and uploaded. Re-validating the same bytes replaces the same folder.
"""

from __future__ import annotations

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
