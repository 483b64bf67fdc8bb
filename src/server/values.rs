//! Values as PostgreSQL writes them, where arrow-pg writes them otherwise.
//!
//! The differential harness (`tests/integration/differential.rs`) compares
//! every value with PostgreSQL's own output, text and binary. arrow-pg
//! differs for these, so tautan writes them itself:
//!
//! | Arrow | PostgreSQL | what differs in arrow-pg |
//! |---|---|---|
//! | Float32/Float64 | float4/float8 | text `inf`, `3.4e38` (PostgreSQL: `Infinity`, `3.4e+38`, `1e+15`) |
//! | Int8, UInt8 / UInt16 / UInt32 / UInt64 | int2 / int4 / int8 / numeric | a 1-byte int2 in binary; types |
//! | Decimal128 | numeric | at most 28 digits (rust_decimal), 38 refused |
//! | Date32, Timestamp (any unit) | date, timestamp(tz) | `.000000` fractions, no `infinity`, no BC, UTC only |
//! | Time64 (any unit) | time | `.000000` fractions |
//! | Interval | interval | `04:05:06.789000` |
//! | Utf8 tagged `bpchar` | char(n) | blanks are written back to n characters |
//!
//! `timestamptz` is written in the session's `TimeZone`.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use chrono::Offset;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int8Type,
    IntervalMonthDayNanoType, IntervalUnit, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use pgwire::api::Type;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};
use tautan_connector::types::{
    DATE_INFINITY, DATE_NEG_INFINITY, PG_TYPE_KEY, PG_TYPMOD_KEY, TIMESTAMP_INFINITY,
    TIMESTAMP_NEG_INFINITY,
};

type Failure = Box<dyn Error + Sync + Send>;

/// A value PostgreSQL's own type cannot hold (22008, as PostgreSQL says it);
/// the encoder's caller keeps the SQLSTATE ([`super::encode`]).
fn out_of_range(what: &str) -> Failure {
    Box::new(crate::error::QueryError::new(
        "22008",
        format!("{what} out of range"),
    ))
}

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970 to 2000.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How a column is written, when tautan writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Float4,
    Float8,
    /// Int8/UInt8 as int2, UInt16 as int4, UInt32 as int8.
    Widened,
    /// UInt64 as numeric.
    Unsigned64,
    Numeric(i8),
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    /// `char(n)`: `n` characters.
    Padded(usize),
}

impl Kind {
    /// How `field` is written, if tautan writes it.
    pub fn of(field: &Field) -> Option<Kind> {
        Some(match field.data_type() {
            DataType::Float32 => Kind::Float4,
            DataType::Float64 => Kind::Float8,
            DataType::Int8 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Kind::Widened,
            DataType::UInt64 => Kind::Unsigned64,
            DataType::Decimal128(_, s) if *s >= 0 => Kind::Numeric(*s),
            DataType::Date32 => Kind::Date,
            DataType::Time64(_) => Kind::Time,
            // Every unit: DataFusion's own literals and casts are in
            // nanoseconds, links' columns in microseconds (PostgreSQL's).
            DataType::Timestamp(_, None) => Kind::Timestamp,
            DataType::Timestamp(_, Some(_)) => Kind::TimestampTz,
            DataType::Interval(IntervalUnit::MonthDayNano) => Kind::Interval,
            DataType::Utf8 if pg_tag(field) == Some("bpchar") => {
                let typmod: i64 = field
                    .metadata()
                    .get(PG_TYPMOD_KEY)
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(-1);
                Kind::Padded(usize::try_from(typmod - 4).unwrap_or(0))
            }
            _ => return None,
        })
    }

    /// The PostgreSQL type clients are told.
    pub fn pg_type(&self, field: &Field) -> Type {
        match self {
            Kind::Float4 => Type::FLOAT4,
            Kind::Float8 => Type::FLOAT8,
            Kind::Widened => match field.data_type() {
                DataType::Int8 | DataType::UInt8 => Type::INT2,
                DataType::UInt16 => Type::INT4,
                _ => Type::INT8,
            },
            Kind::Unsigned64 | Kind::Numeric(_) => Type::NUMERIC,
            Kind::Date => Type::DATE,
            Kind::Time => Type::TIME,
            Kind::Timestamp => Type::TIMESTAMP,
            Kind::TimestampTz => Type::TIMESTAMPTZ,
            Kind::Interval => Type::INTERVAL,
            Kind::Padded(_) => Type::BPCHAR,
        }
    }
}

fn pg_tag(field: &Field) -> Option<&str> {
    field.metadata().get(PG_TYPE_KEY).map(String::as_str)
}

/// Nanoseconds to PostgreSQL's microseconds, rounded to the nearest.
fn nanos_to_micros(nanos: i64) -> i64 {
    // i128: no overflow at the ends of the range.
    ((i128::from(nanos) + 500).div_euclid(1000)) as i64
}

/// A timestamp value in microseconds since 1970, whatever its unit.
fn timestamp_micros(a: &ArrayRef, r: usize) -> Result<i64, Failure> {
    use datafusion::arrow::datatypes::{
        TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    };
    Ok(match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => a
            .as_primitive::<TimestampSecondType>()
            .value(r)
            .checked_mul(1_000_000)
            .ok_or_else(|| out_of_range("timestamp"))?,
        DataType::Timestamp(TimeUnit::Millisecond, _) => a
            .as_primitive::<TimestampMillisecondType>()
            .value(r)
            .checked_mul(1_000)
            .ok_or_else(|| out_of_range("timestamp"))?,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            nanos_to_micros(a.as_primitive::<TimestampNanosecondType>().value(r))
        }
        _ => a.as_primitive::<TimestampMicrosecondType>().value(r),
    })
}

/// A time of day in microseconds, whatever its unit.
fn time_micros(a: &ArrayRef, r: usize) -> i64 {
    use datafusion::arrow::datatypes::Time64NanosecondType;
    match a.data_type() {
        DataType::Time64(TimeUnit::Nanosecond) => {
            nanos_to_micros(a.as_primitive::<Time64NanosecondType>().value(r))
        }
        _ => a.as_primitive::<Time64MicrosecondType>().value(r),
    }
}

/// One value of a column tautan writes (never NULL: callers handle NULL).
pub struct Value<'a> {
    pub array: &'a ArrayRef,
    pub row: usize,
    pub kind: Kind,
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({:?}, row {})", self.kind, self.row)
    }
}

impl Value<'_> {
    fn integer(&self) -> i128 {
        let a = self.array;
        match a.data_type() {
            DataType::Int8 => a.as_primitive::<Int8Type>().value(self.row).into(),
            DataType::UInt8 => a.as_primitive::<UInt8Type>().value(self.row).into(),
            DataType::UInt16 => a.as_primitive::<UInt16Type>().value(self.row).into(),
            DataType::UInt32 => a.as_primitive::<UInt32Type>().value(self.row).into(),
            DataType::UInt64 => a.as_primitive::<UInt64Type>().value(self.row).into(),
            _ => 0,
        }
    }

    /// The text form, `zone` for timestamptz.
    pub fn text(&self, zone: &str) -> Result<String, Failure> {
        let a = self.array;
        let r = self.row;
        Ok(match self.kind {
            Kind::Float4 => float_text(a.as_primitive::<Float32Type>().value(r).into(), 6, true),
            Kind::Float8 => float_text(a.as_primitive::<Float64Type>().value(r), 15, false),
            Kind::Widened | Kind::Unsigned64 => self.integer().to_string(),
            Kind::Numeric(scale) => {
                decimal_text(a.as_primitive::<Decimal128Type>().value(r), scale)
            }
            Kind::Date => date_text(a.as_primitive::<Date32Type>().value(r))?,
            Kind::Time => time_text(time_micros(a, r)),
            Kind::Timestamp => timestamp_text(timestamp_micros(a, r)?, None)?,
            Kind::TimestampTz => timestamp_text(timestamp_micros(a, r)?, Some(zone))?,
            Kind::Interval => {
                let v = a.as_primitive::<IntervalMonthDayNanoType>().value(r);
                interval_text(v.months, v.days, v.nanoseconds / 1000)
            }
            Kind::Padded(n) => {
                let s = a
                    .as_string_opt::<i32>()
                    .map(|s| s.value(r))
                    .unwrap_or_default();
                let chars = s.chars().count();
                format!("{s}{}", " ".repeat(n.saturating_sub(chars)))
            }
        })
    }

    /// The binary form (without its length).
    pub fn binary(&self, out: &mut BytesMut) -> Result<(), Failure> {
        let a = self.array;
        let r = self.row;
        match self.kind {
            Kind::Float4 => out.put_f32(a.as_primitive::<Float32Type>().value(r)),
            Kind::Float8 => out.put_f64(a.as_primitive::<Float64Type>().value(r)),
            Kind::Widened => match a.data_type() {
                DataType::Int8 | DataType::UInt8 => out.put_i16(self.integer() as i16),
                DataType::UInt16 => out.put_i32(self.integer() as i32),
                _ => out.put_i64(self.integer() as i64),
            },
            Kind::Unsigned64 => numeric_binary(out, self.integer(), 0),
            Kind::Numeric(scale) => numeric_binary(
                out,
                a.as_primitive::<Decimal128Type>().value(r),
                u16::from(scale.unsigned_abs()),
            ),
            Kind::Date => {
                let d = a.as_primitive::<Date32Type>().value(r);
                out.put_i32(match d {
                    DATE_INFINITY => i32::MAX,
                    DATE_NEG_INFINITY => i32::MIN,
                    d if !(PG_MIN_DAYS..=PG_MAX_DAYS).contains(&i64::from(d)) => {
                        return Err(out_of_range("date"))
                    }
                    d => d - PG_EPOCH_DAYS,
                })
            }
            Kind::Time => out.put_i64(time_micros(a, r)),
            Kind::Timestamp | Kind::TimestampTz => {
                let t = timestamp_micros(a, r)?;
                out.put_i64(match t {
                    TIMESTAMP_INFINITY => i64::MAX,
                    TIMESTAMP_NEG_INFINITY => i64::MIN,
                    t if t < PG_MIN_DAYS * MICROS_PER_DAY => return Err(out_of_range("timestamp")),
                    t => t - PG_EPOCH_MICROS,
                })
            }
            Kind::Interval => {
                let v = a.as_primitive::<IntervalMonthDayNanoType>().value(r);
                out.put_i64(v.nanoseconds / 1000);
                out.put_i32(v.days);
                out.put_i32(v.months);
            }
            Kind::Padded(_) => out.put_slice(self.text("")?.as_bytes()),
        }
        Ok(())
    }
}

impl ToSql for Value<'_> {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, Failure> {
        self.binary(out)?;
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    postgres_types::to_sql_checked!();
}

impl ToSqlText for Value<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        options: &FormatOptions,
    ) -> Result<IsNull, Failure> {
        out.put_slice(self.text(&options.time_zone)?.as_bytes());
        Ok(IsNull::No)
    }
}

/// PostgreSQL's binary numeric for `value / 10^scale`.
fn numeric_binary(out: &mut BytesMut, value: i128, scale: u16) {
    let mut with_length = BytesMut::new();
    super::copy_binary::put_numeric(&mut with_length, value, scale);
    out.put_slice(&with_length[4..]);
}

pub use crate::pg_text::float_text;

/// `value / 10^scale` with exactly `scale` decimals.
pub fn decimal_text(value: i128, scale: i8) -> String {
    let scale = scale.max(0) as usize;
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// `.ffffff` without trailing zeros, or nothing.
fn fraction(micros: u32) -> String {
    if micros == 0 {
        return String::new();
    }
    let f = format!(".{micros:06}");
    f.trim_end_matches('0').to_string()
}

/// PostgreSQL's first date, 4714-11-24 BC, in days since 1970.
const PG_MIN_DAYS: i64 = -2_440_588;
/// PostgreSQL's last date, 5874897-12-31, in days since 1970.
const PG_MAX_DAYS: i64 = 2_145_042_905;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The proleptic Gregorian (year, month, day) of `days` since 1970, for
/// any `i64` (Howard Hinnant's `civil_from_days`); chrono stops at year
/// 262143, PostgreSQL's timestamps go to 294276 and its dates further.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year as i64, month, day)
}

/// `YYYY-MM-DD` of `days` since 1970 and its era suffix: PostgreSQL writes
/// years before 1 as "<1 - year> BC". 22008 outside PostgreSQL's date range.
fn ymd(days: i64) -> Result<(String, &'static str), Failure> {
    if !(PG_MIN_DAYS..=PG_MAX_DAYS).contains(&days) {
        return Err(out_of_range("date"));
    }
    let (year, month, day) = civil(days);
    Ok(if year <= 0 {
        (format!("{:04}-{month:02}-{day:02}", 1 - year), " BC")
    } else {
        (format!("{year:04}-{month:02}-{day:02}"), "")
    })
}

fn date_text(days: i32) -> Result<String, Failure> {
    match days {
        DATE_INFINITY => return Ok("infinity".into()),
        DATE_NEG_INFINITY => return Ok("-infinity".into()),
        _ => {}
    }
    let (text, era) = ymd(i64::from(days))?;
    Ok(format!("{text}{era}"))
}

fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    format!(
        "{:02}:{:02}:{:02}{}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        fraction(frac)
    )
}

/// The offset east of UTC, in seconds, of `zone` at `micros` since 1970.
/// Past the end of chrono's calendar the zone's offset at that end is used
/// (the zone's last rules, as PostgreSQL does after its tables end).
fn offset_at(zone: &str, micros: i64) -> i32 {
    match zone_of(zone) {
        Zone::Fixed(seconds) => seconds,
        Zone::Named(tz) => {
            let clamped = micros.clamp(
                chrono::DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros(),
                chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros(),
            );
            chrono::DateTime::from_timestamp_micros(clamped)
                .map(|t| t.with_timezone(&tz).offset().fix().local_minus_utc())
                .unwrap_or(0)
        }
    }
}

fn timestamp_text(micros: i64, zone: Option<&str>) -> Result<String, Failure> {
    match micros {
        TIMESTAMP_INFINITY => return Ok("infinity".into()),
        TIMESTAMP_NEG_INFINITY => return Ok("-infinity".into()),
        _ => {}
    }
    if micros < PG_MIN_DAYS * MICROS_PER_DAY {
        return Err(out_of_range("timestamp"));
    }
    let offset = zone.map(|zone| offset_at(zone, micros));
    let local = i128::from(micros) + i128::from(offset.unwrap_or(0)) * 1_000_000;
    let days = local.div_euclid(i128::from(MICROS_PER_DAY)) as i64;
    let of_day = local.rem_euclid(i128::from(MICROS_PER_DAY)) as i64;
    let (date, era) = ymd(days).map_err(|_| out_of_range("timestamp"))?;
    let secs = of_day / 1_000_000;
    let mut text = format!(
        "{date} {:02}:{:02}:{:02}{}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        fraction((of_day % 1_000_000) as u32)
    );
    if let Some(seconds) = offset {
        let sign = if seconds < 0 { '-' } else { '+' };
        let s = seconds.abs();
        text.push_str(&format!("{sign}{:02}", s / 3600));
        if s % 3600 != 0 {
            text.push_str(&format!(":{:02}", (s / 60) % 60));
        }
        if s % 60 != 0 {
            text.push_str(&format!(":{:02}", s % 60));
        }
    }
    text.push_str(era);
    Ok(text)
}

enum Zone {
    Named(chrono_tz::Tz),
    /// East of UTC, in seconds.
    Fixed(i32),
}

/// A `TimeZone` setting: an IANA name, `UTC`, or an offset (`+07`,
/// `-03:30`; PostgreSQL reads a bare number as hours east of UTC... here
/// as ISO offsets). Anything else is UTC.
fn zone_of(name: &str) -> Zone {
    let name = name.trim().trim_matches('\'');
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Zone::Named(tz);
    }
    let upper = name.to_ascii_uppercase();
    if matches!(upper.as_str(), "UTC" | "GMT" | "Z" | "ETC/UTC" | "") {
        return Zone::Fixed(0);
    }
    let (sign, rest) = match name.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, name.strip_prefix('+').unwrap_or(name)),
    };
    let mut parts = rest.split(':').map(|p| p.parse::<i32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(h), m) if h <= 15 => Zone::Fixed(sign * (h * 3600 + m.unwrap_or(0) * 60)),
        _ => Zone::Fixed(0),
    }
}

/// `true` when `name` is a `TimeZone` tautan can write timestamps in.
pub fn known_zone(name: &str) -> bool {
    let name = name.trim().trim_matches('\'');
    name.parse::<chrono_tz::Tz>().is_ok()
        || matches!(
            name.to_ascii_uppercase().as_str(),
            "UTC" | "GMT" | "Z" | "ETC/UTC"
        )
        || !matches!(zone_of(name), Zone::Fixed(0))
}

/// An interval in PostgreSQL's `postgres` style:
/// `1 year 2 mons -3 days +04:05:06.789`.
pub fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        let space = if is_zero { "" } else { " " };
        let plus = if is_before && value > 0 { "+" } else { "" };
        let plural = if value != 1 { "s" } else { "" };
        out.push_str(&format!("{space}{plus}{value} {unit}{plural}"));
        is_before = value < 0;
        is_zero = false;
    };
    part(i64::from(months / 12), "year", &mut out);
    part(i64::from(months % 12), "mon", &mut out);
    part(i64::from(days), "day", &mut out);
    let hours = micros / 3_600_000_000;
    let minutes = (micros / 60_000_000) % 60;
    let seconds = (micros / 1_000_000) % 60;
    let fsec = micros % 1_000_000;
    if is_zero || micros != 0 {
        let minus = micros < 0;
        if !is_zero {
            out.push(' ');
        }
        let sign = if minus {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        };
        out.push_str(&format!(
            "{sign}{:02}:{:02}:{:02}{}",
            hours.abs(),
            minutes.abs(),
            seconds.abs(),
            fraction(fsec.unsigned_abs() as u32)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_postgresql_writes_them() {
        let f8 = |v: f64| float_text(v, 15, false);
        let f4 = |v: f32| float_text(v.into(), 6, true);
        assert_eq!(f8(1.5), "1.5");
        assert_eq!(f8(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(f8(1e-300), "1e-300");
        assert_eq!(f8(1e15), "1e+15");
        assert_eq!(f8(123456789012345.0), "123456789012345");
        assert_eq!(f8(0.0001), "0.0001");
        assert_eq!(f8(0.00001), "1e-05");
        assert_eq!(f8(8.0), "8");
        assert_eq!(f8(-2.25), "-2.25");
        assert_eq!(f8(f64::INFINITY), "Infinity");
        assert_eq!(f8(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f8(f64::NAN), "NaN");
        assert_eq!(f4(3.4028235e38), "3.4028235e+38");
        assert_eq!(f4(2.71), "2.71");
        assert_eq!(f4(1e-30), "1e-30");
        assert_eq!(f4(123456.0), "123456");
        assert_eq!(f4(1e6), "1e+06");
    }

    #[test]
    fn the_calendar_agrees_with_chrono_where_chrono_has_one() {
        use chrono::{Datelike, NaiveDate};
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut days: i64 = -95_000_000;
        while days < 95_000_000 {
            let d = epoch + chrono::Duration::days(days);
            assert_eq!(
                civil(days),
                (i64::from(d.year()), d.month(), d.day()),
                "{days}"
            );
            days += 9_973;
        }
        for days in -800_000..800_000 {
            let d = epoch + chrono::Duration::days(days);
            assert_eq!(
                civil(days),
                (i64::from(d.year()), d.month(), d.day()),
                "{days}"
            );
        }
    }

    #[test]
    fn decimals_dates_times_intervals() {
        assert_eq!(decimal_text(-1500, 3), "-1.500");
        assert_eq!(decimal_text(1, 6), "0.000001");
        assert_eq!(decimal_text(42, 0), "42");
        assert_eq!(
            decimal_text(99_999_999_999_999_999_999_999_999_999_999_999_999, 6),
            "99999999999999999999999999999999.999999"
        );
        assert_eq!(date_text(0).unwrap(), "1970-01-01");
        assert_eq!(date_text(DATE_INFINITY).unwrap(), "infinity");
        assert_eq!(date_text(-719_528).unwrap(), "0001-01-01 BC");
        // PostgreSQL's ends (chrono's calendar stops at year 262143).
        assert_eq!(date_text(-2_440_588).unwrap(), "4714-11-24 BC");
        assert!(date_text(-2_440_589).is_err());
        assert_eq!(date_text(2_145_042_905).unwrap(), "5874897-12-31");
        assert!(date_text(2_145_042_906).is_err());
        assert_eq!(
            date_text(i32::MAX - 1)
                .map_err(|e| e.to_string())
                .unwrap_err(),
            "date out of range (22008)"
        );
        assert_eq!(
            timestamp_text(8_210_335_410_367_500_000, None).unwrap(),
            "262145-03-04 05:06:07.5"
        );
        assert_eq!(
            timestamp_text(8_210_335_410_367_500_000, Some("Asia/Jakarta")).unwrap(),
            "262145-03-04 12:06:07.5+07"
        );
        assert!(timestamp_text(i64::MAX - 1, None).is_ok_and(|t| t.starts_with("294247-01-10 ")));
        assert!(timestamp_text(-2_440_589 * MICROS_PER_DAY, None).is_err());
        assert!(timestamp_text(i64::MIN + 1, Some("UTC")).is_err());
        assert_eq!(time_text(45_296_500_000), "12:34:56.5");
        assert_eq!(time_text(0), "00:00:00");
        assert_eq!(
            timestamp_text(1_704_067_200_000_000, None).unwrap(),
            "2024-01-01 00:00:00"
        );
        assert_eq!(
            timestamp_text(1_704_067_200_000_000, Some("UTC")).unwrap(),
            "2024-01-01 00:00:00+00"
        );
        assert_eq!(
            timestamp_text(1_704_067_200_000_001, Some("Asia/Jakarta")).unwrap(),
            "2024-01-01 07:00:00.000001+07"
        );
        assert_eq!(
            timestamp_text(1_704_067_200_000_000, Some("Asia/Kolkata")).unwrap(),
            "2024-01-01 05:30:00+05:30"
        );
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(
            interval_text(14, 3, 14_706_789_000),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(interval_text(0, -1, 0), "-1 days");
        assert_eq!(interval_text(-12, 2, 0), "-1 years +2 days");
        assert_eq!(interval_text(1, 0, 0), "1 mon");
        assert_eq!(interval_text(0, 0, 1), "00:00:00.000001");
        assert_eq!(interval_text(0, 1, -3_600_000_000), "1 day -01:00:00");
    }
}
