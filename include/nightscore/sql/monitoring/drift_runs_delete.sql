-- Forget the day's drift run of one model version before it is written again.
DELETE FROM monitoring.drift_runs
WHERE service_date = :day AND model_name = :name AND model_version = :version
