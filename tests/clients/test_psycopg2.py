"""psycopg2 (libpq, text results, client-side parameter interpolation)."""

import datetime
import decimal
import threading
import time

import psycopg2
import psycopg2.errors
import pytest

from expected import (
    BIAYA_SUM_ID_1_10,
    CANCEL_BOUND_S,
    DINKES_PENDUDUK_COLUMNS,
    KECAMATAN,
    KECAMATAN_KODES,
    KUNJUNGAN_ROWS,
    PENDUDUK_PER_KECAMATAN,
    PUSKESMAS,
    RAWAT_INAP_ID,
    SLOW_QUERY,
    WAKTU_ID_1,
    kunjungan_biaya,
    kunjungan_rawat_inap,
    kunjungan_waktu,
)


@pytest.fixture
def conn(walidata):
    c = psycopg2.connect(walidata.libpq())
    yield c
    c.close()


def fetch(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_connect_and_version(conn):
    assert conn.server_version // 10000 == 16
    (version,) = fetch(conn, "SELECT version()")[0]
    assert version.startswith("PostgreSQL 16")


def test_parameters_str_and_int(conn):
    assert fetch(conn, "SELECT nama FROM ref.kecamatan WHERE kode = %s", ("31.71.06",)) == [
        (KECAMATAN["31.71.06"],)
    ]
    rows = fetch(
        conn,
        "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE id <= %s AND kecamatan_kode = %s",
        (80, "31.71.01"),
    )
    # ids 1..80 with 1 + id % 8 == 1: 8, 16, ..., 80
    assert rows == [(10,)]


def test_decimal_datetime_bool(conn):
    rows = fetch(
        conn,
        "SELECT id, waktu, biaya, rawat_inap FROM kesehatan.kesehatan.kunjungan "
        "WHERE id <= %s ORDER BY id",
        (RAWAT_INAP_ID,),
    )
    assert len(rows) == RAWAT_INAP_ID
    for i, (id_, waktu, biaya, rawat_inap) in enumerate(rows, start=1):
        assert id_ == i
        assert type(waktu) is datetime.datetime and waktu == kunjungan_waktu(i)
        assert type(biaya) is decimal.Decimal and biaya == kunjungan_biaya(i)
        assert rawat_inap is kunjungan_rawat_inap(i)
    assert rows[0][1] == WAKTU_ID_1
    (total,) = fetch(conn, "SELECT sum(biaya) FROM kesehatan.kesehatan.kunjungan WHERE id <= 10")[0]
    assert isinstance(total, decimal.Decimal) and total == BIAYA_SUM_ID_1_10


def test_flattened_schema_name(conn):
    # "<link>.<schema>".table is the same table as <link>.<schema>.table
    rows = fetch(conn, 'SELECT kode, nama FROM "kesehatan.kesehatan".puskesmas ORDER BY kode')
    assert dict(rows) == PUSKESMAS


@pytest.mark.timeout(60)
def test_named_cursor_in_transaction(conn):
    with conn:  # one transaction, committed at the end
        with conn.cursor(name="semua_kunjungan") as cur:
            cur.itersize = 1000
            cur.execute("SELECT id, kecamatan_kode FROM kesehatan.kesehatan.kunjungan")
            n = sum(1 for _ in cur)
    assert n == KUNJUNGAN_ROWS
    assert fetch(conn, "SELECT 1") == [(1,)]


def test_error_then_rollback(conn):
    with pytest.raises(psycopg2.errors.UndefinedColumn):
        fetch(conn, "SELECT tidak_ada FROM ref.kecamatan")
    conn.rollback()
    assert fetch(conn, "SELECT count(*) FROM ref.kecamatan") == [(len(KECAMATAN),)]


def test_failed_transaction_25p02(conn):
    assert fetch(conn, "SELECT 1") == [(1,)]  # opens a transaction (autocommit off)
    with pytest.raises(psycopg2.errors.UndefinedColumn):
        fetch(conn, "SELECT tidak_ada FROM ref.kecamatan")
    with pytest.raises(psycopg2.errors.InFailedSqlTransaction) as e:
        fetch(conn, "SELECT 1")
    assert e.value.pgcode == "25P02"
    conn.rollback()
    assert fetch(conn, "SELECT 1") == [(1,)]


@pytest.mark.timeout(60)
def test_cancel(conn):
    outcome = {}

    def run():
        try:
            outcome["rows"] = fetch(conn, SLOW_QUERY)
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    time.sleep(1)
    assert worker.is_alive(), f"the slow query finished before the cancel: {outcome}"
    started = time.monotonic()
    conn.cancel()
    worker.join(CANCEL_BOUND_S)
    assert not worker.is_alive(), f"query still running {CANCEL_BOUND_S} s after conn.cancel()"
    assert isinstance(outcome.get("error"), psycopg2.errors.QueryCanceled), outcome
    assert outcome["error"].pgcode == "57014"
    assert time.monotonic() - started < CANCEL_BOUND_S
    conn.rollback()
    assert fetch(conn, "SELECT 1") == [(1,)]


def test_wrong_password(wrong_password):
    with pytest.raises(psycopg2.OperationalError) as e:
        psycopg2.connect(wrong_password.libpq())
    assert "authentication" in str(e.value)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO kesehatan.kesehatan.puskesmas VALUES ('X', 'Y', '31.71.01')",
        "UPDATE kesehatan.kesehatan.puskesmas SET nama = 'Y' WHERE kode = 'P3171010101'",
        "DELETE FROM kesehatan.kesehatan.kunjungan WHERE id = 1",
        "CREATE TABLE public.coba (a int)",
    ],
    ids=["insert", "update", "delete", "create"],
)
def test_writes_are_read_only(conn, sql):
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction) as e:
        fetch(conn, sql)
    assert e.value.pgcode == "25006"
    conn.rollback()
    assert fetch(conn, "SELECT nama FROM kesehatan.kesehatan.puskesmas WHERE kode = 'P3171010101'") == [
        (PUSKESMAS["P3171010101"],)
    ]


def test_dinsos_cannot_see_kesehatan(dinsos):
    conn = psycopg2.connect(dinsos.libpq())
    try:
        with pytest.raises(psycopg2.errors.UndefinedTable) as e:
            fetch(conn, "SELECT * FROM kesehatan.kesehatan.puskesmas")
        assert e.value.pgcode == "42P01"
        conn.rollback()
        assert fetch(conn, "SELECT nama FROM ref.kecamatan WHERE kode = %s", ("31.71.01",)) == [
            ("Gambir",)
        ]
    finally:
        conn.close()


def test_dinkes_column_grants(dinkes):
    conn = psycopg2.connect(dinkes.libpq())
    conn.autocommit = True
    try:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege) as e:
            fetch(conn, "SELECT nik FROM kependudukan.public.penduduk")
        assert e.value.pgcode == "42501"
        rows = fetch(
            conn,
            f"SELECT kecamatan_kode, count(*) FROM kependudukan.public.penduduk "
            f"WHERE {' IS NOT NULL AND '.join(DINKES_PENDUDUK_COLUMNS)} IS NOT NULL "
            f"GROUP BY kecamatan_kode ORDER BY kecamatan_kode",
        )
        assert rows == [(k, PENDUDUK_PER_KECAMATAN) for k in KECAMATAN_KODES]
    finally:
        conn.close()


def test_session_statements(conn):
    conn.autocommit = True  # each statement as the application sent it
    assert fetch(conn, "SHOW transaction isolation level") == [("read committed",)]
    with conn.cursor() as cur:
        for sql, show, want in [
            ("SET application_name = 'uji-klien'", "SHOW application_name", "uji-klien"),
            ("SET extra_float_digits = 3", "SHOW extra_float_digits", "3"),
            ("SET search_path = ref, public", "SHOW search_path", "ref, public"),
            ("SET TIME ZONE 'UTC'", "SHOW timezone", "UTC"),
        ]:
            cur.execute(sql)
            cur.execute(show)
            assert cur.fetchall() == [(want,)], sql
        for sql in [
            "BEGIN",
            "SAVEPOINT sp1",
            "SELECT 1",
            "RELEASE SAVEPOINT sp1",
            "COMMIT",
            "START TRANSACTION READ ONLY",
            "SELECT 1",
            "ROLLBACK",
            "DISCARD ALL",
            "RESET ALL",
            "CLOSE ALL",
            "UNLISTEN *",
        ]:
            cur.execute(sql)  # answered, not refused
    assert fetch(conn, "SELECT 1") == [(1,)]


def test_declare_fetch_close(conn):
    conn.autocommit = True
    kodes = sorted(KECAMATAN)
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("DECLARE c CURSOR FOR SELECT kode FROM ref.kecamatan ORDER BY kode")
        cur.execute("FETCH 3 FROM c")
        assert [r[0] for r in cur.fetchall()] == kodes[:3]
        cur.execute("FETCH 100 FROM c")
        assert [r[0] for r in cur.fetchall()] == kodes[3:]
        cur.execute("FETCH 1 FROM c")
        assert cur.fetchall() == []
        cur.execute("CLOSE c")
        cur.execute("COMMIT")


def test_catalog_filtered_per_user(walidata, dinsos):
    """pg_catalog and information_schema list only what the user may read."""
    for login, visible, hidden in [
        (walidata, ["kesehatan.kesehatan", "kependudukan.public", "dinsos.public", "ref"], []),
        (dinsos, ["dinsos.public", "ref", "system", "public"], ["kesehatan.kesehatan", "kependudukan.public"]),
    ]:
        c = psycopg2.connect(login.libpq())
        c.autocommit = True
        try:
            names = {r[0] for r in fetch(c, "SELECT nspname FROM pg_catalog.pg_namespace")}
            assert set(visible) <= names, (login.user, names)
            assert not set(hidden) & names, (login.user, names)
            tables = {
                r[0]
                for r in fetch(
                    c,
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_name IN ('kunjungan', 'puskesmas', 'penerima_bansos', 'penduduk')",
                )
            }
            want = {"kunjungan", "puskesmas", "penerima_bansos", "penduduk"} if login is walidata else {"penerima_bansos"}
            assert tables == want, (login.user, tables)
            relnames = {
                r[0]
                for r in fetch(
                    c,
                    "SELECT c.relname FROM pg_catalog.pg_class c "
                    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind = 'r'",
                    ("kesehatan.kesehatan",),
                )
            }
            assert relnames == ({"kunjungan", "puskesmas"} if login is walidata else set()), relnames
        finally:
            c.close()
