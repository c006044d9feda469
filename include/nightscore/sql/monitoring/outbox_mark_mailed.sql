-- A notice the failure callback mailed directly while the outbox could not be written:
-- its row is sent already (when it was mailed), so no sender mails it a second time.
UPDATE monitoring.alerts
SET status = 'sent', sent_at = :sent_at, attempts = attempts + 1, last_error = :note
WHERE dedup_key = :key AND status <> 'sent'
