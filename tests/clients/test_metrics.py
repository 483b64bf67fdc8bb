"""The operations door read as Prometheus reads it: /metrics parsed with the
Prometheus project's own OpenMetrics parser, /healthz as JSON.

run.sh starts the server with the shipped [monitoring] section on a free
port (TAUTAN_OPS_PORT).
"""

import json
import os
import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import Login

OPS_PORT = os.environ.get("TAUTAN_OPS_PORT")
pytestmark = pytest.mark.skipif(not OPS_PORT, reason="TAUTAN_OPS_PORT not set (run.sh sets it)")


def fetch(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{OPS_PORT}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def samples():
    """Every sample of /metrics, as {(name, sorted labels): value}."""
    status, content_type, text = fetch("/metrics")
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_count_a_statement_on_each_link():
    import psycopg2

    def link_statements():
        m = samples()
        return {
            dict(k[1])["link"]: v
            for k, v in m.items()
            if k[0] == "tautan_link_statements_total" and dict(k[1]).get("outcome") == "ok"
        }

    before = link_statements()
    conn = psycopg2.connect(Login("walidata").libpq())
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT count(*) FROM kependudukan.public.penduduk p "
            "JOIN kesehatan.kesehatan.kunjungan k ON k.nik = p.nik"
        )
        cur.fetchall()
    finally:
        conn.close()
    after = link_statements()
    for link in ("kependudukan", "kesehatan"):
        assert after.get(link, 0) >= before.get(link, 0) + 1, (link, before, after)
    m = samples()
    assert m[("tautan_link_up", (("kind", "postgres"), ("link", "kependudukan")))] == 1
    assert m[("tautan_link_up", (("kind", "files"), ("link", "dinsos")))] == 1
    # The shipped demo records to its audit log.
    assert m[("tautan_audit_records", ())] > 0


def test_healthz_names_each_link_and_the_audit_log():
    status, content_type, body = fetch("/healthz")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["audit"] == "ok"
    assert set(health["links"]) >= {"kependudukan", "kesehatan", "kepegawaian", "dinsos"}
