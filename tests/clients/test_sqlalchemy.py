"""SQLAlchemy 2.x over psycopg2: reflection reads pg_catalog the way ORMs,
migration tools and BI connectors do."""

import pytest
from sqlalchemy import MetaData, Table, create_engine, func, inspect, select
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import postgresql

from expected import (
    KESEHATAN_TABLES,
    KUNJUNGAN_PER_KECAMATAN,
    PUSKESMAS,
    PUSKESMAS_COLUMNS,
    PUSKESMAS_COMMENT,
    SCHEMA_DINSOS,
    SCHEMA_KEPENDUDUKAN,
    SCHEMA_KESEHATAN,
)


@pytest.fixture
def engine(walidata):
    e = create_engine(walidata.url(), pool_pre_ping=True)
    yield e
    e.dispose()


@pytest.fixture
def dinsos_engine(dinsos):
    e = create_engine(dinsos.url())
    yield e
    e.dispose()


def test_schema_names(engine):
    schemas = inspect(engine).get_schema_names()
    for s in (SCHEMA_KESEHATAN, SCHEMA_KEPENDUDUKAN, SCHEMA_DINSOS, "ref", "public"):
        assert s in schemas


def test_schema_names_restricted(dinsos_engine):
    schemas = inspect(dinsos_engine).get_schema_names()
    assert SCHEMA_DINSOS in schemas and "ref" in schemas
    assert SCHEMA_KEPENDUDUKAN not in schemas
    assert SCHEMA_KESEHATAN not in schemas
    assert inspect(dinsos_engine).get_table_names(schema=SCHEMA_KESEHATAN) == []


def test_table_names(engine):
    assert sorted(inspect(engine).get_table_names(schema=SCHEMA_KESEHATAN)) == KESEHATAN_TABLES


def test_columns(engine):
    insp = inspect(engine)
    cols = insp.get_columns("puskesmas", schema=SCHEMA_KESEHATAN)
    assert [c["name"] for c in cols] == PUSKESMAS_COLUMNS
    assert all(isinstance(c["type"], sqltypes.String) for c in cols), cols

    types = {c["name"]: c["type"] for c in insp.get_columns("kunjungan", schema=SCHEMA_KESEHATAN)}
    assert isinstance(types["biaya"], sqltypes.Numeric) and not isinstance(types["biaya"], sqltypes.Float)
    assert isinstance(types["waktu"], sqltypes.DateTime) and not types["waktu"].timezone  # datetime -> timestamp
    assert isinstance(types["rawat_inap"], sqltypes.Boolean)  # tinyint(1) -> boolean
    assert isinstance(types["nik"], sqltypes.String)


def test_primary_key(engine):
    pk = inspect(engine).get_pk_constraint("puskesmas", schema=SCHEMA_KESEHATAN)
    assert pk["constrained_columns"] == ["kode"]


def test_table_comment(engine):
    assert inspect(engine).get_table_comment("puskesmas", schema=SCHEMA_KESEHATAN)["text"] == PUSKESMAS_COMMENT


def test_autoload_and_select(engine):
    t = Table("puskesmas", MetaData(), schema=SCHEMA_KESEHATAN, autoload_with=engine)
    assert list(t.c.keys()) == PUSKESMAS_COLUMNS
    assert [c.name for c in t.primary_key.columns] == ["kode"]
    with engine.connect() as conn:
        nama = conn.execute(select(t.c.nama).where(t.c.kode == "P3171010101")).scalar_one()
        assert nama == PUSKESMAS["P3171010101"]
        rows = conn.execute(select(t).order_by(t.c.kode)).all()
        assert {r.kode: r.nama for r in rows} == PUSKESMAS


def test_autoload_aggregate(engine):
    k = Table("kunjungan", MetaData(), schema=SCHEMA_KESEHATAN, autoload_with=engine)
    stmt = (
        select(k.c.kecamatan_kode, func.count().label("n"))
        .group_by(k.c.kecamatan_kode)
        .order_by(k.c.kecamatan_kode)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    assert len(rows) == 8 and all(r.n == KUNJUNGAN_PER_KECAMATAN for r in rows)


# run.sh adds the link uji_pg (sql/uji.pg.sql): beda has a column of every
# PostgreSQL type tautan maps.
SCHEMA_UJI = "uji_pg.public"


def test_reflection_of_every_type(engine):
    """Types, lengths, precision and scale as the source declared them."""
    insp = inspect(engine)
    cols = {c["name"]: c for c in insp.get_columns("beda", schema=SCHEMA_UJI)}
    assert len(cols) == 19, list(cols)
    t = {name: c["type"] for name, c in cols.items()}
    assert isinstance(t["id"], sqltypes.Integer) and not cols["id"]["nullable"]
    assert isinstance(t["i8"], sqltypes.BigInteger)
    assert isinstance(t["i2"], sqltypes.SmallInteger)
    assert isinstance(t["b"], sqltypes.Boolean)
    assert isinstance(t["n"], sqltypes.Numeric) and (t["n"].precision, t["n"].scale) == (12, 3)
    assert isinstance(t["vc"], sqltypes.String) and t["vc"].length == 10
    assert isinstance(t["ch"], sqltypes.CHAR) and t["ch"].length == 4
    assert isinstance(t["t"], sqltypes.Text)
    assert isinstance(t["by"], sqltypes.LargeBinary)
    assert isinstance(t["d"], sqltypes.Date)
    assert isinstance(t["tstz"], sqltypes.DateTime) and t["tstz"].timezone
    assert isinstance(t["ts"], sqltypes.DateTime) and not t["ts"].timezone
    assert isinstance(t["u"], sqltypes.Uuid)
    assert isinstance(t["iv"], postgresql.INTERVAL)
    assert isinstance(t["f8"], sqltypes.Float)


def test_primary_key_and_indexes_of_every_type_table(engine):
    insp = inspect(engine)
    pk = insp.get_pk_constraint("beda", schema=SCHEMA_UJI)
    assert pk["constrained_columns"] == ["id"] and pk["name"] == "beda_pkey"
    # The primary key's index is not listed as an index (as on PostgreSQL).
    assert insp.get_indexes("beda", schema=SCHEMA_UJI) == []
    assert insp.get_foreign_keys("beda", schema=SCHEMA_UJI) == []
    assert insp.get_unique_constraints("beda", schema=SCHEMA_UJI) == []


def test_oids_cached_by_one_connection_serve_another(engine):
    """A pool's second connection reads pg_attribute by the first's oid."""
    with engine.connect() as first:
        oid = first.exec_driver_sql(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON c.relnamespace = n.oid WHERE n.nspname = %(s)s AND c.relname = 'beda'",
            {"s": SCHEMA_UJI},
        ).scalar_one()
        with engine.connect() as second:
            names = second.exec_driver_sql(
                "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = %(o)s "
                "AND attnum > 0 ORDER BY attnum",
                {"o": oid},
            ).scalars().all()
    assert names[:3] == ["id", "b", "i2"] and len(names) == 19
