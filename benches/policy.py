#!/usr/bin/env python3
"""Policy check and plan-rewrite time with 1,000 tables and 500 agreements (issue 15).

    python3 benches/policy.py [--tautan-bin PATH] [--tables 1000] [--agreements 500] [--queries 2000]

Builds a federation of one file link holding --tables small CSV tables, and
--agreements signed agreements (each granting one user two of those tables
under a row filter and two masks: pseudonym and redact), all made and signed
with tautan's own commands. Then times, from a client, EXPLAIN of a query on a
random table (planning only: the grant check, the agreement's policy, the
plan rewrite, no execution):

  - as the analyst who reads every table through an agreement (policed), and
  - as the custodian who reads them all through a plain grant (the floor),

and reports p50/p99 of each and the difference (the policy's cost per query),
plus the time to start the server (which reads and verifies every agreement).
Writes benches/results/policy.md and policy.json. Target: policed p99 < 5 ms.
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def verifier(binary, password):
    r = subprocess.run([binary, "passwd"], input=password, capture_output=True, text=True)
    return r.stdout.strip().splitlines()[-1]


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tautan-bin", default=os.environ.get(
        "TAUTAN_BIN", str(Path.home() / ".cache/tautan-release/release/tautan")))
    ap.add_argument("--tables", type=int, default=1000)
    ap.add_argument("--agreements", type=int, default=500)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--work", default=str(Path.home() / ".cache/tautan-bench/policy"))
    args = ap.parse_args()
    import psycopg

    binary = args.tautan_bin
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    (work / "arsip").mkdir(parents=True)
    (work / "agreements").mkdir()
    rng = random.Random(args.seed)
    for t in range(args.tables):
        rows = "\n".join(f"{i},31.71.0{1 + i % 8},3171{t:04d}{i:08d}" for i in range(10))
        (work / "arsip" / f"t{t:04d}.csv").write_text("id,kode,nik\n" + rows + "\n")
    for who in ("custodian", "arsip"):
        run([binary, "keygen", "--out", str(work / f"{who}.pem")])

    # Agreements: made and signed with tautan's commands.
    started = time.time()
    for a in range(args.agreements):
        path = work / "agreements" / f"PKS-{a:04d}.toml"
        tables = [f"arsip.public.t{(2 * a + k) % args.tables:04d}" for k in range(2)]
        text = run([binary, "agreement", "new", "--id", f"PKS-{a:04d}", "--producer", "arsip",
                    "--user", "analis", *sum((["--table", t] for t in tables), []),
                    "--row-filter", "kode IN ({wilayah})", "--mask", "nik=pseudonym",
                    "--mask", "kode=redact", "--purpose", "bench",
                    "--from", "2020-01-01", "--until", "2099-12-31"])
        path.write_text(text)
        run([binary, "agreement", "sign", str(path), "--as", "arsip", "--key", str(work / "arsip.pem")])
        run([binary, "agreement", "sign", str(path), "--as", "custodian", "--key", str(work / "custodian.pem")])
    made = time.time() - started

    port = free_port()
    (work / "federation.toml").write_text(f"""
[server]
listen = "127.0.0.1:{port}"
database = "tautan"

[links.arsip]
kind = "files"
path = "{work / 'arsip'}"
public_key = "{work / 'arsip.pem.pub'}"

[users.analis]
password = "{verifier(binary, 'analis')}"
roles = ["analis"]
attributes = {{ wilayah = ["31.71.01", "31.71.02"] }}

[users.walidata]
password = "{verifier(binary, 'walidata')}"
roles = ["walidata"]

[[grants]]
role = "walidata"
tables = ["*"]

[policy]
agreements_dir = "{work / 'agreements'}"
custodian_public_key = "{work / 'custodian.pem.pub'}"
pseudonym_key_env = "TAUTAN_BENCH_PSEUDONYM_KEY"
""")
    env = dict(os.environ, TAUTAN_LOG="warn", TAUTAN_BENCH_PSEUDONYM_KEY="bench-key-0123456789abcdef")
    log = open(work / "server.log", "w")
    t0 = time.time()
    proc = subprocess.Popen([binary, "-c", str(work / "federation.toml"), "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        conn = {}
        while time.time() - t0 < 120:
            try:
                for user in ("analis", "walidata"):
                    conn[user] = psycopg.connect(host="127.0.0.1", port=port, user=user, password=user,
                                                 dbname="tautan", autocommit=True)
                break
            except psycopg.OperationalError:
                time.sleep(0.05)
        startup = time.time() - t0
        in_force = conn["walidata"].execute(
            "SELECT agreements_in_force FROM system.policy").fetchone()[0]
        samples = {}
        covered = min(args.tables, 2 * args.agreements)
        for user in ("analis", "walidata"):
            c = conn[user]
            times = []
            for i in range(args.queries + 100):
                t = rng.randrange(covered)
                sql = (f"EXPLAIN SELECT nik, kode, count(*) FROM arsip.public.t{t:04d} "
                       f"WHERE id > {i % 5} GROUP BY 1, 2")
                s = time.perf_counter()
                c.execute(sql).fetchall()
                if i >= 100:  # warm-up
                    times.append((time.perf_counter() - s) * 1000)
            samples[user] = times
        # One real query per user, so the bench also proves the policy applies.
        masked = conn["analis"].execute("SELECT nik, kode FROM arsip.public.t0001 LIMIT 1").fetchone()
        assert len(masked[0]) == 64 and masked[1] == "***", masked
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    stats = {u: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99), "mean_ms": statistics.mean(v)}
             for u, v in samples.items()}
    result = {
        "command": "python3 benches/policy.py " + " ".join(sys.argv[1:]),
        "tables": args.tables, "agreements": args.agreements, "agreements_in_force": in_force,
        "queries_per_user": args.queries, "startup_s": startup, "agreements_made_and_signed_s": made,
        "policed": stats["analis"], "floor": stats["walidata"],
        "policy_cost_p50_ms": stats["analis"]["p50_ms"] - stats["walidata"]["p50_ms"],
        "policy_cost_p99_ms": stats["analis"]["p99_ms"] - stats["walidata"]["p99_ms"],
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "policy.json").write_text(json.dumps(result, indent=2) + "\n")
    md = f"""# Policy check and plan rewrite: {args.tables} tables, {args.agreements} agreements

`{result['command']}` — EXPLAIN (planning only) of a one-table aggregate on a random table,
{args.queries} times per user after 100 warm-up queries, client-measured over the PostgreSQL wire
protocol (so the figures include a round trip; the floor is the same query by a user with a plain grant).

| user | reads through | p50 | p99 | mean |
|---|---|---|---|---|
| analis | {in_force} agreements in force (row filter + 2 masks each) | {stats['analis']['p50_ms']:.2f} ms | {stats['analis']['p99_ms']:.2f} ms | {stats['analis']['mean_ms']:.2f} ms |
| walidata (floor) | one plain grant | {stats['walidata']['p50_ms']:.2f} ms | {stats['walidata']['p99_ms']:.2f} ms | {stats['walidata']['mean_ms']:.2f} ms |

Policy cost per query: p50 {result['policy_cost_p50_ms']:+.2f} ms, p99 {result['policy_cost_p99_ms']:+.2f} ms.
Server start with every agreement read and verified: {startup:.2f} s.
"""
    (out / "policy.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
