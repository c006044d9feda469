"""All settings in one place, read from the environment (or a `.env` file).

Each setting is declared once, on `Settings`: its type, its default and what it is for.
Its environment variable is `NIGHTSCORE_` + the field's name in capitals, unless the field
names another (`env_variable()` says which). Every variable is documented in
`.env.example`. Nothing secret has a default here, and nothing secret prints: the
analyst's password is a `SecretStr`, and the URLs' passwords are masked in `repr`, `str`
and JSON dumps (read `settings.warehouse_url` itself where the real URL is needed).

`Settings(...)` takes keyword arguments and the defaults, never the environment (tests
rely on it); `load_settings()` reads the environment, through pydantic-settings. A bad
value raises `SettingsError`, naming the variable, its value and what was expected.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from nightscore.errors import DataError

# The repository root when running from a checkout; the current folder otherwise.
_REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_ROOT = _REPO_ROOT if (_REPO_ROOT / "pyproject.toml").exists() else Path.cwd()

DEFAULT_WAREHOUSE_URL = "postgresql://nightscore_etl@127.0.0.1:5432/warehouse"
ENV_PREFIX = "NIGHTSCORE_"


def env_file() -> Path:
    """The `.env` file: NIGHTSCORE_ENV_FILE, else the project root's."""
    return Path(os.environ.get("NIGHTSCORE_ENV_FILE") or PROJECT_ROOT / ".env")


def _load_dotenv() -> None:
    """Put `.env` into the process environment, without overriding what is set there.

    The settings below do not need it (pydantic-settings reads the file itself), but
    other NIGHTSCORE_* variables (the demo's, NIGHTSCORE_GIT_COMMIT, ...) and the
    processes nightscore starts read the environment.
    """
    path = env_file()
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


_load_dotenv()
STATE_DIR = Path(os.environ.get("NIGHTSCORE_STATE_DIR") or PROJECT_ROOT / ".nightscore")


_POSTGRES_SCHEMES = ("postgresql+psycopg2://", "postgresql://", "postgres://")


def sqlalchemy_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+psycopg2:// and return the latter."""
    for prefix in _POSTGRES_SCHEMES:
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    raise ValueError(f"not a Postgres URL: {url!r}")


def libpq_url(url: str) -> str:
    """The same URL in the form psycopg2 and psql accept."""
    return "postgresql://" + sqlalchemy_url(url).split("://", 1)[1]


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*(@)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#\s]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with its password (`user:password@` or `?password=`) masked: safe to print."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", url))


class SettingsError(DataError, ValueError):
    """A NIGHTSCORE_* variable holds a value its setting cannot take."""


def _addresses(value: Any) -> Any:
    """A comma-separated list of addresses (or any sequence of them)."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, (list, tuple)):
        return tuple(a.strip() for a in value if isinstance(a, str) and a.strip())
    return value


def _postgres_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(_POSTGRES_SCHEMES):
        # Not the value in the message: it may hold a password.
        raise ValueError("expected a Postgres URL, postgresql://user@host:port/database")
    return value


Addresses = Annotated[tuple[str, ...], NoDecode]
GateMode = Literal["enforce", "dry_run"]
SensorMode = Literal["reschedule", "poke"]
Environment = Literal["development", "production"]
GATE_MODES: tuple[str, ...] = get_args(GateMode)

DEV_AIRFLOW_URL = "http://localhost:8080"
# The store's areas: setting -> its folder below `store_url`.
STORE_AREAS = {
    "landing_root": "landing",
    "data_docs_root": "data_docs",
    "reports_dir": "reports",
    "evidently_workspace": "evidently",
    "alert_spool_root": "alert_spool",
}
_PUBLIC_URL_FIELDS = (
    "public_airflow_url",
    "public_mlflow_url",
    "public_evidently_url",
    "public_mail_url",
)

# Fields whose value can carry a password: masked in repr, str and JSON.
_URL_FIELDS = ("warehouse_url", "admin_url")
# Fields for which an empty variable means None, not the default.
_EMPTY_MEANS_NONE = ("schedule_end",)


class Settings(BaseModel):
    """Platform settings. Build with `load_settings()`; change with `settings.replace()`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        hide_input_in_errors=True,  # a bad URL or password must not print
    )

    # --- the warehouse ---
    warehouse_url: str = Field(
        DEFAULT_WAREHOUSE_URL, description="The warehouse, as the ETL role that owns it."
    )
    admin_url: str | None = Field(
        None,
        description="A superuser connection used only at set-up (`nightscore db upgrade`: "
        "the databases, the roles and their limits), never by a task; None means "
        '"the warehouse server, as user postgres".',
    )
    analyst_password: SecretStr | None = Field(
        None, description="The password set on the read-only analyst role (none: unchanged)."
    )
    analyst_statement_timeout_s: int = Field(
        60, description="The analyst role's statement_timeout: longer queries are cancelled."
    )
    analyst_idle_in_transaction_timeout_s: int = Field(
        60,
        description="An analyst session idle inside a transaction this long is ended (it "
        "would hold its locks and block the ETL).",
    )
    analyst_connection_limit: int = Field(
        10, description="At most this many sessions of the analyst role at once."
    )
    # --- where it runs ---
    environment: Environment = Field(
        "development",
        description='"production": every public link setting must be set (checked at '
        'start-up); "development": empty ones fall back to local addresses.',
    )
    # --- the store: files every host must see ---
    store_url: str = Field(
        str(STATE_DIR),
        description="The root of the landing zone, Data Docs, reports and the Evidently "
        "workspace: a folder, or an fsspec URL (s3://bucket/prefix, gs://..., MinIO via "
        "FSSPEC_S3_ENDPOINT_URL). With Celery workers on several hosts it must be a store "
        "they all reach.",
    )
    landing_root: str = Field("", description="Where batches land ({store_url}/landing).")
    data_docs_root: str = Field(
        "", description="Great Expectations' Data Docs ({store_url}/data_docs)."
    )
    # --- validation ---
    row_count_band: float = Field(
        0.5,
        description="A batch's row count must be within +/- this share of the trailing "
        "average of loaded batches of the same kind (a warning, not critical).",
    )
    row_count_window_days: int = Field(14, description="The trailing average's window.")
    # A real night is ~1,000 flights in ~60 KB (flights.csv, 9 columns) and 72 weather
    # rows; the defaults fit a night a hundredfold and still bound what a file can cost.
    max_batch_bytes: int = Field(
        10_000_000,
        gt=0,
        description="A batch whose files are larger together is rejected whole, unread.",
    )
    max_batch_columns: int = Field(
        100, gt=0, description="A landing file whose header has more fields is rejected."
    )
    max_line_bytes: int = Field(
        65_536,
        gt=0,
        description="A landing file with a longer line is rejected (read at most this much).",
    )
    hold_below_share: float = Field(
        0.9,
        gt=0,
        le=1,
        description="A batch that would replace a loaded day with fewer than this share of "
        "its rows (a truncated export) is held, not loaded, until applied on purpose.",
    )
    # --- schedules ---
    schedule_start: date = Field(date(2013, 1, 1), description="Scheduled DAGs start here.")
    schedule_end: date | None = Field(
        date(2013, 12, 31),
        description="Scheduled DAGs stop here. The shipped use case replays 2013, so by "
        'default the schedules stop at its end; set it to "" (or "none") in production.',
    )
    sensor_timeout_s: int = Field(
        6 * 3600, description="How long ingestion sensors wait for a batch, then alert and fail."
    )
    sensor_poke_s: int = Field(60, description="Seconds between a sensor's pokes.")
    sensor_mode: SensorMode = Field(
        "reschedule",
        description='"reschedule" frees the worker slot between pokes (production: waits of '
        'hours). "poke" holds it; the demo uses it because with pokes seconds apart, Airflow '
        "3.3 can fail a rescheduled sensor on a late executor event (apache/airflow#71172).",
    )
    retry_delay_s: int = Field(
        120, description="Pause before a failed task is retried (rejections never are)."
    )
    # --- retries and timeouts (a data error is never retried; see nightscore.errors) ---
    retries: int = Field(
        3, ge=0, description="Retries of a task that failed for an unavailable component."
    )
    max_retry_delay_s: int = Field(
        1800, ge=1, description="Cap of the retry pause, which doubles after each try."
    )
    task_timeout_s: int = Field(
        1800, ge=1, description="A task running longer than this fails (and is retried)."
    )
    training_timeout_s: int = Field(3600, ge=1, description="...training a challenger.")
    history_timeout_s: int = Field(6 * 3600, ge=1, description="...loading a range of history.")
    report_timeout_s: int = Field(3600, ge=1, description="...the Evidently drift report.")
    # --- email ---
    alert_email_to: Addresses = Field((), description="Engineers: alerts (comma-separated).")
    report_email_to: Addresses = Field(
        (), description="Stakeholders: the weekly report (comma-separated; empty: engineers)."
    )
    alert_spool_root: str = Field(
        "",
        description="Failure notices the warehouse could not take, until the next drain "
        "moves them into the outbox ({store_url}/alert_spool).",
    )
    alert_drain_every_min: int = Field(
        10, ge=1, le=60, description="How often the alert_outbox DAG drains the outbox."
    )
    alert_send_timeout_s: int = Field(
        300, ge=30, description="Every send_alerts task is stopped after this many seconds."
    )
    # --- monitoring ---
    alert_rules_path: str = Field(
        "",
        validation_alias="NIGHTSCORE_ALERT_RULES",
        description="The alert rules (YAML); the packaged default when empty.",
    )
    reports_dir: str = Field(
        "", description="The daily drift and weekly reports ({store_url}/reports)."
    )
    evidently_workspace: str = Field(
        "", description="The workspace `evidently ui` shows ({store_url}/evidently)."
    )
    # --- public addresses: every link stored or mailed is built from these ---
    public_airflow_url: str = Field(
        "",
        description="The Airflow UI as a browser reaches it; reports and Data Docs are "
        f'served below it. Development: "" means {DEV_AIRFLOW_URL}.',
    )
    public_mlflow_url: str = Field(
        "",
        description='The MLflow UI as a browser reaches it. Development: "" means the '
        "tracking URI.",
    )
    public_evidently_url: str = Field(
        "",
        description='The Evidently UI as a browser reaches it. Development: "" means no '
        "link to it.",
    )
    public_mail_url: str = Field(
        "",
        description="The web inbox of the mail nightscore sends (Mailpit in docker compose), "
        'as a browser reaches it. Development: "" means the mail_dir page, or no link.',
    )
    owner_link: str = Field(
        "",
        description="Where the DAG owner `nightscore` links to in the Airflow UI: the team's "
        'runbook (http(s)://...) or a mailto: address. "" means a mail to alert_email_to, '
        "else the list of nightscore's DAGs, whose docs are the runbook.",
    )
    mail_dir: str = Field(
        "",
        description="A local folder of mail as .eml + .html files (the local stack's SMTP "
        "sink) that the Airflow API server shows, behind its login, at /nightscore/mail. "
        'Development only; "" means none.',
    )
    # --- MLflow and training ---
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000", description="The tracking server (runs, artifacts, registry)."
    )
    # MLflow's own variables, which its client reads: a task logs in with them.
    mlflow_tracking_username: str = Field(
        "",
        validation_alias="MLFLOW_TRACKING_USERNAME",
        description="The user tasks and the CLI log in to the tracking server as (MLflow's "
        'basic-auth app); "" sends no login.',
    )
    mlflow_tracking_password: SecretStr | None = Field(
        None, validation_alias="MLFLOW_TRACKING_PASSWORD", description="...and its password."
    )
    model_name: str = Field("flight_disruption", description="The registered model's name.")
    training_window_days: int = Field(
        120, description="A trailing window of labelled days before the cut-off..."
    )
    validation_days: int = Field(14, description="...the last of which are held out.")
    tuning_trials: int = Field(15, description="Optuna's budget in trials...")
    tuning_timeout_s: int = Field(180, description="...and in seconds: whichever ends first.")
    # The champion/challenger gate: promote only above the floor and at most `margin`
    # worse than the champion (ROC AUC, on the same most recent labelled window). The
    # floor sits just above the route x hour history baseline (0.64 in `evaluate`).
    gate_mode: GateMode = Field(
        "enforce", description='"dry_run": decide and record, never move the alias.'
    )
    gate_floor_roc_auc: float = Field(0.65, description="The gate's ROC AUC floor.")
    gate_margin: float = Field(0.01, description="How much worse than the champion may pass.")
    # --- scoring ---
    scoring_partitions: int = Field(
        1, description="Split a night into this many partitions, scored by mapped tasks."
    )
    # Exact TreeSHAP costs far more CPU than the scores themselves (docs/benchmarks.md).
    scoring_reasons: bool = Field(
        True, description="Store each prediction's three strongest drivers (TreeSHAP)."
    )

    @field_validator("alert_email_to", "report_email_to", mode="before")
    @classmethod
    def _split_addresses(cls, value: Any) -> Any:
        return _addresses(value)

    @field_validator("schedule_end", mode="before")
    @classmethod
    def _none_date(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @model_validator(mode="before")
    @classmethod
    def _store_areas(cls, data: Any) -> Any:
        """An area's root left empty is its folder below `store_url`."""
        if not isinstance(data, dict):
            return data
        store = str(data.get("store_url") or cls.model_fields["store_url"].default)
        data = {**data, "store_url": store.rstrip("/") or store}
        for field, folder in STORE_AREAS.items():
            if not data.get(field):
                data[field] = data["store_url"].rstrip("/") + "/" + folder
        return data

    @field_validator(*_PUBLIC_URL_FIELDS)
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address a browser opens")
        return value

    @field_validator("owner_link")
    @classmethod
    def _owner_link(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://", "mailto:")):
            raise ValueError("expected an http(s):// address or a mailto: address")
        return value

    @model_validator(mode="after")
    def _links_in_production(self) -> Self:
        if self.environment == "production":
            empty = [env_variable(f) for f in _PUBLIC_URL_FIELDS if not getattr(self, f)]
            if empty:
                raise ValueError(
                    f"{', '.join(empty)} must be set in production: every link in reports "
                    "and mails is built from it"
                )
        return self

    @property
    def airflow_link_base(self) -> str:
        """The Airflow UI's public address (development: the local default)."""
        return self.public_airflow_url or DEV_AIRFLOW_URL

    @property
    def mlflow_link_base(self) -> str:
        """The MLflow UI's public address (development: the tracking URI)."""
        return self.public_mlflow_url or self.mlflow_tracking_uri.rstrip("/")

    @field_validator(*_URL_FIELDS)
    @classmethod
    def _is_postgres(cls, value: str | None) -> str | None:
        return _postgres_url(value)

    @field_serializer(*_URL_FIELDS, when_used="json")
    def _mask_url(self, value: str | None) -> str | None:
        return None if value is None else redact_url(value)

    def __repr_args__(self):  # repr() and str(): the URLs' passwords masked
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in _URL_FIELDS and value else value

    @property
    def warehouse_sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.warehouse_url)

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, validated (unlike `model_copy(update=...)`)."""
        return self.model_validate({**self.model_dump(), **changes})


def env_variable(field: str) -> str:
    """The environment variable a setting is read from."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()


def env_variables() -> dict[str, str]:
    """Every setting's environment variable, by field name."""
    return {name: env_variable(name) for name in Settings.model_fields}


class _Environment(Settings, BaseSettings):
    """`Settings` read by pydantic-settings: init arguments, then the environment, then
    the `.env` file (the first that sets a variable wins)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",  # .env holds other NIGHTSCORE_* variables (the demo's, ...)
        env_file_encoding="utf-8",
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """Values are stripped; an empty one means the default (None for some)."""
        if not isinstance(data, dict):
            return data
        values = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return {k: v for k, v in values.items() if v != "" or k in _EMPTY_MEANS_NONE}


def _expected(error: Any) -> str:
    kind = error["type"]
    if kind.startswith("int_"):
        return "expected a whole number"
    if kind.startswith("float_"):
        return "expected a number"
    if kind.startswith("date_"):
        return "expected a date, YYYY-MM-DD"
    if kind == "literal_error":
        return "expected one of " + error["ctx"]["expected"]
    if kind == "value_error":  # ours, worded "expected ..."
        return error["msg"].removeprefix("Value error, ")
    return "expected: " + error["msg"]


def _shown(field: str, value: Any) -> str:
    if field in ("analyst_password", "mlflow_tracking_password"):
        return "'***'"
    if field in _URL_FIELDS and isinstance(value, str):
        return repr(redact_url(value))
    return repr(value)


def _settings_error(exc: ValidationError) -> SettingsError:
    names = env_variables()
    by_alias = {variable: field for field, variable in names.items()}
    problems = []
    for error in exc.errors():
        if not error["loc"]:  # a check across settings: its message names them
            problems.append(_expected(error))
            continue
        key = str(error["loc"][0])
        field = by_alias.get(key, key)
        variable = names.get(field, key)
        problems.append(f"{variable}={_shown(field, error['input'])}: {_expected(error)}")
    return SettingsError("bad nightscore settings (see .env.example): " + "; ".join(problems))


def load_settings() -> Settings:
    """Read settings from the environment, then `.env`; raise `SettingsError` on a bad value."""
    _load_dotenv()
    try:
        found = _Environment(_env_file=env_file())  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _settings_error(exc) from None
    except _SourceError as exc:
        raise SettingsError(f"bad nightscore settings (see .env.example): {exc}") from None
    return Settings.model_validate(found.model_dump())
