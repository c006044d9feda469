SELECT extract(epoch FROM clock_timestamp() - started_at)
FROM scoring.runs WHERE scoring_run_id = :scoring_run_id
