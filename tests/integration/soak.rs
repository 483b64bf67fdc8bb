//! Short, bounded versions of the soak (`benches/soak.py` runs the long
//! one): sessions leave nothing behind, and many concurrent clients with a
//! mix of cross-agency joins, reference lookups and point queries all get
//! answers while the sources never see more connections than the caps.

use std::time::{Duration, Instant};

use crate::common::*;

/// The `tautan serve` binary on a free port, with the shipped config.
struct Process {
    child: std::process::Child,
    port: u16,
}

impl Process {
    fn start() -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let config = shipped_config_file("soak");
        let child = tautan_cmd()
            .env("TAUTAN_LOG", "warn")
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Process { child, port }
    }

    /// Resident memory in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Open TCP connections of this process to `port` (its sockets in
    /// /proc/<pid>/fd matched with /proc/net/tcp).
    fn connections_to(&self, port: u16) -> usize {
        let pid = self.child.id();
        let inodes: std::collections::HashSet<String> =
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter_map(|e| std::fs::read_link(e.path()).ok())
                        .filter_map(|l| {
                            l.to_string_lossy()
                                .strip_prefix("socket:[")
                                .and_then(|r| r.strip_suffix(']'))
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
        let remote = format!(":{port:04X}");
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|t| t.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
            .filter(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                // 01: ESTABLISHED (a closing socket is no session).
                cols.len() > 9
                    && cols[2].ends_with(&remote)
                    && cols[3] == "01"
                    && inodes.contains(cols[9])
            })
            .count()
    }

    async fn session(&self, (user, password): (&str, &str)) -> tokio_postgres::Client {
        let conn = format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=tautan",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .expect("login");
        tokio::spawn(connection);
        client
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_release_their_memory_when_they_end() {
    let server = Process::start();
    let round = |n: usize| {
        let server = &server;
        async move {
            for _ in 0..n {
                let client = server.session(DINKES).await;
                client
                    .simple_query("SELECT count(*) FROM pg_catalog.pg_class")
                    .await
                    .expect("query");
                drop(client);
            }
            // Let the server see the disconnects.
            tokio::time::sleep(Duration::from_millis(500)).await;
            server.rss_kib()
        }
    };
    let warm = round(50).await;
    let after = round(500).await;
    println!("sessions: RSS {warm} KiB after 50 sessions, {after} KiB after 500 more");
    assert!(
        after < warm + 40 * 1024,
        "500 sessions left {} KiB behind",
        after.saturating_sub(warm)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_are_all_answered_within_the_connection_caps() {
    let server = Process::start();
    let queries = [
        // Cross-agency join against reference data.
        "SELECT k.nama, count(*) FROM kesehatan.kesehatan.kunjungan v JOIN ref.kecamatan k ON k.kode = v.kecamatan_kode GROUP BY k.nama",
        "SELECT count(*) FROM kependudukan.public.penduduk_per_kecamatan p JOIN ref.kecamatan k ON k.kode = p.kecamatan_kode",
        // Reference lookup.
        "SELECT nama FROM ref.kecamatan WHERE kode = '31.71.01'",
        // Point queries on each agency.
        "SELECT diagnosa_icd10 FROM kesehatan.kesehatan.kunjungan WHERE id = 7",
        "SELECT jenis_kelamin FROM kependudukan.public.penduduk WHERE kecamatan_kode = '31.71.01' LIMIT 1",
    ];
    let clients = 40;
    let until = Instant::now() + Duration::from_secs(8);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = server.session(DINKES).await;
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut latencies) = (0usize, Vec::new(), Vec::new());
            let mut i = c;
            while Instant::now() < until {
                let sql = queries[i % queries.len()];
                i += 1;
                let started = Instant::now();
                match client.simple_query(sql).await {
                    Ok(_) => ok += 1,
                    Err(e) => errors.push(format!("{sql}: {}", sqlstate(&e))),
                }
                latencies.push(started.elapsed());
            }
            (ok, errors, latencies)
        }));
    }
    // Meanwhile the sources never see more than the pool caps: 16 (the
    // default pool_size) for the one PostgreSQL link, 16 for each of the
    // two MariaDB links.
    let (mut most_pg, mut most_my) = (0, 0);
    while Instant::now() < until {
        most_pg = most_pg.max(server.connections_to(5432));
        most_my = most_my.max(server.connections_to(3306));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut ok, mut errors, mut latencies) = (0, Vec::new(), Vec::new());
    for t in tasks {
        let (o, e, l) = t.await.expect("client task");
        ok += o;
        errors.extend(e);
        latencies.extend(l);
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "soak (short): {clients} clients, {ok} answers, {} errors, p50 {:?}, p99 {:?}, \
         connections at most {most_pg} to PostgreSQL, {most_my} to MariaDB",
        errors.len(),
        p(0.5),
        p(0.99)
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(most_pg <= 16, "{most_pg} connections to PostgreSQL");
    assert!(most_my <= 32, "{most_my} connections to MariaDB");
    assert!(most_pg > 0 && most_my > 0, "the sources were used");
}
