"""What the weekly report says: its numbers, as plain data (`WeeklyReport`), with the
constants that decide them. Gathered by `report_data`, rendered by `report_render` and
`report_chart`, mailed by `report`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from nightscore.errors import DataError

RULE = "weekly_report"
WEEK_DAYS = 7
TOP_ROUTES = 10
MIN_ROUTE_FLIGHTS = 20
MAX_ALERT_LINES = 10
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# The report's colours, in the mail and in the chart: better, worse, neither.
GOOD, BAD, MUTED = "#1b7f3b", "#b00020", "#666"


class NoScoredFlights(DataError, LookupError):
    """Nothing was scored in the week: there is no report to send."""


@dataclass(frozen=True)
class WeekKpis:
    """The week's numbers; None where they cannot be known yet (no outcomes)."""

    flights_scored: int
    flights_with_outcomes: int
    disruption_rate: float | None
    mean_risk: float | None
    roc_auc: float | None
    precision: float | None  # of the flagged flights with outcomes, the share disrupted
    recall: float | None
    alerts: int
    alerts_by_severity: dict[str, int] = field(default_factory=dict)
    model_versions: tuple[int, ...] = ()
    days_scored: int = WEEK_DAYS
    flagged: int | None = None  # flights with outcomes flagged as likely disrupted


@dataclass(frozen=True)
class DayPoint:
    service_date: date
    flights: int
    mean_risk: float | None
    disruption_rate: float | None
    roc_auc: float | None


@dataclass(frozen=True)
class RouteRisk:
    origin: str
    dest: str
    dest_name: str | None
    flights: int
    mean_risk: float
    disruption_rate: float | None


@dataclass(frozen=True)
class Champion:
    name: str
    version: int
    promoted_at: datetime
    age_days: int
    roc_auc_at_promotion: float | None
    training_cutoff: date | None = None


@dataclass(frozen=True)
class DriftedFeature:
    feature: str
    days_drifted: int
    statistic: float  # the strongest: the largest distance, or the smallest p-value
    method: str


@dataclass(frozen=True)
class EveningTally:
    """The week's evening early warnings next to how the nights turned out."""

    nights: int  # nights checked in the evening
    warned: int
    judged: int  # of those, nights whose outcomes are in
    bad: int  # nights that turned out bad (ROC AUC under the floor, or calibration off)
    warned_bad: int  # bad nights that had been warned
    warned_ordinary: int  # warnings on nights that turned out ordinary


@dataclass(frozen=True)
class AlertLine:
    service_date: date | None
    severity: str
    rule: str
    subject: str
    status: str


@dataclass(frozen=True)
class DriftReportFile:
    """The week's latest Evidently report, linked from the email (`url`, served behind
    the Airflow login; None when its place in the store is not served)."""

    service_date: date
    path: str
    size_bytes: int
    url: str | None = None

    @property
    def filename(self) -> str:
        return f"drift_report_{self.service_date.isoformat()}.html"


@dataclass(frozen=True)
class WeeklyReport:
    week_end: date
    model_name: str
    this_week: WeekKpis
    last_week: WeekKpis | None
    days: tuple[DayPoint, ...]
    routes: tuple[RouteRisk, ...] = ()
    champion: Champion | None = None
    drifted: tuple[DriftedFeature, ...] = ()
    drift_days_checked: int = 0
    alerts: tuple[AlertLine, ...] = ()
    drift_report: DriftReportFile | None = None
    evenings: EveningTally | None = None
    roc_auc_floor: float | None = None
    airflow_url: str = ""
    report_url: str = ""  # this report's copy in the store, served behind the login

    @property
    def week_start(self) -> date:
        return self.week_end - timedelta(days=WEEK_DAYS - 1)

    @property
    def week_label(self) -> str:
        return week_label(self.week_start, self.week_end)

    def chart_cid(self, name: str) -> str:
        return f"weekly-{name}-{self.week_end.isoformat()}@nightscore"

    def kpis(self) -> dict[str, Any]:
        """The numbers as JSON-able facts (the outbox row's `details`)."""
        facts: dict[str, Any] = {
            "week_start": self.week_start.isoformat(),
            "week_end": self.week_end.isoformat(),
            "model_name": self.model_name,
            **asdict(self.this_week),
        }
        facts["model_versions"] = list(self.this_week.model_versions)
        facts["champion_version"] = self.champion.version if self.champion else None
        facts["drifted_features"] = [d.feature for d in self.drifted]
        facts["drift_report"] = self.drift_report.path if self.drift_report else None
        facts["evening_warnings"] = asdict(self.evenings) if self.evenings else None
        return facts


def week_label(start: date, end: date) -> str:
    """The week as people write it: "4–10 Feb 2013", "28 Jan – 3 Feb 2013"."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{end.day} {MONTHS[end.month - 1]} {end.year}"
    if start.year == end.year:
        return (
            f"{start.day} {MONTHS[start.month - 1]} – {end.day} {MONTHS[end.month - 1]} {end.year}"
        )
    return (
        f"{start.day} {MONTHS[start.month - 1]} {start.year} – "
        f"{end.day} {MONTHS[end.month - 1]} {end.year}"
    )
