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
//!
//! [`RealAsDouble`]: PostgreSQL's math functions take `double precision`:
//! a `real` argument is widened, and the answer is a `double precision`
//! (`floor(real '3.4028235e38')` is `3.4028234663852886e+38`). DataFusion's
//! kept `real` arguments `real`, answering in float4's digits.
//!
//! [`WholeDecimal`]: PostgreSQL's `ceil`, `floor` and `trunc` of a
//! `numeric` are whole numbers of scale 0 (`ceil(1.500)` is `2`).
//! DataFusion's keep the argument's type (`2.000`), and `ceil` of a value
//! with every digit of its precision used (`999.9` in `numeric(4,1)`)
//! overflowed it: an error where PostgreSQL answers `1000`. With a
//! constant number of digits `k`, PostgreSQL's `round(n, k)` and
//! `trunc(n, k)` are numerics of scale `k` (of scale 0 when `k` is
//! negative): `trunc(1.500, 1)` is `1.5`, `round(1.5, 3)` is `1.500`,
//! `round(15, -1)` is `20`; DataFusion's kept the argument's scale.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type};
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::Result;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
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

/// A function's answer over `out`: one value when every argument was a
/// constant (`scalar`), else the array.
pub(crate) fn columnar(out: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        return Ok(ColumnarValue::Scalar(
            datafusion::common::ScalarValue::try_from_array(&out, 0)?,
        ));
    }
    Ok(ColumnarValue::Array(out))
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
        columnar(out, scalar)
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
        columnar(out, scalar)
    }
}

/// Which whole number [`WholeDecimal`] rounds a decimal to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Whole {
    /// The smallest whole number not below the value (`ceil`, `ceiling`).
    Ceil,
    /// The largest whole number not above the value (`floor`).
    Floor,
    /// The value without its fraction (`trunc`).
    Trunc,
    /// The nearest, half away from zero (`round`).
    Round,
}

impl Whole {
    fn name(self) -> &'static str {
        match self {
            Whole::Ceil => "ceil",
            Whole::Floor => "floor",
            Whole::Trunc => "trunc",
            Whole::Round => "round",
        }
    }

    /// `value` (of scale `scale`) to `digits` decimals, as an unscaled
    /// decimal of scale `max(digits, 0)` (`round`/`trunc` with a number of
    /// digits); `None` past a decimal's 38 digits.
    fn at(self, value: i128, scale: u32, digits: i64) -> Option<i128> {
        let kept = digits.max(0);
        if kept >= i64::from(scale) {
            let up = u32::try_from(kept - i64::from(scale)).ok()?;
            return value.checked_mul(10i128.checked_pow(up)?);
        }
        // Digits dropped: every one past the 38th is already zero.
        let dropped = u32::try_from(i64::from(scale) - digits).ok()?;
        let (whole, rest, unit) = match 10i128.checked_pow(dropped) {
            Some(unit) => (value / unit, value % unit, unit),
            None => return Some(0),
        };
        let whole = match self {
            Whole::Round if rest.unsigned_abs() * 2 >= unit.unsigned_abs() => {
                whole + value.signum()
            }
            Whole::Ceil if rest > 0 => whole + 1,
            Whole::Floor if rest < 0 => whole - 1,
            _ => whole,
        };
        if digits < 0 {
            whole.checked_mul(10i128.checked_pow(u32::try_from(-digits).ok()?)?)
        } else {
            Some(whole)
        }
    }

    /// `value` (an unscaled decimal of scale `scale`) as a whole number.
    fn apply(self, value: i128, scale: u32) -> i128 {
        // To 0 digits nothing can overflow: the whole part is never wider.
        self.at(value, scale, 0).unwrap_or(0)
    }
}

/// DataFusion's `ceil`/`floor`/`trunc`, answering a decimal argument with
/// a decimal of scale 0 as PostgreSQL does; see the module docs. Every
/// other argument goes to DataFusion's function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WholeDecimal {
    inner: ScalarUDF,
    whole: Whole,
    /// The inner function's aliases, and PostgreSQL's `ceiling` for `ceil`.
    aliases: Vec<String>,
}

impl WholeDecimal {
    /// `whole` over `inner` (DataFusion's function of that name).
    pub fn udf(inner: ScalarUDF, whole: Whole) -> ScalarUDF {
        let mut aliases = inner.aliases().to_vec();
        if whole == Whole::Ceil && !aliases.iter().any(|a| a == "ceiling") {
            aliases.push("ceiling".to_string());
        }
        ScalarUDF::new_from_impl(WholeDecimal {
            inner,
            whole,
            aliases,
        })
    }

    /// The decimal argument's precision and scale, when the call is one
    /// this wrapper answers itself.
    fn decimal(arg_types: &[DataType]) -> Option<(u8, i8)> {
        match arg_types {
            [DataType::Decimal128(p, s)] if *s >= 0 => Some((*p, *s)),
            _ => None,
        }
    }

    /// The decimal argument's precision and scale and the constant number
    /// of digits, for `round`/`trunc(n, k)` this wrapper answers itself.
    fn with_digits(
        &self,
        arg_types: &[DataType],
        digits: Option<&ScalarValue>,
    ) -> Option<(u8, i8, i64)> {
        if !matches!(self.whole, Whole::Trunc | Whole::Round) {
            return None;
        }
        let [DataType::Decimal128(p, s), _] = arg_types else {
            return None;
        };
        let k = match digits? {
            ScalarValue::Int64(Some(k)) => *k,
            ScalarValue::Int32(Some(k)) => i64::from(*k),
            ScalarValue::Int16(Some(k)) => i64::from(*k),
            ScalarValue::Int8(Some(k)) => i64::from(*k),
            _ => return None,
        };
        // The result's scale must fit a decimal.
        (*s >= 0 && k <= 38).then_some((*p, *s, k))
    }

    /// The result type of `round`/`trunc(n, k)` over `numeric(p, s)`: scale
    /// `max(k, 0)`, a digit more for rounding up.
    fn digits_type(p: u8, s: i8, k: i64) -> DataType {
        let whole_digits = i64::from(p) - i64::from(s) + 1;
        let precision = (whole_digits + k.max(0)).clamp(1, 38) as u8;
        DataType::Decimal128(precision, k.clamp(0, 38) as i8)
    }

    /// `round`/`trunc(n, k)` of a decimal column or constant.
    fn at_digits(&self, args: &ScalarFunctionArgs, scale: i8, k: i64) -> Result<ColumnarValue> {
        let DataType::Decimal128(precision, out_scale) = args.return_type().clone() else {
            return datafusion::common::exec_err!("{}: unexpected result type", self.whole.name());
        };
        let arg = &args.args[0];
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let values = arg.to_array(args.number_rows)?;
        let whole = self.whole;
        let out = values
            .as_primitive::<Decimal128Type>()
            .try_unary::<_, Decimal128Type, _>(|v| {
                whole.at(v, scale as u32, k).ok_or_else(|| {
                    datafusion::arrow::error::ArrowError::ComputeError(
                        "numeric field overflow".into(),
                    )
                })
            })?
            .with_precision_and_scale(precision, out_scale)?;
        out.validate_decimal_precision(precision).map_err(|_| {
            datafusion::error::DataFusionError::External(Box::new(crate::error::QueryError::new(
                "22003",
                "numeric field overflow",
            )))
        })?;
        columnar(Arc::new(out), scalar)
    }
}

impl ScalarUDFImpl for WholeDecimal {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match Self::decimal(arg_types) {
            // `ceil` may need one digit more than the whole part had.
            Some((p, s)) => Ok(DataType::Decimal128(
                (p.saturating_sub(s as u8) + 1).clamp(1, 38),
                0,
            )),
            None => self.inner.return_type(arg_types),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let digits = args.scalar_arguments.get(1).copied().flatten();
        let own = match self.with_digits(&types, digits) {
            Some((p, s, k)) => Self::digits_type(p, s, k),
            None if Self::decimal(&types).is_some() => self.return_type(&types)?,
            None => return self.inner.return_field_from_args(args),
        };
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), own, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if let [_, ColumnarValue::Scalar(digits)] = args.args.as_slice() {
            if let Some((_, scale, k)) = self.with_digits(&types, Some(digits)) {
                return self.at_digits(&args, scale, k);
            }
        }
        let Some((_, scale)) = Self::decimal(&types) else {
            return self.inner.invoke_with_args(args);
        };
        let [arg] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{} takes one argument", self.whole.name());
        };
        let DataType::Decimal128(precision, 0) = args.return_type().clone() else {
            return datafusion::common::exec_err!("{}: unexpected result type", self.whole.name());
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let values = arg.to_array(args.number_rows)?;
        let whole = self.whole;
        let out: ArrayRef = Arc::new(
            values
                .as_primitive::<Decimal128Type>()
                .unary::<_, Decimal128Type>(|v| whole.apply(v, scale as u32))
                .with_precision_and_scale(precision, 0)?,
        );
        columnar(out, scalar)
    }
}

/// PostgreSQL's functions of `double precision` only, which widen a
/// `real` argument ([`RealAsDouble`]). (`abs` has a `real` version.)
const DOUBLE_ONLY: &[&str] = &[
    "ceil", "ceiling", "floor", "trunc", "round", "sqrt", "cbrt", "exp", "ln", "log", "log10",
    "power", "pow", "sin", "cos", "tan", "cot", "asin", "acos", "atan", "atan2", "sinh", "cosh",
    "tanh", "asinh", "acosh", "atanh", "degrees", "radians", "sign",
];

/// `round(n, k)`/`trunc(n, k)` with a constant `k` written as an `int4`
/// constant, the type DataFusion's functions take it in: type coercion
/// would wrap a `bigint` constant in a cast, and [`WholeDecimal`] would type
/// the call without seeing `k` (the argument's scale) while it runs with
/// it (scale `k`), a mismatch comparisons then failed on.
fn digits_as_int4(
    e: datafusion::logical_expr::Expr,
) -> datafusion::common::tree_node::Transformed<datafusion::logical_expr::Expr> {
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::Expr;
    match e {
        Expr::ScalarFunction(mut f)
            if matches!(f.name(), "round" | "trunc") && f.args.len() == 2 =>
        {
            if let Expr::Literal(ScalarValue::Int64(Some(k)), _) = &f.args[1] {
                if let Ok(k) = i32::try_from(*k) {
                    f.args[1] = Expr::Literal(ScalarValue::Int32(Some(k)), None);
                    return Transformed::yes(Expr::ScalarFunction(f));
                }
            }
            Transformed::no(Expr::ScalarFunction(f))
        }
        other => Transformed::no(other),
    }
}

/// The analyzer rule widening `real` arguments of [`DOUBLE_ONLY`]
/// functions to `double precision`, before type coercion; see the module
/// docs.
#[derive(Debug, Default)]
pub struct RealAsDouble;

impl datafusion::optimizer::AnalyzerRule for RealAsDouble {
    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::Transformed;
        use datafusion::logical_expr::{Expr, ExprSchemable};
        crate::rewrite::expressions_bottom_up(plan, |e, schema| {
            let real = |a: &Expr| matches!(a.get_type(schema), Ok(DataType::Float32));
            let e = digits_as_int4(e);
            let mut f = match e.data {
                Expr::ScalarFunction(f)
                    if DOUBLE_ONLY.contains(&f.name()) && f.args.iter().any(real) =>
                {
                    f
                }
                other => return Ok(Transformed::new_transformed(other, e.transformed)),
            };
            f.args = f
                .args
                .into_iter()
                .map(|a| {
                    if real(&a) {
                        datafusion::logical_expr::cast(a, DataType::Float64)
                    } else {
                        a
                    }
                })
                .collect();
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        })
    }

    fn name(&self) -> &str {
        "tautan_real_as_double"
    }
}

/// `ceil`, `floor` and `trunc` answering decimals as PostgreSQL does,
/// over the functions of those names in `registry`.
pub fn whole_decimal_functions(
    registry: &dyn datafusion::execution::FunctionRegistry,
) -> Vec<ScalarUDF> {
    [Whole::Ceil, Whole::Floor, Whole::Trunc, Whole::Round]
        .into_iter()
        .filter_map(|whole| {
            let inner = registry.udf(whole.name()).ok()?;
            Some(WholeDecimal::udf(inner.as_ref().clone(), whole))
        })
        .collect()
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

    #[test]
    fn whole_numbers_of_decimals_round_the_way_their_names_say() {
        // 1.500, -1.500, 0.001, -0.001, 2.000 at scale 3.
        let cases = [
            (1500, 2, 1, 1),
            (-1500, -1, -2, -1),
            (1, 1, 0, 0),
            (-1, 0, -1, 0),
        ];
        for (v, ceil, floor, trunc) in cases {
            assert_eq!(Whole::Ceil.apply(v, 3), ceil, "ceil {v}");
            assert_eq!(Whole::Floor.apply(v, 3), floor, "floor {v}");
            assert_eq!(Whole::Trunc.apply(v, 3), trunc, "trunc {v}");
        }
        assert_eq!(Whole::Ceil.apply(2000, 3), 2);
        assert_eq!(Whole::Round.apply(1500, 3), 2);
        assert_eq!(Whole::Round.apply(-1500, 3), -2);
        assert_eq!(Whole::Round.apply(1499, 3), 1);
        assert_eq!(Whole::Ceil.apply(9999, 1), 1000);
        assert_eq!(Whole::Floor.apply(-7, 0), -7);
    }

    #[test]
    fn round_and_trunc_to_digits_answer_at_the_scale_of_their_digits() {
        // 1.250 and -1.250 at scale 3.
        assert_eq!(Whole::Round.at(1250, 3, 1), Some(13));
        assert_eq!(Whole::Round.at(-1250, 3, 1), Some(-13));
        assert_eq!(Whole::Trunc.at(1250, 3, 1), Some(12));
        assert_eq!(Whole::Trunc.at(-1250, 3, 1), Some(-12));
        // More digits than the value has: zeros appended.
        assert_eq!(Whole::Round.at(15, 1, 3), Some(1500));
        // Negative digits: tens, scale 0.
        assert_eq!(Whole::Round.at(150, 1, -1), Some(20));
        assert_eq!(Whole::Trunc.at(150, 1, -1), Some(10));
        assert_eq!(Whole::Round.at(-450, 1, -1), Some(-50));
        assert_eq!(Whole::Round.at(449, 1, -1), Some(40));
        assert_eq!(Whole::Round.at(44, 1, -1), Some(0));
        // Every digit dropped, far past a decimal's 38.
        assert_eq!(Whole::Round.at(i128::MAX / 2, 3, -60), Some(0));
        assert_eq!(Whole::Round.at(5, 0, 40), None);
    }
}
