"""Fair sharing: small queries beside CPU-heavy ones, and how fast a cancel
frees the cores.

Starts `tautan serve` on the shipped federation.toml, then:

1. *alone*: 4 clients send small queries (a reference lookup and a point
   query on a MariaDB table) for --seconds; their latencies are the floor;
2. *beside heavy*: the same, while --heavy clients each run a CPU-bound
   query (a 1e12-pair cross join summed, no source involved);
3. *cancel*: the heavy queries are cancelled (PostgreSQL cancel requests)
   and the time is measured until each client has its 57014, and until the
   server's CPU use falls below a quarter of a core (sampled every 50 ms
   from /proc/<pid>/stat).

    python3 benches/fairness.py --bin target/debug/tautan --seconds 20

Target (issue 14): p99 of the small queries beside heavy ones < 1 s; the
cores freed within 1 s of the cancel. Writes benches/results/fairness.json
and .md. Needs psycopg 3 (tests/clients/setup.sh installs it).
"""

import argparse
import json
import os
import random
import threading
import time

import psycopg

from demo_server import DEFAULT_BIN, HERE, REPO, percentile, start
HZ = os.sysconf("SC_CLK_TCK")

# 1e12 pairs: many minutes of both cores even in a release build, so it is
# still running when the cancel comes.
HEAVY = ("SELECT sum(a.x * b.x) FROM generate_series(1, 1000000) a(x) "
         "CROSS JOIN generate_series(1, 1000000) b(x)")
SMALL = [
    ("SELECT nama FROM ref.kecamatan WHERE kode = %s", "kode"),
    ("SELECT id, biaya FROM kesehatan.kesehatan.kunjungan WHERE id = %s", "id"),
]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def small_load(dsn, seconds, params, seed):
    """Latencies of 4 clients sending small queries for `seconds`."""
    lat, errors = [], []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run(n):
        rnd = random.Random(seed + n)
        with psycopg.connect(dsn, autocommit=True) as c:
            while time.monotonic() < end:
                sql, kind = rnd.choice(SMALL)
                value = (rnd.choice(params[kind]),)
                t = time.monotonic()
                try:
                    c.execute(sql, value).fetchall()
                except psycopg.Error as e:
                    with lock:
                        errors.append(str(e))
                    continue
                with lock:
                    lat.append(time.monotonic() - t)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--heavy", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    server, dsn = start(args.bin, os.path.join(REPO, "federation.toml"))
    try:
        with psycopg.connect(dsn) as c:
            params = {
                "kode": [r[0] for r in c.execute("SELECT kode FROM ref.kecamatan").fetchall()],
                "id": list(range(1, int(c.execute(
                    "SELECT max(id) FROM kesehatan.kesehatan.kunjungan").fetchone()[0]) + 1)),
            }
        alone, alone_err = small_load(dsn, args.seconds, params, 1)

        heavy_conns = [psycopg.connect(dsn, autocommit=True) for _ in range(args.heavy)]
        outcome = {}

        def heavy(i, conn):
            try:
                conn.execute(HEAVY).fetchall()
                outcome[i] = ("finished", time.monotonic())
            except psycopg.Error as e:
                outcome[i] = (getattr(e.diag, "sqlstate", None) or str(e), time.monotonic())

        heavy_threads = [threading.Thread(target=heavy, args=(i, c)) for i, c in enumerate(heavy_conns)]
        for t in heavy_threads:
            t.start()
        time.sleep(1)  # the heavy queries are under way
        t0, c0 = time.monotonic(), cpu_ticks(server.pid)
        beside, beside_err = small_load(dsn, args.seconds, params, 2)
        busy_cores = (cpu_ticks(server.pid) - c0) / HZ / (time.monotonic() - t0)

        cancelled_at = time.monotonic()
        for c in heavy_conns:
            c.cancel()
        # CPU use in 50 ms windows until it falls below a quarter core.
        freed_after = None
        last_t, last_c = time.monotonic(), cpu_ticks(server.pid)
        while time.monotonic() - cancelled_at < 15:
            time.sleep(0.05)
            now_t, now_c = time.monotonic(), cpu_ticks(server.pid)
            if (now_c - last_c) / HZ / (now_t - last_t) < 0.25:
                freed_after = now_t - cancelled_at
                break
            last_t, last_c = now_t, now_c
        for t in heavy_threads:
            t.join(timeout=30)
        answered = {i: (code, round(at - cancelled_at, 3)) for i, (code, at) in outcome.items()}
        for c in heavy_conns:
            c.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "binary": args.bin,
        "seconds": args.seconds,
        "heavy_clients": args.heavy,
        "alone": {"n": len(alone), "p50_ms": round(percentile(alone, 50) * 1000, 1),
                  "p99_ms": round(percentile(alone, 99) * 1000, 1), "errors": len(alone_err)},
        "beside_heavy": {"n": len(beside), "p50_ms": round(percentile(beside, 50) * 1000, 1),
                         "p99_ms": round(percentile(beside, 99) * 1000, 1),
                         "errors": len(beside_err), "server_cores_busy": round(busy_cores, 2)},
        "cancel": {"answers": answered,
                   "cpu_below_quarter_core_after_s": None if freed_after is None else round(freed_after, 3)},
    }
    with open(os.path.join(args.out, "fairness.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = [
        f"Fairness: 4 clients of small queries for {args.seconds:g} s, alone and beside "
        f"{args.heavy} CPU-heavy queries; `python3 benches/fairness.py --seconds {args.seconds:g} --heavy {args.heavy}`",
        "",
        "| small queries | n | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        f"| alone | {result['alone']['n']} | {result['alone']['p50_ms']} | {result['alone']['p99_ms']} | {result['alone']['errors']} |",
        f"| beside heavy (server busy {result['beside_heavy']['server_cores_busy']} cores) | {result['beside_heavy']['n']} | "
        f"{result['beside_heavy']['p50_ms']} | {result['beside_heavy']['p99_ms']} | {result['beside_heavy']['errors']} |",
        "",
        f"- cancel of the heavy queries: answers {answered}; server CPU below 0.25 core after "
        f"{result['cancel']['cpu_below_quarter_core_after_s']} s",
    ]
    with open(os.path.join(args.out, "fairness.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
