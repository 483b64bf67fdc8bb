//! PostgreSQL's reading of numbers with a point or an exponent.
//!
//! In PostgreSQL `0.1`, `2.25` and `1e3` are `numeric` constants, exact:
//! `0.1 + 0.2` is `0.3`, and `price * 1.1` on a `numeric` column is a
//! `numeric`. DataFusion read them as `double precision` (`0.1 + 0.2` was
//! `0.30000000000000004`). The session reads them as decimals
//! (`parse_float_as_decimal`), with two helpers:
//!
//! - [`literals_as_numerics`] writes a number with an exponent in plain
//!   digits before DataFusion reads it (`1.5e3` → `1500`, `1e-2` → `0.01`),
//!   with PostgreSQL's scale (the mantissa's fraction digits less the
//!   exponent, at least 0). DataFusion would make `1e3` a decimal of
//!   negative scale, which Arrow's kernels and the links' SQL do not take.
//!   A number that does not fit a 38-digit decimal stays a `double
//!   precision` (a documented difference: PostgreSQL's `numeric` has no
//!   such bound).
//! - [`FloatOverNumeric`], an analyzer rule before type coercion: where a
//!   `double precision` or `real` meets a `numeric` in one operator,
//!   `BETWEEN` or `nullif`, the `numeric` side is converted to `double
//!   precision`; in an `IN` list of two or more constants, `CASE` or
//!   `coalesce`/`greatest`/`least` to the widest float among the values
//!   (an `IN` list of one constant is its `=`), as PostgreSQL does (a numeric
//!   converts to float implicitly, not the other way; its operators mix
//!   float4 with float8, its common type of `real` and `numeric` is
//!   `real`).
//!   DataFusion converted the float side to a decimal of 15 fraction
//!   digits instead, which overflowed on any float above 10^15 (or 10^7
//!   for a `real`, `real_col = 2.25` failed at the source with "numeric
//!   field overflow") and on NaN and infinity. Likewise a `real` meeting
//!   an integer is widened to `double precision`, as PostgreSQL's
//!   operators take it (`real_col * 2` is a `double precision`;
//!   DataFusion's answer was a `real`, which overflowed at `3.4e38`).

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::sql::sqlparser::ast::{Statement, Value};

/// The most digits a decimal constant holds (Arrow's `Decimal128`).
const MAX_DIGITS: usize = 38;

/// Numbers with a point or an exponent, written so DataFusion reads them
/// as PostgreSQL does; see the module docs.
pub(crate) fn literals_as_numerics(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions_mut, CastKind, DataType as SqlType, ExactNumberInfo, Expr as SqlExpr,
    };
    let cast = |expr: SqlExpr, data_type: SqlType| SqlExpr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    };
    let _ = visit_expressions_mut(statement, |e| {
        let SqlExpr::Value(v) = e else {
            return ControlFlow::<()>::Continue(());
        };
        let Value::Number(text, _) = &mut v.value else {
            return ControlFlow::Continue(());
        };
        match numeric_form(text) {
            Form::AsWritten => {}
            Form::Plain(plain) => *text = plain,
            Form::Whole { digits, precision } => {
                *e = cast(
                    SqlExpr::value(Value::Number(digits, false)),
                    SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(precision, 0)),
                );
            }
            Form::Double => {
                let written = Value::SingleQuotedString(text.clone());
                *e = cast(SqlExpr::value(written), SqlType::DoublePrecision);
            }
            Form::OutOfRange => {
                // A cast that fails (the number does not fit) rather than a
                // float that would read `1e400` as Infinity and `1e-400` as 0.
                let written = Value::SingleQuotedString(text.clone());
                *e = cast(
                    SqlExpr::value(written),
                    SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(38, 0)),
                );
            }
        }
        ControlFlow::Continue(())
    });
}

/// What a number literal is written as for DataFusion.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    /// As it is: an integer, or a decimal DataFusion reads as PostgreSQL.
    AsWritten,
    /// In plain digits with a point (`1.5e-3` → `0.0015`).
    Plain(String),
    /// A whole `numeric` of `precision` digits (`1e3`: `1000`, which
    /// DataFusion alone would read as a `bigint`).
    Whole { digits: String, precision: u64 },
    /// Beyond a 38-digit decimal: `double precision`.
    Double,
    /// Beyond a `double precision` too (`1e400`, or `1e-400`, which a
    /// float would read as 0): an error, never a different number.
    OutOfRange,
}

/// How the number `text` is written for DataFusion; see [`Form`].
fn numeric_form(text: &str) -> Form {
    match exact_form(text) {
        Form::Double => match text.parse::<f64>() {
            Ok(f) if f.is_finite() && (f != 0.0 || !has_nonzero_digit(text)) => Form::Double,
            _ => Form::OutOfRange,
        },
        form => form,
    }
}

/// Whether the mantissa of the number `text` has a digit other than 0.
fn has_nonzero_digit(text: &str) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// Whether the number `text` (digits, a point, an exponent) is an exact
/// `numeric` tautan holds: it fits a 38-digit decimal.
pub(crate) fn fits_numeric(text: &str) -> bool {
    !matches!(numeric_form(text), Form::Double | Form::OutOfRange)
}

/// [`numeric_form`] before the float range is checked.
fn exact_form(text: &str) -> Form {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit()) {
        return Form::AsWritten;
    }
    let exponent: i64 = match exponent {
        Some(e) => match e.parse() {
            Ok(e) => e,
            Err(_) => return Form::AsWritten,
        },
        None => 0,
    };
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0').len();
    // PostgreSQL's scale: the fraction's digits less the exponent.
    let scale = (fraction.len() as i64 - exponent).max(0);
    // The digits before the point once the exponent is applied.
    let integral = (significant as i64 - fraction.len() as i64 + exponent).max(0);
    if exponent.abs() > 2 * MAX_DIGITS as i64 || integral + scale > MAX_DIGITS as i64 {
        // Integers DataFusion reads as integers (up to u64) stay.
        let integer = exponent == 0 && !mantissa.contains('.');
        return if integer && digits.parse::<u64>().is_ok() {
            Form::AsWritten
        } else {
            Form::Double
        };
    }
    if exponent == 0 {
        return Form::AsWritten;
    }
    // Move the point by `exponent` places in `digits`.
    let point = whole.len() as i64 + exponent;
    if point <= 0 {
        return Form::Plain(format!(
            "0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        ));
    }
    let point = point as usize;
    if point >= digits.len() {
        let digits = format!("{digits}{}", "0".repeat(point - digits.len()));
        let digits = without_leading_zeros(&digits).to_string();
        let precision = digits.len() as u64;
        return Form::Whole { digits, precision };
    }
    let (a, b) = digits.split_at(point);
    Form::Plain(format!("{}.{b}", without_leading_zeros(a)))
}

/// `digits` without leading zeros, `0` when all are.
fn without_leading_zeros(digits: &str) -> &str {
    match digits.trim_start_matches('0') {
        "" => "0",
        rest => rest,
    }
}

/// The analyzer rule converting the `numeric` side of a float–numeric
/// operation to `double precision`; see the module docs.
#[derive(Debug, Default)]
pub struct FloatOverNumeric;

/// Functions whose arguments take one common type, as an operator's do.
const COMMON_TYPE_FUNCTIONS: &[&str] = &["coalesce", "greatest", "least", "nvl", "ifnull"];

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// How PostgreSQL brings a float and a numeric to one type: an operator
/// (`=`, `+`, `BETWEEN`, `nullif`'s comparison) takes `double precision`
/// (its float4-with-float8 operators); a list of values (`IN`, `CASE`,
/// `coalesce`) takes the widest float among them (its common-type rule:
/// `real_col IN (3.4028235e+38, '3.14')` compares as `real`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meeting {
    Operator,
    List,
}

/// The type each of `exprs` is converted to (`None`: left as it is) when
/// one is a float and another a numeric, or, for an operator, one a `real`
/// and another an integer (PostgreSQL's `real * int` is a `double
/// precision`); `None` when there is no such mix.
fn floats_over_numerics<'a>(
    exprs: impl Iterator<Item = &'a Expr>,
    schema: &DFSchema,
    meeting: Meeting,
) -> Option<Vec<Option<DataType>>> {
    let types: Vec<Option<DataType>> = exprs.map(|e| e.get_type(schema).ok()).collect();
    let any = |f: fn(&DataType) -> bool| types.iter().flatten().any(f);
    let real = any(|t| matches!(t, DataType::Float16 | DataType::Float32));
    let double = any(|t| matches!(t, DataType::Float64));
    let numeric = any(DataType::is_decimal);
    let (mixed, to, widened) = match meeting {
        Meeting::Operator => (
            any(is_float) && (numeric || real && any(DataType::is_integer)),
            DataType::Float64,
            real,
        ),
        Meeting::List => (
            any(is_float) && numeric,
            if double {
                DataType::Float64
            } else {
                DataType::Float32
            },
            false,
        ),
    };
    mixed.then(|| {
        types
            .iter()
            .map(|t| {
                let t = t.as_ref()?;
                let small = matches!(t, DataType::Float16 | DataType::Float32);
                (t.is_decimal() || widened && small).then(|| to.clone())
            })
            .collect()
    })
}

/// `e` converted to `to`, if given.
fn convert(e: Expr, to: Option<DataType>) -> Expr {
    match to {
        Some(to) => datafusion::logical_expr::cast(e, to),
        None => e,
    }
}

/// `e` rewritten if it mixes floats and numerics.
fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    use datafusion::logical_expr::expr::{Between, BinaryExpr, Case, InList};
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if mixes_types(op) => {
            let both = [left.as_ref(), right.as_ref()].into_iter();
            match floats_over_numerics(both, schema, Meeting::Operator) {
                Some(to) => Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                    left: Box::new(convert(*left, to[0].clone())),
                    op,
                    right: Box::new(convert(*right, to[1].clone())),
                })),
                None => Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })),
            }
        }
        Expr::Between(b) => {
            let all = [b.expr.as_ref(), b.low.as_ref(), b.high.as_ref()];
            match floats_over_numerics(all.into_iter(), schema, Meeting::Operator) {
                Some(to) => Transformed::yes(Expr::Between(Between {
                    expr: Box::new(convert(*b.expr, to[0].clone())),
                    negated: b.negated,
                    low: Box::new(convert(*b.low, to[1].clone())),
                    high: Box::new(convert(*b.high, to[2].clone())),
                })),
                None => Transformed::no(Expr::Between(b)),
            }
        }
        Expr::InList(l) => {
            // PostgreSQL takes a common type only for two or more constants
            // (an array of them); one constant is compared by the `=`
            // operator: `f4 IN (1e-30)` is `f4 = 1e-30`, in float8.
            let constants = l.list.iter().filter(|e| e.column_refs().is_empty()).count();
            let meeting = if constants >= 2 {
                Meeting::List
            } else {
                Meeting::Operator
            };
            let all = std::iter::once(l.expr.as_ref()).chain(l.list.iter());
            match floats_over_numerics(all, schema, meeting) {
                Some(to) => {
                    let expr = Box::new(convert(*l.expr, to[0].clone()));
                    let list = l
                        .list
                        .into_iter()
                        .zip(to.into_iter().skip(1))
                        .map(|(e, to)| convert(e, to))
                        .collect();
                    Transformed::yes(Expr::InList(InList {
                        expr,
                        list,
                        negated: l.negated,
                    }))
                }
                None => Transformed::no(Expr::InList(l)),
            }
        }
        Expr::Case(c) => {
            let results = c
                .when_then_expr
                .iter()
                .map(|(_, then)| then.as_ref())
                .chain(c.else_expr.as_deref());
            match floats_over_numerics(results, schema, Meeting::List) {
                Some(to) => {
                    let mut to = to.into_iter();
                    let when_then_expr = c
                        .when_then_expr
                        .into_iter()
                        .map(|(when, then)| (when, Box::new(convert(*then, to.next().flatten()))))
                        .collect();
                    let else_expr = c
                        .else_expr
                        .map(|e| Box::new(convert(*e, to.next().flatten())));
                    Transformed::yes(Expr::Case(Case {
                        expr: c.expr,
                        when_then_expr,
                        else_expr,
                    }))
                }
                None => Transformed::no(Expr::Case(c)),
            }
        }
        // PostgreSQL's `nullif(a, b)` is of `a`'s type; only the comparison
        // takes the common one.
        Expr::ScalarFunction(f) if f.name() == "nullif" && f.args.len() == 2 => {
            match floats_over_numerics(f.args.iter(), schema, Meeting::Operator) {
                Some(to) => {
                    let null =
                        datafusion::common::ScalarValue::try_from(f.args[0].get_type(schema)?)?;
                    let (a, b) = (f.args[0].clone(), f.args[1].clone());
                    let equal = convert(a.clone(), to[0].clone()).eq(convert(b, to[1].clone()));
                    Transformed::yes(Expr::Case(Case {
                        expr: None,
                        when_then_expr: vec![(
                            Box::new(equal),
                            Box::new(Expr::Literal(null, None)),
                        )],
                        else_expr: Some(Box::new(a)),
                    }))
                }
                None => Transformed::no(Expr::ScalarFunction(f)),
            }
        }
        Expr::ScalarFunction(mut f) if COMMON_TYPE_FUNCTIONS.contains(&f.name()) => {
            match floats_over_numerics(f.args.iter(), schema, Meeting::List) {
                Some(to) => {
                    f.args = std::mem::take(&mut f.args)
                        .into_iter()
                        .zip(to)
                        .map(|(e, to)| convert(e, to))
                        .collect();
                    Transformed::yes(Expr::ScalarFunction(f))
                }
                None => Transformed::no(Expr::ScalarFunction(f)),
            }
        }
        other => Transformed::no(other),
    })
}

/// Operators whose two sides are brought to one numeric type.
fn mixes_types(op: Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Eq | NotEq
            | Lt
            | LtEq
            | Gt
            | GtEq
            | IsDistinctFrom
            | IsNotDistinctFrom
            | Plus
            | Minus
            | Multiply
            | Divide
            | Modulo
    )
}

impl datafusion::optimizer::AnalyzerRule for FloatOverNumeric {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &datafusion::common::config::ConfigOptions,
    ) -> Result<LogicalPlan> {
        crate::rewrite::expressions_bottom_up(plan, rewrite)
    }

    fn name(&self) -> &str {
        "tautan_float_over_numeric"
    }
}

#[cfg(test)]
mod tests {
    use super::{numeric_form, Form};

    #[test]
    fn exponents_are_written_in_plain_digits_with_postgresql_scale() {
        let plain = |t: &str| match numeric_form(t) {
            Form::Plain(p) => p,
            Form::Whole { digits, precision } => format!("{digits} ({precision})"),
            other => format!("{other:?}"),
        };
        assert_eq!(plain("1e3"), "1000 (4)");
        assert_eq!(plain("1.5E3"), "1500 (4)");
        assert_eq!(plain("1.50e1"), "15.0");
        assert_eq!(plain("1.5e-3"), "0.0015");
        assert_eq!(plain("25E-1"), "2.5");
        assert_eq!(plain("0.001e+2"), "0.1");
        assert_eq!(plain(".5e1"), "5 (1)");
        assert_eq!(plain("0e5"), "0 (1)");
        assert_eq!(plain("007.5e1"), "75 (2)");
        // As written: DataFusion reads these as PostgreSQL does.
        assert_eq!(numeric_form("2.25"), Form::AsWritten);
        assert_eq!(numeric_form("42"), Form::AsWritten);
        assert_eq!(numeric_form("18446744073709551615"), Form::AsWritten);
        // Beyond 38 digits: double precision.
        assert_eq!(numeric_form("1e300"), Form::Double);
        assert_eq!(numeric_form("1e-300"), Form::Double);
        assert_eq!(numeric_form(&format!("0.{}", "1".repeat(40))), Form::Double);
        assert_eq!(numeric_form(&"9".repeat(39)), Form::Double);
        assert_eq!(numeric_form("1e400"), Form::OutOfRange);
        assert_eq!(numeric_form("1.5e-400"), Form::OutOfRange);
        assert_eq!(numeric_form("0e400"), Form::Double);
        assert_eq!(numeric_form(&"9".repeat(38)), Form::AsWritten);
    }
}
