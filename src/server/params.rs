//! Bind parameters to DataFusion values.
//!
//! A parameter arrives as text or binary, typed by the client or not. It is
//! decoded by its PostgreSQL type (the client's, or the one DataFusion
//! inferred) and cast to the Arrow type DataFusion inferred for `$n`.
//!
//! Everything here reads client bytes: lengths are checked before a value
//! is read, arithmetic is checked, and nothing is sized from a number the
//! client chose (a placeholder `$4000000000` is refused, not allocated).
//! The errors are PostgreSQL's: 22P03 for a binary value of the wrong
//! shape, 22008 for a date or timestamp tautan cannot represent (binary
//! `infinity` included), 42P02 for a placeholder number no Bind can supply.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use pgwire::api::Type;

use crate::error::QueryError;

/// The most parameters a statement can have: Bind counts them in 16 bits.
pub const MAX_PARAMETERS: usize = u16::MAX as usize;

/// The number `n` of a placeholder `$n`, if it is one a Bind message can
/// supply (1 to [`MAX_PARAMETERS`]); 42P02 otherwise, as PostgreSQL answers
/// for a parameter that was not bound.
pub fn parameter_number(name: &str) -> Result<usize, QueryError> {
    name.strip_prefix('$')
        .filter(|d| !d.is_empty() && d.len() <= 5 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<usize>().ok())
        .filter(|n| (1..=MAX_PARAMETERS).contains(n))
        .ok_or_else(|| no_parameter(name))
}

/// 42P02, PostgreSQL's answer for `$n` beyond what was bound.
pub fn no_parameter(name: &str) -> QueryError {
    QueryError::new("42P02", format!("there is no parameter {name}"))
}

/// Parameter types of a plan, in `$1, $2, ...` order. The vector is as long
/// as the highest placeholder number, which is at most [`MAX_PARAMETERS`].
pub fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>, QueryError> {
    let types = plan.get_parameter_types()?;
    let mut indexed = Vec::with_capacity(types.len());
    for (name, ty) in types {
        indexed.push((parameter_number(&name)?, ty));
    }
    let n = indexed.iter().map(|(i, _)| *i).max().unwrap_or(0);
    let mut out = vec![None; n];
    for (i, ty) in indexed {
        if let Some(slot) = i.checked_sub(1).and_then(|i| out.get_mut(i)) {
            *slot = ty;
        }
    }
    Ok(out)
}

/// The PostgreSQL types announced for the parameters of `plan`
/// (ParameterDescription), in `$1, $2, ...` order.
pub fn announced_types(plan: &LogicalPlan) -> Result<Vec<Type>, QueryError> {
    if let Some(types) = crate::client_queries::parameter_types(plan) {
        return Ok(types);
    }
    Ok(parameter_types(plan)?
        .iter()
        .map(|t| pg_type_of(t.as_ref()))
        .collect())
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

/// 22P03, worded like PostgreSQL's.
fn bad_binary(i: usize) -> QueryError {
    QueryError::new(
        "22P03",
        format!("incorrect binary data format in bind parameter {}", i + 1),
    )
}

/// 22008 for a value outside what tautan can represent.
fn out_of_range(i: usize, what: &str) -> QueryError {
    QueryError::new(
        "22008",
        format!("{what} out of range (bind parameter {})", i + 1),
    )
}

fn be<const N: usize>(i: usize, b: &[u8]) -> Result<[u8; N], QueryError> {
    b.try_into().map_err(|_| bad_binary(i))
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// PostgreSQL's timestamp range in microseconds since 2000-01-01
/// (4714-11-24 BC to 294277-01-01 AD, exclusive), `MIN_TIMESTAMP` and
/// `END_TIMESTAMP` in its `datatype/timestamp.h`.
const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const PG_END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
/// Dates are held to the timestamp range too, so that every date a client
/// binds can also be compared with a timestamp (PostgreSQL's own date range
/// goes further, to 5874897 AD).
const PG_MIN_DATE: i64 = PG_MIN_TIMESTAMP / 86_400_000_000;
const PG_END_DATE: i64 = PG_END_TIMESTAMP / 86_400_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A binary `date` (days since 2000-01-01) as Arrow's days since 1970.
/// `i32::MIN`/`i32::MAX` are PostgreSQL's `-infinity`/`infinity`, which
/// Arrow cannot represent: refused, like every date outside the range.
fn date(i: usize, days: i32) -> Result<ScalarValue, QueryError> {
    let days = i64::from(days);
    if !(PG_MIN_DATE..PG_END_DATE).contains(&days) {
        return Err(out_of_range(i, "date"));
    }
    let unix = days
        .checked_add(PG_EPOCH_DAYS)
        .and_then(|d| i32::try_from(d).ok())
        .ok_or_else(|| out_of_range(i, "date"))?;
    Ok(ScalarValue::Date32(Some(unix)))
}

/// A binary `timestamp[tz]` (microseconds since 2000-01-01) as
/// microseconds since 1970. `i64::MIN`/`i64::MAX` are `-infinity` and
/// `infinity`: refused with 22008.
fn timestamp(i: usize, micros: i64, tz: Option<&str>) -> Result<ScalarValue, QueryError> {
    if !(PG_MIN_TIMESTAMP..PG_END_TIMESTAMP).contains(&micros) {
        return Err(out_of_range(i, "timestamp"));
    }
    let unix = micros
        .checked_add(PG_EPOCH_MICROS)
        .ok_or_else(|| out_of_range(i, "timestamp"))?;
    Ok(ScalarValue::TimestampMicrosecond(
        Some(unix),
        tz.map(Into::into),
    ))
}

/// A binary `numeric`, checked as PostgreSQL's `numeric_recv` checks it:
/// digit count matching the length, sign, display scale and every base-10000
/// digit in range. NaN and the infinities have no Decimal128 form.
fn numeric(i: usize, b: &[u8]) -> Result<ScalarValue, QueryError> {
    let field = |k: usize| -> Result<u16, QueryError> {
        b.get(k..k + 2)
            .and_then(|s| <[u8; 2]>::try_from(s).ok())
            .map(u16::from_be_bytes)
            .ok_or_else(|| bad_binary(i))
    };
    let ndigits = usize::from(field(0)?);
    let sign = field(4)?;
    let dscale = field(6)?;
    if ndigits > 0x7FFF || b.len() != 8 + 2 * ndigits {
        return Err(bad_binary(i));
    }
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 | 0xD000 | 0xF000 => {
            return Err(QueryError::new(
                "22003",
                format!(
                    "NaN and infinity have no decimal value here (bind parameter {})",
                    i + 1
                ),
            ))
        }
        _ => {
            return Err(QueryError::new(
                "22P03",
                format!(
                    "invalid sign in external \"numeric\" value (bind parameter {})",
                    i + 1
                ),
            ))
        }
    }
    if dscale & 0xC000 != 0 {
        return Err(QueryError::new(
            "22P03",
            format!(
                "invalid scale in external \"numeric\" value (bind parameter {})",
                i + 1
            ),
        ));
    }
    for k in 0..ndigits {
        if field(8 + 2 * k)? >= 10_000 {
            return Err(QueryError::new(
                "22P03",
                format!(
                    "invalid digit in external \"numeric\" value (bind parameter {})",
                    i + 1
                ),
            ));
        }
    }
    let scale = i8::try_from(dscale.min(38)).unwrap_or(38);
    let v = tautan_postgres::copy::numeric_to_i128(b, scale)
        .map_err(|e| QueryError::new("22003", format!("{e} (bind parameter {})", i + 1)))?;
    Ok(ScalarValue::Decimal128(Some(v), 38, scale))
}

/// Text in the client encoding (UTF-8), 22021 otherwise as PostgreSQL.
fn utf8(i: usize, b: &[u8]) -> Result<String, QueryError> {
    String::from_utf8(b.to_vec()).map_err(|_| {
        QueryError::new(
            "22021",
            format!(
                "invalid byte sequence for encoding \"UTF8\" (bind parameter {})",
                i + 1
            ),
        )
    })
}

/// Decodes one binary parameter of PostgreSQL type `ty`.
fn binary(i: usize, ty: &Type, b: &[u8]) -> Result<ScalarValue, QueryError> {
    Ok(match *ty {
        Type::BOOL => match b {
            [v] => ScalarValue::Boolean(Some(*v != 0)),
            _ => return Err(bad_binary(i)),
        },
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(be(i, b)?))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(be(i, b)?))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(be(i, b)?))),
        Type::OID => ScalarValue::Int64(Some(i64::from(u32::from_be_bytes(be(i, b)?)))),
        Type::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(be(i, b)?))),
        Type::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(be(i, b)?))),
        Type::DATE => date(i, i32::from_be_bytes(be(i, b)?))?,
        Type::TIMESTAMP => timestamp(i, i64::from_be_bytes(be(i, b)?), None)?,
        Type::TIMESTAMPTZ => timestamp(i, i64::from_be_bytes(be(i, b)?), Some("+00:00"))?,
        Type::TIME => {
            let micros = i64::from_be_bytes(be(i, b)?);
            if !(0..=MICROS_PER_DAY).contains(&micros) {
                return Err(out_of_range(i, "time"));
            }
            ScalarValue::Time64Microsecond(Some(micros))
        }
        Type::INTERVAL => {
            let raw: [u8; 16] = be(i, b)?;
            let (mut micros, mut days, mut months) = ([0u8; 8], [0u8; 4], [0u8; 4]);
            micros.copy_from_slice(&raw[..8]);
            days.copy_from_slice(&raw[8..12]);
            months.copy_from_slice(&raw[12..]);
            let nanos = i64::from_be_bytes(micros)
                .checked_mul(1000)
                .ok_or_else(|| out_of_range(i, "interval"))?;
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
                i32::from_be_bytes(months),
                i32::from_be_bytes(days),
                nanos,
            )))
        }
        Type::UUID => {
            let raw: [u8; 16] = be(i, b)?;
            let hex: String = raw.iter().map(|x| format!("{x:02x}")).collect();
            let (a, rest) = hex.split_at(8);
            let (b2, rest) = rest.split_at(4);
            let (c, rest) = rest.split_at(4);
            let (d, e) = rest.split_at(4);
            ScalarValue::Utf8(Some(format!("{a}-{b2}-{c}-{d}-{e}")))
        }
        Type::JSONB => match b.split_first() {
            Some((1, rest)) => ScalarValue::Utf8(Some(utf8(i, rest)?)),
            _ => {
                return Err(QueryError::new(
                    "22P03",
                    format!("unsupported jsonb version number (bind parameter {})", i + 1),
                ))
            }
        },
        Type::BYTEA => ScalarValue::Binary(Some(b.to_vec())),
        Type::NUMERIC => numeric(i, b)?,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::CHAR
        | Type::JSON
        | Type::XML => ScalarValue::Utf8(Some(utf8(i, b)?)),
        ref other => {
            return Err(QueryError::new(
                "0A000",
                format!(
                    "binary format for parameters of type {} is not supported (bind parameter {}); send it as text",
                    other.name(),
                    i + 1
                ),
            ))
        }
    })
}

/// The element type of array type `ty`, if it is one.
/// The Arrow type of a parameter a client declared as `ty`, where the
/// declaration says it whole (`numeric` does not: no precision; `uuid`,
/// `json` and the types tautan has no Arrow form for are left to the
/// statement).
pub fn declared_arrow_type(ty: &Type) -> Option<DataType> {
    use datafusion::arrow::datatypes::{Field, IntervalUnit};
    if let Some(element) = element_type(ty) {
        let element = declared_arrow_type(&element)?;
        return Some(DataType::List(Arc::new(Field::new_list_field(
            element, true,
        ))));
    }
    Some(match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::NAME => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIME => DataType::Time64(TimeUnit::Microsecond),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        Type::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        _ => return None,
    })
}

fn element_type(ty: &Type) -> Option<Type> {
    match ty.kind() {
        postgres_types::Kind::Array(element) => Some(element.clone()),
        _ => None,
    }
}

/// The Arrow type a text element of PostgreSQL type `ty` is cast to when
/// DataFusion inferred nothing for the parameter.
fn element_arrow_type(ty: &Type) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 | Type::OID => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::DATE => DataType::Date32,
        _ => DataType::Utf8,
    }
}

/// A one-dimensional array parameter as a list of `element` values: text
/// (`{a,"b c",NULL}`) or binary (PostgreSQL's array wire format).
/// Arrays of more dimensions are refused (0A000).
fn array(
    i: usize,
    element: &Type,
    b: &[u8],
    binary_format: bool,
) -> Result<ScalarValue, QueryError> {
    let items: Vec<ScalarValue> = if binary_format {
        binary_array(i, element, b)?
    } else {
        let arrow = element_arrow_type(element);
        text_array(i, &utf8(i, b)?)?
            .into_iter()
            .map(|item| match item {
                None => ScalarValue::try_from(&arrow).map_err(|e| bad(i, e)),
                Some(text) => cast(i, &ScalarValue::Utf8(Some(text)), &arrow),
            })
            .collect::<Result<_, _>>()?
    };
    // One element type for all (a binary NULL is typed by the element's
    // PostgreSQL type, a value by what decoding it gave).
    let arrow = items
        .iter()
        .find(|v| !v.is_null())
        .map(ScalarValue::data_type)
        .unwrap_or_else(|| element_arrow_type(element));
    let items = items
        .into_iter()
        .map(|v| {
            if v.is_null() {
                ScalarValue::try_from(&arrow).map_err(|e| bad(i, e))
            } else if v.data_type() != arrow {
                cast(i, &v, &arrow)
            } else {
                Ok(v)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let values = if items.is_empty() {
        datafusion::arrow::array::new_empty_array(&arrow)
    } else {
        ScalarValue::iter_to_array(items).map_err(|e| bad(i, e))?
    };
    Ok(ScalarValue::List(std::sync::Arc::new(
        datafusion::common::utils::SingleRowListArrayBuilder::new(values)
            .with_nullable(true)
            .build_list_array(),
    )))
}

fn many_dimensions(i: usize) -> QueryError {
    QueryError::new(
        "0A000",
        format!(
            "arrays of more than one dimension are not supported as parameters (bind parameter {})",
            i + 1
        ),
    )
}

/// The elements of a one-dimensional array literal, `None` for NULL.
fn text_array(i: usize, text: &str) -> Result<Vec<Option<String>>, QueryError> {
    let body = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| bad(i, format!("malformed array literal: \"{text}\"")))?;
    let mut items = Vec::new();
    if body.trim().is_empty() {
        return Ok(items);
    }
    let mut chars = body.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut item = String::new();
        let mut quoted = false;
        match chars.peek() {
            Some('{') => return Err(many_dimensions(i)),
            Some('"') => {
                quoted = true;
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => item.push(chars.next().ok_or_else(|| bad(i, text))?),
                        Some(c) => item.push(c),
                        None => return Err(bad(i, format!("malformed array literal: \"{text}\""))),
                    }
                }
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
            }
            _ => {
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    match c {
                        '\\' => item.push(chars.next().ok_or_else(|| bad(i, text))?),
                        '"' | '{' | '}' => {
                            return Err(bad(i, format!("malformed array literal: \"{text}\"")))
                        }
                        c => item.push(c),
                    }
                }
                item = item.trim_end().to_string();
                if item.is_empty() {
                    return Err(bad(i, format!("malformed array literal: \"{text}\"")));
                }
            }
        }
        items.push((quoted || !item.eq_ignore_ascii_case("NULL")).then_some(item));
        match chars.next() {
            None => return Ok(items),
            Some(',') => {}
            Some(_) => return Err(bad(i, format!("malformed array literal: \"{text}\""))),
        }
    }
}

/// The elements of a binary array: dimensions, flags, element type, then
/// each element as a length and its bytes (-1 for NULL).
fn binary_array(i: usize, element: &Type, b: &[u8]) -> Result<Vec<ScalarValue>, QueryError> {
    let mut rest = b;
    let int = |rest: &mut &[u8]| -> Result<i32, QueryError> {
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(|| bad_binary(i))?;
        *rest = tail;
        Ok(i32::from_be_bytes(*head))
    };
    let dimensions = int(&mut rest)?;
    let _has_nulls = int(&mut rest)?;
    let declared = int(&mut rest)? as u32;
    if declared != element.oid() {
        return Err(bad_binary(i));
    }
    match dimensions {
        0 => return Ok(Vec::new()),
        1 => {}
        d if d > 1 => return Err(many_dimensions(i)),
        _ => return Err(bad_binary(i)),
    }
    let len = int(&mut rest)?;
    let _lower_bound = int(&mut rest)?;
    // Each element takes at least its 4-byte length: a count the bytes
    // cannot hold is refused before anything is allocated.
    let len = usize::try_from(len)
        .ok()
        .filter(|n| n.saturating_mul(4) <= rest.len())
        .ok_or_else(|| bad_binary(i))?;
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        let size = int(&mut rest)?;
        if size < 0 {
            let arrow = element_arrow_type(element);
            items.push(ScalarValue::try_from(&arrow).map_err(|e| bad(i, e))?);
            continue;
        }
        let size = usize::try_from(size).map_err(|_| bad_binary(i))?;
        if size > rest.len() {
            return Err(bad_binary(i));
        }
        let (value, tail) = rest.split_at(size);
        rest = tail;
        items.push(binary(i, element, value)?);
    }
    if !rest.is_empty() {
        return Err(bad_binary(i));
    }
    Ok(items)
}

/// Builds DataFusion parameter values from a Bind message's raw values.
/// A value's PostgreSQL type is the client's (Parse), else `announced`
/// (a known client query's own, [`crate::client_queries`]), else the one
/// inferred for the parameter.
pub fn decode(
    raw: &[Option<bytes::Bytes>],
    binary_flags: &[bool],
    client_types: &[Option<Type>],
    inferred: &[Option<DataType>],
    announced: &[Type],
) -> Result<ParamValues, QueryError> {
    let mut values = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        let target = inferred.get(i).cloned().flatten();
        let declared = client_types
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN)
            .or_else(|| announced.get(i).cloned())
            .unwrap_or_else(|| pg_type_of(target.as_ref()));
        let binary_format = binary_flags.get(i).copied().unwrap_or(false);
        let scalar = match (value, element_type(&declared)) {
            (None, _) => ScalarValue::Null,
            (Some(b), Some(element)) => array(i, &element, b, binary_format)?,
            (Some(b), None) if binary_format => binary(i, &declared, b)?,
            (Some(b), None) => ScalarValue::Utf8(Some(utf8(i, b)?)),
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

/// Parameter values given typed (Arrow values from a Flight SQL client),
/// each converted to the type inferred for its placeholder as a Bind
/// message's would be; a NULL becomes a NULL of that type.
pub fn typed(
    values: Vec<ScalarValue>,
    inferred: &[Option<DataType>],
) -> Result<ParamValues, QueryError> {
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let target = inferred.get(i).cloned().flatten();
        let value = match (&target, value.is_null()) {
            (Some(t), true) => ScalarValue::try_from(t).unwrap_or(ScalarValue::Null),
            (Some(t), false) if value.data_type() != *t => cast(i, &value, t)?,
            _ => value,
        };
        out.push(value.into());
    }
    Ok(ParamValues::List(out))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(ty: Type, bytes: &[u8]) -> Result<ScalarValue, QueryError> {
        binary(0, &ty, bytes)
    }

    #[test]
    fn placeholder_numbers_are_bounded() {
        assert_eq!(parameter_number("$1"), Ok(1));
        assert_eq!(parameter_number("$65535"), Ok(65_535));
        for name in [
            "$0",
            "$65536",
            "$4000000000",
            "$99999999999999999999999",
            "$x",
            "$",
        ] {
            let e = parameter_number(name).expect_err(name);
            assert_eq!(e.code, "42P02", "{name}");
            assert_eq!(e.message, format!("there is no parameter {name}"));
        }
    }

    #[test]
    fn infinite_dates_and_timestamps_are_refused() {
        for ty in [Type::TIMESTAMP, Type::TIMESTAMPTZ] {
            for v in [i64::MAX, i64::MIN] {
                let e = one(ty.clone(), &v.to_be_bytes()).expect_err("infinity");
                assert_eq!(e.code, "22008");
                assert!(e.message.starts_with("timestamp out of range"), "{e}");
            }
        }
        for v in [i32::MAX, i32::MIN] {
            let e = one(Type::DATE, &v.to_be_bytes()).expect_err("infinity");
            assert_eq!(e.code, "22008");
        }
        // 2000-01-02 and 1999-12-31.
        assert_eq!(
            one(Type::DATE, &1i32.to_be_bytes()),
            Ok(ScalarValue::Date32(Some(10_958)))
        );
        assert_eq!(
            one(Type::TIMESTAMP, &(-1i64).to_be_bytes()),
            Ok(ScalarValue::TimestampMicrosecond(
                Some(946_684_799_999_999),
                None
            ))
        );
    }

    #[test]
    fn malformed_binary_values_are_22p03() {
        for (ty, bytes) in [
            (Type::INT4, &[0u8, 1][..]),
            (Type::INT8, &[0; 9][..]),
            (Type::BOOL, &[][..]),
            (Type::BOOL, &[1, 0][..]),
            (Type::FLOAT8, &[0; 4][..]),
            (Type::UUID, &[0; 15][..]),
            (Type::INTERVAL, &[0; 12][..]),
            (Type::NUMERIC, &[0; 7][..]),
            // Two digits announced, one sent.
            (Type::NUMERIC, &[0, 2, 0, 0, 0, 0, 0, 0, 0, 1][..]),
            // Digit 10000.
            (Type::NUMERIC, &[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10][..]),
            (Type::JSONB, &[2, b'{', b'}'][..]),
        ] {
            let e = one(ty.clone(), bytes).expect_err(ty.name());
            assert_eq!(e.code, "22P03", "{}: {e}", ty.name());
        }
        let e = one(Type::TEXT, &[0xff, 0xfe]).expect_err("not utf-8");
        assert_eq!(e.code, "22021");
        let e = one(Type::POINT, &[0; 16]).expect_err("no binary decoder");
        assert_eq!(e.code, "0A000");
    }

    #[test]
    fn binary_values_decode() {
        assert_eq!(
            one(Type::UUID, &[0x12; 16]),
            Ok(ScalarValue::Utf8(Some(
                "12121212-1212-1212-1212-121212121212".into()
            )))
        );
        // 12.5 as numeric: ndigits 2, weight 0, sign +, dscale 1: 12, 5000.
        assert_eq!(
            one(Type::NUMERIC, &[0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88]),
            Ok(ScalarValue::Decimal128(Some(125), 38, 1))
        );
        let e = one(Type::NUMERIC, &[0, 0, 0, 0, 0xC0, 0, 0, 0]).expect_err("NaN");
        assert_eq!(e.code, "22003");
        assert_eq!(
            one(Type::JSONB, b"\x01{}"),
            Ok(ScalarValue::Utf8(Some("{}".into())))
        );
        assert_eq!(
            one(Type::TIME, &3_600_000_000i64.to_be_bytes()),
            Ok(ScalarValue::Time64Microsecond(Some(3_600_000_000)))
        );
        let e = one(Type::INTERVAL, &[0x7f; 16]).expect_err("interval overflow");
        assert_eq!(e.code, "22008");
    }

    fn list(items: Vec<ScalarValue>, ty: &DataType) -> ScalarValue {
        let values = if items.is_empty() {
            datafusion::arrow::array::new_empty_array(ty)
        } else {
            ScalarValue::iter_to_array(items).expect("array")
        };
        ScalarValue::List(std::sync::Arc::new(
            datafusion::common::utils::SingleRowListArrayBuilder::new(values)
                .with_nullable(true)
                .build_list_array(),
        ))
    }

    #[test]
    fn text_arrays_decode_as_postgresql_reads_them() {
        let text = |s: &str| ScalarValue::Utf8(Some(s.into()));
        assert_eq!(
            array(
                0,
                &Type::TEXT,
                br#"{r, "v,m" ,NULL,"NULL",a\,b,"q\"t"}"#,
                false
            ),
            Ok(list(
                vec![
                    text("r"),
                    text("v,m"),
                    ScalarValue::Utf8(None),
                    text("NULL"),
                    text("a,b"),
                    text("q\"t")
                ],
                &DataType::Utf8
            ))
        );
        assert_eq!(
            array(0, &Type::INT4, b"{1,2,NULL}", false),
            Ok(list(
                vec![
                    ScalarValue::Int32(Some(1)),
                    ScalarValue::Int32(Some(2)),
                    ScalarValue::Int32(None)
                ],
                &DataType::Int32
            ))
        );
        assert_eq!(
            array(0, &Type::INT8, b" {} ", false),
            Ok(list(vec![], &DataType::Int64))
        );
        for (bad, code) in [
            (&b"{{1,2},{3,4}}"[..], "0A000"),
            (b"1,2", "22P02"),
            (b"{1,2", "22P02"),
            (b"{\"1}", "22P02"),
            (b"{1\"2}", "22P02"),
            (b"{x}", "22P02"),
            (b"{1,}", "22P02"),
        ] {
            let e = array(0, &Type::INT4, bad, false).expect_err("malformed");
            assert_eq!(e.code, code, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn binary_arrays_decode_and_refuse_lies() {
        // int4[] {7, NULL}: 1 dimension, has nulls, oid 23, 2 elements from 1.
        let mut b = Vec::new();
        for v in [1i32, 1, 23, 2, 1, 4, 7, -1] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            array(0, &Type::INT4, &b, true),
            Ok(list(
                vec![ScalarValue::Int32(Some(7)), ScalarValue::Int32(None)],
                &DataType::Int32
            ))
        );
        // Element type that is not the declared one; a count far beyond
        // the bytes; a length past the end; trailing bytes; two dimensions.
        let word = |v: &[i32]| v.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        for (bad, code) in [
            (word(&[1, 0, 25, 1, 1, 1, 7]), "22P03"),
            (word(&[1, 0, 23, i32::MAX, 1]), "22P03"),
            (word(&[1, 0, 23, 1, 1, 400]), "22P03"),
            ([word(&[1, 0, 23, 1, 1, 4, 7]), vec![0]].concat(), "22P03"),
            (word(&[2, 0, 23, 1, 1, 1, 1]), "0A000"),
            (word(&[-1, 0, 23]), "22P03"),
            (vec![0, 0, 1], "22P03"),
        ] {
            let e = array(0, &Type::INT4, &bad, true).expect_err("malformed");
            assert_eq!(e.code, code, "{bad:?}");
        }
    }
}
