-- Test fixture: every mapped MySQL/MariaDB type, zero dates, awkward names.
DROP DATABASE IF EXISTS tautan_uji;
CREATE DATABASE tautan_uji CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE tautan_uji;
SET SESSION sql_mode = '';
CREATE TABLE semua_tipe (
    id      int PRIMARY KEY,
    flag    tinyint(1),
    ti      tinyint,
    tiu     tinyint unsigned,
    si      smallint,
    siu     smallint unsigned,
    mi      mediumint,
    miu     mediumint unsigned,
    ii      int,
    iu      int unsigned,
    bi      bigint,
    biu     bigint unsigned,
    de      decimal(12,2),
    fl      float,
    db      double,
    ch      char(4),
    vc      varchar(30),
    tx      text,
    bn      binary(3),
    vb      varbinary(10),
    bl      blob,
    d       date,
    dt      datetime(6),
    ts      timestamp(6) NULL,
    tm      time(6),
    yr      year,
    en      enum('senang','sedih'),
    st      set('a','b','c'),
    js      json,
    bt1     bit(1),
    bt      bit(10)
);
INSERT INTO semua_tipe VALUES
 (1, 1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615, 1234567890.12, 1.5, 2.25,
  'ab', 'varchar', 'teks ''kutip'' \\ garis', 'xyz', 'vb', 'blob', '2024-02-29', '2024-02-29 13:45:30.123456',
  '2024-02-29 13:45:30.123456', '-838:59:59.000000', 2024, 'senang', 'a,c', '{"a": [1, 2]}', b'1', b'1000000001'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.01, -0.5, -1e100,
  '', 'Ünïcødé ✓', '', 'a', '', '', '0000-00-00', '0000-00-00 00:00:00',
  '0000-00-00 00:00:00', '12:00:00.5', 1901, 'sedih', '', '[]', b'0', b'0');

CREATE TABLE `Data Penting` (`Kode Wilayah` varchar(10), `NilaiBesar` int, `back``tick` varchar(5));
INSERT INTO `Data Penting` VALUES ('31.71', 10, 'a'), ('32.01', 20, 'b'), ('it''s', 30, 'c');
-- A backslash and an upper-case twin ('a' = 'A' under the collation).
INSERT INTO `Data Penting` VALUES (CONCAT('a', CHAR(92 USING utf8mb4), 'b'), 40, 'A');

CREATE TABLE angka (id bigint PRIMARY KEY, grup int NOT NULL, label varchar(30) NOT NULL);
INSERT INTO angka SELECT seq, seq % 100, CONCAT('label-', seq) FROM seq_1_to_50000;
