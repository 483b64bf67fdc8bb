//! PostgreSQL db link for tautan.
//!
//! Connections come from a [deadpool-postgres](deadpool_postgres) pool and
//! are opened with `default_transaction_read_only=on`, so the source itself
//! refuses writes whatever SQL reaches it. Tables are introspected from
//! `pg_catalog` ([`introspect`]) and read with
//! `COPY (SELECT ...) TO STDOUT (FORMAT binary)`, decoded straight into Arrow
//! builders ([`copy`]). A large table's full scan is split into page
//! (`ctid`) ranges read in parallel by several connections that all import
//! one exported snapshot ([`snapshot`]), so the parts see the same data.

pub mod copy;
pub mod introspect;
pub mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use futures::StreamExt;
use tautan_connector::stream::spawn_reader;
use tautan_connector::{
    Link, LinkError, LinkErrorKind, ProbeReport, RemoteTableDef, SnapshotShare, SourceDialect,
    SplitScan,
};
use tokio_postgres::NoTls;

/// How to reach one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Login user (ideally one with only SELECT grants).
    pub user: String,
    /// Password, if the server asks for one.
    pub password: Option<String>,
    /// Schemas to expose; empty means every schema the user can read.
    pub schemas: Vec<String>,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// How long to wait for a connection before calling the link down.
    pub connect_timeout: Duration,
}

/// A read-only link to one PostgreSQL database.
#[derive(Debug)]
pub struct PostgresLink {
    name: String,
    config: PostgresConfig,
    pool: Pool,
}

impl PostgresLink {
    /// Builds the link and its (lazy) pool; nothing is contacted yet.
    pub fn new(name: impl Into<String>, config: PostgresConfig) -> Result<Self, LinkError> {
        let name = name.into();
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.host)
            .port(config.port)
            .dbname(&config.database)
            .user(&config.user)
            .application_name("tautan")
            .connect_timeout(config.connect_timeout)
            // Read-only by construction: every transaction on this session
            // is READ ONLY unless someone explicitly asks otherwise, and
            // tautan never sends anything but SELECT/COPY TO.
            .options("-c default_transaction_read_only=on -c TimeZone=UTC");
        if let Some(p) = &config.password {
            pg.password(p);
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(config.connect_timeout))
            .wait_timeout(Some(config.connect_timeout * 4))
            .build()
            .map_err(|e| LinkError::new(&name, LinkErrorKind::Config, e.to_string()))?;
        Ok(Self { name, config, pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LinkError> {
        self.pool.get().await.map_err(|e| pool_error(&self.name, e))
    }
}

/// Maps a pool error to a link error a user can act on.
fn pool_error(link: &str, e: PoolError) -> LinkError {
    match e {
        PoolError::Backend(e) => pg_error(link, e),
        PoolError::Timeout(_) => LinkError::new(
            link,
            LinkErrorKind::Unavailable,
            "timed out waiting for a connection",
        ),
        other => LinkError::new(link, LinkErrorKind::Unavailable, other.to_string()),
    }
}

/// Maps a driver error: refused credentials, unreachable server, or a query
/// the source failed (keeping its SQLSTATE).
pub(crate) fn pg_error(link: &str, e: tokio_postgres::Error) -> LinkError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let kind = if code.starts_with("28") || code == "3D000" {
            LinkErrorKind::Authentication
        } else if code.starts_with("08") || code.starts_with("57P") {
            LinkErrorKind::ConnectionLost
        } else {
            LinkErrorKind::Query
        };
        let message = db.message().to_string();
        return LinkError::new(link, kind, message)
            .with_sqlstate(code)
            .with_source(e);
    }
    let kind = if e.is_closed() {
        LinkErrorKind::ConnectionLost
    } else {
        LinkErrorKind::Unavailable
    };
    let mut message = e.to_string();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(c) = cause {
        message = format!("{message}: {c}");
        cause = c.source();
    }
    LinkError::new(link, kind, message).with_source(e)
}

#[async_trait]
impl Link for PostgresLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn dialect(&self) -> SourceDialect {
        SourceDialect::Postgres
    }

    async fn introspect(&self) -> Result<Vec<RemoteTableDef>, LinkError> {
        let client = self.client().await?;
        introspect::tables(&self.name, &client, &self.config.schemas).await
    }

    async fn probe(&self) -> Result<ProbeReport, LinkError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT version(), current_setting('transaction_read_only'), current_user::text",
                &[],
            )
            .await
            .map_err(|e| pg_error(&self.name, e))?;
        let version: String = row.get(0);
        let ro: String = row.get(1);
        let user: String = row.get(2);
        Ok(ProbeReport {
            server_version: version,
            read_only: ro == "on",
            user,
        })
    }

    fn execute(&self, sql: String, schema: SchemaRef) -> SendableRecordBatchStream {
        copy_scan(self.pool.clone(), self.name.clone(), sql, schema, None)
    }

    fn split_scan(&self, def: &RemoteTableDef, parts: usize) -> Option<SplitScan> {
        // One connection holds the snapshot while the parts import it.
        let parts = parts.min(self.config.pool_size.saturating_sub(1));
        let predicates = snapshot::page_ranges(def.pages?, parts)?;
        let share: SnapshotShare = Arc::new(snapshot::ExportedSnapshot::new(
            self.pool.clone(),
            self.name.clone(),
            predicates.len(),
        ));
        Some(SplitScan { predicates, share })
    }

    fn execute_part(
        &self,
        sql: String,
        schema: SchemaRef,
        share: &SnapshotShare,
    ) -> SendableRecordBatchStream {
        let snapshot = share.clone().downcast::<snapshot::ExportedSnapshot>().ok();
        copy_scan(self.pool.clone(), self.name.clone(), sql, schema, snapshot)
    }
}

/// Streams `COPY (sql) TO STDOUT (FORMAT binary)` decoded into batches of
/// `schema`; inside a transaction on `snapshot` when given.
fn copy_scan(
    pool: Pool,
    link: String,
    sql: String,
    schema: SchemaRef,
    snapshot: Option<Arc<snapshot::ExportedSnapshot>>,
) -> SendableRecordBatchStream {
    spawn_reader(schema.clone(), move |tx| async move {
        // Counts this part as started whatever happens below, so the
        // exporting transaction ends once every part has imported.
        let ticket = snapshot.as_ref().map(|s| s.ticket());
        let client = pool.get().await.map_err(|e| pool_error(&link, e))?;
        // If this task is dropped mid-stream (client went away, query
        // cancelled), the guard closes the connection instead of
        // returning it to the pool: the server then stops the COPY.
        let mut guard = ConnectionGuard(Some(client));
        let Some(client) = guard.0.as_ref() else {
            return Ok(());
        };
        if let (Some(snapshot), Some(ticket)) = (&snapshot, ticket) {
            let id = snapshot.id().await?;
            client
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
                ))
                .await
                .map_err(|e| pg_error(&link, e))?;
            drop(ticket);
        }
        let copy_sql = format!("COPY ({sql}) TO STDOUT (FORMAT binary)");
        let stream = client
            .copy_out(copy_sql.as_str())
            .await
            .map_err(|e| pg_error(&link, e))?;
        futures::pin_mut!(stream);
        let mut decoder = copy::CopyDecoder::new(&link, schema)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| pg_error(&link, e))?;
            for batch in decoder.push(&chunk)? {
                if !tx.send(batch).await {
                    return Ok(()); // consumer gone: guard closes the connection
                }
            }
        }
        if let Some(batch) = decoder.finish()? {
            if !tx.send(batch).await {
                return Ok(());
            }
        }
        if snapshot.is_some() {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| pg_error(&link, e))?;
        }
        guard.release();
        Ok(())
    })
}

/// Holds a pooled connection during a scan; unless released after a clean
/// finish, the connection is detached from the pool and closed on drop.
struct ConnectionGuard(Option<deadpool_postgres::Object>);

impl ConnectionGuard {
    fn release(&mut self) {
        self.0 = None; // dropping the Object returns it to the pool
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            // Stop the remote statement too (it may be busy before its
            // first row, where closing the socket goes unnoticed), then
            // close the connection.
            let client = deadpool_postgres::Object::take(obj);
            let token = client.cancel_token();
            drop(client);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = token.cancel_query(tokio_postgres::NoTls).await;
                });
            }
        }
    }
}
