#!/usr/bin/env bash
# Runs every test of tautan against real PostgreSQL and MariaDB and real
# clients. On a fresh Debian machine it installs and starts what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same ./target the README's `cargo run` uses, unless told otherwise
# (.ci/run keeps its build under ~/.cache so later runs are incremental).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

need_apt=()
command -v psql >/dev/null || need_apt+=(postgresql-client)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql postgresql-contrib)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v mariadb >/dev/null || need_apt+=(mariadb-client)
# The yearly report is printed to PDF and screenshotted by headless Chromium.
command -v chromium >/dev/null || need_apt+=(chromium)
# The HTTP door's tests use curl as the client; the TLS tests make
# certificates with openssl.
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# PostgreSQL: running, reachable as postgres over TCP, pg_stat_statements on.
pg_version=$(ls /etc/postgresql | sort -n | tail -1)
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
pg_up || $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
for _ in $(seq 30); do pg_up && break; sleep 1; done
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
  # Fresh install: give postgres a password for TCP logins.
  $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
  export PGPASSWORD=postgres
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SHOW shared_preload_libraries' | grep -q pg_stat_statements; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" main restart
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi

# MariaDB: running, root reachable over TCP without a password.
my_up() { mariadb -h 127.0.0.1 -uroot -e 'SELECT 1' >/dev/null 2>&1; }
if ! my_up; then
  if ! mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    for _ in $(seq 30); do mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  my_up || mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
fi

# Every in-process test server keeps its own pooled MariaDB connections
# (idle ones for a minute): more than MariaDB's default 151 at once.
mariadb -h 127.0.0.1 -uroot -e "SET GLOBAL max_connections = 1000"

bash sql/load.sh
psql -h 127.0.0.1 -U postgres -d tautan_uji -qc 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'
# Tests read what reached the sources from pg_stat_statements; a store
# filled by earlier work (the TPC-H benchmarks) evicts a test's own
# statements as soon as they are recorded.
psql -h 127.0.0.1 -U postgres -d tautan_uji -qAtc 'SELECT pg_stat_statements_reset()' >/dev/null

status=0
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 || status=1

# Real client libraries (psycopg2/3, asyncpg, SQLAlchemy, pgcli, pgJDBC)
# against the tautan binary the tests just built.
bash tests/clients/run.sh "$CARGO_TARGET_DIR/debug/tautan" || status=1
# The stand-in web service some tests start for the shipped `bps` link.
pkill -f scripts/agency-api.py 2>/dev/null || true
exit $status
