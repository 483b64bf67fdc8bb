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

-- Hostile strings for the injection tests (filled by the tests themselves);
-- a binary collation, so only trailing blanks (PAD SPACE) make `=` looser.
CREATE TABLE injeksi (id int PRIMARY KEY, s text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL);

-- A view that takes a minute at the source: cancelling a query on it must
-- stop the remote statement too (KILL QUERY).
CREATE VIEW lambat AS SELECT SLEEP(60) AS tidur, 1 AS x;

-- A long answer (5 million rows) for faults that must land mid-stream.
CREATE VIEW banyak AS SELECT seq AS id, CONCAT('label-', seq) AS label FROM seq_1_to_5000000;

-- The differential harness: the same values as PostgreSQL's beda_my.
SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';
CREATE TABLE beda (
    id int PRIMARY KEY, flag tinyint(1), ti tinyint, tu tinyint unsigned, si smallint, i int,
    bi bigint, bu bigint unsigned, f float, d8 double, de decimal(12,3),
    t text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, vc varchar(10), ch char(4), bl blob,
    dt date, dtm datetime(6), tm time(6)
);
INSERT INTO beda VALUES
 (1, 1, 1, 1, 1, 1, 1, 1, 1.5, 1.5, 1.5, 'a', 'a', 'a', X'61', '2024-01-01', '2024-01-01 00:00:00', '00:00:00'),
 (2, 0, -1, 0, -1, -1, -1, 0, -1.5, -1.5, -1.5, 'A', 'A', 'A', X'41', '1999-12-31', '1999-12-31 23:59:59.999999', '23:59:59.999999'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 1, 127, 255, 32767, 2147483647, 9223372036854775807, 18446744073709551615, 3.4028235e38, 1.7976931348623157e308, 999999999.999, '', '', '', X'', '1000-01-01', '1000-01-01 00:00:00', '00:00:00'),
 (5, 0, -128, 0, -32768, -2147483648, -9223372036854775808, 0, -3.4028235e38, -1.7976931348623157e308, -999999999.999, ' ', ' ', ' ', X'00', '9999-12-31', '9999-12-31 23:59:59', '00:00:00.000001'),
 (6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'Ünïcødé ✓', 'ÿ', 'é', X'ff00ff', '2000-02-29', '2000-02-29 12:34:56.5', '12:34:56.5'),
 (7, 0, 7, 7, 7, 70000, 7000000000, 7, 1e-30, 1e-300, 0.001, 'it''s', 'a''b', 'ab  ', X'5c27', '1970-01-01', '1970-01-01 00:00:00', '06:00:00'),
 (8, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8, 'back\slash', 'x\y', 'a b', X'5c', '2024-02-29', '2024-02-29 23:59:59', '18:00:00'),
 (9, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, '日本語', '日本', '日', X'e697a5', '2023-06-15', '2023-06-15 08:00:00', '08:00:00'),
 (10, 1, 10, 10, 10, 10, 10, 10, 10, 10, 10, 'a%b_c', '%', '_', X'25', '2023-06-15', '2023-06-15 08:00:00', '08:00:00'),
 (11, NULL, 11, 11, 11, 11, 11, 11, 2.25, 2.25, 2.25, 'z', 'Z', 'zz', X'7a', '2024-01-01', '2024-01-01 00:00:00.000001', '00:00:00'),
 (12, 1, -7, 250, -7, -7, -7, 7, 3.14, 3.14, 3.140, 'tab	x', 'new
l', 'x', X'0a', '2024-12-31', '2024-12-31 23:59:59.123456', '23:59:59');
