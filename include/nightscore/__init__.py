"""nightscore: an Airflow-orchestrated batch scoring platform.

The package runs and tests without an Airflow scheduler; DAG files are thin wiring
over these modules.
"""

__version__ = "0.1.0"
