INSERT INTO scoring.runs (service_date, model_name, model_version, mlflow_run_id, threshold,
                          partitions, airflow_run_id)
VALUES (:service_date, :model_name, :model_version, :mlflow_run_id, :threshold, :partitions,
        :airflow_run_id)
RETURNING scoring_run_id
