-- The alert rules S breached, and the alert each queued (NULL in a cooldown).
SELECT rule, metric, value, comparison, threshold, severity, retrain, model_name,
       model_version, alert_id
FROM monitoring.rule_checks
WHERE service_date = :service_date AND breached
ORDER BY rule
