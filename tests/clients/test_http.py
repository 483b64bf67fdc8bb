"""The HTTP door read as data users' tools read it: Python's own urllib for
JSON/NDJSON/CSV, pyarrow for the Arrow IPC stream and Parquet, compared with
what psycopg2 gets for the same statement over the PostgreSQL door.

run.sh starts the server with the shipped [http] section on a free port
(TAUTAN_HTTP_PORT).
"""

import base64
import csv
import io
import json
import os
import urllib.error
import urllib.request

import pytest

from conftest import USERS, Login

HTTP_PORT = os.environ.get("TAUTAN_HTTP_PORT")
pytestmark = pytest.mark.skipif(not HTTP_PORT, reason="TAUTAN_HTTP_PORT not set (run.sh sets it)")


def request(path, body=None, user="walidata", password=None, accept=None, content_type=None):
    """(status, content type, body bytes) of one request."""
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}", data=body)
    if user is not None:
        secret = USERS[user] if password is None else password
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    if accept:
        req.add_header("Accept", accept)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def wire_rows(sql, user="walidata"):
    import psycopg2

    with psycopg2.connect(Login(user).libpq()) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            return names, cur.fetchall()


JOIN = (
    "SELECT p.kecamatan_kode, k.nama, count(*) AS penduduk "
    "FROM kependudukan.public.penduduk p JOIN ref.kecamatan k ON k.kode = p.kecamatan_kode "
    "GROUP BY 1, 2 ORDER BY 1"
)


def test_json_ndjson_and_csv_hold_the_wire_answer():
    names, expected = wire_rows(JOIN)
    assert expected, "the demo data has population rows"
    as_text = [[str(v) for v in row] for row in expected]

    status, ctype, body = request("/v1/sql", JOIN.encode(), accept="application/json")
    assert status == 200, body
    assert ctype == "application/json"
    rows = json.loads(body)
    assert [[str(r[n]) for n in names] for r in rows] == as_text

    status, ctype, body = request("/v1/sql", JOIN.encode(), accept="application/x-ndjson")
    assert status == 200
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines == rows

    status, ctype, body = request("/v1/sql", JOIN.encode(), accept="text/csv")
    assert status == 200 and ctype.startswith("text/csv")
    table = list(csv.reader(io.StringIO(body.decode())))
    assert table[0] == names
    assert table[1:] == as_text


def test_arrow_and_parquet_read_with_pyarrow():
    import pyarrow.ipc
    import pyarrow.parquet

    names, expected = wire_rows(JOIN)
    status, ctype, body = request(
        "/v1/sql", JOIN.encode(), accept="application/vnd.apache.arrow.stream"
    )
    assert status == 200 and ctype == "application/vnd.apache.arrow.stream"
    table = pyarrow.ipc.open_stream(body).read_all()
    assert table.column_names == names
    assert [tuple(r.values()) for r in table.to_pylist()] == [tuple(r) for r in expected]

    status, ctype, body = request("/v1/sql?format=parquet", JOIN.encode())
    assert status == 200 and ctype == "application/vnd.apache.parquet"
    table = pyarrow.parquet.read_table(io.BytesIO(body))
    assert [tuple(r.values()) for r in table.to_pylist()] == [tuple(r) for r in expected]


def test_a_dataset_with_postgrest_parameters():
    _, expected = wire_rows(
        "SELECT kode, nama FROM ref.kecamatan WHERE kabupaten_kode = '31.71' ORDER BY nama DESC LIMIT 2"
    )
    status, _, body = request(
        "/v1/datasets/ref.kecamatan?select=kode,nama&kabupaten_kode=eq.31.71&order=nama.desc&limit=2"
    )
    assert status == 200, body
    assert [(r["kode"], r["nama"]) for r in json.loads(body)] == [tuple(r) for r in expected]


def test_grants_and_logins_hold_at_this_door():
    # analis_dinkes may not read NIK: 403 with PostgreSQL's SQLSTATE.
    status, ctype, body = request(
        "/v1/sql", b"SELECT nik FROM kependudukan.public.penduduk", user="analis_dinkes"
    )
    assert status == 403 and ctype == "application/json"
    assert json.loads(body)["error"]["sqlstate"] == "42501"
    # The dataset door answers the same.
    status, _, body = request(
        "/v1/datasets/kependudukan.public.penduduk?select=nik", user="analis_dinkes"
    )
    assert status == 403, body
    # A wrong password and no credentials are 401.
    assert request("/v1/sql", b"SELECT 1", password="salah")[0] == 401
    assert request("/v1/sql", b"SELECT 1", user=None)[0] == 401


def test_json_parameters_are_bound():
    body = json.dumps(
        {"sql": "SELECT nama FROM ref.kecamatan WHERE kode = $1", "params": ["31.71.01"]}
    ).encode()
    status, _, out = request("/v1/sql", body, content_type="application/json")
    assert status == 200, out
    assert json.loads(out) == [{"nama": "Gambir"}]
