"""The production topology, run for real (`make test-distributed`): the scheduler, DAG
processor, API server and triggerer on one host, two Celery workers on hosts of their own
(network namespaces, private files), Redis, Postgres with a role per component, an S3
store, MLflow; two service dates replayed, a worker killed mid-`score_partition`, every
stored or mailed link fetched from a third host. See `nightscore_dev.cluster.check`.

It needs root (network namespaces); CI runs as root.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nightscore_dev.cluster.network import can_build

# Slow: the cluster of `make test-distributed` (13 min).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEYS = {
    "worker_hosts_used",
    "tasks",
    "failed_tasks",
    "duplicate_predictions",
    "worker_killed_recovered",
    "links_total",
    "links_ok",
    "seconds",
}


@pytest.mark.timeout(3600)
def test_two_nights_on_celery_workers_on_their_own_hosts() -> None:
    reason = can_build()
    if reason:
        pytest.skip(f"the cluster {reason}")
    result = subprocess.run(
        [sys.executable, "-m", "nightscore_dev.cluster"],
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    output = result.stdout.strip().splitlines()
    assert output, result.stderr[-5000:]
    report = json.loads(output[-1])
    context = "\n".join(output[-60:]) + "\n" + result.stderr[-3000:]
    assert set(report) == KEYS, context
    assert report["worker_hosts_used"] == 2, context
    assert report["tasks"] > 20, context
    assert report["failed_tasks"] == 0, context
    assert report["duplicate_predictions"] == 0, context
    assert report["worker_killed_recovered"] is True, context
    assert report["links_total"] > 0, context
    assert report["links_ok"] == report["links_total"], context
    assert result.returncode == 0, context
