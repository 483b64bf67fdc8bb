//! Prepared statement handles: the opaque bytes a Flight SQL client gets
//! when it prepares a statement and sends back to bind and run it.
//!
//! The service keeps no state per prepared statement: a handle holds the
//! statement's SQL (planned again, under the caller's grants, each time it
//! runs) and, once parameters are bound (`DoPut`), the row of values as the
//! Flight messages that carried it. Binding answers a new handle, as the
//! protocol allows stateless servers to. A handle is the client's input
//! like any SQL text: a forged one is just a statement the client could
//! have sent. Arrow data from a client is checked before arrow's decoder
//! sees it ([`checked`]): that decoder trusts lengths it reads (a
//! compressed buffer's declared size is allocated at once, which can abort
//! the process) and panics on some malformed schemas.

use arrow_flight::FlightData;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;

use crate::error::QueryError;

/// The first byte of a handle with bound parameters (SQL text, which the
/// handle of an unbound statement is, never holds NUL).
const BOUND: u8 = 0;

/// A prepared statement as its handle carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Handle {
    /// The statement.
    pub sql: String,
    /// The bound row of parameter values (`$1` is the first column).
    pub params: Option<RecordBatch>,
}

impl Handle {
    /// A statement without bound parameters.
    pub fn unbound(sql: String) -> Handle {
        Handle { sql, params: None }
    }

    /// The handle's bytes.
    pub fn encode(&self) -> Result<Bytes, QueryError> {
        let Some(params) = &self.params else {
            return Ok(Bytes::from(self.sql.clone().into_bytes()));
        };
        let too_long = || QueryError::new("54000", "the statement is too long for a handle");
        let messages =
            arrow_flight::utils::batches_to_flight_data(&params.schema(), vec![params.clone()])
                .map_err(|e| QueryError::new("XX000", format!("parameters: {e}")))?;
        let mut out = BytesMut::new();
        out.put_u8(BOUND);
        let part = |out: &mut BytesMut, bytes: &[u8]| -> Result<(), QueryError> {
            out.put_u32(u32::try_from(bytes.len()).map_err(|_| too_long())?);
            out.put_slice(bytes);
            Ok(())
        };
        part(&mut out, self.sql.as_bytes())?;
        out.put_u32(u32::try_from(messages.len()).map_err(|_| too_long())?);
        for m in &messages {
            part(&mut out, &m.data_header)?;
            part(&mut out, &m.data_body)?;
        }
        Ok(out.freeze())
    }

    /// The statement a handle holds; 26000 (PostgreSQL's "invalid SQL
    /// statement name") for bytes that are not a handle tautan made.
    pub fn decode(bytes: &[u8]) -> Result<Handle, QueryError> {
        let not_ours = || QueryError::new("26000", "the statement handle is not tautan's");
        if bytes.first() != Some(&BOUND) {
            let sql = String::from_utf8(bytes.to_vec()).map_err(|_| not_ours())?;
            return Ok(Handle::unbound(sql));
        }
        let mut rest = Bytes::copy_from_slice(&bytes[1..]);
        // Every length is checked against the bytes that are there before
        // anything is taken.
        let part = |rest: &mut Bytes| -> Result<Bytes, QueryError> {
            if rest.remaining() < 4 {
                return Err(not_ours());
            }
            let len = rest.get_u32() as usize;
            if rest.remaining() < len {
                return Err(not_ours());
            }
            Ok(rest.split_to(len))
        };
        let sql = String::from_utf8(part(&mut rest)?.to_vec()).map_err(|_| not_ours())?;
        if rest.remaining() < 4 {
            return Err(not_ours());
        }
        let count = rest.get_u32() as usize;
        if count > MAX_MESSAGES {
            return Err(not_ours());
        }
        let mut messages = Vec::with_capacity(count);
        for _ in 0..count {
            let header = part(&mut rest)?;
            let body = part(&mut rest)?;
            messages.push(FlightData {
                data_header: header,
                data_body: body,
                ..Default::default()
            });
        }
        if rest.has_remaining() {
            return Err(not_ours());
        }
        let params = Self::parameter_row(&messages).map_err(|_| not_ours())?;
        Ok(Handle {
            sql,
            params: Some(params),
        })
    }

    /// The one row of parameter values a client sent (`DoPut`), from its
    /// Flight messages: the schema first, then the batches. A client's
    /// bytes: malformed ones are 08P01 (arrow's decoder panics on some
    /// schemas; caught here), more or fewer than one row too.
    pub fn parameter_row(messages: &[FlightData]) -> Result<RecordBatch, QueryError> {
        checked(messages)?;
        let decoded =
            std::panic::catch_unwind(|| arrow_flight::utils::flight_data_to_batches(messages));
        let batches = match decoded {
            Ok(Ok(batches)) => batches,
            Ok(Err(e)) => {
                return Err(QueryError::new(
                    "08P01",
                    format!("the parameter values are not Arrow data: {e}"),
                ))
            }
            Err(_) => {
                return Err(QueryError::new(
                    "08P01",
                    "the parameter values are not Arrow data",
                ))
            }
        };
        let mut rows = batches.into_iter().filter(|b| b.num_rows() > 0);
        match (rows.next(), rows.next()) {
            (Some(row), None) if row.num_rows() == 1 => Ok(row),
            (None, _) => Err(QueryError::new("08P01", "no parameter values were sent")),
            // More rows would be a batch of executions, which a query
            // does not have.
            _ => Err(QueryError::new(
                "08P01",
                "one row of parameter values per query",
            )),
        }
    }

    /// The bound values for `plan`'s placeholders, converted to the types
    /// they were inferred to have; `None` when the statement has none.
    pub fn values(&self, plan: &LogicalPlan) -> Result<Option<ParamValues>, QueryError> {
        let inferred = crate::server::params::parameter_types(plan)?;
        match &self.params {
            None if inferred.is_empty() => Ok(None),
            None => Err(QueryError::new(
                "08P01",
                format!(
                    "the statement has {} parameter(s): bind them (DoPut) before running it",
                    inferred.len()
                ),
            )),
            Some(row) => {
                if row.num_columns() != inferred.len() || row.num_rows() != 1 {
                    return Err(QueryError::new(
                        "08P01",
                        format!(
                            "the statement has {} parameter(s); {} value(s) in {} row(s) were bound",
                            inferred.len(),
                            row.num_columns(),
                            row.num_rows()
                        ),
                    ));
                }
                let values = row
                    .columns()
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, 0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| QueryError::new("22023", format!("a bound value: {e}")))?;
                Ok(Some(crate::server::params::typed(values, &inferred)?))
            }
        }
    }
}

/// The most Flight messages one row of parameter values takes (a schema
/// and a batch; dictionaries are not taken).
pub const MAX_MESSAGES: usize = 8;

/// The most rows (and values per column) a batch of parameter values may
/// declare before it is decoded.
const MAX_DECLARED_ROWS: i64 = 64;

/// Checks a client's Flight messages before arrow decodes them: each is an
/// IPC message (the flatbuffer verified), a record batch is uncompressed
/// (a compressed buffer names the size to allocate for it), its body is
/// all there, and it declares few rows; dictionaries are refused.
pub fn checked(messages: &[FlightData]) -> Result<(), QueryError> {
    let bad = |why: &str| {
        QueryError::new(
            "08P01",
            format!("the parameter values are not Arrow data tautan takes: {why}"),
        )
    };
    if messages.len() > MAX_MESSAGES {
        return Err(bad("too many messages"));
    }
    for m in messages {
        let message = datafusion::arrow::ipc::root_as_message(&m.data_header)
            .map_err(|_| bad("not an IPC message"))?;
        if message.header_as_dictionary_batch().is_some() {
            return Err(bad("dictionary-encoded values"));
        }
        if let Some(batch) = message.header_as_record_batch() {
            if batch.compression().is_some() {
                return Err(bad("compressed buffers"));
            }
            let body = usize::try_from(message.bodyLength()).map_err(|_| bad("a negative body"))?;
            if body > m.data_body.len() {
                return Err(bad("a body shorter than it says"));
            }
            let too_many = |n: i64| !(0..=MAX_DECLARED_ROWS).contains(&n);
            if too_many(batch.length())
                || batch.nodes().is_some_and(|nodes| {
                    nodes
                        .iter()
                        .any(|n| too_many(n.length()) || too_many(n.null_count()))
                })
            {
                return Err(bad("more rows than one set of values"));
            }
            let buffers_fit = batch.buffers().is_none_or(|buffers| {
                buffers.iter().all(|b| {
                    b.offset() >= 0
                        && b.length() >= 0
                        && b.offset()
                            .checked_add(b.length())
                            .is_some_and(|end| end as usize <= body)
                })
            });
            if !buffers_fit {
                return Err(bad("a buffer outside the body"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn row() -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("$1", DataType::Int64, true),
                Field::new("$2", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![Some(7)])),
                Arc::new(StringArray::from(vec![Some("it's ✓")])),
            ],
        )
        .expect("row")
    }

    #[test]
    fn handles_round_trip_and_anything_else_is_refused_not_a_panic() {
        let plain = Handle::unbound("SELECT 1".into());
        assert_eq!(Handle::decode(&plain.encode().expect("encode")), Ok(plain));
        let bound = Handle {
            sql: "SELECT $1, $2".into(),
            params: Some(row()),
        };
        let bytes = bound.encode().expect("encode");
        assert_eq!(Handle::decode(&bytes).expect("decode"), bound);
        // Every truncation and a flipped byte anywhere: an error or a
        // handle, never a panic.
        for cut in 0..bytes.len() {
            let _ = Handle::decode(&bytes[..cut]);
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut b = bytes.to_vec();
            let at = (seed >> 33) as usize % b.len();
            b[at] ^= (seed >> 13) as u8 | 1;
            let _ = Handle::decode(&b);
        }
        assert!(Handle::decode(&[0, 0, 0, 0]).is_err());
        assert!(Handle::decode(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn parameter_values_are_one_row_and_malformed_messages_are_an_error_not_a_panic() {
        let messages = |batch: &RecordBatch| -> Vec<arrow_flight::FlightData> {
            arrow_flight::utils::batches_to_flight_data(&batch.schema(), vec![batch.clone()])
                .expect("flight data")
        };
        let good = messages(&row());
        assert_eq!(Handle::parameter_row(&good).expect("one row"), row());
        let two = datafusion::arrow::compute::concat_batches(&row().schema(), &[row(), row()])
            .expect("two rows");
        assert!(Handle::parameter_row(&messages(&two)).is_err());
        assert!(Handle::parameter_row(&good[..1]).is_err());
        assert!(Handle::parameter_row(&[]).is_err());
        // A compressed batch (whose declared sizes arrow would allocate)
        // is refused before it is decoded.
        let compressed = {
            let options = datafusion::arrow::ipc::writer::IpcWriteOptions::default()
                .try_with_compression(Some(datafusion::arrow::ipc::CompressionType::LZ4_FRAME))
                .expect("lz4");
            let generator = datafusion::arrow::ipc::writer::IpcDataGenerator::default();
            let mut tracker = datafusion::arrow::ipc::writer::DictionaryTracker::new(false);
            let mut context = datafusion::arrow::ipc::writer::IpcWriteContext::default();
            let (_, encoded) = generator
                .encode(&row(), &mut tracker, &options, &mut context)
                .expect("encode");
            let mut m = good.clone();
            let last = m.len() - 1;
            m[last] = FlightData {
                data_header: encoded.ipc_message.into(),
                data_body: encoded.arrow_data.into(),
                ..Default::default()
            };
            m
        };
        let e = Handle::parameter_row(&compressed).expect_err("compressed");
        assert!(e.message.contains("compressed"), "{}", e.message);
        let mut seed = 11u64;
        for _ in 0..3000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut m = good.clone();
            let which = (seed >> 40) as usize % m.len();
            let part = if seed & 1 == 0 {
                &mut m[which].data_header
            } else {
                &mut m[which].data_body
            };
            if part.is_empty() {
                continue;
            }
            let mut bytes = part.to_vec();
            let at = (seed >> 33) as usize % bytes.len();
            bytes[at] ^= (seed >> 13) as u8 | 1;
            *part = bytes.into();
            let _ = Handle::parameter_row(&m);
        }
    }
}
