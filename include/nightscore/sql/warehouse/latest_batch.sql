-- The latest batch of (kind, S): the most recently updated, the newest on a tie. The view
-- analytics.batches applies the same rule.
SELECT batch_id, status, uri, checksum FROM ops.batches
WHERE kind = :kind AND service_date = :service_date
ORDER BY updated_at DESC, batch_id DESC
LIMIT 1
