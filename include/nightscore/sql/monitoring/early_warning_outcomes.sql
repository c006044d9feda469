-- S's evening checks with how the checked version fared overall once outcomes landed.
SELECT w.model_name, w.model_version, w.warned, w.summary, w.alert_id,
       p.rows, p.positives, p.roc_auc, p.mean_score
FROM monitoring.early_warnings w
JOIN monitoring.performance p
  ON p.service_date = w.service_date AND p.model_name = w.model_name
 AND p.model_version = w.model_version AND p.segment_type = 'all'
WHERE w.service_date = :day
