#!/bin/sh
# Replace every CHANGE_ME_<NAME> placeholder in deploy/env/*.env with a random value,
# the same value wherever the same placeholder appears (so a service's DATABASE_URL and
# postgres.env agree). Placeholders ending in _B64 get base64 of 32 random bytes (the
# MinIO KMS key), those ending in _FERNET a URL-safe base64 Fernet key (the platform
# tokens' key); all others get 48 hex digits (safe inside URLs).
# Edits the files in place: keep the filled files out of version control.
set -eu

dir="$(cd "$(dirname "$0")/env" && pwd)"
placeholders="$(cat "$dir"/*.env | grep -o 'CHANGE_ME_[A-Z0-9_][A-Z0-9_]*' | sort -u || true)"
if [ -z "$placeholders" ]; then
  echo "no placeholders left in $dir"
  exit 0
fi
for name in $placeholders; do
  case "$name" in
    *_B64) value="$(head -c 32 /dev/urandom | base64 | tr -d '\n')" ;;
    *_FERNET) value="$(head -c 32 /dev/urandom | base64 | tr -d '\n' | tr '+/' '-_')" ;;
    *) value="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" ;;
  esac
  for file in "$dir"/*.env; do
    sed -i.bak "s|$name\([^A-Z0-9_]\)|$value\1|g; s|$name\$|$value|" "$file"
    rm -f "$file.bak"
  done
  echo "filled $name"
done
chmod 600 "$dir"/*.env
