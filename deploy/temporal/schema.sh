#!/bin/sh
# docker-compose.yml's temporal-schema job, in the admin-tools image: Temporal's two databases on
# PostgreSQL, made and brought to the schema of this Temporal version by its own schema tool, never
# by auto-setup. The same steps as the cluster of TEMPORAL_MODE=cluster
# (scripts/embedded/temporal-cluster.ts; test/compose.test.ts compares them). Every step leaves
# what is already there as it is, so the job runs on every start; after a Temporal upgrade it
# applies the new version's schema changes before the new server starts.
# The connection comes from the environment: SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and
# SQL_PASSWORD (never on a command line).
set -eu

temporal-sql-tool --db temporal create-database
temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema --schema-name postgresql/v12/temporal

temporal-sql-tool --db temporal_visibility create-database
temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema --schema-name postgresql/v12/visibility

echo "Temporal's schema is current"
