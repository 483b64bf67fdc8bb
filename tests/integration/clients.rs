//! What PostgreSQL clients do before and around their queries: browse the
//! catalog (psql `\l`, `\dn`, `\dt`, `\d`), send session statements, run
//! scripts with ON_ERROR_STOP, read through cursors, cancel, use TLS.
//! (Python and JDBC clients are driven by `tests/clients/run.sh`.)

use std::time::{Duration, Instant};

use crate::common::*;

fn write_script(tag: &str, sql: &str) -> std::path::PathBuf {
    let dir = temp_dir(tag);
    let path = dir.join("script.sql");
    std::fs::write(&path, sql).expect("script written");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_lists_databases_and_schemas_per_user() {
    let server = start().await;

    let (ok, out, err) = server.psql(WALIDATA, &["-c", r"\l"]);
    assert!(ok, "{err}");
    assert!(out.contains("tautan"), "{out}");

    // Each link schema is a schema of the one database: "<link>.<schema>".
    let (ok, out, err) = server.psql(WALIDATA, &["-c", r"\dn"]);
    assert!(ok, "{err}");
    for schema in [
        "kependudukan.public",
        "kesehatan.kesehatan",
        "dinsos.public",
        "ref",
    ] {
        assert!(out.contains(schema), "walidata should see {schema}:\n{out}");
    }

    // dinsos may read only its files and the reference data.
    let (ok, out, err) = server.psql(("dinsos", "dinsos-demo"), &["-c", r"\dn"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("dinsos.public") && out.contains("ref"),
        "{out}"
    );
    for hidden in [
        "kependudukan.public",
        "kesehatan.kesehatan",
        "uji_pg.public",
    ] {
        assert!(
            !out.contains(hidden),
            "dinsos must not see {hidden}:\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_lists_and_describes_tables() {
    let server = start().await;

    let (ok, out, err) = server.psql(DINKES, &["-c", r#"\dt "kesehatan.kesehatan".*"#]);
    assert!(ok, "{err}");
    assert!(
        out.contains("kunjungan") && out.contains("puskesmas"),
        "{out}"
    );

    // Source comments are descriptions (\dt+ reads obj_description).
    let (ok, out, err) = server.psql(DINKES, &["-c", r#"\dt+ "kesehatan.kesehatan".*"#]);
    assert!(ok, "{err}");
    assert!(out.contains("Daftar puskesmas"), "{out}");

    let (ok, out, err) = server.psql(DINKES, &["-c", r"\dt ref.*"]);
    assert!(ok, "{err}");
    assert!(out.contains("kecamatan"), "{out}");

    // The population table is granted to analis_dinkes only by columns;
    // the staff database not at all.
    let (ok, out, err) = server.psql(DINKES, &["-c", r#"\dt "kepegawaian.kepegawaian".*"#]);
    assert!(ok, "{err}");
    assert!(!out.contains("pegawai"), "{out}");

    let (ok, out, err) = server.psql(WALIDATA, &["-c", r#"\d "kependudukan.public".penduduk"#]);
    assert!(ok, "{err}");
    for column in ["nik", "nama", "kecamatan_kode", "tanggal_lahir"] {
        assert!(out.contains(column), "column {column} missing:\n{out}");
    }

    // The browsed name is queryable, under the same grant as link.schema.table.
    let (ok, out, err) = server.psql(
        WALIDATA,
        &[
            "-At",
            "-c",
            r#"SELECT count(*) = (SELECT count(*) FROM kependudukan.public.penduduk) FROM "kependudukan.public".penduduk"#,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "t");
    let (ok, _, err) = server.psql(
        ("dinsos", "dinsos-demo"),
        &[
            "-c",
            r#"SELECT count(*) FROM "kependudukan.public".penduduk"#,
        ],
    );
    assert!(!ok && err.contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_error_stop_script_stops_at_the_first_error() {
    let server = start().await;
    let script = write_script(
        "stop",
        "SELECT 'satu' AS langkah;\nSELECT * FROM tidak_ada;\nSELECT 'dua' AS langkah;\n",
    );
    let path = script.display().to_string();
    let (ok, out, err) = server.psql(WALIDATA, &["-v", "ON_ERROR_STOP=1", "-f", &path]);
    assert!(!ok, "psql must fail: {out}");
    assert!(out.contains("satu"), "{out}");
    assert!(!out.contains("dua"), "the script must stop: {out}");
    assert!(
        err.contains("relation \"tidak_ada\" does not exist"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn session_statements_are_answered() {
    let server = start().await;
    let script = write_script(
        "session",
        "SET application_name = 'laporan bulanan';\n\
         SHOW application_name;\n\
         SET extra_float_digits = 3;\n\
         SET search_path TO public;\n\
         SET TIME ZONE 'Asia/Jakarta';\n\
         SHOW TimeZone;\n\
         SHOW transaction isolation level;\n\
         BEGIN READ ONLY;\n\
         SAVEPOINT s1;\n\
         RELEASE SAVEPOINT s1;\n\
         COMMIT;\n\
         START TRANSACTION READ ONLY;\n\
         ROLLBACK;\n\
         SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\n\
         DISCARD ALL;\n\
         SHOW application_name;\n\
         RESET ALL;\n\
         CLOSE ALL;\n\
         UNLISTEN *;\n\
         -- a comment-only statement\n\
         ;\n\
         SELECT version() AS versi, current_setting('server_version_num') AS nomor;\n\
         SELECT 1 AS a; SELECT 2 AS b;\n",
    );
    let path = script.display().to_string();
    let (ok, out, err) = server.psql(WALIDATA, &["-v", "ON_ERROR_STOP=1", "-qAt", "-f", &path]);
    assert!(ok, "{err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"laporan bulanan"), "{out}");
    assert!(lines.contains(&"Asia/Jakarta"), "{out}");
    assert!(lines.contains(&"read committed"), "{out}");
    // DISCARD ALL reset the application name.
    assert!(lines.contains(&""), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PostgreSQL 16.0") && l.ends_with("|160000")),
        "{out}"
    );
    assert_eq!(&lines[lines.len() - 2..], &["1", "2"], "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_transaction_refuses_statements_until_rollback() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    client.batch_execute("BEGIN").await.expect("begin");
    let e = client
        .simple_query("SELECT * FROM tidak_ada")
        .await
        .expect_err("missing table");
    assert_eq!(sqlstate(&e), "42P01");
    let e = client
        .simple_query("SELECT 1")
        .await
        .expect_err("failed transaction");
    assert_eq!(sqlstate(&e), "25P02");
    // The extended protocol too.
    let e = client
        .query("SELECT $1::int", &[&1i32])
        .await
        .expect_err("25P02");
    assert_eq!(sqlstate(&e), "25P02");
    client.batch_execute("ROLLBACK").await.expect("rollback");
    let row = client
        .query_one("SELECT 1::int4", &[])
        .await
        .expect("usable again");
    assert_eq!(row.get::<_, i32>(0), 1);

    // COMMIT of a failed block ends it as a rollback.
    client.batch_execute("BEGIN").await.expect("begin");
    let _ = client
        .simple_query("SELECT 1/0")
        .await
        .expect_err("division");
    let messages = client
        .simple_query("COMMIT")
        .await
        .expect("commit accepted");
    let tag = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::CommandComplete(_) => Some(()),
        _ => None,
    });
    assert!(tag.is_some());
    client.simple_query("SELECT 1").await.expect("idle again");
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_fetch_in_pages() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .batch_execute(
            "DECLARE halaman NO SCROLL CURSOR WITHOUT HOLD FOR \
             SELECT id FROM uji_pg.public.angka ORDER BY id",
        )
        .await
        .expect("declare");
    let ids = |messages: Vec<tokio_postgres::SimpleQueryMessage>| -> Vec<i64> {
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                _ => None,
            })
            .collect()
    };
    let first = ids(client
        .simple_query("FETCH 7000 FROM halaman")
        .await
        .expect("fetch"));
    assert_eq!(first.len(), 7000);
    assert_eq!((first[0], first[6999]), (1, 7000));
    let second = ids(client
        .simple_query("FETCH FORWARD 7000 FROM halaman")
        .await
        .expect("fetch"));
    assert_eq!((second[0], second.len()), (7001, 7000));
    // Extended protocol: the portal describes the cursor's columns.
    let rows = client
        .query("FETCH NEXT FROM halaman", &[])
        .await
        .expect("fetch next");
    assert_eq!(rows[0].get::<_, i64>(0), 14001);
    let rest = ids(client
        .simple_query("FETCH ALL FROM halaman")
        .await
        .expect("rest"));
    assert_eq!(rest.len(), 200_000 - 14001);
    client.batch_execute("CLOSE halaman").await.expect("close");
    let e = client
        .simple_query("FETCH 1 FROM halaman")
        .await
        .expect_err("closed");
    assert_eq!(sqlstate(&e), "34000");
    client.batch_execute("ROLLBACK").await.expect("rollback");

    // Cursors end with their transaction.
    client
        .batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT 1; COMMIT")
        .await
        .expect("declare and commit");
    let e = client
        .simple_query("FETCH 1 FROM c")
        .await
        .expect_err("gone");
    assert_eq!(sqlstate(&e), "34000");
}

/// Whether the source is still running tautan's statement on `lambat`.
async fn remote_sleep_running() -> bool {
    let admin = pg_admin("tautan_uji").await;
    let row = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'tautan_ro' \
             AND state = 'active' AND query LIKE '%lambat%'",
            &[],
        )
        .await
        .expect("pg_stat_activity");
    row.get::<_, i64>(0) > 0
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_the_remote_statement() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let token = client.cancel_token();
    let started = Instant::now();
    let query = tokio::spawn(async move {
        client
            .simple_query("SELECT x FROM uji_pg.public.lambat")
            .await
            .map(|_| ())
    });
    // Wait until the source runs it, then cancel like psql's Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !remote_sleep_running().await {
        assert!(
            Instant::now() < deadline,
            "the remote statement never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request sent");
    let result = tokio::time::timeout(Duration::from_secs(10), query)
        .await
        .expect("the query ends soon after the cancel")
        .expect("task");
    let e = result.expect_err("cancelled");
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // And the source stops working on it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote_sleep_running().await {
        assert!(
            Instant::now() < deadline,
            "the source still runs the cancelled statement"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_negotiated_when_configured() {
    // Without a certificate, sslmode=require is refused (server says N).
    let plain = start().await;
    let (ok, _, err) = plain.psql_env(WALIDATA, &[("PGSSLMODE", "require")], &["-c", "SELECT 1"]);
    assert!(!ok, "TLS must not be offered without a certificate");
    assert!(err.contains("SSL"), "{err}");

    let text = tls_config_text("tls");
    let server = start_config(&text).await;
    let (ok, out, err) = server.psql_env(
        WALIDATA,
        &[("PGSSLMODE", "require")],
        &[
            "-At",
            "-c",
            "SELECT count(*) FROM ref.kecamatan",
            "-c",
            r"\conninfo",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("SSL connection"), "{out}");
    // A wrong password over TLS is still 28P01.
    let (ok, _, err) = server.psql_env(
        ("walidata", "salah"),
        &[("PGSSLMODE", "require")],
        &["-c", "SELECT 1"],
    );
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gssenc_request_is_refused_cleanly() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start().await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("connect");
    // GSSENCRequest: length 8, code 80877104.
    let mut request = 8i32.to_be_bytes().to_vec();
    request.extend_from_slice(&80877104i32.to_be_bytes());
    socket.write_all(&request).await.expect("send");
    let mut answer = [0u8; 1];
    socket.read_exact(&mut answer).await.expect("answer");
    assert_eq!(&answer, b"N", "GSS encryption is declined with N");
    drop(socket);
    // And the server goes on serving.
    let client = server.connect(WALIDATA).await;
    client
        .simple_query("SELECT 1")
        .await
        .expect("still serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_tables_show_only_what_the_user_may_read() {
    let server = start().await;
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;
    let names = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let schemas = names(
        dinsos
            .query("SELECT nspname FROM pg_catalog.pg_namespace", &[])
            .await
            .expect("pg_namespace"),
    );
    assert!(schemas.iter().any(|s| s == "dinsos.public"), "{schemas:?}");
    assert!(
        !schemas.iter().any(|s| s.starts_with("kependudukan")),
        "{schemas:?}"
    );
    let tables = names(
        dinsos
            .query(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
                &[],
            )
            .await
            .expect("information_schema.tables"),
    );
    assert!(
        tables
            .iter()
            .all(|t| t.starts_with("dinsos.") || t.starts_with("ref.") || t.starts_with("system.")),
        "{tables:?}"
    );
    assert!(
        tables.iter().any(|t| t == "dinsos.public.penerima_bansos"),
        "{tables:?}"
    );
    let relations = names(
        dinsos
            .query(
                "SELECT c.relname FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')",
                &[],
            )
            .await
            .expect("pg_class"),
    );
    assert!(
        relations.iter().any(|r| r == "penerima_bansos"),
        "{relations:?}"
    );
    assert!(!relations.iter().any(|r| r == "penduduk"), "{relations:?}");
}

/// `psql -c "COPY ..."` against PostgreSQL itself (raw bytes of stdout).
fn source_copy(sql: &str) -> Vec<u8> {
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "tautan_uji",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `psql -c "COPY ..."` against tautan (raw bytes of stdout).
fn tautan_copy(server: &Server, login: (&str, &str), sql: &str) -> (bool, Vec<u8>, String) {
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
        ])
        .args(["-U", login.0, "-d", "tautan", "-c", sql])
        .env("PGPASSWORD", login.1)
        .output()
        .expect("psql runs");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_to_stdout_matches_the_source_byte_for_byte() {
    let server = start().await;
    let query = "SELECT id, grup, nilai, label FROM {t} WHERE id <= 3000 ORDER BY id";
    for format in ["text", "csv, HEADER true", "binary"] {
        let mine = tautan_copy(
            &server,
            WALIDATA,
            &format!(
                "COPY ({}) TO STDOUT (FORMAT {format})",
                query.replace("{t}", "uji_pg.public.angka")
            ),
        );
        assert!(mine.0, "{format}: {}", mine.2);
        let theirs = source_copy(&format!(
            "COPY ({}) TO STDOUT (FORMAT {format})",
            query.replace("{t}", "public.angka")
        ));
        if format == "binary" {
            assert_eq!(mine.1, theirs, "binary COPY differs");
            // Every type the binary writer encodes itself (NULLs, extremes,
            // non-ASCII text, empty bytea, dates before 2000), then the
            // ones arrow-pg encodes, next to them.
            let columns = "id, b, i2, i8, f4, f8, n_12_2, t, vc, by, d, ts";
            let sql = |t: &str| {
                format!("COPY (SELECT {columns} FROM {t} ORDER BY id) TO STDOUT (FORMAT binary)")
            };
            let mine = tautan_copy(&server, WALIDATA, &sql("uji_pg.public.semua_tipe"));
            assert!(mine.0, "{}", mine.2);
            assert_eq!(
                mine.1,
                source_copy(&sql("public.semua_tipe")),
                "binary COPY of semua_tipe differs"
            );
        } else {
            assert_eq!(
                String::from_utf8_lossy(&mine.1),
                String::from_utf8_lossy(&theirs),
                "{format} COPY differs"
            );
        }
    }
    // psql's \copy is COPY ... TO STDOUT underneath.
    let dir = temp_dir("copy");
    let file = dir.join("kunjungan.csv");
    let (ok, _, err) = server.psql(
        DINKES,
        &[
            "-c",
            &format!(
                "\\copy (SELECT kecamatan_kode, count(*) AS n FROM kesehatan.kesehatan.kunjungan GROUP BY 1 ORDER BY 1) TO '{}' WITH (FORMAT csv, HEADER)",
                file.display()
            ),
        ],
    );
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&file).expect("file written");
    assert!(text.starts_with("kecamatan_kode,n\n"), "{text}");
    assert!(text.lines().count() > 2, "{text}");
    // Under grants like any query: an invisible table is missing.
    let (ok, _, err) = tautan_copy(&server, DINKES, "COPY uji_pg.public.angka TO STDOUT");
    assert!(!ok);
    assert!(
        err.contains("does not exist") || err.contains("42P01"),
        "{err}"
    );
    // Writing COPY forms are still refused.
    let (ok, _, err) = tautan_copy(&server, WALIDATA, "COPY uji_pg.public.angka TO '/tmp/x'");
    assert!(!ok);
    assert!(err.contains("read-only") || err.contains("25006"), "{err}");
}

/// A COPY whose query fails mid-stream ends with an ErrorResponse the
/// client reads (SQLSTATE and all), in both protocols, and the session
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_failing_mid_stream_is_an_error_the_client_reads() {
    use futures::TryStreamExt;
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let sql =
        "COPY (SELECT 10 / (id - 3) FROM uji_pg.public.angka WHERE id < 10 ORDER BY id) TO STDOUT";
    let stream = client.copy_out(sql).await;
    let e = match stream {
        Ok(s) => s
            .try_collect::<Vec<_>>()
            .await
            .expect_err("division by zero"),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&e), "22012", "{e:?}");
    let (ok, _, stderr) = server.psql(WALIDATA, &["-c", sql]);
    assert!(!ok);
    assert!(stderr.contains("ERROR:"), "{stderr}");
    assert!(!stderr.contains("unexpected response"), "{stderr}");
    let n: i64 = client
        .query_one("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("the session goes on")
        .get(0);
    assert!(n > 0);
}
