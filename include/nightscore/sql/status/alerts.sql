-- The outbox, newest first: every alert, or those of one service date and/or one status
-- (a NULL filter lets every row through).
SELECT alert_id, created_at, service_date, rule, severity, audience, subject, status,
       attempts, split_part(last_error, E'\n', 1) AS last_error, sent_at
FROM monitoring.alerts
WHERE (CAST(:service_date AS date) IS NULL OR service_date = :service_date)
  AND (CAST(:status AS text) IS NULL OR status = :status)
ORDER BY alert_id DESC
LIMIT :limit
