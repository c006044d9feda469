"""The weekly report's pure parts: the numbers from DataFrames, the text and HTML, the
chart, and the email's MIME structure. No warehouse, no SMTP."""

from __future__ import annotations

import re
import struct
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pandas as pd
import pytest

from nightscore.monitoring.report import build_email
from nightscore.monitoring.report_chart import (
    CHART_DPI,
    CHART_SIZE_IN,
    auc_chart,
    data_uri,
    disruption_chart,
    week_charts,
)
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
FILES = "http://airflow.example/nightscore/files/reports"
DRIFT_URL = f"{FILES}/drift/drift_report_2013-02-10.html"
REPORT_URL = f"{FILES}/weekly/weekly_report_2013-02-10.html"


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
            flagged=1_201,
        ),
        last_week=WeekKpis(
            5890, 5890, 0.2481, 0.2505, 0.7302, 0.4711, 0.3655, 1, {"warning": 1}, flagged=1_090
        ),
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
        drift_report=DriftReportFile(
            WEEK_END,
            "/reports/drift/drift_report_2013-02-10.html",
            4_123_456,
            DRIFT_URL,
        ),
        roc_auc_floor=0.65,
        airflow_url="http://airflow.example",
        report_url=REPORT_URL,
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
def charts():
    return week_charts(make_report())


def sources(charts, report=None):
    report = report or make_report()
    return [(c, f"cid:{report.chart_cid(c.name)}") for c in charts]


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


def test_the_subject_says_in_plain_words_how_many_flagged_flights_were_disrupted():
    assert subject(make_report()) == (
        "Flagged flights: 45 % were disrupted, last week 47 % (week of 4-10 Feb 2013)"
    )
    assert subject(make_report(last_week=None)) == (
        "Flagged flights: 45 % were disrupted, no week before to compare (week of 4-10 Feb 2013)"
    )
    unflagged_week = WeekKpis(5890, 5890, 0.2481, 0.2505, 0.7302, None, 0.0, 0, flagged=0)
    assert subject(make_report(last_week=unflagged_week)).startswith(
        "Flagged flights: 45 % were disrupted, last week none flagged"
    )
    nothing_flagged = WeekKpis(6012, 5180, 0.2714, 0.2632, 0.7421, None, 0.0, 0, flagged=0)
    assert subject(make_report(this_week=nothing_flagged)) == (
        "No flight flagged as likely disrupted; 27 % were disrupted (week of 4-10 Feb 2013)"
    )
    assert subject(no_outcomes_report()) == (
        "6,012 flights scored, their outcomes are not in yet (week of 4-10 Feb 2013)"
    )
    pending_before = WeekKpis(5890, 0, None, 0.2505, None, None, None, 0)
    assert "last week not known yet" in subject(make_report(last_week=pending_before))
    for report in (make_report(), no_outcomes_report(), make_report(last_week=None)):
        assert "ROC" not in subject(report) and "AUC" not in subject(report)
        assert subject(report).isascii()  # never an encoded header
        # ...and it comes back from the wire as it was sent. (A subject of 70-77
        # characters is folded onto a line of its own; Python's parser, unlike mail
        # apps, keeps that line's leading space.)
        sent = EmailMessage()
        sent["Subject"] = subject(report)
        received = message_from_bytes(sent.as_bytes(), policy=policy.default)
        assert received["Subject"].lstrip() == subject(report)


# --- text and HTML ----------------------------------------------------------------------


def test_the_text_has_every_section_with_its_numbers():
    plain = render_text(make_report())
    words = " ".join(plain.split())  # the headline is wrapped

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
        "The Evidently drift report of Sun 10 Feb (interactive, 4.1 MB) opens in a browser",
        f"Drift report:\n  {DRIFT_URL}",
        f"This report in a browser:\n  {REPORT_URL}",
        "http://airflow.example/dags/monitoring",
    ):
        assert shown in plain or shown in words, shown
    assert "It flagged 1,201 flights as likely disrupted, and 45.1 % of those were" in words
    assert "(0.5 is guessing, 1 is perfect)" in words
    assert re.search(
        r"^  Flagged flights that were disrupted +45.1 % +47.1 % +-2.0 pts$", plain, re.M
    )
    assert "[nightscore] AUC low" not in plain  # the tag is noise in a list
    assert max(len(line) for line in plain.splitlines() if "://" not in line) <= 80


def test_the_html_is_one_column_with_the_charts_stacked_and_the_drift_report_linked(charts):
    report = make_report()
    page = render_html(report, sources(charts))

    # One chart per image, in the order given, each at the column's width.
    assert re.findall(r'<img src="cid:weekly-(\w+)-2013-02-10@nightscore"', page) == [
        "disruption",
        "auc",
    ]
    assert page.count("width:100%;max-width:100%;height:auto") == 2
    assert "max-width:600px" in page
    for shown in (
        "4–10 Feb 2013",
        "6,012",
        "27.1 %",
        "45.1\u00a0%",  # a number and its unit stay on one line in the headline
        "+2.3 pts",
        "0.742",
        "0.5 is guessing",
        "EWR → ORD",
        "Nashville Intl",
        "flight_disruption version 4",
        "<code",
        "wind_speed</code>: drifted on 3 days; strongest wasserstein 0.2712",
        "0.0007",
        "Alerts of the week (3: 1 critical, 2 warning)",
        f'href="{DRIFT_URL}"',
        f'href="{REPORT_URL}"',
        'href="http://airflow.example/dags/monitoring"',
    ):
        assert shown in page, shown
    # Mail clients block what is not inline: no stylesheets, scripts or remote images.
    for absent in ("<link", "<script", "<style", 'src="http'):
        assert absent not in page
    # Text of 11 pt (14.67 px) or more: no inline size below 15 px.
    assert min(int(px) for px in re.findall(r"font-size:(\d+)px", page)) >= 15
    assert "n/a" in page  # LGA -> BNA has no outcomes; Sunday neither


def test_a_drift_report_outside_the_served_areas_is_named_not_linked(charts):
    unserved = DriftReportFile(WEEK_END, "/elsewhere/drift.html", 4_000_000, None)
    report = make_report(drift_report=unserved)

    page = render_html(report, sources(charts))

    assert "is in the report store: /elsewhere/drift.html" in page
    assert "Open the drift report" not in page
    assert "Drift report:" not in render_text(report)


def test_a_week_without_outcomes_shows_na_and_never_crashes():
    report = no_outcomes_report()

    plain = render_text(report)
    page = render_html(report, [])

    assert "their outcomes have not landed yet" in plain
    assert re.search(r"^  Ranking quality \(AUC\) +n/a +n/a$", plain, re.MULTILINE)
    assert "Last week: nothing was scored" in plain
    assert "Champion                       none recorded for flight_disruption" in plain
    assert f"No route had {20} or more flights this week." in plain
    assert "No drift check ran this week." in plain
    assert "ALERTS OF THE WEEK (0)\n  None." in plain
    assert "No Evidently drift report was written this week" in plain
    assert "Drift report:" not in plain
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
    page = render_html(make_report(alerts=(alert,)), [])
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


# --- the chart ----------------------------------------------------------------------------


def test_the_charts_are_small_pngs_at_a_phone_friendly_aspect(charts):
    width, height = round(CHART_SIZE_IN[0] * CHART_DPI), round(CHART_SIZE_IN[1] * CHART_DPI)
    assert (width, height) == (600, 420)  # 10:7, not the 7:3 of two charts side by side
    assert [c.name for c in charts] == ["disruption", "auc"]
    for chart in charts:
        assert png_size(chart.png) == (width, height)
        assert len(chart.png) < 100_000
        assert chart.title and chart.caption and chart.alt
    assert "(0.65)" in charts[1].caption  # the floor, explained


def test_the_charts_of_a_week_without_outcomes_still_render():
    days = _days(with_outcomes=False)
    assert png_size(disruption_chart(days)) == (600, 420)
    assert png_size(auc_chart(days)) == (600, 420)


# --- the email ----------------------------------------------------------------------------


def test_the_email_is_text_and_html_with_two_charts_inline_and_nothing_attached(charts):
    report = make_report()

    raw = build_email(report, charts).as_bytes()
    msg = message_from_bytes(raw, policy=policy.default)

    assert msg["Subject"].lstrip() == subject(report)
    assert msg["To"] is None and msg["From"] is None  # addressed when sent
    assert msg["Message-ID"].startswith("<nightscore-weekly-2013-02-10-")
    assert msg.get_content_type() == "multipart/alternative"
    assert list(msg.iter_attachments()) == []
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert [i["Content-ID"] for i in images] == [f"<{report.chart_cid(c.name)}>" for c in charts]
    for image, chart in zip(images, charts, strict=True):
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        assert image.get_content() == chart.png
        assert f'src="cid:{report.chart_cid(chart.name)}"' in html_part.get_content()
    assert "6,012 flights were scored" in plain.get_content()
    assert DRIFT_URL in plain.get_content()
    # The 4 MB Evidently page is linked, not carried: the mail is small.
    assert len(raw) < 300_000


def test_the_copy_on_disk_embeds_the_charts(charts):
    page = render_html(make_report(), [(c, data_uri(c.png)) for c in charts])
    assert page.count("data:image/png;base64,iVBORw0KGgo") == 2
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
    assert kpis.flagged == 2  # the flagged flight without an outcome is not counted
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
