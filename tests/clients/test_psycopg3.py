"""psycopg 3 (server-side parameter binding, binary results, pipelines)."""

import datetime
import decimal

import psycopg
import psycopg.errors
import pytest

from expected import (
    BIAYA_SUM_ID_1_10,
    KECAMATAN,
    KECAMATAN_KODES,
    KUNJUNGAN_PER_KECAMATAN,
    KUNJUNGAN_ROWS,
    PENDUDUK_PER_KECAMATAN,
    PUSKESMAS,
    RAWAT_INAP_ID,
    kunjungan_biaya,
    kunjungan_nik,
    kunjungan_waktu,
)


@pytest.fixture
def conn(walidata):
    with psycopg.connect(walidata.libpq(), autocommit=True) as c:
        yield c


def test_parameters(conn):
    # str goes as an untyped parameter, int as int2/int4/int8 ($1 in the
    # extended protocol, not interpolated)
    assert conn.execute(
        "SELECT nama FROM ref.kecamatan WHERE kode = %s", ["31.71.06"]
    ).fetchall() == [(KECAMATAN["31.71.06"],)]
    assert conn.execute(
        "SELECT nama FROM kesehatan.kesehatan.puskesmas WHERE kode = %(kode)s",
        {"kode": "P3171010101"},
    ).fetchone() == (PUSKESMAS["P3171010101"],)
    (total,) = conn.execute(
        "SELECT sum(biaya) FROM kesehatan.kesehatan.kunjungan WHERE id <= %s", [10]
    ).fetchone()
    assert total == BIAYA_SUM_ID_1_10
    rows = conn.execute(
        "SELECT kecamatan_kode, count(*) FROM kesehatan.kesehatan.kunjungan "
        "WHERE kecamatan_kode = %s OR kecamatan_kode = %s GROUP BY 1 ORDER BY 1",
        ["31.71.01", "31.71.08"],
    ).fetchall()
    assert rows == [("31.71.01", KUNJUNGAN_PER_KECAMATAN), ("31.71.08", KUNJUNGAN_PER_KECAMATAN)]


def test_list_parameters(conn):
    # A list is an array parameter: strings go untyped (the server gives
    # the array its element type), integers as int2[]/int8[].
    rows = conn.execute(
        "SELECT nama FROM ref.kecamatan WHERE kode = ANY(%s) ORDER BY kode",
        [["31.71.06", "31.71.01", "no-such"]],
    ).fetchall()
    assert rows == [(KECAMATAN["31.71.01"],), (KECAMATAN["31.71.06"],)]
    (n,) = conn.execute(
        "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE id = ANY(%s)", [[1, 2, 3, 10**12]]
    ).fetchone()
    assert n == 3
    (n,) = conn.execute(
        "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE id = ANY(%s)", [[]]
    ).fetchone()
    assert n == 0


def test_binary_cursor(conn):
    cur = conn.cursor(binary=True)
    cur.execute(
        "SELECT CAST(id AS bigint) AS id, nik, waktu, biaya, rawat_inap "
        "FROM kesehatan.kesehatan.kunjungan WHERE id = %s",
        [RAWAT_INAP_ID],
    )
    res = cur.pgresult
    assert [res.fformat(i) for i in range(res.nfields)] == [1] * 5  # the server sent binary
    (id_, nik, waktu, biaya, rawat_inap) = cur.fetchone()
    assert type(id_) is int and id_ == RAWAT_INAP_ID
    assert type(nik) is str and nik == kunjungan_nik(RAWAT_INAP_ID)
    assert type(waktu) is datetime.datetime and waktu == kunjungan_waktu(RAWAT_INAP_ID)
    assert waktu.tzinfo is None  # datetime -> timestamp without time zone
    assert type(biaya) is decimal.Decimal and biaya == kunjungan_biaya(RAWAT_INAP_ID)
    assert biaya.as_tuple().exponent == -2  # decimal(12,2): scale survives binary numeric
    assert rawat_inap is True

    cur.execute("SELECT count(*), sum(biaya) FROM kesehatan.kesehatan.kunjungan WHERE id <= %s", [10])
    n, total = cur.fetchone()
    assert type(n) is int and n == 10
    assert type(total) is decimal.Decimal and total == BIAYA_SUM_ID_1_10

    # unsigned bigint id -> numeric: still a number in binary
    cur.execute("SELECT id FROM kesehatan.kesehatan.kunjungan WHERE id = %s", [1])
    (raw_id,) = cur.fetchone()
    assert raw_id == 1


@pytest.mark.timeout(60)
def test_server_side_cursor(walidata):
    with psycopg.connect(walidata.libpq()) as conn:  # not autocommit: DECLARE needs a transaction
        with conn.cursor(name="semua_kunjungan") as cur:
            cur.itersize = 1000
            cur.execute("SELECT id, kecamatan_kode FROM kesehatan.kesehatan.kunjungan")
            n = 0
            for id_, kode in cur:
                assert kode in KECAMATAN_KODES
                n += 1
        assert n == KUNJUNGAN_ROWS
        conn.commit()
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pipeline_with_error(conn):
    with pytest.raises(psycopg.errors.UndefinedColumn) as e:
        with conn.pipeline():
            first = conn.execute("SELECT nama FROM ref.kecamatan WHERE kode = %s", ["31.71.01"])
            conn.execute("SELECT tidak_ada FROM ref.kecamatan")
            skipped = conn.execute("SELECT nama FROM ref.kecamatan WHERE kode = %s", ["31.71.02"])
    assert e.value.sqlstate == "42703"
    assert first.fetchall() == [(KECAMATAN["31.71.01"],)]
    # the statement after the error was never run: no result
    with pytest.raises(psycopg.ProgrammingError):
        skipped.fetchall()
    # the connection is usable again, also in a new pipeline
    with conn.pipeline():
        a = conn.execute("SELECT count(*) FROM ref.kecamatan")
        b = conn.execute("SELECT nama FROM kesehatan.kesehatan.puskesmas WHERE kode = %s", ["P3171060101"])
    assert a.fetchone() == (len(KECAMATAN),)
    assert b.fetchone() == (PUSKESMAS["P3171060101"],)


def test_parameter_status(conn):
    info = conn.info
    assert info.parameter_status("server_version").startswith("16")
    assert info.server_version // 10000 == 16
    assert info.parameter_status("client_encoding") == "UTF8"
    assert info.parameter_status("integer_datetimes") == "on"
    assert info.parameter_status("standard_conforming_strings") == "on"


def test_wrong_password(wrong_password):
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(wrong_password.libpq())
    # libpq reports a failed login as text only (no SQLSTATE on the exception)
    assert "authentication failed" in str(e.value)


def test_dinkes_aggregates(dinkes):
    with psycopg.connect(dinkes.libpq(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT kecamatan_kode, sum(jumlah) FROM kependudukan.public.penduduk_per_kecamatan "
            "GROUP BY kecamatan_kode ORDER BY kecamatan_kode"
        ).fetchall()
        assert rows == [(k, PENDUDUK_PER_KECAMATAN) for k in KECAMATAN_KODES]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT nama FROM kependudukan.public.penduduk LIMIT 1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM kepegawaian.kepegawaian.pegawai")
