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
#   5. users                      the UI's users and roles (init-users.sh)
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
require NIGHTSCORE_STATE_DIR NIGHTSCORE_AIRFLOW_PASSWORD

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
bash "$(dirname "$0")/init-users.sh"
echo "airflow-init: done"
