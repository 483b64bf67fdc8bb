//! Microsoft SQL Server db link for tautan.
//!
//! Sessions are opened by tiberius (TDS 7.4, or TDS 8.0 with
//! `encrypt = "strict"`) over rustls, with `ApplicationIntent=ReadOnly`
//! (an Always On listener routes them to a readable secondary, and a
//! secondary refuses writes), and pooled by a small deadpool manager
//! ([`pool`]). SQL Server has no read-only *session* on a primary, so the
//! second guarantee is the login: `tautan check` reports what it may do
//! beyond reading ([`privileges`]), and every statement tautan sends is a
//! single `SELECT` sealed and guarded in T-SQL ([`tautan_connector::tsql`]).
//! Tables are introspected from the `sys.*` catalogs with bound parameters
//! ([`introspect`]); TDS rows are converted into Arrow builders
//! ([`rows`]).
//!
//! Integrated (Windows/Kerberos) authentication is not offered: only SQL
//! logins (`user` + password).

pub mod introspect;
pub mod pool;
pub mod privileges;
pub mod rows;

#[cfg(test)]
mod dialect_tests;

/// The driver, for tests and tools that talk to a SQL Server themselves
/// (the gated integration suite loads its fixtures through it).
pub use tiberius;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use tautan_connector::health::{Gate, Limits, LinkHealth, Watchdog};
use tautan_connector::stream::spawn_reader_when;
use tautan_connector::{
    Link, LinkError, LinkErrorKind, ProbeReport, RemoteTableDef, SourceDialect, SourceQuery,
};
use tiberius::{AuthMethod, EncryptionLevel};

/// How the connection to the server is encrypted (`encrypt = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encrypt {
    /// TDS 8.0: TLS from the first byte, before the login exchange (SQL
    /// Server 2022 and Azure SQL); the certificate is always checked.
    Strict,
    /// TLS for the whole session after the pre-login exchange; the
    /// certificate is checked.
    Required,
    /// Only the login packet is encrypted; the data travels in clear. The
    /// certificate is checked only when a CA is given (`trust_cert_ca`),
    /// as ADO.NET does with `Encrypt=false`. For a trusted network only.
    Off,
}

impl Encrypt {
    /// `strict`, `required` or `off`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "strict" => Ok(Encrypt::Strict),
            "required" => Ok(Encrypt::Required),
            "off" => Ok(Encrypt::Off),
            other => Err(format!(
                "encrypt = \"{other}\": expected \"strict\", \"required\" or \"off\""
            )),
        }
    }
}

/// How to reach one SQL Server database.
#[derive(Debug, Clone)]
pub struct SqlServerConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port (1433).
    pub port: u16,
    /// The database (its schemas are the link's schemas).
    pub database: String,
    /// SQL login.
    pub user: String,
    /// Its password.
    pub password: Option<String>,
    /// Schemas to expose; empty means every schema but the system ones.
    pub schemas: Vec<String>,
    /// Encryption mode.
    pub encrypt: Encrypt,
    /// A PEM or DER file of CA certificates (or the server's own
    /// self-signed certificate) trusted besides the system's.
    pub trust_cert_ca: Option<PathBuf>,
    /// The name the certificate must carry, when it is not `host` (a
    /// connection by address, a tunnel).
    pub hostname_in_certificate: Option<String>,
    /// Most pooled connections.
    pub pool_size: usize,
    /// How long to wait for a connection before calling the link down.
    pub connect_timeout: Duration,
    /// Queue, statement and stall timeouts.
    pub limits: Limits,
}

impl SqlServerConfig {
    /// The driver's configuration: SQL login, read-only intent, TLS as
    /// [`Self::encrypt`] says.
    pub fn tds_config(&self) -> tiberius::Config {
        let mut c = tiberius::Config::new();
        c.host(&self.host);
        c.port(self.port);
        c.database(&self.database);
        c.application_name("tautan");
        c.authentication(AuthMethod::sql_server(
            &self.user,
            self.password.as_deref().unwrap_or_default(),
        ));
        // ApplicationIntent=ReadOnly.
        c.readonly(true);
        c.encryption(match self.encrypt {
            Encrypt::Strict => EncryptionLevel::Strict,
            Encrypt::Required => EncryptionLevel::Required,
            Encrypt::Off => EncryptionLevel::Off,
        });
        match (&self.trust_cert_ca, self.encrypt) {
            (Some(ca), _) => c.trust_cert_ca(ca.display()),
            // Login-only encryption: the certificate is not checked (the
            // data is in clear anyway), as ADO.NET does.
            (None, Encrypt::Off) => c.trust_cert(),
            (None, _) => {}
        }
        if let Some(name) = &self.hostname_in_certificate {
            c.hostname_in_certificate(name);
        }
        c.handshake_timeout(Some(self.connect_timeout));
        // Stalls are the link's watchdog's business (a long aggregate may
        // rightly send nothing for a while).
        c.command_timeout(None);
        c
    }
}

/// A read-only link to one SQL Server database.
pub struct SqlServerLink {
    name: String,
    config: SqlServerConfig,
    tds: tiberius::Config,
    pool: pool::Pool,
    gate: Gate,
}

impl std::fmt::Debug for SqlServerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlServerLink")
            .field("name", &self.name)
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("database", &self.config.database)
            .field("user", &self.config.user)
            .finish_non_exhaustive()
    }
}

impl SqlServerLink {
    /// Builds the link and its (lazy) pool; nothing is contacted yet.
    pub fn new(name: impl Into<String>, config: SqlServerConfig) -> Result<Self, LinkError> {
        let name = name.into();
        install_crypto_provider();
        if let Some(ca) = &config.trust_cert_ca {
            if !ca.is_file() {
                return Err(LinkError::new(
                    &name,
                    LinkErrorKind::Config,
                    format!("trust_cert_ca {}: no such file", ca.display()),
                ));
            }
        }
        let tds = config.tds_config();
        let pool = pool::pool(&name, tds.clone(), config.pool_size)?;
        let gate = Gate::new(
            &name,
            config.pool_size,
            config.limits.queue_timeout,
            Default::default(),
        );
        Ok(Self {
            name,
            config,
            tds,
            pool,
            gate,
        })
    }

    /// A pooled session exactly as a scan gets it; for `tautan check` and
    /// tests.
    pub async fn checkout(&self) -> Result<pool::Pooled, LinkError> {
        pool::checkout(&self.name, &self.pool, self.config.connect_timeout).await
    }
}

/// Makes ring rustls's process-wide provider unless one is installed.
///
/// tiberius's rustls backend compiles rustls's aws-lc-rs provider in, and
/// the rest of tautan uses ring; with two providers compiled in, rustls
/// has no implicit default, and any `ClientConfig::builder()` in the
/// process would fail. tiberius itself takes the installed default.
pub fn install_crypto_provider() {
    // Err: another provider is installed already, which is as good.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// Maps a driver error to a link error a user can act on.
pub(crate) fn tds_error(link: &str, e: tiberius::error::Error) -> LinkError {
    use tiberius::error::Error as E;
    match &e {
        E::Server(t) => {
            // 18456: login failed; 4060: cannot open the database;
            // 18452/18486/18487/18488: untrusted domain, locked out,
            // password expired / must change. 1205: deadlock victim;
            // 229/230/262/297/300: permission denied.
            let code = t.code();
            let kind = match code {
                18456 | 4060 | 18452 | 18486 | 18487 | 18488 => LinkErrorKind::Authentication,
                // Too many connections (resource limits).
                10928 | 10929 | 17809 => LinkErrorKind::Busy,
                _ => LinkErrorKind::Query,
            };
            let mut err = LinkError::new(link, kind, format!("{} (error {code})", t.message()));
            if kind == LinkErrorKind::Query {
                let state = match code {
                    229 | 230 | 262 | 297 | 300 => Some("42501"),
                    208 | 207 | 102 | 156 | 4104 => Some("42000"),
                    3906 | 3908 => Some("25006"),
                    1205 => Some("40P01"),
                    _ => None,
                };
                if let Some(state) = state {
                    err = err.with_sqlstate(state);
                }
            }
            err.with_source(e)
        }
        E::Io { .. } | E::Tls(_) | E::Routing { .. } => {
            let msg = e.to_string();
            LinkError::new(link, LinkErrorKind::Unavailable, msg).with_source(e)
        }
        _ => {
            let msg = e.to_string();
            LinkError::new(link, LinkErrorKind::Query, msg).with_source(e)
        }
    }
}

/// What `tautan check` asks the server (a constant statement).
const PROBE_SQL: &str = "SELECT CAST(@@VERSION AS nvarchar(4000)), SUSER_SNAME(), \
CAST(DATABASEPROPERTYEX(DB_NAME(), 'Updateability') AS nvarchar(128)), \
IS_SRVROLEMEMBER('sysadmin'), IS_ROLEMEMBER('db_owner'), IS_ROLEMEMBER('db_datawriter'), \
IS_ROLEMEMBER('db_ddladmin'), \
HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'INSERT'), HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'UPDATE'), \
HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'DELETE'), HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'ALTER'), \
HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'EXECUTE'), HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CREATE TABLE')";

#[async_trait]
impl Link for SqlServerLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sqlserver"
    }

    fn dialect(&self) -> SourceDialect {
        SourceDialect::SqlServer
    }

    async fn introspect(&self) -> Result<Vec<RemoteTableDef>, LinkError> {
        let mut session = pool::Checkout::new(self.checkout().await?);
        let client = session
            .client()
            .ok_or_else(|| LinkError::new(&self.name, LinkErrorKind::Unavailable, "no session"))?;
        let tables = introspect::tables(&self.name, client, &self.config.schemas).await?;
        session.finished();
        Ok(tables)
    }

    async fn probe(&self) -> Result<ProbeReport, LinkError> {
        let mut session = pool::Checkout::new(self.checkout().await?);
        let client = session
            .client()
            .ok_or_else(|| LinkError::new(&self.name, LinkErrorKind::Unavailable, "no session"))?;
        let row = client
            .simple_query(PROBE_SQL)
            .await
            .map_err(|e| tds_error(&self.name, e))?
            .into_row()
            .await
            .map_err(|e| tds_error(&self.name, e))?
            .ok_or_else(|| LinkError::new(&self.name, LinkErrorKind::Query, "no answer"))?;
        session.finished();
        let text = |i: usize| introspect::text(&row, i).unwrap_or_default();
        let flag = |i: usize| introspect::integer(&row, i);
        let facts = privileges::Facts {
            sysadmin: flag(3) == Some(1),
            roles: [("db_owner", 4), ("db_datawriter", 5), ("db_ddladmin", 6)]
                .into_iter()
                .filter(|(_, i)| flag(*i) == Some(1))
                .map(|(r, _)| r)
                .collect(),
            permissions: [
                ("INSERT", 7),
                ("UPDATE", 8),
                ("DELETE", 9),
                ("ALTER", 10),
                ("EXECUTE", 11),
                ("CREATE TABLE", 12),
            ]
            .into_iter()
            .filter(|(_, i)| flag(*i) == Some(1))
            .map(|(p, _)| p)
            .collect(),
        };
        let excess = privileges::excess(&facts);
        // A readable secondary (read-only intent routed there) or a
        // READ_ONLY database refuses writes itself; on a primary the
        // session is read-only when the login can do nothing else.
        let read_only = text(2) == "READ_ONLY" || excess.is_empty();
        Ok(ProbeReport {
            server_version: text(0),
            read_only,
            user: text(1),
            excess_privileges: excess,
        })
    }

    fn health(&self) -> Option<&Arc<LinkHealth>> {
        Some(self.gate.health())
    }

    /// Waits for its turn at the link ([`Gate`]), watches every read for a
    /// stalled source ([`Watchdog`]), and when dropped before the end (a
    /// cancel, a client gone, a stall, the statement timeout) closes the
    /// session instead of returning it to the pool, which ends the
    /// statement at the server.
    fn execute(&self, query: SourceQuery, schema: SchemaRef) -> SendableRecordBatchStream {
        let pool = self.pool.clone();
        let link = self.name.clone();
        let timeout = self.config.connect_timeout;
        let gate = self.gate.clone();
        let tds = self.tds.clone();
        let stall = self.config.limits.stall_timeout;
        let statement_timeout = self.config.limits.statement_timeout;
        let ahead = gate.try_enter_ahead();
        spawn_reader_when(schema.clone(), ahead.is_some(), move |tx| async move {
            let health = gate.health().clone();
            let run = async {
                let _slot = match ahead {
                    Some(slot) => slot,
                    None => gate.enter().await?,
                };
                let mut session = pool::Checkout::new(pool::checkout(&link, &pool, timeout).await?);
                let pinger = || pool::ping(tds.clone(), link.clone());
                let mut dog = Watchdog::new(&link, stall, pinger);
                let mut decoder = rows::RowDecoder::new(&link, schema)?;
                {
                    let client = session.client().ok_or_else(|| {
                        LinkError::new(&link, LinkErrorKind::Unavailable, "no session")
                    })?;
                    let stream = dog
                        .read(client.query(query.sql(), &[]))
                        .await?
                        .map_err(|e| tds_error(&link, e))?;
                    let mut rows = stream.into_row_stream();
                    while let Some(row) = dog.read(rows.next()).await? {
                        let row = row.map_err(|e| tds_error(&link, e))?;
                        if let Some(batch) = decoder.push(&row)? {
                            if !tx.send(batch).await {
                                return Ok(()); // consumer gone: the session is closed
                            }
                        }
                    }
                }
                session.finished();
                if let Some(batch) = decoder.finish()? {
                    let _ = tx.send(batch).await;
                }
                Ok::<(), LinkError>(())
            };
            let outcome = match statement_timeout {
                Some(limit) => match tokio::time::timeout(limit, run).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(LinkError::new(
                        &link,
                        LinkErrorKind::Query,
                        format!("canceling statement due to statement timeout ({limit:?})"),
                    )
                    .with_sqlstate("57014")),
                },
                None => run.await,
            };
            health.record(outcome.as_ref().map(|_| ()));
            outcome
        })
    }
}
