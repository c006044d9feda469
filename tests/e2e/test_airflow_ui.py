"""The Airflow UI in a real browser, on the demo stack after a real night (conftest's
`replayed`): log in through SimpleAuthManager's form, open `nightly_scoring`'s run, follow
the "MLflow model" extra link of `plan_scoring` to MLflow (basic auth, answered by the
browser context's credentials), open a drift report and a batch's Data Docs from the
"Reports" item, the night's newest alert mail from the sink's inbox under "Mail", and
MLflow from the *Browse* menu. Each page must show its real content, not an error or a
login page.

Screenshots of every step go to test-output/<test name>/ (git-ignored). Chromium is
Debian's (/usr/bin/chromium); the test is skipped without it or without Playwright.
"""

from __future__ import annotations

import re
import time
from datetime import date
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from urllib.parse import quote

import pytest

from nightscore_dev import demo
from nightscore_dev import stack as local
from nightscore_dev.stack.mlflow import mlflow_auth

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TIMEOUT_MS = 60_000  # two shared cores: the UI's first page load takes seconds
# A run's send_alerts mails the outbox as the run ends; the alert_outbox sweep, every 10
# minutes, sends what it could not.
MAIL_TIMEOUT_S = 12 * 60


def _model_link(stack: local.Stack, run_id: str) -> str:
    """The "MLflow model" link the API gives `plan_scoring` of the run."""
    client = demo.AirflowClient(stack.api_url, local.ADMIN_USER, stack.password, timeout_s=120)
    try:
        path = (
            f"/api/v2/dags/nightly_scoring/dagRuns/{quote(run_id, safe='')}"
            "/taskInstances/plan_scoring/links"
        )
        found = (client.request("GET", path) or {}).get("extra_links") or {}
    finally:
        client.close()
    assert found.get("MLflow model"), f"no MLflow model link: {found}"
    return found["MLflow model"]


def _outbox(warehouse_url: str) -> list[tuple[date | None, str, str, str | None]]:
    """Every alert of the outbox: (service date, rule, status, last error)."""
    import psycopg2

    from nightscore import config

    connection = psycopg2.connect(config.libpq_url(warehouse_url))
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT service_date, rule, status, last_error FROM monitoring.alerts "
                "ORDER BY alert_id"
            )
            return list(cursor.fetchall())
    finally:
        connection.close()


def _night_mail(stack: local.Stack, day: date) -> list[Path]:
    """The sink's messages, newest first, once the outbox has nothing left pending (the
    sink writes a message before it answers, the outbox marks it sent after); fails at
    once when the night queued no alert to mail."""
    alerts = _outbox(stack.warehouse_url)
    assert any(d == day and status != "suppressed" for d, _, status, _ in alerts), (
        f"the night of {day} queued no alert to mail: {alerts}"
    )
    deadline = time.monotonic() + MAIL_TIMEOUT_S
    while any(status == "pending" for _, _, status, _ in alerts):
        assert time.monotonic() < deadline, f"still pending after {MAIL_TIMEOUT_S} s: {alerts}"
        time.sleep(5)
        alerts = _outbox(stack.warehouse_url)
    mails = sorted(stack.paths.mail.glob("*.eml"), reverse=True)
    assert mails, f"the outbox sent {alerts}, but {stack.paths.mail} holds no mail"
    return mails


def _subject(eml: Path) -> str:
    with eml.open("rb") as f:
        return str(BytesHeaderParser(policy=policy.default).parse(f)["Subject"])


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
@pytest.mark.timeout(3600)
def test_the_ui_leads_to_mlflow_the_reports_and_the_mail(replayed, request) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)  # its default, 5 s, is too short for MLflow's SPA
    stack = replayed.stack
    day = replayed.service_date.isoformat()
    mails = _night_mail(stack, replayed.service_date)
    scoring = [r for r in replayed.runs if r.dag_id == "nightly_scoring"]
    assert scoring and scoring[-1].state == "success", [demo.describe(r) for r in scoring]
    run_id = scoring[-1].run_id
    model_url = _model_link(stack, run_id)
    version = model_url.rsplit("/", 1)[-1]
    auth = mlflow_auth(stack.paths)
    mlflow_base = stack.env["NIGHTSCORE_MLFLOW_TRACKING_URI"]
    out = ROOT / "test-output" / request.node.name
    out.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                http_credentials={"username": auth.username, "password": auth.password},
                viewport={"width": 1280, "height": 900},
            )
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()

            def shot(name: str, target=None) -> None:
                (target or page).screenshot(path=str(out / f"{name}.png"), full_page=True)

            # Log in through the form.
            page.goto(stack.api_url)
            page.wait_for_url("**/auth/login**")
            page.get_by_label("Username").fill(local.ADMIN_USER)
            page.get_by_label("Password").fill(stack.password)
            shot("01-login")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))

            # The run's plan_scoring task: its "MLflow model" extra link, on its Details tab.
            run_page = f"{stack.api_url}/dags/nightly_scoring/runs/{quote(run_id, safe='')}"
            page.goto(run_page)
            shot("02-nightly-scoring-run")
            page.goto(f"{run_page}/tasks/plan_scoring/details")
            link = page.locator(f'a[href="{model_url}"]')
            expect(link).to_be_visible()
            expect(link).to_contain_text("MLflow model")
            shot("03-plan-scoring-extra-links")
            with context.expect_page() as opened:
                link.click()
            mlflow = opened.value
            mlflow.wait_for_load_state()
            # The model version page, logged in: MLflow names the version it shows.
            expect(mlflow.get_by_text(f"Version {version}").first).to_be_visible()
            expect(mlflow.get_by_text("Unauthorized")).to_have_count(0)
            shot("04-mlflow-model-version", mlflow)
            mlflow.close()

            # "Reports": the index inside the UI; the night's drift report and Data Docs.
            page.goto(stack.api_url)
            page.get_by_role("link", name="Reports").click()
            page.wait_for_url("**/plugin/reports**")
            index = page.frame_locator("iframe")
            expect(index.locator("h1")).to_have_text("nightscore reports")
            shot("05-reports-index")
            drift = index.get_by_role("link", name=re.compile(f"^{day}.*drift report"))
            href = drift.get_attribute("href")
            assert href, "no drift report link for the night"
            response = page.request.get(f"{stack.api_url}/nightscore/{href}")
            assert response.status == 200 and len(response.body()) > 100_000, response.status
            report = context.new_page()
            report.goto(f"{stack.api_url}/nightscore/{href}")
            report.wait_for_load_state("networkidle")
            shot("06-drift-report", report)
            report.close()
            index.get_by_role("link", name=re.compile(f"^{day} schedule")).click()
            expect(index.locator("body")).to_contain_text("batch for")
            shot("07-data-docs")

            # "Mail": the sink's inbox inside the UI, newest first; the night's newest
            # alert opens as its HTML body, its subject's words (after the "[nightscore]
            # WARNING:" tag the body shows as a badge) in sight.
            page.get_by_role("link", name="Mail").click()
            page.wait_for_url("**/plugin/mail**")
            inbox = page.frame_locator("iframe")
            expect(inbox.locator("h1")).to_have_text("nightscore mail")
            lines = inbox.locator("li a")
            expect(lines).to_have_count(len(mails))
            newest, subject = mails[0], _subject(mails[0])
            tag = re.match(r"\[nightscore\] (INFO|WARNING|CRITICAL): ", subject)
            assert tag, f"not an alert's subject: {subject!r} ({newest.name})"
            expect(lines.first).to_contain_text(subject)
            shot("08-mail-inbox")
            lines.first.click()
            expect(inbox.get_by_text(subject[tag.end() :], exact=True).first).to_be_visible()
            # The badge, and the severity row of its table.
            expect(inbox.get_by_text(tag.group(1), exact=True).first).to_be_visible()
            opened_at = [f.url for f in page.frames]
            assert any(u.endswith(f"/nightscore/mail/{newest.stem}.html") for u in opened_at), (
                opened_at
            )
            shot("09-mail-message")

            # MLflow from the Browse menu: its own tab, its real UI.
            page.get_by_role("button", name="Browse").click()
            item = page.get_by_role("menuitem", name="MLflow")
            assert item.get_attribute("href") == mlflow_base
            shot("10-browse-menu")
            with context.expect_page() as opened:
                item.click()
            home = opened.value
            home.wait_for_load_state()
            expect(home.get_by_text("Experiments").first).to_be_visible()
            shot("11-mlflow-home", home)
        finally:
            browser.close()
