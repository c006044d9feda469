"""The local stack under the CeleryExecutor (`make demo EXECUTOR=celery`): its ports,
the executor's and each worker's environment, and the worker commands. Nothing starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightscore_dev.cli import build_parser
from nightscore_dev.stack import celery
from nightscore_dev.stack.paths import CELERY_WORKERS, MANAGED, REDIS, StatePaths
from nightscore_dev.stack.ports import Ports, choose_ports, free_port

METADATA = "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow"


def test_the_workers_and_redis_are_managed_components() -> None:
    assert len(CELERY_WORKERS) == 2 and len(set(CELERY_WORKERS)) == 2
    assert {REDIS, *CELERY_WORKERS} <= set(MANAGED)


def test_celery_ports_are_distinct_and_saved(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path).ensure()
    ports = choose_ports(paths, free_port(), celery_workers=len(CELERY_WORKERS), redis=True)
    used = [ports.api, ports.worker_log, ports.trigger_log, ports.mlflow, ports.smtp]
    used += [ports.redis, *ports.celery_logs]
    assert len(ports.celery_logs) == 2 and ports.redis
    assert len(set(used)) == len(used)
    # Without Celery: neither, and the ports file stays readable by the old shape.
    plain = choose_ports(StatePaths(tmp_path / "plain").ensure(), free_port())
    assert plain.redis == 0 and plain.celery_logs == ()


def test_the_executor_env_uses_redis_and_the_metadata_database() -> None:
    env = celery.executor_env(
        {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": METADATA}, "redis://127.0.0.1:6399/0"
    )
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6399/0"
    assert (
        env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/airflow"
    )


def test_an_explicit_redis_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = Ports(8080, 8793, 8794, 5000, redis=6399)
    monkeypatch.delenv(celery.REDIS_URL_VARIABLE, raising=False)
    assert celery.redis_url(ports) == "redis://127.0.0.1:6399/0"
    monkeypatch.setenv(celery.REDIS_URL_VARIABLE, "redis://broker.example:6379/3")
    assert celery.redis_url(ports) == "redis://broker.example:6379/3"


def test_each_worker_has_its_own_log_port_hostname_and_node_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8793"}
    envs = [
        celery.worker_env(base, name, port)
        for name, port in zip(CELERY_WORKERS, (1, 2), strict=True)
    ]
    assert [e["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] for e in envs] == ["1", "2"]
    for name, env in zip(CELERY_WORKERS, envs, strict=True):
        assert (
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "nightscore_dev.stack.celery.worker_hostname"
        )
        monkeypatch.setenv(celery.HOSTNAME_VARIABLE, env[celery.HOSTNAME_VARIABLE])
        assert celery.worker_hostname() == name
        command = celery.worker_command(name)
        assert command[-6:] == [
            "celery",
            "worker",
            "--concurrency",
            "2",
            "--celery-hostname",
            f"{name}@%h",
        ]
    assert base == {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "8793"}  # not changed


def test_the_demo_takes_an_executor() -> None:
    parser = build_parser()
    assert parser.parse_args(["demo"]).executor == "local"
    assert parser.parse_args(["demo", "--executor", "celery"]).executor == "celery"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--executor", "kubernetes"])
    with pytest.raises(RuntimeError, match="unknown executor"):
        celery.check_executor(StatePaths(Path("/nonexistent")), "kubernetes")
