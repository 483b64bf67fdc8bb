"""Runs the federation benchmark: W1 scans, W2 the 22 TPC-H queries, W3 pushdown
micro-queries, on tautan, DuckDB (postgres + mysql extensions) and a PostgreSQL
postgres_fdw + mysql_fdw coordinator, plus the source floors for W1. Every answer
is checked against the oracle (the same query on PostgreSQL tpch_all).

Writes the raw results as JSON; report.py turns them into BENCHMARKS.md and the chart.
run.sh is the one command (it installs what is missing, loads, runs this, reports).
"""

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import tpch

ALL_SYSTEMS = ["tautan", "duckdb", "fdw"]
FLOOR = "floor"
TAUTAN_PORT = int(os.environ.get("TAUTAN_BENCH_PORT", "6599"))
TAUTAN_USER = "bench"
TAUTAN_PASSWORD = "bench-tautan"
DEFAULT_TAUTAN_BIN = Path.home() / ".cache" / "tautan-release" / "release" / "tautan"


def log(*args):
    print("bench:", *args, flush=True)


# ------------------------------------------------------------------ memory


def vm_hwm_kb(pid):
    """Peak resident set size of a live process (VmHWM), in kB; None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PidSampler(threading.Thread):
    """Polls a process found by `find_pid()` for its VmHWM until stopped."""

    def __init__(self, find_pid, interval=0.05):
        super().__init__(daemon=True)
        self.find_pid = find_pid
        self.interval = interval
        self.peak = None
        self._stop_evt = threading.Event()

    def run(self):
        pid = None
        while not self._stop_evt.is_set():
            if pid is None:
                try:
                    pid = self.find_pid()
                except Exception:
                    pid = None
            if pid is not None:
                v = vm_hwm_kb(pid)
                if v is not None:
                    self.peak = max(self.peak or 0, v)
            self._stop_evt.wait(self.interval)

    def stop(self):
        self._stop_evt.set()
        self.join(timeout=2)
        return self.peak


# ------------------------------------------------------------------ values and comparison


def encode_value(v):
    """A JSON-safe, type-tagged form of one result value."""
    if v is None:
        return None
    if isinstance(v, bool):
        return ["b", v]
    if isinstance(v, int):
        return ["n", str(v)]
    if isinstance(v, Decimal):
        return ["n", str(v)]
    if isinstance(v, float):
        return ["f", repr(v)]
    if isinstance(v, (datetime.date, datetime.datetime)):
        return ["t", v.isoformat()]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return ["s", bytes(v).hex()]
    return ["s", str(v)]


def decode_value(e):
    if e is None:
        return None
    tag, s = e
    if tag == "n":
        return Decimal(s)
    if tag == "f":
        return float(s)
    return s


def encode_rows(rows):
    return [[encode_value(v) for v in row] for row in rows]


def number(v):
    if isinstance(v, Decimal):
        return v
    if isinstance(v, (int, float)):
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    if isinstance(v, str):
        try:
            return Decimal(v)
        except Exception:
            return None
    return None


def values_equal(a, b, approx):
    if a is None or b is None:
        return a is None and b is None
    na, nb = (number(a) if not isinstance(a, str) else None), (number(b) if not isinstance(b, str) else None)
    if na is not None and nb is not None:
        if na == nb:
            return True
        if approx:
            # Averages and divisions: each system rounds to its own scale (PostgreSQL
            # numeric ~16 digits, DataFusion Decimal128 scale 6+, DuckDB double).
            d = abs(na - nb)
            return d <= Decimal("1e-5") or d <= abs(nb) * Decimal("1e-9")
        return False
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return str(a) == str(b)


def parse_directives(text):
    """Directive lines of a query file: `-- compare: rowcount`, `-- compare: approx col1 col2`,
    `-- only: tautan,floor` (the systems that run it), `-- tautan-setting: SET ...` (run first
    in tautan's session)."""
    d = {"rowcount": False, "approx": set(), "only": None, "tautan_settings": []}
    for line in text.splitlines():
        m = re.match(r"\s*--\s*only:\s*(.*)", line)
        if m:
            d["only"] = {x.strip() for x in m.group(1).split(",") if x.strip()}
            continue
        m = re.match(r"\s*--\s*tautan-setting:\s*(.*)", line)
        if m:
            d["tautan_settings"].append(m.group(1).strip())
            continue
        m = re.match(r"\s*--\s*compare:\s*(.*)", line)
        if not m:
            continue
        words = m.group(1).split()
        if words and words[0] == "rowcount":
            d["rowcount"] = True
        elif words and words[0] == "approx":
            d["approx"].update(words[1:])
    return d


def compare(expected, got, columns, directives):
    """None if `got` matches the oracle's `expected` (decoded rows), else why not."""
    if len(expected) != len(got):
        return f"{len(got)} rows, oracle has {len(expected)}"
    if directives["rowcount"]:
        return None
    approx_idx = {i for i, c in enumerate(columns) if c in directives["approx"]}
    for r, (er, gr) in enumerate(zip(expected, got)):
        if len(er) != len(gr):
            return f"row {r + 1}: {len(gr)} columns, oracle has {len(er)}"
        for c, (ev, gv) in enumerate(zip(er, gr)):
            if not values_equal(gv, ev, c in approx_idx):
                col = columns[c] if c < len(columns) else f"#{c + 1}"
                return f"row {r + 1} column {col}: got {gv!r}, oracle {ev!r}"
    return None


# ------------------------------------------------------------------ PostgreSQL-wire systems


class Outcome:
    def __init__(self, status, elapsed=None, rows=None, columns=None, error=None, nrows=None, server_rss_kb=None, client_rss_kb=None):
        self.status = status  # ok | timeout | error
        self.elapsed = elapsed
        self.rows = rows
        self.columns = columns
        self.error = error
        self.nrows = nrows if nrows is not None else (len(rows) if rows is not None else None)
        self.server_rss_kb = server_rss_kb
        self.client_rss_kb = client_rss_kb


class WireSystem:
    """A system spoken to over the PostgreSQL protocol (tautan, the FDW coordinator,
    the oracle). W2/W3 through psycopg (fetch everything); W1 through psql."""

    def __init__(self, name, host, port, user, dbname, password=None, server_pid=None):
        self.name = name
        self.host, self.port, self.user, self.dbname, self.password = host, port, user, dbname, password
        self.server_pid = server_pid  # the server process (tautan) or None (per-session backend)
        self.conn = None
        self.backend_pid = None

    def conninfo(self):
        s = f"host={self.host} port={self.port} user={self.user} dbname={self.dbname} application_name=tautan-bench"
        if self.password:
            s += f" password={self.password}"
        return s

    def connect(self):
        import psycopg

        self.close()
        self.conn = psycopg.connect(self.conninfo(), autocommit=True, prepare_threshold=None, connect_timeout=30)
        self.backend_pid = None
        if self.name in ("fdw", "oracle"):
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                self.backend_pid = cur.fetchone()[0]

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    def rss_pid(self):
        return self.server_pid or self.backend_pid

    def query(self, sql, timeout):
        import psycopg

        if self.conn is None or self.conn.closed:
            self.connect()
        conn = self.conn
        pid = self.rss_pid()
        if pid:
            reset_hwm(pid)
        fired = threading.Event()
        done = threading.Event()

        def on_timeout():
            fired.set()
            try:
                conn.cancel_safe(timeout=10)
            except Exception:
                pass
            # A server that ignores the cancel request: cut the connection.
            if not done.wait(15):
                try:
                    s = socket.socket(fileno=os.dup(conn.fileno()))
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except Exception:
                    pass

        timer = daemon_timer(timeout, on_timeout)
        t0 = time.perf_counter()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
                cols = [d.name for d in cur.description] if cur.description else []
            elapsed = time.perf_counter() - t0
            done.set()
            if fired.is_set():
                # Finished, but only after the timeout (the cancel came too late or was ignored).
                out = Outcome("timeout", elapsed, error=f"finished after the {timeout:g}s timeout")
            else:
                out = Outcome("ok", elapsed, rows=rows, columns=cols)
        except psycopg.Error as e:
            elapsed = time.perf_counter() - t0
            done.set()
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if fired.is_set():
                out = Outcome("timeout", elapsed, error=msg)
            else:
                out = Outcome("error", elapsed, error=msg)
            self.close()  # a fresh session for the next query
        finally:
            if timer:
                timer.cancel()
        if pid:
            out.server_rss_kb = vm_hwm_kb(pid)
        return out

    # --- W1: psql, rows to /dev/null

    def psql_cmd(self, sql, settings=()):
        cmd = ["psql", "-X", "-q", "-At", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.dbname]
        for s in settings:
            cmd += ["-c", s]
        return cmd + ["-c", sql]

    def scan(self, sql, timeout, count, settings=()):
        # The same client and format as the floor: binary COPY through psql to
        # /dev/null. The warm-up copies text instead, to count the rows.
        fmt = "" if count else " (FORMAT binary)"
        sql = f"COPY ({sql}) TO STDOUT{fmt}"
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        app = f"tautan-bench-{uuid.uuid4().hex[:12]}"
        env["PGAPPNAME"] = app
        sampler = None
        if self.server_pid:
            reset_hwm(self.server_pid)
        elif self.name == "fdw":
            sampler = PidSampler(lambda: find_backend(app))
            sampler.start()
        out = run_client(self.psql_cmd(sql, settings), env, timeout, count)
        if out.status == "timeout" and self.name == "fdw":
            cancel_backend(app)
        if self.server_pid:
            out.server_rss_kb = vm_hwm_kb(self.server_pid)
        elif sampler:
            out.server_rss_kb = sampler.stop()
        return out


def daemon_timer(seconds, fn):
    """A started timer thread that does not keep the process alive (None without a timeout)."""
    if not seconds:
        return None
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


def pg_admin_query(sql, params=()):
    import psycopg

    with psycopg.connect(
        f"host={tpch.PG['host']} port={tpch.PG['port']} user={tpch.PG['user']} dbname=postgres", autocommit=True
    ) as c:
        return c.execute(sql, params).fetchall()


def find_backend(app):
    rows = pg_admin_query("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,))
    return rows[0][0] if rows else None


def cancel_backend(app):
    try:
        pg_admin_query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (app,))
    except Exception:
        pass


def run_client(cmd, env, timeout, count):
    """Runs a command-line client under /usr/bin/time; its stdout is discarded
    (timed runs) or its lines counted (the warm-up, to check the row count)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(
            full, env=env, stdout=subprocess.PIPE if count else subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        nlines = None
        timed_out = False
        killed = threading.Event()

        def kill():
            killed.set()
            kill_group(p)

        killer = daemon_timer(timeout, kill)
        try:
            if count:
                nlines = 0
                while True:
                    chunk = p.stdout.read(1 << 20)
                    if not chunk:
                        break
                    nlines += chunk.count(b"\n")
            err = p.stderr.read()
            p.wait()
        finally:
            if killer:
                killer.cancel()
        elapsed = time.perf_counter() - t0
        timed_out = killed.is_set()
        rss = None
        try:
            txt = open(tf.name).read().strip().splitlines()
            rss = int(txt[-1]) if txt and txt[-1].isdigit() else None
        except Exception:
            pass
    if timed_out:
        return Outcome("timeout", elapsed, error=f"killed after {timeout}s", client_rss_kb=rss)
    if p.returncode != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        msg = [m for m in msg if not m.startswith("Command exited")]
        return Outcome("error", elapsed, error=(msg[0] if msg else f"exit {p.returncode}"), client_rss_kb=rss)
    return Outcome("ok", elapsed, nrows=nlines, client_rss_kb=rss)


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------ floors


class FloorSystem:
    """The sources themselves. W1: PostgreSQL's binary COPY, MariaDB's client in --quick mode.
    W3: the same query run on its source directly (psycopg on PostgreSQL, the mariadb client)."""

    name = FLOOR

    def __init__(self):
        self.pg = WireSystem(FLOOR, tpch.PG["host"], tpch.PG["port"], tpch.RO_USER, tpch.DB_A, tpch.RO_PASSWORD)

    def close(self):
        self.pg.close()

    def query(self, sql, timeout, table):
        if tpch.PLACEMENT[table] == "a":
            return self.pg.query(sql, timeout)
        cmd = [
            "mariadb", "--quick", "-N", "-B", "-h", tpch.MY["host"], "-P", str(tpch.MY["port"]),
            "-u", tpch.RO_USER, f"-p{tpch.RO_PASSWORD}", tpch.DB_B, "-e", sql,
        ]
        out = run_client(cmd, dict(os.environ), timeout, True)
        return out

    def scan(self, sql, timeout, count, table):
        if tpch.PLACEMENT[table] == "a":
            env = dict(os.environ, PGPASSWORD=tpch.RO_PASSWORD)
            cmd = [
                "psql", "-X", "-q", "-h", tpch.PG["host"], "-p", str(tpch.PG["port"]), "-U", tpch.RO_USER, "-d", tpch.DB_A,
                "-c", f"COPY ({sql}) TO STDOUT (FORMAT binary)",
            ]
            out = run_client(cmd, env, timeout, False)
            out.nrows = None  # binary COPY has no lines to count
            return out
        cmd = [
            "mariadb", "--quick", "-N", "-B", "-h", tpch.MY["host"], "-P", str(tpch.MY["port"]),
            "-u", tpch.RO_USER, f"-p{tpch.RO_PASSWORD}", tpch.DB_B, "-e", sql,
        ]
        return run_client(cmd, dict(os.environ), timeout, count)


# ------------------------------------------------------------------ DuckDB (in a worker process)


def duck_ext_dir():
    import duckdb_ext

    return os.path.join(list(duckdb_ext.__path__)[0], "extensions")


def duck_worker(conn, sf, threads):
    import duckdb

    try:
        con = duckdb.connect(
            config={
                "extension_directory": duck_ext_dir(),
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": True,
            }
        )
        con.execute(f"SET threads = {int(threads)}")
        con.execute("LOAD postgres")
        con.execute("LOAD mysql")
        pg, my = tpch.PG, tpch.MY
        con.execute(
            f"ATTACH 'host={pg['host']} port={pg['port']} dbname={tpch.DB_A} user={tpch.RO_USER} password={tpch.RO_PASSWORD}' "
            f"AS a (TYPE postgres, READ_ONLY)"
        )
        con.execute(
            f"ATTACH 'host={my['host']} port={my['port']} user={tpch.RO_USER} password={tpch.RO_PASSWORD} database={tpch.DB_B}' "
            f"AS b (TYPE mysql, READ_ONLY)"
        )
        con.execute("CREATE SCHEMA ref")
        for t in tpch.TABLES_REF:
            path = tpch.ref_dir(sf) / f"{t}.parquet"
            con.execute(f"CREATE VIEW ref.{t} AS SELECT * FROM read_parquet('{path}')")
        conn.send(("ready", None))
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        msg = conn.recv()
        if msg[0] == "quit":
            return
        if msg[0] == "versions":
            rows = con.execute(
                "SELECT extension_name, extension_version FROM duckdb_extensions() WHERE loaded AND install_mode <> 'STATICALLY_LINKED'"
            ).fetchall()
            conn.send(("ok", {"duckdb": duckdb.__version__, **{f"duckdb {n}": v for n, v in rows}}))
            continue
        _, kind, sql, timeout = msg
        reset_hwm("self")
        fired = threading.Event()

        def on_timeout():
            fired.set()
            con.interrupt()

        timer = daemon_timer(timeout, on_timeout)
        t0 = time.perf_counter()
        try:
            if kind == "scan":
                # W1: rows formatted as text and written to /dev/null, as psql does.
                r = con.execute(f"COPY ({sql}) TO '/dev/null' (FORMAT csv, HEADER false)").fetchall()
                elapsed = time.perf_counter() - t0
                n = r[0][0] if r and r[0] else None
                res = ("ok", elapsed, None, None, n)
            else:
                cur = con.execute(sql)
                rows = cur.fetchall()
                cols = [d[0] for d in cur.description] if cur.description else []
                elapsed = time.perf_counter() - t0
                res = ("ok", elapsed, rows, cols, len(rows))
            if fired.is_set():
                res = ("timeout", elapsed, None, None, f"finished after the {timeout:g}s timeout")
        except Exception as e:  # noqa: BLE001
            elapsed = time.perf_counter() - t0
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            res = ("timeout" if fired.is_set() else "error", elapsed, None, None, first)
        finally:
            if timer:
                timer.cancel()
        conn.send(res + (vm_hwm_kb("self"),))


class DuckSystem:
    name = "duckdb"

    def __init__(self, sf, threads=2):
        ctx = multiprocessing.get_context("spawn")
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=duck_worker, args=(child, sf, threads), daemon=True)
        self.proc.start()
        kind, info = self.parent.recv()
        if kind != "ready":
            raise RuntimeError(f"DuckDB setup failed: {info}")

    def versions(self):
        self.parent.send(("versions",))
        return self.parent.recv()[1]

    def _run(self, kind, sql, timeout):
        self.parent.send(("run", kind, sql, timeout))
        # Interrupt should end a query; if DuckDB ignores it, give up on the worker.
        if not self.parent.poll((timeout or 86400) + 60):
            self.proc.kill()
            raise RuntimeError("DuckDB worker did not answer after an interrupt")
        status, elapsed, rows, cols, extra, rss = self.parent.recv()
        if status == "ok":
            return Outcome("ok", elapsed, rows=rows, columns=cols, nrows=extra, server_rss_kb=rss)
        return Outcome(status, elapsed, error=extra, server_rss_kb=rss)

    def query(self, sql, timeout):
        return self._run("query", sql, timeout)

    def scan(self, sql, timeout, count):
        return self._run("scan", sql, timeout)

    def close(self):
        try:
            self.parent.send(("quit",))
            self.proc.join(timeout=10)
        except Exception:
            pass
        if self.proc.is_alive():
            self.proc.kill()


# ------------------------------------------------------------------ tautan server


class TautanServer:
    def __init__(self, binary, sf, workdir, port=None, grants=None):
        """`port` (default TAUTAN_BENCH_PORT or 6599) and `grants` (a TOML
        file; default TAUTAN_BENCH_GRANTS, else everything) let two servers
        run side by side (benches/policy_overhead.py)."""
        self.binary = str(binary)
        self.sf = sf
        self.workdir = Path(workdir)
        self.proc = None
        self.log_path = self.workdir / "tautan-server.log"
        self.port = port or TAUTAN_PORT
        self.grants = grants if grants is not None else os.environ.get("TAUTAN_BENCH_GRANTS")

    def verifier(self):
        r = subprocess.run([self.binary, "passwd"], input=TAUTAN_PASSWORD, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"tautan passwd failed: {r.stderr.strip()}")
        return r.stdout.strip().splitlines()[-1]

    def write_config(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        pg, my = tpch.PG, tpch.MY
        cfg = f"""# Written by benches/bench.py for the federation benchmark (SF {tpch.sf_label(self.sf)}).
[server]
listen = "127.0.0.1:{self.port}"
database = "tautan"
{os.environ.get("TAUTAN_BENCH_SERVER_CONFIG", "")}

[links.a]
kind = "postgres"
description = "agency A: lineitem, orders, partsupp"
host = "{pg['host']}"
port = {pg['port']}
database = "{tpch.DB_A}"
user = "{tpch.RO_USER}"
password = "{tpch.RO_PASSWORD}"
schemas = ["public"]

[links.b]
kind = "mysql"
description = "agency B: customer, supplier, part"
host = "{my['host']}"
port = {my['port']}
user = "{tpch.RO_USER}"
password = "{tpch.RO_PASSWORD}"
databases = ["{tpch.DB_B}"]

[reference]
path = "{tpch.ref_dir(self.sf)}"

[users.{TAUTAN_USER}]
password = "{self.verifier()}"
roles = ["bench"]

"""
        # The grants: everything, or (TAUTAN_BENCH_GRANTS, a TOML file) the
        # policed grants of the governed-access run.
        grants = self.grants
        cfg += Path(grants).read_text() if grants else '[[grants]]\nrole = "bench"\ntables = ["*"]\n'
        extra = os.environ.get("TAUTAN_BENCH_EXTRA_CONFIG")
        if extra:
            cfg += "\n" + Path(extra).read_text()
        path = self.workdir / "federation.toml"
        path.write_text(cfg)
        return path

    def version(self):
        r = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return r.stdout.strip() or r.stderr.strip()

    def start(self):
        cfg = self.write_config()
        if port_open(self.port):
            raise RuntimeError(f"127.0.0.1:{self.port} is already in use (set TAUTAN_BENCH_PORT)")
        env = dict(os.environ, TAUTAN_LOG=os.environ.get("TAUTAN_LOG", "warn"))
        logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(cfg), "serve", "--listen", f"127.0.0.1:{self.port}"],
            cwd=self.workdir, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + 90
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tautan exited with {self.proc.returncode}; see {self.log_path}")
            try:
                import psycopg

                with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=5) as c:
                    rows = c.execute("SELECT name, status FROM system.links").fetchall()
                    st = {n: s for n, s in rows}
                    if st.get("a") == "up" and st.get("b") == "up":
                        return
                    last = f"links: {st}"
            except Exception as e:  # noqa: BLE001
                last = str(e).strip()
            time.sleep(0.5)
        raise RuntimeError(f"tautan did not come up with both links: {last}")

    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} user={TAUTAN_USER} password={TAUTAN_PASSWORD} dbname=tautan"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ------------------------------------------------------------------ oracle


class Oracle:
    """The answers of PostgreSQL tpch_all, cached per SF and query text."""

    def __init__(self, sf):
        self.sf = sf
        self.dir = tpch.CACHE / "oracle" / f"sf{tpch.sf_label(sf)}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.wire = None

    def answer(self, name, sql):
        path = self.dir / f"{name}-{tpch.text_hash(sql)}.json"
        if path.exists():
            d = json.loads(path.read_text())
        else:
            if self.wire is None:
                self.wire = WireSystem("oracle", tpch.PG["host"], tpch.PG["port"], tpch.PG["user"], tpch.DB_ALL)
            out = self.wire.query(sql, timeout=3600)
            if out.status != "ok":
                raise RuntimeError(f"oracle failed on {name}: {out.status} {out.error}")
            d = {"columns": out.columns, "rows": encode_rows(out.rows), "elapsed": out.elapsed}
            tmp = path.with_suffix(".partial")
            tmp.write_text(json.dumps(d))
            os.replace(tmp, path)
        return d["columns"], [[decode_value(v) for v in row] for row in d["rows"]]

    def count(self, table):
        cols, rows = self.answer(f"count_{table}", f"select count(*) from {table}")
        return int(rows[0][0])


# ------------------------------------------------------------------ the run


def workloads(selected):
    out = []
    if "W1" in selected:
        out += [("W1", n) for n in tpch.query_names("w1_")]
    if "W2" in selected:
        out += [("W2", n) for n in tpch.query_names("q")]
    if "W3" in selected:
        out += [("W3", n) for n in tpch.query_names("w3_")]
    return out


def scan_table(text):
    """The one table a W1 query reads."""
    m = tpch.PLACEHOLDER.search(text)
    return m.group(1)


def run_one(system, workload, name, text, sf, runs, timeout, oracle, counts):
    sql = tpch.render(text, system.name, sf)
    directives = parse_directives(text)
    rec = {"workload": workload, "query": name, "system": system.name, "runs": [], "sql": sql}
    is_scan = workload == "W1"

    def execute(count):
        if system.name == FLOOR:
            if is_scan:
                return system.scan(sql, timeout, count, scan_table(text))
            return system.query(sql, timeout, scan_table(text))
        if is_scan:
            if system.name == "tautan":
                return system.scan(sql, timeout, count, settings=directives["tautan_settings"])
            return system.scan(sql, timeout, count)
        return system.query(sql, timeout)

    # Warm-up: also the correctness check.
    out = execute(count=True)
    rec["warmup_s"] = out.elapsed
    if out.status != "ok":
        rec.update(status=out.status, error=out.error, correct=None)
        rec["server_rss_kb"], rec["client_rss_kb"] = out.server_rss_kb, out.client_rss_kb
        return rec
    rec["rows"] = out.nrows
    if is_scan:
        want = counts[scan_table(text)]
        if out.nrows is None:
            rec["correct"] = None  # floor's binary COPY: nothing to count
        elif out.nrows == want:
            rec["correct"] = True
        else:
            rec["correct"] = False
            rec["mismatch"] = f"{out.nrows} rows, oracle has {want}"
    elif out.rows is None:
        rec["correct"] = None  # the MariaDB floor's CLI: rows counted, not compared
    else:
        ocols, orows = oracle.answer(name, tpch.render(text, "oracle", sf))
        why = compare(orows, list(out.rows), ocols, directives)
        rec["correct"] = why is None
        if why:
            rec["mismatch"] = why
    server_rss = [out.server_rss_kb] if out.server_rss_kb else []
    client_rss = [out.client_rss_kb] if out.client_rss_kb else []
    status = "ok"
    for _ in range(runs):
        o = execute(count=False)
        if o.status != "ok":
            status = o.status
            rec["error"] = o.error
            rec["runs"].append(None)
            break
        rec["runs"].append(o.elapsed)
        if o.server_rss_kb:
            server_rss.append(o.server_rss_kb)
        if o.client_rss_kb:
            client_rss.append(o.client_rss_kb)
    rec["status"] = status
    good = [r for r in rec["runs"] if r is not None]
    if status == "ok" and good:
        rec["median_s"] = statistics.median(good)
    rec["server_rss_kb"] = max(server_rss) if server_rss else None
    rec["client_rss_kb"] = max(client_rss) if client_rss else None
    if rec["correct"] is False:
        rec["status"] = "wrong"
    return rec


def machine_info():
    info = {"hostname": socket.gethostname(), "kernel": platform.release(), "cores": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return info


def cmd_version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout.strip() or r.stderr.strip()).splitlines()[0]
    except Exception:
        return None


def source_versions():
    import psycopg

    v = {"python": platform.python_version(), "psycopg": psycopg.__version__}
    v["PostgreSQL"] = pg_admin_query("SHOW server_version")[0][0]
    r = subprocess.run(
        ["mariadb", "-N", "-B", "-h", tpch.MY["host"], "-P", str(tpch.MY["port"]), "-u", tpch.MY["user"], "-e", "SELECT version()"],
        capture_output=True, text=True,
    )
    v["MariaDB"] = r.stdout.strip()
    try:
        with psycopg.connect(
            f"host={tpch.PG['host']} port={tpch.PG['port']} user={tpch.PG['user']} dbname={tpch.DB_FDW}", autocommit=True
        ) as c:
            for n, ver in c.execute("SELECT extname, extversion FROM pg_extension WHERE extname LIKE '%fdw'").fetchall():
                v[n] = ver
            try:
                v["mysql_fdw"] += f" (build {c.execute('SELECT mysql_fdw_version()').fetchone()[0]})"
            except Exception:
                pass
    except Exception:
        pass
    v["psql"] = cmd_version(["psql", "--version"])
    exe = shutil.which("tpchgen-cli") or os.path.expanduser("~/.cargo/bin/tpchgen-cli")
    v["tpchgen-cli"] = cmd_version([exe, "--version"])
    try:
        v["tautan commit"] = subprocess.run(
            ["git", "-C", str(tpch.REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip()
    except Exception:
        pass
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", default="1")
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS), help="comma-separated: tautan,duckdb,fdw")
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--queries", default="", help="only these query names (comma-separated, e.g. q01,q17,w1_part_all)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per query run")
    ap.add_argument("--no-floor", action="store_true", help="skip the source floors of W1")
    ap.add_argument("--tautan-bin", default=os.environ.get("TAUTAN_BIN", str(DEFAULT_TAUTAN_BIN)))
    ap.add_argument("--out", required=True, help="raw results JSON to write")
    ap.add_argument("--command-line", default=None, help="recorded in the results (run.sh passes its own)")
    ap.add_argument("--note", default="", help="a remark printed at the top of the report")
    ap.add_argument(
        "--fail-on",
        default="wrong",
        help="exit 1 on: wrong (any system's answer differs from the oracle), tautan-wrong, tautan-error, tautan-timeout",
    )
    args = ap.parse_args(argv)

    sf = args.sf
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ALL_SYSTEMS:
            ap.error(f"unknown system {s!r} (known: {', '.join(ALL_SYSTEMS)})")
    selected = {w.strip().upper() for w in args.workloads.split(",")}
    wanted = {q.strip() for q in args.queries.split(",") if q.strip()}
    plan = [(w, n) for w, n in workloads(selected) if not wanted or n in wanted]
    texts = {n: tpch.load_query(n) for _, n in plan}

    started = datetime.datetime.now(datetime.timezone.utc)
    results = []
    meta = {
        "command": args.command_line or " ".join(sys.argv),
        "sf": tpch.sf_label(sf),
        "runs": args.runs,
        "timeout_s": args.timeout,
        "systems": systems,
        "workloads": sorted(selected),
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": source_versions(),
        "not_run": {},
        "tautan_port": TAUTAN_PORT,
        "note": args.note,
    }
    load_json = tpch.data_dir(sf) / "load.json"
    if load_json.exists():
        meta["load"] = json.loads(load_json.read_text())

    oracle = Oracle(sf)
    counts = {t: oracle.count(t) for t in tpch.TABLES}
    log(f"SF {tpch.sf_label(sf)}: {len(plan)} queries on {', '.join(systems)}" + ("" if args.no_floor or "W1" not in selected else " (+ W1 floors)"))
    # Oracle answers first (cached per SF and query text).
    for w, n in plan:
        if w != "W1":
            t0 = time.time()
            oracle.answer(n, tpch.render(texts[n], "oracle", sf))
            took = time.time() - t0
            if took > 1:
                log(f"oracle {n}: {took:.1f}s")

    def save():
        meta["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out + ".partial")
        tmp.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
        os.replace(tmp, args.out)

    def run_system(system, items):
        t_sys = time.time()
        for w, n in items:
            only = parse_directives(texts[n])["only"]
            if only is not None and system.name not in only:
                continue
            rec = run_one(system, w, n, texts[n], sf, args.runs, args.timeout, oracle, counts)
            results.append(rec)
            med = rec.get("median_s")
            shown = f"{med:.3f}s" if med is not None else rec["status"]
            extra = ""
            if rec.get("mismatch"):
                extra = f"  WRONG: {rec['mismatch']}"
            elif rec.get("error"):
                extra = f"  ({rec['error'][:160]})"
            log(f"{system.name:7s} {w} {n:22s} {shown}{extra}")
            save()
        log(f"{system.name}: done in {time.time() - t_sys:.1f}s")

    for name in systems:
        items = plan
        if name == "tautan":
            binary = Path(args.tautan_bin)
            if not (binary.exists() and os.access(binary, os.X_OK)):
                meta["not_run"]["tautan"] = f"no binary at {binary}"
                log(f"tautan: not run (no binary at {binary})")
                for w, n in plan:
                    results.append({"workload": w, "query": n, "system": "tautan", "status": "not run", "runs": []})
                continue
            server = TautanServer(binary, sf, tpch.CACHE / "run")
            meta["versions"]["tautan"] = server.version()
            try:
                server.start()
            except Exception as e:  # noqa: BLE001
                meta["not_run"]["tautan"] = f"server did not start: {e}"
                log(f"tautan: server did not start: {e}")
                for w, n in plan:
                    results.append({"workload": w, "query": n, "system": "tautan", "status": "error", "error": str(e), "runs": []})
                save()
                server.stop()
                continue
            wire = WireSystem("tautan", "127.0.0.1", TAUTAN_PORT, TAUTAN_USER, "tautan", TAUTAN_PASSWORD, server_pid=server.pid)
            try:
                run_system(wire, items)
            finally:
                wire.close()
                meta["tautan_server_peak_rss_kb"] = vm_hwm_kb(server.pid)
                server.stop()
        elif name == "duckdb":
            duck = DuckSystem(sf, threads=2)
            meta["versions"].update(duck.versions())
            try:
                run_system(duck, items)
            finally:
                duck.close()
        elif name == "fdw":
            wire = WireSystem("fdw", tpch.PG["host"], tpch.PG["port"], tpch.PG["user"], tpch.DB_FDW)
            try:
                run_system(wire, items)
            finally:
                wire.close()
    if not args.no_floor and ("W1" in selected or "W3" in selected):
        floor = FloorSystem()
        try:
            run_system(floor, [(w, n) for w, n in plan if w in ("W1", "W3")])
        finally:
            floor.close()
    save()

    wrong = [r for r in results if r.get("status") == "wrong"]
    failed_tautan = [r for r in results if r["system"] == "tautan" and r.get("status") in ("error", "timeout")]
    log(f"results: {args.out}")
    if wrong:
        for r in wrong:
            log(f"WRONG {r['system']} {r['query']}: {r.get('mismatch')}")
    if failed_tautan:
        for r in failed_tautan:
            log(f"FAILED tautan {r['query']}: {r['status']} {r.get('error', '')}")
    fail_on = {f.strip() for f in args.fail_on.split(",") if f.strip()}
    failing = bool(("wrong" in fail_on and wrong)) or any(
        f"tautan-{r['status']}" in fail_on for r in results if r["system"] == "tautan"
    )
    checked = sum(1 for r in results if r.get("correct") is not None)
    good = sum(1 for r in results if r.get("correct"))
    log(f"answers checked against the oracle: {good} of {checked} match")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
