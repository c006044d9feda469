INSERT INTO scoring.predictions
SELECT * FROM scoring.staged_predictions WHERE scoring_run_id = :scoring_run_id
