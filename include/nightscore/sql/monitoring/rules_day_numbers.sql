-- What the alert rules look at for the day, from the champion's (most flights) drift
-- run and its overall performance (NULL without outcomes).
SELECT d.model_name, d.model_version, d.share_drifted, d.mean_score, d.reference_mean_score,
       r.url AS report_url, p.roc_auc, p.pr_auc, p.precision, p.recall, p.f1
FROM monitoring.drift_runs d
LEFT JOIN monitoring.reports r USING (report_id)
LEFT JOIN monitoring.performance p
  ON p.service_date = d.service_date AND p.model_name = d.model_name
 AND p.model_version = d.model_version AND p.segment_type = 'all'
WHERE d.service_date = :day AND d.model_name = :name
ORDER BY d.current_rows DESC, d.model_version DESC
LIMIT 1
