"""SQLAlchemy 1.4's inspector (Superset and older Airflow still use 1.4):
its reflection queries differ from 2.x's (`pg_type_is_visible`,
`boolean = 'f'`, `pg_get_indexdef`). run.sh runs this file in a virtualenv
with SQLAlchemy 1.4; under 2.x it is skipped (test_sqlalchemy.py covers 2.x)."""

import pytest

sqlalchemy = pytest.importorskip("sqlalchemy")
if not sqlalchemy.__version__.startswith("1.4"):
    pytest.skip("SQLAlchemy 1.4 only (run.sh runs it in its own virtualenv)", allow_module_level=True)

from sqlalchemy import MetaData, Table, create_engine, inspect, select  # noqa: E402
from sqlalchemy import types as sqltypes  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402

SCHEMA_UJI = "uji_pg.public"  # run.sh adds the link uji_pg (sql/uji.pg.sql)


@pytest.fixture
def engine(walidata):
    e = create_engine(walidata.url())
    yield e
    e.dispose()


def test_schemas_and_tables(engine):
    insp = inspect(engine)
    assert SCHEMA_UJI in insp.get_schema_names()
    assert "beda" in insp.get_table_names(schema=SCHEMA_UJI)


def test_columns_of_every_type(engine):
    cols = {c["name"]: c for c in inspect(engine).get_columns("beda", schema=SCHEMA_UJI)}
    assert len(cols) == 19, list(cols)
    t = {name: c["type"] for name, c in cols.items()}
    assert isinstance(t["id"], sqltypes.Integer) and not cols["id"]["nullable"]
    assert isinstance(t["n"], sqltypes.Numeric) and (t["n"].precision, t["n"].scale) == (12, 3)
    assert isinstance(t["vc"], sqltypes.String) and t["vc"].length == 10
    assert isinstance(t["ch"], sqltypes.CHAR) and t["ch"].length == 4
    assert isinstance(t["u"], postgresql.UUID)
    assert isinstance(t["iv"], postgresql.INTERVAL)
    assert isinstance(t["tstz"], sqltypes.DateTime) and t["tstz"].timezone
    assert isinstance(t["b"], sqltypes.Boolean)


def test_primary_key_and_indexes(engine):
    insp = inspect(engine)
    assert insp.get_pk_constraint("beda", schema=SCHEMA_UJI)["constrained_columns"] == ["id"]
    assert insp.get_indexes("beda", schema=SCHEMA_UJI) == []
    assert insp.get_foreign_keys("beda", schema=SCHEMA_UJI) == []


def test_autoload_and_select(engine):
    t = Table("beda", MetaData(), schema=SCHEMA_UJI, autoload_with=engine)
    assert [c.name for c in t.primary_key.columns] == ["id"]
    with engine.connect() as conn:
        assert len(conn.execute(select(t).order_by(t.c.id)).all()) > 0


def test_restricted_columns(dinkes):
    e = create_engine(dinkes.url())
    try:
        names = [c["name"] for c in inspect(e).get_columns("penduduk", schema="kependudukan.public")]
    finally:
        e.dispose()
    assert names == ["jenis_kelamin", "tanggal_lahir", "kecamatan_kode", "status_kawin"]
