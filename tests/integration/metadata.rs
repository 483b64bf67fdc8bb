//! Metadata never names what a user may not read: a table granted in part
//! has only its granted columns in every catalog view, error, description
//! and plan; the privilege functions answer from the grants; no role's
//! secrets are served.

use crate::common::*;

const PENDUDUK: &str = "kependudukan.public.penduduk";
const GRANTED: [&str; 4] = [
    "jenis_kelamin",
    "tanggal_lahir",
    "kecamatan_kode",
    "status_kawin",
];
const DENIED: [&str; 3] = ["nik", "nama", "diperbarui"];

/// Every text value of a simple query's rows, and of its column names.
async fn texts(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    {
        match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                for i in 0..r.len() {
                    out.extend(r.get(i).map(String::from));
                }
                out.extend(r.columns().iter().map(|c| c.name().to_string()));
            }
            tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                out.extend(cols.iter().map(|c| c.name().to_string()));
            }
            _ => {}
        }
    }
    out
}

fn assert_no_denied(what: &str, text: &str) {
    for column in DENIED {
        let named = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == column);
        assert!(!named, "{what} names {column}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_views_show_only_granted_columns() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let columns = texts(
        &client,
        "SELECT column_name FROM information_schema.columns \
         WHERE table_schema = 'kependudukan.public' AND table_name = 'penduduk' ORDER BY ordinal_position",
    )
    .await;
    let columns: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "column_name")
        .collect();
    assert_eq!(columns, GRANTED);
    let attributes = texts(
        &client,
        "SELECT a.attname FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON a.attrelid = c.oid \
         JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
         WHERE c.relname = 'penduduk' AND n.nspname = 'kependudukan.public' AND a.attnum > 0 ORDER BY a.attnum",
    )
    .await;
    assert_eq!(
        attributes
            .iter()
            .map(String::as_str)
            .filter(|c| *c != "attname")
            .collect::<Vec<_>>(),
        GRANTED
    );
    // Column comments (nik has one at the source): only granted columns'.
    let descriptions = texts(
        &client,
        "SELECT d.objsubid, d.description FROM pg_catalog.pg_description d \
         JOIN pg_catalog.pg_class c ON d.objoid = c.oid WHERE c.relname = 'penduduk'",
    )
    .await;
    assert!(
        !descriptions.iter().any(|d| d.contains("Nomor Induk")),
        "{descriptions:?}"
    );
    // psql's \d reads pg_attribute.
    let (ok, out, err) = server.psql(DINKES, &["-c", "\\d \"kependudukan.public\".penduduk"]);
    assert!(ok, "{err}");
    assert_no_denied("\\d", &out);
    for column in GRANTED {
        assert!(out.contains(column), "{out}");
    }
    // A user granted everything sees everything.
    let admin = server.connect(WALIDATA).await;
    let all = texts(
        &admin,
        "SELECT column_name FROM information_schema.columns \
         WHERE table_schema = 'kependudukan.public' AND table_name = 'penduduk'",
    )
    .await;
    for column in DENIED {
        assert!(all.iter().any(|c| c == column), "{all:?}");
    }
}

#[tokio::test]
async fn errors_plans_and_descriptions_name_only_granted_columns() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    // DataFusion's "Valid fields are …" listed every column of the table.
    for sql in [
        format!("SELECT foo FROM {PENDUDUK}"),
        format!("SELECT p.foo FROM {PENDUDUK} p"),
        format!("SELECT kecamatan_kode FROM {PENDUDUK} ORDER BY bar"),
    ] {
        let e = client.simple_query(&sql).await.expect_err(&sql);
        assert_eq!(sqlstate(&e), "42703", "{sql}");
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(message.contains("does not exist"), "{message}");
        assert_no_denied(&sql, &message);
        assert!(!message.contains("Valid fields"), "{message}");
    }
    // A denied column the user names is still 42501, naming that column.
    let e = client
        .simple_query(&format!("SELECT p.nama FROM {PENDUDUK} p"))
        .await
        .expect_err("42501");
    assert_eq!(sqlstate(&e), "42501");
    assert_eq!(
        e.as_db_error().map(|d| d.message()),
        Some("permission denied for column \"nama\" of relation \"kependudukan.public.penduduk\"")
    );
    // Describe (Parse + Describe of `*`) and EXPLAIN.
    let statement = client
        .prepare(&format!("SELECT * FROM {PENDUDUK}"))
        .await
        .expect("prepare");
    let described: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(described, GRANTED);
    let plan = texts(&client, &format!("EXPLAIN SELECT * FROM {PENDUDUK} p JOIN kependudukan.public.penduduk_per_kecamatan q USING (kecamatan_kode)")).await;
    assert_no_denied("EXPLAIN", &plan.join("\n"));
    // The status table counts the columns this user sees.
    let row = client
        .query_one(
            "SELECT columns FROM system.tables WHERE \"table\" = 'penduduk'",
            &[],
        )
        .await
        .expect("system.tables");
    assert_eq!(row.get::<_, i64>(0), 4);
}

#[tokio::test]
async fn privilege_functions_answer_from_the_grants() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let check = |sql: &'static str, expected: bool| {
        let client = &client;
        async move {
            let got: bool = client
                .query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0);
            assert_eq!(got, expected, "{sql}");
        }
    };
    // Granted whole: SELECT, and nothing that writes.
    check(
        "SELECT has_table_privilege('kesehatan.kesehatan.kunjungan', 'SELECT')",
        true,
    )
    .await;
    check(
        "SELECT has_table_privilege('\"kesehatan.kesehatan\".kunjungan', 'select')",
        true,
    )
    .await;
    check(
        "SELECT has_table_privilege('analis_dinkes', 'ref.kecamatan', 'SELECT')",
        true,
    )
    .await;
    for p in [
        "INSERT",
        "UPDATE",
        "DELETE",
        "TRUNCATE",
        "SELECT WITH GRANT OPTION",
    ] {
        let sql: &'static str = Box::leak(
            format!("SELECT has_table_privilege('kesehatan.kesehatan.kunjungan', '{p}')")
                .into_boxed_str(),
        );
        check(sql, false).await;
    }
    // Granted in part: column privileges, not the table's.
    check(
        "SELECT has_table_privilege('kependudukan.public.penduduk', 'SELECT')",
        false,
    )
    .await;
    check(
        "SELECT has_any_column_privilege('kependudukan.public.penduduk', 'SELECT')",
        true,
    )
    .await;
    check(
        "SELECT has_any_column_privilege('kependudukan.public.penduduk', 'UPDATE')",
        false,
    )
    .await;
    check(
        "SELECT has_column_privilege('kependudukan.public.penduduk', 'kecamatan_kode', 'SELECT')",
        true,
    )
    .await;
    check(
        "SELECT has_column_privilege('kependudukan.public.penduduk', 'nik', 'SELECT')",
        false,
    )
    .await;
    check(
        "SELECT has_column_privilege('kependudukan.public.penduduk', 'kecamatan_kode', 'UPDATE')",
        false,
    )
    .await;
    // Schemas and the database.
    check(
        "SELECT has_schema_privilege('kesehatan.kesehatan', 'USAGE')",
        true,
    )
    .await;
    check(
        "SELECT has_schema_privilege('kesehatan.kesehatan', 'CREATE')",
        false,
    )
    .await;
    check("SELECT has_database_privilege('tautan', 'CONNECT')", true).await;
    check("SELECT has_database_privilege('tautan', 'CREATE')", false).await;
    // What the user cannot see does not exist; bad input is PostgreSQL's
    // error.
    for (sql, code) in [
        (
            "SELECT has_table_privilege('kepegawaian.kepegawaian.pegawai', 'SELECT')",
            "42P01",
        ),
        (
            "SELECT has_schema_privilege('kepegawaian.kepegawaian', 'USAGE')",
            "3F000",
        ),
        (
            "SELECT has_table_privilege('walidata', 'ref.kecamatan', 'SELECT')",
            "42704",
        ),
        (
            "SELECT has_table_privilege('ref.kecamatan', 'SELEKT')",
            "22023",
        ),
        (
            "SELECT has_column_privilege('kependudukan.public.penduduk', 'xyz', 'SELECT')",
            "42703",
        ),
    ] {
        let e = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), code, "{sql}: {e}");
    }
}

#[tokio::test]
async fn no_role_secrets_are_served() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    for table in [
        "pg_authid",
        "pg_auth_members",
        "pg_user_mapping",
        "pg_statistic",
    ] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM pg_catalog.{table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .get(0);
        assert_eq!(n, 0, "{table}");
    }
    let roles = texts(
        &client,
        "SELECT rolname, rolpassword FROM pg_catalog.pg_roles",
    )
    .await;
    assert!(roles.contains(&"analis_dinkes".to_string()), "{roles:?}");
    assert!(!roles.iter().any(|r| r.contains("SCRAM")), "{roles:?}");
    assert!(!roles.iter().any(|r| r == "walidata"), "{roles:?}");
}

const BEDA: &str = "uji_pg.public.beda";

/// (data_type, udt_name, character_maximum_length, numeric_precision,
/// numeric_scale) of an `information_schema.columns` row.
type InfoColumn = (String, String, Option<i32>, Option<i32>, Option<i32>);

/// (attname, format_type, atttypid) of `schema.table`'s columns, read
/// through pg_attribute alone (no pg_class read first in this session:
/// the table's oid comes from `oid`, read by another session).
async fn attributes_of(client: &tokio_postgres::Client, oid: i64) -> Vec<(String, String, i64)> {
    let sql = format!(
        "SELECT attname, format_type(atttypid, atttypmod), atttypid \
         FROM pg_catalog.pg_attribute WHERE attrelid = {oid} AND attnum > 0 ORDER BY attnum"
    );
    rows_of(client, &sql)
        .await
        .into_iter()
        .map(|r| {
            let type_oid = r[2].as_deref().and_then(|t| t.parse().ok()).unwrap_or(-1);
            (
                r[0].clone().unwrap_or_default(),
                r[1].clone().unwrap_or_default(),
                type_oid,
            )
        })
        .collect()
}

/// The rows of a simple query, as text.
async fn rows_of(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn class_oid(client: &tokio_postgres::Client, schema: &str, table: &str) -> i64 {
    let sql = format!(
        "SELECT c.oid FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid \
         WHERE n.nspname = '{schema}' AND c.relname = '{table}'"
    );
    rows_of(client, &sql)
        .await
        .first()
        .and_then(|r| r[0].as_deref())
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("{schema}.{table} not in pg_class"))
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_types_and_typmods_agree_with_the_wire() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let oid = class_oid(&client, "uji_pg.public", "beda").await;
    let attributes = attributes_of(&client, oid).await;
    let declared: std::collections::HashMap<&str, &str> = attributes
        .iter()
        .map(|(n, t, _)| (n.as_str(), t.as_str()))
        .collect();
    for (column, expected) in [
        ("id", "integer"),
        ("b", "boolean"),
        ("i2", "smallint"),
        ("i8", "bigint"),
        ("f4", "real"),
        ("f8", "double precision"),
        ("n", "numeric(12,3)"),
        ("t", "text"),
        ("vc", "character varying(10)"),
        ("ch", "character(4)"),
        ("by", "bytea"),
        ("d", "date"),
        ("tstz", "timestamp with time zone"),
        ("u", "uuid"),
        ("iv", "interval"),
    ] {
        assert_eq!(declared.get(column).copied(), Some(expected), "{column}");
    }
    // Every column's type is the one RowDescription sends.
    let statement = client
        .prepare(&format!("SELECT * FROM {BEDA}"))
        .await
        .expect("prepare");
    let wire: Vec<(String, i64)> = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), i64::from(c.type_().oid())))
        .collect();
    let catalog: Vec<(String, i64)> = attributes.iter().map(|(n, _, t)| (n.clone(), *t)).collect();
    assert_eq!(catalog, wire);
    // information_schema.columns: PostgreSQL's type names, udt_name,
    // lengths, precision and scale.
    let rows = client
        .query(
            "SELECT column_name::text, data_type::text, udt_name::text, \
                    character_maximum_length::int4, numeric_precision::int4, numeric_scale::int4 \
             FROM information_schema.columns \
             WHERE table_schema = 'uji_pg.public' AND table_name = 'beda' ORDER BY ordinal_position",
            &[],
        )
        .await
        .expect("information_schema.columns");
    let info: std::collections::HashMap<String, InfoColumn> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
        .collect();
    let expect = |c: &str, t: &str, u: &str, len: Option<i32>, p: Option<i32>, s: Option<i32>| {
        assert_eq!(
            info.get(c),
            Some(&(t.to_string(), u.to_string(), len, p, s)),
            "{c}"
        );
    };
    expect("id", "integer", "int4", None, Some(32), Some(0));
    expect("n", "numeric", "numeric", None, Some(12), Some(3));
    expect("vc", "character varying", "varchar", Some(10), None, None);
    expect("ch", "character", "bpchar", Some(4), None, None);
    expect("u", "uuid", "uuid", None, None, None);
    expect(
        "tstz",
        "timestamp with time zone",
        "timestamptz",
        None,
        None,
        None,
    );
    assert_eq!(info.len(), statement.columns().len());
}

#[tokio::test(flavor = "multi_thread")]
async fn oids_are_the_same_in_every_session() {
    let server = start().await;
    let first = server.connect(WALIDATA).await;
    let oid = class_oid(&first, "uji_pg.public", "beda").await;
    let namespace = one_text(
        &first,
        "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'uji_pg.public'",
    )
    .await;
    assert!(namespace.is_some());
    // A second connection that reads pg_attribute first, with the oid the
    // first one cached, sees the table's columns.
    let second = server.connect(WALIDATA).await;
    let columns = attributes_of(&second, oid).await;
    assert_eq!(columns.first().map(|c| c.0.as_str()), Some("id"));
    assert_eq!(columns.len(), 19, "{columns:?}");
    assert_eq!(class_oid(&second, "uji_pg.public", "beda").await, oid);
    let again = one_text(
        &second,
        "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'uji_pg.public'",
    )
    .await;
    assert_eq!(again, namespace);
    // Another user: the same oid for the same table, only granted columns.
    let penduduk = class_oid(&first, "kependudukan.public", "penduduk").await;
    let dinkes = server.connect(DINKES).await;
    let seen: Vec<String> = attributes_of(&dinkes, penduduk)
        .await
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(seen, GRANTED);
    assert_eq!(
        class_oid(&dinkes, "kependudukan.public", "penduduk").await,
        penduduk
    );
    // A table the user may not read is not there by oid either.
    let pegawai = class_oid(&first, "kepegawaian.kepegawaian", "pegawai").await;
    assert!(attributes_of(&dinkes, pegawai).await.is_empty());
}

/// A text cell of a simple query.
async fn one_text(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(String::from)),
            _ => None,
        })
        .flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_functions_and_settings_clients_call() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    // pg_settings has what clients read.
    for (name, value) in [
        ("max_index_keys", "32"),
        ("server_version_num", tautan::SERVER_VERSION_NUM),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
    ] {
        let got = one_text(
            &client,
            &format!("SELECT setting FROM pg_catalog.pg_settings WHERE name = '{name}'"),
        )
        .await;
        assert_eq!(got.as_deref(), Some(value), "{name}");
    }
    // regclass of catalog and user tables.
    assert_eq!(
        one_text(&client, "SELECT 'pg_class'::regclass::oid")
            .await
            .as_deref(),
        Some("1259")
    );
    let oid = class_oid(&client, "uji_pg.public", "beda").await;
    assert_eq!(
        one_text(&client, "SELECT '\"uji_pg.public\".beda'::regclass::oid").await,
        Some(oid.to_string())
    );
    for (sql, expected) in [
        ("SELECT pg_type_is_visible(23)", Some("t")),
        ("SELECT array_to_string(ARRAY[1, 2, 3], ',')", Some("1,2,3")),
        (
            "SELECT set_config('application_name', 'katalog', false)",
            Some("katalog"),
        ),
        (
            "SELECT current_setting('application_name')",
            Some("katalog"),
        ),
        ("SELECT pg_get_function_result(1)", None),
        // A type oid column as a name (asyncpg's introspection, psql's \d).
        (
            "SELECT typelem::regtype::text FROM pg_catalog.pg_type WHERE oid = 1007",
            Some("integer"),
        ),
        (
            "SELECT typelem::regtype::text FROM pg_catalog.pg_type WHERE oid = 23",
            Some("-"),
        ),
        // asyncpg reads and sets jit around its type introspection;
        // SQLAlchemy's autoload compares relam's name with this one.
        ("SELECT current_setting('jit')", Some("off")),
        (
            "SELECT current_setting('default_table_access_method')",
            Some("heap"),
        ),
    ] {
        assert_eq!(one_text(&client, sql).await.as_deref(), expected, "{sql}");
    }
    let e = client
        .simple_query("SELECT set_config('transaction_read_only', 'off', false)")
        .await
        .expect_err("read only");
    assert_eq!(sqlstate(&e), "25006");
    // The primary key's definitions.
    let keys = rows_of(
        &client,
        &format!(
            "SELECT i.indexrelid, c.oid FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid \
             WHERE i.indrelid = {oid}"
        ),
    )
    .await;
    let (Some(Some(index)), Some(Some(constraint))) = (
        keys.first().map(|r| r[0].clone()),
        keys.first().map(|r| r[1].clone()),
    ) else {
        panic!("no primary key of beda in pg_index: {keys:?}");
    };
    for (sql, expected) in [
        (
            format!("SELECT pg_get_indexdef({index})"),
            "CREATE UNIQUE INDEX beda_pkey ON \"uji_pg.public\".beda USING btree (id)",
        ),
        (format!("SELECT pg_get_indexdef({index}, 1, false)"), "id"),
        (
            format!("SELECT pg_get_constraintdef({constraint})"),
            "PRIMARY KEY (id)",
        ),
        (
            format!("SELECT pg_get_constraintdef({constraint}, true)"),
            "PRIMARY KEY (id)",
        ),
    ] {
        assert_eq!(
            one_text(&client, &sql).await.as_deref(),
            Some(expected),
            "{sql}"
        );
    }
    // A user who may not see the table gets nothing for its oids.
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;
    for sql in [
        format!("SELECT pg_get_indexdef({index})"),
        format!("SELECT pg_get_constraintdef({constraint})"),
    ] {
        assert_eq!(one_text(&dinsos, &sql).await, None, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unnamed_columns_are_named_as_postgresql_names_them() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    for (sql, names) in [
        ("SELECT 1, 2", vec!["?column?", "?column?"]),
        (
            "SELECT NULL AS a, NULL, NULL",
            vec!["a", "?column?", "?column?"],
        ),
        (
            "SELECT 1 + 1, 'x'::text, CASE WHEN true THEN 1 END",
            vec!["?column?", "text", "case"],
        ),
        (
            "SELECT id, id + 1 FROM uji_pg.public.beda ORDER BY id LIMIT 1",
            vec!["id", "?column?"],
        ),
        (
            "SELECT (b IN ('t')), i4 BETWEEN 1 AND 2, t LIKE 'a%', n IS NULL, b IS TRUE, \
             i4 IS DISTINCT FROM 1, i4 = ANY(ARRAY[1]) FROM uji_pg.public.beda LIMIT 1",
            vec!["?column?"; 7],
        ),
        (
            "SELECT max(f8 * 2), 1e3 FROM uji_pg.public.beda WHERE id = 1",
            vec!["max", "?column?"],
        ),
    ] {
        let statement = client
            .prepare(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let got: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
        assert_eq!(got, names, "{sql}");
        client
            .query(&statement, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // boolean = 'f' (SQLAlchemy 1.4's reflection queries).
    let false_rows = one_text(
        &client,
        "SELECT count(*) FROM uji_pg.public.beda WHERE b = 'f'",
    )
    .await;
    assert!(
        false_rows.as_deref().is_some_and(|n| n != "0"),
        "{false_rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_named_by_a_literal_is_written_as_postgresql_writes_it() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    for name in [
        "int4",
        "integer",
        "Integer",
        "pg_catalog.int8",
        "character varying",
        "varchar",
        "text",
        "bool",
        "timestamp with time zone",
        "numeric",
        "date",
    ] {
        let sql = format!("SELECT '{name}'::regtype::text");
        let expected = one_text(&oracle, &sql).await;
        assert!(expected.is_some(), "{sql}");
        assert_eq!(one_text(&client, &sql).await, expected, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn result_columns_are_named_as_the_source_names_them() {
    // The same select lists over the same table through tautan and in
    // PostgreSQL: the column names a client is told must agree.
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    let lists = [
        "count(*), count(i4), sum(i8), min(t), max(d) FROM {t}",
        "count(*)::int, (count(*))::text, (max(i4) + 1)::int8 FROM {t}",
        "lower(t), upper(vc), coalesce(t, vc), length(t), abs(f8) FROM {t}",
        "extract(year FROM d), substring(t FROM 1 FOR 2), \
         trim(t), trim(leading 'x' FROM t), position('a' IN t) FROM {t}",
        "i4 % 7, count(*), count(*) FROM {t} GROUP BY i4 % 7 HAVING count(*) > 0 \
         ORDER BY count(*) DESC, 1",
        "id, row_number() OVER (ORDER BY id), rank() OVER (ORDER BY i4) FROM {t}",
        "id::text, i4::bigint, CASE WHEN b THEN 1 END::int, ARRAY[1, 2] FROM {t}",
        "* FROM (SELECT count(*), max(id) FROM {t}) s",
        "(SELECT 1), (SELECT max(id) FROM {t}), (SELECT 2)::int",
    ];
    for list in lists {
        let names = |c: &tokio_postgres::Statement| -> Vec<String> {
            c.columns().iter().map(|c| c.name().to_string()).collect()
        };
        let ours = format!("SELECT {}", list.replace("{t}", "uji_pg.public.beda"));
        let theirs = format!("SELECT {}", list.replace("{t}", "public.beda"));
        let ours_stmt = client
            .prepare(&ours)
            .await
            .unwrap_or_else(|e| panic!("{ours}: {}", message(&e)));
        let theirs_stmt = oracle
            .prepare(&theirs)
            .await
            .unwrap_or_else(|e| panic!("{theirs}: {e:?}"));
        assert_eq!(names(&ours_stmt), names(&theirs_stmt), "{ours}");
        client
            .query(&ours_stmt, &[])
            .await
            .unwrap_or_else(|e| panic!("{ours}: {}", message(&e)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describes_a_table_with_types_and_its_primary_key() {
    let server = start().await;
    let (ok, out, err) = server.psql(WALIDATA, &["-c", "\\d+ \"uji_pg.public\".beda"]);
    assert!(ok, "{err}");
    for expected in [
        "numeric(12,3)",
        "character varying(10)",
        "character(4)",
        "uuid",
        "interval",
        "timestamp with time zone",
        "\"beda_pkey\" PRIMARY KEY, btree (id)",
    ] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    assert!(err.is_empty(), "{err}");
}
