-- Dinas Kesehatan (health agency), MariaDB: visits to community health
-- centres (puskesmas), keyed by the patient's NIK.
DROP DATABASE IF EXISTS kesehatan;
CREATE DATABASE kesehatan CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE kesehatan;

CREATE TABLE puskesmas (
    kode           varchar(12) PRIMARY KEY,
    nama           varchar(100) NOT NULL,
    kecamatan_kode varchar(8) NOT NULL
) COMMENT = 'Daftar puskesmas';

INSERT INTO puskesmas VALUES
 ('P3171010101', 'Puskesmas Gambir', '31.71.01'),
 ('P3171020101', 'Puskesmas Sawah Besar', '31.71.02'),
 ('P3171030101', 'Puskesmas Kemayoran', '31.71.03'),
 ('P3171040101', 'Puskesmas Senen', '31.71.04'),
 ('P3171050101', 'Puskesmas Cempaka Putih', '31.71.05'),
 ('P3171060101', 'Puskesmas Menteng', '31.71.06'),
 ('P3171070101', 'Puskesmas Tanah Abang', '31.71.07'),
 ('P3171080101', 'Puskesmas Johar Baru', '31.71.08');

CREATE TABLE kunjungan (
    id             bigint unsigned AUTO_INCREMENT PRIMARY KEY,
    nik            char(16) NOT NULL,
    puskesmas_kode varchar(12) NOT NULL,
    kecamatan_kode varchar(8) NOT NULL,
    waktu          datetime NOT NULL,
    diagnosa_icd10 varchar(8) NOT NULL,
    biaya          decimal(12,2) NOT NULL,
    rawat_inap     tinyint(1) NOT NULL DEFAULT 0,
    KEY (kecamatan_kode),
    KEY (nik)
) COMMENT = 'Kunjungan pasien ke puskesmas';

-- 30,000 visits, each by a resident of the puskesmas's district: resident
-- number i of the population data (kependudukan.pg.sql), whose NIK is built
-- the same way there (region + DDMMYY, day + 40 for women + serial), so the
-- two agencies' tables join on NIK.
INSERT INTO kunjungan (nik, puskesmas_kode, kecamatan_kode, waktu, diagnosa_icd10, biaya, rawat_inap)
SELECT
  CONCAT('31710', 1 + i % 8,
         LPAD(DAY(lahir) + IF(i % 2 = 0, 40, 0), 2, '0'),
         DATE_FORMAT(lahir, '%m%y'),
         LPAD(i % 10000, 4, '0')),
  CONCAT('P31710', 1 + seq % 8, '0101'),
  CONCAT('31.71.0', 1 + seq % 8),
  TIMESTAMP '2024-01-01 07:00:00' + INTERVAL (seq * 17) MINUTE,
  ELT(1 + seq % 6, 'J06.9', 'A09', 'I10', 'E11.9', 'K29.7', 'R50.9'),
  ROUND(15000 + (seq * 7919) % 485000, -2) / 1,
  seq % 23 = 0
FROM (
  SELECT seq, i, DATE '1950-01-01' + INTERVAL ((i * 7919) % 25000) DAY AS lahir
  FROM (SELECT seq, 8 * (1 + (seq * 13) % 2499) + seq % 8 AS i FROM seq_1_to_30000) s
) v;
