//! Bind parameters to DataFusion values.
//!
//! A parameter arrives as text or binary, typed by the client or not. It is
//! decoded by its PostgreSQL type (the client's, or the one DataFusion
//! inferred) and cast to the Arrow type DataFusion inferred for `$n`.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use pgwire::api::Type;

use crate::error::QueryError;

/// Parameter types of a plan, in `$1, $2, ...` order.
pub fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>, QueryError> {
    let types = plan.get_parameter_types()?;
    let mut indexed: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, ty)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|i| (i, ty))
        })
        .collect();
    indexed.sort_by_key(|(i, _)| *i);
    let n = indexed.last().map(|(i, _)| *i).unwrap_or(0);
    let mut out = vec![None; n];
    for (i, ty) in indexed {
        if i >= 1 {
            out[i - 1] = ty;
        }
    }
    Ok(out)
}

/// The PostgreSQL type announced for a parameter of Arrow type `ty`.
pub fn pg_type_of(ty: Option<&DataType>) -> Type {
    match ty {
        Some(t) => arrow_pg::datatypes::into_pg_type(t).unwrap_or(Type::TEXT),
        None => Type::TEXT,
    }
}

fn bad(i: usize, msg: impl std::fmt::Display) -> QueryError {
    QueryError::new(
        "22P02",
        format!("invalid value for parameter ${}: {msg}", i + 1),
    )
}

fn be<const N: usize>(i: usize, b: &[u8]) -> Result<[u8; N], QueryError> {
    b.try_into()
        .map_err(|_| bad(i, format!("expected {N} bytes")))
}

/// Decodes one binary parameter of PostgreSQL type `ty`.
fn binary(i: usize, ty: &Type, b: &[u8]) -> Result<ScalarValue, QueryError> {
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(Some(b.first().copied().unwrap_or(0) != 0)),
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(be(i, b)?))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(be(i, b)?))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(be(i, b)?))),
        Type::OID => ScalarValue::Int64(Some(u32::from_be_bytes(be(i, b)?) as i64)),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(be(i, b)?))),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(be(i, b)?))),
        Type::DATE => ScalarValue::Date32(Some(i32::from_be_bytes(be(i, b)?) + 10_957)),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(be(i, b)?) + 946_684_800_000_000),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(be(i, b)?) + 946_684_800_000_000),
            Some("+00:00".into()),
        ),
        Type::BYTEA => ScalarValue::Binary(Some(b.to_vec())),
        Type::NUMERIC => {
            if b.len() < 8 {
                return Err(bad(i, "short numeric"));
            }
            let dscale = u16::from_be_bytes([b[6], b[7]]).min(38) as i8;
            let v = tautan_postgres::copy::numeric_to_i128(b, dscale).map_err(|e| bad(i, e))?;
            ScalarValue::Decimal128(Some(v), 38, dscale)
        }
        _ => ScalarValue::Utf8(Some(String::from_utf8(b.to_vec()).map_err(|e| bad(i, e))?)),
    })
}

/// Builds DataFusion parameter values from a Bind message's raw values.
pub fn decode(
    raw: &[Option<bytes::Bytes>],
    binary_flags: &[bool],
    client_types: &[Option<Type>],
    inferred: &[Option<DataType>],
) -> Result<ParamValues, QueryError> {
    let mut values = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        let target = inferred.get(i).cloned().flatten();
        let declared = client_types
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN)
            .unwrap_or_else(|| pg_type_of(target.as_ref()));
        let scalar = match value {
            None => ScalarValue::Null,
            Some(b) if binary_flags.get(i).copied().unwrap_or(false) => binary(i, &declared, b)?,
            Some(b) => ScalarValue::Utf8(Some(
                std::str::from_utf8(b).map_err(|e| bad(i, e))?.to_string(),
            )),
        };
        let scalar = match (&target, &scalar) {
            (_, ScalarValue::Null) => match &target {
                Some(t) => ScalarValue::try_from(t).unwrap_or(ScalarValue::Null),
                None => ScalarValue::Null,
            },
            (Some(t), s) if s.data_type() != *t => cast(i, s, t)?,
            _ => scalar,
        };
        values.push(scalar.into());
    }
    Ok(ParamValues::List(values))
}

fn cast(i: usize, s: &ScalarValue, t: &DataType) -> Result<ScalarValue, QueryError> {
    // Text booleans as PostgreSQL writes them.
    if let (ScalarValue::Utf8(Some(v)), DataType::Boolean) = (s, t) {
        return match v.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => Ok(ScalarValue::Boolean(Some(true))),
            "f" | "false" | "no" | "off" | "0" => Ok(ScalarValue::Boolean(Some(false))),
            _ => Err(bad(i, v)),
        };
    }
    let target = match t {
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        other => other.clone(),
    };
    s.cast_to(&target).map_err(|e| bad(i, e))
}
