//! Converting binary-protocol rows into Arrow batches.
//!
//! The driver hands each value as a [`Value`]; the column's Arrow type
//! (chosen by [`crate::introspect`]) says how to convert it. Zero dates and
//! datetimes (`0000-00-00`) become NULL, as MySQL's own JDBC driver does
//! with `zeroDateTimeBehavior=convertToNull`.

use datafusion::arrow::array::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    IntervalMonthDayNanoBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder, UInt8Builder,
};
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, SchemaRef, TimeUnit,
};
use datafusion::arrow::record_batch::RecordBatch;
use mysql_async::{Row, Value};
use tautan_connector::batch::BatchBuilder;
use tautan_connector::types::parse_decimal;
use tautan_connector::LinkError;

/// Accumulates rows into batches of a fixed schema.
pub struct RowDecoder {
    batches: BatchBuilder,
}

impl RowDecoder {
    /// A decoder producing batches of `schema`.
    pub fn new(link: &str, schema: SchemaRef) -> Result<Self, LinkError> {
        Ok(Self {
            batches: BatchBuilder::new(link, schema, supported)?,
        })
    }

    /// Adds one row; returns a batch when one is full.
    pub fn push(&mut self, row: Row) -> Result<Option<RecordBatch>, LinkError> {
        let values = row.unwrap_raw();
        for i in 0..self.batches.width() {
            let v = values.get(i).and_then(|v| v.as_ref());
            let Some((field, builder)) = self.batches.column(i) else {
                break;
            };
            let name = field.name().clone();
            if let Err(m) = append(&field.data_type().clone(), builder, v) {
                return Err(self.batches.conversion_error(&name, m));
            }
        }
        self.batches.end_row()
    }

    /// The last, partial batch, if any rows remain.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, LinkError> {
        self.batches.finish()
    }
}

fn supported(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond, _)
            | DataType::Interval(IntervalUnit::MonthDayNano)
    )
}

macro_rules! builder {
    ($b:expr, $t:ty) => {
        $b.as_any_mut()
            .downcast_mut::<$t>()
            .ok_or_else(|| format!("internal: builder is not {}", stringify!($t)))?
    };
}

/// A value as a signed integer: ints, BIT bytes (big-endian), or text.
fn as_i128(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(*i as i128),
        Value::UInt(u) => Ok(*u as i128),
        Value::Bytes(b) => {
            if let Ok(s) = std::str::from_utf8(b) {
                if let Ok(n) = s.trim().parse::<i128>() {
                    return Ok(n);
                }
            }
            // BIT(n) arrives as big-endian bytes.
            if b.len() <= 8 {
                Ok(b.iter().fold(0i128, |acc, x| (acc << 8) | *x as i128))
            } else {
                Err("integer value too wide".into())
            }
        }
        Value::Float(f) => Ok(*f as i128),
        Value::Double(d) => Ok(*d as i128),
        other => Err(format!("expected an integer, got {other:?}")),
    }
}

fn as_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f as f64),
        Value::Double(d) => Ok(*d),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "not a number".to_string()),
        other => Err(format!("expected a number, got {other:?}")),
    }
}

fn int<T: TryFrom<i128>>(v: &Value) -> Result<T, String> {
    let n = as_i128(v)?;
    T::try_from(n).map_err(|_| format!("{n} out of range"))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Some(micros since epoch)` for a date/datetime, `None` for zero dates.
fn datetime_micros(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Date(y, mo, d, h, mi, s, us) => {
            if *y == 0 || *mo == 0 || *d == 0 {
                return Ok(None);
            }
            let days = days_from_civil(*y as i64, *mo as i64, *d as i64);
            Ok(Some(
                ((days * 24 + *h as i64) * 60 + *mi as i64) * 60_000_000
                    + *s as i64 * 1_000_000
                    + *us as i64,
            ))
        }
        Value::Bytes(b) if b.starts_with(b"0000-00-00") => Ok(None),
        other => Err(format!("expected a date, got {other:?}")),
    }
}

fn append(dt: &DataType, b: &mut dyn ArrayBuilder, v: Option<&Value>) -> Result<(), String> {
    let v = match v {
        None | Some(Value::NULL) => None,
        Some(v) => Some(v),
    };
    macro_rules! simple {
        ($t:ty, $conv:expr) => {{
            let b = builder!(b, $t);
            match v {
                Some(v) => b.append_value($conv(v)?),
                None => b.append_null(),
            }
        }};
    }
    match dt {
        DataType::Boolean => simple!(BooleanBuilder, |v| as_i128(v).map(|n| n != 0)),
        DataType::Int8 => simple!(Int8Builder, int::<i8>),
        DataType::Int16 => simple!(Int16Builder, int::<i16>),
        DataType::Int32 => simple!(Int32Builder, int::<i32>),
        DataType::Int64 => simple!(Int64Builder, int::<i64>),
        DataType::UInt8 => simple!(UInt8Builder, int::<u8>),
        DataType::UInt16 => simple!(UInt16Builder, int::<u16>),
        DataType::UInt32 => simple!(UInt32Builder, int::<u32>),
        DataType::UInt64 => simple!(UInt64Builder, int::<u64>),
        DataType::Float32 => simple!(Float32Builder, |v| as_f64(v).map(|f| f as f32)),
        DataType::Float64 => simple!(Float64Builder, as_f64),
        DataType::Decimal128(_, scale) => {
            let b = builder!(b, Decimal128Builder);
            match v {
                Some(Value::Bytes(bytes)) => {
                    let s = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
                    let n = parse_decimal(s, *scale)
                        .ok_or_else(|| format!("{s} is not a decimal with scale {scale}"))?;
                    b.append_value(n)
                }
                Some(Value::Int(i)) => b.append_value(*i as i128 * 10i128.pow(*scale as u32)),
                Some(other) => return Err(format!("expected a decimal, got {other:?}")),
                None => b.append_null(),
            }
        }
        DataType::Utf8 => {
            let b = builder!(b, StringBuilder);
            match v {
                Some(Value::Bytes(bytes)) => {
                    b.append_value(std::str::from_utf8(bytes).map_err(|e| e.to_string())?)
                }
                Some(Value::Int(i)) => b.append_value(i.to_string()),
                Some(Value::UInt(u)) => b.append_value(u.to_string()),
                Some(Value::Float(f)) => b.append_value(f.to_string()),
                Some(Value::Double(d)) => b.append_value(d.to_string()),
                Some(other) => return Err(format!("expected text, got {other:?}")),
                None => b.append_null(),
            }
        }
        DataType::Binary => {
            let b = builder!(b, BinaryBuilder);
            match v {
                Some(Value::Bytes(bytes)) => b.append_value(bytes),
                Some(other) => return Err(format!("expected bytes, got {other:?}")),
                None => b.append_null(),
            }
        }
        DataType::Date32 => {
            let b = builder!(b, Date32Builder);
            match v.map(datetime_micros).transpose()?.flatten() {
                Some(us) => b.append_value((us.div_euclid(86_400_000_000)) as i32),
                None => b.append_null(),
            }
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let b = builder!(b, TimestampMicrosecondBuilder);
            match v.map(datetime_micros).transpose()?.flatten() {
                Some(us) => b.append_value(us),
                None => b.append_null(),
            }
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let b = builder!(b, IntervalMonthDayNanoBuilder);
            match v {
                Some(Value::Time(neg, days, h, m, s, us)) => {
                    let micros = ((((*days as i64 * 24 + *h as i64) * 60 + *m as i64) * 60
                        + *s as i64)
                        * 1_000_000)
                        + *us as i64;
                    let micros = if *neg { -micros } else { micros };
                    b.append_value(IntervalMonthDayNano::new(0, 0, micros * 1000))
                }
                Some(other) => return Err(format!("expected a time, got {other:?}")),
                None => b.append_null(),
            }
        }
        other => return Err(format!("unsupported Arrow type {other}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn zero_dates_are_null() {
        assert_eq!(
            datetime_micros(&Value::Date(0, 0, 0, 0, 0, 0, 0)).unwrap(),
            None
        );
        assert_eq!(
            datetime_micros(&Value::Date(1970, 1, 2, 0, 0, 1, 5)).unwrap(),
            Some(86_400_000_000 + 1_000_005)
        );
    }
}
