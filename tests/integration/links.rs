//! Links going down and coming back; names and quoting; first-level
//! pushdown, proven from what each source received.

use crate::common::*;

#[tokio::test]
async fn a_down_link_is_a_partial_outage_and_recovers_without_restart() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    proxy.set(false);
    let port = proxy.port;
    let extra = format!(
        "[links.jauh]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {port}\ndatabase = \"tautan_uji\"\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\nconnect_timeout_ms = 1000\n"
    );
    let started = std::time::Instant::now();
    let server = start_with(&extra).await;
    assert!(
        started.elapsed().as_secs() < 10,
        "startup waited on the down link"
    );
    let client = server.connect(WALIDATA).await;
    // Other links and ref still answer.
    let n: i64 = client
        .query_one("SELECT count(*) FROM kesehatan.kesehatan.puskesmas", &[])
        .await
        .expect("other link")
        .get(0);
    assert_eq!(n, 8);
    let status: String = client
        .query_one("SELECT status FROM system.links WHERE name = 'jauh'", &[])
        .await
        .expect("system.links")
        .get(0);
    assert_eq!(status, "down");
    // A query on the down link fails fast, naming it.
    let t = std::time::Instant::now();
    let e = client
        .simple_query("SELECT count(*) FROM jauh.public.angka")
        .await
        .expect_err("down");
    assert!(t.elapsed().as_secs() < 5);
    assert!(matches!(sqlstate(&e).as_str(), "08001" | "08006"), "{e}");
    let msg = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(msg.contains("\"jauh\""), "{msg}");
    // The database comes back: the link works, no restart.
    proxy.set(true);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM jauh.public.angka", &[])
        .await
        .expect("link is back")
        .get(0);
    assert_eq!(n, 200_000);
}

#[tokio::test]
async fn quoted_mixed_case_names_work_as_in_postgresql() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let rows = client
        .query(
            "SELECT \"Kode Wilayah\", \"quote\"\"d\" FROM uji_pg.\"Skema Campuran\".\"Data Penting\" WHERE \"Kode Wilayah\" = 'it''s'",
            &[],
        )
        .await
        .expect("pg quoted");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(1), "c");
    let rows = client
        .query(
            "SELECT \"NilaiBesar\", \"back`tick\" FROM uji_my.tautan_uji.\"Data Penting\" WHERE \"Kode Wilayah\" = 'it''s'",
            &[],
        )
        .await
        .expect("mysql quoted");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 30);
    // Unquoted names fold to lower case, as in PostgreSQL.
    let e = client
        .simple_query("SELECT NilaiBesar FROM uji_my.tautan_uji.\"Data Penting\"")
        .await
        .expect_err("folded");
    assert_eq!(sqlstate(&e), "42703");
}

#[tokio::test]
async fn filters_projections_and_limits_reach_mariadb() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let mut admin = my_admin().await;
    my_log_on(&mut admin).await;
    let marker = format!("label-4{}", std::process::id() % 1000);
    let rows = client
        .query(
            &format!("SELECT id FROM uji_my.tautan_uji.angka WHERE grup = 7 AND label <> '{marker}' LIMIT 5"),
            &[],
        )
        .await
        .expect("query");
    assert_eq!(rows.len(), 5);
    let seen = my_log(&mut admin, "FROM `tautan_uji`.`angka`").await;
    let ours: Vec<&String> = seen.iter().filter(|s| s.contains("`grup` = 7")).collect();
    assert!(!ours.is_empty(), "filter not pushed: {seen:?}");
    let sql = ours.last().map(|s| s.as_str()).unwrap_or_default();
    // Only the columns the query needs: `label` for the filter DataFusion
    // keeps, never `grup`.
    assert!(
        sql.starts_with("SELECT `id`, `label` FROM"),
        "projection not pushed: {sql}"
    );
    // `<>` on a string is not exact under MariaDB collations: not sent, so
    // no LIMIT either (DataFusion filters and limits itself).
    assert!(!sql.contains(&marker), "{sql}");
    let rows = client
        .query(
            "SELECT id FROM uji_my.tautan_uji.angka WHERE grup = 8 LIMIT 3",
            &[],
        )
        .await
        .expect("query");
    assert_eq!(rows.len(), 3);
    let seen = my_log(&mut admin, "`grup` = 8").await;
    assert!(
        seen.iter().any(|s| s.ends_with("LIMIT 3")),
        "limit not pushed: {seen:?}"
    );
}

#[tokio::test]
async fn filters_projections_and_limits_reach_postgresql() {
    const SCAN: &str = "COPY (SELECT \"label\" FROM \"public\".\"angka\" WHERE";
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    let rows_before: i64 = pg_statements("\"grup\" = 42")
        .await
        .iter()
        .filter(|(q, _)| q.contains("\"id\" > 100000") && q.starts_with(SCAN))
        .map(|(_, r)| r)
        .sum();
    // Scan-level pushdown: the aggregate stays in DataFusion.
    client
        .simple_query("SET tautan.pushdown = off")
        .await
        .expect("SET");
    let n: i64 = client
        .query_one(
            "SELECT count(label) FROM uji_pg.public.angka WHERE grup = 42 AND id > 100000",
            &[],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(n, 1000);
    let seen = pg_statements("\"grup\" = 42").await;
    let ours: Vec<&(String, i64)> = seen
        .iter()
        .filter(|(q, _)| q.contains("\"id\" > 100000") && q.starts_with(SCAN))
        .collect();
    // Only the column DataFusion needs, filters in the WHERE clause.
    assert!(!ours.is_empty(), "filter not pushed: {seen:?}");
    // The table is large enough to be read in page ranges: the parts
    // together returned the matching rows only.
    let rows: i64 = ours.iter().map(|(_, r)| r).sum();
    assert_eq!(
        rows - rows_before,
        1000,
        "only matching rows crossed the wire"
    );
    let rows = client
        .query(
            "SELECT id FROM uji_pg.public.angka WHERE grup = 43 LIMIT 4",
            &[],
        )
        .await
        .expect("limit");
    assert_eq!(rows.len(), 4);
    let seen = pg_statements("\"grup\" = 43").await;
    assert!(
        seen.iter()
            .any(|(q, r)| q.contains("LIMIT 4") && *r % 4 == 0),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_never_waits_on_its_own_connections() {
    // Links with fewer connections than a statement's scans and page
    // ranges need at once: each query must finish, not end as "busy"
    // after the queue timeout while its own unread scans hold the link.
    let server = start_with(
        "[links.sempit_pg]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"tautan_uji\"\n\
         user = \"tautan_ro\"\npassword = \"tautan-ro\"\npool_size = 3\nqueue_timeout_ms = 4000\n\n\
         [links.sempit_my]\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nuser = \"tautan_ro\"\n\
         password = \"tautan-ro\"\ndatabases = [\"tautan_uji\"]\npool_size = 2\nqueue_timeout_ms = 4000\n",
    )
    .await;
    let client = server.connect(WALIDATA).await;
    for setting in ["SET tautan.pushdown = off", "SET tautan.scan_parts = 2"] {
        client.batch_execute(setting).await.expect(setting);
    }
    let pg = "sempit_pg.public.angka";
    let my = "sempit_my.tautan_uji.beda";
    for (sql, expected) in [
        // The probe side of each join is executed before its build side.
        (format!("SELECT count(*) FROM {pg} a JOIN {pg} b ON a.id = b.id"), 200_000),
        (
            format!("SELECT count(*) FROM {pg} a JOIN {pg} b ON a.id = b.id JOIN {pg} c ON c.id = b.id"),
            200_000,
        ),
        // Three split scans read at once.
        (
            format!("SELECT count(*) FROM (SELECT id FROM {pg} UNION ALL SELECT id FROM {pg} UNION ALL SELECT id FROM {pg}) u"),
            600_000,
        ),
        (
            format!("SELECT count(*) FROM {my} a JOIN {my} b ON a.id = b.id JOIN {my} c ON c.id = b.id JOIN {my} d ON d.id = c.id"),
            12,
        ),
    ] {
        let started = std::time::Instant::now();
        let n: i64 = client
            .query_one(sql.as_str(), &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", message(&e)))
            .get(0);
        assert_eq!(n, expected, "{sql}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{sql} took {:?}: it waited for a connection",
            started.elapsed()
        );
    }
}

/// The config changes under a running server: a link added is served from
/// the next statement of an open session, a changed link is rebuilt, an
/// unchanged one keeps its entry (its pool and state), a removed one is
/// gone — without a restart, the session never dropped. A statement that
/// started on the old link finishes on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_added_changed_and_removed_are_served_after_a_reload() {
    let dir = temp_dir("links-reload");
    let path = dir.join("federation.toml");
    let base = pull_config(&dir.join("data"), 1, "");
    let arsip = |database: &str| {
        format!(
            "\n[links.arsip]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"{database}\"\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\n"
        )
    };
    std::fs::write(&path, &base).expect("config");
    let engine = tautan::engine::Engine::start(
        tautan::config::FederationConfig::load(&path).expect("config"),
    )
    .await
    .expect("engine");
    let server = serve_engine(engine.clone()).await;
    let client = server.connect(WALIDATA).await;
    let kependudukan = engine.registry.link("kependudukan").expect("link");
    let missing = client
        .simple_query("SELECT count(*) FROM arsip.public.beda")
        .await
        .expect_err("no such link yet");
    assert_eq!(sqlstate(&missing), "42P01");
    // Added.
    std::fs::write(&path, base.clone() + &arsip("tautan_uji")).expect("config");
    engine.reload_policy().expect("reload");
    let n: i64 = client
        .query_one("SELECT count(*) FROM arsip.public.beda", &[])
        .await
        .expect("the new link, same session")
        .get(0);
    assert_eq!(n, 12);
    assert!(
        std::sync::Arc::ptr_eq(
            &engine.registry.link("kependudukan").expect("link"),
            &kependudukan
        ),
        "an unchanged link keeps its entry"
    );
    // A cursor opened on the link as it is now...
    client
        .batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT id FROM arsip.public.beda ORDER BY id")
        .await
        .expect("cursor");
    // ...then the link is pointed at another database: rebuilt.
    std::fs::write(&path, base.clone() + &arsip("kependudukan")).expect("config");
    engine.reload_policy().expect("reload");
    let rows = client
        .query("FETCH ALL FROM c", &[])
        .await
        .expect("the cursor finishes on the old link");
    assert_eq!(rows.len(), 12);
    client.batch_execute("COMMIT").await.expect("commit");
    let n: i64 = client
        .query_one("SELECT count(*) FROM arsip.public.penduduk", &[])
        .await
        .expect("the changed link")
        .get(0);
    assert!(n > 0);
    // Removed.
    std::fs::write(&path, &base).expect("config");
    engine.reload_policy().expect("reload");
    let gone = client
        .simple_query("SELECT count(*) FROM arsip.public.penduduk")
        .await
        .expect_err("the link is gone");
    assert_eq!(sqlstate(&gone), "42P01");
    // An invalid link keeps the links in force.
    std::fs::write(
        &path,
        base.clone() + "\n[links.rusak]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\n",
    )
    .expect("config");
    assert!(engine.reload_policy().is_err());
    assert!(engine.registry.link("rusak").is_none());
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM kependudukan.public.penduduk_per_kecamatan",
            &[],
        )
        .await
        .expect("still serving")
        .get(0);
    assert!(n > 0);
}
