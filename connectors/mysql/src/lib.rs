//! MySQL/MariaDB db link for tautan.
//!
//! Connections come from mysql_async's own pool. Every session starts with
//! `SET SESSION TRANSACTION READ ONLY` (the server refuses writes), UTC
//! `time_zone`, and `NO_BACKSLASH_ESCAPES` (so string literals written by
//! the unparser mean the same as in PostgreSQL). Tables are introspected
//! from `information_schema` ([`introspect`]) and read with the binary
//! protocol, row values converted into Arrow builders ([`rows`]).

pub mod introspect;
pub mod rows;

use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tautan_connector::stream::spawn_reader;
use tautan_connector::{
    Link, LinkError, LinkErrorKind, ProbeReport, RemoteTableDef, SourceDialect,
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
}

/// A read-only link to one MySQL/MariaDB server.
#[derive(Debug)]
pub struct MySqlLink {
    name: String,
    config: MySqlConfig,
    pool: Pool,
}

/// Statements every pooled session runs once, before anything else.
const SESSION_INIT: &[&str] = &[
    "SET SESSION TRANSACTION READ ONLY",
    "SET time_zone = '+00:00'",
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'NO_BACKSLASH_ESCAPES')",
    "SET NAMES utf8mb4",
];

impl MySqlLink {
    /// Builds the link and its (lazy) pool; nothing is contacted yet.
    pub fn new(name: impl Into<String>, config: MySqlConfig) -> Result<Self, LinkError> {
        let name = name.into();
        let max = config.pool_size.max(1);
        let constraints = PoolConstraints::new(0, max)
            .ok_or_else(|| LinkError::new(&name, LinkErrorKind::Config, "invalid pool size"))?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(config.host.clone())
            .tcp_port(config.port)
            .user(Some(config.user.clone()))
            .pass(config.password.clone())
            .prefer_socket(false)
            .init(SESSION_INIT.to_vec())
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        let pool = Pool::new(opts);
        Ok(Self { name, config, pool })
    }

    async fn conn(&self) -> Result<Conn, LinkError> {
        get_conn(&self.name, &self.pool, self.config.connect_timeout).await
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

/// Maps a driver error to a link error a user can act on.
pub(crate) fn my_error(link: &str, e: mysql_async::Error) -> LinkError {
    use mysql_async::Error as E;
    match &e {
        E::Server(s) => {
            // 1044/1045: access denied; 1049: unknown database.
            let kind = if matches!(s.code, 1044 | 1045 | 1049 | 1698) {
                LinkErrorKind::Authentication
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
        Ok(ProbeReport {
            server_version: version,
            read_only: ro == Some(1),
            user,
        })
    }

    fn execute(&self, sql: String, schema: SchemaRef) -> SendableRecordBatchStream {
        let pool = self.pool.clone();
        let link = self.name.clone();
        let timeout = self.config.connect_timeout;
        spawn_reader(schema.clone(), move |tx| async move {
            let mut conn = get_conn(&link, &pool, timeout).await?;
            let mut result = conn
                .exec_iter(sql.as_str(), ())
                .await
                .map_err(|e| my_error(&link, e))?;
            let mut decoder = rows::RowDecoder::new(&link, schema)?;
            while let Some(row) = result.next().await.map_err(|e| my_error(&link, e))? {
                if let Some(batch) = decoder.push(row)? {
                    if !tx.send(batch).await {
                        return Ok(());
                    }
                }
            }
            if let Some(batch) = decoder.finish()? {
                let _ = tx.send(batch).await;
            }
            Ok(())
        })
    }
}
