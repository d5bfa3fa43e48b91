#!/bin/sh
# One-shot MinIO setup (the minio-init job, minio/mc image): the three buckets with no
# anonymous access and SSE-S3 by default, and one user per service whose policy
# (deploy/minio/policies/<service>.json) grants only the buckets that service needs.
# Safe to run again: every step is create-or-update.
set -eu

for value in "$MINIO_ROOT_PASSWORD" "$INTAKE_S3_SECRET_KEY" "$REDACTION_S3_SECRET_KEY" \
    "$APPROVAL_S3_SECRET_KEY" "$PUBLISHING_S3_SECRET_KEY"; do
  case "$value" in
    *CHANGE_ME*)
      echo "refusing to start: a MinIO secret is still a CHANGE_ME placeholder" \
        "(run deploy/gen-secrets.sh)" >&2
      exit 78 ;;
  esac
done

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"

for area in originals redacted previews; do
  bucket="local/safepost-$area"
  mc mb --ignore-existing "$bucket"
  mc anonymous set none "$bucket"
  mc encrypt set sse-s3 "$bucket"
done

for user in intake redaction approval publishing; do
  case "$user" in
    intake) secret="$INTAKE_S3_SECRET_KEY" ;;
    redaction) secret="$REDACTION_S3_SECRET_KEY" ;;
    approval) secret="$APPROVAL_S3_SECRET_KEY" ;;
    publishing) secret="$PUBLISHING_S3_SECRET_KEY" ;;
  esac
  mc admin policy create local "safepost-$user" "/deploy/minio/policies/$user.json"
  mc admin user add local "$user" "$secret"
  case "$(mc admin user info local "$user")" in
    *"safepost-$user"*) ;;
    *) mc admin policy attach local "safepost-$user" --user "$user" ;;
  esac
done
echo "minio-init: buckets and per-service users ready"
