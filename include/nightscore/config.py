"""All settings in one place, read from the environment (or a `.env` file).

Every variable is documented in `.env.example`. Nothing secret has a default here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

# The repository root when running from a checkout; the current folder otherwise.
_REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_ROOT = _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").exists() else Path.cwd()

DEFAULT_WAREHOUSE_URL = "postgresql://nightscore_etl@127.0.0.1:5432/warehouse"


def _load_dotenv() -> None:
    env_file = Path(os.environ.get("NIGHTSCORE_ENV_FILE", PROJECT_ROOT / ".env"))
    if env_file.is_file():
        from dotenv import load_dotenv

        load_dotenv(env_file, override=False)


_load_dotenv()
STATE_DIR = Path(os.environ.get("NIGHTSCORE_STATE_DIR") or PROJECT_ROOT / ".nightscore")


def _get(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value if value else default


def _addresses(name: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in _get(name, "").split(",") if a.strip())


def _optional_date(name: str, default: str) -> date | None:
    """A date, or None when the variable is set to "" or "none"; unset gives the default."""
    value = os.environ.get(name, default).strip()
    return date.fromisoformat(value) if value and value.lower() != "none" else None


def sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+psycopg2:// and return the latter."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    raise ValueError(f"not a Postgres URL: {url!r}")


def libpq_url(url: str) -> str:
    """The same URL in the form psycopg2 and psql accept."""
    return "postgresql://" + sqlalchemy_url(url).split("://", 1)[1]


@dataclass(frozen=True)
class Settings:
    """Platform settings. Build with `load_settings()`."""

    warehouse_url: str = DEFAULT_WAREHOUSE_URL
    # A superuser (or CREATEDB + CREATEROLE) connection used only to create the
    # databases and roles; None means "the warehouse server, as user postgres".
    admin_url: str | None = None
    analyst_password: str | None = None
    landing_root: str = str(STATE_DIR / "landing")
    data_docs_root: str = str(STATE_DIR / "data_docs")
    # Validation: the row count of a batch must be within +/- this share of the
    # trailing average of loaded batches of the same kind (a warning, not critical).
    row_count_band: float = 0.5
    row_count_window_days: int = 14
    # Scheduled DAGs run between these dates. The shipped use case replays 2013, so by
    # default the schedules stop at its end; clear NIGHTSCORE_SCHEDULE_END in production.
    schedule_start: date = date(2013, 1, 1)
    schedule_end: date | None = date(2013, 12, 31)
    # How long the ingestion sensors wait for a batch before they alert and fail.
    sensor_timeout_s: int = 6 * 3600
    sensor_poke_s: int = 60
    # "reschedule" frees the worker slot between pokes (production: waits of hours).
    # "poke" holds it; the demo uses it because with pokes seconds apart, Airflow 3.3 can
    # fail a rescheduled sensor on a late executor event (apache/airflow#71172).
    sensor_mode: str = "reschedule"
    # Pause before a failed task is retried (rejections are never retried).
    retry_delay_s: int = 120
    # Engineers get alerts; stakeholders get the weekly report (engineers when empty).
    alert_email_to: tuple[str, ...] = field(default_factory=tuple)
    report_email_to: tuple[str, ...] = field(default_factory=tuple)
    # Monitoring: the alert rules (YAML; the packaged default when empty), where the daily
    # Evidently reports and the weekly reports are written, and the Evidently workspace
    # that `evidently ui` shows.
    alert_rules_path: str = ""
    reports_dir: str = str(STATE_DIR / "reports")
    evidently_workspace: str = str(STATE_DIR / "evidently")
    # The Airflow UI's address, for links in emails ("" : no links to runs).
    airflow_url: str = ""
    # MLflow: the tracking server (runs, artifacts, the model registry).
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    model_name: str = "flight_disruption"
    # Training: a trailing window of labelled days before the cut-off, the last
    # `validation_days` of it held out, and an Optuna budget (whichever ends first).
    training_window_days: int = 120
    validation_days: int = 14
    tuning_trials: int = 15
    tuning_timeout_s: int = 180
    # The champion/challenger gate: promote only above the floor and at most `margin`
    # worse than the champion (ROC AUC, on the same most recent labelled window). The
    # floor sits just above the route x hour history baseline (0.64 in `evaluate`).
    gate_mode: str = "enforce"  # or "dry_run": decide and record, never move the alias
    gate_floor_roc_auc: float = 0.65
    gate_margin: float = 0.01
    # Scoring: split a night into this many partitions, scored by mapped tasks.
    scoring_partitions: int = 1

    @property
    def warehouse_sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.warehouse_url)


GATE_MODES = ("enforce", "dry_run")


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _get(name, default)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    return value


def load_settings() -> Settings:
    """Read settings from the environment, after loading `.env` if there is one."""
    _load_dotenv()
    return Settings(
        warehouse_url=_get("NIGHTSCORE_WAREHOUSE_URL", DEFAULT_WAREHOUSE_URL),
        admin_url=os.environ.get("NIGHTSCORE_ADMIN_URL") or None,
        analyst_password=os.environ.get("NIGHTSCORE_ANALYST_PASSWORD") or None,
        landing_root=_get("NIGHTSCORE_LANDING_ROOT", str(STATE_DIR / "landing")),
        data_docs_root=_get("NIGHTSCORE_DATA_DOCS_ROOT", str(STATE_DIR / "data_docs")),
        row_count_band=float(_get("NIGHTSCORE_ROW_COUNT_BAND", "0.5")),
        row_count_window_days=int(_get("NIGHTSCORE_ROW_COUNT_WINDOW_DAYS", "14")),
        schedule_start=_optional_date("NIGHTSCORE_SCHEDULE_START", "2013-01-01")
        or date(2013, 1, 1),
        schedule_end=_optional_date("NIGHTSCORE_SCHEDULE_END", "2013-12-31"),
        sensor_timeout_s=int(_get("NIGHTSCORE_SENSOR_TIMEOUT_S", str(6 * 3600))),
        sensor_poke_s=int(_get("NIGHTSCORE_SENSOR_POKE_S", "60")),
        sensor_mode=_choice("NIGHTSCORE_SENSOR_MODE", "reschedule", ("reschedule", "poke")),
        retry_delay_s=int(_get("NIGHTSCORE_RETRY_DELAY_S", "120")),
        mlflow_tracking_uri=_get("NIGHTSCORE_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        model_name=_get("NIGHTSCORE_MODEL_NAME", "flight_disruption"),
        training_window_days=int(_get("NIGHTSCORE_TRAINING_WINDOW_DAYS", "120")),
        validation_days=int(_get("NIGHTSCORE_VALIDATION_DAYS", "14")),
        tuning_trials=int(_get("NIGHTSCORE_TUNING_TRIALS", "15")),
        tuning_timeout_s=int(_get("NIGHTSCORE_TUNING_TIMEOUT_S", "180")),
        gate_mode=_choice("NIGHTSCORE_GATE_MODE", "enforce", GATE_MODES),
        gate_floor_roc_auc=float(_get("NIGHTSCORE_GATE_FLOOR_ROC_AUC", "0.65")),
        gate_margin=float(_get("NIGHTSCORE_GATE_MARGIN", "0.01")),
        scoring_partitions=int(_get("NIGHTSCORE_SCORING_PARTITIONS", "1")),
        alert_email_to=_addresses("NIGHTSCORE_ALERT_EMAIL_TO"),
        report_email_to=_addresses("NIGHTSCORE_REPORT_EMAIL_TO"),
        alert_rules_path=_get("NIGHTSCORE_ALERT_RULES", ""),
        reports_dir=_get("NIGHTSCORE_REPORTS_DIR", str(STATE_DIR / "reports")),
        evidently_workspace=_get("NIGHTSCORE_EVIDENTLY_WORKSPACE", str(STATE_DIR / "evidently")),
        airflow_url=_get("NIGHTSCORE_AIRFLOW_URL", "").rstrip("/"),
    )
