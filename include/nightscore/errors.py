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
or a refused connection to MLflow becomes an `InfrastructureError` naming its component.
Imported at DAG parse time: it imports nothing heavy.
"""

from __future__ import annotations

from typing import ClassVar

COMPONENTS = ("warehouse", "mlflow", "smtp", "store")


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
        super().__init__(f"{component} unavailable: {message}")
        self.component = component


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
        current = current.__cause__ or current.__context__
    return None


def _component_of(exc: BaseException) -> str | None:
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if module.startswith(("sqlalchemy", "psycopg2")) and name in {
        "OperationalError",
        "InterfaceError",
        "DisconnectionError",
    }:
        return "warehouse"
    if module.startswith("smtplib") or name.startswith("SMTP"):
        return "smtp"
    if module.startswith(("requests", "urllib3")) and "Connection" in name:
        return "mlflow"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()
