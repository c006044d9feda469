-- One alert rule checked on the day's numbers.
INSERT INTO monitoring.rule_checks
    (service_date, rule, metric, value, comparison, threshold, severity,
     breached, retrain, model_name, model_version, alert_id)
VALUES (:day, :rule, :metric, :value, :comparison, :threshold, :severity,
        :breached, :retrain, :model_name, :model_version, :alert_id)
