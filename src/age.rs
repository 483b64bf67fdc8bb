//! Intervals between two timestamps, as PostgreSQL computes them: `age`,
//! which DataFusion does not have, and `timestamp - timestamp`
//! ([`TimestampMinus`]), which DataFusion answers as a duration written in
//! hours (`210384:00:00`) where PostgreSQL answers an interval of days and
//! time (`8766 days`).
//!
//! `age(a, b)` is the interval from `b` to `a` in calendar terms:
//! `age('2024-03-31', '2024-02-29')` is `1 mon 2 days`, and
//! `extract(year FROM age(tanggal_lahir))` is a person's age in whole
//! years, as a custodian's analysts compute it on a population registry.
//! `age(a)` is `age(today at midnight, a)`.
//!
//! PostgreSQL subtracts field by field (years, months, days, hours, ...)
//! and borrows from the next larger field where one is negative, a month
//! being as long as the month of the earlier timestamp's month (the later
//! one's when `a` is before `b`); [`age`] does the same. Dates are read as
//! midnight. A `timestamptz` is taken in UTC (PostgreSQL takes it in the
//! session's `TimeZone`, which is UTC unless a session sets another).

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, IntervalMonthDayNanoBuilder};
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

/// `age(a[, b])`; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Age {
    signature: Signature,
}

impl Age {
    /// PostgreSQL's `age`.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Age {
            // Stable: `age(a)` reads today's date.
            signature: Signature::user_defined(Volatility::Stable),
        })
    }
}

/// The calendar fields of a timestamp (microseconds since 1970).
struct Fields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
}

fn fields(t: NaiveDateTime) -> Fields {
    Fields {
        year: i64::from(t.year()),
        month: i64::from(t.month()),
        day: i64::from(t.day()),
        hour: i64::from(t.hour()),
        minute: i64::from(t.minute()),
        second: i64::from(t.second()),
        micros: i64::from(t.nanosecond() / 1000),
    }
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `age(a, b)` of two timestamps in microseconds since 1970, as
/// PostgreSQL's `timestamp_age` computes it: (months, days, microseconds).
pub fn age(a: i64, b: i64) -> Option<(i32, i32, i64)> {
    let (t1, t2) = (fields(naive(a)?), fields(naive(b)?));
    let before = a < b;
    let sign = if before { -1 } else { 1 };
    let mut micros = sign * (t1.micros - t2.micros);
    let mut second = sign * (t1.second - t2.second);
    let mut minute = sign * (t1.minute - t2.minute);
    let mut hour = sign * (t1.hour - t2.hour);
    let mut day = sign * (t1.day - t2.day);
    let mut month = sign * (t1.month - t2.month);
    let mut year = sign * (t1.year - t2.year);
    while micros < 0 {
        micros += 1_000_000;
        second -= 1;
    }
    while second < 0 {
        second += 60;
        minute -= 1;
    }
    while minute < 0 {
        minute += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        day -= 1;
    }
    while day < 0 {
        // The earlier timestamp's month, as PostgreSQL borrows.
        let (y, m) = if before {
            (t1.year, t1.month)
        } else {
            (t2.year, t2.month)
        };
        day += days_in_month(y, m);
        month -= 1;
    }
    while month < 0 {
        month += 12;
        year -= 1;
    }
    let months = i32::try_from(sign * (year * 12 + month)).ok()?;
    let days = i32::try_from(sign * day).ok()?;
    let time = sign * (((hour * 60 + minute) * 60 + second) * 1_000_000 + micros);
    Some((months, days, time))
}

/// A call's arguments as arrays, and whether every one was a constant.
fn arguments(args: &ScalarFunctionArgs) -> Result<(Vec<ArrayRef>, bool)> {
    let scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = args
        .args
        .iter()
        .map(|a| a.to_array(args.number_rows))
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok((arrays, scalar))
}

/// Today at midnight (UTC), in microseconds since 1970.
fn today() -> i64 {
    let now = chrono::Utc::now().timestamp_micros();
    now - now.rem_euclid(86_400_000_000)
}

impl ScalarUDFImpl for Age {
    fn name(&self) -> &str {
        "age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(1..=2).contains(&arg_types.len()) {
            return plan_err!("age takes one or two timestamps");
        }
        arg_types
            .iter()
            .map(|t| match t {
                DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Null => Ok(DataType::Timestamp(TimeUnit::Microsecond, None)),
                other => plan_err!("age takes timestamps or dates, not {other}"),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arguments(&args)?;
        let (later, earlier) = match arrays.as_slice() {
            [a] => (None, a.as_primitive::<TimestampMicrosecondType>()),
            [a, b] => (
                Some(a.as_primitive::<TimestampMicrosecondType>()),
                b.as_primitive::<TimestampMicrosecondType>(),
            ),
            _ => return exec_err!("age takes one or two timestamps"),
        };
        let today = today();
        let mut out = IntervalMonthDayNanoBuilder::with_capacity(earlier.len());
        for i in 0..earlier.len() {
            let a = match later {
                Some(l) if l.is_null(i) => None,
                Some(l) => Some(l.value(i)),
                None => Some(today),
            };
            match (a, earlier.is_valid(i).then(|| earlier.value(i))) {
                (Some(a), Some(b)) => {
                    let Some((months, days, micros)) = age(a, b) else {
                        return Err(datafusion::error::DataFusionError::External(Box::new(
                            crate::error::QueryError::new("22008", "timestamp out of range"),
                        )));
                    };
                    out.append_value(IntervalMonthDayNano::new(months, days, micros * 1000));
                }
                _ => out.append_null(),
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        crate::math::columnar(out, scalar)
    }
}

/// Microseconds per day.
const DAY: i64 = 86_400_000_000;

/// `a - b` of two timestamps (microseconds) as PostgreSQL's `timestamp_mi`:
/// the difference in whole days and the time left, both of one sign
/// (`justify_hours`).
pub fn minus(a: i64, b: i64) -> Option<(i32, i64)> {
    let span = a.checked_sub(b)?;
    let (mut days, mut time) = (span / DAY, span % DAY);
    if days > 0 && time < 0 {
        time += DAY;
        days -= 1;
    } else if days < 0 && time > 0 {
        time -= DAY;
        days += 1;
    }
    Some((i32::try_from(days).ok()?, time))
}

/// `timestamp - timestamp` as an interval; see the module docs. Planned
/// by [`TimestampDifferences`] in place of DataFusion's operator.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimestampMinus {
    signature: Signature,
}

impl TimestampMinus {
    /// The function `a - b` of two timestamps is planned as.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(TimestampMinus {
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for TimestampMinus {
    fn name(&self) -> &str {
        "timestamp_mi"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Timestamp(..), DataType::Timestamp(..)] => {
                Ok(vec![DataType::Timestamp(TimeUnit::Microsecond, None); 2])
            }
            _ => plan_err!("timestamp_mi takes two timestamps"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arguments(&args)?;
        let [a, b] = arrays.as_slice() else {
            return exec_err!("timestamp_mi takes two timestamps");
        };
        let (a, b) = (
            a.as_primitive::<TimestampMicrosecondType>(),
            b.as_primitive::<TimestampMicrosecondType>(),
        );
        let mut out = IntervalMonthDayNanoBuilder::with_capacity(a.len());
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) {
                out.append_null();
                continue;
            }
            let Some((days, micros)) = minus(a.value(i), b.value(i)) else {
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    crate::error::QueryError::new("22008", "interval out of range"),
                )));
            };
            out.append_value(IntervalMonthDayNano::new(0, days, micros * 1000));
        }
        let out: ArrayRef = Arc::new(out.finish());
        crate::math::columnar(out, scalar)
    }
}

/// The analyzer rule planning `a - b` of two timestamps as
/// [`TimestampMinus`], before type coercion (which then types what uses
/// the difference as an interval).
#[derive(Debug, Default)]
pub struct TimestampDifferences;

impl datafusion::optimizer::AnalyzerRule for TimestampDifferences {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<LogicalPlan> {
        use datafusion::common::tree_node::Transformed;
        let minus = Arc::new(TimestampMinus::udf());
        crate::rewrite::expressions_bottom_up(plan, |e, schema| {
            let timestamp = |x: &Expr| matches!(x.get_type(schema), Ok(DataType::Timestamp(..)));
            match e {
                Expr::BinaryExpr(b)
                    if b.op == Operator::Minus && timestamp(&b.left) && timestamp(&b.right) =>
                {
                    Ok(Transformed::yes(Expr::ScalarFunction(
                        datafusion::logical_expr::expr::ScalarFunction::new_udf(
                            minus.clone(),
                            vec![*b.left, *b.right],
                        ),
                    )))
                }
                other => Ok(Transformed::no(other)),
            }
        })
    }

    fn name(&self) -> &str {
        "tautan_timestamp_differences"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .expect("timestamp")
            .and_utc()
            .timestamp_micros()
    }

    #[test]
    fn timestamp_differences_are_days_and_time_of_one_sign() {
        let hours = |h: i64| h * 3_600_000_000;
        assert_eq!(
            minus(at("2024-01-01 00:00:00"), at("2000-01-01 00:00:00")),
            Some((8766, 0))
        );
        assert_eq!(
            minus(at("2000-02-29 12:34:56.5"), at("2000-01-01 00:00:00")),
            Some((59, hours(12) + 2_096_500_000))
        );
        assert_eq!(
            minus(at("2000-01-01 00:00:00"), at("2000-01-02 06:00:00")),
            Some((-1, -hours(6)))
        );
        assert_eq!(
            minus(at("2000-01-01 00:00:00"), at("2000-01-01 06:00:00")),
            Some((0, -hours(6)))
        );
    }

    /// PostgreSQL 16's answers, as (months, days, microseconds).
    #[test]
    fn ages_are_postgresqls() {
        let cases = [
            // 1 mon 2 days
            ("2024-03-31 00:00:00", "2024-02-29 00:00:00", (1, 2, 0)),
            // 43 years 9 mons 27 days
            ("2001-04-10 00:00:00", "1957-06-13 00:00:00", (525, 27, 0)),
            // -1 mons -2 days
            ("2024-02-29 00:00:00", "2024-03-31 00:00:00", (-1, -2, 0)),
            // 11 days 23:59:59.5
            (
                "2024-03-12 00:00:00",
                "2024-02-29 00:00:00.5",
                (0, 11, 86_399_500_000),
            ),
            // 11 mons 28 days (a day borrowed from February 2024: 29)
            ("2025-02-28 00:00:00", "2024-02-29 00:00:00", (11, 28, 0)),
            // 30 days 12:00:00, and its negation
            (
                "2024-01-31 00:00:00",
                "2023-12-31 12:00:00",
                (0, 30, 43_200_000_000),
            ),
            (
                "2023-12-31 12:00:00",
                "2024-01-31 00:00:00",
                (0, -30, -43_200_000_000),
            ),
            ("2000-01-01 00:00:00", "2000-01-01 00:00:00", (0, 0, 0)),
        ];
        for (a, b, want) in cases {
            assert_eq!(age(at(a), at(b)), Some(want), "age({a}, {b})");
        }
    }
}
