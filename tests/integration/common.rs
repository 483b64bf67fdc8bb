//! Starting a federation for one test, and talking to it and the sources.

use std::path::PathBuf;
use std::sync::Arc;

use tautan::config::FederationConfig;
use tautan::engine::Engine;
use tokio_postgres::{Client, NoTls};

/// Demo users and their passwords (verifiers in the shipped federation.toml).
pub const WALIDATA: (&str, &str) = ("walidata", "walidata-demo");
pub const DINKES: (&str, &str) = ("analis_dinkes", "dinkes-demo");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped config's users and grants, plus test links.
pub fn config_text(extra_links: &str) -> String {
    let shipped = std::fs::read_to_string(repo().join("federation.toml")).expect("federation.toml");
    let shipped = shipped
        .replace(
            "password_env = \"TAUTAN_KEPENDUDUKAN_PASSWORD\"",
            "password = \"tautan-ro\"",
        )
        .replace("listen = \"127.0.0.1:6432\"", "listen = \"127.0.0.1:0\"")
        // Absolute, so the config works from any folder (pulls, e2e).
        .replace(
            "\"keys/demo/",
            &format!("\"{}/keys/demo/", repo().display()),
        )
        .replace(
            "agreements_dir = \"agreements\"",
            &format!("agreements_dir = \"{}/agreements\"", repo().display()),
        );
    // Each test server that wants an audit log names its own folder; the
    // shipped one is the demo's.
    let shipped = without_section(
        &without_section(
            &without_section(&without_section(&shipped, "audit"), "monitoring"),
            "http",
        ),
        "flight",
    );
    format!(
        "{shipped}\n{extra_links}\n\
[links.uji_pg]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\ndatabase = \"tautan_uji\"\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\n\n\
[links.uji_my]\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nuser = \"tautan_ro\"\npassword = \"tautan-ro\"\ndatabases = [\"tautan_uji\"]\n"
    )
}

/// `text` without its `[name]` section (up to the next section header).
pub fn without_section(text: &str, name: &str) -> String {
    let header = format!("[{name}]\n");
    let Some(start) = text.find(&header) else {
        return text.to_string();
    };
    let rest = &text[start + header.len()..];
    let end = rest
        .find("\n[")
        .map(|at| start + header.len() + at + 1)
        .unwrap_or(text.len());
    format!("{}{}", &text[..start], &text[end..])
}

pub struct Server {
    pub port: u16,
    pub engine: Arc<Engine>,
    _task: tokio::task::JoinHandle<()>,
}

/// Every test that started a server also checks, when it ends, that the
/// guard never had to refuse a statement tautan built (see
/// `tautan_connector::sql::guard`): legitimate queries, and hostile input
/// sealed as values, must all pass it.
impl Drop for Server {
    fn drop(&mut self) {
        // Stop serving, so the engine and its pooled source connections go
        // (MariaDB allows 151 connections; ~60 test servers keep theirs).
        self._task.abort();
        let refused = tautan_connector::sql::refused_statements();
        if refused != 0 && !std::thread::panicking() {
            panic!(
                "the source SQL guard refused {refused} statement(s); see the tautan::guard log"
            );
        }
    }
}

/// Starts a server on an ephemeral port with the shipped config plus
/// `extra_links`.
pub async fn start_with(extra_links: &str) -> Server {
    start_config(&config_text(extra_links)).await
}

pub async fn start() -> Server {
    start_with("").await
}

impl Server {
    /// A tokio-postgres client logged in with SCRAM.
    pub async fn connect(&self, (user, password): (&str, &str)) -> Client {
        self.try_connect(user, password).await.expect("login")
    }

    pub async fn try_connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        let conn = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=tautan",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The error of a login that must be refused; panics with `why` if the
    /// login succeeds.
    pub async fn refused_login(
        &self,
        user: &str,
        password: &str,
        why: &str,
    ) -> tokio_postgres::Error {
        match self.try_connect(user, password).await {
            Ok(_) => panic!("{why}: the login succeeded"),
            Err(e) => e,
        }
    }

    /// Runs psql against the server; returns (exit ok, stdout, stderr).
    pub fn psql(&self, login: (&str, &str), args: &[&str]) -> (bool, String, String) {
        self.psql_env(login, &[], args)
    }

    /// [`Server::psql`] with extra environment variables (`PGSSLMODE`, ...).
    pub fn psql_env(
        &self,
        (user, password): (&str, &str),
        env: &[(&str, &str)],
        args: &[&str],
    ) -> (bool, String, String) {
        let out = std::process::Command::new("psql")
            .envs(env.iter().copied())
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                user,
                "-d",
                "tautan",
            ])
            .args(args)
            .env("PGPASSWORD", password)
            .output()
            .expect("psql runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

/// SQLSTATE of a client error.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no sqlstate: {e}"))
}

/// The server's message of a client error (`Display` says only "db error").
pub fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// A superuser connection to the local PostgreSQL.
pub async fn pg_admin(db: &str) -> Client {
    let password = std::env::var("PGPASSWORD").unwrap_or_default();
    let conn = format!("host=127.0.0.1 port=5432 user=postgres password='{password}' dbname={db}");
    let (client, connection) = tokio_postgres::connect(&conn, NoTls)
        .await
        .expect("postgres superuser");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A root connection to the local MariaDB.
pub async fn my_admin() -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some("root"))
        .pass(std::env::var("MYSQL_PWD").ok())
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.expect("mariadb root")
}

/// Statements MariaDB received from `user` since the general log was
/// cleared, from the general log table.
pub async fn my_log(conn: &mut mysql_async::Conn, needle: &str) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    conn.exec(
        "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log \
         WHERE command_type IN ('Query', 'Execute', 'Prepare') AND user_host LIKE 'tautan_ro%' \
         AND CONVERT(argument USING utf8mb4) LIKE ?",
        (format!("%{needle}%"),),
    )
    .await
    .expect("general log readable")
}

/// Turns on MariaDB's general log into mysql.general_log.
pub async fn my_log_on(conn: &mut mysql_async::Conn) {
    use mysql_async::prelude::Queryable;
    conn.query_drop("SET GLOBAL log_output = 'TABLE'")
        .await
        .expect("log_output");
    conn.query_drop("SET GLOBAL general_log = 1")
        .await
        .expect("general_log");
}

/// Statements PostgreSQL ran for tautan_ro containing `needle`, with the
/// rows each returned (pg_stat_statements).
pub async fn pg_statements(needle: &str) -> Vec<(String, i64)> {
    let admin = pg_admin("tautan_uji").await;
    admin
        .query(
            "SELECT s.query, s.rows FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid \
             WHERE r.rolname = 'tautan_ro' AND s.query LIKE '%' || $1 || '%'",
            &[&needle],
        )
        .await
        .expect("pg_stat_statements is installed (scripts/test.sh enables it)")
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// A fresh, empty folder for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tautan-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The shipped config plus test links, with snapshots under `data_dir`,
/// relative paths made absolute (so the file can live anywhere), and
/// `extra` (pull declarations) appended.
pub fn pull_config(data_dir: &std::path::Path, max_concurrent: usize, extra: &str) -> String {
    let repo = repo();
    config_text("")
        .replace(
            "data_dir = \"data\"",
            &format!("data_dir = \"{}\"", data_dir.display()),
        )
        .replace(
            "max_concurrent = 2",
            &format!("max_concurrent = {max_concurrent}"),
        )
        .replace(
            "path = \"files/dinsos\"",
            &format!("path = \"{}\"", repo.join("files/dinsos").display()),
        )
        .replace(
            "path = \"ref\"",
            &format!("path = \"{}\"", repo.join("ref").display()),
        )
        + extra
}

/// The shipped config as a file in a fresh folder of its own: absolute
/// paths, test links, and its audit log (and demo key) in that folder, so
/// `tautan serve` processes of several tests never share a log.
pub fn shipped_config_file(tag: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = temp_dir(&format!("{tag}-{n}"));
    let text = pull_config(&dir.join("data"), 2, "")
        + "\n[audit]\ndir = \"audit/log\"\nkey = \"audit/custodian.pem\"\ncreate_key = true\n";
    let path = dir.join("federation.toml");
    std::fs::write(&path, text).expect("config file");
    path
}

/// Starts a server on an ephemeral port from complete config text.
pub async fn start_config(text: &str) -> Server {
    let path = repo().join("federation.toml");
    let config = FederationConfig::parse(text, &path).expect("config");
    let engine = Engine::start(config).await.expect("engine");
    serve_engine(engine).await
}

/// Serves an already started engine on an ephemeral port.
pub async fn serve_engine(engine: Arc<Engine>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let e = engine.clone();
    let task = tokio::spawn(async move {
        let _ = tautan::server::postgres::serve(e, listener).await;
    });
    Server {
        port,
        engine,
        _task: task,
    }
}

/// The `tautan` binary built with these tests.
pub fn tautan_cmd() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_tautan"))
}

/// A TCP proxy to `target` that can be switched off: when off it refuses
/// new connections and cuts the open ones, like a source going down.
pub struct Proxy {
    pub port: u16,
    on: Arc<std::sync::atomic::AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let on = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let target = target.to_string();
        let (on2, gen2) = (on.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !on2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            on,
            generation,
        }
    }

    pub fn set(&self, up: bool) {
        self.on.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

/// What a [`FaultProxy`] does to the traffic it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything.
    Pass,
    /// Keeps every connection open and forwards nothing (new ones too):
    /// a source that hangs.
    Stall,
    /// Cuts every open connection and refuses new ones.
    Refuse,
    /// Forwards each chunk after this delay.
    Latency(std::time::Duration),
}

/// A loopback TCP proxy to `target` that injects [`Fault`]s.
pub struct FaultProxy {
    pub port: u16,
    mode: Arc<tokio::sync::watch::Sender<Fault>>,
}

impl FaultProxy {
    pub async fn start(target: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, _) = tokio::sync::watch::channel(Fault::Pass);
        let mode = Arc::new(tx);
        let target = target.to_string();
        let modes = mode.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let now = *modes.borrow();
                if now == Fault::Refuse {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let watch = modes.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::select! {
                        _ = pump(ri, wo, watch.clone()) => {}
                        _ = pump(ro, wi, watch.clone()) => {}
                    }
                });
            }
        });
        FaultProxy { port, mode }
    }

    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
    }
}

/// Copies `from` to `to` chunk by chunk, as the proxy's mode says.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: tokio::sync::watch::Receiver<Fault>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // While stalled, neither read nor write (the peer's kernel keeps
        // the connection up); leave when the mode changes.
        loop {
            let now = *mode.borrow_and_update();
            match now {
                Fault::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
                Fault::Refuse => return,
                _ => break,
            }
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let now = *mode.borrow();
        if let Fault::Latency(d) = now {
            tokio::time::sleep(d).await;
        }
        loop {
            let now = *mode.borrow();
            match now {
                Fault::Refuse => return,
                Fault::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
                _ => break,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Panics seen on each thread since the test binary started (a hook
/// installed on first use, chained to the default one). The in-process
/// server of a `#[tokio::test]` runs on the test's own thread, so a test
/// compares this thread's count before and after.
pub fn panics_on_this_thread() -> usize {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static COUNTS: OnceLock<Mutex<HashMap<std::thread::ThreadId, usize>>> = OnceLock::new();
    let counts = COUNTS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(counts) = COUNTS.get() {
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                *counts.entry(std::thread::current().id()).or_default() += 1;
            }
            previous(info);
        }));
        Mutex::new(HashMap::new())
    });
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    counts
        .get(&std::thread::current().id())
        .copied()
        .unwrap_or(0)
}

/// The test config with TLS on: a fresh self-signed certificate for
/// 127.0.0.1 (made with openssl) as `[server] tls_cert`/`tls_key`.
pub fn tls_config_text(tag: &str) -> String {
    let dir = temp_dir(tag);
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(status.status.success(), "{status:?}");
    config_text("").replace(
        "database = \"tautan\"",
        &format!(
            "database = \"tautan\"\ntls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            key.display()
        ),
    )
}

/// Makes sure the shipped config's web-service link (`bps`) has its
/// stand-in service on 127.0.0.1:6490 (`scripts/agency-api.py`): started
/// once for the test run if nothing listens there (`scripts/test.sh`
/// stops it afterwards).
pub fn agency_api() {
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    STARTED.get_or_init(|| {
        let up = || std::net::TcpStream::connect(("127.0.0.1", 6490)).is_ok();
        if up() {
            return;
        }
        // Kept for the whole run (other tests read the shipped link too).
        static SERVICE: std::sync::Mutex<Option<std::process::Child>> = std::sync::Mutex::new(None);
        let child = std::process::Command::new("python3")
            .arg(repo().join("scripts/agency-api.py"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 scripts/agency-api.py");
        *SERVICE.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        for _ in 0..200 {
            if up() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("scripts/agency-api.py does not listen on 6490");
    });
}

/// Every row of `sql` (simple query protocol) as text, or
/// `"SQLSTATE message"` when it fails.
pub async fn text_rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    match client.simple_query(sql).await {
        Ok(msgs) => Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect())
                }
                _ => None,
            })
            .collect()),
        Err(e) => Err(format!("{} {}", sqlstate(&e), message(&e))),
    }
}
