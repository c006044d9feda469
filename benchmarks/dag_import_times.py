"""How long each DAG file takes to import, as the DAG processor pays it.

Each file is imported in a fresh interpreter, after `airflow.sdk` (which every DAG
processor has loaded already, and is the reference printed beside it). Run with
`make bench-dag-imports`. The last line is JSON.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1] / "dags"
PROBE = """
import sys, time, runpy
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
runpy.run_path(sys.argv[1])
t2 = time.perf_counter()
print(f"TIMES {t1 - t0:.4f} {t2 - t1:.4f}")
"""


def measure(path: Path, repeats: int) -> tuple[float, float]:
    sdk, own = [], []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True
        ).stdout
        line = next(x for x in out.splitlines() if x.startswith("TIMES "))
        a, b = (float(v) for v in line.split()[1:])
        sdk.append(a)
        own.append(b)
    return statistics.median(sdk), statistics.median(own)


def main(repeats: int = 3) -> None:
    results = {}
    print(f"{'DAG file':<24}{'own import (s)':>16}{'airflow.sdk (s)':>17}{'ratio':>8}")
    for path in sorted(DAGS.glob("*.py")):
        sdk, own = measure(path, repeats)
        results[path.name] = round(own, 4)
        print(f"{path.name:<24}{own:>16.3f}{sdk:>17.3f}{own / sdk:>8.2f}")
    print(json.dumps({"repeats": repeats, "own_import_s": results, "max_s": max(results.values())}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
