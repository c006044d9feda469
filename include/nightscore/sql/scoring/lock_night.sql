-- One scoring run of (S, model) at a time: a second run waits here until the first commits.
SELECT pg_advisory_xact_lock(hashtext(:lock_key))
