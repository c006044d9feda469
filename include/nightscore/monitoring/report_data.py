"""The weekly report's numbers: the week's predictions, outcomes, alerts, drift and
champion, from the warehouse (`gather`), and the pure steps that turn DataFrames into a
`WeeklyReport` (`week_kpis`, `daily_points`, `riskiest_routes`, `strongest_drift`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, TextClause, text

from nightscore import links, sql, store
from nightscore.metrics import Metrics, classification_metrics
from nightscore.monitoring.report_model import (
    MIN_ROUTE_FLIGHTS,
    RULE,
    TOP_ROUTES,
    WEEK_DAYS,
    AlertLine,
    Champion,
    DayPoint,
    DriftedFeature,
    DriftReportFile,
    EveningTally,
    NoScoredFlights,
    RouteRisk,
    WeekKpis,
    WeeklyReport,
)

if TYPE_CHECKING:
    import pandas as pd

    from nightscore.config import Settings

logger = logging.getLogger(__name__)


def _query(name: str) -> TextClause:
    return text(sql.load(f"monitoring/{name}"))


def _joined(frame: pd.DataFrame) -> pd.DataFrame:
    joined = frame[frame["disrupted"].notna()]
    return joined.assign(disrupted=joined["disrupted"].astype(int))


def _metrics(joined: pd.DataFrame) -> Metrics:
    """The metrics of predictions with outcomes (`nightscore.metrics`), with the flags
    scoring set; empty when there are none."""
    if joined.empty:
        return {}
    return classification_metrics(
        joined["disrupted"].to_numpy(dtype=int),
        joined["score"].to_numpy(dtype=float),
        float(joined["threshold"].iloc[0]),
        flagged=joined["label"].to_numpy(dtype=bool),
    )


def week_kpis(frame: pd.DataFrame, alerts: Sequence[AlertLine]) -> WeekKpis | None:
    """The KPIs of one week's predictions (`disrupted` NaN where no outcome yet); None
    when nothing was scored."""
    if frame.empty:
        return None
    joined = _joined(frame)
    metrics = _metrics(joined)
    by_severity: dict[str, int] = {}
    for a in alerts:
        by_severity[a.severity] = by_severity.get(a.severity, 0) + 1
    return WeekKpis(
        flights_scored=len(frame),
        flights_with_outcomes=len(joined),
        disruption_rate=float(joined["disrupted"].mean()) if len(joined) else None,
        mean_risk=float(frame["score"].mean()),
        roc_auc=metrics.get("roc_auc"),
        precision=metrics.get("precision"),
        recall=metrics.get("recall"),
        alerts=len(alerts),
        alerts_by_severity=by_severity,
        model_versions=tuple(sorted(int(v) for v in frame["model_version"].unique())),
        days_scored=int(frame["service_date"].nunique()),
        flagged=int(joined["label"].astype(bool).sum()),
    )


def daily_points(frame: pd.DataFrame, week_end: date) -> tuple[DayPoint, ...]:
    """One point per day of the week, days without predictions included (empty)."""
    points = []
    for offset in range(WEEK_DAYS - 1, -1, -1):
        day = week_end - timedelta(days=offset)
        scored = frame[frame["service_date"] == day]
        joined = _joined(scored)
        metrics = _metrics(joined)
        points.append(
            DayPoint(
                service_date=day,
                flights=len(scored),
                mean_risk=float(scored["score"].mean()) if len(scored) else None,
                disruption_rate=float(joined["disrupted"].mean()) if len(joined) else None,
                roc_auc=metrics.get("roc_auc"),
            )
        )
    return tuple(points)


def riskiest_routes(
    frame: pd.DataFrame, top: int = TOP_ROUTES, min_flights: int = MIN_ROUTE_FLIGHTS
) -> tuple[RouteRisk, ...]:
    """The routes with the highest mean predicted risk among those flown often enough."""
    if frame.empty:
        return ()
    routes = (
        frame.dropna(subset=["dest"])
        .groupby(["origin", "dest"], as_index=False)
        .agg(
            flights=("score", "size"),
            mean_risk=("score", "mean"),
            disruption_rate=("disrupted", "mean"),  # NaN (no outcome) is skipped
            dest_name=("dest_name", "first"),
        )
    )
    routes = routes[routes["flights"] >= min_flights].sort_values(
        ["mean_risk", "flights", "origin", "dest"], ascending=[False, False, True, True]
    )
    return tuple(
        RouteRisk(
            origin=r.origin,
            dest=r.dest,
            dest_name=r.dest_name if isinstance(r.dest_name, str) else None,
            flights=int(r.flights),
            mean_risk=float(r.mean_risk),
            disruption_rate=None if math.isnan(r.disruption_rate) else float(r.disruption_rate),
        )
        for r in routes.head(top).itertuples()
    )


def strongest_drift(rows: Sequence[dict[str, Any]]) -> tuple[DriftedFeature, ...]:
    """Per feature, from its drifted (day, method, statistic) rows: the days it drifted
    and its strongest statistic (largest distance, smallest p-value); most days first."""
    from nightscore.monitoring.drift_methods import METHODS

    by_feature: dict[str, dict[str, Any]] = {}
    for row in rows:
        method = METHODS.get(row["method"])
        distance = method.distance if method else True
        entry = by_feature.setdefault(
            row["feature"], {"days": set(), "statistic": None, "methods": set()}
        )
        entry["days"].add(row["service_date"])
        entry["methods"].add(row["method"])
        best, value = entry["statistic"], float(row["statistic"])
        if best is None or (value > best if distance else value < best):
            entry["statistic"] = value
    features = [
        DriftedFeature(name, len(e["days"]), e["statistic"], ", ".join(sorted(e["methods"])))
        for name, e in by_feature.items()
    ]
    return tuple(sorted(features, key=lambda f: (-f.days_drifted, f.feature)))


def evening_tally(rows: Sequence[Mapping[str, Any]]) -> EveningTally | None:
    """The week's evening checks (`warned`, `turned_out_bad` per night), counted."""
    if not rows:
        return None
    judged = [r for r in rows if r["turned_out_bad"] is not None]
    return EveningTally(
        nights=len(rows),
        warned=sum(bool(r["warned"]) for r in rows),
        judged=len(judged),
        bad=sum(bool(r["turned_out_bad"]) for r in judged),
        warned_bad=sum(bool(r["warned"] and r["turned_out_bad"]) for r in judged),
        warned_ordinary=sum(bool(r["warned"] and not r["turned_out_bad"]) for r in judged),
    )


def _frame(conn: Connection, model: str, first: date, last: date) -> pd.DataFrame:
    import pandas as pd

    result = conn.execute(
        _query("report_predictions"), {"model": model, "first": first, "last": last}
    )
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["disrupted"] = pd.to_numeric(frame["disrupted"], errors="coerce")
    frame["score"] = frame["score"].astype(float)
    return frame


def _champion(conn: Connection, model: str, week_end: date) -> Champion | None:
    row = conn.execute(_query("report_champion"), {"model": model}).mappings().first()
    if row is None:
        return None
    promoted: datetime = row["champion_from"]
    # In a replay the promotion (wall clock) comes after the service dates: age from now.
    reference = week_end if promoted.date() <= week_end else date.today()
    return Champion(
        name=row["model_name"],
        version=int(row["version"]),
        promoted_at=promoted,
        age_days=max(0, (reference - promoted.date()).days),
        roc_auc_at_promotion=row["roc_auc_at_promotion"],
        training_cutoff=row["training_cutoff"],
    )


def _served_url(settings: Settings, location: str) -> str | None:
    """The public link of a report file; None (and a warning) when it lies outside the
    served areas, so the mail names the file instead of a link that cannot open."""
    try:
        return links.file_url(settings, location)
    except links.NotServed:
        logger.warning("the drift report %s is not below a served area: no link", location)
        return None


def gather(week_end: date, settings: Settings) -> WeeklyReport:
    """Everything the report says about the week that ends on `week_end`."""
    from nightscore.monitoring.rules import load_rules
    from nightscore.warehouse.db import engine_for

    first = week_end - timedelta(days=WEEK_DAYS - 1)
    previous = first - timedelta(days=WEEK_DAYS)
    model = settings.model_name
    week = {"model": model, "first": first, "last": week_end}
    with engine_for(settings).connect() as conn:
        frame = _frame(conn, model, previous, week_end)
        alerts = [
            AlertLine(**row)
            for row in conn.execute(
                _query("report_alerts"), {"first": previous, "last": week_end, "rule": RULE}
            ).mappings()
        ]
        champion = _champion(conn, model, week_end)
        drifted = strongest_drift(
            cast(
                "list[dict[str, Any]]",
                list(conn.execute(_query("report_drifted"), week).mappings()),
            )
        )
        drift_days = conn.execute(_query("report_drift_days"), week).scalar_one()
        drift_row = conn.execute(_query("report_latest_drift_report"), week).mappings().first()
        evenings = evening_tally(list(conn.execute(_query("report_evenings"), week).mappings()))

    this = frame[frame["service_date"] >= first]
    this_alerts = [a for a in alerts if a.service_date and a.service_date >= first]
    this_week = week_kpis(this, this_alerts)
    if this_week is None:
        raise NoScoredFlights(
            f"no flight was scored by {model!r} between {first} and {week_end}: "
            "there is nothing to report for that week"
        )
    drift_report = None
    if drift_row is not None:
        path = drift_row["path"]
        if store.exists(path):
            drift_report = DriftReportFile(
                drift_row["service_date"], path, drift_row["bytes"], _served_url(settings, path)
            )
        else:
            logger.warning("the drift report of %s is gone: %s", drift_row["service_date"], path)
    floor = load_rules(settings).get("roc_auc_floor")
    return WeeklyReport(
        week_end=week_end,
        model_name=model,
        this_week=this_week,
        last_week=week_kpis(
            frame[frame["service_date"] < first],
            [a for a in alerts if a.service_date and a.service_date < first],
        ),
        days=daily_points(this, week_end),
        routes=riskiest_routes(this),
        champion=champion,
        drifted=drifted,
        drift_days_checked=int(drift_days),
        alerts=tuple(this_alerts),
        drift_report=drift_report,
        evenings=evenings,
        roc_auc_floor=floor.threshold if floor and floor.metric else None,
        airflow_url=settings.airflow_link_base,
    )
