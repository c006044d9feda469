UPDATE scoring.runs
SET status = :status, rows = :rows, error = :error, finished_at = clock_timestamp(),
    duration_s = extract(epoch FROM clock_timestamp() - started_at)
WHERE scoring_run_id = :scoring_run_id
