-- A validated, held (or rejected) batch; the same bytes validated again update their row.
INSERT INTO ops.batches (kind, service_date, uri, checksum, rows, status, validation, warnings,
                         data_docs_url, error, airflow_run_id, applied_by)
VALUES (:kind, :service_date, :uri, :checksum, :rows, :status, CAST(:validation AS jsonb),
        :warnings, :data_docs_url, :error, :airflow_run_id, :applied_by)
ON CONFLICT (kind, service_date, checksum) DO UPDATE SET
    uri = EXCLUDED.uri, rows = EXCLUDED.rows,
    -- the same bytes validated again stay loaded: core already holds them
    status = CASE WHEN ops.batches.status = 'loaded' AND EXCLUDED.status = 'validated'
                  THEN 'loaded' ELSE EXCLUDED.status END,
    validation = EXCLUDED.validation, warnings = EXCLUDED.warnings,
    data_docs_url = EXCLUDED.data_docs_url, error = EXCLUDED.error,
    airflow_run_id = EXCLUDED.airflow_run_id,
    -- who applied a held batch stays recorded when the same bytes are validated again
    applied_by = COALESCE(EXCLUDED.applied_by, ops.batches.applied_by), updated_at = now()
RETURNING batch_id
