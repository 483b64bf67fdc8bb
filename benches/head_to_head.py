"""Two tautan servers on the same benchmark data, one query at a time on
each in turn: a comparison of two builds that machine noise between
separate runs does not blur.

    # two servers on benches/bench.py's config (~/.cache/tautan-bench/run/federation.toml),
    # each with its own `listen` port, e.g. 6601 (new build) and 6602 (old build)
    python3 benches/head_to_head.py --ports 6601,6602 --runs 4 q02 q05 q07 q08 q11

Prints, per query, each server's best time of --runs and the ratio first ÷ second.
"""

import argparse
import sys
import time

import psycopg

sys.path.insert(0, __import__("os").path.dirname(__file__))
import tpch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", default="6601,6602")
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--sf", type=float, default=1)
    ap.add_argument("queries", nargs="+")
    args = ap.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    conns = [
        psycopg.connect(
            f"host=127.0.0.1 port={p} user=bench password=bench-tautan dbname=tautan",
            autocommit=True,
        )
        for p in ports
    ]
    for q in args.queries:
        text = tpch.render(tpch.load_query(q), "tautan", args.sf)
        best = [float("inf")] * len(conns)
        for _ in range(args.runs):
            for i, c in enumerate(conns):
                t = time.time()
                c.execute(text).fetchall()
                best[i] = min(best[i], time.time() - t)
        times = " ".join(f"{b:.3f}" for b in best)
        print(f"{q}: {times} s, ratio {best[0] / best[1]:.2f}")


if __name__ == "__main__":
    main()
