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
