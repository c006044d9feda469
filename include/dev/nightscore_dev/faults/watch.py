"""Fire an injection the moment a given task instance is seen running (Airflow's
metadata, polled ten times a second on one connection), like the cluster's killer."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from nightscore import config

SQL = (
    "SELECT run_id, try_number FROM task_instance "
    "WHERE dag_id = %s AND task_id = %s AND run_id = %s AND state = 'running' LIMIT 1"
)


class Watch(threading.Thread):
    """Runs `action` once `dag_id.task_id` of `run_id` runs; `fired_at` is the wall-clock
    time (for comparing with the mail sink's files) when it did, 0 if it never did."""

    def __init__(
        self,
        airflow_db_url: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        action: Callable[[], None],
    ) -> None:
        super().__init__(daemon=True, name=f"watch-{task_id}")
        self.url = airflow_db_url
        self.what = (dag_id, task_id, run_id)
        self.action = action
        self.fired_at = 0.0
        self.try_number = 0
        self.error = ""
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg2

        connection = psycopg2.connect(config.libpq_url(self.url))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    cursor.execute(SQL, self.what)
                    found = cursor.fetchone()
                    if found:
                        self.try_number = int(found[1])
                        break
                    time.sleep(0.1)
        finally:
            connection.close()
        if self.stop.is_set():
            return
        self.fired_at = time.time()
        try:
            self.action()
        except Exception:  # reported by the scenario as a failed injection
            self.error = traceback.format_exc(limit=3)

    def finish(self, timeout_s: float = 300) -> None:
        """Stop watching (if it never fired) and wait for the action to end."""
        self.stop.set()
        self.join(timeout_s)
