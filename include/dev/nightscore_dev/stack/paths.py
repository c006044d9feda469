"""Where one local stack keeps its files, and the names of the processes it runs.

Everything lives under one state folder (`nightscore.config.STATE_DIR`, git-ignored):

    .nightscore/run/       pid files, the ports in use
    .nightscore/logs/      one log per component, task logs under logs/tasks
    .nightscore/airflow/   AIRFLOW_HOME
    .nightscore/mlflow-artifacts/   MLflow's artifacts, which its server stores and serves
    .nightscore/pg/        the embedded Postgres, when no server was at hand
    .nightscore/redis/     the Celery broker's working folder (EXECUTOR=celery; nothing saved)
    .nightscore/secrets.json   generated once: JWT secret, Fernet key, admin password
    .nightscore/postgres.json  generated once: the Postgres roles' passwords (stack/roles.py)

Every function of the stack takes the state folder explicitly, so a test can run a
second, isolated stack next to the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nightscore import config

COMPONENTS = ("scheduler", "dag-processor", "api-server", "triggerer")
# The MLflow tracking server: its name for the pid file and the log.
MLFLOW = "mlflow"
# The local SMTP sink that receives the stack's mail (alerts, reports) into a folder.
MAIL_SINK = "mailsink"
# `make demo EXECUTOR=celery` only: the broker (Redis) and two Celery workers.
REDIS = "redis"
CELERY_WORKERS = ("celery-worker-1", "celery-worker-2")
# Every process the stack manages (Postgres aside).
MANAGED = (*COMPONENTS, MLFLOW, MAIL_SINK, REDIS, *CELERY_WORKERS)


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
