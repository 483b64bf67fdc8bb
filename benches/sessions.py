"""Memory an open session costs the server: logs in N sessions (each runs
one statement), reads the server's RSS, closes them, and repeats.

    python3 benches/sessions.py [--bin PATH] [--sessions 45] [--rounds 2]

The shipped federation.toml is served (walidata may hold 50 sessions).
Prints one line per round: RSS before, with the sessions open (and per
session), and after they closed. Memory a closed session leaves to the
allocator is reused by the next round, so a leak shows as growth in
every round, not only the first.
"""

import argparse
import os
import time

import psycopg

import demo_server


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=demo_server.DEFAULT_BIN)
    ap.add_argument("--sessions", type=int, default=45)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    config = os.path.join(demo_server.REPO, "federation.toml")
    server, dsn = demo_server.start(args.bin, config)
    try:
        time.sleep(1)
        for r in range(args.rounds):
            before = rss_mib(server.pid)
            conns = []
            for _ in range(args.sessions):
                c = psycopg.connect(dsn, autocommit=True)
                c.execute("SELECT 1").fetchall()
                conns.append(c)
            time.sleep(1)
            held = rss_mib(server.pid)
            for c in conns:
                c.close()
            time.sleep(2)
            after = rss_mib(server.pid)
            print(
                f"round {r + 1}: {before:.0f} MiB before, {held:.0f} MiB with {args.sessions} "
                f"sessions open ({(held - before) / args.sessions:.2f} MiB/session), "
                f"{after:.0f} MiB after they closed"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
