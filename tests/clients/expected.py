"""What the demo federation holds, derived from the files that generate it.

Every value here is computed from (or copied from) the generator, never
read back from a server:
  sql/kesehatan.mysql.sql     puskesmas (literal rows), kunjungan (INSERT ... SELECT formula)
  sql/kependudukan.pg.sql     penduduk (generate_series(1, 20000), kecamatan by g.i % 8)
  ref/kecamatan.csv           ref.kecamatan
  files/dinsos/*.csv          the dinsos file link
"""

import csv
import datetime
import decimal
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]

# --- sql/kesehatan.mysql.sql: the literal INSERT INTO puskesmas ------------
PUSKESMAS = {
    "P3171010101": "Puskesmas Gambir",
    "P3171020101": "Puskesmas Sawah Besar",
    "P3171030101": "Puskesmas Kemayoran",
    "P3171040101": "Puskesmas Senen",
    "P3171050101": "Puskesmas Cempaka Putih",
    "P3171060101": "Puskesmas Menteng",
    "P3171070101": "Puskesmas Tanah Abang",
    "P3171080101": "Puskesmas Johar Baru",
}
PUSKESMAS_COMMENT = "Daftar puskesmas"  # COMMENT = '...' of CREATE TABLE puskesmas
PUSKESMAS_COLUMNS = ["kode", "nama", "kecamatan_kode"]
KESEHATAN_TABLES = ["kunjungan", "puskesmas"]  # the two CREATE TABLEs, sorted

# --- sql/kesehatan.mysql.sql: kunjungan, one row per seq in seq_1_to_30000 ---
# id is AUTO_INCREMENT over the INSERT ... SELECT, so id = seq.
KUNJUNGAN_ROWS = 30000
KECAMATAN_KODES = [f"31.71.0{i}" for i in range(1, 9)]  # CONCAT('31.71.0', 1 + seq % 8)
KUNJUNGAN_PER_KECAMATAN = KUNJUNGAN_ROWS // len(KECAMATAN_KODES)  # 3750


def kunjungan_waktu(i: int) -> datetime.datetime:
    """TIMESTAMP '2024-01-01 07:00:00' + INTERVAL (seq * 17) MINUTE"""
    return datetime.datetime(2024, 1, 1, 7, 0) + datetime.timedelta(minutes=17 * i)


def kunjungan_biaya(i: int) -> decimal.Decimal:
    """ROUND(15000 + (seq * 7919) % 485000, -2) into decimal(12,2); MySQL
    rounds an exact value half away from zero (all values are positive)."""
    raw = 15000 + (i * 7919) % 485000
    return decimal.Decimal((raw + 50) // 100 * 100).quantize(decimal.Decimal("0.01"))


def kunjungan_rawat_inap(i: int) -> bool:
    """seq % 23 = 0 into tinyint(1)"""
    return i % 23 == 0


def kunjungan_nik(seq: int) -> str:
    """The NIK of resident i = 8 * (1 + (seq * 13) % 2499) + seq % 8 of the
    population data: region, DDMMYY of birth (day + 40 for women), serial
    (sql/kesehatan.mysql.sql, sql/kependudukan.pg.sql)."""
    i = 8 * (1 + (seq * 13) % 2499) + seq % 8
    lahir = datetime.date(1950, 1, 1) + datetime.timedelta(days=(i * 7919) % 25000)
    day = lahir.day + (40 if i % 2 == 0 else 0)
    return f"31710{1 + i % 8}{day:02d}{lahir:%m%y}{i % 10000:04d}"


def kunjungan_kecamatan(i: int) -> str:
    return f"31.71.0{1 + i % 8}"


# sum(biaya) WHERE id <= 10 (= 585600.00 by the formula above)
BIAYA_SUM_ID_1_10 = sum(kunjungan_biaya(i) for i in range(1, 11))
# WHERE id = 1: waktu '2024-01-01 07:17:00'
WAKTU_ID_1 = kunjungan_waktu(1)
# id 23 is the first in-patient visit (seq % 23 = 0)
RAWAT_INAP_ID = 23

# --- sql/kependudukan.pg.sql: penduduk, generate_series(1, 20000), kecamatan 1 + g.i % 8
PENDUDUK_ROWS = 20000
PENDUDUK_PER_KECAMATAN = PENDUDUK_ROWS // len(KECAMATAN_KODES)  # 2500
# analis_dinkes may read only these columns of penduduk (federation.toml grants)
DINKES_PENDUDUK_COLUMNS = ["kecamatan_kode", "jenis_kelamin", "tanggal_lahir", "status_kawin"]


# --- ref/kecamatan.csv --------------------------------------------------------
def _read_csv(path: pathlib.Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


KECAMATAN = {row["kode"]: row["nama"] for row in _read_csv(REPO / "ref" / "kecamatan.csv")}
KECAMATAN_COLUMNS = ["kode", "nama", "kabupaten_kode", "kabupaten"]  # the CSV header
assert KECAMATAN["31.71.01"] == "Gambir" and KECAMATAN["31.71.06"] == "Menteng"

# --- files/dinsos/penerima_bansos.csv: the dinsos link's one table --------------
BANSOS_ROWS = len(_read_csv(REPO / "files" / "dinsos" / "penerima_bansos.csv"))  # 400

# --- the federation's schemas as clients see them (link.schema, flattened) -------
SCHEMA_KESEHATAN = "kesehatan.kesehatan"
SCHEMA_KEPENDUDUKAN = "kependudukan.public"
SCHEMA_DINSOS = "dinsos.public"

# A query that runs far longer than any test waits and holds little memory:
# 30000 visits x 100000 numbers, each pair computed (a bare count(*) of a
# cross join is answered from row counts); only the visits are held.
SLOW_QUERY = (
    "SELECT sum(a.id * b.x) FROM kesehatan.kesehatan.kunjungan a "
    "CROSS JOIN generate_series(1, 100000) b(x)"
)
# A cancel must take effect within this many seconds (tests fail beyond it).
CANCEL_BOUND_S = 15
