"""The demo's path through the real scheduler twice, without and with the preload of the
tasks' libraries (`nightscore.preload`), side by side.

Each side is the LocalExecutor stack of `make bench-executors` with databases of its
own: the stack started, the history loaded, the first champion trained, then the window
replayed one service date after the other as `make demo` replays it (a rejected batch
fails its run on purpose and is not an error). The reference side runs with
NIGHTSCORE_PRELOAD=false (every task imports its own libraries), the other with the
preload on. Both sides run one after the other on the same machine.

Run with `make bench-preload` (ARGS="--start 2013-02-07 --end 2013-02-13" for the demo's
whole window). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from executors import END, START, local_executor
from harness import say

ROWS = (
    ("stack_up_s", "stack started (s)"),
    ("history_s", "load_history run (s)"),
    ("training_s", "first retrain run (s)"),
    ("seconds", "window replayed (s)"),
    ("total_s", "all of it (s)"),
    ("tasks", "tasks in the window"),
    ("tasks_per_minute", "tasks per minute"),
)


def side(root: Path, preload: bool, start: date, end: date) -> dict[str, Any]:
    os.environ["NIGHTSCORE_PRELOAD"] = "true" if preload else "false"
    say(f"== NIGHTSCORE_PRELOAD={os.environ['NIGHTSCORE_PRELOAD']}")
    return local_executor(root / ("preload" if preload else "reference"), start, end)


def report(reference: dict[str, Any], preloaded: dict[str, Any], start: date, end: date) -> None:
    say("")
    say(f"{str(start) + ' to ' + str(end):<34}{'reference':>12}{'preload':>12}{'ratio':>8}")
    dags = dict.fromkeys([*reference["run_seconds_by_dag"], *preloaded["run_seconds_by_dag"]])
    rows = [*ROWS, *((f"run_seconds_by_dag.{d}", f"  {d} runs, summed (s)") for d in dags)]
    for key, label in rows:
        ref, mine = _get(reference, key), _get(preloaded, key)
        say(f"  {label:<32}{ref:>12}{mine:>12}{_ratio(key, ref, mine):>8}")
    say("(ratio: how many times faster with the preload)")


def _ratio(key: str, ref: Any, mine: Any) -> str:
    """How many times faster the preload side is; "-" unless both sides have a number."""
    if not all(isinstance(v, int | float) and v > 0 for v in (ref, mine)):
        return "-"
    return f"{mine / ref:.2f}x" if key == "tasks_per_minute" else f"{ref / mine:.2f}x"


def _get(result: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        result = result.get(part, {}) if isinstance(result, dict) else {}
    return result if result != {} else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=START)
    parser.add_argument("--end", type=date.fromisoformat, default=END)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nightscore-bench-preload-") as tmp:
        reference = side(Path(tmp), False, args.start, args.end)
        preloaded = side(Path(tmp), True, args.start, args.end)
    report(reference, preloaded, args.start, args.end)
    print(
        json.dumps(
            {"start": str(args.start), "end": str(args.end)}
            | {"reference": reference, "preload": preloaded}
        )
    )


if __name__ == "__main__":
    main()
