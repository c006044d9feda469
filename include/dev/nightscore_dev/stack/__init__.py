"""The local stack behind `make demo` and the end-to-end test, split along its seams:

    paths       where a stack keeps its files; the names of its processes
    ports       the ports it listens on
    processes   pid files, detached start, stop, the health wait
    postgres    a server at hand or an embedded one; databases and URLs
    mlflow      the MLflow tracking server
    airflow     Airflow's environment, `db migrate`, its components
    celery      the CeleryExecutor's broker (Redis) and workers (`make demo EXECUTOR=celery`)
    stack       the whole stack: `up`, `stop`

The names most callers need are here: `from nightscore_dev import stack`, then
`stack.up(...)`, `stack.free_port()`, ...
"""

from nightscore_dev.stack.airflow import (
    ADMIN_USER,
    VIEWER_USER,
    airflow_command,
    api_base_url,
    read_env_file,
    viewer_password,
    write_env_file,
)
from nightscore_dev.stack.celery import task_hosts
from nightscore_dev.stack.mlflow import (
    MLFLOW_START_TIMEOUT_S,
    MlflowAuth,
    mlflow_auth,
    mlflow_base_url,
    mlflow_client_env,
    mlflow_health_url,
    start_mlflow_server,
)
from nightscore_dev.stack.paths import MLFLOW, StatePaths, state_paths
from nightscore_dev.stack.ports import api_port_from_env, free_port
from nightscore_dev.stack.postgres import (
    drop_database,
    embedded_postgres_port,
    ensure_database,
    ensure_postgres,
    redacted,
    stop_embedded_postgres,
)
from nightscore_dev.stack.processes import (
    component_pid,
    running_components,
    stop_processes,
    wait_until,
)
from nightscore_dev.stack.stack import Stack, stop, up

__all__ = [
    "ADMIN_USER",
    "MLFLOW",
    "MLFLOW_START_TIMEOUT_S",
    "VIEWER_USER",
    "MlflowAuth",
    "Stack",
    "StatePaths",
    "airflow_command",
    "api_base_url",
    "api_port_from_env",
    "component_pid",
    "drop_database",
    "embedded_postgres_port",
    "ensure_database",
    "ensure_postgres",
    "free_port",
    "mlflow_auth",
    "mlflow_base_url",
    "mlflow_client_env",
    "mlflow_health_url",
    "read_env_file",
    "redacted",
    "running_components",
    "start_mlflow_server",
    "state_paths",
    "stop",
    "stop_embedded_postgres",
    "stop_processes",
    "task_hosts",
    "up",
    "viewer_password",
    "wait_until",
    "write_env_file",
]
