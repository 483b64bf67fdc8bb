//! Connection and statement limits, login deadlines, startup options, and
//! a server that keeps accepting when the process runs out of file
//! descriptors.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{self, sqlstate, DINKES, WALIDATA};

/// Seconds of work for the server, little memory: a billion pairs, each
/// computed.
const SLOW_QUERY: &str = "SELECT sum(a.x * b.x) FROM generate_series(1, 40000) a(x) CROSS JOIN generate_series(1, 40000) b(x)";

/// The shipped config with `server` lines added to `[server]` and `dinkes`
/// lines to the demo analyst's user.
fn config(server: &str, dinkes: &str) -> String {
    common::config_text("")
        .replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:0\"\n{server}"),
            1,
        )
        .replacen(
            "roles = [\"analis_kesehatan\"]",
            &format!("roles = [\"analis_kesehatan\"]\n{dinkes}"),
            1,
        )
}

/// Reads until the server closes the socket (or `within` passes); what it
/// sent.
async fn read_to_close(socket: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, socket.read_to_end(&mut got)).await;
    match read {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_clients_are_told_53300_and_slots_come_back() {
    let server = common::start_config(&config("max_connections = 3", "")).await;
    let a = server.connect(WALIDATA).await;
    let b = server.connect(DINKES).await;
    // An unauthenticated socket holds a slot too: it holds a descriptor.
    let idle = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("tcp");
    let refused = server
        .refused_login(WALIDATA.0, WALIDATA.1, "a fourth connection is refused")
        .await;
    assert_eq!(sqlstate(&refused), "53300", "{refused:?}");
    assert!(
        common::message(&refused).contains("too many clients"),
        "{refused:?}"
    );
    // The refusal did not disturb the sessions already in.
    let n: i64 = a
        .query_one("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("a still works")
        .get(0);
    assert!(n > 0);
    drop(idle);
    drop(b);
    // Closing gives the slots back (the server notices the close at once).
    let mut back = None;
    for _ in 0..50 {
        if let Ok(c) = server.try_connect(DINKES.0, DINKES.1).await {
            back = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = back.expect("a slot came back after two connections closed");
    c.simple_query("SELECT 1").await.expect("new session works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_logs_in_is_closed_at_the_authentication_timeout() {
    let server = common::start_config(&config("authentication_timeout_ms = 400", "")).await;
    // Silent from the first byte.
    let mut silent = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("tcp");
    // Half a startup packet, then nothing.
    let mut half = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("tcp");
    half.write_all(&[0, 0, 0, 40, 0, 3, 0, 0])
        .await
        .expect("write");
    let started = Instant::now();
    for socket in [&mut silent, &mut half] {
        let closed = read_to_close(socket, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "the server closed the socket");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "closed after {took:?} (timeout 400 ms)"
    );
    // A client that does log in has its whole session, well past it.
    let c = server.connect(WALIDATA).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.simple_query("SELECT 1")
        .await
        .expect("logged-in session lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_connection_limit_is_theirs_alone() {
    let server = common::start_config(&config(
        "max_connections_per_user = 2",
        "max_connections = 1",
    ))
    .await;
    let first = server.connect(DINKES).await;
    let err = server
        .refused_login(
            DINKES.0,
            DINKES.1,
            "the analyst's second connection is refused",
        )
        .await;
    assert_eq!(sqlstate(&err), "53300");
    assert!(
        common::message(&err).contains("too many connections for role \"analis_dinkes\""),
        "{err:?}"
    );
    // The server-wide default per user (2) applies to the others.
    let _w1 = server.connect(WALIDATA).await;
    let _w2 = server.connect(WALIDATA).await;
    let err = server.try_connect(WALIDATA.0, WALIDATA.1).await.err();
    assert_eq!(err.as_ref().map(sqlstate).as_deref(), Some("53300"));
    // A wrong password is still a wrong password, not a full slot.
    let wrong = server
        .refused_login(DINKES.0, "not-the-password", "wrong password")
        .await;
    assert_eq!(sqlstate(&wrong), "28P01");
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = server.try_connect(DINKES.0, DINKES.1).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        again.is_some(),
        "the analyst's slot came back on disconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_concurrent_statements_queue_then_fail_with_53300() {
    let server = common::start_config(&config(
        "statement_queue_timeout_ms = 300",
        "max_statements = 1",
    ))
    .await;
    let a = server.connect(DINKES).await;
    let b = server.connect(DINKES).await;
    // An open cursor is a running statement: it holds the analyst's slot.
    a.batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT id FROM kesehatan.kesehatan.kunjungan")
        .await
        .expect("cursor");
    let started = Instant::now();
    let err = b
        .query("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect_err("no slot within 300 ms");
    assert_eq!(sqlstate(&err), "53300", "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for a slot first"
    );
    // Another user is not held up by the analyst's limit.
    let w = server.connect(WALIDATA).await;
    w.query("SELECT count(*) FROM ref.kecamatan", &[])
        .await
        .expect("other users run");
    // A statement that waits less than the queue timeout runs.
    let waiting = tokio::spawn(async move {
        b.query_one("SELECT count(*) FROM ref.kecamatan", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.batch_execute("CLOSE c; COMMIT").await.expect("close");
    let n = waiting
        .await
        .expect("task")
        .expect("ran once the slot was free");
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_options_apply_as_set_would() {
    let server = common::start().await;
    let (ok, out, err) = server.psql_env(
        WALIDATA,
        &[(
            "PGOPTIONS",
            "-c statement_timeout=150 --search-path=ref -c application_name=my\\ report",
        )],
        &[
            "-At",
            "-c",
            "SHOW statement_timeout",
            "-c",
            "SHOW search_path",
            "-c",
            "SELECT current_setting('application_name')",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["150", "ref", "my report"],
        "{out}"
    );
    // The timeout is in force, not merely shown.
    let (ok, _, err) = server.psql_env(
        WALIDATA,
        &[("PGOPTIONS", "-c statement_timeout=200")],
        &["-c", SLOW_QUERY],
    );
    assert!(!ok);
    assert!(err.contains("statement timeout"), "{err}");
    // Options that would make the session writable, or that are not
    // settings, end the login as PostgreSQL would.
    for bad in ["-c default_transaction_read_only=off", "-D /tmp"] {
        let (ok, _, err) = server.psql_env(WALIDATA, &[("PGOPTIONS", bad)], &["-c", "SELECT 1"]);
        assert!(!ok, "{bad} accepted");
        assert!(err.contains("FATAL"), "{bad}: {err}");
    }
}

/// `serve` in a process with few file descriptors: clients beyond them
/// make `accept()` fail, and the server must go on serving once they leave.
#[test]
fn running_out_of_file_descriptors_does_not_end_serve() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let bin = env!("CARGO_BIN_EXE_tautan");
    let cfg = common::shipped_config_file("fd-limit");
    let mut child = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -n 96; exec {bin} --config {} serve --listen 127.0.0.1:{port}",
                cfg.display()
            ),
        ])
        .env("TAUTAN_KEPENDUDUKAN_PASSWORD", "tautan-ro")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the server came up");
    // More sockets than the server has descriptors.
    let hogs: Vec<_> = (0..150)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "serve exited while out of descriptors"
    );
    drop(hogs);
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            WALIDATA.0,
            "-d",
            "tautan",
            "-c",
            "SELECT count(*) > 0 FROM ref.kecamatan",
        ])
        .env("PGPASSWORD", WALIDATA.1)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql");
    let _ = child.kill();
    let log = child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
        .unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "t",
        "psql after the flood: {}\nserver log tail: {}",
        String::from_utf8_lossy(&out.stderr),
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(
        log.contains("accept failed"),
        "the flood did exhaust descriptors (else this test shows nothing)"
    );
}
