-- The day's drift of one column (a feature or the score) for one model version.
INSERT INTO monitoring.drift
    (service_date, model_name, model_version, column_name, kind, method,
     statistic, threshold, drifted, monitored)
VALUES (:day, :name, :version, :column, :kind, :method, :statistic, :threshold,
        :drifted, :monitored)
