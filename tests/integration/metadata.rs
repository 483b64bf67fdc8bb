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
