"""The HTTP door streaming a long answer: rows/s and the server's peak
memory while a client reads N rows as NDJSON (or another format), next to
the floor — PostgreSQL's own COPY of the same rows through psql, to
/dev/null — measured in the same run.

`tautan serve` runs on the shipped config plus a link to the test database
(`sql/load.sh` loads it) whose view `banyak` has 5 million rows; N rows are
`banyak` read as many times as needed (UNION ALL) and cut with LIMIT. The
server's peak resident memory is its VmHWM from /proc when the answer ends.

    python3 benches/http_stream.py --bin ~/.cache/tautan-release/release/tautan \
        [--rows 10000000] [--format ndjson]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import base64

import demo_server

ACCEPT = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(work, wire, http):
    text = demo_server.shipped_config(without=("monitoring", "http", "audit"))
    text = text.replace('listen = "127.0.0.1:6432"', f'listen = "127.0.0.1:{wire}"')
    text += f"""
[http]
listen = "127.0.0.1:{http}"

[links.uji_pg]
kind = "postgres"
host = "127.0.0.1"
database = "tautan_uji"
user = "tautan_ro"
password = "tautan-ro"
"""
    path = os.path.join(work, "federation.toml")
    open(path, "w", encoding="utf-8").write(text)
    return path


def statement(rows, table):
    copies = max(1, -(-rows // 5_000_000))
    union = " UNION ALL ".join([f"SELECT id, label FROM {table}"] * copies)
    return f"SELECT id, label FROM ({union}) t LIMIT {rows}"


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.expanduser("~/.cache/tautan-release/release/tautan"))
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--format", choices=sorted(ACCEPT), default="ndjson")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        wire, http = free_port(), free_port()
        env = dict(os.environ, TAUTAN_KEPENDUDUKAN_PASSWORD="tautan-ro", TAUTAN_LOG="warn")
        server = subprocess.Popen(
            [args.bin, "--config", config(work, wire, http), "serve"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
        )
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", http), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                sys.exit("the server did not come up")
            idle = peak_rss_mib(server.pid)
            auth = base64.b64encode(b"walidata:walidata-demo").decode()
            req = urllib.request.Request(
                f"http://127.0.0.1:{http}/v1/sql",
                data=statement(args.rows, "uji_pg.public.banyak").encode(),
                headers={"Authorization": f"Basic {auth}", "Accept": ACCEPT[args.format]},
            )
            started = time.monotonic()
            body_bytes, lines = 0, 0
            with urllib.request.urlopen(req, timeout=3600) as r:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    body_bytes += len(chunk)
                    lines += chunk.count(b"\n")
            tautan_s = time.monotonic() - started
            peak = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    # The floor: PostgreSQL writing the same rows as text, through psql.
    copies = max(1, -(-args.rows // 5_000_000))
    union = " UNION ALL ".join(["SELECT id, label FROM banyak"] * copies)
    floor_sql = f"COPY (SELECT id, label FROM ({union}) t LIMIT {args.rows}) TO STDOUT"
    started = time.monotonic()
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "tautan_uji", "-qAtc", floor_sql],
        stdout=subprocess.DEVNULL, check=True,
    )
    floor_s = time.monotonic() - started
    if args.format in ("ndjson", "csv") and lines < args.rows:
        sys.exit(f"only {lines} lines for {args.rows} rows")
    print(f"| what | rows | seconds | rows/s | MiB sent | server peak RSS (MiB) |")
    print(f"|---|---:|---:|---:|---:|---:|")
    print(f"| tautan HTTP {args.format} | {args.rows:,} | {tautan_s:.1f} | {args.rows / tautan_s:,.0f} "
          f"| {body_bytes / 2**20:,.0f} | {peak:,.0f} (idle {idle:,.0f}) |")
    print(f"| floor: PostgreSQL COPY text via psql | {args.rows:,} | {floor_s:.1f} "
          f"| {args.rows / floor_s:,.0f} | | |")
    print(f"\ntautan / floor time: {tautan_s / floor_s:.2f}x")


if __name__ == "__main__":
    main()
