//! Float functions whose DataFusion version answers wrongly at the ends of
//! the float range, computed as PostgreSQL's (the C library's) are.
//!
//! [`Acosh`]: DataFusion's `acosh` (Rust's `f64::acosh`) computes
//! `ln(x + sqrt(x - 1) * sqrt(x + 1))`, whose inner sum overflows for
//! `x` above about 9e307: `acosh(1.7976931348623157e308)` answered
//! `Infinity` where PostgreSQL answers `710.4758600739439`. For large `x`
//! `acosh(x) = ln(x) + ln(2)` to within a float's precision.
//!
//! [`Sign`]: PostgreSQL's `sign`, which DataFusion lacks (it has `signum`,
//! which keeps a `real` argument `real` and answers `NaN` for `NaN`).
//! PostgreSQL's `sign` of an integer or float is a `double precision`
//! (`0` for `NaN`), of a `numeric` a `numeric` of scale 0.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `acosh` exact to the end of the float range; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Acosh {
    signature: Signature,
}

impl Acosh {
    /// The `acosh` to register in place of DataFusion's.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Acosh {
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        })
    }
}

/// `acosh(x)`, without the overflow of the textbook formula.
fn acosh(x: f64) -> f64 {
    // Above 2^28, sqrt(x² - 1) is x to within a float's precision.
    if x.is_finite() && x > (1u64 << 28) as f64 {
        x.ln() + std::f64::consts::LN_2
    } else {
        x.acosh()
    }
}

impl ScalarUDFImpl for Acosh {
    fn name(&self) -> &str {
        "acosh"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [arg] = args.args.as_slice() else {
            return datafusion::common::exec_err!("acosh takes one argument");
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let values = arg.to_array(rows)?;
        let out: ArrayRef = Arc::new(
            values
                .as_primitive::<Float64Type>()
                .unary::<_, Float64Type>(acosh),
        );
        if scalar {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// `sign(x)` as PostgreSQL answers it; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sign {
    signature: Signature,
}

impl Sign {
    /// PostgreSQL's `sign`, which DataFusion does not have.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(Sign {
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }
}

/// The sign of `x` as a float: NaN and zero answer 0, as in PostgreSQL.
fn float_sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl ScalarUDFImpl for Sign {
    fn name(&self) -> &str {
        "sign"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t @ DataType::Decimal128(..)] => Ok(vec![t.clone()]),
            [t] if t.is_numeric() || t.is_null() => Ok(vec![DataType::Float64]),
            [t] => datafusion::common::plan_err!(
                "function sign({t}) does not exist (it takes a number)"
            ),
            _ => datafusion::common::plan_err!("sign takes one argument"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [DataType::Decimal128(..)] => DataType::Decimal128(1, 0),
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [arg] = args.args.as_slice() else {
            return datafusion::common::exec_err!("sign takes one argument");
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let values = arg.to_array(rows)?;
        let out: ArrayRef = match values.data_type() {
            DataType::Decimal128(..) => Arc::new(
                values
                    .as_primitive::<Decimal128Type>()
                    .unary::<_, Decimal128Type>(|v| v.signum())
                    .with_precision_and_scale(1, 0)?,
            ) as ArrayRef,
            _ => Arc::new(
                values
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(float_sign),
            ),
        };
        if scalar {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acosh_is_finite_to_the_end_of_the_float_range_and_agrees_below_it() {
        assert!((acosh(f64::MAX) - 710.475_860_073_943_9).abs() < 1e-12);
        for x in [1.0f64, 1.5, 2.0, 1e6, 2.5e8, 3e8, 1e300] {
            let textbook = (x + (x * x - 1.0).sqrt()).ln();
            assert!(
                (acosh(x) - textbook).abs() <= 1e-15 * textbook.max(1.0),
                "{x}"
            );
        }
        assert!(acosh(0.5).is_nan());
        assert_eq!(acosh(f64::INFINITY), f64::INFINITY);
    }
}
