UPDATE monitoring.early_warnings
SET observed_rate = :observed_rate, roc_auc = :roc_auc, turned_out_bad = :bad
WHERE service_date = :day AND model_name = :name AND model_version = :version
