INSERT INTO ml.model_decisions
    (model_name, challenger_version, challenger_run_id, champion_version, decision, applied,
     mode, reason, metric, challenger_metrics, champion_metrics, window_start, window_end,
     floor, margin, training_cutoff, trigger, airflow_run_id)
VALUES (:model_name, :challenger_version, :challenger_run_id, :champion_version, :decision,
        :applied, :mode, :reason, :metric, CAST(:challenger_metrics AS jsonb),
        CAST(:champion_metrics AS jsonb), :window_start, :window_end, :floor, :margin,
        :training_cutoff, :trigger, :airflow_run_id)
