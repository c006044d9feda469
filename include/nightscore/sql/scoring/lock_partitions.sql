-- Two first nights of a month at once: one creates the month's partition, the other waits.
SELECT pg_advisory_xact_lock(hashtext('scoring.partitions'))
