"""`plugins/nightscore_files.py` in a real Airflow API server: reports and Data Docs are
served from the store behind Airflow's login, the reports index lists them, the mail
sink's folder is shown as an inbox, and the UI's navigation gets the MLflow, Evidently,
Mail and Reports links.

One `airflow api-server` per module (SimpleAuthManager with a passwords file, a sqlite
metadata database migrated first, its own AIRFLOW_HOME), on a free port, reading a store
in a temporary folder. The last test drives Chromium through the real login form; it is
skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import html
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

# Slow: an Airflow API server of its own (a sqlite database migrated first), and Chromium.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CHROMIUM = "/usr/bin/chromium"
MLFLOW_URL = "http://mlflow.nightscore.example"
EVIDENTLY_URL = "http://evidently.nightscore.example"
PASSWORD = "s3cret-" + secrets.token_hex(4)

WEEKLY = "weekly/weekly_report_2013-02-10.html"
DRIFT_OLD, DRIFT_NEW = "drift/drift_report_2013-02-08.html", "drift/drift_report_2013-02-09.html"
DOCS = "schedule/service_date=2013-02-09/0123456789ab"
REPORT_BYTES = "<!doctype html><title>Weekly</title><h1>Week ending 2013-02-10 ✓</h1>".encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAIL_SUBJECT = "[nightscore] schedule batch for 2013-02-09 rejected: <b>EWR</b> & JFK"


def _write_mail(folder: Path) -> list[str]:
    """Two messages as the local SMTP sink saves them; their file stems, oldest first."""
    from email.message import EmailMessage

    from nightscore_dev.mailsink import MailSink

    sink = MailSink(folder)
    folder.mkdir()
    for subject, page in [("weekly report", None), (MAIL_SUBJECT, "<h1>batch rejected</h1>")]:
        msg = EmailMessage()
        msg["Subject"], msg["To"] = subject, "oncall@nightscore.example"
        msg.set_content("plain")
        if page:
            msg.add_alternative(page, subtype="html")
        sink.save(msg.as_bytes())
    return [m.eml.stem for m in sink.saved]


def _write_store(store: Path) -> None:
    """A store with a weekly report, two drift reports and one batch's Data Docs."""
    reports, docs = store / "reports", store / "data_docs" / DOCS
    for key, text in [
        (WEEKLY, REPORT_BYTES.decode()),
        (DRIFT_OLD, "<h1>drift 8</h1>"),
        (DRIFT_NEW, "<h1>drift 9</h1>"),
    ]:
        (reports / key).parent.mkdir(parents=True, exist_ok=True)
        (reports / key).write_text(text)
    (docs / "static" / "styles").mkdir(parents=True)
    (docs / "static" / "images").mkdir(parents=True)
    (docs / "summary.html").write_text("<h1>schedule 2013-02-09: passed</h1>")
    (docs / "index.html").write_text('<link rel="stylesheet" href="static/styles/site.css">')
    (docs / "static" / "styles" / "site.css").write_text("body { color: #333 }")
    (docs / "static" / "images" / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (docs / "static" / "images" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (docs / "validations.json").write_text('{"success": true}')
    (store / "secret.txt").write_text("outside every served area")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running API server: {"url", "store", "log"}; stopped after the module."""
    tmp = tmp_path_factory.mktemp("files_plugin")
    home, store = tmp / "airflow_home", tmp / "store"
    home.mkdir()
    _write_store(store)
    mail = _write_mail(tmp / "mail")
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD, "viewer": PASSWORD}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NIGHTSCORE"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "include"), env.get("PYTHONPATH", "")]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "NIGHTSCORE_ENV_FILE": str(tmp / "no.env"),  # not a developer's .env
        "NIGHTSCORE_STORE_URL": str(store),
        "NIGHTSCORE_REPORTS_DIR": str(store / "reports"),
        "NIGHTSCORE_DATA_DOCS_ROOT": str(store / "data_docs"),
        "NIGHTSCORE_PUBLIC_AIRFLOW_URL": url,
        "NIGHTSCORE_PUBLIC_MLFLOW_URL": MLFLOW_URL,
        "NIGHTSCORE_PUBLIC_EVIDENTLY_URL": EVIDENTLY_URL,
        "NIGHTSCORE_MAIL_DIR": str(tmp / "mail"),
    }
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    log = tmp / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its workers
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"api-server exited:\n{log.read_text()[-5000:]}"
            assert time.monotonic() < deadline, f"api-server not up:\n{log.read_text()[-5000:]}"
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield {"url": url, "store": store, "log": log, "mail": mail}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def token(server) -> str:
    response = httpx.post(
        f"{server['url']}/auth/token", json={"username": "viewer", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


def _get(server, path: str, token: str | None = None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{server['url']}{path}", headers=headers, **kwargs)


def test_a_logged_in_user_gets_the_exact_file(server, token):
    response = _get(server, f"/nightscore/files/reports/{WEEKLY}", token)
    assert response.status_code == 200
    assert response.content == REPORT_BYTES
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "private" in response.headers["cache-control"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("summary.html", "text/html; charset=utf-8"),
        ("static/styles/site.css", "text/css; charset=utf-8"),
        ("static/images/favicon.ico", "image/vnd.microsoft.icon"),
        ("static/images/logo.png", "image/png"),
        ("validations.json", "application/json"),
    ],
)
def test_data_docs_files_get_their_content_type(server, token, name, expected):
    response = _get(server, f"/nightscore/files/data_docs/{DOCS}/{name}", token)
    assert response.status_code == 200, response.text
    assert response.content == (server["store"] / "data_docs" / DOCS / name).read_bytes()
    assert response.headers["content-type"] == expected


def test_the_links_nightscore_mails_open(server, token):
    """`links.file_url` percent-encodes the key (`=` in Data Docs paths): it still resolves."""
    response = _get(
        server, f"/nightscore/files/data_docs/{DOCS.replace('=', '%3D')}/summary.html", token
    )
    assert response.status_code == 200
    assert b"passed" in response.content


def test_the_ui_cookie_logs_in_too(server, token):
    response = _get(server, f"/nightscore/files/reports/{WEEKLY}", cookies={"_token": token})
    assert response.status_code == 200
    assert response.content == REPORT_BYTES


def test_a_browser_without_login_is_sent_to_the_login_page_and_back(server):
    path = f"/nightscore/files/reports/{WEEKLY}"
    response = _get(server, path, headers={"Accept": "text/html,application/xhtml+xml,*/*"})
    assert response.status_code == 307
    assert response.headers["location"] == "/auth/login?next=%2Fnightscore%2Ffiles%2Freports%2F" + (
        WEEKLY.replace("/", "%2F")
    )
    index = _get(server, "/nightscore/reports", headers={"Accept": "text/html"})
    assert index.status_code == 307
    assert index.headers["location"] == "/auth/login?next=%2Fnightscore%2Freports"


def test_an_api_client_without_login_gets_401(server):
    response = _get(server, f"/nightscore/files/reports/{WEEKLY}")
    assert response.status_code == 401
    assert REPORT_BYTES not in response.content
    assert _get(server, "/nightscore/reports").status_code == 401


def test_a_bad_token_is_refused(server, token):
    response = _get(server, f"/nightscore/files/reports/{WEEKLY}", token[:-4] + "AAAA")
    assert response.status_code in (401, 403)
    assert REPORT_BYTES not in response.content


def test_a_missing_file_or_area_is_404(server, token):
    assert _get(server, "/nightscore/files/reports/weekly/nope.html", token).status_code == 404
    assert _get(server, "/nightscore/files/reports/weekly", token).status_code == 404
    assert _get(server, "/nightscore/files/landing/x.csv", token).status_code == 404


@pytest.mark.parametrize(
    "raw_path",
    [
        "/nightscore/files/reports/../secret.txt",
        "/nightscore/files/reports/%2e%2e/secret.txt",
        "/nightscore/files/reports/..%2Fsecret.txt",
        "/nightscore/files/reports/%252e%252e%252fsecret.txt",
        "/nightscore/files/reports/drift/../../secret.txt",
        "/nightscore/files/reports//etc/passwd",
        "/nightscore/files/reports/%2Fetc%2Fpasswd",
    ],
)
def test_keys_leaving_the_area_are_refused(server, token, raw_path):
    """Sent byte for byte (httpx would normalise the dots away)."""
    host, port = server["url"].removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", raw_path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status in (400, 404), (response.status, body)
    assert b"outside every served area" not in body and b"root:" not in body


def test_the_reports_index_lists_the_store_newest_first(server, token):
    response = _get(server, "/nightscore/reports", token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<meta name="viewport"' in page
    for href in [
        f"files/reports/{WEEKLY}",
        f"files/reports/{DRIFT_NEW}",
        f"files/reports/{DRIFT_OLD}",
        f"files/data_docs/{DOCS.replace('=', '%3D')}/summary.html",
    ]:
        assert f'href="{href}"' in page, href
    assert page.index(DRIFT_NEW) < page.index(DRIFT_OLD)
    # Every link opens, relative to the index page.
    linked = _get(server, f"/nightscore/files/reports/{DRIFT_NEW}", token)
    assert linked.text == "<h1>drift 9</h1>"


def test_the_ui_navigation_gets_the_links(server, token):
    response = _get(server, "/api/v2/plugins", token)
    assert response.status_code == 200
    plugins = {p["name"]: p for p in response.json()["plugins"]}
    files = plugins["nightscore_files"]
    assert [a["url_prefix"] for a in files["fastapi_apps"]] == ["/nightscore"]
    views = {v["name"]: v for v in files["external_views"]}
    assert {name: v["href"] for name, v in views.items()} == {
        "MLflow": MLFLOW_URL,
        "Evidently": EVIDENTLY_URL,
        "Mail": f"{server['url']}/nightscore/mail",
        "Reports": f"{server['url']}/nightscore/reports",
    }
    assert {v["destination"] for v in views.values()} == {"nav"}
    # Reports and Mail: top level, shown inside the UI; the other servers: the Browse menu.
    assert (views["Reports"]["url_route"], views["Reports"]["nav_top_level"]) == ("reports", True)
    assert (views["Mail"]["url_route"], views["Mail"]["nav_top_level"]) == ("mail", True)
    assert views["MLflow"]["category"] == views["Evidently"]["category"] == "browse"
    assert all(v["icon"].startswith("data:image/svg+xml,") for v in views.values())
    errors = _get(server, "/api/v2/plugins/importErrors", token).json()
    assert errors["import_errors"] == []


def test_the_mail_inbox_lists_the_sinks_messages_newest_first(server, token):
    weekly, rejected = server["mail"]
    response = _get(server, "/nightscore/mail", token)
    assert response.status_code == 200
    page = response.text
    assert page.index(f'href="mail/{rejected}.html"') < page.index(f'href="mail/{weekly}.eml"')
    assert html.escape(MAIL_SUBJECT) in page and "<b>EWR</b>" not in page
    assert "oncall@nightscore.example" in page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    # Each line opens its message: the HTML body, or the message as received, as text.
    body = _get(server, f"/nightscore/mail/{rejected}.html", token)
    assert (body.status_code, body.text) == (200, "<h1>batch rejected</h1>\n")
    assert "script-src" not in body.headers["Content-Security-Policy"]
    source = _get(server, f"/nightscore/mail/{weekly}.eml", token)
    assert source.headers["content-type"] == "text/plain; charset=utf-8"
    assert "Subject: weekly report" in source.text


def test_the_mail_inbox_needs_a_login_and_serves_only_the_sinks_files(server, token):
    weekly, _ = server["mail"]
    assert _get(server, f"/nightscore/mail/{weekly}.eml").status_code == 401
    login = _get(server, "/nightscore/mail", headers={"Accept": "text/html"})
    assert login.headers["location"] == "/auth/login?next=%2Fnightscore%2Fmail"
    for name in (f"{weekly}.txt", "0009-20130209T000000-none.eml", "..%2Fpasswords.json"):
        assert _get(server, f"/nightscore/mail/{name}", token).status_code == 404, name


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_a_browser_logs_in_through_the_form_and_lands_on_the_report(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server['url']}/nightscore/files/reports/{WEEKLY}")
            page.wait_for_url("**/auth/login**")
            page.get_by_label("Username").fill("viewer")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/nightscore/files/reports/{WEEKLY}")
            assert page.locator("h1").inner_text() == "Week ending 2013-02-10 ✓"
            # The UI's "Reports" shows the index inside the UI, logged in by the cookie.
            page.goto(f"{server['url']}/")
            page.get_by_role("link", name="Reports").click()
            page.wait_for_url("**/plugin/reports**")
            index = page.frame_locator("iframe")
            index.get_by_role("link", name="Week ending 2013-02-10").click()
            # The click navigates the frame: wait for the report's heading, not the index's.
            sync_api.expect(index.locator("h1")).to_have_text("Week ending 2013-02-10 ✓")
            # "Mail" shows the sink's inbox inside the UI; a line opens its message.
            page.get_by_role("link", name="Mail").click()
            page.wait_for_url("**/plugin/mail**")
            inbox = page.frame_locator("iframe")
            inbox.get_by_role("link", name="schedule batch for 2013-02-09").click()
            sync_api.expect(inbox.locator("h1")).to_have_text("batch rejected")
            # MLflow and Evidently: links in the Browse menu that open in a new tab.
            page.get_by_role("button", name="Browse").click()
            mlflow = page.get_by_role("menuitem", name="MLflow")
            assert mlflow.get_attribute("href") == MLFLOW_URL
            assert mlflow.get_attribute("target") == "_blank"
        finally:
            browser.close()


# --- safe pages: data values are text, never script ---------------------------------------

# What a landing file can carry in a carrier code; each sets a flag and opens a dialog if
# it ever runs.
HOSTILE = (
    "<script>window.pwned=1;alert(1)</script>",
    "<img src=x onerror=window.pwned=2;alert(2)>",
)
HOSTILE_DAY = "2013-03-05"


def _hostile_report():
    """A schedule batch rejected for its carrier codes (validation itself: test_validation)."""
    from datetime import date

    from nightscore.validation.report import ExpectationOutcome, ValidationReport

    carrier = ExpectationOutcome(
        "flights", "expect_column_values_to_be_in_set", "carrier", True, False, 2,
        list(HOSTILE), "carrier is a known airline code",
    )  # fmt: skip
    return ValidationReport(
        "schedule", date.fromisoformat(HOSTILE_DAY), "f" * 64, {"flights": 983}, [carrier], None
    )


def _hostile_weekly_page() -> str:
    from datetime import date

    from nightscore.monitoring.report_model import AlertLine, RouteRisk, WeekKpis, WeeklyReport
    from nightscore.monitoring.report_render import render_html

    kpis = WeekKpis(983, 0, None, 0.25, None, None, None, 1)
    report = WeeklyReport(
        week_end=date(2013, 3, 10),
        model_name=HOSTILE[0],
        this_week=kpis,
        last_week=None,
        days=(),
        routes=(RouteRisk("EWR", "ORD", HOSTILE[1], 10, 0.4, None),),
        alerts=(AlertLine(date(2013, 3, 5), "critical", "batch_rejected", HOSTILE[0], "sent"),),
    )
    return render_html(report, [])


def _hostile_alert_page() -> str:
    from nightscore.monitoring.mailer import build_alert_email

    report = _hostile_report()
    alert = {
        "rule": "batch_rejected",
        "severity": "critical",
        "subject": f"schedule batch for {HOSTILE_DAY} rejected",
        "body": report.summary(),
        "details": {"examples": list(HOSTILE), "data_docs_url": "javascript:alert(3)"},
    }
    message = build_alert_email(alert, to=["oncall@nightscore.example"])
    return message.get_body(("html",)).get_content()


def _runs_script(page, url: str | None = None, content: str | None = None) -> tuple[bool, str]:
    """Open a page (a URL, or HTML without any server); (did any script run, its text)."""
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    if url is not None:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
    else:
        page.set_content(content or "")
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)  # an <img onerror> fires after its request fails
    ran = bool(dialogs) or page.evaluate("window.pwned !== undefined")
    return ran, page.locator("body").inner_text()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_hostile_values_render_as_text_and_run_no_script(server, token):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from nightscore.validation.docs import summary_page

    store = server["store"]
    docs = store / "data_docs" / "schedule" / f"service_date={HOSTILE_DAY}" / ("f" * 12)
    docs.mkdir(parents=True)
    (docs / "summary.html").write_text(summary_page(_hostile_report()))
    weekly = store / "reports" / "weekly" / "weekly_report_2013-03-10.html"
    weekly.write_text(_hostile_weekly_page())
    # A file name is shown on the index page too.
    (store / "reports" / "drift" / f"drift_report_{HOSTILE[1]}.html").write_text("<p>drift</p>")
    # The control: a page that does not escape, as Great Expectations' pages did.
    unescaped = f"<!doctype html><p>carriers: {HOSTILE[0]} {HOSTILE[1]}</p>"
    (store / "reports" / "weekly" / "weekly_report_2013-03-03.html").write_text(unescaped)
    base = f"{server['url']}/nightscore"
    pages = {
        "validation page": f"{base}/files/data_docs/schedule/service_date%3D{HOSTILE_DAY}/"
        f"{'f' * 12}/summary.html",
        "weekly report": f"{base}/files/reports/weekly/weekly_report_2013-03-10.html",
        "reports index": f"{base}/reports",
    }
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "_token", "value": token, "url": server["url"]}])
            for name, url in pages.items():
                ran, text = _runs_script(context.new_page(), url=url)
                assert not ran, f"a script ran on the {name}"
                assert HOSTILE[1] in text, f"the {name} does not show the value as text"
            mail = context.new_page()
            ran, text = _runs_script(mail, content=_hostile_alert_page())
            assert not ran and HOSTILE[0] in text and HOSTILE[1] in text
            # A link that is not http(s) is not made a link.
            assert mail.locator("a[href^='javascript:']").count() == 0
            # The control: the unescaped page runs its script when nothing stops it...
            ran, _ = _runs_script(context.new_page(), content=unescaped)
            assert ran
            # ...and not when the plugin serves it, under its Content-Security-Policy.
            url = f"{base}/files/reports/weekly/weekly_report_2013-03-03.html"
            ran, _ = _runs_script(context.new_page(), url=url)
            assert not ran
        finally:
            browser.close()


def test_served_files_carry_a_script_free_policy(server, token):
    page = _get(server, f"/nightscore/files/reports/{WEEKLY}", token)
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    index = _get(server, "/nightscore/reports", token)
    assert index.headers["Content-Security-Policy"] == policy
    # Evidently's drift reports are scripts: sandboxed, without network.
    drift = _get(server, f"/nightscore/files/reports/{DRIFT_NEW}", token)
    assert drift.headers["Content-Security-Policy"].startswith("sandbox allow-scripts")
    assert "connect-src 'none'" in drift.headers["Content-Security-Policy"]


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
