"""The preload of the tasks' libraries (`nightscore.preload`, through Airflow's local
settings hook in plugins/): in the processes that fork tasks, and only there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nightscore import preload

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
HEAVY = ("great_expectations", "evidently", "mlflow", "xgboost")

# Airflow imports `airflow_local_settings` from its path at start-up; this does the same
# in a fresh Python that believes it is the given Airflow command.
_HOOK = """
import json, sys
sys.argv = ["airflow", *sys.argv[1:]]
sys.path.append({plugins!r})
import airflow_local_settings
print(json.dumps({{
    "heavy": sorted(m for m in {heavy!r} if m in sys.modules),
    "ours": sorted(m for m in sys.modules if m.split(".")[0] == "nightscore"),
}}))
"""


def _hook(*command: str, **env: str) -> tuple[dict, str]:
    code = _HOOK.format(plugins=str(PLUGINS), heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, *command],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


@pytest.mark.parametrize(
    ("argv", "forks"),
    [
        (["airflow", "scheduler"], True),
        (["/venv/bin/airflow", "celery", "worker", "--concurrency", "2"], True),
        (["airflow", "api-server"], False),
        (["airflow", "dag-processor"], False),
        (["airflow", "triggerer"], False),
        (["airflow", "celery", "flower"], False),
        (["airflow", "dags", "test", "nightly_scoring"], False),
        (["airflow"], False),
    ],
)
def test_only_the_processes_that_fork_tasks_preload(argv, forks) -> None:
    assert preload.forks_tasks(argv) is forks


@pytest.mark.slow
def test_the_scheduler_holds_the_libraries_and_none_of_nightscores_modules() -> None:
    found, printed = _hook("scheduler")
    assert found["heavy"] == sorted(HEAVY)
    # Tasks import nightscore fresh from disk: only the hook's own modules stay.
    assert found["ours"] == ["nightscore", "nightscore.preload"]
    assert "nightscore: preloaded great_expectations, evidently, mlflow" in printed


def test_other_processes_and_the_switch_off_import_nothing_heavy() -> None:
    assert _hook("api-server")[0]["heavy"] == []
    # The scheduler with the switch on does preload (the test above): the switch decides.
    assert _hook("scheduler", NIGHTSCORE_PRELOAD="false")[0]["heavy"] == []


def test_a_library_that_cannot_be_imported_is_skipped_with_a_warning(caplog) -> None:
    seconds = preload.preload(("nightscore_no_such_library", "json"))
    assert list(seconds) == ["json"]
    assert "nightscore_no_such_library not preloaded" in caplog.text
