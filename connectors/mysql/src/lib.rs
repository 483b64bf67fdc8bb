//! MySQL/MariaDB db link for tautan.
//!
//! Connections come from mysql_async's own pool, kept open between scans
//! and reset (`COM_RESET_CONNECTION`) whenever one goes back. Every session
//! — a new one, and every reset one — runs [`SESSION_SETUP`]:
//! `SET SESSION TRANSACTION READ ONLY` (the server refuses writes), UTC
//! `time_zone`, utf8mb4, and `NO_BACKSLASH_ESCAPES` (tautan's quoting of
//! string literals relies on it, see `tautan_connector::sql::quote`).
//! Tables are introspected from `information_schema` ([`introspect`]) and
//! read with the binary protocol, row values converted into Arrow builders
//! ([`rows`]).

pub mod introspect;
pub mod privileges;
pub mod rows;

use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::future::BoxFuture;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tautan_connector::health::{Gate, Limits, LinkHealth, Watchdog};
use tautan_connector::stream::spawn_reader_when;
use tautan_connector::{
    Link, LinkError, LinkErrorKind, ProbeReport, RemoteTableDef, SourceDialect, SourceQuery,
};

/// How to reach one MySQL or MariaDB server.
#[derive(Debug, Clone)]
pub struct MySqlConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Password, if any.
    pub password: Option<String>,
    /// Databases to expose as schemas; empty means every database the user
    /// can see except the system ones.
    pub databases: Vec<String>,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// How long to wait for a connection before calling the link down.
    pub connect_timeout: Duration,
    /// Queue, statement and stall timeouts.
    pub limits: Limits,
}

/// A read-only link to one MySQL/MariaDB server.
#[derive(Debug)]
pub struct MySqlLink {
    name: String,
    config: MySqlConfig,
    pool: Pool,
    /// How the pool connects: for pings and `KILL QUERY` on connections
    /// of their own.
    opts: Opts,
    gate: Gate,
}

/// Statements every session runs when it is opened and every time it is
/// reset on its way back to the pool, before anything else.
pub const SESSION_SETUP: &[&str] = &[
    "SET SESSION TRANSACTION READ ONLY",
    "SET time_zone = '+00:00'",
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'NO_BACKSLASH_ESCAPES')",
    "SET NAMES utf8mb4",
];

/// How long an idle pooled connection is kept open.
const IDLE_TTL: Duration = Duration::from_secs(60);

impl MySqlLink {
    /// Builds the link and its (lazy) pool; nothing is contacted yet.
    pub fn new(name: impl Into<String>, config: MySqlConfig) -> Result<Self, LinkError> {
        let name = name.into();
        let max = config.pool_size.max(1);
        let constraints = PoolConstraints::new(0, max)
            .ok_or_else(|| LinkError::new(&name, LinkErrorKind::Config, "invalid pool size"))?;
        let mut setup: Vec<String> = SESSION_SETUP.iter().map(|s| s.to_string()).collect();
        if let Some(t) = config.limits.statement_timeout {
            // MariaDB only (`/*M!`): MySQL calls it max_execution_time.
            setup.push(format!(
                "/*M! SET SESSION max_statement_time = {:.3} */",
                t.as_secs_f64()
            ));
        }
        let opts = OptsBuilder::default()
            .ip_or_hostname(config.host.clone())
            .tcp_port(config.port)
            .user(Some(config.user.clone()))
            .pass(config.password.clone())
            .prefer_socket(false)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .setup(setup)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(true)
                    // Idle connections stay open this long (mysql_async's
                    // default, 0, closes every connection as it returns).
                    .with_inactive_connection_ttl(IDLE_TTL),
            );
        let opts = Opts::from(opts);
        let pool = Pool::new(opts.clone());
        let gate = Gate::new(
            &name,
            config.pool_size,
            config.limits.queue_timeout,
            Default::default(),
        );
        Ok(Self {
            name,
            config,
            pool,
            opts,
            gate,
        })
    }

    /// A pooled session exactly as a scan gets it (set up as
    /// [`SESSION_SETUP`] says); for `tautan check` and tests.
    pub async fn checkout(&self) -> Result<Conn, LinkError> {
        get_conn(&self.name, &self.pool, self.config.connect_timeout).await
    }

    async fn conn(&self) -> Result<Conn, LinkError> {
        self.checkout().await
    }
}

async fn get_conn(link: &str, pool: &Pool, timeout: Duration) -> Result<Conn, LinkError> {
    match tokio::time::timeout(timeout, pool.get_conn()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(my_error(link, e)),
        Err(_) => Err(LinkError::new(
            link,
            LinkErrorKind::Unavailable,
            format!("no connection within {timeout:?}"),
        )),
    }
}

/// Whether the server answers at all, on a connection of its own.
fn ping(opts: Opts, link: String) -> BoxFuture<'static, Result<(), LinkError>> {
    Box::pin(async move {
        let mut conn = Conn::new(opts).await.map_err(|e| my_error(&link, e))?;
        let answer = conn.ping().await.map_err(|e| my_error(&link, e));
        let _ = conn.disconnect().await;
        answer
    })
}

/// Stops a statement at the server unless disarmed: `KILL QUERY <id>` from
/// a connection of its own (dropping a connection mid-result would
/// otherwise leave the server running the statement while mysql_async
/// drains its rows).
struct KillOnDrop {
    opts: Option<Opts>,
    id: u32,
    /// The statement's place at the link, held until the kill is done.
    slot: Option<tautan_connector::health::Slot>,
    /// How long the kill may take (a stalled server gets no more).
    timeout: Duration,
}

impl KillOnDrop {
    fn disarm(&mut self) {
        self.opts = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let (Some(opts), Ok(runtime)) = (self.opts.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let id = self.id;
        let slot = self.slot.take();
        let timeout = self.timeout;
        runtime.spawn(async move {
            let kill = async {
                if let Ok(mut conn) = Conn::new(opts).await {
                    let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
                    let _ = conn.disconnect().await;
                }
            };
            let _ = tokio::time::timeout(timeout, kill).await;
            drop(slot);
        });
    }
}

/// Maps a driver error to a link error a user can act on.
pub(crate) fn my_error(link: &str, e: mysql_async::Error) -> LinkError {
    use mysql_async::Error as E;
    match &e {
        E::Server(s) => {
            // 1044/1045: access denied; 1049: unknown database;
            // 1040/1203: the server (or this account) is at its
            // connection limit — busy, not down.
            let kind = if matches!(s.code, 1044 | 1045 | 1049 | 1698) {
                LinkErrorKind::Authentication
            } else if matches!(s.code, 1040 | 1203) {
                LinkErrorKind::Busy
            } else {
                LinkErrorKind::Query
            };
            let msg = s.message.clone();
            let state = s.state.clone();
            let mut err = LinkError::new(link, kind, msg);
            // 25006: read-only; 42xxx: the statement itself was rejected
            // (syntax, unknown column): the client sees MySQL's SQLSTATE.
            if kind == LinkErrorKind::Query && (state == "25006" || state.starts_with("42")) {
                err = err.with_sqlstate(state);
            }
            err.with_source(e)
        }
        E::Io(_) | E::Driver(_) => {
            let msg = e.to_string();
            LinkError::new(link, LinkErrorKind::Unavailable, msg).with_source(e)
        }
        _ => {
            let msg = e.to_string();
            LinkError::new(link, LinkErrorKind::Query, msg).with_source(e)
        }
    }
}

#[async_trait]
impl Link for MySqlLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn dialect(&self) -> SourceDialect {
        SourceDialect::MySql
    }

    async fn introspect(&self) -> Result<Vec<RemoteTableDef>, LinkError> {
        let mut conn = self.conn().await?;
        introspect::tables(&self.name, &mut conn, &self.config.databases).await
    }

    async fn probe(&self) -> Result<ProbeReport, LinkError> {
        let mut conn = self.conn().await?;
        let (version, user): (String, String) = conn
            .query_first("SELECT VERSION(), CURRENT_USER()")
            .await
            .map_err(|e| my_error(&self.name, e))?
            .unwrap_or_default();
        // MySQL 8 and MariaDB 11.1+ call it transaction_read_only; older
        // MariaDB only knows tx_read_only.
        let ro: Option<i64> = match conn.query_first("SELECT @@transaction_read_only").await {
            Ok(v) => v,
            Err(_) => conn
                .query_first("SELECT @@tx_read_only")
                .await
                .map_err(|e| my_error(&self.name, e))?,
        };
        let grants: Vec<String> = conn
            .query("SHOW GRANTS FOR CURRENT_USER()")
            .await
            .map_err(|e| my_error(&self.name, e))?;
        Ok(ProbeReport {
            server_version: version,
            read_only: ro == Some(1),
            user,
            excess_privileges: privileges::excess(&grants),
        })
    }

    fn health(&self) -> Option<&std::sync::Arc<LinkHealth>> {
        Some(self.gate.health())
    }

    /// Waits for its turn at the link ([`Gate`]), watches every read for a
    /// stalled source ([`Watchdog`]), and when dropped before the end (a
    /// cancel, a client gone, a stall) stops the statement at the source
    /// with `KILL QUERY` from a connection of its own.
    fn execute(&self, query: SourceQuery, schema: SchemaRef) -> SendableRecordBatchStream {
        let pool = self.pool.clone();
        let link = self.name.clone();
        let timeout = self.config.connect_timeout;
        let gate = self.gate.clone();
        let opts = self.opts.clone();
        let stall = self.config.limits.stall_timeout;
        // Started now only with connections to spare; else when read.
        let ahead = gate.try_enter_ahead();
        spawn_reader_when(schema.clone(), ahead.is_some(), move |tx| async move {
            let health = gate.health().clone();
            let outcome = async {
                let slot = match ahead {
                    Some(slot) => slot,
                    None => gate.enter().await?,
                };
                let mut conn = get_conn(&link, &pool, timeout).await?;
                let mut kill = KillOnDrop {
                    opts: Some(opts.clone()),
                    id: conn.id(),
                    slot: Some(slot),
                    timeout,
                };
                let pinger = || ping(opts.clone(), link.clone());
                let mut dog = Watchdog::new(&link, stall, pinger);
                let mut result = dog
                    .read(conn.exec_iter(query.sql(), ()))
                    .await?
                    .map_err(|e| my_error(&link, e))?;
                let mut decoder = rows::RowDecoder::new(&link, schema)?;
                while let Some(row) = dog
                    .read(result.next())
                    .await?
                    .map_err(|e| my_error(&link, e))?
                {
                    if let Some(batch) = decoder.push(row)? {
                        if !tx.send(batch).await {
                            return Ok(()); // consumer gone: the guard kills the rest
                        }
                    }
                }
                kill.disarm();
                if let Some(batch) = decoder.finish()? {
                    let _ = tx.send(batch).await;
                }
                Ok(())
            }
            .await;
            health.record(outcome.as_ref().map(|_| ()));
            outcome
        })
    }
}
