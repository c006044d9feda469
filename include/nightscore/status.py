"""What state one service date is in, read for an operator (`nightscore status`,
`nightscore alerts list`).

Everything comes from the warehouse, read-only (`sql/status/*.sql`), except the champion,
which the MLflow registry knows: when MLflow does not answer, that section says so and
the rest is still reported (`NightStatus.degraded`). The warehouse is the record itself:
without it there is nothing to report, and the `InfrastructureError` propagates.

`NightStatus.to_json()` is the stable JSON form; its keys are listed in
docs/operations.md ("The command line"). `nightscore.status_text` renders the human form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from nightscore import links, sql
from nightscore.config import Settings
from nightscore.errors import InfrastructureError, classify

# The outbox's states (the CHECK constraint of monitoring.alerts).
ALERT_STATUSES = ("pending", "sent", "suppressed")
# Bounds of `alerts list --limit`: enough for a bad week, small enough for a terminal.
DEFAULT_ALERT_LIMIT = 50
MAX_ALERT_LIMIT = 10_000
# MLflow's health check answers in milliseconds; 5 s tells a down server from a slow one
# without holding the rest of the status up (the client's own retries take minutes).
MLFLOW_TIMEOUT_S = 5.0

Row = dict[str, Any]


@dataclass(frozen=True)
class Champion:
    """The registry's champion now: `state` is "ok", "none" (no version has the alias) or
    "unavailable" (MLflow did not answer; `error` says how)."""

    model_name: str
    state: str
    alias: str = "champion"
    version: int | None = None
    run_id: str | None = None
    promoted_at: datetime | None = None
    model_url: str | None = None
    error: str | None = None


@dataclass
class NightStatus:
    """One service date as the warehouse and the registry have it."""

    service_date: date
    batches: list[Row]
    loaded: dict[str, int]
    scoring_runs: list[Row]
    champion: Champion
    performance: list[Row] = field(default_factory=list)
    drift: list[Row] = field(default_factory=list)
    breached_rules: list[Row] = field(default_factory=list)
    retrain: list[Row] = field(default_factory=list)
    alerts: list[Row] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing recorded for the date yet: no batch, run, monitoring or alert."""
        return not (
            self.batches
            or any(self.loaded.values())
            or self.scoring_runs
            or self.performance
            or self.drift
            or self.breached_rules
            or self.retrain
            or self.alerts
        )

    @property
    def degraded(self) -> bool:
        """A section could not be read because a component is down (MLflow)."""
        return self.champion.state == "unavailable"

    def to_json(self) -> dict[str, Any]:
        return jsonable(
            {
                "service_date": self.service_date,
                "empty": self.empty,
                "degraded": self.degraded,
                "batches": self.batches,
                "loaded": self.loaded,
                "scoring_runs": self.scoring_runs,
                "champion": self.champion.__dict__,
                "monitoring": {
                    "performance": self.performance,
                    "drift": self.drift,
                    "breached_rules": self.breached_rules,
                    "retrain": self.retrain,
                },
                "alerts": self.alerts,
            }
        )


def jsonable(value: Any) -> Any:
    """`value` with dates as ISO strings and numerics as floats, ready for json.dumps."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


# --- reading ------------------------------------------------------------------------------


def _rows(conn: Connection, statement: str, **params: Any) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(text(statement), params)]


def _read_only(settings: Settings) -> Connection:
    from nightscore.warehouse.db import engine_for

    return engine_for(settings).connect().execution_options(postgresql_readonly=True)


def _report_url(settings: Settings, path: str | None) -> str | None:
    if not path:
        return None
    try:
        return links.file_url(settings, path)
    except links.NotServed:
        return None


def champion(settings: Settings) -> Champion:
    """The version with the alias `champion` now, or why it cannot be told."""
    from nightscore import registry

    name = settings.model_name
    try:
        registry.check_server(settings, timeout_s=MLFLOW_TIMEOUT_S)
        version = registry.model_version(settings, registry.CHAMPION)
    except Exception as exc:  # the status reports MLflow's state; it never fails on it
        found = classify(exc)
        detail = found.detail if isinstance(found, InfrastructureError) else str(exc)
        return Champion(name, "unavailable", error=detail.strip().splitlines()[0])
    if version is None:
        return Champion(name, "none")
    number = int(version.version)
    return Champion(
        name,
        "ok",
        version=number,
        run_id=version.run_id,
        model_url=links.mlflow_model_url(settings, name, number),
    )


def night_status(service_date: date, settings: Settings) -> NightStatus:
    """Everything recorded for `service_date`; MLflow down leaves the champion unknown."""
    found = champion(settings)
    with _read_only(settings) as conn:
        params = {"service_date": service_date}
        if found.version is not None:
            promoted = _rows(
                conn,
                sql.load("status/promotion"),
                model_name=found.model_name,
                version=found.version,
            )
            if promoted:
                found = Champion(**{**found.__dict__, "promoted_at": promoted[0]["decided_at"]})
        loaded = _rows(conn, sql.load("status/loaded_rows"), **params)[0]
        drift = _rows(conn, sql.load("status/drift"), **params)
        for row in drift:
            row["report_url"] = _report_url(settings, row["report_path"])
        return NightStatus(
            service_date=service_date,
            batches=_rows(conn, sql.load("status/batches"), **params),
            loaded={key: int(value) for key, value in loaded.items()},
            scoring_runs=_rows(conn, sql.load("status/scoring_runs"), **params),
            champion=found,
            performance=_rows(conn, sql.load("status/performance"), **params),
            drift=drift,
            breached_rules=_rows(conn, sql.load("status/breached_rules"), **params),
            retrain=_rows(conn, sql.load("status/retrain"), **params),
            alerts=list(
                reversed(
                    alerts(settings, service_date=service_date, limit=MAX_ALERT_LIMIT, conn=conn)
                )
            ),
        )


def alerts(
    settings: Settings,
    *,
    service_date: date | None = None,
    status: str | None = None,
    limit: int = DEFAULT_ALERT_LIMIT,
    conn: Connection | None = None,
) -> list[Row]:
    """The outbox, newest first, filtered by service date and/or status."""
    if status is not None and status not in ALERT_STATUSES:
        raise ValueError(f"alert status must be one of {', '.join(ALERT_STATUSES)}: {status!r}")
    if not 1 <= limit <= MAX_ALERT_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_ALERT_LIMIT:,}: {limit}")
    params = {"service_date": service_date, "status": status, "limit": limit}
    if conn is not None:
        return _rows(conn, sql.load("status/alerts"), **params)
    with _read_only(settings) as own:
        return _rows(own, sql.load("status/alerts"), **params)


def version() -> str:
    """ "nightscore 0.1.0 (commit 2a93e16)": the package's version, and the code's commit
    when known (NIGHTSCORE_GIT_COMMIT, or the checkout's)."""
    from nightscore import __version__
    from nightscore.registry import git_commit

    commit = git_commit()
    return f"nightscore {__version__}" + ("" if commit == "unknown" else f" (commit {commit})")
