//! Casts to `numeric` without a precision: the value keeps its own scale.
//!
//! In PostgreSQL `x::numeric` (no precision) is exact and keeps the value's
//! digits: `sum(int_col::numeric)` is `70030`, `'12.5'::numeric` is `12.5`.
//! DataFusion reads `numeric` without a precision as `numeric(38,10)`, so
//! those came back as `70030.0000000000` and `12.5000000000`.
//!
//! An Arrow column has one scale, so tautan gives the cast the type that
//! holds every value of its operand exactly:
//!
//! - the statement rewrite [`casts_as_placeholders`] writes a quoted number
//!   cast to `numeric` as the number itself (read with PostgreSQL's scale by
//!   [`crate::numeric`]), and any other such cast as a call of
//!   [`UnboundedNumeric`], whose type follows its argument's: an integer of
//!   `n` digits is `numeric(n,0)`, a numeric keeps its precision and scale;
//! - the analyzer rule [`PlaceholdersAsCasts`] turns each call back into a
//!   plain cast to that type before anything else sees the plan, so
//!   pushdown and the other rules meet only casts.
//!
//! Floats and text keep DataFusion's `numeric(38,10)`: their scale differs
//! value by value (a documented difference).

use std::ops::ControlFlow;

use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{Statement, Value};

/// The name of the placeholder function; no client writes it.
const NAME: &str = "tautan_unbounded_numeric";

/// DataFusion's reading of `numeric` without a precision.
const DEFAULT: DataType = DataType::Decimal128(38, 10);

/// The type of `x::numeric` for an `x` of type `t`: the narrowest numeric
/// holding every value of `t` with its own scale, where there is one.
fn unbounded_type(t: &DataType) -> DataType {
    use DataType::*;
    match t {
        Int8 | UInt8 => Decimal128(3, 0),
        Int16 | UInt16 => Decimal128(5, 0),
        Int32 | UInt32 => Decimal128(10, 0),
        Int64 => Decimal128(19, 0),
        UInt64 => Decimal128(20, 0),
        Decimal128(..) | Decimal256(..) => t.clone(),
        _ => DEFAULT,
    }
}

/// Rewrites every cast to `numeric`/`decimal` without a precision (see the
/// module docs). Runs after the select list is named, so the column keeps
/// PostgreSQL's name (`numeric`).
pub(crate) fn casts_as_placeholders(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions_mut, DataType as SqlType, ExactNumberInfo, Expr as SqlExpr, UnaryOperator,
    };
    let _ = visit_expressions_mut(statement, |e| {
        let SqlExpr::Cast {
            expr,
            data_type:
                SqlType::Numeric(ExactNumberInfo::None)
                | SqlType::Decimal(ExactNumberInfo::None)
                | SqlType::Dec(ExactNumberInfo::None),
            format: None,
            array: false,
            ..
        } = e
        else {
            return ControlFlow::<()>::Continue(());
        };
        let call = || crate::statement::template(&format!("{NAME}($1)"), vec![(**expr).clone()]);
        let replacement = match expr.as_ref() {
            SqlExpr::Value(v) => match &v.value {
                Value::SingleQuotedString(text) => plain_number(text).map(|(negative, digits)| {
                    let number = SqlExpr::value(Value::Number(digits.to_string(), false));
                    if negative {
                        SqlExpr::Nested(Box::new(SqlExpr::UnaryOp {
                            op: UnaryOperator::Minus,
                            expr: Box::new(number),
                        }))
                    } else {
                        number
                    }
                }),
                // A parameter keeps the cast, so its type is inferred as numeric.
                Value::Placeholder(_) => None,
                _ => call(),
            },
            _ => call(),
        };
        if let Some(replacement) = replacement {
            *e = replacement;
        }
        ControlFlow::Continue(())
    });
}

/// A quoted number PostgreSQL's `numeric` input reads (`' -12.50 '`,
/// `'1e3'`): its sign and its digits, or `None` for anything else (`NaN`,
/// words), which keeps DataFusion's cast and its errors.
fn plain_number(text: &str) -> Option<(bool, &str)> {
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.len() <= 3 && digits_only(e)
    });
    // Only a number a 38-digit numeric holds: `'1e400'::numeric` keeps
    // the cast (an error), not a float's Infinity.
    (!(whole.is_empty() && fraction.is_empty())
        && digits_only(whole)
        && digits_only(fraction)
        && exponent_ok
        && crate::numeric::fits_numeric(unsigned))
    .then_some((negative, unsigned))
}

/// The placeholder for `x::numeric` (see the module docs): a cast to the
/// type that holds `x`'s values exactly.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UnboundedNumeric {
    signature: Signature,
}

impl UnboundedNumeric {
    /// The function, for registering in a session.
    pub fn udf() -> ScalarUDF {
        ScalarUDF::new_from_impl(UnboundedNumeric {
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for UnboundedNumeric {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().map(unbounded_type).unwrap_or(DEFAULT))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // Reached only if the analyzer rule did not run (it always does in
        // a tautan session): the same cast, done here.
        let to = args.return_field.data_type().clone();
        let [arg] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{NAME} takes one argument");
        };
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        match arg {
            ColumnarValue::Array(a) => {
                Ok(ColumnarValue::Array(cast_with_options(a, &to, &options)?))
            }
            ColumnarValue::Scalar(s) => Ok(ColumnarValue::Scalar(s.cast_to(&to)?)),
        }
    }
}

/// The analyzer rule turning each placeholder back into a cast.
#[derive(Debug, Default)]
pub struct PlaceholdersAsCasts;

fn as_cast(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(f) = &e else {
        return Ok(Transformed::no(e));
    };
    if f.func.name() != NAME {
        return Ok(Transformed::no(e));
    }
    let Some(arg) = f.args.first() else {
        return Ok(Transformed::no(e));
    };
    let to = unbounded_type(&arg.get_type(schema)?);
    Ok(Transformed::yes(datafusion::logical_expr::cast(
        arg.clone(),
        to,
    )))
}

impl datafusion::optimizer::AnalyzerRule for PlaceholdersAsCasts {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<LogicalPlan> {
        crate::rewrite::expressions_bottom_up(plan, as_cast)
    }

    fn name(&self) -> &str {
        "tautan_unbounded_numeric_casts"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_numbers_are_read_as_numbers() {
        assert_eq!(plain_number(" -12.50 "), Some((true, "12.50")));
        assert_eq!(plain_number("+1e3"), Some((false, "1e3")));
        assert_eq!(plain_number(".5"), Some((false, ".5")));
        assert_eq!(plain_number("NaN"), None);
        assert_eq!(plain_number("1e"), None);
        assert_eq!(plain_number("-"), None);
        assert_eq!(plain_number("1.2.3"), None);
        assert_eq!(plain_number("12abc"), None);
        assert_eq!(plain_number("1e400"), None);
        assert_eq!(plain_number(&"9".repeat(40)), None);
    }

    #[test]
    fn integers_keep_their_digits() {
        assert_eq!(
            unbounded_type(&DataType::Int32),
            DataType::Decimal128(10, 0)
        );
        assert_eq!(
            unbounded_type(&DataType::Decimal128(7, 2)),
            DataType::Decimal128(7, 2)
        );
        assert_eq!(unbounded_type(&DataType::Float64), DEFAULT);
    }
}
