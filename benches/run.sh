#!/usr/bin/env bash
# The federation benchmark, in one command:
#
#   bash benches/run.sh [--sf 1] [--systems tautan,duckdb,fdw] [--runs 3] [--timeout 120]
#   bash benches/run.sh --smoke          # SF 0.01, 1 run: the CI check (exit 1 when a tautan answer
#                                        # differs from the oracle, fails or times out)
#
# Installs what is missing (tpchgen-cli, mysql_fdw, a Python venv with DuckDB
# 1.4.4 and its postgres/mysql extensions, psycopg, matplotlib), generates and
# loads TPC-H (skipped when already loaded at that SF), runs every system,
# checks every answer against PostgreSQL tpch_all, and writes BENCHMARKS.md,
# benches/results/chart.png and benches/results/results-sf<SF>.json.
#
# Other options:
#   --workloads W1,W2,W3     which workloads (default all)
#   --queries q01,q17,...    only these queries (names of files in benches/queries)
#   --tautan-bin PATH        the tautan release binary
#                            (default $TAUTAN_BIN or ~/.cache/tautan-release/release/tautan)
#   --require-tautan         fail when there is no tautan binary (CI)
#   --no-floor               skip the source floors of W1
#   --report PATH            where the Markdown report goes (default BENCHMARKS.md;
#                            with --smoke benches/results/smoke/BENCHMARKS.md)
#   --load-only              generate and load, then stop
#   --note TEXT              a remark printed at the top of the report
# Environment: TAUTAN_BENCH_CACHE (default ~/.cache/tautan-bench: data, venv, oracle
# answers), TAUTAN_BENCH_PORT (tautan's listener, default 6599), BENCH_PGHOST/
# BENCH_PGPORT/BENCH_PGUSER, BENCH_MYHOST/BENCH_MYPORT/BENCH_MYUSER,
# TAUTAN_BENCH_EXTRA_CONFIG (a TOML file appended to tautan's generated config),
# TAUTAN_BENCH_SERVER_CONFIG (lines added to its [server] table, e.g.
# "memory_limit_mb = 512").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cmdline="bash benches/run.sh $*"

sf=1 systems=tautan,duckdb,fdw runs=3 timeout=120 smoke=0 workloads=W1,W2,W3 queries=""
tautan_bin=${TAUTAN_BIN:-$HOME/.cache/tautan-release/release/tautan}
require_tautan=0 no_floor=0 report="" load_only=0 note=""
runs_set=0 timeout_set=0 sf_set=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sf) sf=$2; sf_set=1; shift 2 ;;
    --systems) systems=$2; shift 2 ;;
    --runs) runs=$2; runs_set=1; shift 2 ;;
    --timeout) timeout=$2; timeout_set=1; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --workloads) workloads=$2; shift 2 ;;
    --queries) queries=$2; shift 2 ;;
    --tautan-bin) tautan_bin=$2; shift 2 ;;
    --require-tautan) require_tautan=1; shift ;;
    --no-floor) no_floor=1; shift ;;
    --report) report=$2; shift 2 ;;
    --load-only) load_only=1; shift ;;
    --note) note=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$smoke" = 1 ]; then
  [ "$sf_set" = 1 ] || sf=0.01
  [ "$runs_set" = 1 ] || runs=1
  [ "$timeout_set" = 1 ] || timeout=60
fi
sf_label=$(python3 -c "import sys; print('%g' % float(sys.argv[1]))" "$sf")
results_dir="$here/results"
if [ -z "$report" ]; then
  if [ "$smoke" = 1 ]; then report="$results_dir/smoke/BENCHMARKS.md"; else report="$repo/BENCHMARKS.md"; fi
fi
if [ "$smoke" = 1 ]; then
  out_json="$results_dir/smoke/results-sf$sf_label.json"; chart="$results_dir/smoke/chart.png"
else
  out_json="$results_dir/results-sf$sf_label.json"; chart="$results_dir/chart.png"
fi
if [ "$require_tautan" = 1 ] && ! [ -x "$tautan_bin" ]; then
  echo "run.sh: --require-tautan and no executable tautan at $tautan_bin" >&2; exit 2
fi

export TAUTAN_BENCH_CACHE=${TAUTAN_BENCH_CACHE:-$HOME/.cache/tautan-bench}
mkdir -p "$TAUTAN_BENCH_CACHE" "$results_dir"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
step() { echo "run.sh: $*"; }

# --- servers and command-line clients ---------------------------------------
need=()
command -v psql >/dev/null || need+=(postgresql-client)
command -v pg_ctlcluster >/dev/null || need+=(postgresql postgresql-contrib)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null || need+=(mariadb-client)
[ -x /usr/bin/time ] || need+=(time)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then step "installing ${need[*]}"; apt_install "${need[@]}"; fi

export PGHOST=${BENCH_PGHOST:-127.0.0.1} PGPORT=${BENCH_PGPORT:-5432} PGUSER=${BENCH_PGUSER:-postgres}
pg_version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
pg_up() { pg_isready -h "$PGHOST" -p "$PGPORT" -q; }
if ! pg_up && [ -n "$pg_version" ]; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "run.sh: PostgreSQL is not reachable at $PGHOST:$PGPORT" >&2; exit 2; }
my_host=${BENCH_MYHOST:-127.0.0.1} my_port=${BENCH_MYPORT:-3306} my_user=${BENCH_MYUSER:-root}
my_up() { mariadb -h "$my_host" -P "$my_port" -u "$my_user" -e 'SELECT 1' >/dev/null 2>&1; }
if ! my_up; then
  if ! mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || true
    for _ in $(seq 30); do mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  my_up || mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" || true
fi
my_up || { echo "run.sh: MariaDB is not reachable at $my_host:$my_port as $my_user" >&2; exit 2; }

# --- mysql_fdw for the FDW coordinator ---------------------------------------
pg_major=$(psql -X -At -d postgres -c "SHOW server_version_num" | cut -c1-2)
if ! [ -f "/usr/share/postgresql/$pg_major/extension/mysql_fdw.control" ]; then
  step "installing postgresql-$pg_major-mysql-fdw"
  apt_install "postgresql-$pg_major-mysql-fdw"
fi

# --- tpchgen-cli -------------------------------------------------------------
TPCHGEN_VERSION=4.0.0
export PATH="$HOME/.cargo/bin:$PATH"
tpchgen_venv="$TAUTAN_BENCH_CACHE/tpchgen"
export PATH="$tpchgen_venv/bin:$PATH"
if ! command -v tpchgen-cli >/dev/null; then
  # The same release is on PyPI as a prebuilt binary: seconds instead of a
  # long compile on two cores. Compile it only where that wheel cannot be had.
  step "tpchgen-cli $TPCHGEN_VERSION from PyPI (once)"
  python3 -m venv "$tpchgen_venv" \
    && "$tpchgen_venv/bin/pip" install -q --disable-pip-version-check "tpchgen-cli==$TPCHGEN_VERSION" \
    || rm -rf "$tpchgen_venv"
fi
if ! command -v tpchgen-cli >/dev/null; then
  step "cargo install tpchgen-cli@$TPCHGEN_VERSION (once)"
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR_TPCHGEN:-$HOME/.cache/tpchgen-target} \
    nice -n 19 cargo install --locked --quiet "tpchgen-cli@$TPCHGEN_VERSION"
fi

# --- Python venv ---------------------------------------------------------------
venv="$TAUTAN_BENCH_CACHE/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if ! [ -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "Python venv $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi
py="$venv/bin/python"

# --- data ------------------------------------------------------------------------
step "data: TPC-H SF $sf_label"
"$py" "$here/load.py" --sf "$sf"
[ "$load_only" = 1 ] && exit 0

# --- run and report ----------------------------------------------------------------
bench_args=(--sf "$sf" --systems "$systems" --workloads "$workloads" --runs "$runs" --timeout "$timeout"
            --tautan-bin "$tautan_bin" --out "$out_json" --command-line "$cmdline")
[ -n "$queries" ] && bench_args+=(--queries "$queries")
[ "$no_floor" = 1 ] && bench_args+=(--no-floor)
[ -n "$note" ] && bench_args+=(--note "$note")
[ "$smoke" = 1 ] && bench_args+=(--fail-on tautan-wrong,tautan-error,tautan-timeout)
status=0
"$py" "$here/bench.py" "${bench_args[@]}" || status=$?
if [ -f "$out_json" ]; then
  mkdir -p "$(dirname "$report")"
  "$py" "$here/report.py" "$out_json" --md "$report" --chart "$chart"
fi
if [ "$status" != 0 ]; then
  echo "run.sh: FAILED (exit $status): see $report" >&2
fi
exit "$status"
