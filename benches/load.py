"""Generates TPC-H data with tpchgen-cli and loads it, idempotently:

  PostgreSQL tpch_a    lineitem, orders, partsupp           (agency A)
  MariaDB    tpch_b    customer, supplier, part             (agency B)
  files      ref/      nation.parquet, region.parquet       (custodian reference data)
  PostgreSQL tpch_all  all eight tables                     (the correctness oracle)
  PostgreSQL tpch_fdw  postgres_fdw + mysql_fdw coordinator (foreign tables a.*, b.*; local ref.*)

Each database records the scale factor it holds in a marker table
(bench_meta.loaded in PostgreSQL, tpch_b_meta.loaded in MariaDB), written
last: a database already loaded at the requested SF is skipped, one at another
SF (or a half-finished load) is dropped and loaded again.

usage: python load.py --sf 1
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

import tpch

LOG_PREFIX = "load:"


def log(*args):
    print(LOG_PREFIX, *args, flush=True)


# ---------------------------------------------------------------- clients


def psql(db, sql=None, *, file=None, stdin=None, capture=False, user=None):
    cmd = [
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At",
        "-h", tpch.PG["host"], "-p", str(tpch.PG["port"]), "-U", user or tpch.PG["user"], "-d", db,
    ]
    if sql is not None:
        cmd += ["-c", sql]
    if file is not None:
        cmd += ["-f", str(file)]
    r = subprocess.run(cmd, stdin=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"psql -d {db} failed: {r.stderr.strip()}\n--- SQL:\n{sql}")
    return r.stdout.strip() if capture else None


def mariadb(sql, db=None, capture=False):
    cmd = ["mariadb", "--local-infile=1", "-N", "-B", "-h", tpch.MY["host"], "-P", str(tpch.MY["port"]), "-u", tpch.MY["user"]]
    if db:
        cmd.append(db)
    r = subprocess.run(cmd, input=sql, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"mariadb failed: {r.stderr.strip()}\n--- SQL:\n{sql}")
    return r.stdout.strip() if capture else None


# ---------------------------------------------------------------- generation


def tpchgen_bin():
    found = shutil.which("tpchgen-cli")
    if found:
        return found
    cand = os.path.expanduser("~/.cargo/bin/tpchgen-cli")
    if os.path.exists(cand):
        return cand
    raise SystemExit("tpchgen-cli not found (run.sh installs it with cargo install tpchgen-cli)")


def csv_dir(sf):
    return tpch.data_dir(sf) / "csv"


def generate(sf):
    """CSV files of all eight tables (with a header line), once per SF."""
    out = csv_dir(sf)
    done = out / ".complete"
    if done.exists():
        log(f"data SF {tpch.sf_label(sf)}: already generated in {out}")
        return 0.0
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.time()
    exe = tpchgen_bin()
    cmd = ["nice", "-n", "19", exe, "csv", "-s", tpch.sf_label(sf), "--output-dir", str(out)]
    log("generating:", " ".join(cmd[3:]))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        # tpchgen-cli before 4.0 takes the format as an option.
        cmd = ["nice", "-n", "19", exe, "-s", tpch.sf_label(sf), "--format", "csv", "--output-dir", str(out)]
        log("retrying:", " ".join(cmd[3:]))
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"tpchgen-cli failed: {r.stderr}")
    for t in tpch.TABLES:
        if not (out / f"{t}.csv").exists():
            raise SystemExit(f"tpchgen-cli wrote no {t}.csv in {out}: {sorted(os.listdir(out))}")
    done.write_text(tpch.sf_label(sf) + "\n")
    took = time.time() - t0
    log(f"generated SF {tpch.sf_label(sf)} in {took:.1f}s")
    return took


def csv_has_header(path):
    with open(path) as f:
        first = f.readline()
    return first.split(",")[0].strip('"').lower().endswith("key")


def write_reference(sf):
    """nation/region as Parquet with the same column types as the databases."""
    import duckdb  # from the harness venv

    ref = tpch.ref_dir(sf)
    ref.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    for t in tpch.TABLES_REF:
        target = ref / f"{t}.parquet"
        if target.exists():
            continue
        src = csv_dir(sf) / f"{t}.csv"
        cols = ", ".join(f"'{c}': '{duck_type(ty)}'" for c, ty in tpch.TABLES[t])
        header = "true" if csv_has_header(src) else "false"
        tmp = ref / f".{t}.parquet.partial"
        con.execute(
            f"COPY (SELECT * FROM read_csv('{src}', header={header}, delim=',', quote='\"', "
            f"columns={{{cols}}})) TO '{tmp}' (FORMAT parquet)"
        )
        os.replace(tmp, target)
        log(f"reference file {target}")


def duck_type(pg_type):
    if pg_type.startswith("varchar"):
        return "VARCHAR"
    if pg_type.startswith("numeric"):
        return pg_type.replace("numeric", "DECIMAL")
    return pg_type.upper()


# ---------------------------------------------------------------- PostgreSQL


def pg_ddl(table):
    cols = ",\n  ".join(f"{c} {ty} NOT NULL" for c, ty in tpch.TABLES[table])
    return f"CREATE TABLE {table} (\n  {cols}\n)"


def pg_ensure_db(db):
    exists = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{db}'", capture=True)
    if not exists:
        # C collation: byte order, as DataFusion and DuckDB sort strings.
        psql("postgres", f"CREATE DATABASE {db} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")


def pg_ensure_role():
    psql(
        "postgres",
        f"""DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{tpch.RO_USER}') THEN
    CREATE ROLE {tpch.RO_USER} LOGIN PASSWORD '{tpch.RO_PASSWORD}';
  END IF;
END $$""",
    )


def pg_marker(db, what=False):
    """The SF a database was loaded at (with `what`: 'sf|what')."""
    has = psql(db, "SELECT to_regclass('bench_meta.loaded') IS NOT NULL", capture=True)
    if has != "t":
        return None
    col = "sf || '|' || what" if what else "sf"
    return psql(db, f"SELECT {col} FROM bench_meta.loaded LIMIT 1", capture=True) or None


def pg_set_marker(db, sf, what):
    psql(
        db,
        f"""CREATE SCHEMA IF NOT EXISTS bench_meta;
CREATE TABLE IF NOT EXISTS bench_meta.loaded (sf text NOT NULL, what text NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now());
TRUNCATE bench_meta.loaded;
INSERT INTO bench_meta.loaded (sf, what) VALUES ('{tpch.sf_label(sf)}', '{what}');
REVOKE ALL ON SCHEMA bench_meta FROM PUBLIC;""",
    )


def pg_copy(db, table, sf):
    src = csv_dir(sf) / f"{table}.csv"
    header = "true" if csv_has_header(src) else "false"
    with open(src, "rb") as f:
        psql(db, f"SET synchronous_commit = off; COPY {table} FROM STDIN (FORMAT csv, HEADER {header})", stdin=f)


def pg_load_tables(db, tables, sf, extra=()):
    t0 = time.time()
    stmts = ["DROP SCHEMA IF EXISTS bench_meta CASCADE"]
    stmts += [f"DROP TABLE IF EXISTS {t} CASCADE" for t in tables]
    stmts += [pg_ddl(t) for t in tables]
    psql(db, ";\n".join(stmts))
    for t in tables:
        t1 = time.time()
        pg_copy(db, t, sf)
        pk = ", ".join(tpch.PRIMARY_KEYS[t])
        psql(db, f"SET maintenance_work_mem = '512MB'; ALTER TABLE {t} ADD PRIMARY KEY ({pk})")
        log(f"  {db}.{t}: {time.time() - t1:.1f}s")
    for s in extra:
        psql(db, f"SET maintenance_work_mem = '512MB'; {s}")
    psql(db, "VACUUM ANALYZE")
    return time.time() - t0


def load_pg_agency(sf):
    db = tpch.DB_A
    pg_ensure_db(db)
    if pg_marker(db) == tpch.sf_label(sf):
        log(f"{db}: already loaded at SF {tpch.sf_label(sf)}")
        return 0.0
    log(f"{db}: loading {', '.join(tpch.TABLES_A)}")
    took = pg_load_tables(db, tpch.TABLES_A, sf)
    pg_set_marker(db, sf, ",".join(tpch.TABLES_A))
    log(f"{db}: loaded in {took:.1f}s")
    return took


def grant_pg_ro():
    psql(
        tpch.DB_A,
        f"GRANT CONNECT ON DATABASE {tpch.DB_A} TO {tpch.RO_USER};"
        f"GRANT USAGE ON SCHEMA public TO {tpch.RO_USER};"
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {tpch.RO_USER}",
    )


def load_pg_oracle(sf):
    db = tpch.DB_ALL
    pg_ensure_db(db)
    if pg_marker(db) == tpch.sf_label(sf):
        log(f"{db}: already loaded at SF {tpch.sf_label(sf)}")
        return 0.0
    log(f"{db}: loading all eight tables (oracle)")
    took = pg_load_tables(db, list(tpch.TABLES), sf, extra=tpch.ORACLE_INDEXES)
    pg_set_marker(db, sf, "all")
    log(f"{db}: loaded in {took:.1f}s")
    return took


# ---------------------------------------------------------------- MariaDB


def my_type(pg_type):
    if pg_type.startswith("numeric"):
        return pg_type.replace("numeric", "decimal")
    if pg_type == "integer":
        return "int"
    return pg_type


def my_ddl(table):
    cols = ",\n  ".join(f"{c} {my_type(ty)} NOT NULL" for c, ty in tpch.TABLES[table])
    pk = ", ".join(tpch.PRIMARY_KEYS[table])
    return f"CREATE TABLE {table} (\n  {cols},\n  PRIMARY KEY ({pk})\n) ENGINE=InnoDB"


def my_marker():
    r = mariadb(
        f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{tpch.MY_META}' AND table_name = 'loaded'",
        capture=True,
    )
    if r != "1":
        return None
    return mariadb(f"SELECT sf FROM {tpch.MY_META}.loaded LIMIT 1", capture=True) or None


def load_mariadb(sf):
    db = tpch.DB_B
    if my_marker() == tpch.sf_label(sf):
        log(f"{db} (MariaDB): already loaded at SF {tpch.sf_label(sf)}")
        return 0.0
    t0 = time.time()
    log(f"{db} (MariaDB): loading {', '.join(tpch.TABLES_B)}")
    stmts = [
        f"DROP DATABASE IF EXISTS {tpch.MY_META}",
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"USE {db}",
    ]
    stmts += [f"DROP TABLE IF EXISTS {t}" for t in tpch.TABLES_B]
    stmts += [my_ddl(t) for t in tpch.TABLES_B]
    mariadb(";\n".join(stmts) + ";")
    for t in tpch.TABLES_B:
        t1 = time.time()
        src = csv_dir(sf) / f"{t}.csv"
        ignore = "IGNORE 1 LINES" if csv_has_header(src) else ""
        mariadb(
            f"SET unique_checks = 0; SET foreign_key_checks = 0;"
            f"LOAD DATA LOCAL INFILE '{src}' INTO TABLE {t} CHARACTER SET utf8mb4 "
            f"FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
            f"LINES TERMINATED BY '\\n' {ignore};",
            db=db,
        )
        log(f"  {db}.{t}: {time.time() - t1:.1f}s")
    mariadb(f"ANALYZE TABLE {', '.join(tpch.TABLES_B)};", db=db)
    mariadb(
        f"CREATE DATABASE {tpch.MY_META};"
        f"CREATE TABLE {tpch.MY_META}.loaded (sf varchar(20) NOT NULL, loaded_at timestamp NOT NULL DEFAULT current_timestamp);"
        f"INSERT INTO {tpch.MY_META}.loaded (sf) VALUES ('{tpch.sf_label(sf)}');"
    )
    took = time.time() - t0
    log(f"{db} (MariaDB): loaded in {took:.1f}s")
    return took


def grant_my_ro():
    u, p = tpch.RO_USER, tpch.RO_PASSWORD
    mariadb(
        f"CREATE USER IF NOT EXISTS '{u}'@'localhost' IDENTIFIED BY '{p}';"
        f"CREATE USER IF NOT EXISTS '{u}'@'127.0.0.1' IDENTIFIED BY '{p}';"
        f"GRANT SELECT, SHOW VIEW ON {tpch.DB_B}.* TO '{u}'@'localhost', '{u}'@'127.0.0.1';"
    )


# ---------------------------------------------------------------- FDW coordinator

# Bumped whenever the coordinator's setup changes, so a loaded SF is set up again.
# mysql_fdw gets no use_remote_estimate: against MariaDB its remote estimate is
# always 1 row, which makes PostgreSQL choose parameterized nested loops that
# send one MySQL query per outer row (Q5 at SF 0.01: >60 s with it, 0.1 s without).
# It cannot ANALYZE either, so its tables keep the planner's default estimates.
FDW_SETUP = "v2"


def setup_fdw(sf):
    """tpch_fdw: a.* through postgres_fdw, b.* through mysql_fdw (both logging in as
    the read-only account), ref.nation/ref.region as local tables."""
    db = tpch.DB_FDW
    pg_ensure_db(db)
    if pg_marker(db, what=True) == f"{tpch.sf_label(sf)}|{FDW_SETUP}":
        log(f"{db}: already set up at SF {tpch.sf_label(sf)}")
        return 0.0
    t0 = time.time()
    pg, my = tpch.PG, tpch.MY
    u, p = tpch.RO_USER, tpch.RO_PASSWORD
    a_tables = ", ".join(tpch.TABLES_A)
    b_tables = ", ".join(tpch.TABLES_B)
    psql(
        db,
        f"""DROP SCHEMA IF EXISTS bench_meta CASCADE;
DROP SCHEMA IF EXISTS a CASCADE;
DROP SCHEMA IF EXISTS b CASCADE;
DROP SCHEMA IF EXISTS ref CASCADE;
DROP SERVER IF EXISTS a_srv CASCADE;
DROP SERVER IF EXISTS b_srv CASCADE;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE EXTENSION IF NOT EXISTS mysql_fdw;
CREATE SERVER a_srv FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '{pg['host']}', port '{pg['port']}', dbname '{tpch.DB_A}',
           use_remote_estimate 'true', fetch_size '100000');
CREATE USER MAPPING FOR CURRENT_USER SERVER a_srv OPTIONS (user '{u}', password '{p}');
CREATE SERVER b_srv FOREIGN DATA WRAPPER mysql_fdw
  OPTIONS (host '{my['host']}', port '{my['port']}', fetch_size '100000');
CREATE USER MAPPING FOR CURRENT_USER SERVER b_srv OPTIONS (username '{u}', password '{p}');
CREATE SCHEMA a;
CREATE SCHEMA b;
CREATE SCHEMA ref;
IMPORT FOREIGN SCHEMA public LIMIT TO ({a_tables}) FROM SERVER a_srv INTO a;
IMPORT FOREIGN SCHEMA {tpch.DB_B} LIMIT TO ({b_tables}) FROM SERVER b_srv INTO b;""",
    )
    for t in tpch.TABLES_REF:
        psql(db, f"SET search_path = ref; {pg_ddl(t)}; ALTER TABLE {t} ADD PRIMARY KEY ({', '.join(tpch.PRIMARY_KEYS[t])})")
        src = csv_dir(sf) / f"{t}.csv"
        header = "true" if csv_has_header(src) else "false"
        with open(src, "rb") as f:
            psql(db, f"COPY ref.{t} FROM STDIN (FORMAT csv, HEADER {header})", stdin=f)
    # Local statistics for the planner: postgres_fdw samples the remote tables
    # (mysql_fdw cannot: its tables keep default estimates).
    psql(db, "ANALYZE ref.nation; ANALYZE ref.region; " + " ".join(f"ANALYZE a.{t};" for t in tpch.TABLES_A))
    pg_set_marker(db, sf, FDW_SETUP)
    took = time.time() - t0
    log(f"{db}: set up in {took:.1f}s")
    return took


# ---------------------------------------------------------------- main


def check_counts(sf):
    """Row counts in every place agree with the generated files."""
    counts = {}
    for t in tpch.TABLES:
        counts[t] = int(psql(tpch.DB_ALL, f"SELECT count(*) FROM {t}", capture=True))
    for t in tpch.TABLES_A:
        n = int(psql(tpch.DB_A, f"SELECT count(*) FROM {t}", capture=True))
        if n != counts[t]:
            raise SystemExit(f"{tpch.DB_A}.{t} has {n} rows, {tpch.DB_ALL}.{t} {counts[t]}")
    for t in tpch.TABLES_B:
        n = int(mariadb(f"SELECT count(*) FROM {t}", db=tpch.DB_B, capture=True))
        if n != counts[t]:
            raise SystemExit(f"{tpch.DB_B}.{t} (MariaDB) has {n} rows, {tpch.DB_ALL}.{t} {counts[t]}")
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", default="1")
    ap.add_argument("--no-fdw", action="store_true", help="skip the tpch_fdw coordinator")
    args = ap.parse_args(argv)
    sf = args.sf
    t0 = time.time()
    timings = {}
    timings["generate_s"] = generate(sf)
    write_reference(sf)
    pg_ensure_role()
    timings["tpch_a_s"] = load_pg_agency(sf)
    grant_pg_ro()
    timings["tpch_b_s"] = load_mariadb(sf)
    grant_my_ro()
    timings["tpch_all_s"] = load_pg_oracle(sf)
    if not args.no_fdw:
        timings["tpch_fdw_s"] = setup_fdw(sf)
    counts = check_counts(sf)
    timings["total_s"] = time.time() - t0
    log(f"SF {tpch.sf_label(sf)} ready in {timings['total_s']:.1f}s: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    out = tpch.data_dir(sf) / "load.json"
    import json

    prev = {}
    if out.exists():
        prev = json.loads(out.read_text())
    # Per step, the time of the last run that actually did it (a skipped step takes 0 s).
    loaded = dict(prev.get("loaded", {}))
    for k, v in timings.items():
        if k != "total_s" and (v > 0 or k not in loaded):
            loaded[k] = v
    loaded["total_s"] = sum(v for k, v in loaded.items() if k != "total_s")
    record = {"sf": tpch.sf_label(sf), "counts": counts, "last": timings, "loaded": loaded}
    out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
