//! Arrow batches to PostgreSQL rows.
//!
//! Value encoding is arrow-pg's, for text and binary formats alike, except
//! where PostgreSQL writes values otherwise ([`super::values`]: floats,
//! small unsigned integers, wide decimals, dates and times, intervals,
//! `char(n)`), and for the columns whose PostgreSQL type Arrow cannot
//! express on its own (tagged `tautan.pg_type` by the connectors): `uuid`,
//! `json`, `jsonb` are reported with their own type OIDs and, in binary
//! format, encoded as PostgreSQL sends them. The same row encoding feeds DataRows (queries)
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
    CopyEncoder, CopyResponse, CopyTextOptions, DataRowEncoder, FieldFormat, FieldInfo,
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
use super::values::{Kind, Value};
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

/// The format of result column `i`: pgwire's `Format::format_for` indexes
/// the codes of a Bind and would panic past their end (Bind refuses such a
/// list; this reads text there anyway).
fn field_format(format: &Format, i: usize) -> FieldFormat {
    match format {
        Format::UnifiedText => FieldFormat::Text,
        Format::UnifiedBinary => FieldFormat::Binary,
        Format::Individual(codes) => match codes.get(i) {
            Some(1) => FieldFormat::Binary,
            _ => FieldFormat::Text,
        },
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
            let ty = pg_type(f)?;
            let mut info = FieldInfo::new(
                crate::statement::column_name(f.name()).to_string(),
                None,
                None,
                ty,
                field_format(format, i),
            );
            if let Some(o) = &options {
                info = info.with_format_options(o.clone());
            }
            Ok(info)
        })
        .collect()
}

/// The PostgreSQL type a column of `field` is sent as (RowDescription);
/// the catalog (`pg_attribute`, `information_schema.columns`) reports the
/// same.
pub fn pg_type(f: &datafusion::arrow::datatypes::Field) -> PgWireResult<Type> {
    Ok(match (special(f), Kind::of(f)) {
        (Some(Special::Uuid), _) => Type::UUID,
        (Some(Special::Json), _) => Type::JSON,
        (Some(Special::Jsonb), _) => Type::JSONB,
        (None, Some(kind)) => kind.pg_type(f),
        (None, None) if f.metadata().get(PG_TYPE_KEY).map(String::as_str) == Some("varchar") => {
            Type::VARCHAR
        }
        (None, None) => field_into_pg_type(&Arc::new(f.clone()))?,
    })
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
            Special::Uuid => out.put_slice(&uuid_bytes(self.text)?),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

/// The 16 bytes of a uuid written as text (hex digits, hyphens anywhere,
/// as PostgreSQL's `uuid_in` is lenient about them). Works on bytes, so
/// text that is not a uuid — non-ASCII included — is an error, never a
/// slice through a character.
fn uuid_bytes(text: &str) -> Result<[u8; 16], Box<dyn Error + Sync + Send>> {
    let invalid = || -> Box<dyn Error + Sync + Send> {
        format!("invalid input syntax for type uuid: \"{text}\"").into()
    };
    let mut out = [0u8; 16];
    let mut nibbles = text
        .bytes()
        .filter(|b| *b != b'-')
        .map(|b| (b as char).to_digit(16));
    for byte in out.iter_mut() {
        let high = nibbles.next().flatten().ok_or_else(invalid)?;
        let low = nibbles.next().flatten().ok_or_else(invalid)?;
        *byte = u8::try_from(high * 16 + low).map_err(|_| invalid())?;
    }
    if nibbles.next().is_some() {
        return Err(invalid());
    }
    Ok(out)
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
            let pg_field = fields.get(col).ok_or_else(|| {
                to_pg_error(QueryError::new(
                    "XX000",
                    "result has more columns than its description",
                ))
            })?;
            encode_field(encoder, array, row, schema.field(col), pg_field)?;
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
    // A column described as `unknown` is sent as text in either format
    // (PostgreSQL's `unknownsend`); arrow-pg's binary encoders expect the
    // described type to match the value's (an array under `unknown` was a
    // panic).
    let as_text;
    let pg_field =
        if *pg_field.datatype() == Type::UNKNOWN && pg_field.format() == FieldFormat::Binary {
            as_text = FieldInfo::new(
                pg_field.name().to_string(),
                pg_field.table_id(),
                pg_field.column_id(),
                Type::UNKNOWN,
                FieldFormat::Text,
            )
            .with_format_options(pg_field.format_options().clone());
            &as_text
        } else {
            pg_field
        };
    if let (None, Some(kind)) = (special(field), Kind::of(field)) {
        return encoder
            .encode_field(&Value { array, row, kind }, pg_field)
            .map_err(keep_sqlstate);
    }
    match special(field) {
        Some(kind) => {
            let strings = array.as_string_opt::<i32>().ok_or_else(|| {
                to_pg_error(QueryError::new(
                    "XX000",
                    format!("column {} is not text", field.name()),
                ))
            })?;
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
    format_options: Arc<FormatOptions>,
) -> PgWireResult<CopyResponse> {
    let schema = batches.schema();
    let binary = options.format == CopyFormat::Binary;
    let format = if binary {
        Format::UnifiedBinary
    } else {
        Format::UnifiedText
    };
    let infos = Arc::new(fields(&schema, &format, Some(format_options))?);
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
        CopyFormat::Csv => CopyWriter::Csv(CsvWriter {
            rows: DataRowEncoder::new(infos.clone()),
            delimiter,
            null: options.null.clone().unwrap_or_default(),
        }),
    };
    let mut head = Vec::new();
    if options.header {
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                header_name(
                    crate::statement::column_name(f.name()),
                    options.format,
                    delimiter,
                )
            })
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
    Csv(CsvWriter),
}

impl CopyWriter {
    fn rows(&mut self, batch: &RecordBatch, fields: &[FieldInfo]) -> PgWireResult<Vec<CopyData>> {
        match self {
            CopyWriter::Binary(w) => w.rows(batch),
            CopyWriter::Text(e) => encode_rows(batch, fields, e),
            CopyWriter::Csv(w) => w.rows(batch, fields),
        }
    }
}

/// CSV rows as PostgreSQL writes them: a NULL is the NULL string
/// unquoted, and a value is quoted when it is empty, equals the NULL
/// string, or holds the delimiter, a quote or a line break — so an empty
/// string and a NULL stay apart (pgwire's CSV encoder wrote both alike).
/// Values are the text forms of the query encoding.
struct CsvWriter {
    rows: DataRowEncoder,
    delimiter: char,
    null: String,
}

impl CsvWriter {
    fn rows(&mut self, batch: &RecordBatch, fields: &[FieldInfo]) -> PgWireResult<Vec<CopyData>> {
        let rows = encode_rows(batch, fields, &mut self.rows)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut line = BytesMut::new();
            let mut data = &row.data[..];
            for i in 0..row.field_count {
                if i > 0 {
                    line.put_slice(self.delimiter.to_string().as_bytes());
                }
                let (len, rest) = data.split_at_checked(4).unwrap_or((&[0, 0, 0, 0], &[]));
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                let Ok(len) = usize::try_from(len) else {
                    // -1: NULL.
                    line.put_slice(self.null.as_bytes());
                    data = rest;
                    continue;
                };
                let (value, rest) = rest.split_at_checked(len).unwrap_or((rest, &[]));
                data = rest;
                let quote = value.is_empty()
                    || value == self.null.as_bytes()
                    || value.iter().any(|b| {
                        matches!(b, b'"' | b'\n' | b'\r')
                            || u32::from(*b) == u32::from(self.delimiter)
                    });
                if quote {
                    line.put_u8(b'"');
                    for b in value {
                        if *b == b'"' {
                            line.put_u8(b'"');
                        }
                        line.put_u8(*b);
                    }
                    line.put_u8(b'"');
                } else {
                    line.put_slice(value);
                }
            }
            line.put_u8(b'\n');
            out.push(CopyData::new(line.freeze()));
        }
        Ok(out)
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

/// Sends a COPY answer: CopyOutResponse, the CopyData, CopyDone and
/// `COPY n`. A failure mid-stream is returned, for the caller to answer
/// with an ErrorResponse (the protocol's way; pgwire's own sender ends with
/// CopyFail, which clients cannot parse).
pub async fn send_copy_out<C>(client: &mut C, response: CopyResponse) -> PgWireResult<()>
where
    C: futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin,
    C::Error: std::fmt::Debug,
    PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
{
    use futures::SinkExt;
    use pgwire::messages::copy::{CopyDone, CopyOutResponse};
    use pgwire::messages::PgWireBackendMessage;
    let column_formats = response.column_formats();
    let CopyResponse {
        format,
        columns,
        mut data_stream,
        ..
    } = response;
    let columns = i16::try_from(columns).unwrap_or(i16::MAX);
    client
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            format,
            columns,
            column_formats,
        )))
        .await?;
    let mut rows = 0usize;
    while let Some(data) = data_stream.next().await {
        let data = data?;
        if !data.data.is_empty() {
            if data.data.as_ref() != [0xFF, 0xFF] {
                rows += 1;
            }
            client.feed(PgWireBackendMessage::CopyData(data)).await?;
        }
    }
    client
        .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    let tag = pgwire::api::results::Tag::new("COPY").with_rows(rows);
    client
        .send(PgWireBackendMessage::CommandComplete(tag.into()))
        .await?;
    Ok(())
}

/// The ErrorResponse fields for a pgwire error (a query error keeps its
/// SQLSTATE).
pub fn error_info_of(e: PgWireError) -> ErrorInfo {
    match e {
        PgWireError::UserError(info) => *info,
        other => error_info(QueryError::new("XX000", other.to_string())),
    }
}

/// A value's encoding failure: pgwire wraps what a `ToSql` returned as an
/// `ApiError` (XX000); a [`QueryError`] there (a value out of PostgreSQL's
/// range, 22008) keeps its own SQLSTATE.
fn keep_sqlstate(e: PgWireError) -> PgWireError {
    match e {
        PgWireError::ApiError(inner) => match inner.downcast::<QueryError>() {
            Ok(query) => to_pg_error(*query),
            Err(inner) => PgWireError::ApiError(inner),
        },
        other => other,
    }
}

/// A query error as a PostgreSQL ErrorResponse.
pub fn to_pg_error(e: QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

/// A query error as pgwire's ErrorResponse fields.
pub fn error_info(e: QueryError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".to_string(), e.code, e.message);
    info.hint = e.hint;
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_that_is_not_a_uuid_is_an_error() {
        assert_eq!(
            uuid_bytes("12345678-9abc-DEF0-1234-56789abcdef0").ok(),
            Some([
                0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
                0xde, 0xf0
            ])
        );
        // Multi-byte characters where hex digits belong used to slice
        // through a character and panic.
        for text in [
            "é2345678-9abc-def0-1234-56789abcdef",
            "1234567é9abc-def0-1234-56789abcdef0",
            "12345678-9abc-def0-1234-56789abcdef00",
            "12345678",
            "",
            "ÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ",
        ] {
            assert!(uuid_bytes(text).is_err(), "{text}");
        }
    }
}
