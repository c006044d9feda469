INSERT INTO monitoring.early_warnings
    (service_date, model_name, model_version, flights, training_nights, warned, reasons,
     moved_features, importance_excess, mean_score, score_z, expected_auc, evidently_share,
     rule, summary, alert_id, report_id)
VALUES (:day, :name, :version, :flights, :training_nights, :warned, :reasons, :moved,
        :excess, :mean_score, :score_z, :expected_auc, :evidently_share,
        CAST(:rule AS jsonb), :summary, :alert_id, :report_id)
