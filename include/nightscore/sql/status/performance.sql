-- How each model version that scored S fared over all of S's flights.
SELECT model_name, model_version, rows, positives, roc_auc, pr_auc, precision, recall, brier,
       threshold, computed_at
FROM monitoring.performance
WHERE service_date = :service_date AND segment_type = 'all'
ORDER BY rows DESC, model_name, model_version
