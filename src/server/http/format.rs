//! The formats an answer is written in, chosen by the `Accept` header (or
//! `?format=`), and their encoders: JSON (an array of objects), newline-
//! delimited JSON, CSV with a header line, the Arrow IPC stream, Parquet.
//!
//! Each encoder writes one batch at a time into a buffer the response body
//! takes whole after each batch, so memory stays that of a batch (Parquet:
//! of a row group) however long the answer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;

use super::error::ApiError;
use crate::error::QueryError;
use crate::export::TextColumns;

/// A format an answer can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: one array of objects, one per row.
    Json,
    /// `application/x-ndjson`: one object per line.
    NdJson,
    /// `text/csv`: a header line, then one line per row (NULL is empty;
    /// arrays, structs and binary as their text).
    Csv,
    /// `application/vnd.apache.arrow.stream`: the Arrow IPC stream.
    Arrow,
    /// `application/vnd.apache.parquet`: a Parquet file (intervals as
    /// their text: Parquet has no month-day-nanosecond interval).
    Parquet,
}

impl Format {
    /// The media type written in `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::NdJson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The format a media type or short name (`csv`, `ndjson`, ...) names.
    fn named(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "application/json" | "json" | "application/*" | "*/*" => Some(Format::Json),
            "application/x-ndjson"
            | "application/jsonl"
            | "application/json-seq"
            | "ndjson"
            | "jsonl" => Some(Format::NdJson),
            "text/csv" | "csv" | "text/*" => Some(Format::Csv),
            "application/vnd.apache.arrow.stream" | "arrow" => Some(Format::Arrow),
            "application/vnd.apache.parquet" | "application/x-parquet" | "parquet" => {
                Some(Format::Parquet)
            }
            _ => None,
        }
    }

    /// The format a request asks for: `?format=` when given, else the
    /// `Accept` header's most preferred type tautan writes (by `q`, then
    /// order), else JSON. 406 when neither names one.
    pub fn negotiate(query_format: Option<&str>, accept: Option<&str>) -> Result<Format, ApiError> {
        if let Some(name) = query_format {
            return Format::named(name).ok_or_else(|| ApiError::not_acceptable(name));
        }
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Ok(Format::Json);
        };
        let mut offered: Vec<(f32, usize, Format)> = Vec::new();
        for (i, item) in accept.split(',').enumerate() {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or_default();
            let mut q = 1.0f32;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            if let Some(f) = Format::named(media) {
                if q > 0.0 {
                    offered.push((q, i, f));
                }
            }
        }
        offered.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offered
            .first()
            .map(|(_, _, f)| *f)
            .ok_or_else(|| ApiError::not_acceptable(accept))
    }
}

/// A `Write` the encoder writes into and the body takes from.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("encoder buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn take(&self) -> Bytes {
        match self.0.lock() {
            Ok(mut b) => Bytes::from(std::mem::take(&mut *b)),
            Err(_) => Bytes::new(),
        }
    }
}

enum Writer {
    Json(arrow_json::ArrayWriter<Shared>),
    NdJson(arrow_json::LineDelimitedWriter<Shared>),
    Csv(Box<datafusion::arrow::csv::Writer<Shared>>),
    Arrow(Box<datafusion::arrow::ipc::writer::StreamWriter<Shared>>),
    Parquet(Box<ArrowWriter<Shared>>),
}

/// Writes batches of one answer in one format.
pub struct Encoder {
    writer: Writer,
    out: Shared,
    /// The columns the format's writer cannot write (CSV: arrays, structs,
    /// binary; Parquet: month-day-nanosecond intervals), written as their
    /// text instead.
    text: TextColumns,
}

fn failed(e: impl std::fmt::Display) -> QueryError {
    QueryError::new("XX000", format!("cannot encode the answer: {e}"))
}

impl Encoder {
    /// An encoder for answers of `schema` (the names clients are told).
    pub fn new(format: Format, schema: SchemaRef) -> Result<Self, QueryError> {
        let out = Shared::default();
        // Columns the format's writer cannot write go as their text.
        let text = match format {
            Format::Csv => TextColumns::new(&schema, crate::export::csv_writes),
            Format::Parquet => TextColumns::new(&schema, crate::export::parquet_writes),
            _ => TextColumns::new(&schema, |_| true),
        };
        let text_schema = text.schema().clone();
        let writer = match format {
            Format::Json => Writer::Json(
                arrow_json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out.clone()),
            ),
            Format::NdJson => Writer::NdJson(
                arrow_json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out.clone()),
            ),
            Format::Csv => {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out.clone());
                // The header, also when no row follows.
                w.write(&RecordBatch::new_empty(text_schema.clone()))
                    .map_err(failed)?;
                Writer::Csv(Box::new(w))
            }
            Format::Arrow => Writer::Arrow(Box::new(
                datafusion::arrow::ipc::writer::StreamWriter::try_new(out.clone(), &text_schema)
                    .map_err(failed)?,
            )),
            Format::Parquet => {
                // Row groups half a snapshot's: an answer holds one in memory.
                let props = crate::export::parquet_properties(64 * 1024).map_err(failed)?;
                Writer::Parquet(Box::new(
                    ArrowWriter::try_new(out.clone(), text_schema.clone(), Some(props))
                        .map_err(failed)?,
                ))
            }
        };
        Ok(Encoder { writer, out, text })
    }

    /// What the answer starts with (CSV's header, Arrow's schema message).
    pub fn start(&mut self) -> Bytes {
        self.out.take()
    }

    /// `batch` (any column names: it is written under the schema the
    /// encoder was made for), encoded.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<Bytes, QueryError> {
        let batch = &self.text.apply(batch)?;
        match &mut self.writer {
            Writer::Json(w) => w.write(batch).map_err(failed)?,
            Writer::NdJson(w) => w.write(batch).map_err(failed)?,
            Writer::Csv(w) => w.write(batch).map_err(failed)?,
            Writer::Arrow(w) => w.write(batch).map_err(failed)?,
            Writer::Parquet(w) => w.write(batch).map_err(failed)?,
        }
        Ok(self.out.take())
    }

    /// What the answer ends with (JSON's `]`, Arrow's end marker,
    /// Parquet's last row group and footer).
    pub fn finish(mut self) -> Result<Bytes, QueryError> {
        match &mut self.writer {
            Writer::Json(w) => w.finish().map_err(failed)?,
            Writer::NdJson(w) => w.finish().map_err(failed)?,
            Writer::Csv(..) => {}
            Writer::Arrow(w) => w.finish().map_err(failed)?,
            Writer::Parquet(w) => {
                w.finish().map_err(failed)?;
            }
        }
        Ok(self.out.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_picks_the_most_preferred_format_tautan_writes() {
        let f = |q: Option<&str>, a: Option<&str>| Format::negotiate(q, a).ok();
        assert_eq!(f(None, None), Some(Format::Json));
        assert_eq!(f(None, Some("")), Some(Format::Json));
        assert_eq!(f(None, Some("*/*")), Some(Format::Json));
        assert_eq!(f(None, Some("text/csv")), Some(Format::Csv));
        assert_eq!(
            f(
                None,
                Some("text/html, text/csv;q=0.5, application/x-ndjson;q=0.9")
            ),
            Some(Format::NdJson)
        );
        assert_eq!(
            f(None, Some("application/vnd.apache.arrow.stream")),
            Some(Format::Arrow)
        );
        assert_eq!(f(None, Some("image/png")), None);
        assert_eq!(f(None, Some("text/csv;q=0")), None);
        assert_eq!(f(Some("parquet"), Some("text/csv")), Some(Format::Parquet));
        assert_eq!(f(Some("xml"), None), None);
    }
}
