#!/bin/sh
# Entrypoint of the Safepost image (and a guard in front of postgres and rabbitmq):
# refuse to start while any variable still holds a CHANGE_ME placeholder, naming them
# (never their values), then run the command as PID 1.
set -eu

names="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*CHANGE_ME.*/\1/p' | sort | tr '\n' ' ')"
if [ -n "$names" ]; then
  echo "refusing to start: placeholder secrets still set: $names(run deploy/gen-secrets.sh" \
    "or set real values in deploy/env/*.env)" >&2
  exit 78
fi
exec "$@"
