//! Float functions whose DataFusion version answers wrongly at the ends of
//! the float range, computed as PostgreSQL's (the C library's) are.
//!
//! [`Acosh`]: DataFusion's `acosh` (Rust's `f64::acosh`) computes
//! `ln(x + sqrt(x - 1) * sqrt(x + 1))`, whose inner sum overflows for
//! `x` above about 9e307: `acosh(1.7976931348623157e308)` answered
//! `Infinity` where PostgreSQL answers `710.4758600739439`. For large `x`
//! `acosh(x) = ln(x) + ln(2)` to within a float's precision.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
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
