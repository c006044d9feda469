UPDATE ops.batches SET status = 'loaded', loaded_at = now(), updated_at = now()
WHERE batch_id = :batch_id
