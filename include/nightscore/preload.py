"""Preload the heavy libraries of the tasks into the Airflow process that forks them.

Airflow runs each task in a child forked from the process that executes tasks: the
scheduler under the LocalExecutor, the Celery worker under the CeleryExecutor. A child
starts with whatever that process had imported. The tasks import Great Expectations
(about 6 s), Evidently (about 6 s), MLflow, XGBoost and pandas inside their bodies, so
every task paid those seconds again; preloaded, they cost one import when the process
starts and nothing per task.

Only third-party libraries are preloaded. nightscore's own modules stay out of the
forking process, so a task always runs the code on disk, never a copy as old as the
scheduler. `plugins/airflow_local_settings.py` calls `preload_for(sys.argv)` in every
Airflow process; it acts in the two that fork tasks, unless NIGHTSCORE_PRELOAD=false.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

# The tasks' third-party imports, the slow ones first. scikit-learn comes with XGBoost.
LIBRARIES = (
    "great_expectations",
    "evidently",
    "mlflow",
    "xgboost",
    "pandas",
    "pyarrow.parquet",
    "sqlalchemy",
    "psycopg2",
    "numba",
)
OFF = {"0", "false", "no", "off"}
_preloaded: dict[str, float] = {}


def forks_tasks(argv: Sequence[str]) -> bool:
    """Whether this Airflow command is a process that forks task runs."""
    args = list(argv[1:])
    return args[:1] == ["scheduler"] or args[:2] == ["celery", "worker"]


def enabled() -> bool:
    return os.environ.get("NIGHTSCORE_PRELOAD", "").strip().lower() not in OFF


def preload(libraries: Sequence[str] = LIBRARIES) -> dict[str, float]:
    """Import the libraries; the seconds each took. One that fails is logged and skipped:
    a task that needs it then fails with its own, clearer error."""
    ours_before = {name for name in sys.modules if _is_ours(name)}
    from nightscore.validation._gx import import_gx  # GX without its analytics and INFO flood

    seconds: dict[str, float] = {}
    for name in libraries:
        started = time.perf_counter()
        try:
            import_gx() if name == "great_expectations" else __import__(name)
        except Exception as exc:  # a missing extra must not stop the scheduler
            log.warning("nightscore preload: %s not preloaded: %s", name, exc)
            continue
        seconds[name] = time.perf_counter() - started
    # Drop what this imported of nightscore itself: tasks import it fresh from disk.
    for name in [name for name in sys.modules if _is_ours(name) and name not in ours_before]:
        del sys.modules[name]
    return seconds


def preload_for(argv: Sequence[str]) -> dict[str, float]:
    """Preload when this process forks tasks and the switch is on; what was preloaded."""
    if not (forks_tasks(argv) and enabled()) or _preloaded:
        return dict(_preloaded)  # Airflow's plugin loader may import the hook twice
    started = time.perf_counter()
    seconds = preload()
    _preloaded.update(seconds)
    # Printed, not only logged: the scheduler's log file shows it before logging is set up.
    print(
        f"nightscore: preloaded {', '.join(seconds)} for the tasks this process forks "
        f"({time.perf_counter() - started:.1f} s); NIGHTSCORE_PRELOAD=false turns it off",
        flush=True,
    )
    return seconds


def _is_ours(name: str) -> bool:
    return name == "nightscore" or name.startswith("nightscore.")
