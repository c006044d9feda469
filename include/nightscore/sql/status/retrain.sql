-- The retrain S's monitoring asked for, if any.
SELECT model_name, reason, rules, cutoff, dag_run_id, triggered_at
FROM monitoring.retrain_triggers
WHERE service_date = :service_date
ORDER BY model_name
