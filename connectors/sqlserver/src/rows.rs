//! Converting TDS rows into Arrow batches.
//!
//! tiberius hands each value as a [`ColumnData`]; the column's Arrow type
//! (chosen by [`crate::introspect`], or planned by DataFusion for a
//! sub-plan) says how to convert it. A value that does not fit its Arrow
//! type is a conversion error for the statement, never a panic and never a
//! silently different value:
//!
//! - integers of any width convert to any integer type they fit (`count(*)`
//!   arrives as `int`, DataFusion plans `Int64`); `decimal` with scale 0
//!   converts to integers;
//! - `decimal` converts to `Decimal128(p,s)` exactly: scaled up, or down
//!   only over trailing zeros; a value with more digits than `p` is an error;
//! - `money`/`smallmoney` arrive as doubles: converted to `Decimal128(_,4)`
//!   only while the double is exact (|value| < 2^53 / 10^4), which always
//!   holds for `smallmoney` (`money` columns are selected as
//!   `decimal(19,4)`);
//! - `date` is days since 0001-01-01, `datetime` days since 1900-01-01
//!   plus 1/300 s ticks (rounded to the microsecond), `smalldatetime` days
//!   and minutes, `datetime2`/`time` 10^-n s increments (truncated to the
//!   microsecond: `time(7)` and `datetime2(7)` lose their 100 ns digit);
//! - `datetimeoffset` carries UTC date and time plus the offset (MS-TDS):
//!   the instant is the UTC value;
//! - `uniqueidentifier` is written in lower case, as PostgreSQL prints
//!   uuid; `xml` as its text.

use datafusion::arrow::array::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use tautan_connector::batch::BatchBuilder;
use tautan_connector::{LinkError, LinkErrorKind};
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
use tiberius::{ColumnData, Row};

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
    pub fn push(&mut self, row: &Row) -> Result<Option<RecordBatch>, LinkError> {
        if row.len() != self.batches.width() {
            return Err(LinkError::new(
                self.batches.link(),
                LinkErrorKind::Conversion,
                format!(
                    "the source sent {} columns, {} expected",
                    row.len(),
                    self.batches.width()
                ),
            ));
        }
        for i in 0..self.batches.width() {
            let Some((field, builder)) = self.batches.column(i) else {
                break;
            };
            let (name, data_type) = (field.name().clone(), field.data_type().clone());
            let written = row
                .get_column_data(i)
                .map_err(|e| e.to_string())
                .and_then(|value| append(&data_type, builder, value));
            if let Err(m) = written {
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

/// Arrow types the decoder writes.
pub fn supported(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}

macro_rules! builder {
    ($b:expr, $t:ty) => {
        $b.as_any_mut()
            .downcast_mut::<$t>()
            .ok_or_else(|| format!("internal: builder is not {}", stringify!($t)))?
    };
}

/// Whether `v` is a NULL of any type.
fn is_null(v: &ColumnData<'_>) -> bool {
    match v {
        ColumnData::U8(x) => x.is_none(),
        ColumnData::I16(x) => x.is_none(),
        ColumnData::I32(x) => x.is_none(),
        ColumnData::I64(x) => x.is_none(),
        ColumnData::F32(x) => x.is_none(),
        ColumnData::F64(x) => x.is_none(),
        ColumnData::Bit(x) => x.is_none(),
        ColumnData::String(x) => x.is_none(),
        ColumnData::Guid(x) => x.is_none(),
        ColumnData::Binary(x) => x.is_none(),
        ColumnData::Numeric(x) => x.is_none(),
        ColumnData::Xml(x) => x.is_none(),
        ColumnData::DateTime(x) => x.is_none(),
        ColumnData::SmallDateTime(x) => x.is_none(),
        ColumnData::Time(x) => x.is_none(),
        ColumnData::Date(x) => x.is_none(),
        ColumnData::DateTime2(x) => x.is_none(),
        ColumnData::DateTimeOffset(x) => x.is_none(),
    }
}

fn kind(v: &ColumnData<'_>) -> &'static str {
    match v {
        ColumnData::U8(_) => "tinyint",
        ColumnData::I16(_) => "smallint",
        ColumnData::I32(_) => "int",
        ColumnData::I64(_) => "bigint",
        ColumnData::F32(_) => "real",
        ColumnData::F64(_) => "float",
        ColumnData::Bit(_) => "bit",
        ColumnData::String(_) => "text",
        ColumnData::Guid(_) => "uniqueidentifier",
        ColumnData::Binary(_) => "binary",
        ColumnData::Numeric(_) => "decimal",
        ColumnData::Xml(_) => "xml",
        ColumnData::DateTime(_) => "datetime",
        ColumnData::SmallDateTime(_) => "smalldatetime",
        ColumnData::Time(_) => "time",
        ColumnData::Date(_) => "date",
        ColumnData::DateTime2(_) => "datetime2",
        ColumnData::DateTimeOffset(_) => "datetimeoffset",
    }
}

fn unexpected(v: &ColumnData<'_>, wanted: &str) -> String {
    format!("expected {wanted}, the source sent {}", kind(v))
}

/// A whole number from any integer value (or a decimal without a
/// fraction).
fn whole(v: &ColumnData<'_>) -> Result<i128, String> {
    match v {
        ColumnData::U8(Some(x)) => Ok(i128::from(*x)),
        ColumnData::I16(Some(x)) => Ok(i128::from(*x)),
        ColumnData::I32(Some(x)) => Ok(i128::from(*x)),
        ColumnData::I64(Some(x)) => Ok(i128::from(*x)),
        ColumnData::Bit(Some(x)) => Ok(i128::from(*x)),
        ColumnData::Numeric(Some(n)) => {
            rescale(n.value(), n.scale(), 0).ok_or_else(|| format!("{} is not whole", show(n)))
        }
        other => Err(unexpected(other, "an integer")),
    }
}

fn int<T: TryFrom<i128>>(v: &ColumnData<'_>) -> Result<T, String> {
    let n = whole(v)?;
    T::try_from(n).map_err(|_| format!("{n} out of range"))
}

fn float(v: &ColumnData<'_>) -> Result<f64, String> {
    match v {
        ColumnData::F32(Some(x)) => Ok(f64::from(*x)),
        ColumnData::F64(Some(x)) => Ok(*x),
        ColumnData::Numeric(Some(n)) => show(n)
            .parse::<f64>()
            .map_err(|e| format!("decimal {}: {e}", show(n))),
        other => whole(other)
            .map(|n| n as f64)
            .map_err(|_| unexpected(other, "a number")),
    }
}

/// `value` × 10^-`from` as an integer × 10^-`to`, exactly; `None` when it
/// would lose digits or overflow.
fn rescale(value: i128, from: u8, to: u8) -> Option<i128> {
    if to >= from {
        value.checked_mul(10i128.checked_pow(u32::from(to - from))?)
    } else {
        let factor = 10i128.checked_pow(u32::from(from - to))?;
        (value % factor == 0).then_some(value / factor)
    }
}

/// A decimal as text (`-12.50`).
fn show(n: &Numeric) -> String {
    let scale = usize::from(n.scale());
    let digits = n.value().unsigned_abs().to_string();
    let sign = if n.value() < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// The largest f64 magnitude below which every integer is exact (2^53).
const EXACT_DOUBLE: f64 = 9_007_199_254_740_992.0;

fn decimal(v: &ColumnData<'_>, precision: u8, scale: i8) -> Result<i128, String> {
    let scale_u = u8::try_from(scale).map_err(|_| format!("negative scale {scale}"))?;
    let unscaled = match v {
        ColumnData::Numeric(Some(n)) => rescale(n.value(), n.scale(), scale_u)
            .ok_or_else(|| format!("{} does not fit scale {scale}", show(n)))?,
        // money / smallmoney arrive as doubles.
        ColumnData::F64(Some(_)) | ColumnData::F32(Some(_)) => {
            let x = float(v)?;
            let scaled = x * 10f64.powi(i32::from(scale));
            if !scaled.is_finite() || scaled.abs() >= EXACT_DOUBLE {
                return Err(format!("{x} cannot be converted to decimal exactly"));
            }
            scaled.round() as i128
        }
        other => whole(other)?
            .checked_mul(10i128.pow(u32::from(scale_u)))
            .ok_or_else(|| "decimal overflow".to_string())?,
    };
    let limit = 10i128
        .checked_pow(u32::from(precision))
        .ok_or_else(|| format!("precision {precision}"))?;
    if unscaled.abs() >= limit {
        return Err(format!("value does not fit decimal({precision},{scale})"));
    }
    Ok(unscaled)
}

/// Days from 0001-01-01 to 1970-01-01.
const DAYS_0001_TO_1970: i64 = 719_162;
/// Days from 1900-01-01 to 1970-01-01.
const DAYS_1900_TO_1970: i64 = 25_567;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Microseconds since midnight of a `time(n)` (truncated below 1 µs).
fn time_micros(t: Time) -> Result<i64, String> {
    let scale = t.scale();
    if scale > 7 {
        return Err(format!("time scale {scale}"));
    }
    let increments = i64::try_from(t.increments()).map_err(|_| "time out of range".to_string())?;
    let micros = if scale <= 6 {
        increments * 10i64.pow(u32::from(6 - scale))
    } else {
        increments / 10i64.pow(u32::from(scale - 6))
    };
    if !(0..MICROS_PER_DAY).contains(&micros) {
        return Err(format!("time of day {micros} µs out of range"));
    }
    Ok(micros)
}

fn date_days(d: Date) -> i64 {
    i64::from(d.days()) - DAYS_0001_TO_1970
}

fn datetime2_micros(dt: DateTime2) -> Result<i64, String> {
    Ok(date_days(dt.date()) * MICROS_PER_DAY + time_micros(dt.time())?)
}

fn datetime_micros(dt: DateTime) -> Result<i64, String> {
    let ticks = i64::from(dt.seconds_fragments());
    // 300 ticks a second; 25 920 000 a day.
    if ticks >= 25_920_000 {
        return Err(format!("datetime ticks {ticks} out of range"));
    }
    // ticks × 10^6 / 300, rounded half up.
    let micros = (ticks * 20_000 + 3) / 6;
    Ok((i64::from(dt.days()) - DAYS_1900_TO_1970) * MICROS_PER_DAY + micros)
}

fn smalldatetime_micros(dt: SmallDateTime) -> Result<i64, String> {
    let minutes = i64::from(dt.seconds_fragments());
    if minutes >= 1440 {
        return Err(format!("smalldatetime minute {minutes} out of range"));
    }
    Ok((i64::from(dt.days()) - DAYS_1900_TO_1970) * MICROS_PER_DAY + minutes * 60_000_000)
}

fn offset_micros(dto: DateTimeOffset) -> Result<i64, String> {
    let offset = dto.offset();
    if !(-840..=840).contains(&offset) {
        return Err(format!(
            "datetimeoffset offset {offset} minutes out of range"
        ));
    }
    // The date and time on the wire are UTC (MS-TDS 2.2.5.5.1.8).
    datetime2_micros(dto.datetime2())
}

/// Microseconds since the epoch of any date or time-stamp value.
fn timestamp(v: &ColumnData<'_>) -> Result<i64, String> {
    match v {
        ColumnData::DateTime2(Some(dt)) => datetime2_micros(*dt),
        ColumnData::DateTime(Some(dt)) => datetime_micros(*dt),
        ColumnData::SmallDateTime(Some(dt)) => smalldatetime_micros(*dt),
        ColumnData::DateTimeOffset(Some(dto)) => offset_micros(*dto),
        ColumnData::Date(Some(d)) => Ok(date_days(*d) * MICROS_PER_DAY),
        other => Err(unexpected(other, "a date and time")),
    }
}

fn append(dt: &DataType, b: &mut dyn ArrayBuilder, v: &ColumnData<'_>) -> Result<(), String> {
    let value = (!is_null(v)).then_some(v);
    macro_rules! simple {
        ($t:ty, $conv:expr) => {{
            let b = builder!(b, $t);
            match value {
                Some(v) => b.append_value($conv(v)?),
                None => b.append_null(),
            }
        }};
    }
    match dt {
        DataType::Boolean => simple!(BooleanBuilder, |v: &ColumnData<'_>| match v {
            ColumnData::Bit(Some(x)) => Ok::<bool, String>(*x),
            other => whole(other).map(|n| n != 0),
        }),
        DataType::Int16 => simple!(Int16Builder, int::<i16>),
        DataType::Int32 => simple!(Int32Builder, int::<i32>),
        DataType::Int64 => simple!(Int64Builder, int::<i64>),
        DataType::Float32 => simple!(Float32Builder, |v: &ColumnData<'_>| match v {
            ColumnData::F32(Some(x)) => Ok::<f32, String>(*x),
            other => float(other).map(|f| f as f32),
        }),
        DataType::Float64 => simple!(Float64Builder, float),
        DataType::Decimal128(p, s) => {
            simple!(Decimal128Builder, |v: &ColumnData<'_>| decimal(v, *p, *s))
        }
        DataType::Utf8 => simple!(StringBuilder, |v: &ColumnData<'_>| match v {
            ColumnData::String(Some(s)) => Ok::<String, String>(s.to_string()),
            // Lower case, as PostgreSQL prints uuid (SQL Server prints
            // upper case).
            ColumnData::Guid(Some(g)) => Ok(g.hyphenated().to_string().to_ascii_lowercase()),
            ColumnData::Xml(Some(x)) => Ok(x.to_string()),
            ColumnData::Numeric(Some(n)) => Ok(show(n)),
            other => whole(other)
                .map(|n| n.to_string())
                .map_err(|_| unexpected(other, "text")),
        }),
        DataType::Binary => {
            let b = builder!(b, BinaryBuilder);
            match value {
                Some(ColumnData::Binary(Some(bytes))) => b.append_value(bytes.as_ref()),
                Some(other) => return Err(unexpected(other, "binary")),
                None => b.append_null(),
            }
        }
        DataType::Date32 => simple!(Date32Builder, |v: &ColumnData<'_>| {
            let days = match v {
                ColumnData::Date(Some(d)) => date_days(*d),
                other => timestamp(other)?.div_euclid(MICROS_PER_DAY),
            };
            i32::try_from(days).map_err(|_| format!("date {days} out of range"))
        }),
        DataType::Time64(TimeUnit::Microsecond) => {
            simple!(Time64MicrosecondBuilder, |v: &ColumnData<'_>| match v {
                ColumnData::Time(Some(t)) => time_micros(*t),
                other => Err(unexpected(other, "a time")),
            })
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            simple!(TimestampMicrosecondBuilder, timestamp)
        }
        other => return Err(format!("unsupported Arrow type {other}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int16Array, Int32Array, Int64Array, StringArray, Time64MicrosecondArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::borrow::Cow;
    use std::sync::Arc;
    use tiberius::xml::XmlData;
    use tiberius::{ColumnType, Uuid};

    /// Decodes one row of `values` into one batch of `types`.
    fn decode(cells: Vec<(DataType, ColumnData<'static>)>) -> Result<RecordBatch, LinkError> {
        let schema = Arc::new(Schema::new(
            cells
                .iter()
                .enumerate()
                .map(|(i, (t, _))| Field::new(format!("c{i}"), t.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let mut row = Row::builder();
        for (i, (_, v)) in cells.into_iter().enumerate() {
            row = row.column(format!("c{i}"), ColumnType::Null, v);
        }
        let mut decoder = RowDecoder::new("t", schema)?;
        assert!(decoder.push(&row.build())?.is_none());
        decoder.finish().map(|b| b.expect("one row"))
    }

    fn col<T: 'static>(batch: &RecordBatch, i: usize) -> &T {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<T>()
            .expect("array type")
    }

    #[test]
    fn every_tds_type_decodes() {
        let us = TimeUnit::Microsecond;
        // 2024-02-29 is day 738 944 since 0001-01-01 and 45 349 since 1900-01-01.
        let date = Date::new(738_944);
        let noon = Time::new(12 * 3600 * 10_000_000 + 1_234_567, 7); // 12:00:00.1234567
        let guid = Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").expect("uuid");
        let batch = decode(vec![
            (DataType::Boolean, ColumnData::Bit(Some(true))),
            (DataType::Int16, ColumnData::U8(Some(255))),
            (DataType::Int16, ColumnData::I16(Some(-32768))),
            (DataType::Int32, ColumnData::I32(Some(i32::MIN))),
            (DataType::Int64, ColumnData::I64(Some(i64::MAX))),
            (
                DataType::Decimal128(12, 2),
                ColumnData::Numeric(Some(Numeric::new_with_scale(-123_456, 2))),
            ),
            (
                DataType::Decimal128(19, 4),
                ColumnData::Numeric(Some(Numeric::new_with_scale(9_223_372_036_854_775_807, 4))),
            ),
            (
                DataType::Decimal128(10, 4),
                ColumnData::F64(Some(-214_748.364_8)),
            ),
            (DataType::Float32, ColumnData::F32(Some(2.5))),
            (DataType::Float64, ColumnData::F64(Some(-1e300))),
            (
                DataType::Utf8,
                ColumnData::String(Some(Cow::Borrowed("Jalan Śląsk 'x' \u{1F600}"))),
            ),
            (
                DataType::Binary,
                ColumnData::Binary(Some(Cow::Owned(vec![0, 1, 255]))),
            ),
            (DataType::Date32, ColumnData::Date(Some(date))),
            (DataType::Time64(us), ColumnData::Time(Some(noon))),
            (
                DataType::Timestamp(us, None),
                ColumnData::DateTime(Some(DateTime::new(45_349, 1))),
            ),
            (
                DataType::Timestamp(us, None),
                ColumnData::DateTime2(Some(DateTime2::new(date, noon))),
            ),
            (
                DataType::Timestamp(us, None),
                ColumnData::SmallDateTime(Some(SmallDateTime::new(45_349, 61))),
            ),
            (
                DataType::Timestamp(us, Some("+00:00".into())),
                ColumnData::DateTimeOffset(Some(DateTimeOffset::new(
                    DateTime2::new(date, noon),
                    420,
                ))),
            ),
            (DataType::Utf8, ColumnData::Guid(Some(guid))),
            (
                DataType::Utf8,
                ColumnData::Xml(Some(Cow::Owned(XmlData::new("<a>b</a>")))),
            ),
            (DataType::Int64, ColumnData::I32(Some(7))), // count(*) as int
            (DataType::Utf8, ColumnData::I32(None)),
        ])
        .expect("decodes");
        assert!(col::<BooleanArray>(&batch, 0).value(0));
        assert_eq!(col::<Int16Array>(&batch, 1).value(0), 255);
        assert_eq!(col::<Int16Array>(&batch, 2).value(0), -32768);
        assert_eq!(col::<Int32Array>(&batch, 3).value(0), i32::MIN);
        assert_eq!(col::<Int64Array>(&batch, 4).value(0), i64::MAX);
        assert_eq!(col::<Decimal128Array>(&batch, 5).value(0), -123_456);
        assert_eq!(col::<Decimal128Array>(&batch, 5).precision(), 12);
        assert_eq!(
            col::<Decimal128Array>(&batch, 6).value(0),
            9_223_372_036_854_775_807
        );
        assert_eq!(col::<Decimal128Array>(&batch, 7).value(0), -2_147_483_648);
        assert_eq!(col::<Float32Array>(&batch, 8).value(0), 2.5f32);
        assert_eq!(col::<Float64Array>(&batch, 9).value(0), -1e300);
        assert_eq!(
            col::<StringArray>(&batch, 10).value(0),
            "Jalan Śląsk 'x' \u{1F600}"
        );
        assert_eq!(col::<BinaryArray>(&batch, 11).value(0), &[0, 1, 255]);
        assert_eq!(col::<Date32Array>(&batch, 12).value(0), 19_782);
        let noon_us = 12 * 3_600_000_000 + 123_456;
        assert_eq!(col::<Time64MicrosecondArray>(&batch, 13).value(0), noon_us);
        let day_us = 19_782 * MICROS_PER_DAY;
        // One 1/300 s tick: 3333.3 µs.
        assert_eq!(
            col::<TimestampMicrosecondArray>(&batch, 14).value(0),
            day_us + 3_333
        );
        assert_eq!(
            col::<TimestampMicrosecondArray>(&batch, 15).value(0),
            day_us + noon_us
        );
        assert_eq!(
            col::<TimestampMicrosecondArray>(&batch, 16).value(0),
            day_us + 61 * 60_000_000
        );
        assert_eq!(
            col::<TimestampMicrosecondArray>(&batch, 17).value(0),
            day_us + noon_us
        );
        assert_eq!(
            col::<StringArray>(&batch, 18).value(0),
            "6f9619ff-8b86-d011-b42d-00c04fc964ff"
        );
        assert_eq!(col::<StringArray>(&batch, 19).value(0), "<a>b</a>");
        assert_eq!(col::<Int64Array>(&batch, 20).value(0), 7);
        assert!(col::<StringArray>(&batch, 21).is_null(0));
    }

    #[test]
    fn nulls_of_every_type_are_null() {
        let us = TimeUnit::Microsecond;
        let batch = decode(vec![
            (DataType::Boolean, ColumnData::Bit(None)),
            (DataType::Int16, ColumnData::U8(None)),
            (DataType::Decimal128(19, 4), ColumnData::F64(None)),
            (DataType::Binary, ColumnData::Binary(None)),
            (DataType::Date32, ColumnData::Date(None)),
            (DataType::Time64(us), ColumnData::Time(None)),
            (DataType::Timestamp(us, None), ColumnData::DateTime(None)),
            (
                DataType::Timestamp(us, Some("+00:00".into())),
                ColumnData::DateTimeOffset(None),
            ),
            (DataType::Utf8, ColumnData::Guid(None)),
            (DataType::Utf8, ColumnData::Xml(None)),
        ])
        .expect("decodes");
        for i in 0..batch.num_columns() {
            assert!(batch.column(i).is_null(0), "column {i}");
        }
    }

    /// Hostile or unexpected values are conversion errors, never panics
    /// and never different values.
    #[test]
    fn values_that_do_not_fit_are_errors() {
        let us = TimeUnit::Microsecond;
        let bad: Vec<(DataType, ColumnData<'static>)> = vec![
            (DataType::Int16, ColumnData::I32(Some(40_000))),
            (DataType::Int32, ColumnData::I64(Some(i64::MAX))),
            (
                DataType::Int64,
                ColumnData::Numeric(Some(Numeric::new_with_scale(15, 1))),
            ),
            (
                DataType::Decimal128(5, 2),
                ColumnData::Numeric(Some(Numeric::new_with_scale(1_000_000, 2))),
            ),
            (
                DataType::Decimal128(12, 1),
                ColumnData::Numeric(Some(Numeric::new_with_scale(12_345, 3))),
            ),
            (DataType::Decimal128(19, 4), ColumnData::F64(Some(1e15))),
            (DataType::Decimal128(19, 4), ColumnData::F64(Some(f64::NAN))),
            (
                DataType::Decimal128(38, 10),
                ColumnData::Numeric(Some(Numeric::new_with_scale(i128::MAX / 10, 0))),
            ),
            (
                DataType::Time64(us),
                ColumnData::Time(Some(Time::new(u64::MAX, 7))),
            ),
            (
                DataType::Time64(us),
                ColumnData::Time(Some(Time::new(1, 9))),
            ),
            (
                DataType::Timestamp(us, None),
                ColumnData::DateTime(Some(DateTime::new(0, u32::MAX))),
            ),
            (
                DataType::Timestamp(us, None),
                ColumnData::SmallDateTime(Some(SmallDateTime::new(0, 1440))),
            ),
            (
                DataType::Timestamp(us, Some("+00:00".into())),
                ColumnData::DateTimeOffset(Some(DateTimeOffset::new(
                    DateTime2::new(Date::new(1), Time::new(0, 7)),
                    i16::MAX,
                ))),
            ),
            (
                DataType::Binary,
                ColumnData::String(Some(Cow::Borrowed("x"))),
            ),
            (
                DataType::Boolean,
                ColumnData::String(Some(Cow::Borrowed("true"))),
            ),
            (DataType::Date32, ColumnData::Time(Some(Time::new(0, 0)))),
            (DataType::Int32, ColumnData::Guid(Some(Uuid::nil()))),
        ];
        for (t, v) in bad {
            let shown = format!("{t} ← {v:?}");
            let err = decode(vec![(t, v)]).expect_err(&shown);
            assert_eq!(err.kind, LinkErrorKind::Conversion, "{shown}");
        }
        // A row of another width than the statement's.
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)]));
        let mut decoder = RowDecoder::new("t", schema).expect("decoder");
        let row = Row::builder().build();
        assert!(decoder.push(&row).is_err());
        // An Arrow type without a decoder.
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::UInt64, true)]));
        assert!(RowDecoder::new("t", schema).is_err());
    }

    #[test]
    fn decimals_rescale_exactly() {
        assert_eq!(rescale(1250, 2, 4), Some(125_000));
        assert_eq!(rescale(1250, 3, 2), Some(125));
        assert_eq!(rescale(1255, 3, 2), None);
        assert_eq!(rescale(i128::MAX, 0, 1), None);
        assert_eq!(show(&Numeric::new_with_scale(-5, 3)), "-0.005");
        assert_eq!(show(&Numeric::new_with_scale(12_345, 2)), "123.45");
        assert_eq!(show(&Numeric::new_with_scale(7, 0)), "7");
    }

    /// Random values of every integer, decimal and time type decode to what
    /// they encode, from a seeded generator (no panics on any of them).
    #[test]
    fn seeded_values_round_trip() {
        let mut state: u64 = 0x5eed_1234_abcd_0001;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let us = TimeUnit::Microsecond;
        for _ in 0..2000 {
            let i = next() as i64;
            let scale = (next() % 8) as u8;
            let unscaled = (next() as i64 % 1_000_000_000_000) as i128;
            let days = (next() % 3_652_059) as u32; // 0001-01-01 ..= 9999-12-31
            let increments = next() % (86_400 * 10u64.pow(u32::from(scale)));
            let batch = decode(vec![
                (DataType::Int64, ColumnData::I64(Some(i))),
                (
                    DataType::Decimal128(38, 8),
                    ColumnData::Numeric(Some(Numeric::new_with_scale(unscaled, scale))),
                ),
                (DataType::Date32, ColumnData::Date(Some(Date::new(days)))),
                (
                    DataType::Time64(us),
                    ColumnData::Time(Some(Time::new(increments, scale))),
                ),
            ])
            .expect("decodes");
            assert_eq!(col::<Int64Array>(&batch, 0).value(0), i);
            assert_eq!(
                col::<Decimal128Array>(&batch, 1).value(0),
                unscaled * 10i128.pow(u32::from(8 - scale))
            );
            assert_eq!(
                col::<Date32Array>(&batch, 2).value(0) as i64,
                days as i64 - DAYS_0001_TO_1970
            );
            let expected = if scale <= 6 {
                increments as i64 * 10i64.pow(u32::from(6 - scale))
            } else {
                increments as i64 / 10
            };
            assert_eq!(col::<Time64MicrosecondArray>(&batch, 3).value(0), expected);
        }
    }
}
