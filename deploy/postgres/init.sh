#!/bin/sh
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
# One role and one database per service plus "identity" (the portal): each role owns
# only its own database and nobody else may connect to it. Passwords come from the
# environment (deploy/env/postgres.env: <SERVICE>_DB_PASSWORD), never from this file.
set -eu

for db in intake consent redaction approval publishing audit identity; do
  var="$(echo "$db" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="$(printenv "$var" || true)"
  case "$password" in
    "" | *CHANGE_ME*)
      echo "init.sh: $var is unset or still a CHANGE_ME placeholder" >&2
      exit 1 ;;
  esac
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v name="$db" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
