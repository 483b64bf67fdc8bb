//! Materialized pulls: snapshots served as `mat.<name>` under grants,
//! full and incremental runs (proven from the source's statement
//! statistics), a source down during a run, readers during the swap,
//! schedules, a crash in the middle of a run, and exports.

use std::path::Path;
use std::time::{Duration, Instant};

use tautan::export::NoProgress;
use tautan::pulls::run::{run_pull, spawn_scheduler, PullError};

use crate::common::*;

fn parquet_rows(path: &Path) -> i64 {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).expect("snapshot file");
    let reader = SerializedFileReader::new(file).expect("parquet");
    reader.metadata().file_metadata().num_rows()
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test]
async fn full_pull_is_served_as_mat_table_under_grants() {
    let dir = temp_dir("pull-full");
    let text = pull_config(
        &dir,
        2,
        "\n[pulls.kunjungan_uji]\nsql = \"SELECT kecamatan_kode, count(*) AS n FROM kesehatan.kesehatan.kunjungan GROUP BY 1\"\nowner = \"walidata\"\nreaders = [\"analis_kesehatan\"]\n",
    );
    let server = start_config(&text).await;
    let dinkes = server.connect(DINKES).await;
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;

    // Declared but never run: a clear "not yet", not a missing table.
    let e = dinkes
        .simple_query("SELECT * FROM mat.kunjungan_uji")
        .await
        .expect_err("no snapshot yet");
    assert_eq!(sqlstate(&e), "55000", "{e}");

    let report = run_pull(&server.engine, "kunjungan_uji", &NoProgress)
        .await
        .expect("pull runs");
    assert_eq!(report.fetched, 8);
    assert_eq!(report.current.as_ref().map(|c| c.id), Some(1));

    assert_eq!(
        count(&dinkes, "SELECT sum(n)::bigint FROM mat.kunjungan_uji").await,
        30_000
    );
    // A role that is not a reader sees no such table, and no status row.
    let e = dinsos
        .simple_query("SELECT * FROM mat.kunjungan_uji")
        .await
        .expect_err("not a reader");
    assert_eq!(sqlstate(&e), "42P01", "{e}");
    assert_eq!(count(&dinsos, "SELECT count(*) FROM system.pulls").await, 0);
    let row = dinkes
        .query_one(
            "SELECT status, rows, snapshot, snapshot_rows, mode, last_error IS NULL FROM system.pulls WHERE name = 'kunjungan_uji'",
            &[],
        )
        .await
        .expect("system.pulls");
    assert_eq!(row.get::<_, String>(0), "succeeded");
    assert_eq!(row.get::<_, i64>(1), 8);
    assert_eq!(row.get::<_, i64>(2), 1);
    assert_eq!(row.get::<_, i64>(3), 8);
    assert_eq!(row.get::<_, String>(4), "full");
    assert!(row.get::<_, bool>(5));
    // In the metadata catalog: a materialized dataset, fresh as of its
    // snapshot; not there for a role that may not read it.
    let row = dinkes
        .query_one(
            "SELECT kind, producer IS NULL, columns, fresh_at IS NOT NULL FROM system.datasets \
             WHERE dataset = 'mat.kunjungan_uji'",
            &[],
        )
        .await
        .expect("system.datasets");
    assert_eq!(row.get::<_, String>(0), "materialized");
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, i64>(2), 2);
    assert!(row.get::<_, bool>(3));
    assert_eq!(
        count(
            &dinsos,
            "SELECT count(*) FROM system.datasets WHERE schema = 'mat'"
        )
        .await,
        0
    );

    // The snapshot is zstd-compressed Parquet with statistics.
    let file = dir.join("kunjungan_uji/snapshots/00000000000000000001.parquet");
    {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let reader =
            SerializedFileReader::new(std::fs::File::open(&file).expect("file")).expect("parquet");
        let column = reader.metadata().row_group(0).column(0);
        // (The level is not stored in the file; readers report the default.)
        assert!(
            matches!(
                column.compression(),
                datafusion::parquet::basic::Compression::ZSTD(_)
            ),
            "{:?}",
            column.compression()
        );
        assert!(column.statistics().is_some(), "statistics written");
    }
    assert_eq!(parquet_rows(&file), 8);
}

#[tokio::test]
async fn a_pull_cannot_launder_what_its_owner_may_not_read() {
    let dir = temp_dir("pull-launder");
    let base = pull_config(&dir, 2, "");
    let line = base.lines().count() + 2;
    let text = format!(
        "{base}\n[pulls.bocor]\nsql = \"SELECT nik FROM kependudukan.public.penduduk\"\nowner = \"analis_kesehatan\"\nreaders = [\"dinsos\"]\n"
    );
    let config = tautan::config::FederationConfig::parse(&text, Path::new("federation.toml"))
        .expect("parses");
    let e = tautan::engine::Engine::start(config)
        .await
        .expect_err("owner may not read nik");
    assert!(e.contains(&format!("federation.toml:{line}")), "{e}");
    assert!(e.contains("pulls.bocor.sql"), "{e}");
    assert!(e.contains("42501") && e.contains("nik"), "{e}");

    // A role that does not exist is a config error with its line too.
    let text = format!("{base}\n[pulls.x]\nsql = \"SELECT 1\"\nowner = \"tidak_ada\"\n");
    let e = tautan::config::FederationConfig::parse(&text, Path::new("federation.toml"))
        .expect_err("unknown role");
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.key.as_deref(), Some("pulls.x.owner"));
}

#[tokio::test]
async fn incremental_pull_fetches_only_new_rows_and_replaces_by_key() {
    let admin = pg_admin("tautan_uji").await;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS tarikan_inc;
             CREATE TABLE tarikan_inc (id int8 PRIMARY KEY, nilai int4 NOT NULL, diubah timestamp NOT NULL);
             INSERT INTO tarikan_inc SELECT g, g, timestamp '2026-01-01' + g * interval '1 second' FROM generate_series(1, 1000) g;
             GRANT SELECT ON tarikan_inc TO tautan_ro;",
        )
        .await
        .expect("fixture");
    let dir = temp_dir("pull-inc");
    let text = pull_config(
        &dir,
        2,
        "\n[pulls.inc]\nsql = \"SELECT id, nilai, diubah FROM uji_pg.public.tarikan_inc\"\nmode = \"incremental\"\nwatermark = \"diubah\"\nkey = [\"id\"]\nowner = \"walidata\"\n",
    );
    let server = start_config(&text).await;
    let client = server.connect(WALIDATA).await;
    let source_rows = || async {
        pg_statements("tarikan_inc")
            .await
            .iter()
            .map(|(_, rows)| *rows)
            .sum::<i64>()
    };

    let first = run_pull(&server.engine, "inc", &NoProgress)
        .await
        .expect("first pull");
    assert_eq!(first.fetched, 1000);
    assert_eq!(count(&client, "SELECT count(*) FROM mat.inc").await, 1000);

    // Ten new rows and one updated row.
    admin
        .batch_execute(
            "INSERT INTO tarikan_inc SELECT g, g, timestamp '2026-06-01' + g * interval '1 second' FROM generate_series(1001, 1010) g;
             UPDATE tarikan_inc SET nilai = -5, diubah = timestamp '2026-07-01' WHERE id = 5;",
        )
        .await
        .expect("changes");
    let before = source_rows().await;
    let second = run_pull(&server.engine, "inc", &NoProgress)
        .await
        .expect("second pull");
    assert_eq!(second.fetched, 11);
    assert_eq!(
        source_rows().await - before,
        11,
        "only new rows crossed the wire"
    );
    let pushed = pg_statements("tarikan_inc").await;
    assert!(
        pushed.iter().any(|(q, _)| q.contains("\"diubah\" >")),
        "watermark predicate sent to PostgreSQL: {pushed:?}"
    );
    assert_eq!(count(&client, "SELECT count(*) FROM mat.inc").await, 1010);
    assert_eq!(
        count(
            &client,
            "SELECT CAST(nilai AS BIGINT) FROM mat.inc WHERE id = 5"
        )
        .await,
        -5
    );
    let watermark: String = client
        .query_one("SELECT watermark FROM system.pulls WHERE name = 'inc'", &[])
        .await
        .expect("status")
        .get(0);
    assert!(watermark.starts_with("2026-07-01"), "{watermark}");

    // Nothing new: nothing fetched, the snapshot stays.
    let third = run_pull(&server.engine, "inc", &NoProgress)
        .await
        .expect("third pull");
    assert_eq!(third.fetched, 0);
    assert_eq!(third.current.map(|c| c.id), second.current.map(|c| c.id));
}

#[tokio::test]
async fn a_source_down_during_a_pull_is_retried_and_the_old_snapshot_served() {
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let dir = temp_dir("pull-down");
    let text = pull_config(
        &dir,
        2,
        &format!(
            "\n[links.lewat]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"tautan_uji\"\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\nconnect_timeout_ms = 500\n\n\
             [pulls.jauh]\nsql = \"SELECT id FROM lewat.public.angka WHERE id <= 100\"\nowner = \"walidata\"\nretries = 2\nretry_backoff_ms = 200\n",
            proxy.port
        ),
    );
    let server = start_config(&text).await;
    run_pull(&server.engine, "jauh", &NoProgress)
        .await
        .expect("first pull");

    proxy.set(false);
    let t = Instant::now();
    let e = run_pull(&server.engine, "jauh", &NoProgress)
        .await
        .expect_err("source is down");
    match &e {
        PullError::Failed { attempts, error } => {
            assert_eq!(*attempts, 3, "{e}");
            assert!(error.code.starts_with("08"), "{e}");
        }
        other => panic!("{other}"),
    }
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "backoff 200 + 400 ms"
    );

    let client = server.connect(WALIDATA).await;
    assert_eq!(count(&client, "SELECT count(*) FROM mat.jauh").await, 100);
    let row = client
        .query_one(
            "SELECT status, attempts, last_error, snapshot, snapshot_age_s FROM system.pulls WHERE name = 'jauh'",
            &[],
        )
        .await
        .expect("status");
    assert_eq!(row.get::<_, String>(0), "failed");
    assert_eq!(row.get::<_, i64>(1), 3);
    assert!(row.get::<_, String>(2).contains("lewat"));
    assert_eq!(row.get::<_, i64>(3), 1);
    assert!(row.get::<_, i64>(4) >= 0);

    // Back up: the next run succeeds without a restart.
    proxy.set(true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ok = run_pull(&server.engine, "jauh", &NoProgress)
        .await
        .expect("source is back");
    assert_eq!(ok.current.map(|c| c.id), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_during_swaps_see_one_whole_snapshot() {
    let admin = pg_admin("tautan_uji").await;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS tarikan_tukar;
             CREATE TABLE tarikan_tukar (v int8 NOT NULL);
             INSERT INTO tarikan_tukar SELECT 50 FROM generate_series(1, 50);
             GRANT SELECT ON tarikan_tukar TO tautan_ro;",
        )
        .await
        .expect("fixture");
    let dir = temp_dir("pull-swap");
    let text = pull_config(
        &dir,
        2,
        "\n[pulls.tukar]\nsql = \"SELECT v FROM uji_pg.public.tarikan_tukar\"\nowner = \"walidata\"\nretention = 1\n",
    );
    let server = start_config(&text).await;
    run_pull(&server.engine, "tukar", &NoProgress)
        .await
        .expect("first");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let client = server.connect(WALIDATA).await;
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let row = client
                    .query_one("SELECT count(*), min(v), max(v) FROM mat.tukar", &[])
                    .await
                    .expect("read during swap");
                let (n, lo, hi): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
                assert!(n == lo && lo == hi, "torn snapshot: {n} rows of {lo}..{hi}");
                reads += 1;
            }
            reads
        }));
    }
    for k in [80i64, 120, 60, 200, 90, 150] {
        admin
            .batch_execute(&format!(
                "BEGIN; TRUNCATE tarikan_tukar; INSERT INTO tarikan_tukar SELECT {k} FROM generate_series(1, {k}); COMMIT;"
            ))
            .await
            .expect("change");
        run_pull(&server.engine, "tukar", &NoProgress)
            .await
            .expect("pull");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for r in readers {
        total += r.await.expect("reader");
    }
    assert!(total >= 6, "readers ran during the swaps ({total} reads)");
    let client = server.connect(WALIDATA).await;
    assert_eq!(count(&client, "SELECT count(*) FROM mat.tukar").await, 150);
    // Retention 1 keeps the current snapshot and the one it replaced.
    assert_eq!(
        std::fs::read_dir(dir.join("tukar/snapshots"))
            .expect("dir")
            .count(),
        2
    );
}

#[tokio::test]
async fn schedules_fire_and_runs_of_one_pull_never_overlap() {
    let dir = temp_dir("pull-schedule");
    let text = pull_config(
        &dir,
        1,
        "\n[pulls.detik]\nsql = \"SELECT kode FROM ref.kecamatan\"\nschedule = \"* * * * * *\"\nowner = \"walidata\"\n\n\
         [pulls.a]\nsql = \"SELECT id, label FROM uji_pg.public.angka\"\nowner = \"walidata\"\n\n\
         [pulls.b]\nsql = \"SELECT id, label FROM uji_pg.public.angka\"\nowner = \"walidata\"\n",
    );
    let server = start_config(&text).await;
    let engine = server.engine.clone();
    let pulls = engine.registry.pulls.clone();
    let snapshot = || pulls.dir("detik").current().map(|c| c.id).unwrap_or(0);

    let tasks = spawn_scheduler(&engine);
    let t = Instant::now();
    while snapshot() < 2 && t.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(snapshot() >= 2, "the schedule fired at least twice");

    // While a run holds the pull (here: the test), firings are skipped and
    // a manual run is refused, never run alongside.
    let lock = pulls.dir("detik").try_lock().expect("lock").expect("free");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held_at = snapshot();
    assert!(matches!(
        run_pull(&engine, "detik", &NoProgress).await,
        Err(PullError::AlreadyRunning(_))
    ));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(snapshot(), held_at, "no run while the lock was held");
    drop(lock);
    let t = Instant::now();
    while snapshot() == held_at && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(snapshot() > held_at, "runs resume once the lock is free");
    for task in tasks {
        task.abort();
    }

    // max_concurrent = 1: two pulls started together run one after the other.
    let (ra, rb) = tokio::join!(
        run_pull(&engine, "a", &NoProgress),
        run_pull(&engine, "b", &NoProgress)
    );
    assert_eq!(ra.expect("a").fetched, 200_000);
    assert_eq!(rb.expect("b").fetched, 200_000);
    let a = pulls.dir("a").status().expect("a status");
    let b = pulls.dir("b").status().expect("b status");
    let (a_end, b_end) = (a.ended_us.expect("a ended"), b.ended_us.expect("b ended"));
    assert!(
        a_end <= b.started_us || b_end <= a.started_us,
        "runs overlapped: a {}..{a_end}, b {}..{b_end}",
        a.started_us,
        b.started_us
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_a_pull_keeps_the_previous_snapshot() {
    let admin = pg_admin("tautan_uji").await;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS tarikan_kali;
             CREATE TABLE tarikan_kali (k int4);
             INSERT INTO tarikan_kali VALUES (1);
             GRANT SELECT ON tarikan_kali TO tautan_ro;",
        )
        .await
        .expect("fixture");
    let dir = temp_dir("pull-kill");
    let text = pull_config(
        &dir,
        2,
        "\n[pulls.besar]\nsql = \"SELECT a.id, a.label, k.k FROM uji_pg.public.angka a CROSS JOIN uji_pg.public.tarikan_kali k\"\nowner = \"walidata\"\nschedule = \"*/2 * * * * *\"\n",
    );
    let config = dir.join("federation.toml");
    std::fs::write(&config, &text).expect("config file");

    // First snapshot through the CLI (log lines, not a bar: no terminal).
    let out = tautan_cmd()
        .args(["-c", &config.to_string_lossy(), "pull", "besar"])
        .output()
        .expect("tautan pull");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("pull besar: ok — 200000 rows fetched"),
        "{stdout}"
    );

    // The next run is 40 times larger; the server's scheduler starts it and
    // the server is killed while the snapshot is being written.
    admin
        .batch_execute("INSERT INTO tarikan_kali SELECT g FROM generate_series(2, 40) g")
        .await
        .expect("bigger");
    let mut serve = tautan_cmd()
        .args([
            "-c",
            &config.to_string_lossy(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tautan serve");
    let snapshots = dir.join("besar/snapshots");
    let partial = || {
        std::fs::read_dir(&snapshots)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().ends_with(".partial")
                    && e.metadata().map(|m| m.len() > 0).unwrap_or(false)
            })
    };
    let t = Instant::now();
    while !partial() && t.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(partial(), "the scheduled run started writing");
    serve.kill().expect("kill -9"); // SIGKILL
    let _ = serve.wait();
    assert_eq!(
        tautan::pulls::store::PullDir::new(&dir, "besar")
            .current()
            .map(|c| c.id),
        Some(1)
    );

    // Restart: leftovers removed, the run marked interrupted, the previous
    // snapshot served.
    let parsed = tautan::config::FederationConfig::load(&config).expect("config");
    let engine = tautan::engine::Engine::start(parsed).await.expect("engine");
    engine.registry.pulls.recover_all();
    assert!(!partial(), "partial file removed");
    let server = serve_engine(engine).await;
    let client = server.connect(WALIDATA).await;
    assert_eq!(
        count(&client, "SELECT count(*) FROM mat.besar").await,
        200_000
    );
    let status: String = client
        .query_one("SELECT status FROM system.pulls WHERE name = 'besar'", &[])
        .await
        .expect("status")
        .get(0);
    assert_eq!(status, "interrupted");

    // `tautan pulls` shows the same.
    let out = tautan_cmd()
        .args(["-c", &config.to_string_lossy(), "pulls"])
        .output()
        .expect("tautan pulls");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("besar") && stdout.contains("interrupted"),
        "{stdout}"
    );
}

/// `tautan export` of `sql` into `path` as `user`, with config `cfg`.
fn export(cfg: &str, user: &str, path: &std::path::Path, sql: &str) -> std::process::Output {
    tautan_cmd()
        .args(["-c", cfg, "export", "--user", user, "-o"])
        .arg(path)
        .arg(sql)
        .output()
        .expect("export")
}

#[tokio::test]
async fn export_writes_csv_and_parquet_whole_or_not_at_all() {
    let dir = temp_dir("export");
    let config = dir.join("federation.toml");
    std::fs::write(&config, pull_config(&dir, 2, "")).expect("config file");
    let cfg = config.to_string_lossy().to_string();

    let csv = dir.join("kecamatan.csv");
    let out = export(
        &cfg,
        "analis_dinkes",
        &csv,
        "SELECT kode, nama FROM ref.kecamatan ORDER BY kode",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    assert_eq!(lines[0], "kode,nama");
    assert_eq!(lines[1], "31.71.01,Gambir");

    let parquet = dir.join("angka.parquet");
    let out = export(
        &cfg,
        "walidata",
        &parquet,
        "SELECT id, label FROM uji_pg.public.angka WHERE id <= 1000",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(parquet_rows(&parquet), 1000);

    // Every type of both sources is written, in both formats: what a
    // writer cannot write itself (arrays in CSV, intervals in Parquet)
    // goes as its text rather than failing the export.
    for table in ["uji_pg.public.semua_tipe", "uji_my.tautan_uji.semua_tipe"] {
        for ext in ["csv", "parquet"] {
            let file = dir.join(format!("semua.{ext}"));
            let out = export(&cfg, "walidata", &file, &format!("SELECT * FROM {table}"));
            assert!(
                out.status.success(),
                "{table} as {ext}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if ext == "parquet" {
                assert_eq!(parquet_rows(&file), 3, "{table}");
            } else {
                let rows = csv::Reader::from_path(&file)
                    .expect("csv")
                    .records()
                    .count();
                assert_eq!(rows, 3, "{table}");
            }
        }
    }

    // Unaliased columns carry the names a client sees: in CSV as
    // PostgreSQL's COPY would write them; a Parquet file (a table) needs
    // distinct names, as CREATE TABLE AS does.
    let unnamed = "SELECT 1, 2, count(*) FROM ref.kecamatan";
    let named_csv = dir.join("unnamed.csv");
    let out = export(&cfg, "walidata", &named_csv, unnamed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&named_csv).expect("csv");
    assert_eq!(
        text.lines().next(),
        Some("?column?,?column?,count"),
        "{text}"
    );
    let twice = dir.join("unnamed.parquet");
    let out = export(&cfg, "walidata", &twice, unnamed);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("42701") && stderr.contains("?column?"),
        "{stderr}"
    );
    assert!(!twice.exists());

    // Denied: nothing written, the reason on stderr, exit code 1.
    let denied = dir.join("nik.csv");
    let out = export(
        &cfg,
        "analis_dinkes",
        &denied,
        "SELECT nik FROM kependudukan.public.penduduk",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("42501"));
    assert!(!denied.exists());
    assert!(!dir.join("nik.csv.partial").exists());
}
