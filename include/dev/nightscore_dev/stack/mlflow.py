"""The stack's MLflow tracking server: its command line and environment, and its start
as a detached process of the stack (tests start theirs the same way)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nightscore import config
from nightscore_dev.stack.paths import MLFLOW, StatePaths
from nightscore_dev.stack.ports import ensure_port_free
from nightscore_dev.stack.processes import component_pid, start_detached
from nightscore_dev.stack.roles import own_database, role_password, without_superuser

MLFLOW_HOST = "127.0.0.1"
# `mlflow server` start is mostly imports, in two processes one after the other (the CLI,
# then its uvicorn worker): ~22 s of CPU, 25-60 s to a healthy server on the 2-core box
# beside other work. The first start on an empty database adds its migrations: ~3 s.
MLFLOW_START_TIMEOUT_S = 300


def mlflow_base_url(port: int) -> str:
    """The tracking URI of an MLflow server of ours; its UI is at the same address."""
    return f"http://{MLFLOW_HOST}:{port}"


def mlflow_health_url(base_url: str) -> str:
    """What answers 200 once the server at `base_url` serves (see processes.wait_until)."""
    return f"{base_url}/health"


def mlflow_server_command(
    *, port: int, artifacts_destination: Path, host: str = MLFLOW_HOST, workers: int = 1
) -> list[str]:
    """The `mlflow server` command line, without the backend store (see mlflow_server_env).

    The server stores artifacts in `artifacts_destination` and serves them over HTTP
    (mlflow-artifacts:/ URIs), so clients need the tracking URI only, no shared folder.
    One uvicorn worker: a 2-core box, and a handful of clients.
    """
    script = Path(sys.executable).with_name("mlflow")
    mlflow = [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]
    return [
        *mlflow,
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--serve-artifacts",
        "--artifacts-destination",
        str(Path(artifacts_destination).resolve()),
    ]


def mlflow_server_env(backend_store_uri: str) -> dict[str, str]:
    """The whole environment of an `mlflow server` process.

    The caller's MLFLOW_* variables are left out: some are options of `mlflow server`
    (MLFLOW_DEFAULT_ARTIFACT_ROOT, MLFLOW_REGISTRY_STORE_URI, ...) that would change it.
    The backend store goes in the environment, not the command line that `ps` shows.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env.update(
        {
            "MLFLOW_BACKEND_STORE_URI": backend_store_uri,
            # The job runner serves GenAI features (scorers, trace rollups) that we do not
            # use; it costs eight more processes and ~500 MB.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # Usage telemetry: no internet here, and nothing to report.
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def start_mlflow_server(
    paths: StatePaths, admin_url: str, port: int, database: str = "mlflow"
) -> tuple[int, bool]:
    """Start the stack's MLflow server detached; (pid, started) — not started if it runs.

    Its backend store is the `database` on the admin's server, created when missing and
    reached as its own role (`roles.own_database`; the first start on an empty database
    creates MLflow's tables: its Alembic migrations);
    its artifacts go to `paths.mlflow_artifacts`. It does not wait for the server
    (`wait_until(mlflow_health_url(...))` does). Stop it by signalling its process group
    (`stop_processes`): it runs a uvicorn child.
    """
    pid = component_pid(paths, MLFLOW)
    if pid is not None:
        return pid, False
    ensure_port_free(port, "the MLflow server")
    backend = own_database(admin_url, database, role_password(paths, database))
    paths.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    command = mlflow_server_command(port=port, artifacts_destination=paths.mlflow_artifacts)
    env = without_superuser(mlflow_server_env(config.sqlalchemy_url(backend)))
    return start_detached(paths, MLFLOW, command, env)
