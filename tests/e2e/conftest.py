"""The demo stack, once per session: API server, scheduler, DAG processor and triggerer
as separate processes, LocalExecutor, Postgres metadata, mail to the stack's SMTP sink,
with one service date replayed through the real scheduler (`replayed`), whose alerts
reach the sink.

The stack is isolated from `make demo`: its own state folder, API port, log-server
ports and databases (dropped at the end). Everything it starts is stopped, even when a
test fails. Every test of tests/e2e that asks for `replayed` uses the same run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from nightscore_suite import admin_url as suite_admin_url
from sqlalchemy import make_url

from nightscore_dev import demo
from nightscore_dev import stack as local

# The blizzard's first night: its mean risk is far above the reference's (a shift of
# about 0.2 against the 0.08 of score_mean_shift), so the night mails alerts to the sink.
# 2013-02-07 breaches no rule, is no Sunday and loads cleanly: nothing is mailed.
SERVICE_DATE = date(2013, 2, 8)


@dataclass
class Replayed:
    """The stack after SERVICE_DATE went through it: every run the demo triggered."""

    stack: local.Stack
    service_date: date
    runs: list[demo.Run]
    seconds: float  # how long the runs took, from the first trigger


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[local.Stack]:
    state = tmp_path_factory.mktemp("demo_stack") / "state"
    suffix = uuid.uuid4().hex[:8]
    airflow_db, warehouse_db = f"nightscore_e2e_airflow_{suffix}", f"nightscore_e2e_wh_{suffix}"
    mlflow_db = f"nightscore_e2e_mlflow_{suffix}"
    # The same server as the rest of the suite (conftest's admin_url), never the demo's.
    suite_admin = suite_admin_url()
    admin = make_url(suite_admin)
    paths = local.state_paths(state)
    admin_url: str | None = None
    with pytest.MonkeyPatch.context() as monkeypatch:
        # Settings that could point the components at the demo's files.
        monkeypatch.setenv("NIGHTSCORE_LANDING_ROOT", str(state / "landing"))
        monkeypatch.setenv("NIGHTSCORE_DATA_DOCS_ROOT", str(state / "data_docs"))
        monkeypatch.setenv("NIGHTSCORE_ADMIN_URL", suite_admin)
        monkeypatch.setenv(
            "NIGHTSCORE_WAREHOUSE_URL",
            f"postgresql://nightscore_etl@{admin.host}:{admin.port or 5432}/{warehouse_db}",
        )
        try:
            admin_url = local.ensure_postgres(paths)
            yield local.up(
                paths,
                api_port=local.free_port(),
                airflow_db=airflow_db,
                warehouse_db=warehouse_db,
                mlflow_db=mlflow_db,
                mlflow_port=local.free_port(),
            )
        finally:
            local.stop(paths, postgres=False)
            try:
                if admin_url is not None:
                    for name in (airflow_db, warehouse_db, mlflow_db):
                        local.drop_database(admin_url, name)
            finally:
                local.stop_embedded_postgres(paths)


@pytest.fixture(scope="session")
def replayed(stack: local.Stack) -> Replayed:
    """SERVICE_DATE through the scheduler: history, the first champion, then its night
    (replay_source, nightly_scoring, ingest_outcomes, monitoring)."""
    started = time.monotonic()
    # On a busy machine one answer of the API server can take more than the demo's 30 s.
    client = demo.AirflowClient(stack.api_url, local.ADMIN_USER, stack.password, timeout_s=120)
    # 20 minutes on an idle machine of 2 cores; NIGHTSCORE_DEMO_TIMEOUT_S on a busy one.
    deadline = time.monotonic() + float(os.environ.get("NIGHTSCORE_DEMO_TIMEOUT_S") or 20 * 60)
    try:
        demo.wait_for_dags(client, stack.paths)
        for dag_id in demo.DEMO_DAGS:
            client.unpause(dag_id)
        history = demo.bootstrap(client, SERVICE_DATE, deadline)
        trained = demo.train_champion(client, SERVICE_DATE, deadline)
        runs = demo.replay(client, SERVICE_DATE, SERVICE_DATE, deadline)
    finally:
        client.close()
    return Replayed(stack, SERVICE_DATE, [history, trained, *runs], time.monotonic() - started)
