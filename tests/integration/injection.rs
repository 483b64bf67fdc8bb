//! User input never restructures the SQL tautan sends to a source.
//!
//! Hostile strings — the payloads that broke out before, and seeded random
//! strings of quotes, backslashes, comment markers, dollar quotes and
//! Unicode — are stored at both sources, then looked up through tautan as
//! literals, bound parameters, IN lists and LIKE patterns, and used as
//! column aliases of sub-plans that are sent whole, each with pushdown on
//! and off. The answer must be exactly the rows holding that string (on
//! PostgreSQL an equality is sent *exactly*: tautan does not re-check it,
//! so the row comes back only if the source compared with the very value
//! the user wrote; on MariaDB the general log must show the value quoted
//! as written), no function outside tautan's list may ever reach a
//! source, and the guard must never have had to refuse a statement
//! (`common::Server` checks that when it is dropped).
//!
//! `TAUTAN_TEST_SEED=<n>` repeats a run; the seed is printed.

use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

use crate::common;

/// Strings that broke out of literals or aliases before the fix, or that
/// sit on a quoting rule of one of the dialects.
pub(crate) const REGRESSIONS: &[&str] = &[
    // The MariaDB breakout of the report (a quote after a backslash).
    r"\'))) UNION SELECT CAST(1 AS UNSIGNED), nip, nama FROM kepegawaian.pegawai -- ",
    // Closing PostgreSQL's COPY wrapper.
    r"\') TO STDOUT (FORMAT binary); SELECT lo_from_bytea(0, 'x'); COPY (SELECT 1 WHERE '",
    r"\')) OR pg_sleep(5) IS NOT NULL OR ('",
    r"\')) OR SLEEP(5) OR BENCHMARK(1000000, MD5(1)) OR GET_LOCK('x', 5) OR ('",
    r"\')) UNION SELECT set_config('default_transaction_read_only', 'off', false) --",
    "''",
    "'",
    r"\",
    r"\'",
    r"\\'",
    "it''s",
    "$$",
    "$tag$ x $tag$",
    "-- comment",
    "/* comment */",
    "/*! executable MySQL comment */",
    "; SELECT 1",
    "# hash comment",
    "`",
    "``",
    "\"",
    r#"\""#,
    r"\`",
    "%_",
    r"\%\_",
    "Ñoño 日本語 🙂 ✓",
    "\u{2028}\u{200b}\u{202e}",
    "tab\tnew\nline\rreturn",
    " trailing blanks   ",
];

/// The injection table's rows: every regression string, long ones, and
/// `random` seeded random strings.
fn payloads(rng: &mut StdRng, random: usize) -> Vec<String> {
    let mut out: Vec<String> = REGRESSIONS.iter().map(|s| s.to_string()).collect();
    out.push("'".repeat(3000));
    out.push(r"\'".repeat(1500));
    out.push("x".repeat(10_000));
    const PIECES: &[&str] = &[
        "'", "''", "\\", "\\'", "\"", "`", "$", "$$", "--", "/*", "*/", ";", "#", "%", "_", " ",
        "\t", "\n", "a", "Z", "0", "é", "日", "🙂", "\u{feff}", "OR", "UNION", "SELECT", "(", ")",
        "=", ",", ".",
    ];
    for _ in 0..random {
        let len = rng.random_range(1..12);
        let s: String = (0..len)
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect();
        out.push(s);
    }
    out
}

/// `text` as a string literal of tautan's SQL (standard strings).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` as a quoted identifier of tautan's SQL.
fn ident(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// `text` as a LIKE pattern matching exactly `text` (escape `\`).
fn like_exactly(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn ids(client: &Client, sql: &str) -> Vec<i32> {
    let rows = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter().map(|r| r.get::<_, i32>(0)).collect()
}

async fn set_pushdown(client: &Client, on: bool) {
    client
        .batch_execute(&format!(
            "SET tautan.pushdown = {}",
            if on { "on" } else { "off" }
        ))
        .await
        .expect("set pushdown");
}

/// Fills both sources' `injeksi` tables with `payloads` (row id = index).
async fn store(payloads: &[String]) {
    let pg = common::pg_admin("tautan_uji").await;
    pg.batch_execute("TRUNCATE injeksi")
        .await
        .expect("truncate");
    let insert = pg
        .prepare("INSERT INTO injeksi VALUES ($1, $2)")
        .await
        .expect("prepare");
    for (i, s) in payloads.iter().enumerate() {
        pg.execute(&insert, &[&(i as i32), s])
            .await
            .expect("insert");
    }
    let mut my = common::my_admin().await;
    my.query_drop("TRUNCATE tautan_uji.injeksi")
        .await
        .expect("truncate");
    for (i, s) in payloads.iter().enumerate() {
        my.exec_drop(
            "INSERT INTO tautan_uji.injeksi VALUES (?, ?)",
            (i as i32, s.as_str()),
        )
        .await
        .expect("insert");
    }
}

/// Every shape of user input reaching a source, for both links, with
/// pushdown on and off: the answer is exactly the rows holding the string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_reach_the_sources_as_values() {
    let seed: u64 = std::env::var("TAUTAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("injection test seed: {seed} (TAUTAN_TEST_SEED={seed} repeats it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let payloads = payloads(&mut rng, 40);
    store(&payloads).await;
    let mut my = common::my_admin().await;
    common::my_log_on(&mut my).await;

    let server = common::start().await;
    let client = server.connect(common::WALIDATA).await;
    let tables = [
        ("postgres", "uji_pg.public.injeksi"),
        ("mariadb", "uji_my.tautan_uji.injeksi"),
    ];
    let mut queries = 0usize;
    for pushdown in [true, false] {
        set_pushdown(&client, pushdown).await;
        for (i, p) in payloads.iter().enumerate() {
            // Rows whose value is exactly p (ids are the payload indexes;
            // the same string may appear twice among the random ones).
            let want: Vec<i32> = payloads
                .iter()
                .enumerate()
                .filter(|(_, q)| *q == p)
                .map(|(j, _)| j as i32)
                .collect();
            let context = format!("seed {seed}, payload #{i} {p:?}, pushdown {pushdown}");
            for (source, table) in tables {
                let base = format!("SELECT id FROM {table} WHERE");
                let shapes = [
                    format!("{base} s = {} ORDER BY id", literal(p)),
                    format!("{base} s IN ({}, 'no such value') ORDER BY id", literal(p)),
                    format!("{base} s LIKE {} ORDER BY id", literal(&like_exactly(p))),
                ];
                for sql in &shapes {
                    assert_eq!(ids(&client, sql).await, want, "{source}: {sql} ({context})");
                    queries += 1;
                }
                // The same value as a bound parameter (extended protocol).
                let rows = client
                    .query(&format!("{base} s = $1 ORDER BY id"), &[p])
                    .await
                    .unwrap_or_else(|e| panic!("{source} parameter: {e} ({context})"));
                let got: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
                assert_eq!(got, want, "{source} parameter ({context})");
                queries += 1;
                // The string as the alias of an aggregate sent whole.
                let sql = format!(
                    "SELECT count(*) AS {} FROM {table} WHERE id >= {i}",
                    ident(p)
                );
                let rows = client
                    .query(&sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{source}: {sql}: {e} ({context})"));
                let row = rows.first().expect("one row");
                assert_eq!(
                    row.columns()[0].name(),
                    p.as_str(),
                    "{source} alias ({context})"
                );
                assert_eq!(
                    row.get::<_, i64>(0),
                    (payloads.len() - i) as i64,
                    "{source} alias count ({context})"
                );
                queries += 1;
            }
        }
    }

    // What MariaDB received holds each value quoted as written (the log
    // table cannot hold characters outside the BMP).
    let loggable = |p: &&String| p.len() < 200 && p.chars().all(|c| (c as u32) < 0x10000);
    for p in payloads.iter().filter(loggable) {
        let quoted = literal(p);
        let needle = format!("`s` = {quoted}");
        let seen = common::my_log(
            &mut my,
            &needle
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_"),
        )
        .await;
        assert!(
            !seen.is_empty(),
            "MariaDB never received {needle:?} (seed {seed})"
        );
    }

    // No function outside tautan's list ever reached a source, except
    // inside a value or an alias (a statement holding it holds it quoted as
    // written; COPY statements keep their literals in pg_stat_statements).
    let outside_values = |statements: Vec<String>, f: &str| -> Vec<String> {
        statements
            .into_iter()
            .filter(|s| {
                !payloads.iter().any(|p| {
                    let backticked = format!("`{}`", p.replace('`', "``"));
                    p.to_lowercase().contains(&f.to_lowercase())
                        && (s.contains(&literal(p))
                            || s.contains(&ident(p))
                            || s.contains(&backticked))
                })
            })
            .collect()
    };
    for f in ["pg_sleep", "lo_from_bytea", "set_config"] {
        let statements = common::pg_statements(f)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let injected = outside_values(statements, f);
        assert!(
            injected.is_empty(),
            "PostgreSQL ran {f} outside a literal: {injected:?} (seed {seed})"
        );
    }
    for f in ["SLEEP(", "BENCHMARK(", "GET_LOCK(", "UNION SELECT CAST"] {
        let injected = outside_values(common::my_log(&mut my, f).await, f);
        assert!(
            injected.is_empty(),
            "MariaDB ran {f} outside a literal: {injected:?} (seed {seed})"
        );
    }
    println!(
        "injection: {} payloads ({} regression, 3 long, 40 random) x 5 shapes (literal, IN, LIKE, \
         parameter, alias) x 2 links x pushdown on/off = {queries} queries, guard refusals {}",
        payloads.len(),
        REGRESSIONS.len(),
        tautan_connector::sql::refused_statements()
    );
}

/// The payloads of the report, as the analyst: nothing of the staff
/// database comes back, and the population database is not written.
#[tokio::test]
async fn reported_payloads_return_only_what_the_analyst_may_read() {
    let server = common::start().await;
    let analyst = server.connect(common::DINKES).await;
    let admin = common::pg_admin("kependudukan").await;
    let large_objects = |c: Client| async move {
        let row = c
            .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
            .await
            .expect("count");
        (c, row.get::<_, i64>(0))
    };
    let (admin, before) = large_objects(admin).await;
    let visits: i64 = analyst
        .query_one("SELECT count(*) FROM kesehatan.kesehatan.kunjungan", &[])
        .await
        .expect("count")
        .get(0);
    for pushdown in [true, false] {
        set_pushdown(&analyst, pushdown).await;
        let rows = analyst
            .query(
                r"SELECT id, nik, diagnosa_icd10 FROM kesehatan.kesehatan.kunjungan WHERE diagnosa_icd10 = '\''))) UNION SELECT CAST(1 AS UNSIGNED), nip, nama FROM kepegawaian.pegawai -- ' OR id > 0",
                &[],
            )
            .await
            .expect("the payload is just a value");
        assert_eq!(rows.len() as i64, visits, "pushdown {pushdown}");
        // Staff rows would carry an 18-digit NIP where the NIK is.
        assert!(rows.iter().all(|r| r.get::<_, String>(1).len() == 16));
        let copy = analyst
            .query(
                &format!(
                    "SELECT count(*) FROM kependudukan.public.penduduk WHERE kecamatan_kode = {}",
                    literal(REGRESSIONS[1])
                ),
                &[],
            )
            .await
            .expect("the payload is just a value");
        assert_eq!(copy[0].get::<_, i64>(0), 0);
        // Aliases that closed the quoted identifier, on each dialect.
        let row = analyst
            .query_one(
                &format!(
                    "SELECT count(*) AS {} FROM kependudukan.public.penduduk_per_kecamatan",
                    ident(r#"a\""#)
                ),
                &[],
            )
            .await
            .expect("alias with a backslash before a quote");
        assert_eq!(row.columns()[0].name(), r#"a\""#);
        let row = analyst
            .query_one(
                &format!(
                    "SELECT count(*) AS {} FROM kesehatan.kesehatan.kunjungan WHERE id > 0",
                    ident(r"r\`")
                ),
                &[],
            )
            .await
            .expect("alias with a backslash before a backtick");
        assert_eq!(row.columns()[0].name(), r"r\`");
        assert_eq!(row.get::<_, i64>(0), visits);
    }
    let (_, after) = large_objects(admin).await;
    assert_eq!(before, after, "a large object was written");
}
