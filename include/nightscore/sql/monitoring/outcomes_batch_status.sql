-- The status of the day's latest outcomes batch.
SELECT status FROM ops.batches
WHERE kind = 'outcomes' AND service_date = :day
ORDER BY updated_at DESC, batch_id DESC LIMIT 1
