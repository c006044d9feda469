"""nightscore's one error model: a problem with the data, or with the infrastructure.

- `DataError` (`retryable = False`): the input or the model is wrong, and running again
  gives the same answer (a rejected batch, a model that does not fit). The task fails at
  once, with no retry, and the alert is about the data.
- `InfrastructureError` (`retryable = True`): a component nightscore depends on did not
  answer (the warehouse, the MLflow server, the SMTP server, the object store). The task
  is retried with backoff; when the retries run out, the alert names the component and
  is never a data alert.
- Anything else is unknown and keeps Airflow's retries.

`classify` reads any exception this way, so a raw `OperationalError` from the warehouse
or a refused connection to MLflow becomes an `InfrastructureError` naming its component;
`describe` turns it into the alert rule, the component and one line for a subject.
Imported at DAG parse time: it imports nothing heavy, and recognises the clients'
exceptions by module and name, never by importing them.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, NamedTuple

COMPONENTS = ("warehouse", "mlflow", "smtp", "store")
# How a component is named in an alert's subject.
LABELS = {
    "warehouse": "Warehouse",
    "mlflow": "MLflow",
    "smtp": "SMTP server",
    "store": "Object store",
}
# The alert rules a failed task raises (alert_rules.yaml).
INFRASTRUCTURE_RULE = "infrastructure_unavailable"
FAILURE_RULE = "dag_failed"


class NightscoreError(Exception):
    """The base of every error nightscore raises on purpose."""

    retryable: ClassVar[bool] = False


class DataError(NightscoreError):
    """The data or the model is wrong: retrying gives the same answer."""

    retryable = False


class InfrastructureError(NightscoreError):
    """A component did not answer: retrying may succeed."""

    retryable = True

    def __init__(self, component: str, message: str) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, not {component!r}")
        super().__init__(f"{LABELS[component]} unavailable: {message}")
        self.component = component
        self.detail = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take the message alone; rebuild from the fields, not from `args`.
        return (_rebuild, (type(self), self.component, self.detail))


def _rebuild(cls: type[InfrastructureError], component: str, detail: str) -> InfrastructureError:
    error = cls.__new__(cls)
    InfrastructureError.__init__(error, component, detail)
    return error


class Described(NamedTuple):
    """What an alert about a failed task says: its rule, the component (infrastructure
    only) and one line for the subject."""

    rule: str
    component: str | None
    line: str


def classify(exc: BaseException) -> NightscoreError | None:
    """nightscore's reading of `exc`: itself when it is a `NightscoreError`, an
    `InfrastructureError` naming the component for a known infrastructure failure
    (followed through `__cause__`/`__context__`), None when it is unknown."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NightscoreError):
            return current
        component = _component_of(current)
        if component is not None:
            return InfrastructureError(component, _one_line(current))
        # `raise ... from None` hides the context: the new error stands on its own.
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return None


def describe(exc: BaseException) -> Described:
    """The alert for a task that failed with `exc`: `infrastructure_unavailable` with the
    component for an infrastructure failure, else `dag_failed`. Pure: nothing is sent."""
    found = classify(exc)
    if isinstance(found, InfrastructureError):
        return Described(INFRASTRUCTURE_RULE, found.component, _one_line_of(found))
    return Described(FAILURE_RULE, None, _one_line(found if found is not None else exc))


# --- recognising the clients' exceptions --------------------------------------------------

# Third-party modules by the component they talk to. A bare OSError (a refused
# connection, a DNS failure) is attributed to the outermost of them in its traceback:
# botocore over urllib3 is the store, mlflow over requests is MLflow.
_MODULE_COMPONENTS = (
    (("sqlalchemy", "psycopg2", "psycopg"), "warehouse"),
    (("smtplib",), "smtp"),
    (("mlflow", "requests", "urllib3"), "mlflow"),
    (("fsspec", "s3fs", "botocore", "aiobotocore", "aiohttp", "gcsfs", "adlfs"), "store"),
)
_WAREHOUSE_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError"}
_SMTP_ERRORS = {"SMTPConnectError", "SMTPServerDisconnected", "SMTPHeloError"}
_HTTP_ERRORS = {
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Timeout",
    "RetryError",
    "MaxRetryError",
    "NewConnectionError",
    "ProtocolError",
    "ChunkedEncodingError",
}
# MLflow's client reports transport failures and non-JSON 5xx answers in its message.
_MLFLOW_TRANSPORT = re.compile(r"failed with (timeout )?exception|failed with error code 5\d\d")
# A JSON error from the server itself: its backend store is down or overloaded.
_MLFLOW_SERVER_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
_STORE_ERRORS = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"}


def _component_of(exc: BaseException) -> str | None:
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith(("sqlalchemy", "psycopg")) and name in _WAREHOUSE_ERRORS:
        return "warehouse"
    if module == "smtplib":
        return "smtp" if _smtp_transient(exc, name) else None
    if module.startswith("mlflow") and name in {"MlflowException", "RestException"}:
        return "mlflow" if _mlflow_unavailable(exc, name) else None
    if module.startswith(("requests", "urllib3")):
        if name in _HTTP_ERRORS:
            return "mlflow"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return (
            "mlflow" if name == "HTTPError" and isinstance(status, int) and status >= 500 else None
        )
    if module.startswith(("botocore", "aiobotocore")) and name in _STORE_ERRORS:
        return "store"
    if isinstance(exc, ConnectionError | TimeoutError) or name == "gaierror":
        return _component_in_traceback(exc)
    return None


def _smtp_transient(exc: BaseException, name: str) -> bool:
    """A lost or refused connection, or a 4xx reply (421: service not available)."""
    code = getattr(exc, "smtp_code", None)
    return name in _SMTP_ERRORS or (isinstance(code, int) and 400 <= code < 500)


def _mlflow_unavailable(exc: BaseException, name: str) -> bool:
    if name == "RestException":
        return getattr(exc, "error_code", None) in _MLFLOW_SERVER_CODES
    return bool(_MLFLOW_TRANSPORT.search(str(exc)))


def _component_in_traceback(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        for prefixes, component in _MODULE_COMPONENTS:
            if any(module == p or module.startswith(p + ".") for p in prefixes):
                return component
        tb = tb.tb_next
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def _one_line_of(error: InfrastructureError) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else f"{LABELS[error.component]} unavailable"
