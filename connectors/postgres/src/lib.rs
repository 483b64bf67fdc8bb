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
pub mod privileges;
pub mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use futures::StreamExt;
use tautan_connector::health::{Gate, Limits, LinkHealth, Watchdog};
use tautan_connector::stream::spawn_reader_when;
use tautan_connector::{
    Link, LinkError, LinkErrorKind, ProbeReport, RemoteTableDef, SnapshotShare, SourceDialect,
    SourceQuery, SplitScan,
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
    /// Queue, statement and stall timeouts.
    pub limits: Limits,
}

/// Startup options of every session: its defaults, restored by the reset
/// each checkout runs.
pub const SESSION_OPTIONS: &str = "-c default_transaction_read_only=on -c TimeZone=UTC \
     -c standard_conforming_strings=on -c DateStyle=ISO,MDY -c IntervalStyle=postgres \
     -c extra_float_digits=1";

/// [`SESSION_OPTIONS`] with the link's statement timeout.
fn session_options(statement_timeout: Option<Duration>) -> String {
    match statement_timeout {
        Some(t) => format!("{SESSION_OPTIONS} -c statement_timeout={}", t.as_millis()),
        None => SESSION_OPTIONS.to_string(),
    }
}

/// Whether the source answers at all, on a connection of its own (not
/// from the pool, which may be full of stalled ones).
fn ping(
    connect: tokio_postgres::Config,
    link: String,
) -> BoxFuture<'static, Result<(), LinkError>> {
    Box::pin(async move {
        let (client, connection) = connect
            .connect(NoTls)
            .await
            .map_err(|e| pg_error(&link, e))?;
        let task = tokio::spawn(connection);
        let answer = client.simple_query("SELECT 1").await;
        drop(client);
        task.abort();
        answer.map(|_| ()).map_err(|e| pg_error(&link, e))
    })
}

/// A read-only link to one PostgreSQL database.
#[derive(Debug)]
pub struct PostgresLink {
    name: String,
    config: PostgresConfig,
    pool: Pool,
    /// How the pool connects, for pings on a connection of their own.
    connect: tokio_postgres::Config,
    gate: Gate,
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
            // tautan never sends anything but SELECT/COPY TO. String
            // literals are written for standard_conforming_strings=on
            // (`tautan_connector::sql::quote`). Startup options are the
            // session's defaults, which RESET ALL returns to.
            .options(session_options(config.limits.statement_timeout))
            // A dead peer (cable cut, host gone) is noticed by TCP itself.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if let Some(p) = &config.password {
            pg.password(p);
        }
        let connect = pg.clone();
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                // Every checkout first resets the session to its startup
                // state (CLOSE ALL, RESET ALL, UNLISTEN *, advisory
                // unlocks, DISCARD TEMP/SEQUENCES).
                recycling_method: RecyclingMethod::Clean,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(config.connect_timeout))
            // The reset a checkout runs is a round trip: a stalled source
            // must not hang it.
            .recycle_timeout(Some(config.connect_timeout))
            .wait_timeout(Some(config.limits.queue_timeout))
            .build()
            .map_err(|e| LinkError::new(&name, LinkErrorKind::Config, e.to_string()))?;
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
            connect,
            gate,
        })
    }

    /// A pooled session exactly as a scan gets it (reset to
    /// [`SESSION_OPTIONS`]); for `tautan check` and tests.
    pub async fn checkout(&self) -> Result<deadpool_postgres::Object, LinkError> {
        self.pool.get().await.map_err(|e| pool_error(&self.name, e))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LinkError> {
        self.checkout().await
    }

    /// What one scan needs of the link.
    fn scan(&self) -> Scan {
        Scan {
            pool: self.pool.clone(),
            link: self.name.clone(),
            gate: self.gate.clone(),
            connect: self.connect.clone(),
            stall: self.config.limits.stall_timeout,
        }
    }
}

/// What a scan task takes of its link.
struct Scan {
    pool: Pool,
    link: String,
    gate: Gate,
    connect: tokio_postgres::Config,
    stall: Duration,
}

/// Maps a pool error to a link error a user can act on.
fn pool_error(link: &str, e: PoolError) -> LinkError {
    match e {
        PoolError::Backend(e) => pg_error(link, e),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => LinkError::new(
            link,
            LinkErrorKind::Busy,
            format!("too many queries for link \"{link}\": no free connection in time"),
        ),
        PoolError::Timeout(_) => {
            LinkError::new(link, LinkErrorKind::Unavailable, "timed out connecting")
        }
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
        let excess_privileges = privileges::excess(&client)
            .await
            .map_err(|e| pg_error(&self.name, e))?;
        Ok(ProbeReport {
            server_version: version,
            read_only: ro == "on",
            user,
            excess_privileges,
        })
    }

    fn health(&self) -> Option<&Arc<LinkHealth>> {
        Some(self.gate.health())
    }

    fn execute(&self, query: SourceQuery, schema: SchemaRef) -> SendableRecordBatchStream {
        copy_scan(self.scan(), query, schema, None)
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
        query: SourceQuery,
        schema: SchemaRef,
        share: &SnapshotShare,
    ) -> SendableRecordBatchStream {
        let snapshot = share.clone().downcast::<snapshot::ExportedSnapshot>().ok();
        copy_scan(self.scan(), query, schema, snapshot)
    }
}

/// Streams `COPY (query) TO STDOUT (FORMAT binary)` decoded into batches
/// of `schema`; inside a transaction on `snapshot` when given. The scan
/// waits for its turn at the link ([`Gate`]), and every read from the
/// source is watched for stalls ([`Watchdog`]); how it ended is recorded in
/// the link's health.
///
/// It starts at once only while the link has connections to spare
/// ([`Gate::try_enter_ahead`]), else when it is first read.
fn copy_scan(
    scan: Scan,
    query: SourceQuery,
    schema: SchemaRef,
    snapshot: Option<Arc<snapshot::ExportedSnapshot>>,
) -> SendableRecordBatchStream {
    // Parts of a split scan take their slots together with the snapshot's:
    // ahead when the link has them to spare, else when first read
    // ([`snapshot::ExportedSnapshot::id`]).
    let (ahead, now) = match &snapshot {
        Some(s) => (None, s.start_ahead(&scan.gate)),
        None => {
            let slot = scan.gate.try_enter_ahead();
            let now = slot.is_some();
            (slot, now)
        }
    };
    spawn_reader_when(schema.clone(), now, move |tx| async move {
        let health = scan.gate.health().clone();
        let outcome = copy_rows(&scan, query, schema, snapshot, ahead, tx).await;
        health.record(outcome.as_ref().map(|_| ()));
        outcome
    })
}

async fn copy_rows(
    scan: &Scan,
    query: SourceQuery,
    schema: SchemaRef,
    snapshot: Option<Arc<snapshot::ExportedSnapshot>>,
    ahead: Option<tautan_connector::health::Slot>,
    tx: tautan_connector::stream::BatchSender,
) -> Result<(), LinkError> {
    let Scan {
        pool,
        link,
        gate,
        connect,
        stall,
    } = scan;
    let (link, stall) = (link.clone(), *stall);
    let pinger = || ping(connect.clone(), link.clone());
    // The COPY wrapper is sealed and checked like the query itself.
    let copy_sql = query.copy_binary().map_err(|e| {
        LinkError::new(&link, LinkErrorKind::Query, e.to_string()).with_sqlstate("XX000")
    })?;
    // Counts this part as started whatever happens below, so the
    // exporting transaction ends once every part has imported.
    let ticket = snapshot.as_ref().map(|s| s.ticket());
    // The snapshot first (its connection waits for a slot of its own),
    // then this part's slot and connection.
    let snapshot_id = match &snapshot {
        Some(s) => Some(s.id(gate).await?),
        None => None,
    };
    let reserved = snapshot.as_ref().and_then(|s| s.part_slot());
    let slot = match ahead.or(reserved) {
        Some(slot) => slot,
        None => gate.enter().await?,
    };
    let client = pool.get().await.map_err(|e| pool_error(&link, e))?;
    // If this task is dropped mid-stream (client went away, query
    // cancelled, stalled source), the guard closes the connection instead
    // of returning it to the pool: the server then stops the COPY.
    let mut guard = ConnectionGuard {
        client: Some(client),
        slot: Some(slot),
        cancel_timeout: stall,
    };
    let Some(client) = guard.client() else {
        return Ok(());
    };
    if let (Some(id), Some(ticket)) = (snapshot_id, ticket) {
        client
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{id}'"
            ))
            .await
            .map_err(|e| pg_error(&link, e))?;
        drop(ticket);
    }
    let mut dog = Watchdog::new(&link, stall, pinger);
    let stream = dog
        .read(client.copy_out(copy_sql.as_str()))
        .await?
        .map_err(|e| pg_error(&link, e))?;
    futures::pin_mut!(stream);
    let mut decoder = copy::CopyDecoder::new(&link, schema)?;
    while let Some(chunk) = dog.read(stream.next()).await? {
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
}

/// Holds a pooled connection during a scan; unless released after a clean
/// finish, the connection is detached from the pool and closed on drop.
struct ConnectionGuard {
    client: Option<deadpool_postgres::Object>,
    /// The statement's place at the link, held until a connection that is
    /// closed instead of pooled is gone: closing ones count against the
    /// link's cap too.
    slot: Option<tautan_connector::health::Slot>,
    /// How long the cancel request may take (a stalled server gets no
    /// more).
    cancel_timeout: Duration,
}

impl ConnectionGuard {
    fn release(&mut self) {
        self.client = None; // dropping the Object returns it to the pool
    }

    fn client(&self) -> Option<&deadpool_postgres::Object> {
        self.client.as_ref()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let slot = self.slot.take();
        if let Some(obj) = self.client.take() {
            // Stop the remote statement too (it may be busy before its
            // first row, where closing the socket goes unnoticed), then
            // close the connection.
            let client = deadpool_postgres::Object::take(obj);
            let token = client.cancel_token();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let timeout = self.cancel_timeout;
                runtime.spawn(async move {
                    let cancel = token.cancel_query(tokio_postgres::NoTls);
                    let _ = tokio::time::timeout(timeout, cancel).await;
                    drop(client);
                    drop(slot);
                });
            }
        }
    }
}
