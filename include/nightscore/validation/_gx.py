"""Import Great Expectations quietly: no analytics, no INFO floods, no progress bars."""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any


def import_gx() -> ModuleType:
    """Import great_expectations (a few seconds the first time) with its noise turned down."""
    # Read by GX when a context is created; set before the import to be safe.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Before the import too: GX logs a few dozen INFO lines while it loads.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    _quiet_loggers()
    return gx


def ephemeral_context() -> Any:
    """A fresh in-memory GX context: holds one batch's suites and results, nothing else."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # tqdm bars ("Calculating Metrics") would otherwise fill the Airflow task logs.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _quiet_loggers() -> None:
    # Some GX modules set their own logger to INFO at import, so the parent's level alone
    # is not enough: lift every GX logger that was set below WARNING.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (
            name.startswith("great_expectations.")
            and isinstance(logger, logging.Logger)
            and logging.NOTSET < logger.level < logging.WARNING
        ):
            logger.setLevel(logging.WARNING)
