SELECT model_name FROM scoring.runs WHERE scoring_run_id = :scoring_run_id
