-- One load of (kind, S) at a time: a second waits for the first to commit.
SELECT pg_advisory_xact_lock(hashtext(:lock_key))
