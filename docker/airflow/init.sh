#!/usr/bin/env bash
# airflow-init (docker-compose.yaml): prepares everything the other Airflow services
# need, then exits; they start only once it has exited 0. Every step is idempotent, so
# it runs again on every `docker compose up` and applies a changed .env.
#
#   1. the shared folder exists and is writable (the landing zone, Data Docs, reports
#      and the Evidently workspace are in the object store: minio-init prepares it)
#   2. airflow db migrate         Airflow's metadata database
#   3. nightscore db upgrade      the warehouse: roles, schemas (Alembic), reference data
#   4. connections                one per INIT_CONN_<ID> variable (smtp_default, ...)
#   5. users                      the UI's admin password, for SimpleAuthManager
set -euo pipefail

require() {
    local name
    for name in "$@"; do
        if [ -z "${!name:-}" ]; then
            echo "airflow-init: $name is not set" >&2
            exit 1
        fi
    done
}
require NIGHTSCORE_STATE_DIR NIGHTSCORE_AIRFLOW_PASSWORD \
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE

echo "airflow-init: 1/5 shared folder"
mkdir -p "$NIGHTSCORE_STATE_DIR"
if [ ! -w "$NIGHTSCORE_STATE_DIR" ]; then
    echo "airflow-init: $NIGHTSCORE_STATE_DIR is not writable by $(id -un) (uid $(id -u)); remove its volume and start again" >&2
    exit 1
fi

echo "airflow-init: 2/5 airflow db migrate"
airflow db migrate

echo "airflow-init: 3/5 nightscore db upgrade"
nightscore db upgrade

echo "airflow-init: 4/5 connections"
# Replaced rather than kept, so that a changed URI in .env takes effect.
# `connections add` echoes the URI, password included: its output is not shown.
for name in $(compgen -e | grep -E '^INIT_CONN_[A-Z0-9_]+$' | sort); do
    conn_id=$(printf '%s' "${name#INIT_CONN_}" | tr '[:upper:]' '[:lower:]')
    airflow connections delete "$conn_id" >/dev/null 2>&1 || true
    airflow connections add "$conn_id" --conn-uri "${!name}" >/dev/null
    echo "  $conn_id"
done

echo "airflow-init: 5/5 users"
# SimpleAuthManager reads {"user": "password"} from this file at each login; the users
# and their roles are AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS (admin:admin).
passwords_file="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
mkdir -p "$(dirname "$passwords_file")"
(
    umask 077
    python -c 'import json, os, sys; json.dump({"admin": os.environ["NIGHTSCORE_AIRFLOW_PASSWORD"]}, sys.stdout)' \
        > "$passwords_file.tmp"
)
mv "$passwords_file.tmp" "$passwords_file"
echo "  admin"
echo "airflow-init: done"
