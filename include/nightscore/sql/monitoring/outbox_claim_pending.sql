-- The oldest pending alert this run has not tried, locked; a row another sender holds
-- is skipped, not waited for.
SELECT alert_id, created_at, rule, severity, service_date, subject, body, details,
       dedup_key, attempts, audience, message
FROM monitoring.alerts
WHERE status = 'pending' AND alert_id <> ALL(CAST(:tried AS bigint[]))
ORDER BY created_at, alert_id
LIMIT 1 FOR UPDATE SKIP LOCKED
