-- Dinas Kependudukan dan Pencatatan Sipil (population registry), PostgreSQL.
-- Generated, deterministic demo data shaped like the real thing: NIK is
-- 6-digit region code + DDMMYY (day + 40 for women) + 4-digit serial.
DROP SCHEMA IF EXISTS public CASCADE;
CREATE SCHEMA public;

CREATE TYPE status_kawin AS ENUM ('BELUM KAWIN', 'KAWIN', 'CERAI HIDUP', 'CERAI MATI');

CREATE TABLE penduduk (
    nik            char(16) PRIMARY KEY,
    nama           text NOT NULL,
    jenis_kelamin  char(1) NOT NULL CHECK (jenis_kelamin IN ('L', 'P')),
    tanggal_lahir  date NOT NULL,
    kecamatan_kode varchar(8) NOT NULL,
    status_kawin   status_kawin NOT NULL,
    diperbarui     timestamptz NOT NULL
);
COMMENT ON TABLE penduduk IS 'Data penduduk per NIK (sensitif)';
COMMENT ON COLUMN penduduk.nik IS 'Nomor Induk Kependudukan, 16 digit';

INSERT INTO penduduk
SELECT
    replace(k.kode, '.', '')
      || to_char(extract(day FROM d.lahir)::int + CASE WHEN g.i % 2 = 0 THEN 40 ELSE 0 END, 'FM00')
      || to_char(d.lahir, 'MMYY')
      || to_char(g.i % 10000, 'FM0000'),
    (ARRAY['Siti','Budi','Dewi','Agus','Ani','Rudi','Rina','Joko','Wati','Hendra'])[1 + g.i % 10]
      || ' ' || (ARRAY['Santoso','Lestari','Wijaya','Rahayu','Saputra','Hidayat','Kusuma','Nugroho'])[1 + (g.i / 10) % 8],
    CASE WHEN g.i % 2 = 0 THEN 'P' ELSE 'L' END,
    d.lahir,
    k.kode,
    (ARRAY['BELUM KAWIN','KAWIN','KAWIN','CERAI HIDUP','CERAI MATI']::status_kawin[])[1 + g.i % 5],
    timestamptz '2024-01-01 00:00:00+07' + (g.i || ' minutes')::interval
FROM generate_series(1, 20000) AS g(i)
CROSS JOIN LATERAL (SELECT (ARRAY['31.71.01','31.71.02','31.71.03','31.71.04','31.71.05','31.71.06','31.71.07','31.71.08'])[1 + g.i % 8] AS kode) k
CROSS JOIN LATERAL (SELECT date '1950-01-01' + ((g.i * 7919) % 25000) AS lahir) d;

CREATE VIEW penduduk_per_kecamatan AS
SELECT kecamatan_kode, jenis_kelamin, count(*)::bigint AS jumlah
FROM penduduk GROUP BY kecamatan_kode, jenis_kelamin;
COMMENT ON VIEW penduduk_per_kecamatan IS 'Jumlah penduduk per kecamatan dan jenis kelamin';
