-- The alert that puts a new one with the same cooldown key in its cooldown, if any.
-- Pending or sent, for a service date fewer than :days away, or, without a service
-- date, queued fewer than :days ago.
SELECT alert_id FROM monitoring.alerts
WHERE cooldown_key = :key AND status IN ('pending', 'sent')
  AND CASE WHEN CAST(:day AS date) IS NULL
           THEN created_at > now() - make_interval(days => :days)
           ELSE abs(service_date - CAST(:day AS date)) < :days END
ORDER BY created_at DESC LIMIT 1
