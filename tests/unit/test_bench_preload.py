"""`make bench-preload`'s side-by-side table (benchmarks/preload.py) and what it counts
as a deliberate failure (benchmarks/executors.py)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import executors
        import preload

        yield preload, executors


def side(seconds: float, scoring: float, retrain: float | None = None) -> dict:
    by_dag = {"nightly_scoring": scoring} | ({"retrain": retrain} if retrain else {})
    return {
        "stack_up_s": 50.0,
        "history_s": 80.0,
        "training_s": 48.0,
        "seconds": seconds,
        "total_s": seconds + 178.0,
        "tasks": 40,
        "tasks_per_minute": round(40 / seconds * 60, 1),
        "run_seconds_by_dag": by_dag,
    }


def test_the_table_puts_both_sides_and_how_many_times_faster(bench, capsys) -> None:
    preload, _ = bench
    preload.report(
        side(300.0, 120.0, 70.0), side(150.0, 40.0), date(2013, 2, 10), date(2013, 2, 11)
    )
    printed = capsys.readouterr().out.splitlines()[2:-1]
    lines = {re.split(r"\s{2,}", line.strip())[0]: line for line in printed}
    assert lines["window replayed (s)"].split()[-3:] == ["300.0", "150.0", "2.00x"]
    assert lines["nightly_scoring runs, summed (s)"].split()[-3:] == ["120.0", "40.0", "3.00x"]
    # More tasks per minute is faster too: the ratio is the other way round.
    assert lines["tasks per minute"].split()[-3:] == ["8.0", "16.0", "2.00x"]
    # A DAG that ran on one side only has no ratio.
    assert lines["retrain runs, summed (s)"].split()[-3:] == ["70.0", "-", "-"]


def test_only_a_rejected_batch_is_a_deliberate_failure(bench) -> None:
    _, executors = bench
    run = executors.demo.Run("nightly_scoring", "2013-02-12", "r", {}, state="failed")
    run.failed_tasks = {"validate_schedule_batch": "schedule batch for 2013-02-12 REJECTED: ..."}
    assert executors._rejected(run)
    run.failed_tasks = {"score_partition": "OperationalError: server closed the connection"}
    assert not executors._rejected(run)
    run.failed_tasks = {}  # failed without a task that says why
    assert not executors._rejected(run)
