//! The end-to-end path a user takes: psql, the CLI, parameters, many sessions.

use crate::common::*;

const JOIN: &str = "SELECT k.nama, p.penduduk, v.kunjungan \
    FROM ref.kecamatan k \
    JOIN (SELECT kecamatan_kode, sum(jumlah) AS penduduk FROM kependudukan.public.penduduk_per_kecamatan GROUP BY 1) p ON p.kecamatan_kode = k.kode \
    JOIN (SELECT kecamatan_kode, count(*) AS kunjungan FROM kesehatan.kesehatan.kunjungan GROUP BY 1) v ON v.kecamatan_kode = k.kode \
    ORDER BY k.nama";

// psql blocks this thread: the server needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_agency_join_through_psql() {
    let server = start().await;
    let (ok, out, err) = server.psql(DINKES, &["-A", "-t", "-c", JOIN]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert_eq!(lines[0], "Cempaka Putih|2500|3750");
    assert!(lines.contains(&"Gambir|2500|3750"), "{out}");
}

#[tokio::test]
async fn extended_protocol_with_parameters_and_binary_results() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let rows = client
        .query(
            "SELECT kode, nama FROM ref.kecamatan WHERE kode = $1",
            &[&"31.71.06"],
        )
        .await
        .expect("query");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(1), "Menteng");
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE kecamatan_kode = $1 AND rawat_inap = $2",
            &[&"31.71.01", &true],
        )
        .await
        .expect("count")
        .get(0);
    assert!(n > 0 && n < 3750, "{n}");
}

#[tokio::test]
async fn array_parameters_bind_as_text_and_binary() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let sql = "SELECT nama FROM ref.kecamatan WHERE kode = ANY($1) ORDER BY kode";
    // The server announces text[] for $1; tokio-postgres sends it binary.
    let statement = client.prepare(sql).await.expect("prepare");
    assert_eq!(
        statement.params(),
        &[tokio_postgres::types::Type::TEXT_ARRAY]
    );
    let kode = vec!["31.71.06", "31.71.01", "tidak-ada"];
    let rows = client.query(&statement, &[&kode]).await.expect("query");
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["Gambir", "Menteng"]);
    // int8[] with a NULL element, and an empty one: as PostgreSQL answers.
    let walidata = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    let count = "SELECT count(*) FROM {t} WHERE i8 = ANY($1) OR i4::int8 = ANY($1)";
    for ids in [vec![Some(-1i64), Some(0), None, Some(i64::MAX)], vec![]] {
        let ours: i64 = walidata
            .query_one(&count.replace("{t}", "uji_pg.public.beda"), &[&ids])
            .await
            .unwrap_or_else(|e| panic!("{ids:?}: {}", message(&e)))
            .get(0);
        let theirs: i64 = oracle
            .query_one(&count.replace("{t}", "public.beda"), &[&ids])
            .await
            .unwrap_or_else(|e| panic!("{ids:?}: {e:?}"))
            .get(0);
        assert_eq!(ours, theirs, "{ids:?}");
    }
    // Text-format arrays (psycopg's untyped lists): tests/clients, and
    // the decoder's own tests in src/server/params.rs.
}

#[tokio::test]
async fn an_unsigned_column_compared_with_any_of_a_signed_array() {
    // MySQL `BIGINT UNSIGNED` (UInt64) against `int8[]` (List(Int64)):
    // compared as numbers, as PostgreSQL compares numeric(20,0) with int8,
    // whatever the signs and sizes; as a filter, in a select list, negated,
    // with a bound parameter.
    let server = start().await;
    let walidata = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    let queries = [
        "SELECT id FROM {t} WHERE bu = ANY($1) ORDER BY id",
        "SELECT id, bu = ANY($1), bu <> ANY($1), bu > ANY($1), bu <= ALL($1) FROM {t} ORDER BY id",
        "SELECT id FROM {t} WHERE NOT (bu = ANY($1)) ORDER BY id",
        "SELECT id FROM {t} WHERE tu = ANY($1) OR si = ANY($1) ORDER BY id",
        "SELECT id, i = ANY($1), de = ANY($1) FROM {t} WHERE i = ANY($1) OR bi = ANY($1) ORDER BY id",
    ];
    let arrays: Vec<Vec<Option<i64>>> = vec![
        vec![Some(7), Some(-1), Some(i64::MAX)],
        vec![Some(0), None],
        vec![Some(i64::MIN), Some(10)],
        vec![],
    ];
    let text = |rows: Vec<tokio_postgres::Row>| {
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| match r.columns()[i].type_() {
                        &tokio_postgres::types::Type::BOOL => r
                            .get::<_, Option<bool>>(i)
                            .map_or("NULL".into(), |b| b.to_string()),
                        _ => r
                            .get::<_, Option<i32>>(i)
                            .map_or("NULL".into(), |v| v.to_string()),
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect::<Vec<_>>()
    };
    for sql in queries {
        for a in &arrays {
            let sql = sql.replace("$1", "$1::int8[]");
            let ours = walidata
                .query(&sql.replace("{t}", "uji_my.tautan_uji.beda"), &[a])
                .await
                .map(text)
                .unwrap_or_else(|e| panic!("{sql} {a:?}: {}", message(&e)));
            let theirs = oracle
                .query(&sql.replace("{t}", "public.beda_my"), &[a])
                .await
                .map(text)
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            assert_eq!(ours, theirs, "{sql} {a:?}");
        }
    }
}

#[tokio::test]
async fn any_of_an_array_with_nulls_is_null_where_postgresql_says_so() {
    // DataFusion answers `x = ANY(a)` false where an element or x is NULL
    // and nothing matched; PostgreSQL answers NULL, and NOT of it keeps
    // the row out. Values, negated filters and every operator, against
    // PostgreSQL holding the same table.
    let server = start().await;
    let walidata = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    let queries = [
        "SELECT id, i8 = ANY($1), i8 <> ANY($1), i8 > ANY($1), i8 <= ANY($1) FROM {t} ORDER BY id",
        "SELECT id FROM {t} WHERE NOT (i8 = ANY($1)) ORDER BY id",
        "SELECT id FROM {t} WHERE (i8 < ANY($1)) IS NULL ORDER BY id",
        "SELECT id FROM {t} WHERE i8 = ANY($1) ORDER BY id",
        "SELECT count(*) FILTER (WHERE NOT (i4::int8 >= ANY($1))) FROM {t}",
    ];
    let arrays: Vec<Vec<Option<i64>>> = vec![
        vec![Some(1), None],
        vec![None],
        vec![],
        vec![Some(-1), Some(0), Some(1)],
        vec![Some(i64::MAX), None, Some(i64::MIN)],
    ];
    let text = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    for sql in queries {
        for a in &arrays {
            // As a literal (the simple protocol), the same array both sides.
            let literal = format!(
                "ARRAY[{}]::int8[]",
                a.iter()
                    .map(|v| v.map_or("NULL".to_string(), |v| v.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let sql = sql.replace("$1", &literal);
            let ours = walidata
                .simple_query(&sql.replace("{t}", "uji_pg.public.beda"))
                .await
                .map(text)
                .unwrap_or_else(|e| panic!("{sql}: {}", message(&e)));
            let theirs = oracle
                .simple_query(&sql.replace("{t}", "public.beda"))
                .await
                .map(text)
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            assert_eq!(ours, theirs, "{sql}");
        }
    }
}

#[tokio::test]
async fn a_regclass_cast_of_an_unknown_name_is_42p01() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    for name in ["tidak_ada", "public.tidak_ada", "pg_catalog.tidak_ada"] {
        let e = client
            .simple_query(&format!("SELECT '{name}'::regclass::oid"))
            .await
            .expect_err("no such relation");
        assert_eq!(sqlstate(&e), "42P01", "{name}: {}", message(&e));
        assert!(
            message(&e).contains(&format!("relation \"{name}\" does not exist")),
            "{}",
            message(&e)
        );
    }
    let found = client
        .simple_query("SELECT 'pg_class'::regclass::oid")
        .await
        .expect("pg_class is found");
    let oid = found.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
        _ => None,
    });
    assert_eq!(oid.as_deref(), Some("1259"));
}

#[tokio::test]
async fn a_regtype_cast_is_postgresql_s_lookup_and_42704_for_an_unknown_name() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let oracle = pg_admin("tautan_uji").await;
    let first = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
            _ => None,
        })
    };
    // Every alias spelling PostgreSQL accepts: the same oid (and the
    // same text) as PostgreSQL's.
    for name in [
        "int4",
        "integer",
        "INTEGER",
        "pg_catalog.int8",
        "text[]",
        "integer[]",
        "varchar(10)",
        "character varying",
        "timestamp with time zone",
        "bool",
    ] {
        for sql in [
            format!("SELECT '{name}'::regtype::oid"),
            format!("SELECT '{name}'::regtype::text"),
        ] {
            let ours = first(client.simple_query(&sql).await.expect(&sql));
            let theirs = first(oracle.simple_query(&sql).await.expect(&sql));
            assert!(theirs.is_some(), "{sql}");
            assert_eq!(ours, theirs, "{sql}");
        }
    }
    for name in ["tidak_ada", "int5", "pg_catalog.tidak_ada", "tipe_baru[]"] {
        for sql in [
            format!("SELECT '{name}'::regtype::oid"),
            format!("SELECT '{name}'::regtype::text"),
        ] {
            let theirs = oracle.simple_query(&sql).await.expect_err(&sql);
            let e = client.simple_query(&sql).await.expect_err(&sql);
            assert_eq!(sqlstate(&e), sqlstate(&theirs), "{sql}: {}", message(&e));
            // (PostgreSQL names the type as written; the compatibility
            // parser may have dropped a `pg_catalog.` qualifier.)
            let unqualified = name.strip_prefix("pg_catalog.").unwrap_or(name);
            assert!(
                message(&e).contains(&format!("{unqualified}\" does not exist")),
                "{sql}: {}",
                message(&e)
            );
        }
    }
}

#[tokio::test]
async fn current_user_is_the_login() {
    let server = start().await;
    for (user, password) in [WALIDATA, DINKES] {
        let client = server.connect((user, password)).await;
        let row = client
            .query_one("SELECT current_user, session_user, user", &[])
            .await
            .expect("current_user");
        for i in 0..3 {
            assert_eq!(row.get::<_, String>(i), user);
        }
        let rows = client
            .simple_query("SELECT current_user AS u, count(*) FROM ref.kecamatan")
            .await
            .expect("with a table");
        let first = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
            _ => None,
        });
        assert_eq!(first.as_deref(), Some(user));
    }
}

#[tokio::test]
async fn many_concurrent_sessions_get_the_same_answer() {
    let server = start().await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let client = server.connect(WALIDATA).await;
        tasks.push(tokio::spawn(async move {
            client
                .query_one("SELECT count(*) FROM kependudukan.public.penduduk p JOIN ref.kecamatan k ON k.kode = p.kecamatan_kode", &[])
                .await
                .map(|r| r.get::<_, i64>(0))
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("query"), 20_000);
    }
}

#[tokio::test]
async fn wrong_password_is_28p01() {
    let server = start().await;
    let err = server
        .try_connect("analis_dinkes", "salah")
        .await
        .expect_err("refused");
    assert_eq!(sqlstate(&err), "28P01");
    let err = server
        .try_connect("tidak_ada", "x")
        .await
        .expect_err("refused");
    assert_eq!(
        sqlstate(&err),
        "28P01",
        "unknown users look like wrong passwords"
    );
}

#[tokio::test]
async fn errors_carry_sqlstates() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let e = client.simple_query("SELEC 1").await.expect_err("syntax");
    assert_eq!(sqlstate(&e), "42601");
    let e = client
        .simple_query("SELECT tidak_ada FROM ref.kecamatan")
        .await
        .expect_err("column");
    assert_eq!(sqlstate(&e), "42703");
    // The session survives errors.
    let rows = client.simple_query("SELECT 1").await.expect("still works");
    assert!(!rows.is_empty());
}

fn tautan_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tautan"));
    cmd.current_dir(repo())
        .env("TAUTAN_KEPENDUDUKAN_PASSWORD", "tautan-ro")
        .env("TAUTAN_LOG", "warn");
    cmd
}

#[test]
fn cli_query_prints_a_table() {
    let out = tautan_cmd()
        .args(["query", "--user", "analis_dinkes", JOIN])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| Gambir        | 2500     | 3750      |"),
        "{stdout}"
    );
    assert!(stdout.contains("(8 rows)"), "{stdout}");

    let out = tautan_cmd()
        .args([
            "query",
            "--user",
            "analis_dinkes",
            "SELECT nip FROM kepegawaian.kepegawaian.pegawai",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 42P01"));
}

#[test]
fn cli_check_tests_every_link() {
    agency_api();
    let out = tautan_cmd().arg("check").output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("link kependudukan (postgres): up as tautan_ro — read-only, 2 tables"),
        "{stdout}"
    );
    assert!(
        stdout.contains("link kesehatan (mysql): up as tautan_ro@"),
        "{stdout}"
    );
    assert!(stdout.contains("reference data: 2 tables"), "{stdout}");
    assert!(
        stdout.contains("link bps (http): 1 tables\n  table harga: up — 25 rows on the first page"),
        "{stdout}"
    );

    // A bad config names file, line and key.
    let dir = std::env::temp_dir().join(format!("tautan-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("federation.toml");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:1\"\n\n[links.x]\nkind = \"postgres\"\nhost = \"h\"\ndatabase = \"d\"\nuser = \"u\"\nport = \"lima\"\n").expect("write");
    let out = tautan_cmd()
        .arg("--config")
        .arg(&bad)
        .arg("check")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("federation.toml:"), "{stderr}");
}

/// `tautan check` says when a link's account can do more than read, and
/// is quiet for the least-privilege demo accounts `sql/load.sh` creates.
#[test]
fn check_warns_about_accounts_that_can_do_more_than_read() {
    agency_api();
    let out = tautan_cmd().arg("check").output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("link kependudukan (postgres): up"),
        "{stdout}"
    );
    assert!(!stdout.contains("warning:"), "{stdout}");

    // The same federation, with a link logged in as the superuser.
    let dir = crate::common::temp_dir("check-privileges");
    let config = dir.join("federation.toml");
    // scripts/test.sh gives postgres a password only where trust is off.
    let password = match std::env::var("PGPASSWORD") {
        Ok(_) => "password_env = \"PGPASSWORD\"\n",
        Err(_) => "",
    };
    let text = crate::common::config_text(&format!(
        "[links.terlalu_kuat]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"tautan_uji\"\nuser = \"postgres\"\n{password}"
    ))
    .replace("path = \"files/dinsos\"", &format!("path = \"{}\"", repo().join("files/dinsos").display()))
    .replace("path = \"ref\"", &format!("path = \"{}\"", repo().join("ref").display()));
    std::fs::write(&config, text).expect("config");
    let out = tautan_cmd()
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let section = stdout
        .split("link terlalu_kuat")
        .nth(1)
        .and_then(|s| s.split("\nlink ").next())
        .unwrap_or_default();
    assert!(
        section.contains("warning: the account is a superuser"),
        "{stdout}"
    );
}
