//! No client can take the server down, or learn who may log in: a panic
//! ends one statement, a malformed message one connection, a failed login
//! is FATAL and closes, and unknown users get answers shaped like real
//! ones.

use std::time::Duration;

use crate::common::*;
use crate::wire::{self, Raw};

#[tokio::test]
async fn a_panic_ends_one_statement_not_the_session_or_the_server() {
    let server = start().await;
    let victim = server.connect(DINKES).await;
    let bystander = server.connect(WALIDATA).await;
    bystander
        .batch_execute("BEGIN")
        .await
        .expect("a transaction in another session");
    for sql in [
        // While the result streams (simple protocol)...
        "SELECT tautan_debug_panic('boom') FROM ref.kecamatan",
        // ...and a constant (folded at planning? volatile: at execution).
        "SELECT tautan_debug_panic('bang')",
    ] {
        let e = victim.simple_query(sql).await.expect_err("XX000");
        assert_eq!(sqlstate(&e), "XX000", "{sql}: {e}");
        assert!(
            e.as_db_error()
                .is_some_and(|d| d.message().starts_with("internal error: b")),
            "{e}"
        );
    }
    // Extended protocol.
    let e = victim
        .query("SELECT tautan_debug_panic($1)", &[&"bound"])
        .await
        .expect_err("XX000");
    assert_eq!(sqlstate(&e), "XX000");
    // The session goes on, and so does the other one, in its transaction.
    let n: i64 = victim
        .query_one("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("same session")
        .get(0);
    assert!(n > 0);
    bystander
        .batch_execute("COMMIT")
        .await
        .expect("other session");
    let fresh = server.connect(DINKES).await;
    fresh.simple_query("SELECT 1").await.expect("new sessions");
}

#[tokio::test]
async fn a_failed_password_is_fatal_and_closes_the_connection() {
    let server = start().await;
    for (user, password) in [("analis_dinkes", "wrong"), ("tidak_ada", "whatever")] {
        let mut raw = Raw::connect(server.port).await;
        let (scram, _) = raw
            .scram_start(user, password)
            .await
            .expect("SCRAM challenge");
        raw.send(&wire::sasl_response(scram.message())).await;
        let error = raw.next().await.expect("an answer");
        assert_eq!(error.tag, b'E', "{error:?}");
        assert_eq!(error.field(b'S').as_deref(), Some("FATAL"));
        assert_eq!(error.sqlstate().as_deref(), Some("28P01"));
        assert_eq!(
            error.field(b'M'),
            Some(format!(
                "password authentication failed for user \"{user}\""
            ))
        );
        // Nothing follows (no ReadyForQuery): the server closes.
        assert!(
            raw.next_within(Duration::from_secs(5)).await.is_none(),
            "the connection stays open after a failed login"
        );
    }
}

#[tokio::test]
async fn unknown_users_get_a_stable_salt_and_the_same_answers() {
    let server = start().await;
    let server_first = |text: &str| -> Vec<(String, String)> {
        text.split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut salts = Vec::new();
    for _ in 0..2 {
        let mut raw = Raw::connect(server.port).await;
        let (_, first) = raw
            .scram_start("tidak_ada", "x")
            .await
            .expect("an unknown user is challenged like a real one");
        salts.push(server_first(&first));
    }
    let mut raw = Raw::connect(server.port).await;
    let (_, real) = raw
        .scram_start(DINKES.0, "x")
        .await
        .expect("real user challenged");
    let real = server_first(&real);
    let (unknown, again) = (&salts[0], &salts[1]);
    // Same keys in the same order, same iteration count, a salt of the
    // same length...
    let keys = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(unknown), vec!["r", "s", "i"]);
    assert_eq!(keys(unknown), keys(&real));
    assert_eq!(unknown[2].1, real[2].1, "iteration count");
    assert_eq!(unknown[1].1.len(), real[1].1.len(), "salt length");
    // ...and the same salt on every attempt, as a real user's (a random one
    // each time told the two apart).
    assert_eq!(unknown[1].1, again[1].1);
    let mut raw = Raw::connect(server.port).await;
    let (_, real_again) = raw.scram_start(DINKES.0, "x").await.expect("again");
    assert_eq!(real[1].1, server_first(&real_again)[1].1);
    // A different unknown name, a different salt.
    let mut raw = Raw::connect(server.port).await;
    let (_, other) = raw.scram_start("orang_lain", "x").await.expect("other");
    assert_ne!(server_first(&other)[1].1, unknown[1].1);
}

#[tokio::test]
async fn malformed_messages_end_only_their_connection() {
    let server = start().await;
    let before = panics_on_this_thread();
    let bystander = server.connect(WALIDATA).await;
    // Inputs that panicked pgwire 0.41's decoder (each after a login).
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("Parse with an empty body", wire::msg(b'P', b"")),
        ("Bind with a value longer than the message", {
            let mut b = b"\0\0\x00\x00\x00\x01".to_vec();
            b.extend_from_slice(&1_000_000i32.to_be_bytes());
            b.extend_from_slice(b"ab\x00\x00");
            wire::msg(b'B', &b)
        }),
        ("Execute without its row count", wire::msg(b'E', b"\0")),
        ("Describe with an empty body", wire::msg(b'D', b"")),
        ("Close with an empty body", wire::msg(b'C', b"")),
        ("CopyData with length 3", b"d\x00\x00\x00\x03".to_vec()),
        ("Parse announcing 1000 types", {
            let mut b = b"\0SELECT 1\0".to_vec();
            b.extend_from_slice(&1000u16.to_be_bytes());
            wire::msg(b'P', &b)
        }),
        ("an unknown message type", wire::msg(b'Z', b"")),
    ];
    for (what, bytes) in inputs {
        let mut raw = Raw::login(server.port, DINKES).await;
        raw.send(&bytes).await;
        let answer = raw.next_within(Duration::from_secs(10)).await;
        let answer = answer.unwrap_or_else(|| panic!("{what}: closed without an error"));
        assert_eq!(answer.sqlstate().as_deref(), Some("08P01"), "{what}");
        assert_eq!(answer.field(b'S').as_deref(), Some("FATAL"), "{what}");
        assert!(
            raw.next_within(Duration::from_secs(5)).await.is_none(),
            "{what}: still open"
        );
    }
    // Before login too: a password message with length 2, a startup packet
    // without its terminator.
    for (what, bytes) in [
        ("password message with length 2", {
            let mut b = wire::startup(&[("user", "analis_dinkes")]);
            b.extend_from_slice(b"p\x00\x00\x00\x02");
            b
        }),
        ("startup packet without terminator", {
            let mut b = 13i32.to_be_bytes().to_vec();
            b.extend_from_slice(&196_608i32.to_be_bytes());
            b.extend_from_slice(b"user\0");
            b
        }),
        ("SASL initial response with a short data length", {
            let mut b = wire::startup(&[("user", "analis_dinkes")]);
            b.extend(wire::msg(b'p', b"SCRAM-SHA-256\0\x00\x00"));
            b
        }),
    ] {
        let mut raw = Raw::connect(server.port).await;
        raw.send(&bytes).await;
        let mut saw_error = false;
        while let Some(m) = raw.next_within(Duration::from_secs(10)).await {
            if m.tag == b'E' {
                saw_error = true;
                assert_eq!(m.field(b'S').as_deref(), Some("FATAL"), "{what}");
            }
            assert_ne!(m.tag, b'Z', "{what}: ReadyForQuery");
        }
        assert!(saw_error, "{what}: closed without an error");
    }
    bystander
        .simple_query("SELECT 1")
        .await
        .expect("other sessions go on");
    assert_eq!(panics_on_this_thread(), before, "a panic was caught");
}

#[tokio::test]
async fn execute_row_limits_are_read_as_postgresql_reads_them() {
    let server = start().await;
    let mut raw = Raw::login(server.port, DINKES).await;
    let total: usize = server
        .connect(DINKES)
        .await
        .query_one("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("count")
        .get::<_, i64>(0) as usize;
    assert!(total > 2);
    let execute = |max_rows: i32| {
        let mut b = wire::cstr("");
        b.extend_from_slice(&max_rows.to_be_bytes());
        wire::msg(b'E', &b)
    };
    // 2147483647 made pgwire reserve room for that many rows (a failed
    // 55 GB allocation aborts the process); 0 and below mean all rows.
    for max_rows in [i32::MAX, 0, -1, i32::MIN] {
        let mut batch = wire::parse("", "SELECT kode FROM ref.kecamatan", &[]);
        batch.extend(wire::bind("", "", &[], &[], &[]));
        batch.extend(execute(max_rows));
        batch.extend(wire::sync());
        raw.send(&batch).await;
        let msgs = raw.until_ready().await;
        let rows = msgs.iter().filter(|m| m.tag == b'D').count();
        assert_eq!(rows, total, "max_rows {max_rows}: {msgs:?}");
        assert!(msgs.iter().any(|m| m.tag == b'C'), "max_rows {max_rows}");
    }
    // A positive limit suspends the portal, and the next Execute goes on.
    let mut batch = wire::parse("", "SELECT kode FROM ref.kecamatan", &[]);
    batch.extend(wire::bind("", "", &[], &[], &[]));
    batch.extend(execute(2));
    batch.extend(execute(0));
    batch.extend(wire::sync());
    raw.send(&batch).await;
    let msgs = raw.until_ready().await;
    let tags: String = msgs.iter().map(|m| m.tag as char).collect();
    assert!(tags.starts_with("12DDs"), "{tags}");
    assert_eq!(
        msgs.iter().filter(|m| m.tag == b'D').count(),
        total,
        "{tags}"
    );
}
