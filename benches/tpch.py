"""What the benchmark's data and systems are: TPC-H tables, where each one lives,
the name every system gives it, and where files and caches go.

Shared by load.py (generation and loading), bench.py (runs) and report.py.
"""

import hashlib
import os
import re
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
QUERIES = BENCHES / "queries"
RESULTS = BENCHES / "results"

CACHE = Path(os.environ.get("TAUTAN_BENCH_CACHE", Path.home() / ".cache" / "tautan-bench"))

PG = dict(
    host=os.environ.get("BENCH_PGHOST", "127.0.0.1"),
    port=int(os.environ.get("BENCH_PGPORT", "5432")),
    user=os.environ.get("BENCH_PGUSER", "postgres"),
)
MY = dict(
    host=os.environ.get("BENCH_MYHOST", "127.0.0.1"),
    port=int(os.environ.get("BENCH_MYPORT", "3306")),
    user=os.environ.get("BENCH_MYUSER", "root"),
)
# The read-only account every federating system (tautan, DuckDB, the FDWs) logs
# in to the sources with, on both servers.
RO_USER = "tpch_ro"
RO_PASSWORD = "tpch-ro"

DB_A = "tpch_a"  # PostgreSQL, agency A: lineitem, orders, partsupp
DB_B = "tpch_b"  # MariaDB, agency B: customer, supplier, part
DB_ALL = "tpch_all"  # PostgreSQL, the oracle: all eight tables
DB_FDW = "tpch_fdw"  # PostgreSQL coordinator: postgres_fdw + mysql_fdw
MY_META = "tpch_b_meta"  # MariaDB: the load marker (kept out of the linked database)

# TPC-H columns (spec 1.4), with types: bigint order keys, integer other keys,
# numeric(15,2) money and quantities, date dates. Fixed-width CHAR columns of
# the spec are varchar here: CHAR(n) pads on output in PostgreSQL and not in
# MariaDB, which would make equal data compare unequal across systems.
TABLES = {
    "region": [
        ("r_regionkey", "integer"),
        ("r_name", "varchar(25)"),
        ("r_comment", "varchar(152)"),
    ],
    "nation": [
        ("n_nationkey", "integer"),
        ("n_name", "varchar(25)"),
        ("n_regionkey", "integer"),
        ("n_comment", "varchar(152)"),
    ],
    "part": [
        ("p_partkey", "integer"),
        ("p_name", "varchar(55)"),
        ("p_mfgr", "varchar(25)"),
        ("p_brand", "varchar(10)"),
        ("p_type", "varchar(25)"),
        ("p_size", "integer"),
        ("p_container", "varchar(10)"),
        ("p_retailprice", "numeric(15,2)"),
        ("p_comment", "varchar(23)"),
    ],
    "supplier": [
        ("s_suppkey", "integer"),
        ("s_name", "varchar(25)"),
        ("s_address", "varchar(40)"),
        ("s_nationkey", "integer"),
        ("s_phone", "varchar(15)"),
        ("s_acctbal", "numeric(15,2)"),
        ("s_comment", "varchar(101)"),
    ],
    "partsupp": [
        ("ps_partkey", "integer"),
        ("ps_suppkey", "integer"),
        ("ps_availqty", "integer"),
        ("ps_supplycost", "numeric(15,2)"),
        ("ps_comment", "varchar(199)"),
    ],
    "customer": [
        ("c_custkey", "integer"),
        ("c_name", "varchar(25)"),
        ("c_address", "varchar(40)"),
        ("c_nationkey", "integer"),
        ("c_phone", "varchar(15)"),
        ("c_acctbal", "numeric(15,2)"),
        ("c_mktsegment", "varchar(10)"),
        ("c_comment", "varchar(117)"),
    ],
    "orders": [
        ("o_orderkey", "bigint"),
        ("o_custkey", "integer"),
        ("o_orderstatus", "varchar(1)"),
        ("o_totalprice", "numeric(15,2)"),
        ("o_orderdate", "date"),
        ("o_orderpriority", "varchar(15)"),
        ("o_clerk", "varchar(15)"),
        ("o_shippriority", "integer"),
        ("o_comment", "varchar(79)"),
    ],
    "lineitem": [
        ("l_orderkey", "bigint"),
        ("l_partkey", "integer"),
        ("l_suppkey", "integer"),
        ("l_linenumber", "integer"),
        ("l_quantity", "numeric(15,2)"),
        ("l_extendedprice", "numeric(15,2)"),
        ("l_discount", "numeric(15,2)"),
        ("l_tax", "numeric(15,2)"),
        ("l_returnflag", "varchar(1)"),
        ("l_linestatus", "varchar(1)"),
        ("l_shipdate", "date"),
        ("l_commitdate", "date"),
        ("l_receiptdate", "date"),
        ("l_shipinstruct", "varchar(25)"),
        ("l_shipmode", "varchar(10)"),
        ("l_comment", "varchar(44)"),
    ],
}

PRIMARY_KEYS = {
    "region": ["r_regionkey"],
    "nation": ["n_nationkey"],
    "part": ["p_partkey"],
    "supplier": ["s_suppkey"],
    "partsupp": ["ps_partkey", "ps_suppkey"],
    "customer": ["c_custkey"],
    "orders": ["o_orderkey"],
    "lineitem": ["l_orderkey", "l_linenumber"],
}

# Only the oracle database gets these: PostgreSQL does not decorrelate the
# scalar subqueries of Q17 and Q20, and without an index on l_partkey the oracle
# would take hours at SF1. The agency databases keep primary keys only.
ORACLE_INDEXES = [
    "CREATE INDEX lineitem_part_supp ON lineitem (l_partkey, l_suppkey)",
    "CREATE INDEX orders_cust ON orders (o_custkey)",
]

PLACEMENT = {
    "lineitem": "a",
    "orders": "a",
    "partsupp": "a",
    "customer": "b",
    "supplier": "b",
    "part": "b",
    "nation": "ref",
    "region": "ref",
}
TABLES_A = [t for t, p in PLACEMENT.items() if p == "a"]
TABLES_B = [t for t, p in PLACEMENT.items() if p == "b"]
TABLES_REF = [t for t, p in PLACEMENT.items() if p == "ref"]


def names_for(system):
    """The table names one system's queries use ({lineitem} -> ...)."""
    out = {}
    for table, where in PLACEMENT.items():
        if system == "oracle":
            out[table] = table
        elif system in ("tautan", "duckdb"):
            out[table] = {"a": f"a.public.{table}", "b": f"b.{DB_B}.{table}", "ref": f"ref.{table}"}[where]
        elif system == "fdw":
            out[table] = f"{where}.{table}"
        elif system == "floor":
            # Straight at the source that holds the table.
            out[table] = {"a": f"public.{table}", "b": f"{DB_B}.{table}", "ref": table}[where]
        else:
            raise ValueError(system)
    return out


def sf_label(sf):
    """1 -> '1', 0.01 -> '0.01' (for file names and markers)."""
    return ("%g" % float(sf))


def data_dir(sf):
    return CACHE / "data" / f"sf{sf_label(sf)}"


def ref_dir(sf):
    """The folder tautan's [reference] path points at (Parquet files)."""
    return data_dir(sf) / "ref"


def load_query(name):
    path = QUERIES / f"{name}.sql"
    return path.read_text()


def query_names(prefix):
    return sorted(p.stem for p in QUERIES.glob(f"{prefix}*.sql"))


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(text, system, sf):
    """The query text for one system: table placeholders and Q11's FRACTION."""
    names = names_for(system)
    params = {"q11_fraction": "%.10f" % (0.0001 / float(sf))}

    def sub(m):
        key = m.group(1)
        if key in names:
            return names[key]
        if key in params:
            return params[key]
        raise KeyError(f"unknown placeholder {{{key}}}")

    body = PLACEHOLDER.sub(sub, text)
    # Drop comment lines and the trailing semicolon: one statement per file.
    lines = [l for l in body.splitlines() if not l.strip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def text_hash(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]
