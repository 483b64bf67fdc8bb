//! `to_char` of dates, times and timestamps with PostgreSQL's patterns.
//!
//! DataFusion's `to_char` takes chrono's `strftime` patterns (`%Y-%m-%d`):
//! `to_char(d, 'YYYY-MM-DD')`, as every PostgreSQL user and BI tool writes
//! it, answered the text `YYYY-MM-DD` for every row — a wrong answer with no
//! error. [`ToChar`] replaces it and formats with PostgreSQL's template
//! patterns (`YYYY`, `MM`, `DD`, `HH24`, `MI`, `SS`, `MS`, `US`, `Month`,
//! `Mon`, `Day`, `Dy`, `Q`, `DDD`, `D`, `ID`, `IW`, `WW`, `AM`, `TZ`, the
//! `FM` and `TH` modifiers, quoted text). Pushed to a PostgreSQL source the
//! call is PostgreSQL's own.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `to_char(datetime, text)` with PostgreSQL's patterns; see the module
/// docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToChar {
    signature: Signature,
}

impl ToChar {
    /// The `to_char` to register in place of DataFusion's.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(ToChar {
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }
}

/// A date/time value broken down, with its zone's name and offset.
struct Moment {
    at: NaiveDateTime,
    /// `None` for a date, time or timestamp without time zone.
    zone: Option<(String, i32)>,
}

/// The values of `array` as moments (`None` for NULL).
fn moments(array: &ArrayRef) -> Result<Vec<Option<Moment>>> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    let midnight = NaiveTime::MIN;
    let from_micros = |us: i64| DateTime::from_timestamp_micros(us).map(|d| d.naive_utc());
    let zone = |tz: &Option<Arc<str>>,
                at: NaiveDateTime|
     -> Result<(NaiveDateTime, Option<(String, i32)>)> {
        let Some(tz) = tz else { return Ok((at, None)) };
        let parsed: datafusion::arrow::array::timezone::Tz = tz
            .parse()
            .map_err(|e| datafusion::error::DataFusionError::Execution(format!("{e}")))?;
        use chrono::{Offset, TimeZone};
        let local = parsed.from_utc_datetime(&at);
        let offset = local.offset().fix().local_minus_utc();
        Ok((
            local.naive_local(),
            Some((local.format("%Z").to_string(), offset)),
        ))
    };
    for i in 0..n {
        if array.is_null(i) {
            out.push(None);
            continue;
        }
        let (at, tz): (Option<NaiveDateTime>, Option<Arc<str>>) = match array.data_type() {
            DataType::Date32 => {
                let days = array.as_primitive::<Date32Type>().value(i);
                let date = NaiveDate::from_num_days_from_ce_opt(days + 719_163);
                (date.map(|d| d.and_time(midnight)), None)
            }
            DataType::Date64 => {
                let ms = array.as_primitive::<Date64Type>().value(i);
                (from_micros(ms.saturating_mul(1000)), None)
            }
            DataType::Time64(TimeUnit::Microsecond) => {
                let us = array.as_primitive::<Time64MicrosecondType>().value(i);
                let t = NaiveTime::from_num_seconds_from_midnight_opt(
                    (us / 1_000_000) as u32,
                    ((us % 1_000_000) * 1000) as u32,
                );
                (t.map(|t| NaiveDate::MIN.and_time(t)), None)
            }
            DataType::Timestamp(unit, tz) => {
                let us = match unit {
                    TimeUnit::Second => array
                        .as_primitive::<TimestampSecondType>()
                        .value(i)
                        .checked_mul(1_000_000),
                    TimeUnit::Millisecond => array
                        .as_primitive::<TimestampMillisecondType>()
                        .value(i)
                        .checked_mul(1000),
                    TimeUnit::Microsecond => {
                        Some(array.as_primitive::<TimestampMicrosecondType>().value(i))
                    }
                    TimeUnit::Nanosecond => {
                        Some(array.as_primitive::<TimestampNanosecondType>().value(i) / 1000)
                    }
                };
                (us.and_then(from_micros), tz.clone())
            }
            other => return exec_err!("to_char of {other} is not supported"),
        };
        let Some(at) = at else {
            return exec_err!("timestamp out of range");
        };
        let (at, zone) = zone(&tz, at)?;
        out.push(Some(Moment { at, zone }));
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `name` in the case the pattern was written in (`MONTH`, `Month`,
/// `month`).
fn cased(name: &str, pattern: &str) -> String {
    let mut chars = pattern.chars();
    let first_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    let second_upper = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if first_upper && second_upper {
        name.to_uppercase()
    } else if first_upper {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

/// The English ordinal suffix of `n`.
fn ordinal(n: i64) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// `m` formatted with PostgreSQL template `pattern`.
fn format(m: &Moment, pattern: &str) -> String {
    let at = m.at;
    let mut out = String::new();
    let p = pattern.as_bytes();
    let mut i = 0;
    let mut fill_mode = false;
    // Numbers: (value, width); names: (text, padded width).
    while i < p.len() {
        let rest = &pattern[i..];
        let starts = |t: &str| rest.len() >= t.len() && rest[..t.len()].eq_ignore_ascii_case(t);
        if starts("FM") {
            fill_mode = true;
            i += 2;
            continue;
        }
        if p[i] == b'"' {
            let end = rest[1..].find('"').map(|e| e + 1).unwrap_or(rest.len());
            out.push_str(&rest[1..end.min(rest.len())]);
            i += (end + 1).min(rest.len());
            continue;
        }
        if p[i] == b'\\' && i + 1 < p.len() {
            let c = rest[1..].chars().next().unwrap_or('\\');
            out.push(c);
            i += 1 + c.len_utf8();
            continue;
        }
        let named: Option<(usize, String, usize)> = if starts("MONTH") {
            Some((5, cased(MONTHS[at.month0() as usize], &rest[..5]), 9))
        } else if starts("MON") {
            Some((3, cased(&MONTHS[at.month0() as usize][..3], &rest[..3]), 0))
        } else if starts("DAY") {
            Some((
                3,
                cased(
                    DAYS[at.weekday().num_days_from_sunday() as usize],
                    &rest[..3],
                ),
                9,
            ))
        } else if starts("DY") {
            Some((
                2,
                cased(
                    &DAYS[at.weekday().num_days_from_sunday() as usize][..3],
                    &rest[..2],
                ),
                0,
            ))
        } else if rest.starts_with("AM") || rest.starts_with("PM") {
            Some((2, if at.hour() < 12 { "AM" } else { "PM" }.into(), 0))
        } else if rest.starts_with("am") || rest.starts_with("pm") {
            Some((2, if at.hour() < 12 { "am" } else { "pm" }.into(), 0))
        } else if rest.starts_with("TZ") || rest.starts_with("tz") {
            let name = m.zone.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
            let name = if rest.starts_with("tz") {
                name.to_lowercase()
            } else {
                name
            };
            Some((2, name, 0))
        } else if rest.starts_with("OF") {
            let text = m
                .zone
                .as_ref()
                .map(|(_, off)| {
                    let sign = if *off < 0 { '-' } else { '+' };
                    let (h, mm) = (off.abs() / 3600, off.abs() % 3600 / 60);
                    if mm == 0 {
                        format!("{sign}{h:02}")
                    } else {
                        format!("{sign}{h:02}:{mm:02}")
                    }
                })
                .unwrap_or_default();
            Some((2, text, 0))
        } else {
            None
        };
        if let Some((len, text, width)) = named {
            if fill_mode || width == 0 {
                out.push_str(&text);
            } else {
                out.push_str(&format!("{text:<width$}"));
            }
            i += len;
            fill_mode = false;
            continue;
        }
        let year = at.year();
        let hour12 = match at.hour() % 12 {
            0 => 12,
            h => h,
        };
        let numeric: Option<(&str, i64, usize)> = [
            ("HH24", at.hour() as i64, 2),
            ("HH12", hour12 as i64, 2),
            ("HH", hour12 as i64, 2),
            ("MI", at.minute() as i64, 2),
            ("SS", at.second() as i64, 2),
            ("MS", (at.nanosecond() / 1_000_000) as i64, 3),
            ("US", (at.nanosecond() / 1_000) as i64, 6),
            ("IYYY", at.iso_week().year() as i64, 4),
            ("YYYY", year.abs() as i64, 4),
            ("YYY", (year.abs() % 1000) as i64, 3),
            ("YY", (year.abs() % 100) as i64, 2),
            ("CC", ((year.abs() + 99) / 100) as i64, 2),
            ("DDD", at.ordinal() as i64, 3),
            ("DD", at.day() as i64, 2),
            ("MM", at.month() as i64, 2),
            ("IW", at.iso_week().week() as i64, 2),
            ("WW", ((at.ordinal() - 1) / 7 + 1) as i64, 2),
            ("ID", at.weekday().number_from_monday() as i64, 1),
            ("D", at.weekday().number_from_sunday() as i64, 1),
            ("Q", ((at.month() - 1) / 3 + 1) as i64, 1),
            ("J", at.date().num_days_from_ce() as i64 + 1_721_425, 1),
            ("Y", (year.abs() % 10) as i64, 1),
        ]
        .into_iter()
        .find(|(t, _, _)| rest.starts_with(t));
        if let Some((token, value, width)) = numeric {
            if fill_mode {
                out.push_str(&value.to_string());
            } else {
                out.push_str(&format!("{value:0width$}"));
            }
            i += token.len();
            // TH / th: the ordinal suffix.
            if pattern[i..].starts_with("TH") {
                out.push_str(&ordinal(value).to_uppercase());
                i += 2;
            } else if pattern[i..].starts_with("th") {
                out.push_str(ordinal(value));
                i += 2;
            }
            fill_mode = false;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value, _] => {
                let value = match value {
                    DataType::Date32
                    | DataType::Date64
                    | DataType::Time64(TimeUnit::Microsecond)
                    | DataType::Timestamp(..) => value.clone(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                        DataType::Timestamp(TimeUnit::Microsecond, None)
                    }
                    other => {
                        return datafusion::common::plan_err!(
                            "to_char of {other} is not supported (dates, times and timestamps are)"
                        )
                    }
                };
                Ok(vec![value, DataType::Utf8])
            }
            _ => datafusion::common::plan_err!("to_char takes a value and a pattern"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [value, pattern] = args.args.as_slice() else {
            return exec_err!("to_char takes a value and a pattern");
        };
        let scalar = matches!(
            (value, pattern),
            (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
        );
        let values = moments(&value.to_array(rows)?)?;
        let patterns = pattern.to_array(rows)?;
        let patterns = datafusion::arrow::compute::cast(&patterns, &DataType::Utf8)?;
        let patterns = patterns.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 10);
        for (i, m) in values.iter().enumerate() {
            match (m, patterns.is_valid(i)) {
                (Some(m), true) => out.append_value(format(m, patterns.value(i))),
                _ => out.append_null(),
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        crate::math::columnar(array, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Moment {
        Moment {
            at: NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap(),
            zone: None,
        }
    }

    #[test]
    fn postgresql_patterns_are_formatted_as_postgresql_formats_them() {
        let m = at("2024-03-05 14:07:09.123456");
        for (pattern, want) in [
            ("YYYY-MM-DD", "2024-03-05"),
            ("DD/MM/YY HH24:MI:SS", "05/03/24 14:07:09"),
            ("HH12:MI AM", "02:07 PM"),
            ("Month", "March    "),
            ("FMMonth YYYY", "March 2024"),
            ("MON mon Mon", "MAR mar Mar"),
            ("Day, DD", "Tuesday  , 05"),
            ("FMDay", "Tuesday"),
            ("Dy DY", "Tue TUE"),
            ("Q", "1"),
            ("DDD", "065"),
            ("D ID", "3 2"),
            ("IW WW", "10 10"),
            ("MS US", "123 123456"),
            ("FMDDth \"of\" FMMonth", "5th of March"),
            ("YYYY\"YYYY\"", "2024YYYY"),
            ("FMDD", "5"),
            ("CC", "21"),
        ] {
            assert_eq!(format(&m, pattern), want, "{pattern}");
        }
        assert_eq!(
            format(&at("2024-03-01 00:00:00"), "DDth HH12 am"),
            "01st 12 am"
        );
    }
}
