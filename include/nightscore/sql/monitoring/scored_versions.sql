-- The versions of the model that scored the day, the one that scored most first
-- (the champion).
SELECT model_name, model_version, mlflow_run_id, count(*) AS rows
FROM scoring.predictions WHERE service_date = :day AND model_name = :name
GROUP BY model_name, model_version, mlflow_run_id
ORDER BY rows DESC, model_version DESC
