-- Every scoring run of S, the latest first.
SELECT scoring_run_id, status, rows, model_name, model_version, mlflow_run_id, partitions,
       started_at, finished_at, duration_s, airflow_run_id, split_part(error, E'\n', 1) AS error
FROM scoring.runs
WHERE service_date = :service_date
ORDER BY started_at DESC, scoring_run_id DESC
