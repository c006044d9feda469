INSERT INTO monitoring.early_warning_features
    (service_date, model_name, model_version, column_name, tonight, nightly_mean, nightly_sd,
     nightly_low, nightly_high, z, importance, beyond, excess, evidently_method,
     evidently_statistic, evidently_drifted)
VALUES (:day, :name, :version, :column, :tonight, :mean, :sd, :low, :high, :z, :importance,
        :beyond, :excess, :method, :statistic, :drifted)
