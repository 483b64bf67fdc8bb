//! What every tautan db link implements.
//!
//! A *link* is one agency's data source, registered read-only. The engine
//! sees every link through the small [`Link`] trait:
//!
//! * [`Link::introspect`] lists the remote tables and maps their columns to
//!   Arrow types ([`RemoteTableDef`]);
//! * [`Link::execute`] runs one read-only `SELECT` in the link's SQL dialect
//!   and streams the rows back as Arrow record batches;
//! * [`Link::probe`] checks reachability, credentials and read-only-ness for
//!   `tautan check`.
//!
//! [`RemoteTable`] turns one remote table into a DataFusion
//! [`TableProvider`](datafusion::catalog::TableProvider): projections,
//! filters the source can evaluate, and `LIMIT` are written into the SQL sent
//! to the source ([`pushdown`]), and [`RemoteScanExec`] streams the answer.

pub mod error;
pub mod exec;
pub mod pushdown;
pub mod stream;
pub mod table;
pub mod types;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;

pub use error::{LinkError, LinkErrorKind};
pub use exec::RemoteScanExec;
pub use pushdown::SourceDialect;
pub use table::RemoteTable;

/// One table (or view) of a link, with its columns mapped to Arrow.
#[derive(Debug, Clone)]
pub struct RemoteTableDef {
    /// Remote schema (PostgreSQL schema, MySQL database).
    pub schema: String,
    /// Remote table name, exactly as the source spells it.
    pub name: String,
    /// Columns as Arrow fields. Field metadata [`types::PG_TYPE_KEY`] names
    /// the PostgreSQL type clients should see when Arrow alone cannot say it
    /// (uuid, json, enum, ...).
    pub arrow_schema: SchemaRef,
    /// For each column, the expression to select it with (usually the quoted
    /// column name; a cast to text for types with no Arrow mapping).
    pub select_exprs: Vec<String>,
    /// `true` for views.
    pub is_view: bool,
    /// Remote table comment, if any.
    pub comment: Option<String>,
}

/// What `tautan check` reports for a reachable link.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Server version string as the source reports it.
    pub server_version: String,
    /// Whether the session the link opens is read-only, as the source says.
    pub read_only: bool,
    /// User the link is logged in as.
    pub user: String,
}

/// A read-only connection to one agency's data source.
#[async_trait]
pub trait Link: Send + Sync + Debug {
    /// The link's name: the catalog it appears under.
    fn name(&self) -> &str;

    /// The source kind (`postgres`, `mysql`, `files`).
    fn kind(&self) -> &'static str;

    /// How SQL for this source is written (quoting, what filters it can
    /// evaluate exactly).
    fn dialect(&self) -> SourceDialect;

    /// Lists the remote tables visible to the link's account.
    async fn introspect(&self) -> Result<Vec<RemoteTableDef>, LinkError>;

    /// Checks reachability, credentials and that the session is read-only.
    async fn probe(&self) -> Result<ProbeReport, LinkError>;

    /// Runs `sql` (a single `SELECT` produced by [`pushdown`]) on the source
    /// and streams its rows as batches of `schema`. Connecting happens when
    /// the stream is first polled, never before.
    fn execute(&self, sql: String, schema: SchemaRef) -> SendableRecordBatchStream;
}

/// Shared handle to a link.
pub type LinkRef = Arc<dyn Link>;
