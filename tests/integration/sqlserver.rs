//! SQL Server links.
//!
//! `tautan check` on an unreachable SQL Server link and the refusal of
//! integrated authentication run everywhere. The rest needs a SQL Server
//! and runs only when `TAUTAN_MSSQL_URL` names one (an account that may
//! create a database and a login, e.g. `sa`):
//!
//! ```text
//! TAUTAN_MSSQL_URL='mssql://sa:Passw0rd!x@127.0.0.1:1433/tautan_uji?encrypt=off'
//! ```
//!
//! (`encrypt` = `strict` | `required` | `off`; `trust_cert_ca=<file>`.)
//! Without it those tests print a notice and pass.

use crate::common::*;

/// `tautan check` on a SQL Server link nobody listens for says the link
/// is down and why, and fails.
#[test]
fn check_says_an_unreachable_sql_server_link_is_down() {
    let dir = temp_dir("check-mssql");
    let config = dir.join("federation.toml");
    let text = config_text(
        "[links.keuangan]\nkind = \"sqlserver\"\nhost = \"127.0.0.1\"\nport = 1\n\
         database = \"keuangan\"\nuser = \"tautan_ro\"\npassword = \"x\"\nencrypt = \"off\"\n\
         connect_timeout_ms = 2000\n",
    )
    .replace(
        "path = \"files/dinsos\"",
        &format!("path = \"{}\"", repo().join("files/dinsos").display()),
    )
    .replace(
        "path = \"ref\"",
        &format!("path = \"{}\"", repo().join("ref").display()),
    );
    std::fs::write(&config, text).expect("config");
    let out = tautan_cmd()
        .args(["check", "--config"])
        .arg(&config)
        .env("TAUTAN_LOG", "error")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("link keuangan "))
        .unwrap_or_else(|| panic!("no line for the link: {stdout}"));
    assert!(
        line.starts_with("link keuangan (sqlserver): DOWN — ")
            && line.contains("is unavailable")
            && line.to_lowercase().contains("refused"),
        "{line}"
    );
}

/// Integrated (Windows) authentication, an unknown encryption mode and a
/// certificate fingerprint are config errors naming the file and the key.
#[test]
fn integrated_authentication_is_a_config_error() {
    let dir = temp_dir("mssql-winauth");
    for (extra, says) in [
        (
            "authentication = \"windows\"\n",
            "integrated (Windows/Kerberos) authentication",
        ),
        (
            "encrypt = \"maybe\"\n",
            "expected \"strict\", \"required\" or \"off\"",
        ),
        ("trust_cert_fingerprint = \"AB:CD\"\n", "trust_cert_ca"),
    ] {
        let config = dir.join("federation.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n\n[links.keuangan]\nkind = \"sqlserver\"\n\
                 host = \"h\"\ndatabase = \"d\"\nuser = \"u\"\n{extra}"
            ),
        )
        .expect("config");
        let out = tautan_cmd()
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {stderr}");
        assert!(
            stderr.contains("federation.toml:") && stderr.contains(says),
            "{extra}: {stderr}"
        );
    }
}

/// The gated suite's server, from `TAUTAN_MSSQL_URL`.
struct MsSql {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
    encrypt: String,
    trust_cert_ca: Option<String>,
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl MsSql {
    /// `mssql://user:password@host[:port]/database[?encrypt=…&trust_cert_ca=…]`,
    /// or `None` (with a notice) when the variable is unset.
    fn from_env(test: &str) -> Option<MsSql> {
        let Ok(url) = std::env::var("TAUTAN_MSSQL_URL") else {
            println!(
                "skipped {test}: TAUTAN_MSSQL_URL is not set (see README, \"SQL Server links\")"
            );
            return None;
        };
        let rest = url
            .strip_prefix("mssql://")
            .or_else(|| url.strip_prefix("sqlserver://"))
            .expect("TAUTAN_MSSQL_URL starts with mssql://");
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, rest) = rest
            .rsplit_once('@')
            .expect("user:password@ in TAUTAN_MSSQL_URL");
        let (user, password) = auth.split_once(':').expect("user:password");
        let (address, database) = rest.split_once('/').unwrap_or((rest, "tautan_uji"));
        let (host, port) = match address.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().expect("port")),
            None => (address, 1433),
        };
        let mut encrypt = "required".to_string();
        let mut trust_cert_ca = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("encrypt", v)) => encrypt = v.to_string(),
                Some(("trust_cert_ca", v)) => trust_cert_ca = Some(percent_decoded(v)),
                _ => panic!("unknown TAUTAN_MSSQL_URL parameter {pair}"),
            }
        }
        Some(MsSql {
            host: host.into(),
            port,
            user: percent_decoded(user),
            password: percent_decoded(password),
            database: if database.is_empty() {
                "tautan_uji".into()
            } else {
                database.into()
            },
            encrypt,
            trust_cert_ca,
        })
    }

    fn link_config(&self, user: &str, password: &str) -> tautan_sqlserver::SqlServerConfig {
        tautan_sqlserver::SqlServerConfig {
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            user: user.into(),
            password: Some(password.into()),
            schemas: vec![],
            encrypt: tautan_sqlserver::Encrypt::parse(&self.encrypt).expect("encrypt"),
            trust_cert_ca: self.trust_cert_ca.clone().map(Into::into),
            hostname_in_certificate: None,
            pool_size: 4,
            connect_timeout: std::time::Duration::from_secs(10),
            limits: Default::default(),
        }
    }

    /// Runs `batch` as the admin account in `database`.
    async fn admin(&self, database: &str, batch: &str) {
        let mut cfg = self.link_config(&self.user.clone(), &self.password.clone());
        cfg.database = database.into();
        tautan_sqlserver::install_crypto_provider();
        let mut client = tautan_sqlserver::pool::connect(&cfg.tds_config())
            .await
            .expect("admin connection to TAUTAN_MSSQL_URL");
        client
            .simple_query(batch)
            .await
            .expect("batch")
            .into_results()
            .await
            .unwrap_or_else(|e| panic!("{batch}: {e}"));
    }

    /// The fixtures: database, read-only login, and a table with one
    /// column of every type.
    async fn load(&self) {
        let db = &self.database;
        self.admin(
            "master",
            &format!(
                "IF DB_ID(N'{db}') IS NULL CREATE DATABASE [{db}];\n\
                 IF SUSER_ID(N'tautan_ro') IS NULL CREATE LOGIN tautan_ro WITH PASSWORD = N'Tautan-ro-1', CHECK_POLICY = OFF;"
            ),
        )
        .await;
        self.admin(db, FIXTURES).await;
    }

    fn link_toml(&self) -> String {
        format!(
            "[links.uji_ms]\nkind = \"sqlserver\"\nhost = \"{}\"\nport = {}\ndatabase = \"{}\"\n\
             user = \"tautan_ro\"\npassword = \"Tautan-ro-1\"\nencrypt = \"{}\"\n{}",
            self.host,
            self.port,
            self.database,
            self.encrypt,
            self.trust_cert_ca
                .as_ref()
                .map(|p| format!("trust_cert_ca = \"{p}\"\n"))
                .unwrap_or_default()
        )
    }
}

/// The same rows as the other links' `angka`, plus one column of every
/// SQL Server type.
const FIXTURES: &str = "
IF USER_ID(N'tautan_ro') IS NULL CREATE USER tautan_ro FOR LOGIN tautan_ro;
ALTER ROLE db_datareader ADD MEMBER tautan_ro;
IF SCHEMA_ID(N'uji') IS NULL EXEC(N'CREATE SCHEMA uji');
DROP TABLE IF EXISTS uji.angka;
DROP TABLE IF EXISTS uji.jenis;
CREATE TABLE uji.angka (id int PRIMARY KEY, grp int NOT NULL, nilai bigint, label nvarchar(20));
INSERT INTO uji.angka SELECT n, n % 7, n * 3, N'l' + CAST(n % 13 AS nvarchar(10))
  FROM (SELECT TOP 1000 ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_objects a CROSS JOIN sys.all_objects b) AS g;
CREATE TABLE uji.jenis (
  id int PRIMARY KEY, b bit, ti tinyint, si smallint, i int, bi bigint, d decimal(12,2),
  m money, sm smallmoney, r real, f float, c char(3), vc varchar(10), nc nchar(3), nvc nvarchar(max),
  t text, nt ntext, bn binary(2), vb varbinary(max), img image, dt date, tm time(7), dtt datetime,
  dt2 datetime2(7), sdt smalldatetime, dto datetimeoffset(7), u uniqueidentifier, x xml,
  sv sql_variant, h hierarchyid, g geography);
INSERT INTO uji.jenis VALUES (1, 1, 255, -32768, -2147483648, 9223372036854775807, -1234.56,
  922337203685477.5807, -214748.3648, 3.5, -1.25e300, 'abc', 'Jalan', N'Śl', N'Śląsk ''kutip'' 😀',
  'teks', N'ńteks', 0x0102, 0x00FF, 0xCAFE, '2024-02-29', '12:34:56.1234567', '2024-02-29 01:02:03.003',
  '2024-02-29 01:02:03.1234567', '2024-02-29 01:02:00', '2024-02-29 08:00:00.5 +07:00',
  '6F9619FF-8B86-D011-B42D-00C04FC964FF', N'<a>b</a>', CAST(42 AS int), hierarchyid::Parse('/1/2/'),
  geography::Point(-6.2, 106.8, 4326));
INSERT INTO uji.jenis (id) VALUES (2);
EXEC sys.sp_addextendedproperty N'MS_Description', N'Angka uji', N'SCHEMA', N'uji', N'TABLE', N'angka';
";

#[tokio::test]
async fn sql_server_types_pushdown_and_read_only() {
    let Some(ms) = MsSql::from_env("sql_server_types_pushdown_and_read_only") else {
        return;
    };
    ms.load().await;
    let server = start_with(&ms.link_toml()).await;
    let client = server.connect(WALIDATA).await;

    // Types: every column of row 1 as the wire's text.
    let rows = client
        .simple_query("SELECT * FROM uji_ms.uji.jenis WHERE id = 1")
        .await
        .expect("select");
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("row 1");
    let expected = [
        ("b", "t"),
        ("ti", "255"),
        ("si", "-32768"),
        ("i", "-2147483648"),
        ("bi", "9223372036854775807"),
        ("d", "-1234.56"),
        ("m", "922337203685477.5807"),
        ("sm", "-214748.3648"),
        ("r", "3.5"),
        ("c", "abc"),
        ("vc", "Jalan"),
        ("nc", "Śl "),
        ("nvc", "Śląsk 'kutip' 😀"),
        ("t", "teks"),
        ("nt", "ńteks"),
        ("bn", "\\x0102"),
        ("vb", "\\x00ff"),
        ("img", "\\xcafe"),
        ("dt", "2024-02-29"),
        ("tm", "12:34:56.123456"),
        ("dtt", "2024-02-29 01:02:03.003333"),
        ("dt2", "2024-02-29 01:02:03.123456"),
        ("sdt", "2024-02-29 01:02:00"),
        ("dto", "2024-02-29 01:00:00.5+00"),
        ("u", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        ("x", "<a>b</a>"),
        ("sv", "42"),
        ("h", "/1/2/"),
    ];
    for (column, value) in expected {
        assert_eq!(row.get(column), Some(value), "column {column}");
    }
    let nulls = client
        .simple_query("SELECT count(*) FROM uji_ms.uji.jenis WHERE id = 2 AND b IS NULL AND dto IS NULL AND u IS NULL")
        .await
        .expect("nulls");
    assert!(
        matches!(&nulls[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("1"))
    );

    // Pushdown on and off answer the same.
    for sql in [
        "SELECT grp, count(*), sum(nilai), min(id), max(nilai) FROM uji_ms.uji.angka GROUP BY grp ORDER BY grp",
        "SELECT a.id, b.nilai FROM uji_ms.uji.angka a JOIN uji_ms.uji.angka b ON a.id = b.id + 1 WHERE a.grp = 3 ORDER BY a.id LIMIT 5",
        "SELECT label, count(*) FROM uji_ms.uji.angka WHERE label = 'l1' GROUP BY label",
        "SELECT id FROM uji_ms.uji.angka WHERE id BETWEEN 10 AND 20 AND nilai % 2 = 0 ORDER BY id",
        "SELECT count(DISTINCT label) FROM uji_ms.uji.angka WHERE id > 500",
        "SELECT id, nilai / 7, nilai * 2 - 1 FROM uji_ms.uji.angka ORDER BY id DESC LIMIT 3 OFFSET 2",
        "SELECT count(*) FROM uji_ms.uji.jenis WHERE b AND ti > 200",
    ] {
        let mut answers = Vec::new();
        for setting in ["on", "off"] {
            client
                .simple_query(&format!("SET tautan.pushdown = {setting}"))
                .await
                .expect("set");
            answers.push(text_rows(&client, sql).await);
        }
        assert_eq!(answers[0], answers[1], "{sql}");
    }

    // Read-only: refused by the engine, the source unchanged.
    for sql in [
        "DELETE FROM uji_ms.uji.angka",
        "UPDATE uji_ms.uji.angka SET nilai = 0",
        "INSERT INTO uji_ms.uji.angka VALUES (0, 0, 0, 'x')",
        "DROP TABLE uji_ms.uji.angka",
    ] {
        let e = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "25006", "{sql}: {e}");
    }
    let count = text_rows(&client, "SELECT count(*) FROM uji_ms.uji.angka").await;
    assert_eq!(count, Ok(vec![vec![Some("1000".to_string())]]));

    // The link's own check: up, read-only (a db_datareader login).
    use tautan_connector::Link;
    let link =
        tautan_sqlserver::SqlServerLink::new("uji_ms", ms.link_config("tautan_ro", "Tautan-ro-1"))
            .expect("link");
    let probe = link.probe().await.expect("probe");
    assert!(probe.read_only, "{probe:?}");
    assert!(probe.excess_privileges.is_empty(), "{probe:?}");
    let tables = link.introspect().await.expect("introspect");
    let angka = tables.iter().find(|t| t.name == "angka").expect("angka");
    assert_eq!(angka.comment.as_deref(), Some("Angka uji"));
}
