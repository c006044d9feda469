#!/bin/sh
# minio-init (docker-compose.yaml): prepares the object store, then exits; the services
# that read or write it start only once it has exited 0. Idempotent: it runs again on
# every `docker compose up` and applies a changed .env.
#
#   1. the bucket of NIGHTSCORE_STORE_URL (s3://<bucket>/...) exists
#   2. the platform's own MinIO user, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, exists
#      with read-write access; the root credentials stay with MinIO and this script
#
# The minio/mc image has a POSIX shell, no bash. mc reads the server and the root
# credentials from MC_HOST_<alias>, built here, so those never appear on a command line;
# the platform user's secret is an argument of `mc admin user add`, in this container only.
set -eu

for name in MINIO_ROOT_USER MINIO_ROOT_PASSWORD AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
    NIGHTSCORE_STORE_URL MINIO_URL; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "minio-init: $name is not set" >&2
        exit 1
    fi
done

case "$NIGHTSCORE_STORE_URL" in
    s3://?*) ;;
    *)
        echo "minio-init: NIGHTSCORE_STORE_URL=$NIGHTSCORE_STORE_URL is not s3://<bucket>[/prefix]" >&2
        exit 1
        ;;
esac
bucket=${NIGHTSCORE_STORE_URL#s3://}
bucket=${bucket%%/*}

scheme=${MINIO_URL%%://*}
MC_HOST_store="$scheme://$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD@${MINIO_URL#*://}"
export MC_HOST_store

echo "minio-init: 1/2 bucket $bucket"
mc mb --ignore-existing "store/$bucket"

echo "minio-init: 2/2 user $AWS_ACCESS_KEY_ID (readwrite)"
# `user add` sets the secret again when the user exists; attaching a policy that is
# already attached fails, so it is attached only when missing.
mc admin user add store "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null
if ! mc admin user info store "$AWS_ACCESS_KEY_ID" | grep -q readwrite; then
    mc admin policy attach store readwrite --user "$AWS_ACCESS_KEY_ID"
fi
echo "minio-init: done"
