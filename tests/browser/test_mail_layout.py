"""The mails as people read them: the weekly report and an alert, rendered by Chromium as
a mail client shows them (the HTML part, its `cid:` images inlined as `data:` URIs by the
mail sink's own code), on a phone (390 px) and a desktop (1280 px).

On each: nothing scrolls sideways, every image loads, the key numbers are in the visible
text, and on the phone no text is smaller than 11 pt (14.67 px). Full-page screenshots
go to `test-output/<test name>/` for a person to look at.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from nightscore.monitoring.mailer import build_alert_email
from nightscore.monitoring.report import build_email
from nightscore.monitoring.report_chart import week_charts
from nightscore.monitoring.report_model import (
    AlertLine,
    Champion,
    DayPoint,
    DriftedFeature,
    DriftReportFile,
    RouteRisk,
    WeekKpis,
    WeeklyReport,
)
from nightscore_dev.mailsink import html_with_inline_images

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE, DESKTOP = 390, 1280
MIN_TEXT_PX = 11 * 96 / 72  # 11 pt
BASE = "https://airflow.nightscore.example"
WEEK_END = date(2013, 2, 10)
DAYS = [WEEK_END - timedelta(days=6 - i) for i in range(7)]

# Every element with text of its own whose computed size is below the floor.
SMALL_TEXT_JS = """(minPx) => {
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const px = parseFloat(style.fontSize);
    if (px < minPx - 0.01) small.push(`${px}px: ${node.textContent.trim().slice(0, 60)}`);
  }
  return small;
}"""
IMAGES_JS = """() => Array.from(document.images).map(i => ({
  src: i.src.slice(0, 40), loaded: i.complete && i.naturalWidth > 0,
  shown: i.getBoundingClientRect().width}))"""


def a_realistic_week() -> WeeklyReport:
    """The blizzard week as the warehouse gives it, with the long names a real week has:
    ten routes, long airport names, ten alerts, drift on several features."""
    days = tuple(
        DayPoint(
            d,
            flights=912 + 7 * i,
            mean_risk=0.22 + 0.03 * i,
            disruption_rate=(0.18 + 0.07 * i) if i < 6 else None,
            roc_auc=(0.74 - 0.02 * i) if i < 6 else None,
        )
        for i, d in enumerate(DAYS)
    )
    names = (
        "Chicago Ohare Intl",
        "Hartsfield Jackson Atlanta Intl",
        "Ronald Reagan Washington Natl",
        "General Edward Lawrence Logan Intl",
        "Charlotte Douglas Intl",
        "Dallas Fort Worth Intl",
        "Minneapolis St Paul Intl",
        "Southwest Florida Intl",
        "Raleigh Durham Intl",
        "Cleveland Hopkins Intl",
    )
    routes = tuple(
        RouteRisk(
            ("EWR", "JFK", "LGA")[i % 3],
            f"D{i:02d}",
            name,
            140 - 9 * i,
            0.52 - 0.02 * i,
            0.6 - 0.03 * i,
        )
        for i, name in enumerate(names)
    )
    alerts = tuple(
        AlertLine(
            DAYS[i % 7],
            ("critical", "warning", "info")[i % 3],
            "roc_auc_floor",
            f"[nightscore] ROC AUC of {DAYS[i % 7]} below 0.65 for model flight_disruption_xgb_v2",
            "suppressed" if i % 4 == 3 else "sent",
        )
        for i in range(12)
    )
    return WeeklyReport(
        week_end=WEEK_END,
        model_name="flight_disruption",
        this_week=WeekKpis(
            flights_scored=6_503,
            flights_with_outcomes=5_571,
            disruption_rate=0.3571,
            mean_risk=0.3101,
            roc_auc=0.6932,
            precision=0.5714,
            recall=0.4123,
            alerts=12,
            alerts_by_severity={"critical": 4, "warning": 4, "info": 4},
            model_versions=(2, 3),
            flagged=1_412,
        ),
        last_week=WeekKpis(6_288, 6_288, 0.2404, 0.2512, 0.7302, 0.4811, 0.3655, 1, {"warning": 1}),
        days=days,
        routes=routes,
        champion=Champion(
            "flight_disruption", 3, datetime(2013, 2, 9, 6, 5), 1, 0.7391, date(2013, 2, 8)
        ),
        drifted=(
            DriftedFeature("wind_speed_at_departure_hour", 3, 0.3412, "wasserstein"),
            DriftedFeature("visib", 2, 0.0007, "ks"),
            DriftedFeature("origin_dest_disruption_rate_28d", 1, 0.1893, "jensenshannon"),
        ),
        drift_days_checked=7,
        alerts=alerts,
        drift_report=DriftReportFile(
            WEEK_END,
            "s3://nightscore/reports/drift/drift_report_2013-02-10.html",
            4_231_778,
            f"{BASE}/nightscore/files/reports/drift/drift_report_2013-02-10.html",
        ),
        roc_auc_floor=0.65,
        airflow_url=BASE,
        report_url=f"{BASE}/nightscore/files/reports/weekly/weekly_report_2013-02-10.html",
    )


def an_alert() -> EmailMessage:
    """A failure notice: a long exception line, a long log link, numbers in its details."""
    log_url = (
        f"{BASE}/dags/nightly_scoring/runs/scheduled__2013-02-09T23%3A00%3A00%2B00%3A00"
        "/tasks/score_partition/mapped/3?try_number=2"
    )
    body = (
        "Task nightly_scoring.score_partition failed after its last retry.\n\n"
        "nightscore.errors.InfrastructureUnavailable: the warehouse did not answer: "
        'psycopg2.OperationalError: connection to server at "warehouse.internal.example" '
        "(10.0.3.17), port 5432 failed: Connection refused. Is the server running on that "
        "host and accepting TCP/IP connections?\n"
        "/opt/airflow/include/nightscore/scoring.py:412:write_predictions:"
        "INSERT_INTO_scoring.predictions_2013_02_10_partition_copy_from_stdin_failed"
    )
    alert = {
        "alert_id": 4821,
        "rule": "infrastructure_unavailable",
        "severity": "critical",
        "service_date": date(2013, 2, 10),
        "subject": "[nightscore] nightly_scoring: score_partition failed (warehouse down)",
        "body": body,
        "dedup_key": "infrastructure_unavailable:nightly_scoring:score_partition:2013-02-10",
        "created_at": datetime(2013, 2, 9, 23, 41, tzinfo=UTC),
        "details": {
            "component": "warehouse",
            "dag_id": "nightly_scoring",
            "task_id": "score_partition",
            "try_number": 2,
            "rows_written": 0,
            "share_drifted": 0.7777777,
            "drifted_columns": ["wind_speed_at_departure_hour", "visib", "precip", "temp"],
            "log_url": log_url,
            "airflow_url": f"{BASE}/dags/nightly_scoring",
        },
    }
    return build_alert_email(alert, to=["oncall@example.com"], from_email="nightscore@example.com")


def as_mail_client_shows(msg: EmailMessage) -> str:
    """The HTML part as received, with its `cid:` images as `data:` URIs."""
    received = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(received, EmailMessage)
    page = html_with_inline_images(received)
    assert page is not None, "the mail has no HTML part"
    assert "cid:" not in page
    return page


def check_layout(browser, page_html: str, width: int, shot: Path) -> str:
    """Open the page at `width`; assert it fits, its images load and (on a phone) its
    text is large enough; save a full-page screenshot; return its visible text."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(page_html, wait_until="load")
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, (
            f"at {width} px the page is {scroll_width} px wide: it scrolls sideways"
        )
        images = page.evaluate(IMAGES_JS)
        assert all(i["loaded"] for i in images), images
        assert all(0 < i["shown"] <= width for i in images), images
        if width <= PHONE:
            small = page.evaluate(SMALL_TEXT_JS, MIN_TEXT_PX)
            assert small == [], f"text below 11 pt at {width} px: {small}"
        assert page.evaluate("document.scripts.length") == 0
        return page.inner_text("body")
    finally:
        page.close()


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_weekly_report_reads_on_a_phone_and_a_desktop(browser, output_dir, width):
    report = a_realistic_week()
    msg = build_email(report, week_charts(report))
    page = as_mail_client_shows(msg)

    text = check_layout(browser, page, width, output_dir / f"weekly_report_{width}px.png")

    assert page.count("<img") == 2  # the two charts, stacked
    for shown in (
        "4–10 Feb 2013",
        "6,503",  # flights scored
        "57.1 %",  # flagged flights that were disrupted
        "48.1 %",  # the same, last week
        "35.7 %",  # disrupted
        "0.693",  # AUC, with its explanation
        "0.5 is guessing",
        "EWR → D00",
        "General Edward Lawrence Logan Intl",
        "wind_speed_at_departure_hour",
        "Open the drift report",
        "… and 2 more",
    ):
        assert shown in text, shown
    assert "Flagged flights: 57 % were disrupted, last week 48 %" in msg["Subject"]


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_an_alert_mail_reads_on_a_phone_and_a_desktop(browser, output_dir, width):
    msg = an_alert()
    page = as_mail_client_shows(msg)

    text = check_layout(browser, page, width, output_dir / f"alert_{width}px.png")

    for shown in (
        "CRITICAL",
        "score_partition failed (warehouse down)",
        "Connection refused",
        "2013-02-10",
        "0.777778",
        "Task log",
    ):
        assert shown in text, shown


def test_a_week_without_outcomes_reads_on_a_phone_too(browser, output_dir):
    """The first week of a model: no outcomes, no week before, no drift report."""
    full = a_realistic_week()
    report = WeeklyReport(
        week_end=WEEK_END,
        model_name=full.model_name,
        this_week=WeekKpis(6_503, 0, None, 0.3101, None, None, None, 0, flagged=0),
        last_week=None,
        days=tuple(DayPoint(d.service_date, d.flights, d.mean_risk, None, None) for d in full.days),
        routes=full.routes,
    )
    msg = build_email(report, week_charts(report))

    text = check_layout(
        browser, as_mail_client_shows(msg), PHONE, output_dir / "no_outcomes_390px.png"
    )

    assert "6,503 flights scored, their outcomes are not in yet" in msg["Subject"]
    for shown in ("their outcomes have not landed yet", "n/a", "No drift check ran this week."):
        assert shown in text, shown
