//! Client input is bounded: placeholder numbers, Bind messages, binary
//! parameter values and statement depth are checked before anything is
//! allocated or planned from them, and answered with PostgreSQL's errors.

use crate::common::*;
use crate::wire::{self, Raw};

use tautan::limits::MAX_DEPTH;

fn chain(head: &str, n: usize, tail: &str) -> String {
    format!("{head}{}{tail}", " + 0".repeat(n))
}

/// The longest `+ 0` chain `make` may hold and still pass the depth check
/// (binary search with tautan's own parser).
fn longest_accepted(make: impl Fn(usize) -> String) -> usize {
    let (mut lo, mut hi) = (1, MAX_DEPTH + 10);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if tautan::statement::parse(&make(mid)).is_ok() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[tokio::test]
async fn placeholder_numbers_beyond_what_bind_can_supply_are_42p02() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    // Once sized a vector from the number: ~96 GB.
    for sql in ["SELECT $4000000000", "SELECT $65536", "SELECT $0"] {
        let e = client.prepare(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "42P02", "{sql}: {e}");
    }
    let e = client
        .prepare("SELECT 1 WHERE 1 = $70000")
        .await
        .expect_err("42P02");
    assert_eq!(
        e.as_db_error().map(|d| d.message()),
        Some("there is no parameter $70000")
    );
    // Nothing is bound in the simple protocol.
    let e = client.simple_query("SELECT $1").await.expect_err("42P02");
    assert_eq!(sqlstate(&e), "42P02");
    // The connection is fine.
    let v: String = client
        .query_one("SELECT $1::text", &[&"bound"])
        .await
        .expect("bound")
        .get(0);
    assert_eq!(v, "bound");
}

#[tokio::test]
async fn bind_messages_must_fit_their_statement() {
    let server = start().await;
    let mut raw = Raw::login(server.port, DINKES).await;
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            wire::bind("", "", &[], &[Some(b"1")], &[]),
            "08P01",
            "bind message supplies 1 parameters, but prepared statement \"\" requires 2",
        ),
        (
            wire::bind("", "", &[0, 0], &[Some(b"1"), Some(b"2"), Some(b"3")], &[]),
            "08P01",
            "bind message has 2 parameter formats but 3 parameters",
        ),
        (
            wire::bind("", "", &[], &[Some(b"1"), Some(b"2")], &[0, 1, 0]),
            "08P01",
            "bind message has 3 result formats but query has 1 columns",
        ),
        (
            wire::bind("", "", &[7], &[Some(b"1"), Some(b"2")], &[]),
            "22023",
            "unsupported format code: 7",
        ),
    ];
    for (bind, code, message) in cases {
        let mut batch = wire::parse("", "SELECT $1::int4 + $2::int4", &[]);
        batch.extend(bind);
        batch.extend(wire::execute(""));
        batch.extend(wire::sync());
        raw.send(&batch).await;
        let msgs = raw.until_ready().await;
        let error = msgs
            .iter()
            .find(|m| m.tag == b'E')
            .unwrap_or_else(|| panic!("{message}: no error in {msgs:?}"));
        assert_eq!(error.sqlstate().as_deref(), Some(code), "{message}");
        assert_eq!(error.field(b'M').as_deref(), Some(message));
        assert_eq!(msgs.last().map(|m| m.tag), Some(b'Z'), "{message}");
    }
    // Named statements are named in the message; the session goes on.
    let mut batch = wire::parse("s1", "SELECT $1::text", &[]);
    batch.extend(wire::bind("", "s1", &[], &[], &[]));
    batch.extend(wire::sync());
    raw.send(&batch).await;
    let msgs = raw.until_ready().await;
    let error = msgs.iter().find(|m| m.tag == b'E').expect("error");
    assert_eq!(
        error.field(b'M').as_deref(),
        Some("bind message supplies 0 parameters, but prepared statement \"s1\" requires 1")
    );
    raw.send(&wire::query("SELECT 1")).await;
    let msgs = raw.until_ready().await;
    assert!(msgs.iter().any(|m| m.tag == b'D'), "{msgs:?}");
}

/// One extended-protocol round: Parse `sql` with `types`, Bind one value
/// (`value_format`: 0 text, 1 binary) asking for results in
/// `result_format`, Describe the portal, Execute, Sync; every message up
/// to ReadyForQuery (the connection must still be there).
async fn round(
    raw: &mut Raw,
    sql: &str,
    types: &[u32],
    value: &[u8],
    value_format: i16,
    result_format: Option<i16>,
) -> Vec<wire::Msg> {
    let mut batch = wire::parse("", sql, types);
    let results: Vec<i16> = result_format.into_iter().collect();
    batch.extend(wire::bind(
        "",
        "",
        &[value_format],
        &[Some(value)],
        &results,
    ));
    let mut describe = vec![b'P'];
    describe.extend(wire::cstr(""));
    batch.extend(wire::msg(b'D', &describe));
    batch.extend(wire::execute(""));
    batch.extend(wire::sync());
    raw.send(&batch).await;
    let msgs = raw.until_ready().await;
    assert_eq!(
        msgs.last().map(|m| m.tag),
        Some(b'Z'),
        "{sql} {types:?} {value:?}: the connection ended: {msgs:?}"
    );
    msgs
}

/// Parse `sql` with `types`, Bind one binary value, Execute; the SQLSTATE
/// of the answer (None when it succeeded).
async fn bind_binary(raw: &mut Raw, sql: &str, types: &[u32], value: &[u8]) -> Option<String> {
    wire::first_error(&round(raw, sql, types, value, 1, None).await)
}

/// The DataRow (or the SQLSTATE of the error) of `SELECT $1` with one
/// binary parameter of type `oid`, results in `format`.
async fn echo(raw: &mut Raw, oid: u32, value: &[u8], format: i16) -> Result<Vec<u8>, String> {
    let msgs = round(raw, "SELECT $1", &[oid], value, 1, Some(format)).await;
    if let Some(code) = wire::first_error(&msgs) {
        return Err(code);
    }
    msgs.into_iter()
        .find(|m| m.tag == b'D')
        .map(|m| m.body)
        .ok_or_else(|| "no row".to_string())
}

/// Every parameter type a client may declare, with every text value of the
/// fuzz campaign, echoed back in text and in binary: an answer or an error
/// PostgreSQL could give — never XX000, never a broken connection. (The
/// campaign found a text array echoed in binary ending in a panic.)
#[tokio::test]
async fn every_declared_parameter_type_echoes_back_in_both_formats_or_fails_cleanly() {
    let server = start().await;
    let mut raw = Raw::login(server.port, DINKES).await;
    let mut internal = Vec::new();
    let mut answered = 0;
    for oid in crate::fuzz::OIDS {
        for value in crate::fuzz::TEXT_VALUES {
            for format in [0i16, 1] {
                let msgs = round(
                    &mut raw,
                    "SELECT $1",
                    &[*oid],
                    value.as_bytes(),
                    0,
                    Some(format),
                )
                .await;
                match wire::first_error(&msgs).as_deref() {
                    Some("XX000") => internal.push(format!(
                        "type {oid}, {value:?}, format {format}: {:?} (described as type {:?})",
                        msgs.iter()
                            .find(|m| m.tag == b'E')
                            .and_then(|m| m.field(b'M')),
                        msgs.iter().find(|m| m.tag == b'T').and_then(|m| {
                            let name_end = m.body.iter().skip(2).position(|b| *b == 0)? + 3;
                            let oid = m.body.get(name_end + 6..name_end + 10)?;
                            Some(u32::from_be_bytes(oid.try_into().ok()?))
                        })
                    )),
                    Some(_) => {}
                    None => answered += 1,
                }
            }
        }
    }
    assert!(internal.is_empty(), "XX000 for: {internal:#?}");
    assert!(answered > 100, "only {answered} answered");
}

/// Dates and timestamps anywhere in the range both PostgreSQL and tautan
/// hold — 4714 BC, and years past 262143 where chrono's calendar ends (a
/// fuzz campaign found `timestamp out of range` as XX000 there) — come
/// back as PostgreSQL itself writes them, text and binary, in UTC and in a
/// zone with a local-mean-time offset in its early history.
#[tokio::test]
async fn dates_and_timestamps_at_the_ends_of_the_range_are_written_as_postgresql_writes_them() {
    let server = start().await;
    let mut tautan = Raw::login(server.port, DINKES).await;
    let mut pg = Raw::connect(5432).await;
    pg.send(&wire::startup(&[
        ("user", "postgres"),
        ("database", "test"),
    ]))
    .await;
    pg.until_ready().await;
    // PostgreSQL's binary forms: days / microseconds since 2000-01-01.
    let dates: [i32; 6] = [-2_451_545, -730_120, 0, 2_921_939, 95_000_000, 106_751_000];
    let timestamps: [i64; 6] = [
        -211_813_488_000_000_000,
        -62_135_596_800_000_001,
        0,
        8_000_000_000_000_000_123,
        9_000_000_000_000_000_000,
        9_222_000_000_000_000_000,
    ];
    let mut compared = 0;
    for zone in ["UTC", "Asia/Jakarta"] {
        for raw in [&mut tautan, &mut pg] {
            raw.send(&wire::query(&format!("SET TimeZone = '{zone}'")))
                .await;
            raw.until_ready().await;
        }
        let values = dates
            .iter()
            .map(|d| (1082, d.to_be_bytes().to_vec()))
            .chain(timestamps.iter().flat_map(|t| {
                [
                    (1114, t.to_be_bytes().to_vec()),
                    (1184, t.to_be_bytes().to_vec()),
                ]
            }));
        for (oid, value) in values {
            for format in [0, 1] {
                let ours = echo(&mut tautan, oid, &value, format).await;
                let theirs = echo(&mut pg, oid, &value, format).await;
                assert_eq!(
                    ours.as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    theirs
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    "type {oid}, value {value:?}, format {format}, {zone}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 2 * (6 + 12) * 2);
    // Where tautan's range ends before PostgreSQL's (Arrow's microseconds
    // since 1970 stop in 294247; dates are held to the timestamp range):
    // 22008, never a wrong value.
    for (oid, value) in [
        (1114, 9_223_000_000_000_000_000i64.to_be_bytes().to_vec()),
        (1082, 2_000_000_000i32.to_be_bytes().to_vec()),
    ] {
        assert_eq!(
            echo(&mut tautan, oid, &value, 0).await,
            Err("22008".to_string())
        );
    }
}

#[tokio::test]
async fn binary_parameters_are_decoded_by_their_type_and_checked() {
    let server = start().await;
    let mut raw = Raw::login(server.port, DINKES).await;
    let by_birth = "SELECT count(*) FROM kependudukan.public.penduduk WHERE tanggal_lahir < $1";
    // infinity / -infinity: once an addition overflow (a panic that ended
    // the connection; in a release build a wrong date, silently).
    for (oid, value) in [
        (1114, i64::MAX.to_be_bytes().to_vec()),
        (1184, i64::MIN.to_be_bytes().to_vec()),
        (1082, i32::MAX.to_be_bytes().to_vec()),
        (1082, i32::MIN.to_be_bytes().to_vec()),
    ] {
        assert_eq!(
            bind_binary(&mut raw, by_birth, &[oid], &value)
                .await
                .as_deref(),
            Some("22008"),
            "oid {oid}"
        );
    }
    // Lengths that do not fit the type: 22P03, as PostgreSQL.
    for (oid, value) in [
        (23, vec![0, 0, 1]),
        (20, vec![0; 4]),
        (16, vec![]),
        (1114, vec![0; 7]),
        (1700, vec![0, 5, 0, 0]),
        (2950, vec![0; 3]),
    ] {
        assert_eq!(
            bind_binary(&mut raw, "SELECT $1 IS NULL", &[oid], &value)
                .await
                .as_deref(),
            Some("22P03"),
            "oid {oid}"
        );
    }
    // A real date still works: 2000-01-01 + 0 days.
    assert_eq!(
        bind_binary(&mut raw, by_birth, &[1082], &0i32.to_be_bytes()).await,
        None
    );
}

#[tokio::test]
async fn uuid_columns_holding_other_text_are_an_error_not_a_panic() {
    let server = start().await;
    let client = server.connect(WALIDATA).await;
    // Binary results (tokio-postgres asks for them): the uuid encoder once
    // sliced this text by byte index through the 'é'.
    let sql = "SELECT u FROM uji_pg.public.semua_tipe WHERE id = 1 \
               UNION ALL SELECT 'a' || repeat('é', 15) || 'a'";
    match client.query(sql, &[]).await {
        Ok(rows) => {
            // The union's column is plain text: nothing to encode as uuid.
            assert_eq!(rows.len(), 2);
        }
        Err(e) => assert!(e.as_db_error().is_some(), "an error response: {e}"),
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM uji_pg.public.semua_tipe", &[])
        .await
        .expect("the connection is fine")
        .get(0);
    assert_eq!(n, 3);
}

#[tokio::test]
async fn deep_statements_are_refused_on_every_entry() {
    let server = start().await;
    let client = server.connect(DINKES).await;
    let deep = format!("SELECT {}", vec!["1"; 2000].join("+"));
    let from_table = chain(
        "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE biaya",
        2000,
        " >= 0",
    );
    for sql in [
        deep.clone(),
        from_table.clone(),
        format!("EXPLAIN {from_table}"),
        format!("DECLARE c CURSOR FOR {from_table}"),
        format!("COPY ({from_table}) TO STDOUT"),
        format!("SELECT {}1{}", "(".repeat(3000), ")".repeat(3000)),
        format!("SELECT {}true", "NOT ".repeat(3000)),
        format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(3000)),
    ] {
        let e = client.simple_query(&sql).await.expect_err("54001");
        assert_eq!(sqlstate(&e), "54001", "{}: {e}", &sql[..60]);
        let db = e.as_db_error().expect("error response");
        assert_eq!(db.message(), "stack depth limit exceeded");
        assert!(
            db.hint().is_some_and(|h| h.contains("1000")),
            "{:?}",
            db.hint()
        );
        // Parse (extended protocol).
        let e = client.prepare(&sql).await.expect_err("54001");
        assert_eq!(sqlstate(&e), "54001", "Parse: {}", &sql[..60]);
    }
    let n: i64 = client
        .query_one("SELECT 1::int8", &[])
        .await
        .expect("server alive")
        .get(0);
    assert_eq!(n, 1);
}

/// A statement just under the depth limit plans and answers on a default
/// 2 MiB thread stack (the server, its pgwire handlers and the client all
/// run on this thread), through every entry.
#[test]
fn depth_just_under_the_limit_answers_on_a_2_mib_stack() {
    let thread = std::thread::Builder::new()
        .name("two-mib".into())
        .stack_size(2 << 20)
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let server = start().await;
                let client = server.connect(DINKES).await;
                let kunjungan = |n: usize| {
                    chain(
                        "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE biaya",
                        n,
                        " >= 0",
                    )
                };
                let n = longest_accepted(kunjungan);
                assert!(n > MAX_DEPTH - 10, "{n}");
                assert!(tautan::statement::parse(&kunjungan(n + 1)).is_err());
                let sql = kunjungan(n);
                let expected: i64 = client
                    .query_one(
                        "SELECT count(*) FROM kesehatan.kesehatan.kunjungan WHERE biaya >= 0",
                        &[],
                    )
                    .await
                    .expect("count")
                    .get(0);
                // Simple query.
                let rows = client.simple_query(&sql).await.expect("simple");
                let got = rows.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                    _ => None,
                });
                assert_eq!(got, Some(expected.to_string()));
                // Parse / Bind / Execute.
                let got: i64 = client.query_one(&sql, &[]).await.expect("extended").get(0);
                assert_eq!(got, expected);
                // EXPLAIN (one level more).
                let explained = |n: usize| format!("EXPLAIN {}", kunjungan(n));
                let plan = client
                    .simple_query(&explained(longest_accepted(explained)))
                    .await
                    .expect("explain");
                assert!(!plan.is_empty());
                // Cursor.
                client
                    .batch_execute(&format!("BEGIN; DECLARE c CURSOR FOR {sql}"))
                    .await
                    .expect("declare");
                let rows = client.query("FETCH ALL FROM c", &[]).await.expect("fetch");
                assert_eq!(rows.len(), 1);
                client.batch_execute("COMMIT").await.expect("commit");
                // COPY (query) TO STDOUT.
                let copy = client
                    .copy_out(&format!("COPY ({sql}) TO STDOUT"))
                    .await
                    .expect("copy");
                futures::pin_mut!(copy);
                let mut text = Vec::new();
                while let Some(chunk) = futures::StreamExt::next(&mut copy).await {
                    text.extend_from_slice(&chunk.expect("copy data"));
                }
                assert_eq!(String::from_utf8_lossy(&text).trim(), expected.to_string());
                // No table (the catalog path, through the compatibility
                // parser) and a PostgreSQL link.
                let constant = |n: usize| chain("SELECT 1", n, "");
                let n = longest_accepted(constant);
                let got: i64 = client
                    .query_one(&constant(n), &[])
                    .await
                    .expect("constant")
                    .get(0);
                assert_eq!(got, 1);
                let penduduk = |n: usize| {
                    chain(
                        "SELECT count(*) FROM kependudukan.public.penduduk WHERE length(kecamatan_kode)",
                        n,
                        " > 0",
                    )
                };
                let n = longest_accepted(penduduk);
                let got: i64 = client
                    .query_one(&penduduk(n), &[])
                    .await
                    .expect("postgres link")
                    .get(0);
                assert_eq!(got, 20_000);
            })
        })
        .expect("thread");
    thread.join().expect("no stack overflow, no panic");
}
