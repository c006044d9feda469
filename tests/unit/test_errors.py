"""The one error model: real clients' failures are read as the component that is down,
data problems as data, the rest as unknown; `describe` picks the alert, `run_step` the
retry behaviour.

Every infrastructure case is a real exception from a real client aimed at a closed port
(or at a small HTTP server that answers what an overloaded MLflow answers), not a
hand-built one.
"""

from __future__ import annotations

import http.server
import json
import pickle
import smtplib
import socket
import threading
from collections.abc import Iterator

import pytest
from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import create_engine, text

from nightscore import errors, registry
from nightscore.calendar import CalendarError, parse_date
from nightscore.config import Settings, SettingsError
from nightscore.errors import DataError, InfrastructureError, classify, describe
from nightscore.evaluate import EvaluationError
from nightscore.gate import GateError
from nightscore.ingest import BatchMissing, BatchRejected, IngestError
from nightscore.model_files import UnsafeModelError
from nightscore.monitoring.mailer import SmtpConfigError, SmtpSettings, connect
from nightscore.monitoring.monitor_drift import NothingScored
from nightscore.monitoring.report_model import NoScoredFlights
from nightscore.monitoring.rules import RulesError
from nightscore.scoring import ScoringError
from nightscore.store import StoreError
from nightscore.training import TrainingError
from nightscore.warehouse.db import WarehouseError


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raised(fn) -> BaseException:
    with pytest.raises(Exception) as info:  # noqa: PT011: any: the test reads its type
        fn()
    return info.value


@pytest.fixture
def quick_mlflow(monkeypatch):
    """MLflow's client without its retries (7, with backoff: minutes at a closed port)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def mlflow_settings(uri: str) -> Settings:
    return Settings(mlflow_tracking_uri=uri, model_name="errors_test_model")


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 503
    body = b"Service Unavailable"
    content_type = "text/plain"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:  # quiet test output
        pass


@pytest.fixture
def answering_server() -> Iterator:
    """Start a local HTTP server that gives one fixed answer to every GET; yields a function
    (status, body, content_type) -> its base URL."""
    servers = []

    def start(status: int, body: bytes, content_type: str = "text/plain") -> str:
        handler = type(
            "Handler", (_Answer,), {"status": status, "body": body, "content_type": content_type}
        )
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- infrastructure: real clients at a closed port --------------------------------------


# 3.6 s of CPU
@pytest.mark.slow
def test_mlflow_client_at_a_closed_port_is_mlflow_unavailable(quick_mlflow):
    from mlflow import MlflowClient

    # The registry URI is named too: an earlier test in the session may have set one
    # process-wide, and the client would then ask that (answering) server instead.
    uri = f"http://127.0.0.1:{closed_port()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exc = raised(lambda: client.get_model_version_by_alias("m", "champion"))
    assert type(exc).__name__ == "MlflowException"
    found = classify(exc)
    assert isinstance(found, InfrastructureError) and found.component == "mlflow"
    assert str(found).startswith("MLflow unavailable: MlflowException: API request to")


def test_registry_never_reads_an_unreachable_server_as_no_champion(quick_mlflow):
    settings = mlflow_settings(f"http://127.0.0.1:{closed_port()}")
    exc = raised(lambda: registry.load_model(settings))
    assert isinstance(exc, registry.RegistryError), repr(exc)
    assert not isinstance(exc, registry.NoChampionError)
    assert exc.component == "mlflow" and exc.retryable
    # The health check, too, says which component is down.
    health = raised(lambda: registry.check_server(settings, timeout_s=2))
    assert isinstance(health, InfrastructureError) and health.component == "mlflow"


def test_mlflow_answering_503_is_mlflow_unavailable(quick_mlflow, answering_server):
    settings = mlflow_settings(answering_server(503, b"Service Unavailable"))
    exc = raised(lambda: registry.model_version(settings, "champion"))
    assert isinstance(exc, registry.RegistryError), repr(exc)
    assert classify(exc.__cause__).component == "mlflow"


def test_mlflow_server_error_in_json_is_mlflow_unavailable(quick_mlflow, answering_server):
    body = json.dumps({"error_code": "INTERNAL_ERROR", "message": "database is down"})
    settings = mlflow_settings(answering_server(500, body.encode(), "application/json"))
    exc = raised(lambda: registry.model_version(settings, "champion"))
    assert isinstance(exc, registry.RegistryError), repr(exc)


def test_control_a_server_that_answers_no_alias_is_no_champion(quick_mlflow, answering_server):
    """The control: when MLflow answers, "not found" is a data error, not an outage."""
    body = json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "alias not found"})
    settings = mlflow_settings(answering_server(404, body.encode(), "application/json"))
    assert registry.model_version(settings, "champion") is None
    exc = raised(lambda: registry.load_model(settings))
    assert isinstance(exc, registry.NoChampionError) and isinstance(exc, DataError)
    assert describe(exc).rule == "dag_failed"


def test_sqlalchemy_at_a_closed_port_is_the_warehouse():
    engine = create_engine(
        f"postgresql+psycopg2://nobody@127.0.0.1:{closed_port()}/nowhere",
        connect_args={"connect_timeout": 5},
    )
    try:
        exc = raised(lambda: engine.connect().execute(text("SELECT 1")))
    finally:
        engine.dispose()
    assert type(exc).__name__ == "OperationalError"
    found = classify(exc)
    assert isinstance(found, InfrastructureError) and found.component == "warehouse"


def test_smtplib_at_a_closed_port_is_smtp():
    port = closed_port()
    exc = raised(lambda: smtplib.SMTP("127.0.0.1", port, timeout=5))
    assert isinstance(exc, ConnectionRefusedError)  # a bare OSError: read from its traceback
    assert classify(exc).component == "smtp"
    through_mailer = raised(
        lambda: connect(SmtpSettings(host="127.0.0.1", port=port, ssl=False, starttls=False))
    )
    assert classify(through_mailer).component == "smtp"


def test_requests_at_a_closed_port_is_mlflow():
    import requests

    exc = raised(lambda: requests.get(f"http://127.0.0.1:{closed_port()}/health", timeout=5))
    assert classify(exc).component == "mlflow"


def test_a_refused_connection_from_unknown_code_is_unknown():
    """A bare OSError whose traceback names none of the components' clients stays unknown."""
    port = closed_port()
    exc = raised(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
    assert classify(exc) is None


def test_nightscore_infrastructure_errors_name_their_component():
    assert StoreError("cannot read s3://b/k").component == "store"
    assert WarehouseError("cannot set up").component == "warehouse"
    assert registry.RegistryError("down").component == "mlflow"
    assert (
        str(StoreError("cannot read s3://b/k")) == "Object store unavailable: cannot read s3://b/k"
    )


def test_infrastructure_errors_survive_pickling():
    for error in (
        StoreError("gone"),
        registry.RegistryError("down"),
        InfrastructureError("smtp", "x"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert (copy.component, str(copy)) == (error.component, str(error))


# --- data errors, and what is neither ---------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        IngestError("x"),
        BatchRejected("x"),
        BatchMissing("x"),
        TrainingError("x"),
        ScoringError("x"),
        registry.NoChampionError("x"),
        NoScoredFlights("x"),
        NothingScored("x"),
        RulesError("x"),
        SettingsError("x"),
        SmtpConfigError("x"),
        EvaluationError("x"),
        GateError("x"),
        CalendarError("x"),
        UnsafeModelError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_data_problems_are_data_errors(error):
    assert isinstance(error, DataError) and not error.retryable
    assert classify(error) is error


def test_a_bad_date_is_a_data_error_and_still_a_value_error():
    exc = raised(lambda: parse_date("2013-13-01"))
    assert isinstance(exc, DataError) and isinstance(exc, ValueError)


def test_a_plain_value_error_is_unknown():
    """No blanket rule: a ValueError from a library is not declared a data problem."""
    assert classify(ValueError("could not convert string to float")) is None
    assert classify(RuntimeError("boom")) is None


def test_classify_follows_the_cause():
    try:
        try:
            smtplib.SMTP("127.0.0.1", closed_port(), timeout=5)
        except OSError as inner:
            raise RuntimeError("could not send the alert") from inner
    except RuntimeError as outer:
        assert classify(outer).component == "smtp"


# --- describe: the alert of a failed task -----------------------------------------------


def test_describe_an_outage_is_infrastructure_unavailable_naming_the_component(quick_mlflow):
    settings = mlflow_settings(f"http://127.0.0.1:{closed_port()}")
    exc = raised(lambda: registry.load_model(settings))
    rule, component, line = describe(exc)
    assert (rule, component) == ("infrastructure_unavailable", "mlflow")
    assert line.startswith("MLflow unavailable: ") and "\n" not in line


def test_describe_a_data_error_is_a_task_failure_never_infrastructure():
    rule, component, line = describe(BatchRejected("schedule batch rejected: 3 checks\nmore"))
    assert (rule, component, line) == (
        "dag_failed",
        None,
        "BatchRejected: schedule batch rejected: 3 checks",
    )


def test_describe_reads_through_airflows_fail_exception():
    try:
        try:
            raise ScoringError("no version has the alias 'champion'")
        except ScoringError as data:
            raise AirflowFailException(str(data)) from data
    except AirflowFailException as failed:
        assert describe(failed) == ("dag_failed", None, f"ScoringError: {failed}")


def test_describe_unknown_is_a_task_failure():
    assert describe(KeyError("x")) == ("dag_failed", None, "KeyError: 'x'")


def test_the_rule_is_in_the_shipped_alert_rules():
    from nightscore.monitoring.rules import DEFAULT_RULES, load_rules

    rule = load_rules(path=DEFAULT_RULES).get(errors.INFRASTRUCTURE_RULE)
    assert rule is not None and rule.severity == "critical" and rule.metric is None


# --- run_step: the retry behaviour ------------------------------------------------------


def test_run_step_fails_a_data_error_without_retry():
    from nightscore.dagkit import run_step

    def reject():
        raise BatchRejected("schedule batch for 2013-02-12 rejected")

    exc = raised(lambda: run_step(reject))
    assert isinstance(exc, AirflowFailException)
    assert "rejected" in str(exc) and isinstance(exc.__cause__, BatchRejected)


def test_run_step_raises_an_outage_as_the_component_keeping_retries():
    from nightscore.dagkit import run_step

    engine = create_engine(
        f"postgresql+psycopg2://nobody@127.0.0.1:{closed_port()}/nowhere",
        connect_args={"connect_timeout": 5},
    )
    try:
        exc = raised(lambda: run_step(lambda: engine.connect()))
    finally:
        engine.dispose()
    assert not isinstance(exc, AirflowFailException)
    assert isinstance(exc, InfrastructureError) and exc.component == "warehouse"
    assert str(exc).startswith("Warehouse unavailable: OperationalError")
    assert type(exc.__cause__).__name__ == "OperationalError"


def test_run_step_reraises_unknown_errors_unchanged():
    from nightscore.dagkit import run_step

    error = ValueError("a bug, not the data")

    def fail():
        raise error

    assert raised(lambda: run_step(fail)) is error
    assert run_step(lambda: 42) == 42


def test_a_step_that_skips_is_skipped_not_failed():
    """A data error turned into a skip (`measure_drift` on a night with nothing scored)
    stays a skip: the context it was raised in is not read again as a data error."""
    from airflow.sdk.exceptions import AirflowSkipException

    from nightscore.dagkit import run_step

    def skip_when_nothing_scored() -> None:
        try:
            raise NothingScored("nothing was scored for 2013-02-12")
        except NothingScored as exc:
            raise AirflowSkipException(str(exc)) from None

    with pytest.raises(AirflowSkipException):
        run_step(skip_when_nothing_scored)
    # Control: the same data error, not turned into a skip, fails the task at once.
    with pytest.raises(AirflowFailException, match="nothing was scored"):
        run_step(lambda: (_ for _ in ()).throw(NothingScored("nothing was scored")))


def test_an_error_raised_from_none_is_read_on_its_own():
    def hidden() -> None:
        try:
            raise StoreError("cannot write s3://x/y: cannot connect")
        except StoreError:
            raise KeyError("unrelated") from None

    with pytest.raises(KeyError) as raised:
        hidden()
    assert classify(raised.value) is None
    # Control: without `from None` the context is followed.
    try:
        try:
            raise StoreError("cannot write s3://x/y: cannot connect")
        except StoreError:
            raise KeyError("unrelated")  # noqa: B904
    except KeyError as exc:
        assert isinstance(classify(exc), InfrastructureError)
