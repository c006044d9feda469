-- A delivered alert; a note (recipients the server refused) is kept as its last error.
UPDATE monitoring.alerts
SET status = 'sent', sent_at = now(), attempts = attempts + 1,
    last_error = COALESCE(:note, last_error)
WHERE alert_id = :alert_id
