-- One row of S's performance: a model version, a segment, and the metrics of
-- nightscore.metrics.classification_metrics (NULL where undefined).
INSERT INTO monitoring.performance
    (service_date, model_name, model_version, segment_type, segment,
     rows, positives, roc_auc, pr_auc, precision, recall, f1, brier, ece, mean_score,
     threshold)
VALUES (:service_date, :model_name, :model_version, :segment_type, :segment,
        :rows, :positives, :roc_auc, :pr_auc, :precision, :recall, :f1, :brier, :ece,
        :mean_score, :threshold)
