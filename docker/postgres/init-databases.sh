#!/usr/bin/env bash
# The compose stack's Postgres: roles and databases, created once, on an empty data
# volume (the postgres image runs /docker-entrypoint-initdb.d/* as the superuser then).
#
#   database   owner            who else may connect
#   airflow    airflow          nobody (Airflow's metadata; Celery's result backend)
#   mlflow     mlflow           nobody (MLflow's backend store)
#   warehouse  nightscore_etl   nightscore_analyst (the analysts' read-only role)
#
# The owner roles are those of the URLs in docker-compose.yaml; nightscore_etl and
# nightscore_analyst are the names nightscore uses (nightscore.warehouse.roles). The
# airflow-init service then runs `nightscore db upgrade`, which creates the schemas, lets
# nightscore_analyst read the `analytics` views and nothing else, and sets its limits (no
# advisory locks or large objects, timeouts, a connection limit: docs/deployment.md).
#
# Passwords come from the environment (.env), reach psql as variables and are quoted by
# it (:'name'), so they never appear in this file or in the SQL text.
#
# The image may source this file instead of running it (when it is not executable), so
# it sets no shell options that would outlive it, and exits only on an error.
set -eo pipefail

for name in AIRFLOW_DB_PASSWORD MLFLOW_DB_PASSWORD NIGHTSCORE_ETL_PASSWORD NIGHTSCORE_ANALYST_PASSWORD; do
    if [ -z "${!name}" ]; then
        echo "init-databases: $name is empty; set it in .env (see .env.example)" >&2
        exit 1
    fi
done

psql --no-psqlrc --set ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --set airflow_password="$AIRFLOW_DB_PASSWORD" \
    --set mlflow_password="$MLFLOW_DB_PASSWORD" \
    --set etl_password="$NIGHTSCORE_ETL_PASSWORD" \
    --set analyst_password="$NIGHTSCORE_ANALYST_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE ROLE nightscore_etl LOGIN PASSWORD :'etl_password';
CREATE ROLE nightscore_analyst LOGIN PASSWORD :'analyst_password';

CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE warehouse OWNER nightscore_etl;

-- Only each owner (and the superuser) may connect; the analyst reaches the warehouse.
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE warehouse FROM PUBLIC;
REVOKE ALL ON DATABASE postgres FROM PUBLIC;
GRANT CONNECT ON DATABASE warehouse TO nightscore_analyst;
SQL
