//! `system.audit`: the audit log as a table, read from the segment files
//! as the query runs (bounded memory however long the log).
//!
//! Who sees what: the custodian's staff (a grant of every table) see every
//! record; a producer agency's staff (`producer_of = ["<link>"]` on the
//! user) see the intents of statements that read their links and the
//! completions of statements sent to them; anyone else is refused (42501).
//! The log holds no secret to hide: passwords and the pseudonym key are
//! never written to it.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::ExecutionPlan;
use serde_json::Value;

use super::record::{Kind, Record};
use super::segment::{list_segments, Line, LineReader};
use crate::error::QueryError;
use crate::grants::Access;

/// Records per batch.
const BATCH: usize = 4096;

/// Which records a reader may see.
#[derive(Debug, Clone)]
enum Visible {
    /// Every record (the custodian).
    All,
    /// Records touching these links (a producer's staff).
    Links(Vec<String>),
    /// None: the table is refused.
    Nothing,
}

impl Visible {
    fn of(access: &Access) -> Visible {
        if access.is_custodian() {
            Visible::All
        } else if !access.producer_of.is_empty() {
            Visible::Links(access.producer_of.clone())
        } else {
            Visible::Nothing
        }
    }

    fn shows(&self, record: &Record) -> bool {
        let links = match self {
            Visible::All => return true,
            Visible::Nothing => return false,
            Visible::Links(links) => links,
        };
        let names: Vec<&str> = match record.kind {
            Kind::Intent => strings_at(&record.fields, "reads", "table")
                .into_iter()
                .filter_map(|t| t.split('.').next())
                .collect(),
            Kind::Completion => strings_at(&record.fields, "links", "link"),
            _ => Vec::new(),
        };
        names.iter().any(|n| links.iter().any(|l| l == n))
    }
}

/// Whether `access` may read `system.audit` at all (the grant check asks
/// before planning, so a refusal is recorded as a denial).
pub fn may_read(access: &Access) -> bool {
    !matches!(Visible::of(access), Visible::Nothing)
}

/// 42501 for a reader who may not read the log.
pub fn refused() -> QueryError {
    QueryError::new(
        "42501",
        "permission denied for table audit (the custodian's staff, and a producer's staff for \
         their own links, may read it)",
    )
}

/// `fields[list][*][key]` as strings.
fn strings_at<'a>(fields: &'a Value, list: &str, key: &str) -> Vec<&'a str> {
    fields
        .get(list)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get(key).and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The `system.audit` table for one reader.
#[derive(Debug)]
pub struct AuditTable {
    dir: Option<PathBuf>,
    visible: Visible,
    schema: SchemaRef,
}

impl AuditTable {
    /// The log in `dir` (none: the log is off, the table is empty), as
    /// `access` may see it.
    pub fn new(dir: Option<PathBuf>, access: &Access) -> Self {
        AuditTable {
            dir,
            visible: Visible::of(access),
            schema: schema(),
        }
    }
}

fn schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
        Field::new("kind", DataType::Utf8, false),
        text("user"),
        text("door"),
        text("client"),
        text("application"),
        text("purpose"),
        text("sql"),
        text("decision"),
        text("sqlstate"),
        Field::new("rows", DataType::Int64, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("duration_ms", DataType::Float64, true),
        Field::new("intent", DataType::Int64, true),
        text("tables"),
        text("links"),
        text("fields"),
        Field::new("hash", DataType::Utf8, false),
    ]))
}

#[async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if matches!(self.visible, Visible::Nothing) {
            return Err(DataFusionError::External(Box::new(refused())));
        }
        let partition = Arc::new(Segments {
            dir: self.dir.clone(),
            visible: self.visible.clone(),
            schema: self.schema.clone(),
        });
        StreamingTable::try_new(self.schema.clone(), vec![partition])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// Reads every segment in order, on a blocking thread.
#[derive(Debug)]
struct Segments {
    dir: Option<PathBuf>,
    visible: Visible,
    schema: SchemaRef,
}

impl PartitionStream for Segments {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStream::builder(self.schema.clone(), 2);
        let tx = builder.tx();
        let (dir, visible, schema) = (self.dir.clone(), self.visible.clone(), self.schema.clone());
        builder.spawn_blocking(move || {
            let Some(dir) = dir else { return Ok(()) };
            let fail = |e: super::AuditError| DataFusionError::External(Box::new(e));
            let mut rows = Rows::default();
            for segment in list_segments(&dir).map_err(fail)? {
                let mut reader = LineReader::open(&segment.path).map_err(fail)?;
                while let Some(line) = reader.next_line().map_err(fail)? {
                    // A line cut short by a crash is not a record yet.
                    let Line::Full { bytes, .. } = line else {
                        continue;
                    };
                    let Ok(record) = Record::parse(bytes) else {
                        continue;
                    };
                    if !visible.shows(&record) {
                        continue;
                    }
                    rows.push(&record);
                    if rows.len == BATCH {
                        let batch = std::mem::take(&mut rows).finish(&schema)?;
                        if tx.blocking_send(Ok(batch)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            if rows.len > 0 {
                let _ = tx.blocking_send(rows.finish(&schema));
            }
            Ok(())
        });
        builder.build()
    }
}

/// Column builders for one batch.
#[derive(Default)]
struct Rows {
    len: usize,
    seq: Int64Builder,
    ts: TimestampMicrosecondBuilder,
    kind: StringBuilder,
    text: [StringBuilder; 8],
    rows: Int64Builder,
    bytes: Int64Builder,
    duration: Float64Builder,
    intent: Int64Builder,
    tables: StringBuilder,
    links: StringBuilder,
    fields: StringBuilder,
    hash: StringBuilder,
}

/// The text columns taken straight from `fields`, in schema order.
const TEXT_FIELDS: [&str; 8] = [
    "user",
    "door",
    "client",
    "application",
    "purpose",
    "sql",
    "decision",
    "sqlstate",
];

impl Rows {
    fn push(&mut self, r: &Record) {
        let f = &r.fields;
        self.len += 1;
        self.seq
            .append_value(i64::try_from(r.seq).unwrap_or(i64::MAX));
        let micros =
            datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(&r.ts)
                .map(|n| n / 1000)
                .unwrap_or(0);
        self.ts.append_value(micros);
        self.kind.append_value(r.kind.as_str());
        for (builder, key) in self.text.iter_mut().zip(TEXT_FIELDS) {
            builder.append_option(f.get(key).and_then(Value::as_str));
        }
        self.rows
            .append_option(f.get("rows").and_then(Value::as_i64));
        self.bytes
            .append_option(f.get("bytes").and_then(Value::as_i64));
        self.duration
            .append_option(f.get("duration_ms").and_then(Value::as_f64));
        self.intent
            .append_option(f.get("intent").and_then(Value::as_i64));
        let tables = strings_at(f, "reads", "table");
        let mut links = strings_at(f, "links", "link");
        links.sort_unstable();
        links.dedup();
        for (builder, names) in [(&mut self.tables, tables), (&mut self.links, links)] {
            if names.is_empty() {
                builder.append_null();
            } else {
                builder.append_value(names.join(", "));
            }
        }
        self.fields.append_value(f.to_string());
        self.hash.append_value(&r.hash);
    }

    fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let ts = self.ts.finish().with_timezone("+00:00");
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(ts),
            Arc::new(self.kind.finish()),
        ];
        for b in self.text.iter_mut() {
            columns.push(Arc::new(b.finish()));
        }
        columns.push(Arc::new(self.rows.finish()));
        columns.push(Arc::new(self.bytes.finish()));
        columns.push(Arc::new(self.duration.finish()));
        columns.push(Arc::new(self.intent.finish()));
        columns.push(Arc::new(self.tables.finish()));
        columns.push(Arc::new(self.links.finish()));
        columns.push(Arc::new(self.fields.finish()));
        columns.push(Arc::new(self.hash.finish()));
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}
