"""The weekly report's pure parts: the numbers from DataFrames, the text and HTML, the
chart, and the email's MIME structure. No warehouse, no SMTP."""

from __future__ import annotations

import re
import struct
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy

import pandas as pd
import pytest

from nightscore.monitoring.report import build_email
from nightscore.monitoring.report_chart import data_uri, trend_chart
from nightscore.monitoring.report_data import (
    daily_points,
    riskiest_routes,
    strongest_drift,
    week_kpis,
)
from nightscore.monitoring.report_model import (
    AlertLine,
    Champion,
    DayPoint,
    DriftedFeature,
    DriftReportFile,
    RouteRisk,
    WeekKpis,
    WeeklyReport,
    week_label,
)
from nightscore.monitoring.report_render import render_html, render_text, subject

WEEK_END = date(2013, 2, 10)
DAYS = [WEEK_END - timedelta(days=6 - i) for i in range(7)]


def _days(with_outcomes: bool = True) -> tuple[DayPoint, ...]:
    return tuple(
        DayPoint(
            d,
            flights=850 + 10 * i,
            mean_risk=0.24 + 0.01 * i,
            disruption_rate=(0.2 + 0.05 * i) if with_outcomes and i < 6 else None,
            roc_auc=(0.71 + 0.01 * i) if with_outcomes and i < 6 else None,
        )
        for i, d in enumerate(DAYS)
    )


def make_report(**changes) -> WeeklyReport:
    report = WeeklyReport(
        week_end=WEEK_END,
        model_name="flight_disruption",
        this_week=WeekKpis(
            flights_scored=6012,
            flights_with_outcomes=5180,
            disruption_rate=0.2714,
            mean_risk=0.2632,
            roc_auc=0.7421,
            precision=0.4512,
            recall=0.3876,
            alerts=3,
            alerts_by_severity={"warning": 2, "critical": 1},
            model_versions=(3, 4),
        ),
        last_week=WeekKpis(5890, 5890, 0.2481, 0.2505, 0.7302, 0.4711, 0.3655, 1, {"warning": 1}),
        days=_days(),
        routes=(
            RouteRisk("EWR", "ORD", "Chicago Ohare Intl", 112, 0.4123, 0.4464),
            RouteRisk("LGA", "BNA", "Nashville Intl", 53, 0.3861, None),
        ),
        champion=Champion(
            "flight_disruption", 4, datetime(2013, 1, 27, 6, 0), 14, 0.7388, date(2013, 1, 25)
        ),
        drifted=(
            DriftedFeature("wind_speed", 3, 0.2712, "wasserstein"),
            DriftedFeature("visib", 1, 0.0007, "ks"),
        ),
        drift_days_checked=7,
        alerts=(
            AlertLine(
                date(2013, 2, 8), "critical", "roc_auc_floor", "[nightscore] AUC low", "sent"
            ),
            AlertLine(date(2013, 2, 9), "warning", "drift_share", "Drift share 0.6", "suppressed"),
        ),
        drift_report=DriftReportFile(WEEK_END, "/reports/drift/2013-02-10.html", 4_123_456),
        roc_auc_floor=0.65,
        airflow_url="http://airflow.example",
    )
    return WeeklyReport(**{**report.__dict__, **changes})


def no_outcomes_report() -> WeeklyReport:
    return make_report(
        this_week=WeekKpis(6012, 0, None, 0.2632, None, None, None, 0),
        last_week=None,
        days=_days(with_outcomes=False),
        routes=(),
        champion=None,
        drifted=(),
        drift_days_checked=0,
        alerts=(),
        drift_report=None,
    )


@pytest.fixture(scope="module")
def png() -> bytes:
    return trend_chart(_days(), roc_auc_floor=0.65)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# --- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        (date(2013, 2, 4), date(2013, 2, 10), "4–10 Feb 2013"),
        (date(2013, 1, 28), date(2013, 2, 3), "28 Jan – 3 Feb 2013"),
        (date(2013, 12, 30), date(2014, 1, 5), "30 Dec 2013 – 5 Jan 2014"),
    ],
)
def test_week_labels(start, end, label):
    assert week_label(start, end) == label


def test_the_subject_carries_the_headline_numbers():
    assert subject(make_report()) == (
        "[nightscore] Weekly report, 4–10 Feb 2013: 6,012 flights, 27.1 % disrupted, ROC AUC 0.74"
    )
    assert subject(no_outcomes_report()) == (
        "[nightscore] Weekly report, 4–10 Feb 2013: 6,012 flights, outcomes n/a, ROC AUC n/a"
    )


# --- text and HTML ----------------------------------------------------------------------


def test_the_text_has_every_section_with_its_numbers():
    plain = render_text(make_report())

    for shown in (
        "nightscore weekly report: 4–10 Feb 2013 (flight_disruption)",
        "6,012 flights were scored (832 still without outcomes)",
        "27.1 %",  # disruption rate
        "24.8 %",  # last week's
        "+2.3 pts",
        "0.742",  # ROC AUC
        "+0.012",
        "45.1 %",  # precision
        "38.8 %",  # recall
        "Sun 10 Feb",
        "EWR -> ORD",
        "Chicago Ohare Intl",
        "41.2 %",
        "flight_disruption version 4",
        "2013-01-27 06:00 (14 days ago)",
        "0.739",  # ROC AUC at promotion
        "Versions that scored the week  3, 4",
        "wind_speed",
        "0.2712",
        "wasserstein",
        "visib",
        "ALERTS OF THE WEEK (3: 1 critical, 2 warning)",
        "AUC low",
        "(suppressed: in cooldown)",
        "drift_report_2013-02-10.html, 4.1 MB",
        "http://airflow.example/dags/monitoring",
    ):
        assert shown in plain, shown
    assert "[nightscore] AUC low" not in plain  # the tag is noise in a list
    assert max(len(line) for line in plain.splitlines()) <= 100


def test_the_html_has_every_section_and_references_the_chart_by_cid():
    report = make_report()
    page = render_html(report, f"cid:{report.chart_cid}")

    assert f'src="cid:{report.chart_cid}"' in page
    for shown in (
        "4–10 Feb 2013",
        "6,012",
        "27.1 %",
        "+2.3 pts",
        "0.742",
        "EWR → ORD",
        "Nashville Intl",
        "flight_disruption version 4",
        "<code>wind_speed</code>",
        "0.0007",
        "Alerts of the week (3: 1 critical, 2 warning)",
        "drift_report_2013-02-10.html",
        'href="http://airflow.example/dags/monitoring"',
        "max-width:680px",
    ):
        assert shown in page, shown
    # Mail clients block what is not inline: no stylesheets, scripts or remote images.
    for absent in ("<link", "<script", "<style", 'src="http'):
        assert absent not in page
    assert "n/a" in page  # LGA -> BNA has no outcomes; Sunday neither


def test_a_week_without_outcomes_shows_na_and_never_crashes():
    report = no_outcomes_report()

    plain = render_text(report)
    page = render_html(report, "cid:x")

    assert "their outcomes have not landed yet" in plain
    assert re.search(r"^  ROC AUC +n/a +n/a$", plain, re.MULTILINE)
    assert "Last week: nothing was scored" in plain
    assert "Champion                       none recorded for flight_disruption" in plain
    assert f"No route had {20} or more flights this week." in plain
    assert "No drift check ran this week." in plain
    assert "ALERTS OF THE WEEK (0)\n  None." in plain
    assert "No Evidently drift report was written this week" in plain
    assert page.count("n/a") >= 7
    assert "No Evidently drift report was written this week" in page


def test_a_partial_previous_week_is_flagged():
    before = WeekKpis(2422, 2422, 0.206, 0.309, 0.768, 0.5, 0.2, 1, days_scored=3)
    plain = render_text(make_report(last_week=before))
    assert "only 3 of 7 days were scored" in plain


def test_no_drift_when_checked_says_so():
    plain = render_text(make_report(drifted=()))
    assert "No monitored feature drifted on the 7 day(s) checked." in plain


def test_the_html_is_escaped():
    alert = AlertLine(date(2013, 2, 8), "warning", "x", "<script>alert(1)</script>", "sent")
    page = render_html(make_report(alerts=(alert,)), "cid:x")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


# --- the chart ----------------------------------------------------------------------------


def test_the_chart_is_a_small_png(png):
    assert png_size(png) == (700, 300)
    assert len(png) < 100_000


def test_the_chart_of_a_week_without_outcomes_still_renders():
    data = trend_chart(_days(with_outcomes=False))
    assert png_size(data) == (700, 300)


# --- the email ----------------------------------------------------------------------------


def test_the_email_is_text_html_with_the_chart_inline_and_the_drift_report_attached(png):
    report = make_report()
    evidently = b"<!DOCTYPE html><html><body>Evidently</body></html>"

    msg = message_from_bytes(build_email(report, png, evidently).as_bytes(), policy=policy.default)

    assert msg["Subject"] == subject(report)
    assert msg["To"] is None and msg["From"] is None  # addressed when sent
    assert msg["Message-ID"].startswith("<nightscore-weekly-2013-02-10-")
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == f"<{report.chart_cid}>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == png
    assert f'src="cid:{report.chart_cid}"' in html_part.get_content()
    assert "6,012 flights were scored" in plain.get_content()

    assert attachment.get_content_type() == "text/html"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "drift_report_2013-02-10.html"
    assert attachment.get_payload(decode=True) == evidently


def test_without_a_drift_report_nothing_is_attached(png):
    report = no_outcomes_report()

    msg = build_email(report, png, None)

    assert msg.get_content_type() == "multipart/alternative"
    assert list(msg.iter_attachments()) == []
    assert "No Evidently drift report" in msg.get_body(("plain",)).get_content()


def test_the_copy_on_disk_embeds_the_chart(png):
    page = render_html(make_report(), data_uri(png))
    assert "data:image/png;base64,iVBORw0KGgo" in page
    assert "cid:" not in page


# --- numbers from DataFrames --------------------------------------------------------------


def predictions(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["service_date", "origin", "dest", "score", "label", "disrupted"]
    )
    return frame.assign(
        dest_name=frame["dest"] + " airport",
        model_version=3,
        threshold=0.5,
        disrupted=pd.to_numeric(frame["disrupted"]),
    )


def test_week_kpis_and_days_count_only_flights_with_outcomes_in_the_rates():
    d1, d7 = DAYS[0], DAYS[6]
    frame = predictions(
        [
            (d1, "EWR", "ORD", 0.9, True, 1),
            (d1, "EWR", "ORD", 0.2, False, 0),
            (d1, "JFK", "LAX", 0.6, True, 0),
            (d1, "JFK", "LAX", 0.1, False, 0),
            (d7, "JFK", "LAX", 0.5, True, None),  # no outcome yet
        ]
    )

    kpis = week_kpis(frame, [AlertLine(d1, "warning", "r", "s", "sent")])
    days = daily_points(frame, WEEK_END)

    assert kpis.flights_scored == 5 and kpis.flights_with_outcomes == 4
    assert kpis.disruption_rate == pytest.approx(0.25)
    assert kpis.mean_risk == pytest.approx(0.46)
    assert kpis.roc_auc == pytest.approx(1.0)
    assert kpis.precision == pytest.approx(0.5) and kpis.recall == pytest.approx(1.0)
    assert (kpis.alerts, kpis.alerts_by_severity, kpis.days_scored) == (1, {"warning": 1}, 2)
    assert [d.service_date for d in days] == DAYS
    assert (days[0].flights, days[0].disruption_rate, days[0].roc_auc) == (4, 0.25, 1.0)
    assert (days[1].flights, days[1].mean_risk, days[1].roc_auc) == (0, None, None)
    assert (days[6].flights, days[6].disruption_rate, days[6].roc_auc) == (1, None, None)
    assert week_kpis(frame.iloc[0:0], []) is None


def test_riskiest_routes_need_enough_flights_and_come_riskiest_first():
    rows = [(DAYS[0], "EWR", "ORD", 0.4, False, i % 2) for i in range(20)]
    rows += [(DAYS[0], "JFK", "SFO", 0.6, True, None) for _ in range(25)]
    rows += [(DAYS[0], "LGA", "BOS", 0.9, True, 1) for _ in range(19)]  # too few

    routes = riskiest_routes(predictions(rows))

    assert [(r.origin, r.dest, r.flights) for r in routes] == [
        ("JFK", "SFO", 25),
        ("EWR", "ORD", 20),
    ]
    assert routes[0].disruption_rate is None and routes[0].dest_name == "SFO airport"
    assert routes[1].mean_risk == pytest.approx(0.4) and routes[1].disruption_rate == 0.5


def test_the_strongest_drift_is_the_largest_distance_or_the_smallest_p_value():
    rows = [
        {
            "feature": "wind_speed",
            "service_date": DAYS[0],
            "method": "wasserstein",
            "statistic": 0.2,
        },
        {
            "feature": "wind_speed",
            "service_date": DAYS[1],
            "method": "wasserstein",
            "statistic": 0.3,
        },
        {"feature": "visib", "service_date": DAYS[1], "method": "ks", "statistic": 0.01},
        {"feature": "visib", "service_date": DAYS[2], "method": "ks", "statistic": 0.002},
        {
            "feature": "carrier",
            "service_date": DAYS[2],
            "method": "jensenshannon",
            "statistic": 0.2,
        },
    ]

    drifted = strongest_drift(rows)

    assert drifted == (
        DriftedFeature("visib", 2, 0.002, "ks"),
        DriftedFeature("wind_speed", 2, 0.3, "wasserstein"),
        DriftedFeature("carrier", 1, 0.2, "jensenshannon"),
    )
