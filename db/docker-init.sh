#!/bin/sh
# docker-compose only: durapay's own database beside Temporal's, on the same PostgreSQL, with the
# password generated into .env (DURAPAY_DB_PASSWORD), passed as a psql variable so it is quoted.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$DURAPAY_DB_PASSWORD" <<'SQL'
CREATE USER durapay WITH PASSWORD :'password';
CREATE DATABASE durapay OWNER durapay;
SQL
