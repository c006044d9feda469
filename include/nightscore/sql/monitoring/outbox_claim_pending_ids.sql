-- The ids of the next :limit pending alerts this run has not tried, locked, in the
-- order they are sent; rows another sender holds are skipped.
SELECT alert_id
FROM monitoring.alerts
WHERE status = 'pending' AND alert_id <> ALL(CAST(:tried AS bigint[]))
ORDER BY created_at, alert_id
LIMIT :limit FOR UPDATE SKIP LOCKED
