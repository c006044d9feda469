-- Every batch the ledger holds for S, oldest first within each kind; the last of a kind
-- is its latest (the rule of warehouse/latest_batch: most recently updated, newest on a tie).
SELECT batch_id, kind, status, rows, warnings, error,
       data_docs_url, applied_by, received_at, updated_at
FROM ops.batches
WHERE service_date = :service_date
ORDER BY kind DESC, updated_at, batch_id
