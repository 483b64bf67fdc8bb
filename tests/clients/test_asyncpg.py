"""asyncpg (extended protocol only, binary everything, its own pool).

No pytest-asyncio: each test runs its own event loop with asyncio.run().
"""

import asyncio
import datetime
import decimal
import time

import asyncpg
import pytest

from expected import (
    BIAYA_SUM_ID_1_10,
    CANCEL_BOUND_S,
    KECAMATAN,
    KUNJUNGAN_ROWS,
    PUSKESMAS,
    RAWAT_INAP_ID,
    SLOW_QUERY,
    kunjungan_biaya,
    kunjungan_nik,
    kunjungan_waktu,
)


def run(coro):
    return asyncio.run(coro)


async def connect(login):
    return await asyncpg.connect(timeout=10, **login.asyncpg_kwargs())


def test_fetch_with_params(walidata):
    async def go():
        conn = await connect(walidata)
        try:
            rows = await conn.fetch("SELECT nama FROM ref.kecamatan WHERE kode = $1", "31.71.06")
            assert [r["nama"] for r in rows] == [KECAMATAN["31.71.06"]]
            nama = await conn.fetchval(
                "SELECT nama FROM kesehatan.kesehatan.puskesmas WHERE kode = $1", "P3171010101"
            )
            assert nama == PUSKESMAS["P3171010101"]
            rows = await conn.fetch(
                "SELECT kode, nama FROM kesehatan.kesehatan.puskesmas WHERE kecamatan_kode = $1 OR kode = $2 "
                "ORDER BY kode",
                "31.71.02",
                "P3171080101",
            )
            assert [tuple(r) for r in rows] == [
                ("P3171020101", PUSKESMAS["P3171020101"]),
                ("P3171080101", PUSKESMAS["P3171080101"]),
            ]
        finally:
            await conn.close()

    run(go())


def test_binary_decoding(walidata):
    async def go():
        conn = await connect(walidata)
        try:
            row = await conn.fetchrow(
                "SELECT CAST(id AS bigint) AS id, nik, waktu, biaya, rawat_inap "
                "FROM kesehatan.kesehatan.kunjungan WHERE CAST(id AS bigint) = $1",
                RAWAT_INAP_ID,
            )
            assert type(row["id"]) is int and row["id"] == RAWAT_INAP_ID
            assert type(row["nik"]) is str and row["nik"] == kunjungan_nik(RAWAT_INAP_ID)
            assert type(row["waktu"]) is datetime.datetime
            assert row["waktu"] == kunjungan_waktu(RAWAT_INAP_ID) and row["waktu"].tzinfo is None
            assert type(row["biaya"]) is decimal.Decimal and row["biaya"] == kunjungan_biaya(RAWAT_INAP_ID)
            assert row["rawat_inap"] is True

            n, total = await conn.fetchrow(
                "SELECT count(*), sum(biaya) FROM kesehatan.kesehatan.kunjungan WHERE CAST(id AS bigint) <= $1",
                10,
            )
            assert type(n) is int and n == 10
            assert type(total) is decimal.Decimal and total == BIAYA_SUM_ID_1_10

            # id is bigint unsigned at the source -> numeric: $1 is numeric, the value a Decimal
            row = await conn.fetchrow("SELECT id, biaya FROM kesehatan.kesehatan.kunjungan WHERE id = $1", 1)
            assert type(row["id"]) is decimal.Decimal and row["id"] == 1
            assert row["biaya"] == kunjungan_biaya(1)
        finally:
            await conn.close()

    run(go())


@pytest.mark.timeout(60)
def test_cursor_in_transaction(walidata):
    async def go():
        conn = await connect(walidata)
        try:
            n = 0
            async with conn.transaction():
                async for _ in conn.cursor(
                    "SELECT id, kecamatan_kode FROM kesehatan.kesehatan.kunjungan", prefetch=1000
                ):
                    n += 1
            assert n == KUNJUNGAN_ROWS
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    run(go())


def test_pool_reuse(walidata):
    async def go():
        # every release runs the reset queries (pg_advisory_unlock_all(),
        # CLOSE ALL, UNLISTEN *, RESET ALL) on the returned connection
        async with asyncpg.create_pool(min_size=1, max_size=2, timeout=10, **walidata.asyncpg_kwargs()) as pool:
            for _ in range(5):
                async with pool.acquire() as conn:
                    assert await conn.fetchval("SELECT count(*) FROM ref.kecamatan") == len(KECAMATAN)
            counts = await asyncio.gather(
                *(pool.fetchval("SELECT count(*) FROM kesehatan.kesehatan.puskesmas") for _ in range(6))
            )
            assert counts == [len(PUSKESMAS)] * 6

    run(go())


@pytest.mark.timeout(60)
def test_timeout_cancels(walidata):
    async def go():
        conn = await connect(walidata)
        try:
            started = time.monotonic()
            with pytest.raises((asyncio.TimeoutError, asyncpg.exceptions.QueryCanceledError)):
                # the outer bound only guards the test: the inner timeout must fire first
                await asyncio.wait_for(conn.fetchval(SLOW_QUERY, timeout=1), CANCEL_BOUND_S)
            assert time.monotonic() - started < CANCEL_BOUND_S - 1, "timeout did not stop the query"
            # asyncpg sent a CancelRequest and waited for the query to end
            assert await asyncio.wait_for(conn.fetchval("SELECT count(*) FROM ref.kecamatan"), 10) == len(
                KECAMATAN
            )
        finally:
            await asyncio.wait_for(conn.close(), 10)

    run(go())


def test_wrong_password(wrong_password):
    async def go():
        with pytest.raises(asyncpg.exceptions.InvalidPasswordError) as e:
            await connect(wrong_password)
        assert e.value.sqlstate == "28P01"

    run(go())


def test_dinsos_sees_only_its_tables(dinsos):
    async def go():
        conn = await connect(dinsos)
        try:
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await conn.fetch("SELECT * FROM kesehatan.kesehatan.kunjungan LIMIT 1")
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await conn.fetch("SELECT * FROM kependudukan.public.penduduk LIMIT 1")
            assert await conn.fetchval("SELECT count(*) FROM ref.kecamatan") == len(KECAMATAN)
        finally:
            await conn.close()

    run(go())


def test_write_refused(walidata):
    async def go():
        conn = await connect(walidata)
        try:
            with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError) as e:
                await conn.execute("DELETE FROM kesehatan.kesehatan.kunjungan WHERE id = $1", 1)
            assert e.value.sqlstate == "25006"
        finally:
            await conn.close()

    run(go())


# Types asyncpg introspects before it can decode or bind them (it knows
# the scalars themselves by OID): arrays of the common scalars, json and
# jsonb, by their fixed OIDs (int2[] .. oid[]).
INTROSPECTED = [1005, 1007, 1016, 1009, 1015, 1231, 1022, 1000, 1182, 1115, 1185, 2951, 1001,
                114, 3802, 1187, 1028]


def test_type_introspection_answers_as_postgresql(walidata):
    """asyncpg's own introspection query (sent as asyncpg sends it) gives
    the rows PostgreSQL gives for the same types."""
    from asyncpg import introspection

    # PostgreSQL sends `kind` and `elemdelim` as "char" (bytes here); tautan
    # has no "char" on the wire and sends text: compared as text.
    def text(v):
        return v.decode() if isinstance(v, bytes) else v

    async def rows(conn, query):
        found = await conn.fetch(query, INTROSPECTED)
        return sorted(
            (r["name"], r["ns"], text(r["kind"]), r["depth"], text(r["elemdelim"]),
             r["elemtype_name"], r["basetype_name"], r["range_subtype_name"])
            for r in found
        )

    async def go():
        postgres = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                         database="postgres", ssl=False, timeout=10)
        conn = await connect(walidata)
        try:
            for query in (introspection.INTRO_LOOKUP_TYPES, introspection.INTRO_LOOKUP_TYPES_13):
                assert await rows(conn, query) == await rows(postgres, query)
        finally:
            await conn.close()
            await postgres.close()

    run(go())


def test_arrays_are_read_and_bound(walidata):
    async def go():
        conn = await connect(walidata)
        try:
            assert await conn.fetchval("SELECT ARRAY[1, 2, NULL]::int4[]") == [1, 2, None]
            assert await conn.fetchval("SELECT ARRAY[10000000000]::int8[]") == [10000000000]
            assert await conn.fetchval("SELECT ARRAY['a', NULL, 'é']::text[]") == ["a", None, "é"]
            assert await conn.fetchval("SELECT ARRAY[1.5, NULL]::float8[]") == [1.5, None]
            rows = await conn.fetch(
                "SELECT nama FROM ref.kecamatan WHERE kode = ANY($1::text[]) ORDER BY kode",
                ["31.71.06", "31.71.01", "tidak-ada"],
            )
            assert [r["nama"] for r in rows] == [KECAMATAN["31.71.01"], KECAMATAN["31.71.06"]]
            n = await conn.fetchval(
                "SELECT count(*) FROM (SELECT unnest(ARRAY[1, 2, 3, 4]::int8[]) AS v) t "
                "WHERE v = ANY($1::int8[])",
                [1, 2, 3, -5],
            )
            assert n == 3
        finally:
            await conn.close()

    run(go())
