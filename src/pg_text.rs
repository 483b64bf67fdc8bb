//! Casts of floats to text, written as PostgreSQL writes floats.
//!
//! DataFusion casts a float to text its own way (`0.0`, `1e20`, `1e-7`);
//! PostgreSQL writes `0`, `1e+20`, `1e-07` — the same text its wire
//! answers carry ([`float_text`], which the wire's encoder uses too). An
//! explicit `x::text` and the implicit cast of `'a' || x` are both casts
//! after type coercion, so [`FloatText`], an analyzer rule run after it,
//! turns each cast of a `real` or `double precision` to text into
//! [`FloatOut`], keeping the expression's name. (Such a cast is then done
//! in tautan, not at a source: MySQL writes floats its own way.)

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::Result;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// A float as PostgreSQL writes it (`extra_float_digits` 1, the default):
/// the shortest digits that read back as the same value, in positional
/// notation unless the exponent is below -4 or at least `precision` (6
/// for float4, 15 for float8), then `d.ddde+XX`.
pub fn float_text(v: f64, precision: i32, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-trip form: "3.4028235e38".
    let sci = if single {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if exponent < -4 || exponent >= precision {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let point = exponent as usize + 1;
    if digits.len() <= point {
        format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

/// `float8out(x)` / `float4out(x)`: a float as PostgreSQL writes it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FloatOut {
    single: bool,
    signature: Signature,
}

impl FloatOut {
    /// The function for `real` (`single`) or `double precision`.
    pub fn udf(single: bool) -> ScalarUDF {
        let input = if single {
            DataType::Float32
        } else {
            DataType::Float64
        };
        ScalarUDF::new_from_impl(FloatOut {
            single,
            signature: Signature::exact(vec![input], Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for FloatOut {
    fn name(&self) -> &str {
        if self.single {
            "float4out"
        } else {
            "float8out"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [arg] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{} takes one argument", self.name());
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let values = arg.to_array(rows)?;
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 8);
        if self.single {
            for v in values.as_primitive::<Float32Type>().iter() {
                out.append_option(v.map(|v| float_text(v as f64, 6, true)));
            }
        } else {
            for v in values.as_primitive::<Float64Type>().iter() {
                out.append_option(v.map(|v| float_text(v, 15, false)));
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        crate::math::columnar(out, scalar)
    }
}

/// The analyzer rule; see the module docs.
#[derive(Debug, Default)]
pub struct FloatText;

impl AnalyzerRule for FloatText {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let float4 = Arc::new(FloatOut::udf(true));
        let float8 = Arc::new(FloatOut::udf(false));
        plan.transform_up_with_subqueries(|node| {
            let schema = node.schema().clone();
            let inputs = node.inputs();
            let mut scope = datafusion::logical_expr::utils::merge_schema(&inputs);
            scope.merge(&schema);
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let name = names.save(&e);
                let rewritten = e.transform_up(|e| {
                    let Expr::Cast(Cast { expr, field }) = &e else {
                        return Ok(Transformed::no(e));
                    };
                    let to = field.data_type();
                    if !matches!(
                        to,
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    ) {
                        return Ok(Transformed::no(e));
                    }
                    let udf = match datafusion::logical_expr::ExprSchemable::get_type(
                        expr.as_ref(),
                        &scope,
                    ) {
                        Ok(DataType::Float32) => float4.clone(),
                        Ok(DataType::Float64) => float8.clone(),
                        _ => return Ok(Transformed::no(e)),
                    };
                    let text = Expr::ScalarFunction(ScalarFunction::new_udf(
                        udf,
                        vec![expr.as_ref().clone()],
                    ));
                    Ok(Transformed::yes(if *to == DataType::Utf8 {
                        text
                    } else {
                        datafusion::logical_expr::cast(text, to.clone())
                    }))
                })?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "tautan_float_text"
    }
}
