//! Every exchange is recorded (issue 16): logins, refused logins, each
//! statement's intent and completion, denials, through the PostgreSQL wire
//! protocol, `tautan query`, `tautan export` and pulls, against the real
//! sources; `system.audit` for the custodian and a producer's staff; a log
//! that cannot be written refuses statements; a server killed with SIGKILL
//! mid-statement leaves an intent without completion and nothing else lost.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tautan::audit::keys::{generate, write_keypair};
use tautan::audit::segment::list_segments;
use tautan::audit::{AuditLog, AuditOptions, Kind, Record, Trail};
use tautan::config::FederationConfig;
use tautan::engine::Engine;

use crate::common::{self, WALIDATA};

/// A user of the test config who works for the population registry's
/// producer (the dinsos demo verifier: password `dinsos-demo`).
const STAF_DUKCAPIL: (&str, &str) = ("staf_dukcapil", "dinsos-demo");

/// One statement read from both real sources (population × health visits).
const CROSS_LINK_JOIN: &str = "SELECT count(*) FROM kependudukan.public.penduduk p \
     JOIN kesehatan.kesehatan.kunjungan k ON k.nik = p.nik";

/// A folder with a fresh custodian key (`key.pem`, `key.pem.pub`).
fn keyed_dir(tag: &str) -> PathBuf {
    let dir = common::temp_dir(tag);
    write_keypair(&dir.join("key.pem"), &generate().expect("key")).expect("keypair");
    dir
}

/// The test config with `[audit]` in `dir/log` and a producer's staff user.
fn audited_config(dir: &Path) -> String {
    let shipped = common::pull_config(&dir.join("data"), 1, "");
    let dinsos_verifier = shipped
        .split("[users.dinsos]")
        .nth(1)
        .and_then(|rest| rest.split("password = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the dinsos demo verifier")
        .to_string();
    format!(
        "{shipped}\n[users.staf_dukcapil]\npassword = \"{dinsos_verifier}\"\nroles = []\nproducer_of = [\"kependudukan\"]\n\n\
         [audit]\ndir = \"{}\"\nkey = \"{}\"\n",
        dir.join("log").display(),
        dir.join("key.pem").display()
    )
}

/// Every record in the log, in order.
fn records(log: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    for seg in list_segments(log).expect("segments") {
        let text = std::fs::read_to_string(&seg.path).expect("segment");
        out.extend(
            text.lines()
                .map(|l| Record::parse(l.as_bytes()).expect("record")),
        );
    }
    out
}

/// Waits until `pred` holds for the log's records (completions of a
/// statement the client abandoned are written in the background).
async fn wait_for(log: &Path, what: &str, pred: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = records(log);
        if pred(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn field<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.fields.get(key).and_then(Value::as_str)
}

/// The intent whose `sql` contains `needle`, and its completion.
fn statement<'a>(all: &'a [Record], needle: &str) -> (&'a Record, Option<&'a Record>) {
    let intent = all
        .iter()
        .find(|r| r.kind == Kind::Intent && field(r, "sql").is_some_and(|s| s.contains(needle)))
        .unwrap_or_else(|| panic!("no intent for {needle}: {all:#?}"));
    let completion = all.iter().find(|r| {
        r.kind == Kind::Completion
            && r.fields.get("intent").and_then(Value::as_u64) == Some(intent.seq)
    });
    (intent, completion)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_statement_is_recorded_with_who_what_and_how_it_ended() {
    let dir = keyed_dir("recorded-wire");
    let log = dir.join("log");
    let server = common::start_config(&audited_config(&dir)).await;

    // A login with an application name and a purpose (startup parameter).
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(server.port)
        .user(WALIDATA.0)
        .password(WALIDATA.1)
        .dbname("tautan")
        .application_name("uji-audit")
        .options("-c tautan.purpose=evaluasi\\ stunting");
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.expect("login");
    tokio::spawn(conn);

    // A cross-link statement read from both real sources.
    let rows = client.query(CROSS_LINK_JOIN, &[]).await.expect("join");
    assert_eq!(rows.len(), 1);
    // A bound parameter, recorded as its value.
    let kode = "31.71.01";
    let filtered = client
        .query(
            "SELECT nama FROM kependudukan.public.penduduk WHERE kecamatan_kode = $1",
            &[&kode],
        )
        .await
        .expect("parameter");
    // A statement that fails at the source's end of the engine.
    let failed = client
        .query("SELECT 1 / (count(*) - count(*)) FROM ref.kecamatan", &[])
        .await
        .expect_err("division by zero");
    assert_eq!(common::sqlstate(&failed), "22012");
    drop(client);

    // A denied column, from another user.
    let dinkes = server.connect(common::DINKES).await;
    let denied = dinkes
        .query("SELECT nik FROM kependudukan.public.penduduk", &[])
        .await
        .expect_err("nik is not granted");
    assert_eq!(common::sqlstate(&denied), "42501");
    // A write attempt.
    let write = dinkes
        .batch_execute("DELETE FROM kesehatan.kesehatan.kunjungan")
        .await
        .expect_err("read-only");
    assert_eq!(common::sqlstate(&write), "25006");
    drop(dinkes);
    // A wrong password and an unknown user.
    assert!(server
        .try_connect(WALIDATA.0, "not-the-password")
        .await
        .is_err());
    assert!(server.try_connect("nobody", "x").await.is_err());

    let all = wait_for(&log, "two logouts", |r| {
        r.iter().filter(|r| r.kind == Kind::Logout).count() >= 2
    })
    .await;

    let login = all
        .iter()
        .find(|r| r.kind == Kind::Login && field(r, "user") == Some("walidata"))
        .expect("login record");
    assert_eq!(field(login, "door"), Some("postgres"));
    assert_eq!(field(login, "application"), Some("uji-audit"));
    assert_eq!(field(login, "purpose"), Some("evaluasi stunting"));
    assert!(field(login, "client").is_some_and(|c| c.starts_with("127.0.0.1:")));

    let (intent, completion) = statement(&all, "kunjungan");
    assert_eq!(field(intent, "decision"), Some("allowed"));
    assert_eq!(field(intent, "purpose"), Some("evaluasi stunting"));
    let read: Vec<&str> = intent.fields["reads"]
        .as_array()
        .expect("reads")
        .iter()
        .filter_map(|r| r["table"].as_str())
        .collect();
    assert!(read.contains(&"kependudukan.public.penduduk"), "{read:?}");
    assert!(read.contains(&"kesehatan.kesehatan.kunjungan"), "{read:?}");
    let completion = completion.expect("completion of the join");
    assert!(completion.seq > intent.seq);
    assert_eq!(field(completion, "sqlstate"), Some("00000"));
    assert_eq!(completion.fields["rows"].as_u64(), Some(1));
    let sent: Vec<&str> = completion.fields["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["link"].as_str())
        .collect();
    assert!(
        sent.contains(&"kependudukan") && sent.contains(&"kesehatan"),
        "{sent:?}"
    );
    for l in completion.fields["links"].as_array().expect("links") {
        assert!(
            l["sql"].as_str().is_some_and(|s| s.starts_with("SELECT")),
            "{l}"
        );
    }

    let (intent, completion) = statement(&all, "kecamatan_kode = $1");
    assert_eq!(intent.fields["params"], serde_json::json!([kode]));
    let completion = completion.expect("completion of the filter");
    assert_eq!(
        completion.fields["rows"].as_u64(),
        Some(filtered.len() as u64)
    );
    // The value is bound at the source too (the link got it as a literal
    // of the statement tautan built).
    assert!(completion.fields["links"][0]["sql"]
        .as_str()
        .is_some_and(|s| s.contains(kode)));

    let (_, completion) = statement(&all, "count(*) - count(*)");
    assert_eq!(completion.and_then(|c| field(c, "sqlstate")), Some("22012"));

    let denials: Vec<&Record> = all.iter().filter(|r| r.kind == Kind::Denied).collect();
    assert_eq!(denials.len(), 2, "{denials:#?}");
    assert_eq!(field(denials[0], "user"), Some("analis_dinkes"));
    assert_eq!(field(denials[0], "sqlstate"), Some("42501"));
    assert!(field(denials[0], "reason").is_some_and(|r| r.contains("nik")));
    assert_eq!(field(denials[1], "sqlstate"), Some("25006"));
    // Nothing denied was ever an intent.
    assert!(
        !all.iter()
            .any(|r| r.kind == Kind::Intent
                && field(r, "sql").is_some_and(|s| s.contains("nik FROM")))
    );

    let failures: Vec<(&str, &str)> = all
        .iter()
        .filter(|r| r.kind == Kind::LoginFailed)
        .map(|r| {
            (
                field(r, "user").unwrap_or(""),
                field(r, "reason").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [("walidata", "wrong password"), ("nobody", "unknown user")]
    );

    // No secret is in the log: link passwords, the users' passwords.
    let text: String = list_segments(&log)
        .expect("segments")
        .iter()
        .map(|s| std::fs::read_to_string(&s.path).expect("segment"))
        .collect();
    for secret in [
        "tautan-ro",
        "walidata-demo",
        "dinkes-demo",
        "not-the-password",
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }

    // system.audit: the custodian sees everything, a producer's staff
    // only what read their link, anyone else nothing.
    let custodian = server.connect(WALIDATA).await;
    let kinds = custodian
        .query(
            "SELECT kind, count(*) FROM system.audit GROUP BY kind ORDER BY kind",
            &[],
        )
        .await
        .expect("custodian reads the log");
    let count_of = |k: &str| {
        kinds
            .iter()
            .find(|r| r.get::<_, String>(0) == k)
            .map(|r| r.get::<_, i64>(1))
            .unwrap_or(0)
    };
    assert!(count_of("intent") >= 3 && count_of("denied") == 2 && count_of("login_failed") == 2);
    let staff = server.connect(STAF_DUKCAPIL).await;
    let seen = staff
        .query(
            "SELECT kind, \"user\", coalesce(tables, links) FROM system.audit",
            &[],
        )
        .await
        .expect("producer staff read their records");
    assert!(!seen.is_empty());
    for row in &seen {
        let kind: String = row.get(0);
        let names: String = row.get(2);
        assert!(kind == "intent" || kind == "completion", "{kind}");
        assert!(names.contains("kependudukan"), "{names}");
    }
    let refused = server
        .connect(common::DINKES)
        .await
        .query("SELECT count(*) FROM system.audit", &[])
        .await
        .expect_err("a data user does not read the log");
    assert_eq!(common::sqlstate(&refused), "42501");
    // ...and that refusal is itself on record, as a denial.
    let all = wait_for(&log, "the refused read of the log", |r| {
        r.iter().any(|r| {
            r.kind == Kind::Denied && field(r, "sql").is_some_and(|s| s.contains("system.audit"))
        })
    })
    .await;
    assert!(!all.iter().any(|r| r.kind == Kind::Intent
        && field(r, "user") == Some("analis_dinkes")
        && field(r, "sql").is_some_and(|s| s.contains("system.audit"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_refuses_statements() {
    let dir = keyed_dir("recorded-unwritable");
    let text = audited_config(&dir);
    let config =
        FederationConfig::parse(&text, &common::repo().join("federation.toml")).expect("config");
    let mut options = AuditOptions::new(
        tautan::audit::keys::read_signing_key(&dir.join("key.pem")).expect("key"),
    );
    // Writes beyond record 3 fail as a full disk would.
    options.fail_writes_after = Some(3);
    let log = Arc::new(AuditLog::open(&dir.join("log"), options).expect("log"));
    let engine = Engine::start_recording(config, Trail::new(log))
        .await
        .expect("engine");
    let server = common::serve_engine(engine).await;
    let client = server.connect(WALIDATA).await; // record 1: the login
                                                 // Records 2 and 3: this statement's intent and completion; the source
                                                 // sees it (so the probe below could see an unrecorded one).
    client
        .query(
            "SELECT count(*) AS tautan_recorded_probe FROM kependudukan.public.penduduk",
            &[],
        )
        .await
        .expect("recorded");
    assert!(!common::pg_statements("tautan_recorded_probe")
        .await
        .is_empty());
    // The next intent is the write that fails: nothing runs from then on.
    let e = client
        .query(
            "SELECT count(*) AS tautan_unrecorded_probe FROM kependudukan.public.penduduk",
            &[],
        )
        .await
        .expect_err("refused");
    assert_eq!(common::sqlstate(&e), "58030");
    assert!(
        common::message(&e).contains("audit log"),
        "{}",
        common::message(&e)
    );
    // ...and the source never saw it.
    assert!(common::pg_statements("tautan_unrecorded_probe")
        .await
        .is_empty());
    // A new login is refused too.
    assert!(server.try_connect(WALIDATA.0, WALIDATA.1).await.is_err());
    // Operations see it: /healthz answers 503 and says why.
    let (status, body) = http_get(ops(server.engine.clone()).await, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("failed"), "{body}");
}

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn serve(config: &Path, port: u16) -> std::process::Child {
    let child = common::tautan_cmd()
        .args(["--config"])
        .arg(config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tautan serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tautan serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// `tautan audit verify --json`, which must find the log intact (exit 0).
fn verify(dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tautan"))
        .args(["audit", "verify", "--json", "--dir"])
        .arg(dir.join("log"))
        .arg("--key")
        .arg(dir.join("key.pem.pub"))
        .output()
        .expect("verify");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert!(report["first_bad"].is_null(), "{report:#}");
    assert_eq!(
        report["findings"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_statement_leaves_its_intent_open_and_the_cli_paths_are_recorded() {
    let dir = keyed_dir("recorded-kill");
    let config = dir.join("federation.toml");
    std::fs::write(&config, audited_config(&dir)).expect("config");
    let port = free_port();
    let mut server = serve(&config, port);

    // A statement that runs until the server dies.
    let mut psql = Command::new("psql")
        .env("PGPASSWORD", WALIDATA.1)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            WALIDATA.0,
            "-d",
            "tautan",
            "-c",
            "SELECT count(*) FROM generate_series(1, 100000000000) AS g(long_running_probe)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql");
    let log = dir.join("log");
    let before = wait_for(&log, "the long statement's intent", |r| {
        r.iter().any(|r| {
            r.kind == Kind::Intent
                && field(r, "sql").is_some_and(|s| s.contains("long_running_probe"))
        })
    })
    .await;
    server.kill().expect("kill -9");
    let _ = server.wait();
    let _ = psql.wait();

    let report = verify(&dir);
    let (intent, _) = statement(&before, "long_running_probe");
    let open: Vec<u64> = report["open_intents"]
        .as_array()
        .expect("open intents")
        .iter()
        .filter_map(|i| i["seq"].as_u64())
        .collect();
    assert_eq!(open, [intent.seq], "{report:#}");
    // Nothing acknowledged before the kill is lost.
    let after = records(&log);
    assert!(after.len() >= before.len());
    assert_eq!(&after[..before.len()], &before[..]);

    // The CLI paths, on the recovered log.
    let out = common::tautan_cmd()
        .args(["--config"])
        .arg(&config)
        .args([
            "query",
            "-u",
            "walidata",
            "SELECT count(*) AS cli_query_probe FROM ref.kecamatan",
        ])
        .output()
        .expect("tautan query");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = dir.join("export.csv");
    let out = common::tautan_cmd()
        .args(["--config"])
        .arg(&config)
        .args(["export", "-u", "analis_dinkes", "-o"])
        .arg(&csv)
        .arg("SELECT kecamatan_kode AS cli_export_probe FROM kependudukan.public.penduduk")
        .output()
        .expect("tautan export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::tautan_cmd()
        .args(["--config"])
        .arg(&config)
        .args(["pull", "kunjungan_kecamatan"])
        .output()
        .expect("tautan pull");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let all = records(&log);
    let (intent, completion) = statement(&all, "cli_query_probe");
    assert_eq!(field(intent, "door"), Some("query"));
    assert_eq!(completion.and_then(|c| c.fields["rows"].as_u64()), Some(1));
    let (intent, completion) = statement(&all, "cli_export_probe");
    assert_eq!(field(intent, "door"), Some("export"));
    assert_eq!(field(intent, "user"), Some("analis_dinkes"));
    let exported = std::fs::read_to_string(&csv).expect("csv").lines().count() as u64 - 1;
    assert_eq!(
        completion.and_then(|c| c.fields["rows"].as_u64()),
        Some(exported)
    );
    let (intent, completion) = statement(&all, "date_trunc('month', v.waktu)");
    assert_eq!(field(intent, "door"), Some("pull:kunjungan_kecamatan"));
    let completion = completion.expect("the pull's completion");
    assert!(completion.fields["links"][0]["link"].as_str() == Some("kesehatan"));

    // Restarted, the server still runs statements; the killed one stays
    // the only open intent.
    let mut server = serve(&config, port);
    let client = {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(port)
            .user(WALIDATA.0)
            .password(WALIDATA.1)
            .dbname("tautan");
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.expect("login");
        tokio::spawn(conn);
        client
    };
    client.query("SELECT 1", &[]).await.expect("after restart");
    drop(client);
    // SIGTERM: a clean stop (shutdown record, last checkpoint).
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    let report = verify(&dir);
    assert_eq!(
        report["open_intents"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert!(records(&log).iter().any(|r| r.kind == Kind::Shutdown));
}

/// `GET path` on the operations listener: (status, body).
async fn http_get(port: u16, path: &str) -> (u16, String) {
    let reply = crate::http::curl(port, path, &[]).await;
    (reply.status, reply.text())
}

/// Starts the operations listener of `engine` on a free port.
async fn ops(engine: Arc<Engine>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(tautan::server::ops::serve(engine, listener));
    port
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_statements_links_denials_and_the_audit_log() {
    let dir = keyed_dir("recorded-metrics");
    let server = common::start_config(&audited_config(&dir)).await;
    let port = ops(server.engine.clone()).await;

    let client = server.connect(WALIDATA).await;
    let rows = client.query(CROSS_LINK_JOIN, &[]).await.expect("join");
    assert_eq!(rows.len(), 1);
    let dinkes = server.connect(common::DINKES).await;
    dinkes
        .query("SELECT nik FROM kependudukan.public.penduduk", &[])
        .await
        .expect_err("denied");
    assert!(server.try_connect(WALIDATA.0, "wrong").await.is_err());

    let (status, text) = http_get(port, "/metrics").await;
    assert_eq!(status, 200);
    let at_least = |series: &str, min: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(v >= min, "{series} = {v} < {min}\n{text}");
    };
    at_least(
        "tautan_statements_total{user=\"walidata\",outcome=\"ok\"}",
        1.0,
    );
    at_least(
        "tautan_denials_total{user=\"analis_dinkes\",sqlstate=\"42501\"}",
        1.0,
    );
    at_least("tautan_logins_total{outcome=\"wrong_password\"}", 1.0);
    at_least("tautan_logins_total{outcome=\"ok\"}", 2.0);
    // The join read every NIK of both tables from their links.
    let population: i64 = common::pg_admin("kependudukan")
        .await
        .query_one("SELECT count(*) FROM penduduk", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        sample(&text, "tautan_link_rows_total{link=\"kependudukan\"}"),
        Some(population as f64),
        "{text}"
    );
    at_least("tautan_link_rows_total{link=\"kesehatan\"}", 1.0);
    at_least(
        "tautan_db_client_operation_duration_seconds_count{db_system_name=\"postgresql\",db_namespace=\"kependudukan\"}",
        1.0,
    );
    at_least(
        "tautan_db_client_operation_duration_seconds_count{db_system_name=\"mysql\",db_namespace=\"kesehatan\"}",
        1.0,
    );
    at_least(
        "tautan_link_up{link=\"kependudukan\",kind=\"postgres\"}",
        1.0,
    );
    at_least("tautan_audit_records", 5.0);
    at_least("tautan_audit_append_duration_seconds_count", 5.0);
    assert!(text.ends_with("# EOF\n"));

    let (status, body) = http_get(port, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["audit"], "ok");
    assert_eq!(health["links"]["kependudukan"], "up");
}

/// The number in the report cell whose HTML starts with `marker` (the
/// first `<td class="n"…>` after it, or the text up to `<`).
fn number_after(html: &str, marker: &str) -> u64 {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the report"));
    let rest = &html[at + marker.len()..];
    let digits: String = rest
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_what_the_log_holds_and_renders_in_chromium() {
    let dir = keyed_dir("recorded-report");
    let log = dir.join("log");
    let server = common::start_config(&audited_config(&dir)).await;
    let walidata = server.connect(WALIDATA).await;
    for _ in 0..3 {
        walidata.query(CROSS_LINK_JOIN, &[]).await.expect("join");
    }
    let dinkes = server.connect(common::DINKES).await;
    dinkes
        .query("SELECT * FROM kesehatan.kesehatan.kunjungan LIMIT 7", &[])
        .await
        .expect("visits");
    dinkes
        .query("SELECT nik FROM kependudukan.public.penduduk", &[])
        .await
        .expect_err("denied");
    assert!(server.try_connect("walidata", "nope").await.is_err());
    drop((walidata, dinkes));
    // The period's records are covered by a signed checkpoint.
    let all = wait_for(&log, "both logouts", |r| {
        r.iter().filter(|r| r.kind == Kind::Logout).count() >= 2
    })
    .await;
    let checkpoint = server
        .engine
        .trail()
        .log()
        .expect("log")
        .checkpoint_now()
        .await
        .expect("checkpoint")
        .expect("one");

    // What the report must say, counted here from the records.
    let intents: Vec<&Record> = all.iter().filter(|r| r.kind == Kind::Intent).collect();
    let rows: u64 = all
        .iter()
        .filter(|r| r.kind == Kind::Completion)
        .filter_map(|r| r.fields["rows"].as_u64())
        .sum();
    let denied = all.iter().filter(|r| r.kind == Kind::Denied).count() as u64;
    let pair = |producer: &str, user: &str| {
        intents
            .iter()
            .filter(|r| field(r, "user") == Some(user))
            .filter(|r| {
                r.fields["reads"].as_array().is_some_and(|reads| {
                    reads.iter().any(|t| {
                        t["table"]
                            .as_str()
                            .is_some_and(|t| t.starts_with(&format!("{producer}.")))
                    })
                })
            })
            .count() as u64
    };
    assert_eq!(pair("kependudukan", "walidata"), 3);

    let today = chrono::Utc::now().date_naive().to_string();
    for (lang, word) in [
        ("id", "Laporan Pertukaran Data"),
        ("en", "Data Exchange Report"),
    ] {
        let html_path = dir.join(format!("laporan-{lang}.html"));
        let out = common::tautan_cmd()
            .args([
                "report", "--from", &today, "--to", &today, "--lang", lang, "--dir",
            ])
            .arg(&log)
            .arg("-o")
            .arg(&html_path)
            .output()
            .expect("tautan report");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let html = std::fs::read_to_string(&html_path).expect("report");
        assert!(html.contains(word));
        assert_eq!(
            number_after(&html, "id=\"total-statements\""),
            intents.len() as u64
        );
        assert_eq!(number_after(&html, "id=\"total-rows\""), rows);
        assert_eq!(number_after(&html, "id=\"total-denials\""), denied);
        assert_eq!(number_after(&html, "id=\"total-failed-logins\""), 1);
        for (producer, user) in [
            ("kependudukan", "walidata"),
            ("kesehatan", "walidata"),
            ("kesehatan", "analis_dinkes"),
        ] {
            assert_eq!(
                number_after(
                    &html,
                    &format!(
                        "data-producer=\"{producer}\" data-user=\"{user}\"><td>{}",
                        &today[..7]
                    )
                ),
                pair(producer, user),
                "{producer} × {user}"
            );
        }
        assert!(html.contains("data-dataset=\"kesehatan.kesehatan.kunjungan\""));
        assert!(html.contains("<svg class=\"chart\""), "charts");
        assert!(
            html.contains(&checkpoint.sig),
            "the covering checkpoint's signature"
        );
        assert!(html.contains("PKS-2026-017"), "the agreements");

        // Rendered by a real browser, where one is installed.
        let pdf = html_path.with_extension("pdf");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.contains("no Chromium") {
            eprintln!("notice: no Chromium here: the report's PDF and screenshot are not checked");
            continue;
        }
        assert!(pdf.exists(), "{stdout}");
        let head = std::fs::read(&pdf).expect("pdf");
        assert!(head.starts_with(b"%PDF"), "a PDF");
        let shot = dir.join(format!("laporan-{lang}.png"));
        let status = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1024,2400",
            ])
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", html_path.display()))
            .output()
            .expect("chromium");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let png = std::fs::read(&shot).expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "a screenshot of a rendered page"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_door_is_recorded_like_the_wire() {
    let dir = keyed_dir("recorded-http");
    let log = dir.join("log");
    let server = common::start_config(&audited_config(&dir)).await;
    let port = crate::http::door(server.engine.clone()).await;
    let auth = format!("{}:{}", WALIDATA.0, WALIDATA.1);
    let reply = crate::http::curl(
        port,
        "/v1/sql",
        &[
            "-u",
            &auth,
            "-A",
            "uji-http/1.0",
            "-H",
            "X-Tautan-Purpose: evaluasi stunting",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"sql": "SELECT nama FROM kependudukan.public.penduduk WHERE kecamatan_kode = $1", "params": ["31.71.01"]}"#,
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let returned = reply.json().as_array().map(Vec::len).unwrap_or_default() as u64;
    assert!(returned > 0);
    let refused = crate::http::curl(
        port,
        "/v1/sql",
        &["-u", "walidata:salah", "--data-binary", "SELECT 1"],
    )
    .await;
    assert_eq!(refused.status, 401);
    let denied = crate::http::curl(
        port,
        "/v1/datasets/kependudukan.public.penduduk?select=nik",
        &["-u", &format!("{}:{}", common::DINKES.0, common::DINKES.1)],
    )
    .await;
    assert_eq!(denied.status, 403);

    let all = wait_for(&log, "the HTTP statement's completion and logouts", |r| {
        r.iter().any(|r| r.kind == Kind::Completion)
            && r.iter().filter(|r| r.kind == Kind::Logout).count() >= 2
    })
    .await;
    let login = all
        .iter()
        .find(|r| r.kind == Kind::Login && field(r, "user") == Some("walidata"))
        .expect("login record");
    assert_eq!(field(login, "door"), Some("http"));
    assert_eq!(field(login, "application"), Some("uji-http/1.0"));
    assert_eq!(field(login, "purpose"), Some("evaluasi stunting"));
    assert!(field(login, "client").is_some_and(|c| c.starts_with("127.0.0.1:")));
    let (intent, completion) = statement(&all, "kecamatan_kode = $1");
    assert_eq!(field(intent, "door"), Some("http"));
    assert_eq!(intent.fields["params"], serde_json::json!(["31.71.01"]));
    let completion = completion.expect("completion");
    assert_eq!(completion.fields["rows"].as_u64(), Some(returned));
    assert!(completion.fields["links"][0]["sql"]
        .as_str()
        .is_some_and(|s| s.contains("31.71.01")));
    let failed = all
        .iter()
        .find(|r| r.kind == Kind::LoginFailed)
        .expect("the refused login");
    assert_eq!(field(failed, "door"), Some("http"));
    assert_eq!(field(failed, "reason"), Some("wrong password"));
    let denial = all
        .iter()
        .find(|r| r.kind == Kind::Denied)
        .expect("the denied dataset read");
    assert_eq!(field(denial, "door"), Some("http"));
    assert_eq!(field(denial, "sqlstate"), Some("42501"));
    // No password anywhere in the log.
    let text: String = list_segments(&log)
        .expect("segments")
        .iter()
        .map(|s| std::fs::read_to_string(&s.path).expect("segment"))
        .collect();
    assert!(!text.contains("walidata-demo") && !text.contains("salah"));
}
