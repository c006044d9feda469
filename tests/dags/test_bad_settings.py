"""A bad NIGHTSCORE_* value gives each DAG file one import error that names the
variable, its value and what is expected: what the Airflow UI shows engineers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Slow: each DAG file imported in a process of its own (9 s of CPU on 2 cores).
pytestmark = pytest.mark.slow

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))

# In a fresh process: this one has imported nightscore.dagkit with good settings.
PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("IMPORT_ERRORS=" + json.dumps(bag.import_errors))
"""


def test_a_bad_setting_is_named_in_every_dag_import_error(tmp_path):
    env = {
        **os.environ,
        "NIGHTSCORE_GATE_MARGIN": "abc",
        "NIGHTSCORE_ENV_FILE": str(tmp_path / "absent.env"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PARSE, str(DAGS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    found = [line for line in out.stdout.splitlines() if line.startswith("IMPORT_ERRORS=")]
    assert found, out.stdout + out.stderr
    errors = json.loads(found[0].removeprefix("IMPORT_ERRORS="))
    assert {Path(name).name for name in errors} == {p.name for p in DAG_FILES}
    for name, error in errors.items():
        last = error.strip().splitlines()[-1]
        assert last.endswith("NIGHTSCORE_GATE_MARGIN='abc': expected a number"), (name, error)
        assert last.startswith("nightscore.config.SettingsError: "), (name, error)
        # One error, not pydantic's dump chained under it.
        assert "validation error" not in error and "above exception" not in error, error
