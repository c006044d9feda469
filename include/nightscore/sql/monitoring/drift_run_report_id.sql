-- The report linked from the day's drift run of one model version, if any.
SELECT d.report_id FROM monitoring.drift_runs d
WHERE d.service_date = :day AND d.model_name = :name AND d.model_version = :version
