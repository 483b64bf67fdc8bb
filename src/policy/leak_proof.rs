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
//!   FROM`) of an unmasked column with a literal or with another unmasked
//!   column (`l_shipdate < l_commitdate`: both values are ones the
//!   comparison cannot fail on),
//! * `IS [NOT] NULL`, `IS [NOT] TRUE/FALSE` of an unmasked column,
//! * `col [NOT] IN (literals)`, `col [NOT] BETWEEN literal AND literal`,
//! * AND, OR and NOT of those.
//!
//! A column may be widened on the way (an `int2` column compared with an
//! `int8` literal) but never cast in a way that can fail. Anything else —
//! casts, arithmetic, functions, LIKE, subqueries — stays above.

use std::collections::BTreeSet;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Operator};

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
    leak_proof_with(expr, &|e| plain_column(e, scope))
}

/// What a table read under a policy answers DataFusion's filter pushdown
/// for `filters`: those that cannot leak, as `inner` (the table under the
/// policy) takes them; the others `Unsupported`, so they run above the
/// policy.
pub fn pushdown(
    inner: &dyn datafusion::catalog::TableProvider,
    scope: Scope<'_>,
    filters: &[&Expr],
) -> datafusion::common::Result<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
    use datafusion::logical_expr::TableProviderFilterPushDown;
    let mut answer = vec![TableProviderFilterPushDown::Unsupported; filters.len()];
    let below: Vec<usize> = (0..filters.len())
        .filter(|i| is_leak_proof(filters[*i], scope))
        .collect();
    if below.is_empty() {
        return Ok(answer);
    }
    let asked: Vec<&Expr> = below.iter().map(|i| filters[*i]).collect();
    for (i, support) in below.iter().zip(inner.supports_filters_pushdown(&asked)?) {
        answer[*i] = support;
    }
    Ok(answer)
}

/// The grammar of leak-proof predicates, with `column` saying which
/// operands are plain columns.
fn leak_proof_with(expr: &Expr, column: &dyn Fn(&Expr) -> bool) -> bool {
    match expr {
        Expr::BinaryExpr(b) => match b.op {
            Operator::And | Operator::Or => {
                leak_proof_with(&b.left, column) && leak_proof_with(&b.right, column)
            }
            op if crate::pg_input::is_comparison(op) => {
                (column(&b.left) && (literal(&b.right) || column(&b.right)))
                    || (literal(&b.left) && column(&b.right))
            }
            _ => false,
        },
        Expr::Not(inner) => leak_proof_with(inner, column),
        Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNotFalse(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotUnknown(e) => column(e),
        Expr::InList(l) => column(&l.expr) && l.list.iter().all(literal),
        Expr::Between(b) => column(&b.expr) && literal(&b.low) && literal(&b.high),
        _ => false,
    }
}

/// Whether a sub-plan sent whole to one link, with row filters in the
/// `WHERE` of some of its scans, may run there as one statement.
///
/// The source's planner is free to evaluate the sub-plan's predicates in
/// any order, and to move them (PostgreSQL merges derived tables into their
/// query, and `HAVING` on group columns into `WHERE`), so every predicate
/// of the sub-plan — filters and join conditions — must be one that cannot
/// leak, over columns that are columns of a table (or results of an
/// aggregate or window, which only ever see the rows the scans below them
/// let through): a predicate over a computed column (`y` of `x / 0 AS y`)
/// would be evaluated as its expression, on any row. Subqueries are
/// refused. Expressions in select lists, sort keys and aggregates are
/// evaluated by PostgreSQL and MySQL only on the rows the predicates keep,
/// so they may be anything. The predicates inside scans are not judged
/// here: a policed scan takes only leak-proof ones
/// ([`super::table::PolicyTable::supports_filters_pushdown`]), and those of
/// another table see only that table's rows.
pub fn sub_plan_is_leak_proof(plan: &LogicalPlan) -> bool {
    let mut fine = true;
    let _ = plan.apply(|node| {
        let subquery = node.expressions().iter().any(|e| {
            e.exists(|x| {
                Ok(matches!(
                    x,
                    Expr::ScalarSubquery(_)
                        | Expr::Exists(_)
                        | Expr::InSubquery(_)
                        | Expr::OuterReferenceColumn(..)
                ))
            })
            .unwrap_or(true)
        });
        fine = !subquery
            && match node {
                LogicalPlan::Filter(f) => {
                    leak_proof_with(&f.predicate, &|e| plain_operand(e, &[&f.input]))
                }
                LogicalPlan::Join(j) => {
                    j.on.iter()
                        .all(|(l, r)| plain_operand(l, &[&j.left]) && plain_operand(r, &[&j.right]))
                        && j.filter.as_ref().is_none_or(|f| {
                            leak_proof_with(f, &|e| plain_operand(e, &[&j.left, &j.right]))
                        })
                }
                LogicalPlan::Projection(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::Values(_) => true,
                _ => false,
            };
        Ok(if fine {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    fine
}

/// A column of one of `inputs` (possibly widened by a cast that cannot
/// fail) that is a table's column or an aggregate's or window's result.
fn plain_operand(expr: &Expr, inputs: &[&LogicalPlan]) -> bool {
    let (column, cast_to) = match expr {
        Expr::Column(c) => (c, None),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(col) => (col, Some(c.field.data_type())),
            _ => return false,
        },
        _ => return false,
    };
    inputs.iter().any(|plan| {
        let schema = plan.schema();
        match schema.index_of_column(column) {
            Ok(i) => {
                let from = schema.field(i).data_type();
                cast_to.is_none_or(|to| widening(Some(from), to)) && plain_at(plan, i)
            }
            Err(_) => false,
        }
    })
}

/// Whether output column `i` of `plan` is a table's column passed through
/// unchanged, or the result of an aggregate or window function.
fn plain_at(plan: &LogicalPlan, i: usize) -> bool {
    use datafusion::common::JoinType;
    let through = |input: &LogicalPlan, c: &Expr| match c.clone().unalias() {
        Expr::Column(c) => input
            .schema()
            .index_of_column(&c)
            .is_ok_and(|at| plain_at(input, at)),
        _ => false,
    };
    match plan {
        LogicalPlan::TableScan(_) => true,
        LogicalPlan::Projection(p) => p.expr.get(i).is_some_and(|e| through(&p.input, e)),
        LogicalPlan::Filter(f) => plain_at(&f.input, i),
        LogicalPlan::Sort(s) => plain_at(&s.input, i),
        LogicalPlan::Limit(l) => plain_at(&l.input, i),
        LogicalPlan::SubqueryAlias(a) => plain_at(&a.input, i),
        LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(input)) => plain_at(input, i),
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            match j.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    if i < left {
                        plain_at(&j.left, i)
                    } else {
                        plain_at(&j.right, i - left)
                    }
                }
                JoinType::LeftSemi | JoinType::LeftAnti => plain_at(&j.left, i),
                JoinType::RightSemi | JoinType::RightAnti => plain_at(&j.right, i),
                _ => false,
            }
        }
        LogicalPlan::Aggregate(a) => {
            if a.group_expr
                .iter()
                .any(|g| matches!(g, Expr::GroupingSet(_)))
            {
                return false;
            }
            match a.group_expr.get(i) {
                Some(g) => through(&a.input, g),
                None => true,
            }
        }
        LogicalPlan::Window(w) => {
            let passed = w.input.schema().fields().len();
            i >= passed || plain_at(&w.input, i)
        }
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
            col("kode").lt(col("nama")),
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
            col("kode").eq(col("nik")),
            datafusion::functions::expr_fn::length(col("kode")).gt(lit(3)),
        ] {
            assert!(!check(&e), "{e}");
        }
    }

    #[test]
    fn a_sub_plan_may_go_whole_only_if_its_predicates_are_over_real_columns_and_cannot_fail() {
        use datafusion::common::Column;
        use datafusion::functions_aggregate::expr_fn::sum;
        use datafusion::logical_expr::{table_scan, JoinType, LogicalPlanBuilder};
        let schema = Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("y", DataType::Int64, true),
        ]);
        let scan = |name: &str| -> LogicalPlanBuilder {
            table_scan(Some(name), &schema, None).expect("scan")
        };
        let t = || scan("t");
        let u = || scan("u").build().expect("u");
        let fine = [
            t().filter(col("x").lt(col("y"))).expect("filter"),
            t().project(vec![col("x").alias("z")])
                .expect("alias")
                .filter(col("z").eq(lit(1i64)))
                .expect("filter"),
            t().join(
                u(),
                JoinType::Inner,
                (vec![Column::from("t.x")], vec![Column::from("u.x")]),
                Some(col("t.y").lt_eq(col("u.y"))),
            )
            .expect("join"),
            t().aggregate(vec![col("x")], vec![sum(col("y") / lit(0i64)).alias("s")])
                .expect("aggregate")
                .filter(col("s").gt(lit(5i64)).and(col("x").is_not_null()))
                .expect("having"),
            t().project(vec![(col("x") / lit(0i64)).alias("z")])
                .expect("select list"),
        ];
        for plan in fine {
            let plan = plan.build().expect("plan");
            assert!(sub_plan_is_leak_proof(&plan), "{plan}");
        }
        let refused = [
            // `z` is `x / 0`: the source evaluates it wherever it likes.
            t().project(vec![(col("x") / lit(0i64)).alias("z")])
                .expect("computed")
                .filter(col("z").eq(lit(0i64)))
                .expect("filter"),
            t().filter((col("x") / col("y")).eq(lit(1i64)))
                .expect("division"),
            t().join(
                u(),
                JoinType::Inner,
                (vec![Column::from("t.x")], vec![Column::from("u.x")]),
                Some((col("t.y") / col("u.y")).eq(lit(1i64))),
            )
            .expect("join"),
            t().filter(datafusion::functions::expr_fn::abs(col("x")).eq(lit(1i64)))
                .expect("function"),
        ];
        for plan in refused {
            let plan = plan.build().expect("plan");
            assert!(!sub_plan_is_leak_proof(&plan), "{plan}");
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
