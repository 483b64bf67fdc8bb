"""A `tautan serve` on the demo agencies, for the load scripts (soak.py,
fairness.py): a free port, the server started and waited for, and the
percentile both report."""

import os
import re
import socket
import subprocess
import sys
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_BIN = os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "debug", "tautan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shipped_config(without=()):
    """The shipped federation.toml's text, its relative paths made absolute
    (so it can be written anywhere), without the sections named."""
    text = open(os.path.join(REPO, "federation.toml"), encoding="utf-8").read()
    for section in without:
        text = re.sub(r"\n\[" + section + r"\]\n[^\[]*", "\n", text)
    for rel in ['"files/dinsos"', '"ref"', '"agreements"', '"data"']:
        text = text.replace(rel, '"' + os.path.join(REPO, rel.strip('"')) + '"', 1)
    return text.replace('"keys/demo/', '"' + os.path.join(REPO, "keys/demo/"))


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def start(binary, config, stderr=subprocess.DEVNULL):
    """Starts `binary serve` on `config` (a path beside the shipped
    federation.toml) and waits until walidata can log in; returns
    (process, dsn). Exits the script when it does not come up."""
    port = free_port()
    env = dict(os.environ, TAUTAN_KEPENDUDUKAN_PASSWORD="tautan-ro", TAUTAN_LOG="warn")
    server = subprocess.Popen(
        [binary, "--config", config, "serve", "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO,
    )
    dsn = f"host=127.0.0.1 port={port} dbname=tautan user=walidata password=walidata-demo"
    for _ in range(200):
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return server, dsn
        except psycopg.Error:
            time.sleep(0.1)
    server.kill()
    sys.exit("the server did not come up")
