"""The local stack's logins: the MLflow server's, generated once into the state folder and
handed to the tasks; and the Airflow UI's admin and read-only viewer."""

from __future__ import annotations

import json
import stat

from nightscore_dev.stack.airflow import airflow_env, write_passwords_file
from nightscore_dev.stack.mlflow import (
    mlflow_auth,
    mlflow_client_env,
    mlflow_server_command,
    mlflow_server_env,
)
from nightscore_dev.stack.paths import state_paths
from nightscore_dev.stack.ports import Ports


def test_the_mlflow_login_is_generated_once_and_kept_private(tmp_path):
    paths = state_paths(tmp_path)
    first, again = mlflow_auth(paths), mlflow_auth(paths)
    assert first == again  # the same login at every start
    assert first.username == "admin" and len(first.password) >= 12  # MLflow's minimum
    credentials = first.folder / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.folder.stat().st_mode) == 0o700
    # Another state folder, another login.
    assert mlflow_auth(state_paths(tmp_path / "other")).password != first.password


def test_the_server_runs_the_basic_auth_app_with_its_admin_from_the_environment(tmp_path):
    auth = mlflow_auth(state_paths(tmp_path))
    command = mlflow_server_command(port=5999, artifacts_destination=tmp_path / "artifacts")
    assert command[command.index("--app-name") + 1] == "basic-auth"
    assert auth.password not in " ".join(command)  # `ps` shows the command line
    env = mlflow_server_env("postgresql://mlflow@127.0.0.1/mlflow", auth)
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == auth.password
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(auth.config_file)
    config = auth.config_file.read_text()
    assert "default_permission = READ" in config and auth.database_uri in config
    assert auth.password not in config
    # The users' database is not below the artifacts the server serves.
    assert "mlflow-artifacts" not in auth.database_uri


def test_tasks_get_the_mlflow_login_and_the_ui_has_a_read_only_viewer(tmp_path):
    paths = state_paths(tmp_path)
    env = airflow_env(
        paths,
        airflow_db_url="postgresql://airflow:secret@127.0.0.1:5432/airflow",
        warehouse_url="postgresql://nightscore_etl@127.0.0.1:5432/warehouse",
        ports=Ports(8080, 8793, 8794, 5000),
    )
    assert {k: env[k] for k in mlflow_client_env(mlflow_auth(paths))} == mlflow_client_env(
        mlflow_auth(paths)
    )
    users = dict(u.split(":") for u in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(","))
    assert users == {"admin": "admin", "viewer": "viewer"}
    passwords = json.loads(write_passwords_file(paths).read_text())
    assert set(passwords) == {"admin", "viewer"} and passwords["admin"] != passwords["viewer"]
