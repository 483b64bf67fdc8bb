"""The cost of governed access, measured side by side: the W2 queries that
read the policed tables (`lineitem` and `customer` under a row filter and a
mask, benches/policy-grants.toml), each answered by two tautan servers
running at once — one granting everything, one under the policy — with
their runs interleaved (unpoliced, policed, then policed, unpoliced, ...),
so that drift of the machine over minutes (caches, the sources' own
background work) falls on both alike. `run.sh` measures one system after
the other; on these two cores two such runs minutes apart differed by up
to 1.3× on one query with the same binary and grants.

Each query: one warm-up on each server (the two answers must be equal,
except q10, whose `c_comment` is masked by design), then `--runs` timed
runs on each; the medians and their ratio. Writes
benches/results/policy-overhead.{md,json}.

    bash benches/run.sh --sf 1 --load-only          # the TPC-H data, once
    python3 benches/policy_overhead.py [--bin ~/.cache/tautan-release/release/tautan] [--runs 7]

Python needs psycopg (tests/clients/setup.sh installs it).
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import bench
import tpch

HERE = Path(__file__).resolve().parent
GRANTS = HERE / "policy-grants.toml"
# The W2 queries that read lineitem or customer (q10 reads the masked
# c_comment: its answer differs by design, its time is still compared).
POLICED = "q01,q03,q04,q05,q06,q07,q08,q09,q10,q12,q13,q14,q15,q17,q18,q19,q20,q21,q22"


def run(conninfo, sql):
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as c:
        return c.execute(sql).fetchall()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(bench.DEFAULT_TAUTAN_BIN))
    ap.add_argument("--sf", default="1")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--queries", default=POLICED)
    ap.add_argument("--target", type=float, default=1.10, help="the ratio the issue allows")
    args = ap.parse_args()
    sf = float(args.sf) if "." in args.sf else int(args.sf)
    work = Path(tempfile.mkdtemp(prefix="tautan-policy-"))
    base = bench.TAUTAN_PORT + 10
    servers = {
        "unpoliced": bench.TautanServer(args.bin, sf, work / "unpoliced", port=base, grants=""),
        "policed": bench.TautanServer(args.bin, sf, work / "policed", port=base + 1, grants=str(GRANTS)),
    }
    results = {}
    try:
        for s in servers.values():
            s.start()
        for q in args.queries.split(","):
            sql = tpch.render(tpch.load_query(q), "tautan", sf)
            answers = {name: run(s.conninfo(), sql) for name, s in servers.items()}
            same = answers["unpoliced"] == answers["policed"]
            times = {name: [] for name in servers}
            for i in range(args.runs):
                order = ["unpoliced", "policed"] if i % 2 == 0 else ["policed", "unpoliced"]
                for name in order:
                    t0 = time.perf_counter()
                    run(servers[name].conninfo(), sql)
                    times[name].append(time.perf_counter() - t0)
            u, p = statistics.median(times["unpoliced"]), statistics.median(times["policed"])
            results[q] = {"unpoliced_s": times["unpoliced"], "policed_s": times["policed"],
                          "median_unpoliced_s": u, "median_policed_s": p, "ratio": p / u,
                          "same_answer": same}
            print(f"policy: {q} unpoliced {u:.3f} s, policed {p:.3f} s, {p / u:.2f}x"
                  f"{'' if same else ' (answers differ)'}", flush=True)
    finally:
        for s in servers.values():
            s.stop()

    ratios = [r["ratio"] for r in results.values()]
    geo = statistics.geometric_mean(ratios) if ratios else float("nan")
    over = [q for q, r in results.items() if r["ratio"] > args.target]
    version = subprocess.run([args.bin, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"# Governed access, side by side: W2 queries over the policed tables at SF {tpch.sf_label(sf)}",
        "",
        f"Command: `python3 benches/policy_overhead.py --sf {args.sf} --runs {args.runs}` ({version}). "
        f"Two servers at once, runs interleaved; medians of {args.runs} runs after a warm-up.",
        "",
        "| query | unpoliced (s) | policed (s) | ratio | same answer |",
        "|---|---:|---:|---:|---|",
    ]
    for q, r in results.items():
        lines.append(f"| {q} | {r['median_unpoliced_s']:.3f} | {r['median_policed_s']:.3f} | "
                     f"{r['ratio']:.2f}× | {'yes' if r['same_answer'] else 'no'} |")
    lines += ["", f"Geometric mean of the ratios: {geo:.3f}×. Over {args.target:.2f}×: "
              f"{', '.join(over) if over else 'none'}."]
    out = tpch.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / "policy-overhead.md").write_text("\n".join(lines) + "\n")
    (out / "policy-overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
