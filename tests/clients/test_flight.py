"""The Arrow Flight SQL door read as ADBC reads it (adbc-driver-flightsql,
the driver DBeaver's and Python's Flight SQL connections use), compared with
what psycopg2 gets for the same statements over the PostgreSQL door.

run.sh starts the server with the shipped [flight] section on a free port
(TAUTAN_FLIGHT_PORT).
"""

import os

import psycopg2
import pytest

from conftest import USERS, Login

FLIGHT_PORT = os.environ.get("TAUTAN_FLIGHT_PORT")
pytestmark = pytest.mark.skipif(not FLIGHT_PORT, reason="TAUTAN_FLIGHT_PORT not set (run.sh sets it)")

adbc = pytest.importorskip("adbc_driver_flightsql.dbapi")


def connect(user, password=None):
    return adbc.connect(
        f"grpc://127.0.0.1:{FLIGHT_PORT}",
        db_kwargs={"username": user, "password": USERS[user] if password is None else password},
    )


def wire(user, sql):
    with psycopg2.connect(Login(user).libpq()) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]


CASES = [
    "SELECT kode, nama FROM ref.kecamatan ORDER BY kode",
    "SELECT kecamatan_kode, count(*) AS n FROM kesehatan.kesehatan.kunjungan GROUP BY 1 ORDER BY 1",
    "SELECT jenis_kelamin, count(*) AS n FROM kependudukan.public.penduduk GROUP BY 1 ORDER BY 1",
]


@pytest.mark.parametrize("user", ["walidata", "analis_dinkes"])
def test_statements_answer_what_the_wire_answers(user):
    with connect(user) as conn:
        with conn.cursor() as cur:
            for sql in CASES:
                cur.execute(sql)
                table = cur.fetch_arrow_table()
                rows = [tuple(r.values()) for r in table.to_pylist()]
                assert rows == wire(user, sql), sql


def test_a_denied_column_is_the_same_refusal():
    with connect("analis_dinkes") as conn:
        with conn.cursor() as cur:
            with pytest.raises(Exception) as refused:
                cur.execute("SELECT nik FROM kependudukan.public.penduduk")
                cur.fetch_arrow_table()
            assert "42501" in str(refused.value)


def test_listings_hold_only_what_the_user_may_read():
    with connect("dinsos") as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    tables = sorted(
        f"{c['catalog_name']}.{s['db_schema_name']}.{t['table_name']}"
        for c in objects
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    )
    # As PostgreSQL clients see them: one database (the federation), each
    # link's schema a schema of it.
    assert "tautan.dinsos.public.penerima_bansos" in tables
    assert "tautan.ref.kecamatan" in tables
    assert not any(
        t.startswith(("tautan.kesehatan.", "tautan.kependudukan.", "tautan.kepegawaian."))
        for t in tables
    ), tables
    # A listed name reads back as a table.
    with connect("dinsos") as conn:
        with conn.cursor() as cur:
            cur.execute('SELECT count(*) AS n FROM "tautan"."dinsos.public"."penerima_bansos"')
            assert cur.fetch_arrow_table().to_pylist()[0]["n"] > 0


def test_a_wrong_password_is_refused():
    with pytest.raises(Exception) as refused:
        with connect("walidata", "not-the-password") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
    assert "28P01" in str(refused.value) or "nauthenticated" in str(refused.value)


def test_bound_parameters_answer_what_the_wire_answers():
    # ADBC prepares the statement, binds the row of values with DoPut and
    # runs it with the handle the server answered.
    sql_wire = "SELECT kode, nama FROM ref.kecamatan WHERE kode = %s OR nama = %s ORDER BY kode"
    with connect("walidata") as conn:
        with conn.cursor() as cur:
            for a, b in [("31.71.01", "-"), ("-", "Gambir"), ("x' OR '1'='1", "') OR true --")]:
                cur.execute(
                    "SELECT kode, nama FROM ref.kecamatan WHERE kode = $1 OR nama = $2 ORDER BY kode",
                    parameters=(a, b),
                )
                rows = [tuple(r.values()) for r in cur.fetch_arrow_table().to_pylist()]
                with psycopg2.connect(Login("walidata").libpq()) as pg:
                    with pg.cursor() as c:
                        c.execute(sql_wire, (a, b))
                        assert rows == [tuple(r) for r in c.fetchall()], (a, b)

