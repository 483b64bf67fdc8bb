//! `federation.toml`: links, reference data, users, roles and grants.
//!
//! Parsing is serde + toml with unknown keys refused, so a typo is an error
//! rather than a silently ignored setting. Every error names the file, the
//! line and the key ([`ConfigError`]). Secrets can live in the environment:
//! `password_env = "VAR"` instead of `password = "..."`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// The whole federation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// The PostgreSQL wire endpoint.
    #[serde(default)]
    pub server: ServerConfig,
    /// Agency data sources by name; the name is the catalog users query.
    #[serde(default)]
    pub links: BTreeMap<String, Spanned<LinkConfig>>,
    /// Custodian reference data (the `ref` schema).
    #[serde(default)]
    pub reference: Option<ReferenceConfig>,
    /// Data users, by login name.
    #[serde(default)]
    pub users: BTreeMap<String, Spanned<UserConfig>>,
    /// What each role may read.
    #[serde(default)]
    pub grants: Vec<Spanned<GrantConfig>>,
    /// Where materialized pulls keep their snapshots.
    #[serde(default)]
    pub materialize: MaterializeConfig,
    /// Scheduled materialized pulls, by name (`mat.<name>`).
    #[serde(default)]
    pub pulls: BTreeMap<String, Spanned<PullConfig>>,
    /// The tamper-evident audit log every login and statement is recorded
    /// in (and the defaults of `tautan audit …`).
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// The operations HTTP listener (`/metrics`, `/healthz`); off when absent.
    #[serde(default)]
    pub monitoring: Option<MonitoringConfig>,
    /// The HTTP data door (`POST /v1/sql`, `GET /v1/datasets/...`); off
    /// when absent.
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// The Arrow Flight SQL door (ADBC, the Flight SQL JDBC driver); off
    /// when absent.
    #[serde(default)]
    pub flight: Option<FlightConfig>,
    /// Governed access: where the pseudonym key comes from.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Folder the config was read from; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file the config was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// The text it was parsed from (for error lines found after parsing).
    #[serde(skip)]
    pub source: Option<String>,
}

/// Where and how tautan listens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the PostgreSQL wire endpoint.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Name of the federation as a database (the default catalog).
    #[serde(default = "default_database")]
    pub database: String,
    /// PEM certificate chain for TLS (with `tls_key`); without both,
    /// clients asking for TLS are told `N` and continue in clear text.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Memory all statements together may hold, in MiB (sorts,
    /// aggregates and joins spill to disk beyond their share).
    #[serde(default = "default_memory_limit_mb")]
    pub memory_limit_mb: usize,
    /// Memory one session's statement may hold, in MiB.
    #[serde(default = "default_query_memory_mb")]
    pub query_memory_mb: usize,
    /// Where spilled sorts and aggregates go (the system's temporary
    /// folder when unset).
    #[serde(default)]
    pub spill_dir: Option<PathBuf>,
    /// Longest any statement may run, in milliseconds, whatever a session
    /// sets (0: no maximum).
    #[serde(default)]
    pub statement_timeout_max_ms: u64,
    /// Connections open at once, logged in or not (PostgreSQL's
    /// `max_connections`); one more is told 53300 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections one user may hold at once, unless the user sets their
    /// own `max_connections` (0: no limit but the server's).
    #[serde(default = "default_max_connections_per_user")]
    pub max_connections_per_user: usize,
    /// Statements one user may run at once across their sessions (an open
    /// cursor counts), unless the user sets their own `max_statements`.
    #[serde(default = "default_max_statements_per_user")]
    pub max_statements_per_user: usize,
    /// How long a statement waits for one of its user's slots before
    /// failing with 53300, in milliseconds.
    #[serde(default = "default_statement_queue_timeout_ms")]
    pub statement_queue_timeout_ms: u64,
    /// How long a client has to log in, TLS negotiation included, in
    /// milliseconds (PostgreSQL's `authentication_timeout`).
    #[serde(default = "default_authentication_timeout_ms")]
    pub authentication_timeout_ms: u64,
}

fn default_max_connections() -> usize {
    200
}

fn default_max_connections_per_user() -> usize {
    50
}

fn default_max_statements_per_user() -> usize {
    16
}

fn default_statement_queue_timeout_ms() -> u64 {
    10_000
}

fn default_authentication_timeout_ms() -> u64 {
    60_000
}

fn default_memory_limit_mb() -> usize {
    4096
}

/// Large enough for TPC-H q18 at SF 1 (a hash join of about 1 GiB:
/// DataFusion's hash join cannot spill).
fn default_query_memory_mb() -> usize {
    2048
}

fn default_listen() -> String {
    "127.0.0.1:6432".to_string()
}

fn default_database() -> String {
    "tautan".to_string()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            database: default_database(),
            tls_cert: None,
            tls_key: None,
            memory_limit_mb: default_memory_limit_mb(),
            query_memory_mb: default_query_memory_mb(),
            spill_dir: None,
            statement_timeout_max_ms: 0,
            max_connections: default_max_connections(),
            max_connections_per_user: default_max_connections_per_user(),
            max_statements_per_user: default_max_statements_per_user(),
            statement_queue_timeout_ms: default_statement_queue_timeout_ms(),
            authentication_timeout_ms: default_authentication_timeout_ms(),
        }
    }
}

/// One agency data source.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LinkConfig {
    /// A PostgreSQL database.
    Postgres {
        /// Host name or address.
        host: String,
        /// Port (5432).
        #[serde(default = "default_pg_port")]
        port: u16,
        /// Database name.
        database: String,
        /// Login (a read-only account the agency handed over).
        user: String,
        /// Password in the file.
        password: Option<String>,
        /// Name of an environment variable holding the password.
        password_env: Option<String>,
        /// Schemas to expose (all readable ones when empty).
        #[serde(default)]
        schemas: Vec<String>,
        /// Most pooled connections.
        #[serde(default = "default_pool_size")]
        pool_size: usize,
        /// Connection timeout in milliseconds.
        #[serde(default = "default_connect_timeout_ms")]
        connect_timeout_ms: u64,
        /// Longest wait in line when every connection is busy, in
        /// milliseconds (then SQLSTATE 53300).
        #[serde(default = "default_queue_timeout_ms")]
        queue_timeout_ms: u64,
        /// Longest a statement may run at the source, in milliseconds
        /// (0: the source's own setting).
        #[serde(default = "default_statement_timeout_ms")]
        statement_timeout_ms: u64,
        /// Milliseconds without data from the source before it is pinged
        /// on a new connection (a stalled source ends the statement).
        #[serde(default = "default_stall_timeout_ms")]
        stall_timeout_ms: u64,
        /// Free-text description (agency, contact).
        description: Option<String>,
        /// The producing agency's Ed25519 public key (PEM file relative to
        /// the config, or 64 hex characters), for its agreement signatures.
        public_key: Option<String>,
        /// Classification: labels by `schema.table` or `schema.table.column`
        /// ([`crate::policy::labels`]).
        #[serde(default)]
        labels: BTreeMap<String, OneOrMany>,
    },
    /// A MySQL or MariaDB server.
    Mysql {
        /// Host name or address.
        host: String,
        /// Port (3306).
        #[serde(default = "default_my_port")]
        port: u16,
        /// Login.
        user: String,
        /// Password in the file.
        password: Option<String>,
        /// Name of an environment variable holding the password.
        password_env: Option<String>,
        /// Databases to expose as schemas (all non-system ones when empty).
        #[serde(default)]
        databases: Vec<String>,
        /// Most pooled connections.
        #[serde(default = "default_pool_size")]
        pool_size: usize,
        /// Connection timeout in milliseconds.
        #[serde(default = "default_connect_timeout_ms")]
        connect_timeout_ms: u64,
        /// Longest wait in line when every connection is busy, in
        /// milliseconds (then SQLSTATE 53300).
        #[serde(default = "default_queue_timeout_ms")]
        queue_timeout_ms: u64,
        /// Longest a statement may run at the source, in milliseconds
        /// (0: the source's own setting).
        #[serde(default = "default_statement_timeout_ms")]
        statement_timeout_ms: u64,
        /// Milliseconds without data from the source before it is pinged
        /// on a new connection (a stalled source ends the statement).
        #[serde(default = "default_stall_timeout_ms")]
        stall_timeout_ms: u64,
        /// Free-text description.
        description: Option<String>,
        /// The producer's public key, for agreement signatures.
        public_key: Option<String>,
        /// Classification labels, as for PostgreSQL links.
        #[serde(default)]
        labels: BTreeMap<String, OneOrMany>,
    },
    /// A Microsoft SQL Server database ([`tautan_sqlserver`]), with a SQL
    /// login (integrated authentication is refused).
    Sqlserver {
        /// Host name or address.
        host: String,
        /// Port (1433).
        #[serde(default = "default_ms_port")]
        port: u16,
        /// Database name; its schemas are the link's schemas.
        database: String,
        /// SQL login (a read-only account the agency handed over).
        user: String,
        /// Password in the file.
        password: Option<String>,
        /// Name of an environment variable holding the password.
        password_env: Option<String>,
        /// Schemas to expose (all the login can see when empty).
        #[serde(default)]
        schemas: Vec<String>,
        /// `"strict"` (TDS 8.0), `"required"` (default) or `"off"` (only
        /// the login is encrypted).
        #[serde(default = "default_ms_encrypt")]
        encrypt: String,
        /// PEM or DER file of CA certificates to trust (or the server's
        /// own self-signed certificate); relative to the config file.
        trust_cert_ca: Option<PathBuf>,
        /// A certificate fingerprint to pin: not supported (the driver
        /// has no hook for it); a config error naming `trust_cert_ca`.
        trust_cert_fingerprint: Option<String>,
        /// The name the server's certificate carries, when it is not
        /// `host`.
        hostname_in_certificate: Option<String>,
        /// `"sql"` (the default and only choice): integrated (Windows,
        /// Kerberos) authentication is a config error.
        authentication: Option<String>,
        /// Most pooled connections.
        #[serde(default = "default_pool_size")]
        pool_size: usize,
        /// Connection timeout in milliseconds.
        #[serde(default = "default_connect_timeout_ms")]
        connect_timeout_ms: u64,
        /// Longest wait in line when every connection is busy, in
        /// milliseconds (then SQLSTATE 53300).
        #[serde(default = "default_queue_timeout_ms")]
        queue_timeout_ms: u64,
        /// Longest a statement may run, in milliseconds (0: no limit);
        /// SQL Server has no session setting for it, so tautan ends the
        /// statement itself.
        #[serde(default = "default_statement_timeout_ms")]
        statement_timeout_ms: u64,
        /// Milliseconds without data from the source before it is pinged
        /// on a new connection (a stalled source ends the statement).
        #[serde(default = "default_stall_timeout_ms")]
        stall_timeout_ms: u64,
        /// Free-text description.
        description: Option<String>,
        /// The producer's public key, for agreement signatures.
        public_key: Option<String>,
        /// Classification labels, as for PostgreSQL links.
        #[serde(default)]
        labels: BTreeMap<String, OneOrMany>,
    },
    /// An agency's web service: REST/JSON or CSV endpoints read as tables
    /// ([`tautan_http`]).
    Http {
        /// Every endpoint's path is relative to this.
        base_url: String,
        /// Headers sent with every request, written in the file.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Headers whose values are read from environment variables
        /// (header name → variable name): secrets stay out of the file.
        #[serde(default)]
        headers_env: BTreeMap<String, String>,
        /// Longest one request may take, in milliseconds.
        #[serde(default = "default_http_timeout_ms")]
        timeout_ms: u64,
        /// Retries of a request answered 429 or 5xx, or not answered.
        #[serde(default = "default_http_retries")]
        retries: u32,
        /// Most pages one scan reads (more is an error, never a cut answer).
        #[serde(default = "default_http_max_pages")]
        max_pages: usize,
        /// Most bytes one scan reads (likewise).
        #[serde(default = "default_http_max_bytes")]
        max_bytes: u64,
        /// Most requests per second to the service (0: no limit).
        #[serde(default = "default_http_requests_per_second")]
        requests_per_second: f64,
        /// The endpoints, one table each.
        #[serde(default)]
        tables: Vec<tautan_http::Endpoint>,
        /// Free-text description.
        description: Option<String>,
        /// The producer's public key, for agreement signatures.
        public_key: Option<String>,
        /// Classification labels, as for PostgreSQL links.
        #[serde(default)]
        labels: BTreeMap<String, OneOrMany>,
    },
    /// A folder of structured files (CSV, Parquet, JSON).
    Files {
        /// The folder; relative to the config file.
        path: PathBuf,
        /// Free-text description.
        description: Option<String>,
        /// The producer's public key, for agreement signatures.
        public_key: Option<String>,
        /// Classification labels, as for PostgreSQL links.
        #[serde(default)]
        labels: BTreeMap<String, OneOrMany>,
    },
}

impl LinkConfig {
    /// `postgres`, `mysql`, `sqlserver`, `http` or `files`.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkConfig::Postgres { .. } => "postgres",
            LinkConfig::Mysql { .. } => "mysql",
            LinkConfig::Sqlserver { .. } => "sqlserver",
            LinkConfig::Http { .. } => "http",
            LinkConfig::Files { .. } => "files",
        }
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            LinkConfig::Postgres { description, .. }
            | LinkConfig::Mysql { description, .. }
            | LinkConfig::Sqlserver { description, .. }
            | LinkConfig::Http { description, .. }
            | LinkConfig::Files { description, .. } => description.as_deref(),
        }
    }

    /// The producer's public key as written (file or hex), if any.
    pub fn public_key(&self) -> Option<&str> {
        match self {
            LinkConfig::Postgres { public_key, .. }
            | LinkConfig::Mysql { public_key, .. }
            | LinkConfig::Sqlserver { public_key, .. }
            | LinkConfig::Http { public_key, .. }
            | LinkConfig::Files { public_key, .. } => public_key.as_deref(),
        }
    }

    /// The classification labels as written, by `schema.table[.column]`.
    pub fn labels(&self) -> BTreeMap<String, Vec<String>> {
        match self {
            LinkConfig::Postgres { labels, .. }
            | LinkConfig::Mysql { labels, .. }
            | LinkConfig::Sqlserver { labels, .. }
            | LinkConfig::Http { labels, .. }
            | LinkConfig::Files { labels, .. } => labels
                .iter()
                .map(|(k, v)| (k.clone(), v.values()))
                .collect(),
        }
    }

    /// Queue, statement and stall timeouts (database links).
    pub fn limits(&self) -> tautan_connector::health::Limits {
        match self {
            LinkConfig::Postgres {
                queue_timeout_ms,
                statement_timeout_ms,
                stall_timeout_ms,
                ..
            }
            | LinkConfig::Mysql {
                queue_timeout_ms,
                statement_timeout_ms,
                stall_timeout_ms,
                ..
            }
            | LinkConfig::Sqlserver {
                queue_timeout_ms,
                statement_timeout_ms,
                stall_timeout_ms,
                ..
            } => tautan_connector::health::Limits {
                queue_timeout: Duration::from_millis(*queue_timeout_ms),
                statement_timeout: (*statement_timeout_ms > 0)
                    .then(|| Duration::from_millis(*statement_timeout_ms)),
                stall_timeout: Duration::from_millis((*stall_timeout_ms).max(100)),
            },
            LinkConfig::Http { .. } | LinkConfig::Files { .. } => Default::default(),
        }
    }

    /// What is wrong with a SQL Server link's settings, if anything:
    /// integrated authentication, a certificate fingerprint, an unknown
    /// `encrypt` mode.
    pub fn sqlserver_problem(&self) -> Option<String> {
        let LinkConfig::Sqlserver {
            encrypt,
            authentication,
            trust_cert_fingerprint,
            ..
        } = self
        else {
            return None;
        };
        if let Err(e) = tautan_sqlserver::Encrypt::parse(encrypt) {
            return Some(e);
        }
        match authentication.as_deref() {
            None | Some("sql") => {}
            Some(other) => {
                return Some(format!(
                    "authentication = \"{other}\": integrated (Windows/Kerberos) authentication \
                     is not supported for SQL Server links; use a SQL login (`user` and \
                     `password_env`), ideally one that can only read"
                ))
            }
        }
        if trust_cert_fingerprint.is_some() {
            return Some(
                "trust_cert_fingerprint is not supported (the SQL Server driver has no way to \
                 pin a certificate by fingerprint); save the server's certificate as a file and \
                 name it with trust_cert_ca"
                    .into(),
            );
        }
        None
    }

    /// The connection timeout.
    pub fn connect_timeout(&self) -> Duration {
        match self {
            LinkConfig::Postgres {
                connect_timeout_ms, ..
            }
            | LinkConfig::Mysql {
                connect_timeout_ms, ..
            }
            | LinkConfig::Sqlserver {
                connect_timeout_ms, ..
            } => Duration::from_millis(*connect_timeout_ms),
            LinkConfig::Http { timeout_ms, .. } => Duration::from_millis(*timeout_ms),
            LinkConfig::Files { .. } => Duration::from_secs(5),
        }
    }
}

fn default_http_timeout_ms() -> u64 {
    30_000
}
fn default_http_retries() -> u32 {
    3
}
fn default_http_max_pages() -> usize {
    1_000
}
fn default_http_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_http_requests_per_second() -> f64 {
    10.0
}

fn default_pg_port() -> u16 {
    5432
}
fn default_my_port() -> u16 {
    3306
}
fn default_ms_port() -> u16 {
    1433
}
fn default_ms_encrypt() -> String {
    "required".into()
}
/// A statement over several large tables of one link holds a connection per
/// scan and per page range at once (TPC-H q21: four scans of three
/// connections); 8 made such a statement wait on its own connections.
fn default_pool_size() -> usize {
    16
}
fn default_connect_timeout_ms() -> u64 {
    3000
}
fn default_queue_timeout_ms() -> u64 {
    10_000
}
fn default_statement_timeout_ms() -> u64 {
    15 * 60 * 1000
}
fn default_stall_timeout_ms() -> u64 {
    10_000
}

/// Reference data: every file in the folder is a table `ref.<file stem>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// The folder; relative to the config file.
    pub path: PathBuf,
}

/// A data user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`,
    /// as `tautan passwd` prints and PostgreSQL stores).
    pub password: Option<String>,
    /// Name of an environment variable holding the plain password.
    pub password_env: Option<String>,
    /// Roles the user holds.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The user's default `statement_timeout`, in milliseconds (0: none).
    #[serde(default)]
    pub statement_timeout_ms: u64,
    /// Connections this user may hold at once (0: no limit but the
    /// server's); `[server] max_connections_per_user` when absent.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Statements this user may run at once; `[server]
    /// max_statements_per_user` when absent.
    #[serde(default)]
    pub max_statements: Option<usize>,
    /// The user's attributes (agency, region codes, ...), for row filters:
    /// `{name}` in a grant's `row_filter` is the attribute's value(s).
    #[serde(default)]
    pub attributes: BTreeMap<String, OneOrMany>,
    /// Links whose producing agency this user works for: they see the
    /// audit records of statements that read those links (`system.audit`),
    /// to follow up exchange problems.
    #[serde(default)]
    pub producer_of: Vec<String>,
    /// API tokens for the HTTP door, stored as `sha256:<hex>` (as `tautan
    /// token new` prints them; the token itself is never stored).
    #[serde(default)]
    pub tokens: Vec<String>,
}

/// One text value or a list of them (user attributes, labels).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values (for `IN ({name})`).
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, one or many.
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `[policy]`: settings of governed access.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Environment variable holding the custodian's pseudonym key.
    pub pseudonym_key_env: Option<String>,
    /// File holding it (relative to the config file), when the variable is
    /// not set. Without either, pseudonyms use a random key per start.
    pub pseudonym_key_file: Option<PathBuf>,
    /// Folder of signed agreements, one TOML file each (relative to the
    /// config file; [`crate::policy::agreement`]).
    pub agreements_dir: Option<PathBuf>,
    /// The custodian's Ed25519 public key (PEM file or 64 hex), which
    /// countersigns every agreement.
    pub custodian_public_key: Option<String>,
    /// The classification labels links may use
    /// ([`crate::policy::labels::DEFAULT_LABELS`] when absent).
    pub labels: Option<Vec<String>>,
}

impl PolicyConfig {
    /// The label names in use: `labels`, or the default set.
    pub fn label_set(&self) -> std::collections::BTreeSet<String> {
        match &self.labels {
            Some(l) => l.iter().cloned().collect(),
            None => crate::policy::labels::DEFAULT_LABELS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// SELECT on tables matching patterns, for one role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// The role receiving the grant.
    pub role: String,
    /// Table patterns: `link.schema.table`, `ref.table`, with `*` and `?`
    /// globs per part; a trailing `*` part matches all deeper parts
    /// (`kesehatan.*` is every table of link `kesehatan`).
    pub tables: Vec<String>,
    /// Only these columns (all when absent).
    pub columns: Option<Vec<String>>,
    /// Only rows matching this SQL predicate over the table's columns;
    /// `{name}` stands for the user's attribute `name`.
    pub row_filter: Option<String>,
    /// Masks by column name: `null`, `redact`, `redact:TEXT`, `partial:N`,
    /// `year`, `pseudonym` ([`crate::policy::mask`]).
    #[serde(default)]
    pub masks: BTreeMap<String, String>,
    /// Masks by classification label: every column carrying the label
    /// (a mask by column name wins).
    #[serde(default)]
    pub mask_labels: BTreeMap<String, String>,
}

/// Storage and concurrency of materialized pulls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterializeConfig {
    /// Folder for snapshots; relative to the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Most pulls running at once in one process.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_max_concurrent() -> usize {
    2
}

impl Default for MaterializeConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            max_concurrent: default_max_concurrent(),
        }
    }
}

/// `[http]`: the web-service door for data users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the listener (`127.0.0.1:6433`). HTTPS when `[server]
    /// tls_cert`/`tls_key` are set; otherwise plain HTTP, where Basic sends
    /// the password: keep it on a private interface then.
    pub listen: String,
    /// Single sign-on: bearer JWTs of the region's identity provider.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
}

/// `[flight]`: the Arrow Flight SQL listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlightConfig {
    /// Address of the gRPC listener (`127.0.0.1:6434`). Plain gRPC: Basic
    /// sends the password, so keep it on a private interface (or use API
    /// tokens).
    pub listen: String,
}

/// `[http.oidc]`: the identity provider whose tokens log users in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The tokens' `iss` (the provider's issuer URL).
    pub issuer: String,
    /// The tokens' `aud` (the client id tautan is registered as).
    pub audience: String,
    /// The provider's public keys as a JWKS file (relative to the config;
    /// read at startup). Give this or `jwks_url`.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Or the provider's `jwks_uri`: fetched at startup, every
    /// `jwks_refresh_secs`, and when a token names a key the set does not
    /// hold (at most once a minute), so the provider may rotate its keys.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is fetched again, in seconds.
    #[serde(default = "default_jwks_refresh_secs")]
    pub jwks_refresh_secs: u64,
    /// The claim naming the tautan user (default `preferred_username`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim holding the user's groups at the identity provider (a
    /// name, or a dotted path such as `realm_access.roles`): a list of
    /// strings, or one string of names separated by spaces or commas.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// Which of those groups give which tautan role
    /// (`{ "dinkes-analis" = "analis_kesehatan" }`). A group not listed
    /// gives nothing: the provider cannot name a role the custodian did not
    /// map. A configured user keeps the roles `[users]` gives too.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// User attributes (the `{name}` of row filters) read from claims:
    /// `{ wilayah = "kode_wilayah" }` (a string, a number, or a list of
    /// them). An attribute `[users]` sets for the user wins over the claim.
    #[serde(default)]
    pub attribute_claims: BTreeMap<String, String>,
    /// Whether a token may log in a user who is not in `[users]`, with
    /// only the roles and attributes its claims give; such a token must
    /// give at least one role.
    #[serde(default)]
    pub users_from_claims: bool,
}

fn default_jwks_refresh_secs() -> u64 {
    3600
}

fn default_user_claim() -> String {
    "preferred_username".into()
}

/// `[monitoring]`: where operations scrape metrics and check health.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Address of the HTTP listener (`127.0.0.1:6480`); `/metrics` and
    /// `/healthz` answer there, without a login: keep it on a private
    /// interface.
    pub listen: String,
}

/// `[audit]`: where the audit log lives and how it checkpoints. Paths are
/// relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The log folder (segments, `checkpoints.jsonl`, `witnesses.jsonl`).
    #[serde(default = "default_audit_dir")]
    pub dir: PathBuf,
    /// The custodian's Ed25519 private key (PKCS#8 PEM, as `tautan keygen`
    /// writes); its public key is read from `<key>.pub`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Where the latest checkpoint is also written; keep it outside `dir`
    /// (ideally on another machine's mount), so a rollback of the folder
    /// shows.
    #[serde(default)]
    pub external_checkpoint: Option<PathBuf>,
    /// A checkpoint every this many records (0: never by count).
    #[serde(default = "default_checkpoint_every_records")]
    pub checkpoint_every_records: u64,
    /// A checkpoint this many seconds after the last one when records were
    /// added (0: never by time).
    #[serde(default = "default_checkpoint_every_secs")]
    pub checkpoint_every_secs: u64,
    /// A new segment before one grows beyond this many MiB (and every UTC day).
    #[serde(default = "default_segment_max_mb")]
    pub segment_max_mb: u64,
    /// Make the key pair at `key` when no file is there (the demo does; a
    /// custodian makes theirs with `tautan keygen` and keeps this off, so
    /// a lost key stops the server rather than starting a new one).
    #[serde(default)]
    pub create_key: bool,
}

fn default_audit_dir() -> PathBuf {
    PathBuf::from("audit")
}
fn default_checkpoint_every_records() -> u64 {
    10_000
}
fn default_checkpoint_every_secs() -> u64 {
    60
}
fn default_segment_max_mb() -> u64 {
    64
}

/// How a pull refreshes its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullMode {
    /// Every run fetches the whole result.
    Full,
    /// Every run fetches rows whose watermark is above the last one seen.
    Incremental,
}

impl PullMode {
    /// `full` or `incremental`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PullMode::Full => "full",
            PullMode::Incremental => "incremental",
        }
    }
}

/// One scheduled materialized pull.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// The query (any query the engine runs, across links too).
    pub sql: String,
    /// Cron expression (`min hour day month weekday`, or with seconds
    /// first); no schedule means on demand only.
    pub schedule: Option<String>,
    /// IANA time zone of the schedule (`Asia/Jakarta`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// `full` (default) or `incremental`.
    #[serde(default = "default_mode")]
    pub mode: PullMode,
    /// Incremental: the column whose values only grow (a timestamp or id).
    pub watermark: Option<String>,
    /// Incremental: columns identifying a row; a fetched row replaces the
    /// stored row with the same key. Without keys, rows are appended.
    #[serde(default)]
    pub key: Vec<String>,
    /// Snapshots kept on disk (at least 1).
    #[serde(default = "default_retention")]
    pub retention: usize,
    /// The role whose grants the query runs under.
    pub owner: String,
    /// Roles that may read `mat.<name>` (the owner's holders always may).
    #[serde(default)]
    pub readers: Vec<String>,
    /// Attempts after the first when a source fails.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First wait between attempts, doubled each time.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Free text.
    pub description: Option<String>,
}

fn default_timezone() -> String {
    "UTC".into()
}
fn default_mode() -> PullMode {
    PullMode::Full
}
fn default_retention() -> usize {
    3
}
fn default_retries() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    1000
}

/// A configuration error, pointing at the file, line and key.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key involved, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line of a byte offset.
/// Whether a grant's row filter is one SQL predicate (attributes written
/// as placeholder literals).
fn check_row_filter(filter: &str) -> Result<(), String> {
    let text = crate::policy::replace_attributes(filter, |_| Ok("'x'".to_string()))?;
    crate::policy::parse_row_filter(&text).map(|_| ())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl FederationConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: FederationConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            ConfigError {
                path: path.to_path_buf(),
                line,
                key: None,
                message: e.message().to_string(),
            }
        })?;
        cfg.path = path.to_path_buf();
        cfg.source = Some(text.to_string());
        cfg.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.validate(text)?;
        Ok(cfg)
    }

    fn error_at(&self, text: &str, start: usize, key: String, message: String) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            line: Some(line_of(text, start)),
            key: Some(key),
            message,
        }
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        const RESERVED: &[&str] = &["ref", "mat", "system", "information_schema", "pg_catalog"];
        for (name, link) in &self.links {
            let key = format!("links.{name}");
            if name.contains('.') {
                return Err(self.error_at(
                    text,
                    link.span().start,
                    key,
                    "a link name may not contain `.`".into(),
                ));
            }
            let known = self.policy.label_set();
            match crate::policy::labels::Classification::from_config(&link.get_ref().labels()) {
                Err(e) => {
                    return Err(self.error_at(text, link.span().start, format!("{key}.labels"), e))
                }
                Ok(c) => {
                    if let Some(unknown) = c.names().iter().find(|l| !known.contains(*l)) {
                        return Err(self.error_at(
                            text,
                            link.span().start,
                            format!("{key}.labels"),
                            format!("unknown label `{unknown}` ([policy] labels)"),
                        ));
                    }
                }
            }
            if RESERVED.contains(&name.as_str()) || *name == self.server.database {
                return Err(self.error_at(
                    text,
                    link.span().start,
                    key,
                    format!("`{name}` is reserved; choose another link name"),
                ));
            }
            if let LinkConfig::Http { tables, .. } = link.get_ref() {
                let mut seen = std::collections::BTreeSet::new();
                for t in tables {
                    let problem = t
                        .validate()
                        .err()
                        .or_else(|| (!seen.insert(&t.name)).then(|| "declared twice".to_string()));
                    if let Some(problem) = problem {
                        return Err(self.error_at(
                            text,
                            link.span().start,
                            key,
                            format!("table `{}`: {problem}", t.name),
                        ));
                    }
                }
            }
            if let Some(problem) = link.get_ref().sqlserver_problem() {
                return Err(self.error_at(text, link.span().start, key, problem));
            }
            if let LinkConfig::Postgres {
                password,
                password_env,
                ..
            }
            | LinkConfig::Mysql {
                password,
                password_env,
                ..
            }
            | LinkConfig::Sqlserver {
                password,
                password_env,
                ..
            } = link.get_ref()
            {
                if password.is_some() && password_env.is_some() {
                    return Err(self.error_at(
                        text,
                        link.span().start,
                        key,
                        "give either `password` or `password_env`, not both".into(),
                    ));
                }
            }
        }
        for (name, user) in &self.users {
            let u = user.get_ref();
            let key = format!("users.{name}");
            if let Some(link) = u.producer_of.iter().find(|l| !self.links.contains_key(*l)) {
                return Err(self.error_at(
                    text,
                    user.span().start,
                    format!("{key}.producer_of"),
                    format!("`{link}` is not a link of this config"),
                ));
            }
            if let Some(bad) = u.tokens.iter().find(|t| !crate::auth::is_token_hash(t)) {
                let shown: String = bad.chars().take(12).collect();
                return Err(self.error_at(
                    text,
                    user.span().start,
                    format!("{key}.tokens"),
                    format!(
                        "`{shown}…` is not a stored token: use the `sha256:…` line `tautan token new` prints, never the token itself"
                    ),
                ));
            }
            match (&u.password, &u.password_env) {
                (Some(_), Some(_)) | (None, None) => return Err(self.error_at(
                    text,
                    user.span().start,
                    key,
                    "give exactly one of `password` (a SCRAM-SHA-256 verifier) or `password_env`"
                        .into(),
                )),
                (Some(v), None) => {
                    if let Err(e) = crate::auth::ScramVerifier::parse(v) {
                        return Err(self.error_at(
                            text,
                            user.span().start,
                            format!("{key}.password"),
                            e,
                        ));
                    }
                }
                _ => {}
            }
        }
        for grant in &self.grants {
            let g = grant.get_ref();
            for pattern in &g.tables {
                if let Err(e) = crate::policy::pattern::TablePattern::parse(pattern) {
                    return Err(self.error_at(
                        text,
                        grant.span().start,
                        "grants.tables".into(),
                        format!("bad table pattern `{pattern}`: {e}"),
                    ));
                }
            }
            for (column, mask) in &g.masks {
                if let Err(e) = crate::policy::Mask::parse(mask) {
                    return Err(self.error_at(
                        text,
                        grant.span().start,
                        format!("grants.masks.{column}"),
                        e,
                    ));
                }
            }
            let known = self.policy.label_set();
            for (label, mask) in &g.mask_labels {
                if !known.contains(label) {
                    return Err(self.error_at(
                        text,
                        grant.span().start,
                        format!("grants.mask_labels.{label}"),
                        format!("unknown label `{label}` ([policy] labels)"),
                    ));
                }
                if let Err(e) = crate::policy::Mask::parse(mask) {
                    return Err(self.error_at(
                        text,
                        grant.span().start,
                        format!("grants.mask_labels.{label}"),
                        e,
                    ));
                }
            }
            if let Some(filter) = &g.row_filter {
                if let Err(e) = check_row_filter(filter) {
                    return Err(self.error_at(
                        text,
                        grant.span().start,
                        "grants.row_filter".into(),
                        e,
                    ));
                }
            }
        }
        self.validate_pulls(text)
    }

    /// The pseudonym key `[policy]` names (files relative to the config).
    pub fn pseudonym_key(&self) -> Result<crate::policy::PseudonymKey, String> {
        let file = self
            .policy
            .pseudonym_key_file
            .as_ref()
            .map(|f| self.base_dir.join(f));
        crate::policy::PseudonymKey::load(self.policy.pseudonym_key_env.as_deref(), file.as_deref())
    }

    /// The public keys agreements are checked with: each link's
    /// `public_key` and `[policy] custodian_public_key` (a PEM file
    /// relative to the config, or 64 hex characters).
    pub fn signer_keys(&self) -> Result<crate::policy::agreement::SignerKeys, String> {
        let read = |what: &str, text: &str| {
            let path = self.base_dir.join(text);
            let pem = if path.is_file() {
                std::fs::read_to_string(&path).map_err(|e| format!("{what}: {e}"))?
            } else if text.trim().len() != 64 && !text.contains("-----BEGIN") {
                return Err(format!(
                    "{what}: no key file {} (give a PEM file or 64 hex characters)",
                    path.display()
                ));
            } else {
                text.to_string()
            };
            crate::audit::keys::parse_verifying_key(&pem).map_err(|e| format!("{what}: {e}"))
        };
        let mut keys = crate::policy::agreement::SignerKeys::default();
        for (name, link) in &self.links {
            if let Some(k) = link.get_ref().public_key() {
                keys.producers
                    .insert(name.clone(), read(&format!("links.{name}.public_key"), k)?);
            }
        }
        if let Some(k) = &self.policy.custodian_public_key {
            keys.custodian = Some(read("policy.custodian_public_key", k)?);
        }
        Ok(keys)
    }

    /// The agreements of `[policy] agreements_dir`, judged today.
    pub fn agreements(&self) -> Result<Vec<crate::policy::agreement::Agreement>, String> {
        let Some(dir) = &self.policy.agreements_dir else {
            return Ok(Vec::new());
        };
        let keys = self.signer_keys()?;
        Ok(crate::policy::agreement::load_dir(
            &self.base_dir.join(dir),
            &keys,
            crate::policy::agreement::today(),
        ))
    }

    /// Every role named by a user or a grant.
    pub fn roles(&self) -> std::collections::BTreeSet<String> {
        let mut roles: std::collections::BTreeSet<String> = self
            .users
            .values()
            .flat_map(|u| u.get_ref().roles.iter().cloned())
            .collect();
        roles.extend(self.grants.iter().map(|g| g.get_ref().role.clone()));
        roles
    }

    fn validate_pulls(&self, text: &str) -> Result<(), ConfigError> {
        let roles = self.roles();
        for (name, pull) in &self.pulls {
            let p = pull.get_ref();
            let at = |key: &str, message: String| {
                self.error_at(
                    text,
                    pull.span().start,
                    format!("pulls.{name}{key}"),
                    message,
                )
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(at(
                    "",
                    "a pull name uses lower-case letters, digits and `_` only".into(),
                ));
            }
            if let Some(schedule) = &p.schedule {
                crate::pulls::schedule::Schedule::parse(schedule, &p.timezone)
                    .map_err(|e| at(".schedule", e))?;
            }
            if p.mode == PullMode::Incremental && p.watermark.is_none() {
                return Err(at(
                    ".watermark",
                    "an incremental pull needs a `watermark` column".into(),
                ));
            }
            if p.mode == PullMode::Full && (p.watermark.is_some() || !p.key.is_empty()) {
                return Err(at(
                    ".mode",
                    "`watermark` and `key` apply to mode = \"incremental\" only".into(),
                ));
            }
            if p.retention == 0 {
                return Err(at(".retention", "keep at least 1 snapshot".into()));
            }
            for role in std::iter::once(&p.owner).chain(&p.readers) {
                if !roles.contains(role) {
                    return Err(at(
                        if *role == p.owner {
                            ".owner"
                        } else {
                            ".readers"
                        },
                        format!("no user or grant has role `{role}`"),
                    ));
                }
            }
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            let (key, line) = match text.find("tls_cert").or_else(|| text.find("tls_key")) {
                Some(at) => ("server.tls_cert", Some(line_of(text, at))),
                None => ("server", None),
            };
            return Err(ConfigError {
                path: self.path.clone(),
                line,
                key: Some(key.into()),
                message: "tls_cert and tls_key go together: set both or neither".into(),
            });
        }
        if let Some(audit) = &self.audit {
            let line = text.find("[audit]").map(|at| line_of(text, at));
            let at = |key: &str, message: &str| ConfigError {
                path: self.path.clone(),
                line,
                key: Some(format!("audit.{key}")),
                message: message.into(),
            };
            if audit.segment_max_mb == 0 {
                return Err(at("segment_max_mb", "must be at least 1"));
            }
            if let Some(ext) = &audit.external_checkpoint {
                if self
                    .resolve_path(ext)
                    .starts_with(self.resolve_path(&audit.dir))
                {
                    return Err(at(
                        "external_checkpoint",
                        "must be outside the log folder (`dir`): a rollback of the folder would take it along",
                    ));
                }
            }
        }
        if let Some(oidc) = self.http.as_ref().and_then(|h| h.oidc.as_ref()) {
            let line = text.find("[http.oidc]").map(|at| line_of(text, at));
            let at = |key: &str, message: String| ConfigError {
                path: self.path.clone(),
                line,
                key: Some(format!("http.oidc.{key}")),
                message,
            };
            let (claim, map) = (oidc.roles_claim.is_some(), !oidc.role_map.is_empty());
            if claim != map {
                return Err(at(
                    "role_map",
                    "roles_claim and role_map go together: the claim names the groups, the map \
                     says which role each gives"
                        .into(),
                ));
            }
            if oidc.users_from_claims && oidc.roles_claim.is_none() {
                return Err(at(
                    "users_from_claims",
                    "needs roles_claim and role_map: a user not in [users] has only the roles \
                     the token's claims give"
                        .into(),
                ));
            }
            let roles = self.roles();
            let agreement_roles = self.policy.agreements_dir.is_some();
            if let Some((group, role)) = oidc
                .role_map
                .iter()
                .find(|(_, role)| role.is_empty() || (!agreement_roles && !roles.contains(*role)))
            {
                return Err(at(
                    "role_map",
                    format!("group `{group}` maps to role `{role}`, which no user or grant has"),
                ));
            }
            if let Some((name, _)) = oidc
                .attribute_claims
                .iter()
                .find(|(name, claim)| name.is_empty() || claim.is_empty())
            {
                return Err(at(
                    "attribute_claims",
                    format!("attribute `{name}`: give an attribute name and a claim"),
                ));
            }
        }
        if self.materialize.max_concurrent == 0 {
            return Err(ConfigError {
                path: self.path.clone(),
                line: None,
                key: Some("materialize.max_concurrent".into()),
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The config error for a pull whose query fails the owner's grants
    /// (found when the engine starts, after links are contacted).
    pub fn pull_error(&self, name: &str, message: String) -> ConfigError {
        let line = match (&self.source, self.pulls.get(name)) {
            (Some(text), Some(p)) => Some(line_of(text, p.span().start)),
            _ => None,
        };
        ConfigError {
            path: self.path.clone(),
            line,
            key: Some(format!("pulls.{name}.sql")),
            message,
        }
    }

    /// Resolves a path from the config against the config's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Reads a secret: the literal, or the named environment variable.
pub fn secret(literal: &Option<String>, env: &Option<String>) -> Result<Option<String>, String> {
    match (literal, env) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(var)) => std::env::var(var)
            .map(Some)
            .map_err(|_| format!("environment variable {var} is not set")),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[links.a]\nkind = \"postgres\"\nhost = \"h\"\ndatabase = \"d\"\nuser = \"u\"\npasword = \"x\"\n";
        let e = FederationConfig::parse(text, Path::new("f.toml")).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("f.toml:"), "{shown}");
        assert!(shown.contains("pasword"), "{shown}");
    }

    #[test]
    fn audit_section_defaults_and_checks() {
        let cfg =
            FederationConfig::parse("[audit]\nkey = \"k.pem\"\n", Path::new("f.toml")).unwrap();
        let a = cfg.audit.unwrap();
        assert_eq!(a.dir, PathBuf::from("audit"));
        assert_eq!(a.checkpoint_every_records, 10_000);
        assert_eq!(a.checkpoint_every_secs, 60);
        assert_eq!(a.segment_max_mb, 64);
        assert!(FederationConfig::parse("", Path::new("f.toml"))
            .unwrap()
            .audit
            .is_none());
        let e = FederationConfig::parse("[audit]\ndri = \"x\"\n", Path::new("f.toml")).unwrap_err();
        assert!(e.to_string().contains("dri"), "{e}");
        let e = FederationConfig::parse(
            "[audit]\ndir = \"a\"\nexternal_checkpoint = \"a/latest.json\"\n",
            Path::new("f.toml"),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("audit.external_checkpoint"));
    }

    #[test]
    fn reserved_link_name_is_refused_with_its_line() {
        let text = "\n\n[links.ref]\nkind = \"files\"\npath = \"x\"\n";
        let e = FederationConfig::parse(text, Path::new("f.toml")).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("links.ref"));
    }
}
