"""The ports one local stack listens on: chosen once, saved, reused while it runs."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from nightscore import config
from nightscore_dev.stack.paths import StatePaths
from nightscore_dev.stack.processes import running_components

DEFAULT_API_PORT = 8080
# Airflow's own defaults; another stack on the box makes us pick free ones instead.
DEFAULT_WORKER_LOG_PORT = 8793
DEFAULT_TRIGGER_LOG_PORT = 8794
DEFAULT_MLFLOW_PORT = 5000
DEFAULT_SMTP_PORT = 1025


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on the port (or holds it bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tcp_answers(host: str, port: int) -> bool:
    """True when something accepts a TCP connection there within a second."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class Ports:
    """The ports one stack listens on: Airflow's, the MLflow server's, the mail sink's;
    under the CeleryExecutor also Redis's (0: none of ours) and each worker's log server."""

    api: int
    worker_log: int
    trigger_log: int
    mlflow: int
    smtp: int = DEFAULT_SMTP_PORT
    redis: int = 0
    celery_logs: tuple[int, ...] = ()


def api_port_from_env() -> int:
    return int(os.environ.get("NIGHTSCORE_AIRFLOW_PORT", "").strip() or DEFAULT_API_PORT)


def mlflow_port_from_env() -> int:
    """The preferred MLflow port: that of NIGHTSCORE_MLFLOW_TRACKING_URI when it is local."""
    uri = urlsplit(config.load_settings().mlflow_tracking_uri)
    if uri.hostname in ("127.0.0.1", "localhost") and uri.port:
        return uri.port
    return DEFAULT_MLFLOW_PORT


def choose_ports(
    paths: StatePaths,
    api_port: int,
    mlflow_port: int = DEFAULT_MLFLOW_PORT,
    *,
    celery_workers: int = 0,
    redis: bool = False,
) -> Ports:
    """Ports for the stack; those of the running components when some run.

    The API port must be free; the others are preferred, and replaced by free ones when taken.
    `celery_workers` log server ports and, with `redis`, a broker port are free ones.
    """
    if paths.ports_file.exists() and running_components(paths):
        saved = json.loads(paths.ports_file.read_text())
        if saved["api"] != api_port:
            raise RuntimeError(
                f"the running Airflow API server uses port {saved['api']}, not {api_port}; "
                "run `make stop` first to change it"
            )
        return Ports(**{**saved, "celery_logs": tuple(saved.get("celery_logs", ()))})
    if port_in_use(api_port):
        raise RuntimeError(
            f"port {api_port} is taken by another program, so the Airflow API server cannot "
            "start; stop that program or set NIGHTSCORE_AIRFLOW_PORT to a free port"
        )
    taken = [api_port]
    for preferred in (
        DEFAULT_WORKER_LOG_PORT,
        DEFAULT_TRIGGER_LOG_PORT,
        mlflow_port,
        DEFAULT_SMTP_PORT,
    ):
        port = _preferred_or_free(preferred, avoid=set(taken))
        while port in taken:  # free_port() may hand out a port chosen just before
            port = free_port()
        taken.append(port)
    for _ in range(celery_workers + int(redis)):
        port = free_port()
        while port in taken:
            port = free_port()
        taken.append(port)
    api, worker_log, trigger_log, mlflow, smtp, *extra = taken
    ports = Ports(
        api,
        worker_log,
        trigger_log,
        mlflow,
        smtp,
        redis=extra[-1] if redis else 0,
        celery_logs=tuple(extra[:celery_workers]),
    )
    paths.ports_file.write_text(json.dumps(asdict(ports)) + "\n")
    return ports


def _preferred_or_free(port: int, avoid: set[int]) -> int:
    return port if port not in avoid and not port_in_use(port) else free_port()


def ensure_port_free(port: int, what: str) -> None:
    """Fail, saying what to do, when another program holds the port `what` needs."""
    if port_in_use(port):
        raise RuntimeError(
            f"port {port} is taken by another program, so {what} cannot start; "
            "run `make stop`, then start again (a free port is chosen then)"
        )
