-- The day's drift summary for one model version.
INSERT INTO monitoring.drift_runs
    (service_date, model_name, model_version, reference_rows, current_rows,
     columns, drifted, share_drifted, drifted_columns, skipped_columns,
     score_drifted, mean_score, reference_mean_score, report_id)
VALUES (:day, :name, :version, :reference_rows, :current_rows, :columns, :drifted,
        :share, :drifted_columns, :skipped, :score_drifted, :mean_score,
        :reference_mean_score, :report_id)
