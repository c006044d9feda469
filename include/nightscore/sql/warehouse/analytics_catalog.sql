-- Every column of every relation in analytics that the connected role may read, with
-- its type and the comments of the column and of its relation, as a BI tool reads them.
SELECT c.relname,
       c.relkind,
       obj_description(c.oid, 'pg_class') AS relation_comment,
       a.attname,
       format_type(a.atttypid, a.atttypmod) AS type,
       col_description(c.oid, a.attnum) AS column_comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'analytics'
  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY c.relname, a.attnum
