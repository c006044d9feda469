-- Record a report file (a day's drift report, a week's report), replacing the one of
-- the same kind and date.
INSERT INTO monitoring.reports (kind, service_date, path, bytes)
VALUES (:kind, :day, :path, :bytes)
ON CONFLICT (kind, service_date)
DO UPDATE SET path = EXCLUDED.path, bytes = EXCLUDED.bytes, created_at = now()
RETURNING report_id
