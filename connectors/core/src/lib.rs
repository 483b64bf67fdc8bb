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
//! filters the source can evaluate, and `LIMIT` are written into the
//! statement sent to the source ([`pushdown`]), and [`RemoteScanExec`]
//! streams the answer. Every statement is a [`SourceQuery`]: built as a
//! syntax tree, written with tautan's own quoting and checked by a guard
//! before it leaves ([`sql`]).
//! A large full scan may be split into parts that run in parallel on one
//! snapshot of the source ([`Link::split_scan`], [`ScanOptions`]); whole
//! sub-plans go to a link through [`federation`]. What a query sent to its
//! links is written down for the audit log ([`sent`]).

pub mod batch;
pub mod dialect;
pub mod error;
pub mod exec;
pub mod federation;
pub mod health;
pub mod pushdown;
pub mod sent;
pub mod sql;
pub mod stream;
pub mod table;
pub mod tsql;
pub mod types;

use std::any::Any;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::sqlparser::ast;

pub use dialect::SourceDialect;
pub use error::{LinkError, LinkErrorKind};
pub use exec::RemoteScanExec;
pub use sql::SourceQuery;
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
    /// For each column, how it is selected (as it is, or through a cast
    /// for types with no Arrow mapping).
    pub reads: Vec<ColumnRead>,
    /// `true` for views.
    pub is_view: bool,
    /// Remote table comment, if any.
    pub comment: Option<String>,
    /// Heap pages the source estimated when the table was introspected
    /// (PostgreSQL tables and materialized views; `None` elsewhere). Large
    /// tables are split into page ranges for parallel scans.
    pub pages: Option<u64>,
    /// What the source estimated about the table's contents at
    /// introspection; used to decide what is worth sending to it.
    pub estimates: TableEstimates,
}

/// How one column of a remote table is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRead {
    /// As it is: its remote type maps to its Arrow type.
    Plain,
    /// Through `CAST(column AS <type>)`, `<type>` a name from the
    /// connector's own mapping (`text`, `int8`, `CHAR`): types with no Arrow
    /// mapping are read as text. Filters on such columns stay in DataFusion.
    Cast(&'static str),
}

/// Row and distinct-value estimates a source keeps for a table
/// (PostgreSQL: `pg_class.reltuples`, `pg_stats.n_distinct`). Empty when
/// the source has none (never analyzed, MySQL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableEstimates {
    /// Estimated rows.
    pub rows: Option<f64>,
    /// Estimated distinct values per column, in schema order (absolute
    /// counts; an empty vector when unknown for every column).
    pub distinct: Vec<Option<f64>>,
}

impl TableEstimates {
    /// Estimated distinct values of column `index`.
    pub fn distinct(&self, index: usize) -> Option<f64> {
        self.distinct.get(index).copied().flatten()
    }
}

/// A full scan split into disjoint parts ([`Link::split_scan`]).
pub struct SplitScan {
    /// One predicate per part, to be AND-ed into the scan's `WHERE`; the
    /// parts together cover the table exactly once.
    pub predicates: Vec<ast::Expr>,
    /// What the parts share so they read one snapshot of the source; handed
    /// back to [`Link::execute_part`].
    pub share: SnapshotShare,
}

/// Link-specific state shared by the parts of one split scan (on
/// PostgreSQL: the exported snapshot and the transaction holding it).
pub type SnapshotShare = Arc<dyn Any + Send + Sync>;

/// Per-session scan options, kept as an extension of DataFusion's session
/// config (`SessionConfig::with_extension`).
#[derive(Debug)]
pub struct ScanOptions {
    parts: AtomicUsize,
}

impl ScanOptions {
    /// Options splitting large scans into at most `parts` parts.
    pub fn new(parts: usize) -> Self {
        Self {
            parts: AtomicUsize::new(parts.max(1)),
        }
    }

    /// Most parts a large full scan is split into (1: never split).
    pub fn parts(&self) -> usize {
        self.parts.load(Ordering::Relaxed)
    }

    /// Changes [`Self::parts`] (`SET tautan.scan_parts = n`).
    pub fn set_parts(&self, parts: usize) {
        self.parts.store(parts.max(1), Ordering::Relaxed)
    }
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
    /// What the link's account can do beyond reading, one sentence each
    /// (a least-privilege account has none): `tautan check` prints them.
    pub excess_privileges: Vec<String>,
}

/// A read-only connection to one agency's data source.
#[async_trait]
pub trait Link: Send + Sync + Debug {
    /// The link's name: the catalog it appears under.
    fn name(&self) -> &str;

    /// The source kind (`postgres`, `mysql`, `sqlserver`, `files`).
    fn kind(&self) -> &'static str;

    /// How SQL for this source is written (quoting, what filters it can
    /// evaluate exactly).
    fn dialect(&self) -> SourceDialect;

    /// Lists the remote tables visible to the link's account.
    async fn introspect(&self) -> Result<Vec<RemoteTableDef>, LinkError>;

    /// Checks reachability, credentials and that the session is read-only.
    async fn probe(&self) -> Result<ProbeReport, LinkError>;

    /// Connections in use, statements waiting and the last source failure
    /// (`system.links`); `None` for links without a pool.
    fn health(&self) -> Option<&Arc<health::LinkHealth>> {
        None
    }

    /// Runs `query` on the source and streams its rows as batches of
    /// `schema`. Connecting happens when the stream is first polled, never
    /// before.
    fn execute(&self, query: SourceQuery, schema: SchemaRef) -> SendableRecordBatchStream;

    /// Splits a full scan of `def` into at most `parts` parts that can run
    /// in parallel and read one snapshot; `None` when this link or table
    /// does not split (the default).
    fn split_scan(&self, def: &RemoteTableDef, parts: usize) -> Option<SplitScan> {
        let _ = (def, parts);
        None
    }

    /// Runs one part of a split scan (`query` already carries its
    /// predicate).
    fn execute_part(
        &self,
        query: SourceQuery,
        schema: SchemaRef,
        share: &SnapshotShare,
    ) -> SendableRecordBatchStream {
        let _ = share;
        self.execute(query, schema)
    }
}

/// Shared handle to a link.
pub type LinkRef = Arc<dyn Link>;
