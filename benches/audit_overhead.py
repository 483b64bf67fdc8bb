"""Audit on vs off: the cost of recording every statement (an intent
fsynced before the statement runs, a completion after), measured on small
statements where it weighs most.

Two `tautan serve` processes of the same binary on the shipped config, one
with its [audit] section and one without, take turns (ABAB...) running the
same statements from N concurrent clients: a reference-data lookup (no link)
and a point query on the PostgreSQL link. Prints a Markdown table with the
median statements/s of each side and the ratio.

    python3 benches/audit_overhead.py --bin ~/.cache/tautan-release/release/tautan \
        [--clients 8] [--seconds 5] [--rounds 3]
"""

import argparse
import os
import statistics
import tempfile
import threading
import time

import psycopg

import demo_server

QUERIES = {
    "ref lookup": "SELECT nama FROM ref.kecamatan WHERE kode = '31.71.01'",
    "pg point query": "SELECT nama FROM kependudukan.public.penduduk WHERE nik = '3171010000000001'",
}


def config(audit, workdir):
    sections = ("monitoring", "http") if audit else ("monitoring", "http", "audit")
    text = demo_server.shipped_config(without=sections)
    if audit:
        text = text.replace('dir = "audit/log"', f'dir = "{workdir}/audit/log"')
        text = text.replace('key = "audit/custodian.pem"', f'key = "{workdir}/audit/custodian.pem"')
        text = text.replace('"audit/latest-checkpoint.json"', f'"{workdir}/audit/latest.json"')
    path = os.path.join(workdir, f"federation-{'on' if audit else 'off'}.toml")
    open(path, "w", encoding="utf-8").write(text)
    return path


def throughput(dsn, sql, clients, seconds):
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(i):
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < stop:
                conn.execute(sql).fetchall()
                done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=demo_server.DEFAULT_BIN)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        servers = {}
        for audit in (False, True):
            servers[audit] = demo_server.start(args.bin, config(audit, work))
        try:
            print(f"| statement | audit off (stmt/s) | audit on (stmt/s) | on / off |")
            print("|---|---:|---:|---:|")
            for name, sql in QUERIES.items():
                rates = {False: [], True: []}
                for _ in range(args.rounds):
                    for audit in (False, True):
                        rates[audit].append(throughput(servers[audit][1], sql, args.clients, args.seconds))
                off, on = statistics.median(rates[False]), statistics.median(rates[True])
                print(f"| {name} | {off:.0f} | {on:.0f} | {on / off:.2f} |")
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
