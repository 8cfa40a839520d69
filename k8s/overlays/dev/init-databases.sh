#!/bin/sh
# Create one role and one database per service (compose.yaml; run once by the postgres image's
# /docker-entrypoint-initdb.d on an empty data directory). Each role owns only its database, and
# PUBLIC may not connect to it, so a service cannot read another service's tables.
#   MESH_DATABASES    space-separated service names (`orders inventory ... ops`)
#   MESH_DB_PASSWORD  the roles' password (dev only; production uses a managed PostgreSQL)
set -eu
: "${MESH_DATABASES:?set MESH_DATABASES}"
: "${MESH_DB_PASSWORD:?set MESH_DB_PASSWORD}"
for service in $MESH_DATABASES; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v svc="$service" -v pw="$MESH_DB_PASSWORD" <<'SQL'
CREATE ROLE :"svc" LOGIN PASSWORD :'pw';
CREATE DATABASE :"svc" OWNER :"svc";
REVOKE ALL ON DATABASE :"svc" FROM PUBLIC;
SQL
done
