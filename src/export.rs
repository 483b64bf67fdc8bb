//! Query results to files: the structured-file exchange (`tautan export`)
//! and the snapshot writer of materialized pulls.
//!
//! A file is written as `<name>.partial`, flushed to disk, then renamed into
//! place, so a reader (or an agency picking up an export) never sees half a
//! file; a crash leaves only a `.partial` that the next run removes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use futures::StreamExt;

use crate::error::QueryError;

/// Rows per Parquet row group: large enough for good compression, small
/// enough that statistics let readers skip most of a file.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A file format tautan writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// Apache Parquet, zstd-compressed, with page statistics.
    Parquet,
}

impl FileFormat {
    /// The format a file name implies (`.csv`, `.parquet`).
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

/// Told how far a write has come (rows and bytes so far).
pub trait Progress: Send + Sync {
    /// Called after each batch.
    fn advance(&self, rows: u64, bytes: u64);
}

/// Progress nobody watches.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _rows: u64, _bytes: u64) {}
}

/// What a finished write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// Why a write failed: the query, or the disk.
#[derive(Debug)]
pub enum WriteError {
    /// The query failed while streaming (a source went away, ...).
    Query(QueryError),
    /// The file could not be written.
    Io(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Query(e) => write!(f, "{e}"),
            WriteError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// An I/O failure on `path`, worded for the user.
pub(crate) fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> WriteError {
    WriteError::Io(format!("{what} {}: {e}", path.display()))
}

/// The temporary name a file is written under before it is renamed.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

enum Sink {
    Csv(Box<datafusion::arrow::csv::Writer<BufWriter<File>>>),
    Parquet(Box<ArrowWriter<File>>),
}

impl Sink {
    fn open(file: File, schema: SchemaRef, format: FileFormat) -> Result<Self, String> {
        match format {
            FileFormat::Csv => {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(BufWriter::new(file));
                // The header, also when no row follows.
                w.write(&RecordBatch::new_empty(schema))
                    .map_err(|e| e.to_string())?;
                Ok(Sink::Csv(Box::new(w)))
            }
            FileFormat::Parquet => {
                let props = parquet_properties(ROW_GROUP_ROWS)?;
                let w =
                    ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| e.to_string())?;
                Ok(Sink::Parquet(Box::new(w)))
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<u64, String> {
        match self {
            Sink::Csv(w) => {
                w.write(batch).map_err(|e| e.to_string())?;
                Ok(0)
            }
            Sink::Parquet(w) => {
                w.write(batch).map_err(|e| e.to_string())?;
                Ok(w.bytes_written() as u64)
            }
        }
    }

    fn finish(self) -> Result<File, String> {
        match self {
            Sink::Csv(w) => {
                let mut buf = w.into_inner();
                buf.flush().map_err(|e| e.to_string())?;
                buf.into_inner().map_err(|e| e.to_string())
            }
            Sink::Parquet(w) => w.into_inner().map_err(|e| e.to_string()),
        }
    }
}

/// How tautan writes Parquet (snapshots, exports, HTTP answers): zstd,
/// page statistics, row groups of `row_group_rows`.
pub fn parquet_properties(row_group_rows: usize) -> Result<WriterProperties, String> {
    let level = ZstdLevel::try_new(3).map_err(|e| e.to_string())?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows))
        .build())
}

/// Whether Arrow's CSV writer writes values of `t` itself.
pub fn csv_writes(t: &DataType) -> bool {
    !matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..)
            | DataType::Union(..)
            | DataType::Dictionary(..)
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
            | DataType::Interval(_)
    )
}

/// Whether the Parquet writer writes values of `t` itself (it has no
/// month-day-nanosecond interval).
pub fn parquet_writes(t: &DataType) -> bool {
    !matches!(t, DataType::Interval(IntervalUnit::MonthDayNano))
}

/// The columns a writer cannot write itself (arrays in CSV, intervals in
/// Parquet, ...), written as their display text instead (arrays as `[1,
/// 2]`, binary as hex; NULL stays NULL), rather than failing the export.
#[derive(Debug, Clone)]
pub struct TextColumns {
    columns: Vec<usize>,
    schema: SchemaRef,
}

impl TextColumns {
    /// For answers of `schema`, written by a writer that writes the types
    /// `writes` accepts.
    pub fn new(schema: &SchemaRef, writes: impl Fn(&DataType) -> bool) -> TextColumns {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !writes(f.data_type()))
            .map(|(i, _)| i)
            .collect();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                if writes(f.data_type()) {
                    f.as_ref().clone()
                } else {
                    Field::new(f.name(), DataType::Utf8, true)
                }
            })
            .collect();
        TextColumns {
            columns,
            schema: Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        }
    }

    /// The schema written.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `batch` as written: under the schema's column names, with the
    /// columns the writer cannot write as their text.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
        let arrow = |e: datafusion::arrow::error::ArrowError| {
            QueryError::from(datafusion::error::DataFusionError::from(e))
        };
        let mut columns = batch.columns().to_vec();
        for &i in &self.columns {
            let Some(column) = columns.get(i).cloned() else {
                continue;
            };
            let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())
                .map_err(arrow)?;
            let text: StringArray = (0..column.len())
                .map(|r| column.is_valid(r).then(|| formatter.value(r).to_string()))
                .collect();
            columns[i] = Arc::new(text);
        }
        RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow)
    }
}

/// `schema` with the column names a client is told
/// ([`crate::statement::column_name`]: `SELECT 1, 2` has two columns
/// `?column?`). A Parquet file is a table, whose columns need distinct
/// names (`distinct`): 42701 if two are the same, as PostgreSQL's `CREATE
/// TABLE AS` answers.
pub fn client_schema(schema: &SchemaRef, distinct: bool) -> Result<SchemaRef, QueryError> {
    let mut seen = std::collections::HashSet::new();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = crate::statement::column_name(field.name());
        if distinct && !seen.insert(name) {
            return Err(QueryError::new(
                "42701",
                format!(
                    "column \"{name}\" specified more than once; give the columns distinct names (AS)"
                ),
            ));
        }
        fields.push(field.as_ref().clone().with_name(name));
    }
    Ok(std::sync::Arc::new(
        datafusion::arrow::datatypes::Schema::new_with_metadata(fields, schema.metadata().clone()),
    ))
}

/// Streams `stream` into `path` in `format`: written as `.partial`, synced,
/// then renamed. On failure the partial file is removed and `path` is
/// untouched.
pub async fn write_file(
    mut stream: SendableRecordBatchStream,
    path: &Path,
    format: FileFormat,
    progress: &dyn Progress,
) -> Result<Written, WriteError> {
    let partial = partial_path(path);
    let result = async {
        let schema = client_schema(&stream.schema(), format == FileFormat::Parquet)
            .map_err(WriteError::Query)?;
        let file = File::create(&partial).map_err(|e| io(&partial, "cannot create", e))?;
        let text = match format {
            FileFormat::Csv => TextColumns::new(&schema, csv_writes),
            FileFormat::Parquet => TextColumns::new(&schema, parquet_writes),
        };
        let mut sink = Sink::open(file, text.schema().clone(), format)
            .map_err(|e| io(&partial, "cannot write", e))?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| WriteError::Query(QueryError::from(e)))?;
            rows += batch.num_rows() as u64;
            let batch = text.apply(&batch).map_err(WriteError::Query)?;
            let bytes = sink
                .write(&batch)
                .map_err(|e| io(&partial, "cannot write", e))?;
            progress.advance(rows, bytes);
        }
        let file = sink.finish().map_err(|e| io(&partial, "cannot write", e))?;
        file.sync_all()
            .map_err(|e| io(&partial, "cannot sync", e))?;
        let bytes = file
            .metadata()
            .map_err(|e| io(&partial, "cannot stat", e))?
            .len();
        progress.advance(rows, bytes);
        Ok(Written { rows, bytes })
    }
    .await;
    match result {
        Ok(written) => {
            std::fs::rename(&partial, path).map_err(|e| io(path, "cannot rename into", e))?;
            sync_parent(path)?;
            Ok(written)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Writes small `contents` to `path` atomically (temporary file, sync,
/// rename, sync of the folder).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    let partial = partial_path(path);
    let mut f = File::create(&partial).map_err(|e| io(&partial, "cannot create", e))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&partial, "cannot write", e))?;
    std::fs::rename(&partial, path).map_err(|e| io(path, "cannot rename into", e))?;
    sync_parent(path)
}

/// Makes a rename in `path`'s folder durable.
pub fn sync_parent(path: &Path) -> Result<(), WriteError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, "cannot sync folder", e))?;
    }
    Ok(())
}
