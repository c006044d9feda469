#!/usr/bin/env bash
# The Airflow UI's users, for airflow-init (init.sh, step 5). Idempotent: a changed
# password in .env takes effect at the next `docker compose up`.
#
# Under the FAB auth manager (docker-compose.yaml), three users with FAB's built-in roles:
#   admin      Admin    NIGHTSCORE_AIRFLOW_PASSWORD          everything, users included
#   engineer   Op       AIRFLOW_ENGINEER_PASSWORD            runs, clears, backfills,
#                                                            connections; no user admin
#   viewer     Viewer   AIRFLOW_VIEWER_PASSWORD              read-only: DAGs, runs, logs,
#                                                            the nightscore reports
# A user whose password is empty is not created (and one created earlier is left as it is).
# Under SimpleAuthManager: its passwords file, {"admin": NIGHTSCORE_AIRFLOW_PASSWORD}.
set -euo pipefail

if [[ "${AIRFLOW__CORE__AUTH_MANAGER:-}" != *FabAuthManager ]]; then
    passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?is not set}"
    mkdir -p "$(dirname "$passwords_file")"
    (
        umask 077
        python -c 'import json, os, sys; json.dump({"admin": os.environ["NIGHTSCORE_AIRFLOW_PASSWORD"]}, sys.stdout)' \
            >"$passwords_file.tmp"
    )
    mv "$passwords_file.tmp" "$passwords_file"
    echo "  admin (SimpleAuthManager)"
    exit 0
fi

# The JSON list is the output's last part: log lines (warnings) may come before it.
existing=$(airflow users list --output json 2>/dev/null | python -c '
import json, sys
lines = sys.stdin.read().splitlines()
start = max(i for i, line in enumerate(lines) if line.startswith("["))
print(" ".join(u["username"] for u in json.loads("\n".join(lines[start:]))))')

ensure_user() {
    local user=$1 role=$2 password=$3
    if [ -z "$password" ]; then
        echo "  $user: no password in .env, skipped"
        return
    fi
    # The password is an argument for a moment, inside this one-shot container only.
    if [[ " $existing " == *" $user "* ]]; then
        airflow users reset-password --username "$user" --password "$password" >/dev/null
        airflow users add-role --username "$user" --role "$role" >/dev/null 2>&1 || true
    else
        airflow users create --username "$user" --role "$role" --password "$password" \
            --firstname "$user" --lastname nightscore --email "$user@nightscore.invalid" >/dev/null
    fi
    echo "  $user ($role)"
}

ensure_user admin Admin "${NIGHTSCORE_AIRFLOW_PASSWORD:?is not set}"
ensure_user engineer Op "${AIRFLOW_ENGINEER_PASSWORD:-}"
ensure_user viewer Viewer "${AIRFLOW_VIEWER_PASSWORD:-}"
