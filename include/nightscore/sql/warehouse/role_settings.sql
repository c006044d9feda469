-- A role's connection limit and its own settings (["statement_timeout=60s", ...]).
SELECT rolconnlimit, coalesce(rolconfig, '{}') FROM pg_roles WHERE rolname = :role
