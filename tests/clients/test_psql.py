"""psql's describe commands: what \\d+ shows of a table comes from
pg_attribute, pg_index, pg_constraint and pg_description."""

import os
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql not installed")


def psql(login, command):
    out = subprocess.run(
        ["psql", "-X", "-h", login.host, "-p", str(login.port), "-U", login.user, "-d", login.database,
         "-c", command],
        env={**os.environ, "PGPASSWORD": login.password},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr
    return out.stdout


def test_describe_plus_shows_declared_types_and_the_primary_key(walidata):
    out = psql(walidata, '\\d+ "uji_pg.public".beda')
    for expected in [
        "numeric(12,3)",
        "character varying(10)",
        "character(4)",
        "uuid",
        "interval",
        "timestamp with time zone",
        '"beda_pkey" PRIMARY KEY, btree (id)',
    ]:
        assert expected in out, out


def test_describe_restricted_table_names_only_granted_columns(dinkes):
    out = psql(dinkes, '\\d+ "kependudukan.public".penduduk')
    for column in ("kecamatan_kode", "jenis_kelamin", "tanggal_lahir", "status_kawin"):
        assert column in out, out
    for column in ("nik", "nama"):
        assert f" {column} " not in out, out
