"""Faults injected into the real services of one stack while real DAG runs need them
(`make test-faults`, `nightscore_dev.faults.check`): the warehouse's Postgres restarted
during a load, the MLflow server killed during `plan_scoring`, the mail sink down for a
whole run, the warehouse down when a task fails, the scheduler SIGKILLed mid-run, the
reports store read-only while reports are written.

It needs root (it mounts a tmpfs and remounts it read-only); CI runs as root.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nightscore_dev.faults.stack import can_run

# Slow: the stack of `make test-faults` (11 min).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEYS = {"faults", "survived", "rows_lost", "duplicates", "alerts_late"}


@pytest.mark.timeout(3600)
def test_every_fault_is_survived_without_loss_duplicates_or_late_alerts() -> None:
    reason = can_run()
    if reason:
        pytest.skip(f"the fault suite {reason}")
    result = subprocess.run(
        [sys.executable, "-m", "nightscore_dev.faults"],
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    output = result.stdout.strip().splitlines()
    assert output, result.stderr[-5000:]
    report = json.loads(output[-1])
    context = "\n".join(output[-40:]) + "\n" + result.stderr[-3000:]
    assert set(report) == KEYS, context
    assert report["faults"] >= 6, context
    assert report["rows_lost"] == 0, context
    assert report["duplicates"] == 0, context
    assert report["alerts_late"] == 0, context
    assert report["survived"] == report["faults"], context
    assert result.returncode == 0, context
