//! A source that stalls, cuts, refuses, lags or is busy: each is an error
//! the client can act on within a bounded time (or, for latency, no error
//! at all), the connection is freed, the link recovers by itself, and an
//! answer is never silently short. The sources are reached through a
//! fault-injecting TCP proxy on loopback (`common::FaultProxy`).

use std::time::{Duration, Instant};

use futures::{pin_mut, TryStreamExt};
use tokio_postgres::Client;

use crate::common::*;

/// A server with links `rapuh_pg`/`rapuh_my` to the test databases through
/// `pg`/`my` (proxy ports), with short limits.
async fn fragile(pg: u16, my: u16, pool_size: usize) -> Server {
    fragile_with(pg, my, pool_size, 1000).await
}

async fn fragile_with(pg: u16, my: u16, pool_size: usize, connect_ms: u64) -> Server {
    let limits = format!(
        "pool_size = {pool_size}\nconnect_timeout_ms = {connect_ms}\nstall_timeout_ms = 1000\nqueue_timeout_ms = 500\n"
    );
    start_with(&format!(
        "[links.rapuh_pg]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {pg}\ndatabase = \"tautan_uji\"\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\n{limits}\n\
         [links.rapuh_my]\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nport = {my}\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\ndatabases = [\"tautan_uji\"]\n{limits}\n"
    ))
    .await
}

async fn link_row(client: &Client, link: &str) -> (String, Option<String>, Option<i64>) {
    let row = client
        .query_one(
            "SELECT status, error, connections_in_use FROM system.links WHERE name = $1",
            &[&link],
        )
        .await
        .expect("system.links");
    (row.get(0), row.get(1), row.get(2))
}

/// Reads `sql` row by row; `after_first` runs once the first row arrived.
/// Returns the rows read and how the stream ended.
async fn stream_rows(
    client: &Client,
    sql: &str,
    after_first: impl FnOnce(),
) -> (usize, Result<(), tokio_postgres::Error>) {
    // The simple protocol: rows stream as they come (pgwire 0.41 collects
    // a whole extended-protocol result before its first row).
    let stream = match client.simple_query_raw(sql).await {
        Ok(s) => s,
        Err(e) => return (0, Err(e)),
    };
    pin_mut!(stream);
    let mut rows = 0;
    let mut hook = Some(after_first);
    loop {
        match stream.try_next().await {
            Ok(Some(tokio_postgres::SimpleQueryMessage::Row(_))) => {
                rows += 1;
                if let Some(h) = hook.take() {
                    h();
                }
                if rows % 1000 == 0 {
                    // Read slowly so the fault lands mid-stream.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return (rows, Ok(())),
            Err(e) => return (rows, Err(e)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_source_ends_the_statement_frees_its_connection_and_recovers() {
    let pg = FaultProxy::start("127.0.0.1:5432").await;
    let my = FaultProxy::start("127.0.0.1:3306").await;
    let server = fragile(pg.port, my.port, 2).await;
    let client = server.connect(WALIDATA).await;
    for (link, proxy, table, total) in [
        ("rapuh_pg", &pg, "rapuh_pg.public.banyak", 5_000_000),
        ("rapuh_my", &my, "rapuh_my.tautan_uji.banyak", 5_000_000),
    ] {
        let started = Instant::now();
        let (rows, end) = stream_rows(&client, &format!("SELECT id, label FROM {table}"), || {
            proxy.set(Fault::Stall)
        })
        .await;
        let took = started.elapsed();
        let e = end.unwrap_err_or_else(|| panic!("{link}: stream ended cleanly after {rows} rows"));
        assert!(rows < total, "{link}: all {rows} rows came through a stall");
        assert_eq!(sqlstate(&e), "08006", "{link}: {e}");
        assert!(
            took < Duration::from_secs(10),
            "{link}: stalled for {took:?}"
        );
        let (status, error, _) = link_row(&client, link).await;
        assert_eq!(status, "degraded", "{link}: {error:?}");
        assert!(error.unwrap_or_default().contains("stalled"));
        // Freed once its cancel (or KILL QUERY) has had its connect
        // timeout (1 s here) to reach the stalled source.
        let mut in_use = None;
        for _ in 0..30 {
            in_use = link_row(&client, link).await.2;
            if in_use == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(in_use, Some(0), "{link}: the stalled connection is freed");
        proxy.set(Fault::Pass);
        // Recovers by itself: within a few attempts (a pooled connection
        // that sat behind the stall may answer the first one with an error).
        let mut answer = Err(String::new());
        for _ in 0..5 {
            answer = client
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE id <= 1000"),
                    &[],
                )
                .await
                .map(|r| r.get::<_, i64>(0))
                .map_err(|e| format!("{e:?}"));
            if answer.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(answer, Ok(1000), "{link} recovers");
        let (status, _, _) = link_row(&client, link).await;
        assert_eq!(status, "up", "{link} is up again after a good statement");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_stream_is_an_error_never_a_short_answer() {
    let pg = FaultProxy::start("127.0.0.1:5432").await;
    let my = FaultProxy::start("127.0.0.1:3306").await;
    let server = fragile(pg.port, my.port, 2).await;
    let client = server.connect(WALIDATA).await;
    for (link, proxy, table, total) in [
        ("rapuh_pg", &pg, "rapuh_pg.public.banyak", 5_000_000),
        ("rapuh_my", &my, "rapuh_my.tautan_uji.banyak", 5_000_000),
    ] {
        let (rows, end) = stream_rows(&client, &format!("SELECT id, label FROM {table}"), || {
            proxy.set(Fault::Refuse)
        })
        .await;
        let e = end.unwrap_err_or_else(|| panic!("{link}: stream ended cleanly after {rows} rows"));
        assert!(rows < total, "{link}");
        assert!(
            ["08006", "08001"].contains(&sqlstate(&e).as_str()),
            "{link}: {e}"
        );
        proxy.set(Fault::Pass);
        client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE id <= 1000"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{link} recovers: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_a_refusing_source_fail_fast_together() {
    let pg = FaultProxy::start("127.0.0.1:5432").await;
    let my = FaultProxy::start("127.0.0.1:3306").await;
    let server = fragile(pg.port, my.port, 2).await;
    let client = server.connect(WALIDATA).await;
    pg.set(Fault::Refuse);
    // The link notices (its pooled connection was cut: 08006, or a new
    // one refused: 08001).
    let e = client
        .query("SELECT count(*) FROM rapuh_pg.public.angka", &[])
        .await
        .expect_err("down");
    assert!(["08001", "08006"].contains(&sqlstate(&e).as_str()), "{e}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Eight at once: one attempt to reconnect, the others take its answer.
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(server.connect(WALIDATA).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .iter()
        .map(|c| c.query("SELECT count(*) FROM rapuh_pg.public.angka", &[]))
        .collect();
    for result in futures::future::join_all(tasks).await {
        let e = result.expect_err("still down");
        assert!(["08001", "08006"].contains(&sqlstate(&e).as_str()), "{e:?}");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "8 queries on a down link took {took:?}"
    );
    pg.set(Fault::Pass);
    tokio::time::sleep(Duration::from_millis(600)).await;
    client
        .query("SELECT count(*) FROM rapuh_pg.public.angka", &[])
        .await
        .expect("up again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_slows_queries_down_but_fails_none() {
    let pg = FaultProxy::start("127.0.0.1:5432").await;
    let my = FaultProxy::start("127.0.0.1:3306").await;
    // A far-away agency: 300 ms each way, and a connect timeout to match.
    let server = fragile_with(pg.port, my.port, 2, 8000).await;
    let client = server.connect(WALIDATA).await;
    pg.set(Fault::Latency(Duration::from_millis(300)));
    my.set(Fault::Latency(Duration::from_millis(300)));
    for i in 0..3 {
        for table in ["rapuh_pg.public.angka", "rapuh_my.tautan_uji.angka"] {
            let n: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE id < {}", 100 + i),
                    &[],
                )
                .await
                .unwrap_or_else(|e| panic!("{table} with 300 ms latency: {e}"))
                .get(0);
            assert_eq!(n, 99 + i as i64);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_link_answers_53300_and_cancel_reaches_both_sources() {
    let pg = FaultProxy::start("127.0.0.1:5432").await;
    let my = FaultProxy::start("127.0.0.1:3306").await;
    let server = fragile(pg.port, my.port, 1).await;
    for (link, table, running) in [
        (
            "rapuh_pg",
            "rapuh_pg.public.lambat",
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'tautan_ro' AND query LIKE '%lambat%' AND state = 'active'",
        ),
        (
            "rapuh_my",
            "rapuh_my.tautan_uji.lambat",
            "SELECT count(*) FROM information_schema.processlist WHERE user = 'tautan_ro' AND info LIKE '%lambat%'",
        ),
    ] {
        let slow = server.connect(WALIDATA).await;
        let other = server.connect(WALIDATA).await;
        let cancel = slow.cancel_token();
        let sql = format!("SELECT * FROM {table}");
        let running_query = tokio::spawn(async move { slow.query(&sql, &[]).await });
        tokio::time::sleep(Duration::from_millis(800)).await;
        // The link's one connection is taken: the next query waits its
        // turn for the queue timeout, then is told the link is busy.
        let started = Instant::now();
        let e = other
            .query(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect_err("busy");
        assert_eq!(sqlstate(&e), "53300", "{link}: {e}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // Cancel: the statement stops at the source too.
        cancel
            .cancel_query(tokio_postgres::NoTls)
            .await
            .expect("cancel");
        let e = running_query
            .await
            .expect("join")
            .expect_err("cancelled");
        assert_eq!(sqlstate(&e), "57014", "{link}: {e}");
        let gone = async {
            for _ in 0..40 {
                let n = if link == "rapuh_pg" {
                    pg_admin("tautan_uji")
                        .await
                        .query_one(running, &[])
                        .await
                        .expect("activity")
                        .get::<_, i64>(0)
                } else {
                    use mysql_async::prelude::Queryable;
                    let mut admin = my_admin().await;
                    let n: Option<i64> = admin.query_first(running).await.expect("processlist");
                    n.unwrap_or(0)
                };
                if n == 0 {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        assert!(gone.await, "{link}: the statement still runs at the source");
        // And the link serves again.
        other
            .query(&format!("SELECT count(*) FROM {link}.{}", if link == "rapuh_pg" { "public.angka" } else { "tautan_uji.angka" }), &[])
            .await
            .unwrap_or_else(|e| panic!("{link} serves after the cancel: {e}"));
    }
}

trait ErrOrElse<E> {
    fn unwrap_err_or_else(self, f: impl FnOnce()) -> E;
}

impl<E> ErrOrElse<E> for Result<(), E> {
    fn unwrap_err_or_else(self, f: impl FnOnce()) -> E {
        match self {
            Ok(()) => {
                f();
                unreachable!()
            }
            Err(e) => e,
        }
    }
}
