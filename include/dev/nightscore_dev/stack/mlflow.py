"""The stack's MLflow tracking server: its command line and environment, its login, and
its start as a detached process of the stack (tests start theirs the same way).

The server runs MLflow's basic-auth app (`--app-name basic-auth`): every request but
/health needs a user and password, anonymous ones get 401. Its credentials are generated
once per state folder into `mlflow-auth/credentials.json` (owner-only), beside the auth
config and the auth database (SQLite: a handful of users). The first start creates the
admin user from them; tasks, the CLI and the tests log in as it through
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (`mlflow_client_env`).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
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


MLFLOW_ADMIN_USER = "admin"


@dataclass(frozen=True)
class MlflowAuth:
    """The login of one stack's MLflow server, and where its auth app keeps its files."""

    folder: Path
    username: str
    password: str
    secret_key: str  # Flask's CSRF key: every worker of the server must share it

    @property
    def config_file(self) -> Path:
        return self.folder / "basic_auth.ini"

    @property
    def database_uri(self) -> str:
        return f"sqlite:///{(self.folder / 'basic_auth.db').resolve()}"


def mlflow_auth(paths: StatePaths) -> MlflowAuth:
    """The stack's MLflow login, generated once into the state folder (owner-only files)."""
    folder = paths.root / "mlflow-auth"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    file = folder / "credentials.json"
    stored: dict[str, str] = json.loads(file.read_text()) if file.exists() else {}
    wanted = {
        "username": lambda: MLFLOW_ADMIN_USER,
        # MLflow refuses passwords under 12 characters; 24 URL-safe ones here.
        "password": lambda: secrets.token_urlsafe(18),
        "secret_key": lambda: secrets.token_urlsafe(32),
    }
    missing = {key: make() for key, make in wanted.items() if key not in stored}
    if missing:
        stored.update(missing)
        file.touch(mode=0o600)
        file.write_text(json.dumps(stored, indent=2) + "\n")
    auth = MlflowAuth(folder, stored["username"], stored["password"], stored["secret_key"])
    _write_auth_config(auth)
    return auth


def _write_auth_config(auth: MlflowAuth) -> None:
    """MLflow's basic_auth.ini: READ for any logged-in user, the users in SQLite. The admin's
    name and password go in the server's environment, not in this file."""
    auth.config_file.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {auth.database_uri}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def mlflow_client_env(auth: MlflowAuth) -> dict[str, str]:
    """What an MLflow client (a task, the CLI, a test) needs to log in to the server."""
    return {"MLFLOW_TRACKING_USERNAME": auth.username, "MLFLOW_TRACKING_PASSWORD": auth.password}


def mlflow_server_command(
    *, port: int, artifacts_destination: Path, host: str = MLFLOW_HOST, workers: int = 1
) -> list[str]:
    """The `mlflow server` command line, without the backend store (see mlflow_server_env).

    The server stores artifacts in `artifacts_destination` and serves them over HTTP
    (mlflow-artifacts:/ URIs), so clients need the tracking URI only, no shared folder.
    One uvicorn worker: a 2-core box, and a handful of clients. MLflow's basic-auth app
    asks every request but /health for a login (see `mlflow_server_env`).
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
        "--app-name",
        "basic-auth",
        "--workers",
        str(workers),
        "--serve-artifacts",
        "--artifacts-destination",
        str(Path(artifacts_destination).resolve()),
    ]


def mlflow_server_env(backend_store_uri: str, auth: MlflowAuth) -> dict[str, str]:
    """The whole environment of an `mlflow server` process.

    The caller's MLFLOW_* variables are left out: some are options of `mlflow server`
    (MLFLOW_DEFAULT_ARTIFACT_ROOT, MLFLOW_REGISTRY_STORE_URI, ...) that would change it.
    The backend store and the admin's password go in the environment, not the command
    line that `ps` shows. The admin user is created at the first start only: later
    changes of its password go through MLflow's API (`mlflow.server.auth.client`).
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
            "MLFLOW_AUTH_CONFIG_PATH": str(auth.config_file),
            "MLFLOW_AUTH_ADMIN_USERNAME": auth.username,
            "MLFLOW_AUTH_ADMIN_PASSWORD": auth.password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": auth.secret_key,
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
    (`wait_until(mlflow_health_url(...))` does); clients log in with
    `mlflow_client_env(mlflow_auth(paths))`. Stop it by signalling its process group
    (`stop_processes`): it runs a uvicorn child.
    """
    pid = component_pid(paths, MLFLOW)
    if pid is not None:
        return pid, False
    ensure_port_free(port, "the MLflow server")
    backend = own_database(admin_url, database, role_password(paths, database))
    paths.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    command = mlflow_server_command(port=port, artifacts_destination=paths.mlflow_artifacts)
    env = without_superuser(mlflow_server_env(config.sqlalchemy_url(backend), mlflow_auth(paths)))
    return start_detached(paths, MLFLOW, command, env)
