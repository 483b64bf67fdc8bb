#!/usr/bin/env bash
# Client-compatibility tests: starts a tautan server with the shipped
# federation.toml on a free port and drives real clients against it
# (psycopg2, psycopg 3, asyncpg, SQLAlchemy, pgcli, pgJDBC, ADBC Flight SQL).
#
#   bash tests/clients/run.sh [path-to-tautan-binary] [extra pytest args...]
#
# Default binary: ${CARGO_TARGET_DIR:-target}/debug/tautan
# (build it first; this script never runs cargo). The agency databases must
# be loaded (bash sql/load.sh; scripts/test.sh does it) for the links to be up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/tautan}
if [ $# -gt 0 ]; then shift; fi
if [ ! -x "$bin" ]; then
  echo "run.sh: no tautan binary at $bin (cargo build first, or pass its path)" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

bash "$here/setup.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tautan-clients.XXXXXX")
log="$tmp/server.log"
server_pid=""
status=1
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$log" ]; then
    echo "---- tautan server log (last 80 lines) ----" >&2
    tail -n 80 "$log" >&2
  fi
  rm -rf "$tmp"
}
trap 'cleanup; exit $status' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
port=$(free_port)
ops_port=$(free_port)
http_port=$(free_port)
flight_port=$(free_port)

# The shipped config with this run's port, absolute repo paths and the
# pull snapshots in the temp dir. Fails if the config no longer has the
# lines replaced here.
python3 - "$repo/federation.toml" "$tmp/federation.toml" "$port" "$repo" "$tmp/data" "$ops_port" "$http_port" "$flight_port" <<'PY'
import json, sys
src, dst, port, repo, data, ops_port, http_port, flight_port = sys.argv[1:]
text = open(src, encoding="utf-8").read()
for old, new in [
    ('listen = "127.0.0.1:6432"', f'listen = "127.0.0.1:{port}"'),
    ('listen = "127.0.0.1:6480"', f'listen = "127.0.0.1:{ops_port}"'),
    ('listen = "127.0.0.1:6433"', f'listen = "127.0.0.1:{http_port}"'),
    ('listen = "127.0.0.1:6434"', f'listen = "127.0.0.1:{flight_port}"'),
    ('path = "files/dinsos"', f"path = {json.dumps(repo + '/files/dinsos')}"),
    ('path = "ref"', f"path = {json.dumps(repo + '/ref')}"),
    ('data_dir = "data"', f"data_dir = {json.dumps(data)}"),
    ('agreements_dir = "agreements"', f"agreements_dir = {json.dumps(repo + '/agreements')}"),
]:
    if text.count(old) != 1:
        sys.exit(f"run.sh: expected exactly one `{old}` in {src}")
    text = text.replace(old, new)
# Public keys of the demo signers, wherever they are named.
text = text.replace('"keys/demo/', json.dumps(repo + "/keys/demo/")[:-1])
# The type-test database (sql/uji.pg.sql): a table with a column of every
# PostgreSQL type tautan maps, for the catalog-fidelity checks.
text += """
[links.uji_pg]
kind = "postgres"
host = "127.0.0.1"
database = "tautan_uji"
user = "tautan_ro"
password = "tautan-ro"
"""
open(dst, "w", encoding="utf-8").write(text)
PY

export TAUTAN_KEPENDUDUKAN_PASSWORD=tautan-ro
(cd "$tmp" && exec "$bin" -c "$tmp/federation.toml" serve) >"$log" 2>&1 &
server_pid=$!

echo "run.sh: tautan (pid $server_pid) starting on 127.0.0.1:$port, log $log"
if ! python3 - "$port" "$server_pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("run.sh: tautan exited before accepting connections")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("run.sh: tautan did not accept connections within 60 s")
PY
then
  exit 1  # the trap prints the log
fi

export TAUTAN_PORT=$port TAUTAN_HOST=127.0.0.1 TAUTAN_OPS_PORT=$ops_port TAUTAN_HTTP_PORT=$http_port TAUTAN_FLIGHT_PORT=$flight_port
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the repository

failed=()
echo "run.sh: python clients (pytest)"
(cd "$repo" && python3 -m pytest -q tests/clients "$@") || failed+=(pytest)

sa14=${XDG_CACHE_HOME:-$HOME/.cache}/tautan-sa14
echo "run.sh: SQLAlchemy 1.4 (pytest in $sa14)"
(cd "$repo" && "$sa14/bin/python" -m pytest -q tests/clients/test_sqlalchemy14.py) || failed+=(sqlalchemy-1.4)

echo "run.sh: pgJDBC ($(basename "$(readlink -f /usr/share/java/postgresql.jar)"))"
mkdir -p "$tmp/jdbc"
if javac -d "$tmp/jdbc" -cp /usr/share/java/postgresql.jar "$here/jdbc/JdbcCheck.java"; then
  java -cp "$tmp/jdbc:/usr/share/java/postgresql.jar" JdbcCheck "$port" || failed+=(jdbc)
else
  failed+=(jdbc-compile)
fi

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "run.sh: the tautan server died during the tests" >&2
  failed+=(server-died)
fi

if [ ${#failed[@]} -eq 0 ]; then
  echo "run.sh: all client checks passed"
  status=0
else
  echo "run.sh: FAILED: ${failed[*]}" >&2
  status=1
fi
