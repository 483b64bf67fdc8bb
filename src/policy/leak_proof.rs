//! Which of a user's predicates may run below the policy.
//!
//! A row filter hides rows and a mask hides values, but only if nothing the
//! user wrote is evaluated on what they hide. A predicate evaluated on
//! hidden rows can leak through an error (`WHERE 1/(y - 42) = 0` fails
//! only if some hidden row has `y = 42`; `nik::int` fails on a hidden
//! value that is not a number, and the error shows it) or through its cost.
//! So the user's predicates run *above* the policy, on rows already
//! filtered and masked, except those that cannot leak, which may be sent to
//! the source together with the row filter (so the source still filters):
//!
//! * a comparison (`=`, `<>`, `<`, `<=`, `>`, `>=`, `IS [NOT] DISTINCT
//!   FROM`) of an unmasked column with a literal,
//! * `IS [NOT] NULL`, `IS [NOT] TRUE/FALSE` of an unmasked column,
//! * `col [NOT] IN (literals)`, `col [NOT] BETWEEN literal AND literal`,
//! * AND, OR and NOT of those.
//!
//! A column may be widened on the way (an `int2` column compared with an
//! `int8` literal) but never cast in a way that can fail. Anything else —
//! casts, arithmetic, functions, LIKE, subqueries — stays above.

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::logical_expr::{Expr, Operator};

/// The table a predicate is judged against: its schema (before masks) and
/// its masked columns.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The table's columns as the source gives them.
    pub schema: &'a Schema,
    /// Columns under a mask.
    pub masked: &'a BTreeSet<String>,
}

/// Whether `expr` may be evaluated on rows the user may not see.
pub fn is_leak_proof(expr: &Expr, scope: Scope<'_>) -> bool {
    match expr {
        Expr::BinaryExpr(b) => match b.op {
            Operator::And | Operator::Or => {
                is_leak_proof(&b.left, scope) && is_leak_proof(&b.right, scope)
            }
            op if crate::pg_input::is_comparison(op) => {
                (plain_column(&b.left, scope) && literal(&b.right))
                    || (literal(&b.left) && plain_column(&b.right, scope))
            }
            _ => false,
        },
        Expr::Not(inner) => is_leak_proof(inner, scope),
        Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNotFalse(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotUnknown(e) => plain_column(e, scope),
        Expr::InList(l) => plain_column(&l.expr, scope) && l.list.iter().all(literal),
        Expr::Between(b) => plain_column(&b.expr, scope) && literal(&b.low) && literal(&b.high),
        _ => false,
    }
}

/// An unmasked column, possibly widened by a cast that cannot fail.
fn plain_column(expr: &Expr, scope: Scope<'_>) -> bool {
    match expr {
        Expr::Column(c) => !scope.masked.contains(&c.name),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(col) => {
                let from = scope
                    .schema
                    .field_with_name(&col.name)
                    .ok()
                    .map(|f| f.data_type());
                !scope.masked.contains(&col.name) && widening(from, c.field.data_type())
            }
            _ => false,
        },
        _ => false,
    }
}

/// A literal, or a cast of one (which fails, if at all, whatever the data).
fn literal(expr: &Expr) -> bool {
    match expr {
        Expr::Literal(..) => true,
        Expr::Cast(c) => literal(&c.expr),
        Expr::TryCast(c) => literal(&c.expr),
        _ => false,
    }
}

/// Whether casting `from` to `to` can never fail or lose the value.
fn widening(from: Option<&DataType>, to: &DataType) -> bool {
    use DataType::*;
    let Some(from) = from else {
        return false;
    };
    if from == to {
        return true;
    }
    let rank = |t: &DataType| match t {
        Int8 => Some((1, true)),
        Int16 => Some((2, true)),
        Int32 => Some((3, true)),
        Int64 => Some((4, true)),
        UInt8 => Some((1, false)),
        UInt16 => Some((2, false)),
        UInt32 => Some((3, false)),
        UInt64 => Some((4, false)),
        _ => None,
    };
    match (from, to) {
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Float32, Float64) => true,
        _ => match (rank(from), rank(to)) {
            // Signed to wider signed, unsigned to wider unsigned, unsigned
            // to strictly wider signed.
            (Some((a, sa)), Some((b, sb))) => (sa == sb && b >= a) || (!sa && sb && b > a),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    use datafusion::arrow::datatypes::Field;

    fn check(e: &Expr) -> bool {
        let masked: BTreeSet<String> = ["nik".to_string()].into_iter().collect();
        let schema = Schema::new(vec![
            Field::new("nik", DataType::Utf8, true),
            Field::new("kode", DataType::Utf8, true),
            Field::new("nama", DataType::Utf8, true),
            Field::new("umur", DataType::Int16, true),
        ]);
        is_leak_proof(
            e,
            Scope {
                schema: &schema,
                masked: &masked,
            },
        )
    }

    #[test]
    fn comparisons_lists_and_nulls_of_unmasked_columns_may_go_below() {
        for e in [
            col("kode").eq(lit("31.71.01")),
            col("umur").gt(lit(17)).and(col("umur").lt_eq(lit(65))),
            col("kode").in_list(vec![lit("a"), lit("b")], true),
            col("kode").is_null().or(col("kode").not_eq(lit("x"))),
            Expr::Not(Box::new(col("umur").between(lit(1), lit(2)))),
            datafusion::logical_expr::cast(col("umur"), DataType::Int64).eq(lit(5i64)),
        ] {
            assert!(check(&e), "{e}");
        }
    }

    #[test]
    fn masked_columns_arithmetic_casts_and_functions_stay_above() {
        for e in [
            col("nik").eq(lit("1")),
            col("kode").eq(lit("a")).and(col("nik").is_null()),
            (lit(1) / col("umur")).eq(lit(0)),
            datafusion::logical_expr::cast(col("kode"), DataType::Int64).eq(lit(1)),
            col("kode").like(lit("31%")),
            col("kode").eq(col("nama")),
            datafusion::functions::expr_fn::length(col("kode")).gt(lit(3)),
        ] {
            assert!(!check(&e), "{e}");
        }
    }

    #[test]
    fn only_widening_casts_cannot_fail() {
        use DataType::*;
        assert!(widening(Some(&Int16), &Int64));
        assert!(widening(Some(&UInt8), &Int16));
        assert!(!widening(Some(&Int64), &Int32));
        assert!(!widening(Some(&UInt64), &Int64));
        assert!(!widening(Some(&Utf8), &Int64));
        assert!(!widening(None, &Int64));
    }
}
