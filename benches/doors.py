"""The doors side by side: one long answer — W1's full scan of TPC-H
`lineitem` (all 16 columns) by default — read through each of tautan's
doors, with the floor measured in the same run:

- floor: PostgreSQL's own `COPY (…) TO STDOUT (FORMAT binary)` through psql,
  to /dev/null (the source alone);
- wire: the same COPY through tautan's PostgreSQL door (W1's measurement);
- flight: Arrow Flight SQL through ADBC (adbc-driver-flightsql), record
  batches read and counted, never turned into Python rows;
- flight-arrow: the same Flight SQL calls through pyarrow's C++ Flight
  client (no ADBC driver in between);
- http-arrow, http-ndjson, http-csv: `POST /v1/sql` with that `Accept`,
  the body streamed and counted.

Each door: one warm-up run (whose row count is checked), then `--runs`
timed runs; the median, rows/s, the ratio to the wire, and tautan's peak
resident memory (VmHWM, reset before each run). Writes
benches/results/doors.{md,json} and doors.png.

    bash benches/run.sh --sf 1 --load-only          # the TPC-H data, once
    python3 benches/doors.py --bin ~/.cache/tautan-release/release/tautan [--runs 3]

Python needs psycopg, pyarrow and adbc-driver-flightsql
(tests/clients/setup.sh installs them).
"""

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import bench
import tpch


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn):
    t0 = time.perf_counter()
    rows = fn()
    return time.perf_counter() - t0, rows


def psql_copy(host, port, user, password, db, sql):
    """Binary COPY of `sql` through psql to /dev/null; the warm-up's text
    COPY counts lines instead."""

    def run(count=False):
        fmt = "" if count else " (FORMAT binary)"
        env = dict(os.environ, PGPASSWORD=password or "")
        cmd = ["psql", "-X", "-q", "-At", "-h", host, "-p", str(port), "-U", user, "-d", db,
               "-c", f"COPY ({sql}) TO STDOUT{fmt}"]
        if count:
            out = subprocess.run(cmd, env=env, capture_output=True, check=True)
            return out.stdout.count(b"\n")
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        return None

    return run


def flight(port, sql):
    import adbc_driver_flightsql.dbapi as flight_sql

    def run(count=False):
        with flight_sql.connect(
            f"grpc://127.0.0.1:{port}",
            db_kwargs={"username": bench.TAUTAN_USER, "password": bench.TAUTAN_PASSWORD},
        ) as conn:
            with conn.cursor() as cur:
                cur.execute(sql)
                rows = 0
                for batch in cur.fetch_record_batch():
                    rows += batch.num_rows
                return rows

    return run


def _bytes_field(number, payload):
    """One length-delimited protobuf field."""
    n, varint = len(payload), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        varint.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes([number << 3 | 2]) + bytes(varint) + payload


def flight_arrow(port, sql):
    """Flight SQL through Arrow's own C++ Flight client (pyarrow.flight):
    the same server calls as ADBC (Handshake, GetFlightInfo of a
    CommandStatementQuery, DoGet of its ticket), without ADBC's Go driver,
    whose cgo hand-off costs about as much CPU as the server's work on two
    cores. The command is the Flight SQL protobuf `Any`, written by hand."""
    import pyarrow.flight as fl

    query = _bytes_field(1, sql.encode())
    command = _bytes_field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery")
    command += _bytes_field(2, query)

    def run(count=False):
        client = fl.FlightClient(f"grpc://127.0.0.1:{port}")
        try:
            header = client.authenticate_basic_token(bench.TAUTAN_USER, bench.TAUTAN_PASSWORD)
            options = fl.FlightCallOptions(headers=[header])
            info = client.get_flight_info(fl.FlightDescriptor.for_command(command), options)
            rows = 0
            for endpoint in info.endpoints:
                reader = client.do_get(endpoint.ticket, options)
                for chunk in reader:
                    rows += chunk.data.num_rows
            return rows
        finally:
            client.close()

    return run


def http(port, sql, accept):
    token = base64.b64encode(f"{bench.TAUTAN_USER}:{bench.TAUTAN_PASSWORD}".encode()).decode()

    def run(count=False):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/sql", data=sql.encode())
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=3600) as r:
            if accept == "application/vnd.apache.arrow.stream":
                import pyarrow.ipc

                reader = pyarrow.ipc.open_stream(r)
                return sum(b.num_rows for b in reader)
            lines = 0
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                lines += chunk.count(b"\n")
            # CSV has a header line.
            return lines - 1 if accept == "text/csv" else lines

    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(Path.home() / ".cache/tautan-release/release/tautan"))
    ap.add_argument("--sf", default="1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--query", default="w1_lineitem_all")
    ap.add_argument("--doors", default="floor,wire,flight,flight-arrow,http-arrow,http-ndjson,http-csv")
    ap.add_argument(
        "--snapshot",
        action="store_true",
        help="read the answer from a pull snapshot of it (mat.doors, local Parquet) instead of "
        "the source, so the doors' own cost is what differs (the floor stays the source's COPY)",
    )
    args = ap.parse_args()
    sf = float(args.sf) if "." in args.sf else int(args.sf)
    text = tpch.load_query(args.query)
    ours = tpch.render(text, "tautan", sf)
    floor_sql = tpch.render(text, "floor", sf)

    http_port, flight_port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="tautan-doors-"))
    extra = work / "doors.toml"
    config = f'[http]\nlisten = "127.0.0.1:{http_port}"\n\n[flight]\nlisten = "127.0.0.1:{flight_port}"\n'
    if args.snapshot:
        pulled = json.dumps(" ".join(ours.split()))
        config += (
            f'\n[materialize]\ndata_dir = {json.dumps(str(work / "data"))}\n\n[pulls.doors]\nsql = {pulled}\n'
            'mode = "full"\nowner = "bench"\nreaders = ["bench"]\n'
        )
    extra.write_text(config)
    os.environ["TAUTAN_BENCH_EXTRA_CONFIG"] = str(extra)
    server = bench.TautanServer(args.bin, sf, work)
    if args.snapshot:
        cfg = server.write_config()
        print("doors: pulling the answer into mat.doors", flush=True)
        subprocess.run([args.bin, "-c", str(cfg), "pull", "doors"], cwd=work, check=True)
        ours = "SELECT * FROM mat.doors"
    server.start()
    pg = tpch.PG
    doors = {
        "floor": psql_copy(pg["host"], pg["port"], pg["user"], pg.get("password"), tpch.DB_A, floor_sql),
        "wire": psql_copy("127.0.0.1", bench.TAUTAN_PORT, bench.TAUTAN_USER, bench.TAUTAN_PASSWORD, "tautan", ours),
        "flight": flight(flight_port, ours),
        "flight-arrow": flight_arrow(flight_port, ours),
        "http-arrow": http(http_port, ours, "application/vnd.apache.arrow.stream"),
        "http-ndjson": http(http_port, ours, "application/x-ndjson"),
        "http-csv": http(http_port, ours, "text/csv"),
    }
    results = {}
    try:
        for name in args.doors.split(","):
            run = doors[name]
            rows = run(count=True)
            times, peaks = [], []
            for _ in range(args.runs):
                bench.reset_hwm(server.pid)
                elapsed, _ = timed(run)
                times.append(elapsed)
                peaks.append(bench.vm_hwm_kb(server.pid) if name != "floor" else None)
            median = statistics.median(times)
            results[name] = {
                "rows": rows,
                "seconds": times,
                "median_s": median,
                "rows_per_s": rows / median if rows else None,
                "server_peak_mib": (max(p for p in peaks if p) / 1024) if any(peaks) else None,
            }
            print(f"doors: {name:12} {rows} rows, median {median:.2f} s, peak {results[name]['server_peak_mib']}", flush=True)
    finally:
        server.stop()

    wire = results.get("wire", {}).get("median_s")
    where = "a pull snapshot of it (`mat.doors`)" if args.snapshot else "the source"
    lines = [
        f"# The doors: `{args.query}` at SF {tpch.sf_label(sf)} read from {where}, {args.runs} runs",
        "",
        f"Command: `python3 benches/doors.py --sf {args.sf} --runs {args.runs} --query {args.query}"
        f"{' --snapshot' if args.snapshot else ''}` "
        f"({subprocess.run([args.bin, '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"{os.cpu_count()} cores).",
        "",
        "| door | rows | median s | rows/s | throughput ÷ wire | tautan peak MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        ratio = f"{wire / r['median_s']:.2f}×" if wire else "–"
        peak = f"{r['server_peak_mib']:.0f}" if r["server_peak_mib"] else "–"
        lines.append(f"| {name} | {r['rows']} | {r['median_s']:.2f} | {r['rows_per_s']:,.0f} | {ratio} | {peak} |")
    out = tpch.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    stem = "doors-snapshot" if args.snapshot else "doors"
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(results)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh(names, [results[n]["rows_per_s"] / 1e6 for n in names], color="#4c72b0")
        ax.set_xlabel("million rows/s (higher is better)")
        ax.set_title(f"{args.query}, SF {tpch.sf_label(sf)}: one answer through each door")
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / f"{stem}.png", dpi=120)
    except ImportError:
        pass
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
