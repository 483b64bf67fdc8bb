//! Arrow batches to PostgreSQL rows.
//!
//! Value encoding is arrow-pg's, for text and binary formats alike. tautan
//! wraps it for the columns whose PostgreSQL type Arrow cannot express on its
//! own (tagged `tautan.pg_type` by the connectors): `uuid`, `json`, `jsonb`
//! are reported with their own type OIDs and, in binary format, encoded as
//! PostgreSQL sends them.

use std::error::Error;
use std::sync::Arc;

use arrow_pg::datatypes::field_into_pg_type;
use arrow_pg::encoder::encode_value;
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo};
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};
use tautan_connector::types::PG_TYPE_KEY;

use crate::error::QueryError;

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
    let schema = batch.schema();
    let specials: Vec<Option<Special>> = schema.fields().iter().map(|f| special(f)).collect();
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (col, array) in batch.columns().iter().enumerate() {
            let pg_field = &fields[col];
            if array.is_null(row) {
                // Checked here for every type: arrow-pg does not for all of them.
                encoder.encode_field_with_type_and_format(
                    &None::<i8>,
                    pg_field.datatype(),
                    pg_field.format(),
                    pg_field.format_options(),
                )?;
                continue;
            }
            match specials[col] {
                Some(kind) => {
                    let strings = array.as_string::<i32>();
                    let value = (!strings.is_null(row)).then(|| Raw {
                        text: strings.value(row),
                        kind,
                    });
                    encoder.encode_field_with_type_and_format(
                        &value,
                        pg_field.datatype(),
                        pg_field.format(),
                        pg_field.format_options(),
                    )?;
                }
                None => encode_value(&mut encoder, array, row, schema.field(col), pg_field)?,
            }
        }
        rows.push(encoder.take_row());
    }
    Ok(rows)
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
