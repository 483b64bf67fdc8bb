"""pgcli: its backslash commands (pgspecial's catalog queries) run
non-interactively with -c, and the catalog queries its autocompletion
runs at every interactive start.

pgcli -c exits 0 even when a statement fails, so the tests read the output.
"""

import os
import subprocess
import sys

import pytest

from expected import KECAMATAN, KESEHATAN_TABLES, PUSKESMAS_COLUMNS, SCHEMA_DINSOS, SCHEMA_KESEHATAN

pytest.importorskip("pgcli")


def pgcli(login, tmp_path, *args):
    """Runs pgcli as `login`, returns stdout + stderr; pgcli's config and log
    go to tmp_path, not to the home directory."""
    env = dict(
        os.environ,
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PGPASSWORD=login.password,
        PGSSLMODE="disable",
        PGCONNECT_TIMEOUT="10",
        PAGER="cat",
        TERM="dumb",
    )
    env.pop("PGSERVICE", None)
    cmd = [sys.executable, "-m", "pgcli", "-h", login.host, "-p", str(login.port), "-U", login.user, "-w"]
    cmd += ["--pgclirc", str(tmp_path / "pgclirc"), "--less-chatty", *args, login.database]
    proc = subprocess.run(
        cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    log = tmp_path / "config" / "pgcli" / "log"
    if log.exists():
        assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")
    assert proc.returncode == 0, out
    return out


def test_dt_schema(walidata, tmp_path):
    out = pgcli(walidata, tmp_path, "-c", f'\\dt "{SCHEMA_KESEHATAN}".*')
    for table in KESEHATAN_TABLES:
        assert table in out, out
    assert SCHEMA_KESEHATAN in out
    assert "SELECT 2" in out, out  # two rows


def test_describe_table(walidata, tmp_path):
    out = pgcli(walidata, tmp_path, "-c", f'\\d "{SCHEMA_KESEHATAN}".puskesmas')
    for column in PUSKESMAS_COLUMNS:
        assert column in out, out
    assert "error" not in out.lower(), out


def test_query(walidata, tmp_path):
    out = pgcli(walidata, tmp_path, "-c", "SELECT nama FROM ref.kecamatan WHERE kode = '31.71.06'")
    assert KECAMATAN["31.71.06"] in out, out
    assert "SELECT 1" in out, out


def test_list_databases(walidata, tmp_path):
    out = pgcli(walidata, tmp_path, "-l")
    assert "tautan" in out, out


def test_dinsos_dt(dinsos, tmp_path):
    out = pgcli(dinsos, tmp_path, "-c", "\\dt *.*", "-c", "\\dn")
    assert "penerima_bansos" in out, out
    assert SCHEMA_DINSOS in out, out
    assert "kesehatan" not in out, out
    assert "kependudukan" not in out, out


def completer_for(login):
    """A PGCompleter filled the way pgcli's background refresh fills it."""
    from pgcli.completion_refresher import CompletionRefresher
    from pgcli.pgcompleter import PGCompleter
    from pgcli.pgexecute import PGExecute
    from pgspecial.main import PGSpecial

    executor = PGExecute(
        login.database, login.user, login.password, login.host, login.port, sslmode="disable"
    )
    try:
        completer = PGCompleter(smart_completion=True, pgspecial=PGSpecial(), settings={})
        for name, refresh in CompletionRefresher.refreshers.items():
            refresh(completer, executor)  # schemata, tables, views, types, databases, casing, functions
        return completer
    finally:
        executor.conn.close()


@pytest.mark.xfail(
    strict=True,
    reason="known gap: pgcli's function list casts pg_proc's oidvector "
    "columns to regtype[] (COALESCE(proallargtypes::regtype[], "
    "proargtypes::regtype[])::text[]), which tautan's pg_proc cannot answer",
)
def test_completion_metadata(walidata):
    from prompt_toolkit.document import Document

    completer = completer_for(walidata)
    tables = completer.dbmetadata["tables"]
    schema = completer.escape_name(SCHEMA_KESEHATAN)
    assert sorted(tables[schema]) == KESEHATAN_TABLES
    assert list(tables[schema]["puskesmas"]) == PUSKESMAS_COLUMNS
    text = f'SELECT * FROM "{SCHEMA_KESEHATAN}".p'
    suggestions = [c.text for c in completer.get_completions(Document(text), None)]
    assert "puskesmas" in suggestions, suggestions


@pytest.mark.xfail(
    strict=True,
    reason="known gap: pgcli's function list casts pg_proc's oidvector "
    "columns to regtype[] (COALESCE(proallargtypes::regtype[], "
    "proargtypes::regtype[])::text[]), which tautan's pg_proc cannot answer",
)
def test_completion_metadata_restricted(dinsos):
    completer = completer_for(dinsos)
    schemas = completer.dbmetadata["tables"]
    assert completer.escape_name(SCHEMA_DINSOS) in schemas
    assert completer.escape_name(SCHEMA_KESEHATAN) not in schemas
    assert all("kependudukan" not in s for s in schemas), list(schemas)
