"""Airflow's local settings: every Airflow process imports this module at start-up (the
plugins folder is on its path). It preloads the tasks' heavy libraries into the
processes that fork the tasks (`nightscore.preload`); elsewhere it does nothing."""

import sys

from nightscore.preload import preload_for

# No cluster policies here: Airflow would take any public name for one.
__all__: list[str] = []

preload_for(sys.argv)
