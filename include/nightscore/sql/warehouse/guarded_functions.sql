-- The functions of pg_catalog that PUBLIC may execute and the analyst must not:
-- advisory locks (the ETL's loads and scoring nights hold them; whoever takes the same
-- key stalls a night) and large objects (storage outside any table and its grants).
-- Signatures as REVOKE and GRANT take them, e.g. pg_advisory_lock(bigint).
SELECT p.oid::regprocedure::text AS signature,
       p.proname LIKE 'pg\_%advisory\_%' AS advisory
FROM pg_proc AS p
WHERE p.pronamespace = 'pg_catalog'::regnamespace
  AND (p.proname LIKE 'pg\_%advisory\_%'
       OR p.proname LIKE 'lo\_%'
       OR p.proname IN ('loread', 'lowrite'))
ORDER BY 1
