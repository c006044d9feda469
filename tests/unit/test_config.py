"""Settings: the defaults, each kind of value read from the environment, empty values,
bad values (named by their variable), `.env`, `replace()` and secrets that never print."""

from __future__ import annotations

import os
from datetime import date

import pytest
from pydantic import SecretStr, ValidationError

from nightscore.config import (
    DEFAULT_WAREHOUSE_URL,
    GATE_MODES,
    STATE_DIR,
    Settings,
    SettingsError,
    env_variable,
    env_variables,
    load_settings,
)


@pytest.fixture
def env(tmp_path):
    """A process environment without NIGHTSCORE_* variables, MLflow credentials nor `.env`,
    restored after (load_settings() copies `.env` into os.environ, which monkeypatch would
    not undo). The session's MLflow fixture sets MLFLOW_TRACKING_* for the whole run."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith(("NIGHTSCORE_", "MLFLOW_TRACKING_"))]:
        del os.environ[name]
    os.environ["NIGHTSCORE_ENV_FILE"] = str(tmp_path / "absent.env")
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


def test_defaults():
    settings = Settings()
    assert settings.warehouse_url == DEFAULT_WAREHOUSE_URL
    assert settings.admin_url is None and settings.analyst_password is None
    assert settings.landing_root == str(STATE_DIR / "landing")
    assert (settings.schedule_start, settings.schedule_end) == (
        date(2013, 1, 1),
        date(2013, 12, 31),
    )
    assert settings.sensor_timeout_s == 21600 and settings.sensor_mode == "reschedule"
    assert settings.alert_email_to == () and settings.report_email_to == ()
    assert settings.gate_mode == "enforce" and settings.gate_margin == 0.01
    assert settings.scoring_partitions == 1
    assert settings.warehouse_sqlalchemy_url.startswith("postgresql+psycopg2://nightscore_etl@")
    assert GATE_MODES == ("enforce", "dry_run")


def test_load_settings_with_nothing_set_gives_the_defaults(env):
    assert load_settings() == Settings()


def test_settings_built_in_code_never_read_the_environment(env):
    env["NIGHTSCORE_GATE_MARGIN"] = "0.3"
    env["NIGHTSCORE_ANALYST_PASSWORD"] = "from-the-developer-env"
    settings = Settings(landing_root="/tmp/x")
    assert settings.gate_margin == 0.01 and settings.analyst_password is None
    assert load_settings().gate_margin == 0.3


def test_variable_names():
    names = env_variables()
    assert names["warehouse_url"] == "NIGHTSCORE_WAREHOUSE_URL"
    assert names["alert_rules_path"] == "NIGHTSCORE_ALERT_RULES"
    assert env_variable("gate_floor_roc_auc") == "NIGHTSCORE_GATE_FLOOR_ROC_AUC"
    assert set(names) == set(Settings.model_fields)


def test_each_kind_of_value_is_read(env):
    env.update(
        {
            "NIGHTSCORE_ALERT_EMAIL_TO": " ops@example.com, oncall@example.com ,",
            "NIGHTSCORE_REPORT_EMAIL_TO": "boss@example.com",
            "NIGHTSCORE_SCHEDULE_START": "2014-01-01",
            "NIGHTSCORE_SCHEDULE_END": "2014-06-30",
            "NIGHTSCORE_GATE_MODE": "dry_run",
            "NIGHTSCORE_SENSOR_MODE": "poke",
            "NIGHTSCORE_GATE_MARGIN": "0.05",
            "NIGHTSCORE_SCORING_PARTITIONS": " 4 ",
            "NIGHTSCORE_ALERT_RULES": "/etc/nightscore/rules.yaml",
            "NIGHTSCORE_PUBLIC_AIRFLOW_URL": "http://airflow.example:8080/",
            "NIGHTSCORE_ADMIN_URL": "postgres://postgres@db:5432/postgres",
            "NIGHTSCORE_ANALYST_PASSWORD": "s3cret",
        }
    )
    settings = load_settings()
    assert settings.alert_email_to == ("ops@example.com", "oncall@example.com")
    assert settings.report_email_to == ("boss@example.com",)
    assert settings.schedule_start == date(2014, 1, 1)
    assert settings.schedule_end == date(2014, 6, 30)
    assert settings.gate_mode == "dry_run" and settings.sensor_mode == "poke"
    assert settings.gate_margin == 0.05 and settings.scoring_partitions == 4
    assert settings.alert_rules_path == "/etc/nightscore/rules.yaml"
    assert settings.public_airflow_url == "http://airflow.example:8080"
    assert settings.admin_url == "postgres://postgres@db:5432/postgres"
    assert settings.analyst_password == SecretStr("s3cret")
    assert type(settings) is Settings


@pytest.mark.parametrize("value", ["", "none", "None", " NONE "])
def test_schedule_end_can_be_cleared(env, value):
    env["NIGHTSCORE_SCHEDULE_END"] = value
    assert load_settings().schedule_end is None


def test_an_empty_variable_means_the_default(env):
    for variable in env_variables().values():
        env[variable] = "  "
    assert load_settings() == Settings().replace(schedule_end=None)


def test_the_env_file_is_read_and_the_environment_wins(env, tmp_path):
    dotenv = tmp_path / "custom.env"
    dotenv.write_text(
        "NIGHTSCORE_MODEL_NAME=from_file\nNIGHTSCORE_TUNING_TRIALS=3\n"
        "NIGHTSCORE_DEMO_START=2013-02-07\n"  # not a setting: ignored
    )
    env["NIGHTSCORE_ENV_FILE"] = str(dotenv)
    env["NIGHTSCORE_MODEL_NAME"] = "from_env"
    settings = load_settings()
    assert (settings.model_name, settings.tuning_trials) == ("from_env", 3)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NIGHTSCORE_SCORING_PARTITIONS", "two", "expected a whole number"),
        ("NIGHTSCORE_SENSOR_TIMEOUT_S", "1.5", "expected a whole number"),
        ("NIGHTSCORE_GATE_MARGIN", "abc", "expected a number"),
        ("NIGHTSCORE_SCHEDULE_START", "2013-13-01", "expected a date, YYYY-MM-DD"),
        ("NIGHTSCORE_SCHEDULE_END", "31/12/2013", "expected a date, YYYY-MM-DD"),
        ("NIGHTSCORE_GATE_MODE", "dry-run", "expected one of 'enforce' or 'dry_run'"),
        ("NIGHTSCORE_SENSOR_MODE", "wait", "expected one of 'reschedule' or 'poke'"),
        ("NIGHTSCORE_WAREHOUSE_URL", "mysql://x@h/db", "expected a Postgres URL"),
    ],
)
def test_a_bad_value_names_its_variable(env, variable, value, expected):
    env[variable] = value
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert f"{variable}={value!r}: {expected}" in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_every_bad_value_is_named_at_once(env):
    env["NIGHTSCORE_GATE_MARGIN"] = "abc"
    env["NIGHTSCORE_TUNING_TRIALS"] = "many"
    with pytest.raises(SettingsError, match=r"NIGHTSCORE_TUNING_TRIALS='many'.*NIGHTSCORE_GATE"):
        load_settings()


def test_replace_validates():
    settings = Settings(gate_margin=0.02)
    changed = settings.replace(gate_mode="dry_run", alert_email_to="a@example.com")
    assert (changed.gate_mode, changed.gate_margin) == ("dry_run", 0.02)
    assert changed.alert_email_to == ("a@example.com",)
    assert settings.gate_mode == "enforce"
    with pytest.raises(ValidationError):
        settings.replace(gate_mode="sometimes")
    with pytest.raises(ValidationError):
        settings.replace(no_such_setting=1)
    with pytest.raises(ValidationError):
        settings.gate_margin = 0.5  # type: ignore[misc]


SECRETS = ("urlpassword", "adminpassword", "analystpassword")


def secret_settings() -> Settings:
    return Settings(
        warehouse_url="postgresql://nightscore_etl:urlpassword@db:5432/warehouse",
        admin_url="postgresql+psycopg2://postgres@db/postgres?password=adminpassword",
        analyst_password="analystpassword",
    )


def test_secrets_never_print():
    settings = secret_settings()
    for shown in (repr(settings), str(settings), f"{settings}", settings.model_dump_json()):
        assert not any(secret in shown for secret in SECRETS), shown
    assert "postgresql://nightscore_etl:***@db:5432/warehouse" in repr(settings)
    # Callers that need them read them explicitly.
    assert "urlpassword" in settings.warehouse_url
    assert "urlpassword" in settings.warehouse_sqlalchemy_url
    assert settings.analyst_password is not None
    assert settings.analyst_password.get_secret_value() == "analystpassword"


def test_replace_keeps_the_secrets():
    changed = secret_settings().replace(model_name="other")
    assert changed.analyst_password == SecretStr("analystpassword")
    assert "urlpassword" in changed.warehouse_url


def test_a_bad_secret_value_never_prints(env):
    env["NIGHTSCORE_ADMIN_URL"] = "mysql://root:adminpassword@db/x"
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "NIGHTSCORE_ADMIN_URL='mysql://root:***@db/x'" in str(raised.value)
    assert "adminpassword" not in str(raised.value)
    with pytest.raises(ValidationError) as invalid:
        Settings(admin_url="mysql://root:adminpassword@db/x")
    assert "adminpassword" not in str(invalid.value)


def test_the_cli_says_which_setting_is_bad(env, capsys):
    from nightscore.cli import main

    env["NIGHTSCORE_GATE_MARGIN"] = "abc"
    assert main(["alerts", "send"]) == 2
    assert "NIGHTSCORE_GATE_MARGIN='abc': expected a number" in capsys.readouterr().err


def test_production_names_every_empty_link_setting(env):
    env["NIGHTSCORE_ENVIRONMENT"] = "production"
    env["NIGHTSCORE_PUBLIC_MLFLOW_URL"] = "https://mlflow.example"
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert (
        "NIGHTSCORE_PUBLIC_AIRFLOW_URL, NIGHTSCORE_PUBLIC_EVIDENTLY_URL, "
        "NIGHTSCORE_PUBLIC_MAIL_URL must be set" in message
    )
    assert "NIGHTSCORE_PUBLIC_MLFLOW_URL" not in message

    env["NIGHTSCORE_PUBLIC_AIRFLOW_URL"] = "https://airflow.example/"
    env["NIGHTSCORE_PUBLIC_EVIDENTLY_URL"] = "https://evidently.example"
    env["NIGHTSCORE_PUBLIC_MAIL_URL"] = "https://mail.example"
    settings = load_settings()
    assert settings.airflow_link_base == "https://airflow.example"  # no trailing slash


def test_development_falls_back_to_local_addresses(env):
    settings = load_settings()
    assert settings.environment == "development"
    assert settings.airflow_link_base == "http://localhost:8080"
    assert settings.mlflow_link_base == settings.mlflow_tracking_uri.rstrip("/")


def test_a_link_setting_must_be_a_web_address(env):
    env["NIGHTSCORE_PUBLIC_AIRFLOW_URL"] = "file:///srv/reports"
    with pytest.raises(SettingsError, match="NIGHTSCORE_PUBLIC_AIRFLOW_URL='file:///srv/reports'"):
        load_settings()


def test_the_store_areas_follow_the_store_root(env):
    env["NIGHTSCORE_STORE_URL"] = "s3://bucket/prefix/"
    env["NIGHTSCORE_REPORTS_DIR"] = "s3://other/reports"
    settings = load_settings()
    assert settings.landing_root == "s3://bucket/prefix/landing"
    assert settings.data_docs_root == "s3://bucket/prefix/data_docs"
    assert settings.evidently_workspace == "s3://bucket/prefix/evidently"
    assert settings.reports_dir == "s3://other/reports"  # set explicitly: kept
