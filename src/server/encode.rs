//! Arrow batches to PostgreSQL rows.
//!
//! Value encoding is arrow-pg's, for text and binary formats alike. tautan
//! wraps it for the columns whose PostgreSQL type Arrow cannot express on its
//! own (tagged `tautan.pg_type` by the connectors): `uuid`, `json`, `jsonb`
//! are reported with their own type OIDs and, in binary format, encoded as
//! PostgreSQL sends them. The same row encoding feeds DataRows (queries)
//! and CopyData (`COPY ... TO STDOUT`, [`copy_response`]).

use std::error::Error;
use std::sync::Arc;

use arrow_pg::datatypes::field_into_pg_type;
use arrow_pg::encoder::{encode_value, Encoder};
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use pgwire::api::portal::Format;
use pgwire::api::results::{
    CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, DataRowEncoder, FieldInfo,
};
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};
use tautan_connector::types::PG_TYPE_KEY;

use super::copy_binary::{self, BinaryCopyWriter};
use crate::error::QueryError;
use crate::statement::{CopyFormat, CopyOptions};

/// A PostgreSQL type tautan encodes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    Uuid,
    Json,
    Jsonb,
}

fn special(field: &datafusion::arrow::datatypes::Field) -> Option<Special> {
    if !matches!(field.data_type(), DataType::Utf8) {
        return None;
    }
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("uuid") => Some(Special::Uuid),
        Some("json") => Some(Special::Json),
        Some("jsonb") => Some(Special::Jsonb),
        _ => None,
    }
}

/// RowDescription fields for an Arrow schema.
pub fn fields(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = match special(f) {
                Some(Special::Uuid) => Type::UUID,
                Some(Special::Json) => Type::JSON,
                Some(Special::Jsonb) => Type::JSONB,
                None => field_into_pg_type(f)?,
            };
            let mut info = FieldInfo::new(f.name().clone(), None, None, ty, format.format_for(i));
            if let Some(o) = &options {
                info = info.with_format_options(o.clone());
            }
            Ok(info)
        })
        .collect()
}

/// A text value with its own binary form.
#[derive(Debug)]
struct Raw<'a> {
    text: &'a str,
    kind: Special,
}

impl ToSql for Raw<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.kind {
            Special::Json => out.put_slice(self.text.as_bytes()),
            Special::Jsonb => {
                out.put_u8(1);
                out.put_slice(self.text.as_bytes());
            }
            Special::Uuid => {
                let hex: String = self.text.chars().filter(|c| *c != '-').collect();
                if hex.len() != 32 {
                    return Err(format!("invalid uuid {}", self.text).into());
                }
                for i in 0..16 {
                    let byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                        .map_err(|_| format!("invalid uuid {}", self.text))?;
                    out.put_u8(byte);
                }
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

impl ToSqlText for Raw<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.text.as_bytes());
        Ok(IsNull::No)
    }
}

fn encode_batch(batch: &RecordBatch, fields: &Arc<Vec<FieldInfo>>) -> PgWireResult<Vec<DataRow>> {
    let mut encoder = DataRowEncoder::new(fields.clone());
    encode_rows(batch, fields, &mut encoder)
}

/// Encodes every row of `batch` with `encoder` (DataRows or COPY rows).
fn encode_rows<E: Encoder>(
    batch: &RecordBatch,
    fields: &[FieldInfo],
    encoder: &mut E,
) -> PgWireResult<Vec<E::Item>> {
    let schema = batch.schema();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (col, array) in batch.columns().iter().enumerate() {
            encode_field(encoder, array, row, schema.field(col), &fields[col])?;
        }
        rows.push(encoder.take_row());
    }
    Ok(rows)
}

/// Whether tautan encodes this column itself (uuid, json, jsonb).
pub(super) fn is_special(field: &datafusion::arrow::datatypes::Field) -> bool {
    special(field).is_some()
}

/// Encodes one value of `array` with `encoder`.
pub(super) fn encode_field<E: Encoder>(
    encoder: &mut E,
    array: &datafusion::arrow::array::ArrayRef,
    row: usize,
    field: &datafusion::arrow::datatypes::Field,
    pg_field: &FieldInfo,
) -> PgWireResult<()> {
    if array.is_null(row) {
        // Checked here for every type: arrow-pg does not for all of them.
        return encoder.encode_field(&None::<i8>, pg_field);
    }
    match special(field) {
        Some(kind) => {
            let strings = array.as_string::<i32>();
            let value = (!strings.is_null(row)).then(|| Raw {
                text: strings.value(row),
                kind,
            });
            encoder.encode_field(&value, pg_field)
        }
        None => encode_value(encoder, array, row, field, pg_field),
    }
}

/// The answer to `COPY ... TO STDOUT`: a header line when asked for, then
/// one CopyData per row in the format asked for, read from the sources as
/// the client takes them.
pub fn copy_response(
    batches: datafusion::execution::SendableRecordBatchStream,
    options: &CopyOptions,
) -> PgWireResult<CopyResponse> {
    let schema = batches.schema();
    let binary = options.format == CopyFormat::Binary;
    let format = if binary {
        Format::UnifiedBinary
    } else {
        Format::UnifiedText
    };
    let infos = Arc::new(fields(&schema, &format, None)?);
    let delimiter = options
        .delimiter
        .unwrap_or(if options.format == CopyFormat::Csv {
            ','
        } else {
            '\t'
        });
    let mut writer = match options.format {
        CopyFormat::Binary => CopyWriter::Binary(BinaryCopyWriter::new(infos.clone())),
        CopyFormat::Text => CopyWriter::Text(CopyEncoder::new_text(
            infos.clone(),
            CopyTextOptions {
                delimiter: delimiter.to_string().into(),
                null_string: options.null.clone().unwrap_or_else(|| "\\N".into()).into(),
            },
        )),
        CopyFormat::Csv => CopyWriter::Text(CopyEncoder::new_csv(
            infos.clone(),
            CopyCsvOptions {
                delimiter: delimiter.to_string().into(),
                null_string: options.null.clone().unwrap_or_default().into(),
                ..Default::default()
            },
        )),
    };
    let mut head = Vec::new();
    if options.header {
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| header_name(f.name(), options.format, delimiter))
            .collect();
        let line = format!("{}\n", names.join(&delimiter.to_string()));
        head.push(Ok(CopyData::new(bytes::Bytes::from(line))));
    }
    let rows_sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = rows_sent.clone();
    let body = batches
        .map(move |batch| -> Vec<PgWireResult<CopyData>> {
            match batch {
                Ok(b) => match writer.rows(&b, &infos) {
                    Ok(rows) => {
                        counted.fetch_add(rows.len(), std::sync::atomic::Ordering::Relaxed);
                        rows.into_iter().map(Ok).collect()
                    }
                    Err(e) => vec![Err(e)],
                },
                Err(e) => vec![Err(to_pg_error(QueryError::from(e)))],
            }
        })
        .chain(futures::stream::once(async move {
            // The writer puts the binary header before the first row;
            // with no rows it is sent on its own (pgwire then counts it as
            // a row in the COPY tag).
            if binary && rows_sent.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                vec![Ok(CopyData::new(bytes::Bytes::from_static(
                    copy_binary::HEADER,
                )))]
            } else {
                vec![]
            }
        }))
        .flat_map(futures::stream::iter);
    let stream = futures::stream::iter(head).chain(body);
    Ok(CopyResponse::new(
        if binary { 1 } else { 0 },
        schema.fields().len(),
        stream,
    ))
}

/// Rows of a COPY answer: binary ones written by tautan from Arrow
/// arrays, text and CSV ones through arrow-pg and pgwire.
enum CopyWriter {
    Binary(BinaryCopyWriter),
    Text(CopyEncoder),
}

impl CopyWriter {
    fn rows(&mut self, batch: &RecordBatch, fields: &[FieldInfo]) -> PgWireResult<Vec<CopyData>> {
        match self {
            CopyWriter::Binary(w) => w.rows(batch),
            CopyWriter::Text(e) => encode_rows(batch, fields, e),
        }
    }
}

/// A column name on a header line (quoted in CSV when it must be).
fn header_name(name: &str, format: CopyFormat, delimiter: char) -> String {
    let needs_quotes = name.contains(delimiter)
        || name.contains('"')
        || name.contains('\n')
        || name.contains('\r');
    if format == CopyFormat::Csv && needs_quotes {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// Turns a stream of batches into a stream of DataRows, lazily: a batch is
/// read from the sources only when the client has taken the previous rows.
pub fn row_stream(
    batches: datafusion::execution::SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
) -> impl futures::Stream<Item = PgWireResult<DataRow>> + Send {
    batches.flat_map(move |batch| {
        let rows: Vec<PgWireResult<DataRow>> = match batch {
            Ok(b) => match encode_batch(&b, &fields) {
                Ok(rows) => rows.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            },
            Err(e) => vec![Err(to_pg_error(QueryError::from(e)))],
        };
        futures::stream::iter(rows)
    })
}

/// A query error as a PostgreSQL ErrorResponse.
pub fn to_pg_error(e: QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        e.code,
        e.message,
    )))
}
