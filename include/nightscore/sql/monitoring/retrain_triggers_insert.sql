-- A retrain asked for by monitoring.
INSERT INTO monitoring.retrain_triggers
    (service_date, model_name, reason, rules, cutoff, dag_run_id)
VALUES (:day, :name, :reason, :rules, :cutoff, :run_id)
