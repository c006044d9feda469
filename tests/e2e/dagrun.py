"""Run DAGs with `dag.test()` in a fresh process: `python dagrun.py DAG_ID LOGICAL_DATE [CONF]`.

Prints `STATE <dag_id> <state>` and, per task, `TASK <task_id> <state>`. Used by the
end-to-end tests, which set AIRFLOW_HOME and the NIGHTSCORE_* environment first.
"""

import json
import sys
from datetime import datetime

from airflow.utils.cli import get_bagged_dag

dag_id, logical = sys.argv[1], sys.argv[2]
conf = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
dag = get_bagged_dag(None, dag_id)
run = dag.test(logical_date=datetime.fromisoformat(logical), run_conf=conf)
for ti in run.get_task_instances():
    print(f"TASK {ti.task_id} {ti.state}")
print(f"STATE {dag_id} {run.state}")
