-- Record a report file (a day's drift report, a week's report): where it is in the store
-- and its public link, replacing the one of the same kind and date.
INSERT INTO monitoring.reports (kind, service_date, path, url, bytes)
VALUES (:kind, :day, :path, :url, :bytes)
ON CONFLICT (kind, service_date)
DO UPDATE SET path = EXCLUDED.path, url = EXCLUDED.url, bytes = EXCLUDED.bytes,
              created_at = now()
RETURNING report_id
