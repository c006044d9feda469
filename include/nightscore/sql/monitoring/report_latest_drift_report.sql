-- The latest Evidently drift report of the week.
SELECT service_date, path, bytes FROM monitoring.reports
WHERE kind = 'drift' AND service_date BETWEEN :first AND :last
ORDER BY service_date DESC, created_at DESC LIMIT 1
