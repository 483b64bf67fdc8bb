-- Test fixture: one row per interesting value of every mapped PostgreSQL
-- type, plus awkward names. Loaded into database tautan_uji by load.sh.
DROP SCHEMA IF EXISTS public CASCADE;
DROP SCHEMA IF EXISTS "Skema Campuran" CASCADE;
CREATE SCHEMA public;
CREATE TYPE suasana AS ENUM ('senang', 'sedih');
CREATE TABLE semua_tipe (
    id         int4 PRIMARY KEY,
    b          bool,
    i2         int2,
    i8         int8,
    f4         float4,
    f8         float8,
    n_12_2     numeric(12,2),
    n_bebas    numeric,
    t          text,
    vc         varchar(20),
    ch         char(5),
    by         bytea,
    d          date,
    tm         time,
    ts         timestamp,
    tstz       timestamptz,
    iv         interval,
    u          uuid,
    j          json,
    jb         jsonb,
    arr_i      int4[],
    arr_t      text[],
    e          suasana,
    ip         inet
);
INSERT INTO semua_tipe VALUES
 (1, true, -32768, 9223372036854775807, 1.5, 2.25, 1234567890.12, 3.14159,
  'teks ''kutip'' \ garis', 'varchar', 'ab', '\xdeadbeef', '2024-02-29', '13:45:30.123456',
  '2024-02-29 13:45:30.123456', '2024-02-29 13:45:30.123456+07', '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": {"c": null}}',
  '{1,NULL,3}', '{"x","y z"}', 'senang', '192.168.1.1/32'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, 7, -1, -0.5, -1e100, -0.01, -1000000.0000000001, '', 'Ünïcødé ✓', 'x', '\x', '1900-01-01', '00:00:00',
  '1970-01-01 00:00:00', '1999-12-31 23:59:59+00', '-1 days', '00000000-0000-0000-0000-000000000000',
  '[]', '[]', '{}', '{}', 'sedih', '::1');

CREATE SCHEMA "Skema Campuran";
CREATE TABLE "Skema Campuran"."Data Penting" ("Kode Wilayah" text, "NilaiBesar" int4, "quote""d" text);
INSERT INTO "Skema Campuran"."Data Penting" VALUES ('31.71', 10, 'a'), ('32.01', 20, 'b'), ('it''s', 30, 'c');
-- A backslash (literal: standard_conforming_strings) and an upper-case twin.
INSERT INTO "Skema Campuran"."Data Penting" VALUES ('a\b', 40, 'A');

-- A larger table for streaming and pushdown checks.
CREATE TABLE angka (id int8 PRIMARY KEY, grup int4 NOT NULL, nilai numeric(12,2) NOT NULL, label text NOT NULL);
INSERT INTO angka SELECT g, g % 100, (g % 1000) / 10.0, 'label-' || g FROM generate_series(1, 200000) g;
ANALYZE angka;

-- A view that takes a minute at the source: cancelling a query on it must
-- stop the remote statement too.
CREATE VIEW lambat AS SELECT pg_sleep(60)::text AS tidur, 1 AS x;

-- Hostile strings for the injection tests (filled by the tests themselves).
CREATE TABLE injeksi (id int4 PRIMARY KEY, s text NOT NULL);

-- A long answer (5 million rows) for faults that must land mid-stream.
CREATE VIEW banyak AS SELECT g AS id, 'label-' || g AS label FROM generate_series(1, 5000000) g;

-- The differential harness (tests/integration/differential.rs): every
-- mapped type with extremes, NULLs, empty values, non-ASCII, padding,
-- special floats and dates, widest decimals. Compared with PostgreSQL's own
-- answers.
CREATE TABLE beda (
    id int4 PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 real, f8 float8,
    n numeric(12,3), n38 numeric(38,6), t text, vc varchar(10), ch char(4), by bytea,
    d date, ts timestamp, tstz timestamptz, tm time, u uuid, iv interval
);
INSERT INTO beda VALUES
 (1, true, 1, 1, 1, 1.5, 1.5, 1.5, 1.5, 'a', 'a', 'a', '\x61', '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00+00', '00:00:00', '00000000-0000-0000-0000-000000000001', '1 day'),
 (2, false, -1, -1, -1, -1.5, -1.5, -1.5, -1.5, 'A', 'A', 'A', '\x41', '1999-12-31', '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999+07', '23:59:59.999999', '00000000-0000-0000-0000-000000000002', '-1 day'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, true, 32767, 2147483647, 9223372036854775807, 3.4028235e38, 1.7976931348623157e308, 999999999.999, 99999999999999999999999999999999.999999, '', '', '', '\x', '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '12:00:00', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '0'),
 (5, false, -32768, -2147483648, -9223372036854775808, -3.4028235e38, -1.7976931348623157e308, -999999999.999, -99999999999999999999999999999999.999999, ' ', ' ', ' ', '\x00', '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59+00', '00:00:00.000001', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 year 2 mons 3 days 04:05:06.789'),
 (6, true, 0, 0, 0, 0, 0, 0, 0, 'Ünïcødé ✓', 'ÿ', 'é', '\xff00ff', '2000-02-29', '2000-02-29 12:34:56.5', '2000-02-29 12:34:56.5-03', '12:34:56.5', '123e4567-e89b-12d3-a456-426614174000', '-1 year +2 days'),
 (7, false, 7, 70000, 7000000000, 1e-30, 1e-300, 0.001, 0.000001, 'it''s', 'a''b', 'ab  ', '\x5c27', '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '06:00:00', '00000000-0000-0000-0000-000000000007', '2 hours'),
 (8, true, 8, 8, 8, 'Infinity', 'Infinity', 8, 8, 'back\slash', 'x\y', 'a b', '\x5c', '2024-02-29', '2024-02-29 23:59:59', '2024-02-29 23:59:59+14', '18:00:00', '00000000-0000-0000-0000-000000000008', '1 mon'),
 (9, false, 9, 9, 9, '-Infinity', '-Infinity', 9, 9, '日本語', '日本', '日', '\xe697a5', '2023-06-15', '2023-06-15 08:00:00', '2023-06-15 08:00:00+07', '08:00:00', '00000000-0000-0000-0000-000000000009', '30 days'),
 (10, true, 10, 10, 10, 'NaN', 'NaN', 10, 10, 'a%b_c', '%', '_', '\x25', '2023-06-15', '2023-06-15 08:00:00', '2023-06-15 08:00:00+00', '08:00:00', '00000000-0000-0000-0000-00000000000a', '1 mon'),
 (11, NULL, 11, 11, 11, 2.25, 2.25, 2.25, 2.25, 'z', 'Z', 'zz', '\x7a', '2024-01-01', '2024-01-01 00:00:00.000001', '2024-01-01 00:00:00.000001+00', '00:00:00', '00000000-0000-0000-0000-000000000001', '1 day'),
 (12, true, -7, -7, -7, 3.14, 3.14, 3.140, 3.14, 'tab	x', 'new
l', 'x', '\x0a', '2024-12-31', '2024-12-31 23:59:59.123456', '2024-12-31 23:59:59.123456+00', '23:59:59', '00000000-0000-0000-0000-00000000000c', '00:00:00.000001');

-- The MariaDB table beda (uji.mysql.sql) with the same values in
-- PostgreSQL types: the oracle for the MariaDB link (PostgreSQL semantics:
-- byte-exact strings, as tautan answers).
CREATE TABLE beda_my (
    id int4 PRIMARY KEY, flag bool, ti int2, tu int2, si int2, i int4, bi int8, bu numeric(20,0),
    f real, d8 float8, de numeric(12,3), t text, vc text, ch text, bl bytea,
    dt date, dtm timestamp, tm interval  -- MariaDB's time is a duration
);
INSERT INTO beda_my VALUES
 (1, true, 1, 1, 1, 1, 1, 1, 1.5, 1.5, 1.5, 'a', 'a', 'a', '\x61', '2024-01-01', '2024-01-01 00:00:00', '00:00:00'),
 (2, false, -1, 0, -1, -1, -1, 0, -1.5, -1.5, -1.5, 'A', 'A', 'A', '\x41', '1999-12-31', '1999-12-31 23:59:59.999999', '23:59:59.999999'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, true, 127, 255, 32767, 2147483647, 9223372036854775807, 18446744073709551615, 3.4028235e38, 1.7976931348623157e308, 999999999.999, '', '', '', '\x', '1000-01-01', '1000-01-01 00:00:00', '00:00:00'),
 (5, false, -128, 0, -32768, -2147483648, -9223372036854775808, 0, -3.4028235e38, -1.7976931348623157e308, -999999999.999, ' ', ' ', '', '\x00', '9999-12-31', '9999-12-31 23:59:59', '00:00:00.000001'),
 (6, true, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'Ünïcødé ✓', 'ÿ', 'é', '\xff00ff', '2000-02-29', '2000-02-29 12:34:56.5', '12:34:56.5'),
 (7, false, 7, 7, 7, 70000, 7000000000, 7, 1e-30, 1e-300, 0.001, 'it''s', 'a''b', 'ab', '\x5c27', '1970-01-01', '1970-01-01 00:00:00', '06:00:00'),
 (8, true, 8, 8, 8, 8, 8, 8, 8, 8, 8, 'back\slash', 'x\y', 'a b', '\x5c', '2024-02-29', '2024-02-29 23:59:59', '18:00:00'),
 (9, false, 9, 9, 9, 9, 9, 9, 9, 9, 9, '日本語', '日本', '日', '\xe697a5', '2023-06-15', '2023-06-15 08:00:00', '08:00:00'),
 (10, true, 10, 10, 10, 10, 10, 10, 10, 10, 10, 'a%b_c', '%', '_', '\x25', '2023-06-15', '2023-06-15 08:00:00', '08:00:00'),
 (11, NULL, 11, 11, 11, 11, 11, 11, 2.25, 2.25, 2.25, 'z', 'Z', 'zz', '\x7a', '2024-01-01', '2024-01-01 00:00:00.000001', '00:00:00'),
 (12, true, -7, 250, -7, -7, -7, 7, 3.14, 3.14, 3.140, 'tab	x', 'new
l', 'x', '\x0a', '2024-12-31', '2024-12-31 23:59:59.123456', '23:59:59');
