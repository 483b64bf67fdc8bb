#!/usr/bin/env bash
# Installs what the client-compatibility tests need, and nothing that is
# already there: Python clients from PyPI, pgJDBC and a JDK from Debian.
# Idempotent; runs as root or through sudo. Network: PyPI and the Debian
# mirrors only.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

# --- Python clients -------------------------------------------------------
# "pip name:import name" pairs; only the missing ones are installed.
wanted=(
  "pytest:pytest"
  "pytest-timeout:pytest_timeout"
  "psycopg2-binary:psycopg2"
  "psycopg[binary]:psycopg, psycopg_binary"
  "asyncpg:asyncpg"
  "sqlalchemy>=2:sqlalchemy"
  "pgcli:pgcli"
  "prometheus-client:prometheus_client"
  "pyarrow:pyarrow"
  "adbc-driver-flightsql:adbc_driver_flightsql"
  "adbc-driver-manager:adbc_driver_manager"
)
missing=()
for pair in "${wanted[@]}"; do
  pkg=${pair%%:*}; mod=${pair##*:}
  python3 -c "import $mod" >/dev/null 2>&1 || missing+=("$pkg")
done
# SQLAlchemy 1.x (e.g. from Debian) does not count.
if python3 -c "import sqlalchemy" >/dev/null 2>&1 &&
   ! python3 -c "import sqlalchemy, sys; sys.exit(int(sqlalchemy.__version__.split('.')[0]) < 2)"; then
  missing+=("sqlalchemy>=2")
fi
if [ ${#missing[@]} -gt 0 ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
  fi
  pip_args=(install -q --disable-pip-version-check)
  # Debian's own Python refuses pip installs without this (PEP 668).
  if python3 -c 'import os, sys, sysconfig; sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    pip_args+=(--break-system-packages)
  fi
  # Not root and not in a virtualenv: install for this user.
  if [ "$(id -u)" -ne 0 ] && python3 -c 'import sys; sys.exit(0 if sys.prefix == sys.base_prefix else 1)' &&
     [ ! -w "$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" ]; then
    pip_args+=(--user)
  fi
  echo "setup: pip installing ${missing[*]}"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip "${pip_args[@]}" "${missing[@]}"
fi

# --- SQLAlchemy 1.4 (Superset's), in a virtualenv of its own ---------------
# test_sqlalchemy14.py runs there (run.sh); 2.x stays the system's.
sa14=${XDG_CACHE_HOME:-$HOME/.cache}/tautan-sa14
if ! "$sa14/bin/python" -c 'import sqlalchemy, psycopg2, pytest, pytest_timeout, sys; sys.exit(not sqlalchemy.__version__.startswith("1.4"))' >/dev/null 2>&1; then
  echo "setup: virtualenv $sa14 with SQLAlchemy 1.4"
  python3 -m venv "$sa14"
  "$sa14/bin/pip" install -q --disable-pip-version-check "sqlalchemy>=1.4,<2" psycopg2-binary pytest pytest-timeout
fi

# --- Java: pgJDBC from Debian and a compiler ------------------------------
need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
