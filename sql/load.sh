#!/usr/bin/env bash
# Loads the demo agencies into the local servers and creates the read-only
# accounts tautan's shipped federation.toml logs in with.
#   PostgreSQL: database kependudukan      (user tautan_ro, SELECT only)
#   MariaDB:    databases kesehatan, kepegawaian (user tautan_ro, SELECT only)
# Environment: PGHOST/PGPORT/PGUSER (default 127.0.0.1:5432 postgres),
#              MYSQL_HOST/MYSQL_PORT/MYSQL_USER (default 127.0.0.1:3306 root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1} MYSQL_PORT=${MYSQL_PORT:-3306} MYSQL_USER=${MYSQL_USER:-root}
my() { mariadb -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" "$@"; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SELECT 'CREATE DATABASE kependudukan' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'kependudukan')\gexec
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tautan_ro') THEN
    CREATE ROLE tautan_ro LOGIN PASSWORD 'tautan-ro';
  END IF;
END $$;
SQL
psql -X -q -v ON_ERROR_STOP=1 -d kependudukan -f "$here/kependudukan.pg.sql"
# Least privilege (README, "A least-privilege account"): SELECT on the
# exposed tables, nothing else. PostgreSQL lets every role create large
# objects, even in a READ ONLY transaction: revoked from PUBLIC here.
least_privilege_pg="REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea) FROM PUBLIC;"
psql -X -q -v ON_ERROR_STOP=1 -d kependudukan <<SQL
GRANT USAGE ON SCHEMA public TO tautan_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tautan_ro;
$least_privilege_pg
SQL

my < "$here/kesehatan.mysql.sql"
my < "$here/kepegawaian.mysql.sql"
my <<'SQL'
CREATE USER IF NOT EXISTS 'tautan_ro'@'localhost' IDENTIFIED BY 'tautan-ro';
CREATE USER IF NOT EXISTS 'tautan_ro'@'127.0.0.1' IDENTIFIED BY 'tautan-ro';
GRANT SELECT, SHOW VIEW ON kesehatan.* TO 'tautan_ro'@'localhost', 'tautan_ro'@'127.0.0.1';
GRANT SELECT, SHOW VIEW ON kepegawaian.* TO 'tautan_ro'@'localhost', 'tautan_ro'@'127.0.0.1';
SQL
echo "loaded: kependudukan (PostgreSQL), kesehatan + kepegawaian (MariaDB)"

# Test fixtures (types, awkward names, larger tables): database tautan_uji.
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
SELECT 'CREATE DATABASE tautan_uji' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tautan_uji')\gexec
SQL
psql -X -q -v ON_ERROR_STOP=1 -d tautan_uji -f "$here/uji.pg.sql" 2>&1 | grep -v NOTICE || true
psql -X -q -v ON_ERROR_STOP=1 -d tautan_uji <<SQL
GRANT USAGE ON SCHEMA public, "Skema Campuran" TO tautan_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public, "Skema Campuran" TO tautan_ro;
$least_privilege_pg
SQL
my < "$here/uji.mysql.sql"
my -e "GRANT SELECT ON tautan_uji.* TO 'tautan_ro'@'localhost', 'tautan_ro'@'127.0.0.1'"
echo "loaded: test fixtures tautan_uji (PostgreSQL and MariaDB)"
