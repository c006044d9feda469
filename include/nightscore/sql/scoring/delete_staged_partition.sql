-- A re-run of one partition task replaces its own staged rows, and no other partition's.
DELETE FROM scoring.staged_predictions
WHERE scoring_run_id = :scoring_run_id
  AND scoring.partition_of(carrier, flight, origin, :parts) = :part
