"""`nightscore.served_files`: content types, and the reports index listing a local store."""

from __future__ import annotations

import os

import pytest

from nightscore.config import Settings
from nightscore.served_files import SHOWN_PER_SECTION, content_type, index_page, list_sections


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("weekly/weekly_report_2013-02-10.html", "text/html; charset=utf-8"),
        ("a/static/styles/site.CSS", "text/css; charset=utf-8"),
        ("a/static/app.js", "text/javascript; charset=utf-8"),
        ("a/validations.json", "application/json"),
        ("a/images/logo.png", "image/png"),
        ("a/images/favicon.ico", "image/vnd.microsoft.icon"),
        ("a/fonts/x.woff2", "font/woff2"),
        ("a/report.pdf", "application/pdf"),
        ("a/no_suffix", "application/octet-stream"),
    ],
)
def test_content_type(key, expected):
    assert content_type(key) == expected


def _touch(path, mtime: float = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    if mtime:
        os.utime(path, (mtime, mtime))


def test_the_index_lists_each_kind_newest_first(tmp_path):
    settings = Settings(store_url=str(tmp_path))
    for day in ("2013-02-08", "2013-02-10", "2013-02-09"):
        _touch(tmp_path / "reports" / "drift" / f"drift_report_{day}.html")
    _touch(tmp_path / "reports" / "weekly" / "weekly_report_2013-02-10.html")
    _touch(tmp_path / "reports" / "drift" / "notes.txt")  # not listed
    docs = tmp_path / "data_docs" / "schedule" / "service_date=2013-02-09"
    _touch(docs / "aaaaaaaaaaaa" / "summary.html", mtime=1_000)
    _touch(docs / "bbbbbbbbbbbb" / "summary.html", mtime=2_000)  # re-validated later
    _touch(docs / "bbbbbbbbbbbb" / "index.html")  # GX's page: not listed

    weekly, drift, data_docs = list_sections(settings)
    assert [e.key for e in weekly.entries] == ["weekly/weekly_report_2013-02-10.html"]
    assert [e.day for e in drift.entries] == ["2013-02-10", "2013-02-09", "2013-02-08"]
    assert [e.detail for e in data_docs.entries] == ["batch bbbbbbbbbbbb", "batch aaaaaaaaaaaa"]
    assert data_docs.entries[0].title == "2013-02-09 schedule"
    assert data_docs.entries[0].href == (
        "files/data_docs/schedule/service_date%3D2013-02-09/bbbbbbbbbbbb/summary.html"
    )


def test_an_empty_store_says_so_and_long_sections_fold(tmp_path):
    settings = Settings(store_url=str(tmp_path))
    assert "None yet." in index_page(list_sections(settings))
    for day in range(1, SHOWN_PER_SECTION + 4):
        _touch(tmp_path / "reports" / "drift" / f"drift_report_2013-03-{day:02d}.html")
    page = index_page(list_sections(settings))
    assert f"Drift reports ({SHOWN_PER_SECTION + 3})" in page
    assert "<summary>3 older</summary>" in page
    assert page.index("2013-03-17") < page.index("<details>") < page.index("2013-03-01")


def test_every_page_gets_a_script_free_policy_and_drift_reports_a_sandbox():
    from nightscore.served_files import security_headers

    page = security_headers("data_docs", "schedule/service_date=2013-02-09/abc/summary.html")
    assert page["X-Content-Type-Options"] == "nosniff"
    policy = page["Content-Security-Policy"]
    assert policy.startswith("default-src 'none';") and "script-src" not in policy
    assert security_headers("reports", "weekly/weekly_report_2013-02-10.html") == page
    drift = security_headers("reports", "drift/drift_report_2013-02-09.html")
    sandboxed = drift["Content-Security-Policy"]
    assert sandboxed.startswith("sandbox allow-scripts") and "allow-same-origin" not in sandboxed
    assert "connect-src 'none'" in sandboxed
    # Only the reports area's drift folder: a data_docs key named like one gets no scripts.
    assert security_headers("data_docs", "drift/x.html") == page


def test_the_index_shows_file_names_as_text(tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    _touch(tmp_path / "reports" / "drift" / f"drift_report_{hostile}.html")
    page = index_page(list_sections(Settings(store_url=str(tmp_path))))
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_page_shell_escapes_its_title_and_lead_and_keeps_its_body():
    from nightscore.served_files import page

    shell = page("a <b> & c", "<script>x</script>", '<p class="empty">body</p>')
    assert "<title>a &lt;b&gt; &amp; c</title>" in shell
    assert "<h1>a &lt;b&gt; &amp; c</h1>" in shell
    assert '<p class="lead">&lt;script&gt;x&lt;/script&gt;</p>' in shell
    assert "<script>" not in shell
    assert shell.index('<p class="lead">') < shell.index('<p class="empty">body</p>')
    assert '<a href="../" target="_top">&larr; Airflow</a>' in shell
