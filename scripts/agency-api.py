#!/usr/bin/env python3
"""A stand-in for an agency web service, for the shipped `bps` http link.

Serves GET /v1/harga?tahun=YYYY&after=N: monthly staple-food prices per
district (the districts of ref/kecamatan.csv), 25 records a page, the next
page's address in `links.next` (null on the last page). Standard library
only:

    python3 scripts/agency-api.py            # listens on 127.0.0.1:6490
"""
import csv
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "ref", "kecamatan.csv"), newline="") as f:
    DISTRICTS = [row["kode"] for row in csv.DictReader(f)]

RECORDS = [
    {
        "kecamatan_kode": kode,
        "tahun": tahun,
        "bulan": bulan,
        "komoditas": komoditas,
        "harga": round(base * (1 + 0.004 * (bulan + 12 * (tahun - 2025))) + 10 * i, 2),
    }
    for tahun in (2025, 2026)
    for bulan in range(1, 13)
    for i, kode in enumerate(DISTRICTS)
    for komoditas, base in (("beras", 13500.0), ("cabai merah", 42000.0))
]
PAGE = 25


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/v1/harga":
            return self.answer(404, {"error": "not found"})
        q = parse_qs(url.query)
        try:
            after = int(q.get("after", ["0"])[0])
            tahun = int(q["tahun"][0]) if "tahun" in q else None
        except ValueError:
            return self.answer(400, {"error": "bad parameter"})
        rows = [r for r in RECORDS if tahun is None or r["tahun"] == tahun]
        page = rows[after : after + PAGE]
        nxt = None
        if after + PAGE < len(rows):
            params = {"after": after + PAGE}
            if tahun is not None:
                params["tahun"] = tahun
            nxt = "/v1/harga?" + urlencode(params)
        self.answer(200, {"data": page, "links": {"next": nxt}})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6490
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
