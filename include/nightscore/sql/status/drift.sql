-- S's drift per model version, with where its HTML report is in the store.
SELECT r.model_name, r.model_version, r.current_rows, r.share_drifted, r.drifted_columns,
       r.score_drifted, r.mean_score, r.reference_mean_score, p.path AS report_path,
       r.computed_at
FROM monitoring.drift_runs r
LEFT JOIN monitoring.reports p USING (report_id)
WHERE r.service_date = :service_date
ORDER BY r.current_rows DESC, r.model_name, r.model_version
