-- Badan Kepegawaian (civil-service staffing), MariaDB: staff keyed by the
-- 18-digit NIP (birth date YYYYMMDD + appointment YYYYMM + sex + serial).
DROP DATABASE IF EXISTS kepegawaian;
CREATE DATABASE kepegawaian CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE kepegawaian;

CREATE TABLE pegawai (
    nip         char(18) PRIMARY KEY,
    nama        varchar(100) NOT NULL,
    opd_kode    varchar(10) NOT NULL,
    golongan    enum('I/a','II/a','II/c','III/a','III/b','III/c','IV/a','IV/b') NOT NULL,
    tmt_cpns    date NOT NULL,
    gaji_pokok  decimal(12,2) NOT NULL
) COMMENT = 'Data pegawai ASN (sensitif)';

INSERT INTO pegawai
SELECT
  CONCAT(DATE_FORMAT(DATE '1965-01-01' + INTERVAL (seq * 37) % 14000 DAY, '%Y%m%d'),
         DATE_FORMAT(DATE '1990-01-01' + INTERVAL (seq * 13) % 360 MONTH, '%Y%m'),
         1 + seq % 2, LPAD(seq % 1000, 3, '0')),
  CONCAT(ELT(1 + seq % 6, 'Ahmad', 'Sri', 'Bambang', 'Yuni', 'Dedi', 'Lina'), ' ', ELT(1 + seq % 5, 'Pratama', 'Sari', 'Utomo', 'Handayani', 'Setiawan')),
  ELT(1 + seq % 4, '1.02.01', '1.01.01', '2.07.01', '4.01.01'),
  ELT(1 + seq % 8, 'I/a','II/a','II/c','III/a','III/b','III/c','IV/a','IV/b'),
  DATE '1990-01-01' + INTERVAL (seq * 13) % 360 MONTH,
  1500000 + (seq * 7919) % 4000000
FROM seq_1_to_2000;
