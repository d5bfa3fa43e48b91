#!/bin/sh
# Create (or update) the Secrets the manifests in this folder read, from the filled
# deploy/env/*.env files (run deploy/gen-secrets.sh first, or fill them from your
# secret store). Values go to kubectl through files readable by you only, never on a
# command line. The database credentials are not here: CloudNativePG generates them
# (Secrets <service>-db-app). See README.md.
#
#   deploy/k8s/create-secrets.sh [ENV_DIR]      (default: deploy/env)
#
# Environment: NAMESPACE (default safepost), KUBECTL (default kubectl).
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
env_dir="${1:-$here/../env}"
namespace="${NAMESPACE:-safepost}"
kubectl="${KUBECTL:-kubectl}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT INT TERM
umask 077

# The value of NAME in FILE (the last assignment wins, as in the env files' readers).
value() {
  sed -n "s/^[[:space:]]*$2=//p" "$env_dir/$1" | tail -n 1
}

# secret NAME KEY=FILE:VAR...  ->  one Secret NAME whose KEY holds VAR from FILE.
secret() {
  name="$1"
  shift
  : >"$work/$name.env"
  for spec in "$@"; do
    key="${spec%%=*}"
    source="${spec#*=}"
    file="${source%%:*}"
    var="${source#*:}"
    val="$(value "$file" "$var")"
    case "$val" in
      "" | *CHANGE_ME*)
        echo "create-secrets.sh: $var in $file is unset or still a CHANGE_ME placeholder" \
          "(run deploy/gen-secrets.sh)" >&2
        exit 1 ;;
    esac
    printf '%s=%s\n' "$key" "$val" >>"$work/$name.env"
  done
  apply "$name"
}

apply() {
  "$kubectl" create secret generic "$1" --namespace "$namespace" \
    --from-env-file="$work/$1.env" --dry-run=client -o yaml \
    | "$kubectl" apply --namespace "$namespace" -f -
}

# Every api, worker and the portal: the broker URL (host "rabbitmq" is the
# RabbitmqCluster's Service, as in compose) and the token-signing key. KEDA reads the
# same AMQP_URL for the queue depths.
secret safepost-common \
  AMQP_URL=common.env:AMQP_URL \
  SAFEPOST_SECRET_KEY=common.env:SAFEPOST_SECRET_KEY

# The RabbitMQ user the Messaging Topology Operator creates: the same password as
# AMQP_URL's.
secret safepost-rabbitmq-user \
  username=rabbitmq.env:RABBITMQ_DEFAULT_USER \
  password=rabbitmq.env:RABBITMQ_DEFAULT_PASS

# Each bucket-using service's own S3 credentials (your provider's user or access key
# for that service, with the grants of deploy/minio/policies/<service>.json).
for svc in intake redaction approval publishing; do
  secret "$svc-s3" \
    S3_ACCESS_KEY="$svc.env:S3_ACCESS_KEY" \
    S3_SECRET_KEY="$svc.env:S3_SECRET_KEY"
done

# Publishing: the key sealing the platforms' tokens at rest...
secret publishing-secrets SAFEPOST_TOKEN_KEYS=publishing.env:SAFEPOST_TOKEN_KEYS

# ...and the platforms' apps the trust uses: whichever of these are set (uncommented)
# in publishing.env.
: >"$work/publishing-platforms.env"
for var in FACEBOOK_APP_ID FACEBOOK_APP_SECRET X_CLIENT_ID X_CLIENT_SECRET \
  LINKEDIN_CLIENT_ID LINKEDIN_CLIENT_SECRET; do
  val="$(value publishing.env "$var")"
  if [ -n "$val" ]; then
    printf '%s=%s\n' "$var" "$val" >>"$work/publishing-platforms.env"
  fi
done
apply publishing-platforms
