"""Soak: many concurrent clients for minutes against `tautan serve` on the
shipped federation.toml and the demo agencies (bash sql/load.sh).

Each client loops over a mix of the three shapes a custodian's users send —
a cross-agency join against reference data, a reference lookup, a point
query on a MariaDB table — with a fresh connection every 50 statements (pools
and BI tools reconnect too). Reported:

* errors (by SQLSTATE; target 0 — a full link queues, it does not fail),
* p50/p99 latency per shape,
* server RSS over time (sampled every 2 s; target flat, under the budget),
* source connections the tautan process holds to PostgreSQL and MariaDB
  (sampled with `ss`; never above the links' pool_size: 16 per link by default, and
  MariaDB serves two links),
* MariaDB logins per minute during the run (the server's `Connections`
  counter, minus the sampler's own; it counts every client of that
  MariaDB, so run it on a quiet machine; target: a handful — pooled
  connections reused).

    python3 benches/soak.py --bin target/debug/tautan --clients 200 --minutes 10
    python3 benches/soak.py --clients 40 --minutes 1       # a quick look

Writes benches/results/soak.json and benches/results/soak.md (and
soak.png, RSS over time, when matplotlib is there). Needs psycopg 3
(tests/clients/setup.sh installs it).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time

import psycopg

from demo_server import DEFAULT_BIN, HERE, REPO, percentile, start

SHAPES = {
    "join": (
        "SELECT k.nama, p.penduduk, v.kunjungan FROM ref.kecamatan k "
        "JOIN (SELECT kecamatan_kode, sum(jumlah) AS penduduk "
        "FROM kependudukan.public.penduduk_per_kecamatan GROUP BY 1) p ON p.kecamatan_kode = k.kode "
        "JOIN (SELECT kecamatan_kode, count(*) AS kunjungan "
        "FROM kesehatan.kesehatan.kunjungan GROUP BY 1) v ON v.kecamatan_kode = k.kode "
        "ORDER BY k.nama LIMIT 3",
        None,
    ),
    "lookup": ("SELECT nama FROM ref.kecamatan WHERE kode = %s", "kode"),
    "point": (
        "SELECT id, waktu, biaya FROM kesehatan.kesehatan.kunjungan WHERE id = %s",
        "id",
    ),
}
WEIGHTS = {"join": 1, "lookup": 4, "point": 5}


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sql_scalar(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return int(out.stdout.strip().split()[-1])
    except (ValueError, IndexError):
        return -1


def source_connections(pid, port):
    """TCP connections the tautan process holds to a source's port (`ss`):
    only tautan's, whoever else logs in as the same account."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True, text=True, check=False,
    )
    return sum(1 for line in out.stdout.splitlines() if f"pid={pid}," in line)


def my_logins():
    """MariaDB's `Connections` counter (reading it is one login itself)."""
    out = subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-uroot", "-N", "-e",
         "SHOW GLOBAL STATUS LIKE 'Connections'"],
        capture_output=True, text=True, check=False,
    )
    try:
        return int(out.stdout.split()[-1])
    except (ValueError, IndexError):
        return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    # The shipped config, with room for every client as one user: the
    # server's and the user's connection caps (200 and 50 by default) are
    # raised; the per-user statement cap (16) is kept, so clients queue.
    with open(os.path.join(REPO, "federation.toml")) as f:
        text = f.read()
    text = text.replace(
        "[server]\n", f"[server]\nmax_connections = {args.clients + 20}\n", 1)
    text = text.replace(
        "[users.walidata]\n", f"[users.walidata]\nmax_connections = {args.clients + 10}\n", 1)
    # Next to the shipped file, so its relative paths resolve the same.
    config = os.path.join(REPO, f".soak-{os.getpid()}.toml")
    with open(config, "w") as f:
        f.write(text)
    log = open(os.path.join(args.out, "soak-server.log"), "w")
    try:
        server, dsn = start(args.bin, config, stderr=log)
    except SystemExit:
        os.remove(config)
        raise

    # Parameters that exist.
    with psycopg.connect(dsn) as c:
        kode = [r[0] for r in c.execute("SELECT kode FROM ref.kecamatan").fetchall()]
        max_id = int(c.execute("SELECT max(id) FROM kesehatan.kesehatan.kunjungan").fetchone()[0])

    deadline = time.monotonic() + args.minutes * 60
    latencies = {k: [] for k in SHAPES}
    errors = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(n):
        rnd = random.Random(args.seed * 1000 + n)
        shapes = [k for k, w in WEIGHTS.items() for _ in range(w)]
        conn = None
        done = 0
        while time.monotonic() < deadline:
            try:
                if conn is None or done % 50 == 0:
                    if conn is not None:
                        conn.close()
                    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=30)
                shape = rnd.choice(shapes)
                sql, param = SHAPES[shape]
                value = None
                if param == "kode":
                    value = (rnd.choice(kode),)
                elif param == "id":
                    value = (rnd.randint(1, max_id),)
                started = time.monotonic()
                rows = conn.execute(sql, value).fetchall()
                took = time.monotonic() - started
                if shape == "join" and len(rows) != 3:
                    raise RuntimeError(f"join answered {len(rows)} rows, not 3")
                with lock:
                    latencies[shape].append(took)
            except Exception as e:  # noqa: BLE001 - every failure is counted
                code = getattr(getattr(e, "diag", None), "sqlstate", None) or type(e).__name__
                with lock:
                    errors[code] = errors.get(code, 0) + 1
                    if errors[code] <= 3:
                        print(f"client {n}: {code}: {e}", file=sys.stderr)
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.2)
            done += 1
        if conn is not None:
            conn.close()

    samples = []

    def sampler():
        logins0 = my_logins()
        started = time.monotonic()
        checks = 0
        while not stop.is_set():
            pg = source_connections(server.pid, 5432)
            my = source_connections(server.pid, 3306)
            logins = my_logins()
            checks += 1
            samples.append({
                "t": round(time.monotonic() - started, 1),
                "rss_mib": round(rss_kib(server.pid) / 1024, 1),
                "pg_link_connections": pg,
                "my_link_connections": my,
                # the sampler's own mariadb logins are not tautan's
                "my_logins": logins - logins0 - checks,
            })
            stop.wait(2)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    mon = threading.Thread(target=sampler)
    mon.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    mon.join()
    server.terminate()
    server.wait(timeout=30)
    os.remove(config)

    minutes = args.minutes
    result = {
        "clients": args.clients,
        "minutes": minutes,
        "binary": args.bin,
        "statements": {k: len(v) for k, v in latencies.items()},
        "errors": errors,
        "p50_ms": {k: round(percentile(v, 50) * 1000, 1) for k, v in latencies.items()},
        "p99_ms": {k: round(percentile(v, 99) * 1000, 1) for k, v in latencies.items()},
        "rss_mib": {
            "first": samples[0]["rss_mib"] if samples else None,
            "max": max((s["rss_mib"] for s in samples), default=None),
            "last": samples[-1]["rss_mib"] if samples else None,
            "second_half_min": min((s["rss_mib"] for s in samples[len(samples) // 2:]), default=None),
            "second_half_max": max((s["rss_mib"] for s in samples[len(samples) // 2:]), default=None),
        },
        "max_pg_link_connections": max((s["pg_link_connections"] for s in samples), default=None),
        "max_my_link_connections": max((s["my_link_connections"] for s in samples), default=None),
        "my_logins_per_minute": round(samples[-1]["my_logins"] / minutes, 1) if samples else None,
        "samples": samples,
    }
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(result, f, indent=1)
    total = sum(result["statements"].values())
    md = [
        f"Soak: {args.clients} clients, {minutes:g} min, `{os.path.basename(os.path.dirname(os.path.dirname(args.bin)))}/"
        f"{os.path.basename(os.path.dirname(args.bin))}` build; "
        f"`python3 benches/soak.py --clients {args.clients} --minutes {minutes:g}`",
        "",
        "| shape | statements | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for k in SHAPES:
        md.append(f"| {k} | {result['statements'][k]} | {result['p50_ms'][k]} | {result['p99_ms'][k]} |")
    md += [
        "",
        f"- statements: {total}; errors: {sum(errors.values())} {errors if errors else ''}",
        f"- server RSS: first sample {result['rss_mib']['first']} MiB, max {result['rss_mib']['max']} MiB, "
        f"last {result['rss_mib']['last']} MiB; second half of the run "
        f"{result['rss_mib']['second_half_min']}–{result['rss_mib']['second_half_max']} MiB",
        f"- source connections held (max sampled): PostgreSQL {result['max_pg_link_connections']}, "
        f"MariaDB {result['max_my_link_connections']}",
        f"- MariaDB logins per minute: {result['my_logins_per_minute']}",
    ]
    with open(os.path.join(args.out, "soak.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot([s["t"] for s in samples], [s["rss_mib"] for s in samples])
        ax.set_xlabel("seconds")
        ax.set_ylabel("tautan RSS (MiB)")
        ax.set_title(f"{args.clients} clients")
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "soak.png"))
    except ImportError:
        pass
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
