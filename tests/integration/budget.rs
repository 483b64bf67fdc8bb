//! Budgets: one statement cannot take the process or other sessions down
//! (memory, values sized by a number in the query, time).

use std::time::{Duration, Instant};

use crate::common::*;

/// The shipped config with a small memory budget, a global statement
/// timeout maximum of `timeout_max_ms` and a per-user default timeout for
/// `dinsos`.
async fn budgeted(timeout_max_ms: u64) -> Server {
    let text = config_text("")
        .replace(
            "database = \"tautan\" ",
            &format!(
                "database = \"tautan\"\nmemory_limit_mb = 256\nquery_memory_mb = 64\nstatement_timeout_max_ms = {timeout_max_ms}\n"
            ),
        )
        .replace(
            "roles = [\"dinsos\"]",
            "roles = [\"dinsos\"]\nstatement_timeout_ms = 1500",
        );
    assert!(
        text.contains("query_memory_mb"),
        "the [server] section changed"
    );
    start_config(&text).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hungry_statements_are_refused_and_others_go_on() {
    // A generous timeout: on a slow machine the heavy query below must meet
    // the memory budget, not the clock.
    let server = budgeted(600_000).await;
    let client = server.connect(DINKES).await;
    // A value sized by a number: refused before it is built (the report's
    // 5.7 GB query).
    for sql in [
        "SELECT length(repeat('x', 1500000000))",
        "SELECT length(lpad('x', 2000000000))",
        "SELECT cardinality(range(1, 100000000000))",
        "SELECT cardinality(array_repeat(1, 2000000000))",
    ] {
        let e = client.query(sql, &[]).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "54000", "{sql}: {e}");
    }
    // Millions of groups over a 64 MiB share: spilled or refused with
    // 53200, never the process.
    let admin = server.connect(WALIDATA).await;
    let heavy = "SELECT count(*) FROM (SELECT a.id AS x, b.id AS y, count(*) AS n \
                 FROM uji_pg.public.angka a JOIN uji_pg.public.angka b ON a.grup = b.grup \
                 WHERE a.id <= 20000 AND b.id <= 20000 GROUP BY a.id, b.id) t";
    match admin.query_one(heavy, &[]).await {
        Ok(row) => assert_eq!(row.get::<_, i64>(0), 4_000_000),
        Err(e) => assert_eq!(sqlstate(&e), "53200", "{e}"),
    }
    // Everyone else is still served.
    let n: i64 = client
        .query_one("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("a small query after the heavy one")
        .get(0);
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_larger_than_the_share_answers_by_spilling() {
    let server = budgeted(600_000).await;
    let admin = server.connect(WALIDATA).await;
    // Each side is 1.5M rows of ~110 bytes, well over the 64 MiB share:
    // a hash join cannot hold its build side (53200 before the fallback);
    // planned again with sort-merge joins, the sorts spill and it answers.
    let side = |pad: char| {
        format!(
            "SELECT value AS k, repeat('{pad}', 100) AS pad_{pad} \
             FROM generate_series(1, 1500000)"
        )
    };
    let sql = format!(
        "SELECT count(*), sum(a.k)::bigint FROM ({}) a JOIN ({}) b ON a.k = b.k \
         WHERE a.pad_x <> b.pad_y",
        side('x'),
        side('y')
    );
    let row = admin
        .query_one(sql.as_str(), &[])
        .await
        .expect("the join answers by spilling");
    assert_eq!(row.get::<_, i64>(0), 1_500_000);
    assert_eq!(row.get::<_, i64>(1), 1_500_000 * 1_500_001 / 2);
    // The session is still usable, with its share free again.
    let n: i64 = admin
        .query_one("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("a small query after the spilled join")
        .get(0);
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_is_honoured_and_stops_the_source() {
    let server = budgeted(4000).await;
    let client = server.connect(WALIDATA).await;
    let lambat = "SELECT * FROM uji_pg.public.lambat";
    let running = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'tautan_ro' \
                   AND query LIKE '%lambat%' AND state = 'active'";
    client
        .batch_execute("SET statement_timeout = '1s'")
        .await
        .expect("set");
    let started = Instant::now();
    let e = client.query(lambat, &[]).await.expect_err("timeout");
    assert_eq!(sqlstate(&e), "57014", "{e}");
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message.unwrap_or_default().contains("statement timeout"),
        "{e}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let admin = pg_admin("tautan_uji").await;
    let mut gone = false;
    for _ in 0..30 {
        let n: i64 = admin
            .query_one(running, &[])
            .await
            .expect("activity")
            .get(0);
        if n == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the source statement outlived the timeout");

    // The federation's maximum caps what a session asks for.
    client
        .batch_execute("SET statement_timeout = '1h'")
        .await
        .expect("set");
    let started = Instant::now();
    let e = client.query(lambat, &[]).await.expect_err("capped");
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(started.elapsed() < Duration::from_secs(7));

    // A user's own default, and RESET returns to it.
    let dinsos = server.connect(("dinsos", "dinsos-demo")).await;
    for sql in ["SET statement_timeout = 0", "RESET statement_timeout"] {
        dinsos.batch_execute(sql).await.expect(sql);
    }
    let row = dinsos
        .simple_query("SHOW statement_timeout")
        .await
        .expect("show");
    let value = row.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(value.as_deref(), Some("1500"));
}

/// CPU seconds this process has used (user + system).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Two statements that keep every core busy (a cross join that turns each
/// input batch into a million output batches) leave room for small ones,
/// and their cancel stops the work, not only the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_statements_share_the_cores_and_stop_at_their_cancel() {
    const HEAVY: &str = "SELECT sum(a.x * b.x) FROM generate_series(1, 1000000) a(x) \
                         CROSS JOIN generate_series(1, 1000000) b(x)";
    let server = start().await;
    let mut heavy = Vec::new();
    for _ in 0..2 {
        let client = server.connect(WALIDATA).await;
        let token = client.cancel_token();
        let task = tokio::spawn(async move { client.simple_query(HEAVY).await.map(|_| ()) });
        heavy.push((token, task));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let small = server.connect(DINKES).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        tokio::time::timeout(
            Duration::from_secs(10),
            small.query_one("SELECT count(*) FROM ref.kecamatan", &[]),
        )
        .await
        .expect("a small query beside the heavy ones waited over 10 s")
        .expect("a small query beside the heavy ones");
        slowest = slowest.max(t.elapsed());
    }
    // Without yielding joins each small query waited for a heavy one to
    // finish (tens of seconds in a debug build).
    assert!(
        slowest < Duration::from_secs(3),
        "slowest small query beside heavy ones: {slowest:?}"
    );
    let cancelled = Instant::now();
    for (token, _) in &heavy {
        token
            .cancel_query(tokio_postgres::NoTls)
            .await
            .expect("cancel request");
    }
    for (_, task) in heavy {
        let e = task
            .await
            .expect("task")
            .expect_err("the heavy statement was cancelled");
        assert_eq!(sqlstate(&e), "57014", "{e:?}");
    }
    assert!(cancelled.elapsed() < Duration::from_secs(2));
    // The cores are free: little CPU used in the second after the answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = process_cpu_seconds();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = process_cpu_seconds() - before;
    assert!(
        used < 0.6,
        "{used:.2} CPU seconds used in the second after the cancel"
    );
}
