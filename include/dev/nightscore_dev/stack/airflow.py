"""The stack's Airflow: its secrets and environment, `airflow db migrate`, and its four
components (scheduler, DAG processor, API server, triggerer), each a detached process."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from nightscore import config
from nightscore_dev.stack.mlflow import mlflow_auth, mlflow_base_url, mlflow_client_env
from nightscore_dev.stack.paths import COMPONENTS, StatePaths
from nightscore_dev.stack.ports import Ports
from nightscore_dev.stack.processes import component_pid, run_logged, start_detached, wait_until
from nightscore_dev.stack.roles import without_superuser

ADMIN_USER = "admin"
# A read-only user (SimpleAuthManager's viewer role), as stakeholders would have.
VIEWER_USER = "viewer"
API_START_TIMEOUT_S = 180


def load_secrets(paths: StatePaths) -> dict[str, str]:
    """Secrets generated once per state folder and shared by every component."""
    stored: dict[str, str] = {}
    if paths.secrets_file.exists():
        stored = json.loads(paths.secrets_file.read_text())
    wanted = {
        # Every component must sign and check the same JWTs, or tasks cannot talk to the
        # execution API and users' tokens fail on the second process.
        "jwt_secret": lambda: secrets.token_urlsafe(64),  # HS512 wants >= 64 bytes
        "api_secret_key": lambda: secrets.token_urlsafe(32),
        "fernet_key": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "admin_password": lambda: secrets.token_urlsafe(12),
        "viewer_password": lambda: secrets.token_urlsafe(12),
    }
    missing = {key: make() for key, make in wanted.items() if key not in stored}
    if missing:
        stored.update(missing)
        paths.secrets_file.touch(mode=0o600)
        paths.secrets_file.write_text(json.dumps(stored, indent=2) + "\n")
    return stored


def admin_password(paths: StatePaths) -> str:
    """The UI password of `admin`: NIGHTSCORE_AIRFLOW_PASSWORD, or the generated one."""
    return (
        os.environ.get("NIGHTSCORE_AIRFLOW_PASSWORD", "").strip()
        or load_secrets(paths)["admin_password"]
    )


def viewer_password(paths: StatePaths) -> str:
    """The UI password of `viewer` (read-only), generated once into the state folder."""
    return load_secrets(paths)["viewer_password"]


def write_passwords_file(paths: StatePaths) -> Path:
    """SimpleAuthManager reads {"user": "password"} from this file at every login."""
    passwords = {ADMIN_USER: admin_password(paths), VIEWER_USER: viewer_password(paths)}
    paths.passwords_file.touch(mode=0o600)
    paths.passwords_file.write_text(json.dumps(passwords) + "\n")
    return paths.passwords_file


def env_file(paths: StatePaths) -> Path:
    return paths.root / "airflow.env"


def write_env_file(paths: StatePaths, env: Mapping[str, str]) -> Path:
    """Save the stack's environment, so `nightscore-dev airflow ...` reaches the same Airflow.

    It holds the generated secrets, so only its owner may read it.
    """
    path = env_file(paths)
    path.touch(mode=0o600)
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))
    return path


def read_env_file(paths: StatePaths) -> dict[str, str]:
    """The environment the stack was last started with; empty if it never was."""
    path = env_file(paths)
    if not path.is_file():
        return {}
    pairs = (shlex.split(line)[0].split("=", 1) for line in path.read_text().splitlines() if line)
    return {k: v for k, v in pairs}


def api_base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of an Airflow process: ours (`env`) on top of this process's,
    without the superuser's URLs."""
    return {**without_superuser(), **env}


def airflow_env(
    paths: StatePaths,
    *,
    airflow_db_url: str,
    warehouse_url: str,
    ports: Ports,
    dags_folder: Path | None = None,
) -> dict[str, str]:
    """The environment every Airflow process of the stack runs with.

    It holds only what we set; start processes with `process_env(airflow_env(...))`.
    `airflow_db_url` is Airflow's own role on its metadata database; `warehouse_url` the
    ETL role's. No superuser URL: the tasks need none.
    """
    store = load_secrets(paths)
    api = api_base_url(ports.api)
    tracking_uri = mlflow_base_url(ports.mlflow)
    env = {k: v for k, v in without_superuser().items() if k.startswith("NIGHTSCORE_")}
    # The replay lands a batch seconds before the sensors look: poke often, and give up
    # after minutes rather than the production hours. Explicit settings still win.
    env.setdefault("NIGHTSCORE_SENSOR_POKE_S", "2")
    env.setdefault("NIGHTSCORE_SENSOR_TIMEOUT_S", "900")
    env.setdefault("NIGHTSCORE_RETRY_DELAY_S", "10")
    # Pokes seconds apart in reschedule mode trip apache/airflow#71172 (a late executor
    # event fails the sensor); a sensor that holds its slot for seconds does not.
    env.setdefault("NIGHTSCORE_SENSOR_MODE", "poke")
    # A demo-sized tuning budget: the first champion trains in about a minute.
    env.setdefault("NIGHTSCORE_TUNING_TRIALS", "4")
    env.setdefault("NIGHTSCORE_TUNING_TIMEOUT_S", "60")
    # Mail goes to the stack's sink (see `smtp`), so alerts and reports have recipients.
    env.setdefault("NIGHTSCORE_ALERT_EMAIL_TO", "oncall@nightscore.example")
    env.setdefault("NIGHTSCORE_REPORT_EMAIL_TO", "stakeholders@nightscore.example")
    env.setdefault("NIGHTSCORE_PUBLIC_AIRFLOW_URL", api)
    # The UI shows the sink's mail at /nightscore/mail ("Mail" in its navigation).
    env.setdefault("NIGHTSCORE_MAIL_DIR", str(paths.mail))
    env.update(
        {
            "NIGHTSCORE_STATE_DIR": str(paths.root),
            "NIGHTSCORE_WAREHOUSE_URL": warehouse_url,
            # The project's .env may hold the superuser URL: tasks must not read it. What
            # they need of it is in this environment already (NIGHTSCORE_* above).
            "NIGHTSCORE_ENV_FILE": os.devnull,
            # The stack's own MLflow server, whatever the setting said (its port is free).
            "NIGHTSCORE_MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_TRACKING_URI": tracking_uri,
            # Its login (MLflow's basic-auth app), generated into the state folder.
            **mlflow_client_env(mlflow_auth(paths)),
            # Download progress bars fill task logs with carriage-return lines.
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": os.environ.get(
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
            ),
            # MLflow's telemetry (as in the image): with no internet its config thread
            # gives up and pops a variable from os.environ while the task's first request
            # iterates it, failing that request with KeyError '_MLFLOW_TELEMETRY_SESSION_ID'.
            "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
            "AIRFLOW_HOME": str(paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or config.PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(config.PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": store["fernet_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": config.sqlalchemy_url(airflow_db_url),
            # A small box: each process keeps a few connections, not the default 15.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
            # Two cores: LocalExecutor forks `parallelism` workers up front. Four covers a
            # night (two landings, two validations); sensors reschedule, holding no slot.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
            "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "4",
            # New DAG files show within ~10 s (listing) plus a parse; edits within ~30 s.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
            # The scheduler loops straight on when it did something; when idle, only
            # briefly: each step of a run waits for a loop, so this is per-task latency.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ports.api),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__SECRET_KEY": store["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": store["jwt_secret"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{VIEWER_USER}:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords_file),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(paths.logs / "tasks"),
            "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY": str(
                paths.logs / "dag_processor"
            ),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports.worker_log),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports.trigger_log),
            "AIRFLOW_CONN_WAREHOUSE_DB": warehouse_url,
            # The stack's mail sink, unless the environment names another SMTP server.
            "AIRFLOW_CONN_SMTP_DEFAULT": os.environ.get(
                "AIRFLOW_CONN_SMTP_DEFAULT",
                f"smtp://127.0.0.1:{ports.smtp}?disable_ssl=true&disable_tls=true"
                "&from_email=nightscore%40nightscore.example",
            ),
        }
    )
    return env


def airflow_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("airflow")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "airflow", *args]


def airflow_db_migrate(paths: StatePaths, env: Mapping[str, str]) -> None:
    """Create or upgrade Airflow's metadata tables."""
    run_logged(
        airflow_command("db", "migrate"),
        process_env(env),
        paths.log("airflow-db-migrate"),
        what="airflow db migrate",
    )


def start_components(
    paths: StatePaths, env: Mapping[str, str], names: Iterable[str] = COMPONENTS
) -> dict[str, int]:
    """Start the components that do not run yet; print one line each."""
    pids = {}
    for name in names:
        pid, started = start_detached(paths, name, airflow_command(name), process_env(env))
        state = "started" if started else "already running"
        print(f"  {name:<14} {state} (pid {pid}), log: {paths.log(name)}", flush=True)
        pids[name] = pid
    return pids


def wait_for_api(paths: StatePaths, port: int, timeout_s: float = API_START_TIMEOUT_S) -> float:
    """Wait until the API server answers its health endpoint; return the seconds waited."""
    return wait_until(
        f"{api_base_url(port)}/api/v2/monitor/health",
        timeout_s=timeout_s,
        log=paths.log("api-server"),
        alive=lambda: component_pid(paths, "api-server") is not None,
        what="the Airflow API server",
    )
