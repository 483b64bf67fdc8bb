//! `extract` and `date_part` where DataFusion's answer was another value
//! than PostgreSQL's.
//!
//! [`DatePart`] wraps DataFusion's `date_part` (which `extract` is planned
//! as) and answers two parts itself:
//!
//! - `second`: DataFusion answered whole seconds (`56` where PostgreSQL
//!   answers `56.5`); here the seconds with their fraction, as a float.
//! - `second` of an interval likewise (`6.789`, not `6`);
//! - `epoch` of an interval: DataFusion counts every month as 30 days;
//!   PostgreSQL counts whole years as 365.25 days and the months left as
//!   30 (`-1 year +2 days` is `-31384800` seconds, not `-30931200`).
//!
//! Every other part is DataFusion's. (PostgreSQL's `extract` is `numeric`
//! and its `date_part` `float8`; tautan's are DataFusion's types, as the
//! README says.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int32Type, IntervalUnit};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// Seconds in PostgreSQL's year of an interval (365.25 days).
const SECONDS_PER_YEAR: i128 = 31_557_600;
/// Seconds in PostgreSQL's month of an interval (30 days).
const SECONDS_PER_MONTH: i128 = 2_592_000;

/// DataFusion's `date_part`, answering `second` and an interval's `epoch`
/// as PostgreSQL does; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DatePart {
    inner: ScalarUDF,
}

/// What this wrapper answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// Seconds with their fraction.
    Seconds,
    /// An interval's length in seconds, PostgreSQL's way.
    IntervalEpoch,
    /// An interval's seconds field with its fraction.
    IntervalSeconds,
}

impl DatePart {
    /// The `date_part` to register over `inner` (DataFusion's).
    pub fn udf(inner: ScalarUDF) -> ScalarUDF {
        ScalarUDF::new_from_impl(DatePart { inner })
    }

    /// Which of its own answers a call of `part` on `value` takes.
    fn own(part: Option<&ScalarValue>, value: &DataType) -> Option<Own> {
        let part = part?.try_as_str()??;
        let part = part
            .trim_matches(|c| c == '\'' || c == '"')
            .to_ascii_lowercase();
        let interval = matches!(value, DataType::Interval(IntervalUnit::MonthDayNano));
        match part.as_str() {
            "second" | "seconds" | "sec" | "secs" | "s" if interval => Some(Own::IntervalSeconds),
            "second" | "seconds" | "sec" | "secs" | "s" => Some(Own::Seconds),
            "epoch" if interval => Some(Own::IntervalEpoch),
            _ => None,
        }
    }
}

/// An interval's seconds as PostgreSQL counts them.
fn interval_epoch(months: i32, days: i32, nanos: i64) -> f64 {
    let (years, months) = (i128::from(months / 12), i128::from(months % 12));
    let whole = years * SECONDS_PER_YEAR + months * SECONDS_PER_MONTH + i128::from(days) * 86_400;
    // In microseconds, as PostgreSQL holds it, then one division.
    let micros = whole * 1_000_000 + i128::from(nanos / 1_000);
    micros as f64 / 1e6
}

/// The seconds field of an interval's time part (`6.789` of
/// `01:02:06.789`), to the microsecond as PostgreSQL holds it.
fn interval_seconds(nanos: i64) -> f64 {
    let micros = (nanos / 1_000) % 60_000_000;
    micros as f64 / 1e6
}

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let part = args.scalar_arguments.first().copied().flatten();
        let value = args.arg_fields.get(1).map(|f| f.data_type().clone());
        match value.and_then(|v| Self::own(part, &v)) {
            Some(_) => {
                let nullable = args.arg_fields.get(1).is_none_or(|f| f.is_nullable());
                Ok(Arc::new(Field::new(
                    self.name(),
                    DataType::Float64,
                    nullable,
                )))
            }
            None => self.inner.return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let part = match args.args.first() {
            Some(ColumnarValue::Scalar(s)) => Some(s.clone()),
            _ => None,
        };
        let value_type = match args.arg_fields.get(1) {
            Some(f) => f.data_type().clone(),
            None => return exec_err!("date_part takes a part and a value"),
        };
        let Some(own) = Self::own(part.as_ref(), &value_type) else {
            return self.inner.invoke_with_args(args);
        };
        let Some(value) = args.args.get(1) else {
            return exec_err!("date_part takes a part and a value");
        };
        let scalar = matches!(value, ColumnarValue::Scalar(_));
        let out: ArrayRef = match own {
            Own::Seconds => {
                // DataFusion's microseconds part is the seconds with their
                // fraction, in microseconds (below 60 000 000: an int32).
                let micros = self.inner.invoke_with_args(ScalarFunctionArgs {
                    args: vec![
                        ColumnarValue::Scalar(ScalarValue::Utf8(Some("microsecond".into()))),
                        value.clone(),
                    ],
                    arg_fields: args.arg_fields.clone(),
                    number_rows: args.number_rows,
                    return_field: Arc::new(Field::new(self.name(), DataType::Int32, true)),
                    config_options: args.config_options.clone(),
                })?;
                let micros = micros.to_array(args.number_rows)?;
                let micros = datafusion::arrow::compute::cast(&micros, &DataType::Int32)?;
                Arc::new(
                    micros
                        .as_primitive::<Int32Type>()
                        .unary::<_, datafusion::arrow::datatypes::Float64Type>(|us| {
                            f64::from(us) / 1e6
                        }),
                )
            }
            Own::IntervalEpoch | Own::IntervalSeconds => {
                let values = value.to_array(args.number_rows)?;
                let intervals =
                    values.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
                let out: Float64Array = (0..intervals.len())
                    .map(|i| {
                        intervals.is_valid(i).then(|| {
                            let v = intervals.value(i);
                            if own == Own::IntervalEpoch {
                                interval_epoch(v.months, v.days, v.nanoseconds)
                            } else {
                                interval_seconds(v.nanoseconds)
                            }
                        })
                    })
                    .collect();
                Arc::new(out)
            }
        };
        crate::math::columnar(out, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_epoch_counts_years_as_365_and_a_quarter_days() {
        // -1 year +2 days, as PostgreSQL answers it.
        assert_eq!(interval_epoch(-12, 2, 0), -31_384_800.0);
        assert_eq!(interval_epoch(1, 0, 0), 2_592_000.0);
        assert_eq!(interval_epoch(0, 1, 1_500_000_000), 86_401.5);
        assert_eq!(interval_epoch(0, 0, 1_000), 0.000_001);
        assert_eq!(interval_epoch(25, 0, 0), 2.0 * 31_557_600.0 + 2_592_000.0);
        assert_eq!(interval_seconds(3_726_789_000_000), 6.789);
        assert_eq!(interval_seconds(-1_500_000_000), -1.5);
    }

    #[test]
    fn second_and_an_interval_epoch_are_answered_here_the_rest_by_datafusion() {
        let s = |p: &str| ScalarValue::Utf8(Some(p.to_string()));
        let ts = DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None);
        let iv = DataType::Interval(IntervalUnit::MonthDayNano);
        assert_eq!(DatePart::own(Some(&s("second")), &ts), Some(Own::Seconds));
        assert_eq!(DatePart::own(Some(&s("SECONDS")), &ts), Some(Own::Seconds));
        assert_eq!(
            DatePart::own(Some(&s("second")), &iv),
            Some(Own::IntervalSeconds)
        );
        assert_eq!(
            DatePart::own(Some(&s("epoch")), &iv),
            Some(Own::IntervalEpoch)
        );
        assert_eq!(DatePart::own(Some(&s("epoch")), &ts), None);
        assert_eq!(DatePart::own(Some(&s("minute")), &ts), None);
        assert_eq!(DatePart::own(None, &ts), None);
    }
}
