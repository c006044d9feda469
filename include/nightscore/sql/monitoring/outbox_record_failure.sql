-- A failed delivery attempt; the alerts stay pending, to be retried.
UPDATE monitoring.alerts SET attempts = attempts + 1, last_error = :error
WHERE alert_id = ANY(CAST(:ids AS bigint[]))
