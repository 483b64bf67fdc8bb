//! `x <op> ANY(array)` with PostgreSQL's NULL semantics.
//!
//! PostgreSQL answers `x = ANY(a)` as the OR of `x = e` over the elements:
//! true when one matches, else NULL when `x` or an element is NULL, else
//! false (false for an empty array, NULL for a NULL array). DataFusion 55
//! plans `=` as `array_has(a, x)` and the other comparisons against the
//! array's min/max, which skip NULL elements: `2 = ANY(ARRAY[1, NULL])` is
//! false, not NULL, so `NOT (2 = ANY(...))` returns a row PostgreSQL does
//! not, and a select list shows `f` for PostgreSQL's NULL.
//!
//! DataFusion's answer is right when it is true. So each `x <op> ANY(a)`
//! becomes
//!
//! ```sql
//! CASE WHEN a IS NULL THEN NULL
//!      WHEN cardinality(a) = 0 THEN false
//!      WHEN x IS NULL THEN NULL
//!      WHEN x <op> ANY(a) THEN true
//!      WHEN array_position(a, NULL) IS NOT NULL THEN NULL
//!      ELSE false END
//! ```
//!
//! except where false and NULL mean the same: a top-level conjunct of a
//! `WHERE`, `HAVING` or `JOIN ... ON` (a row is kept only when true). Those
//! stay as they are, so `id = ANY($1)` is still pushed to the source as a
//! filter. (`ALL` is planned with NULL semantics by DataFusion already.)
//!
//! The array expression is written four times in the CASE: an array built
//! by a subquery is computed up to four times, and one holding a volatile
//! call (`random()`) can differ between them. A scalar function with
//! PostgreSQL's semantics would compute it once; DataFusion 55's own
//! `array_has` is what the true branch reuses today.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::DFSchema;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{cast, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr, JoinConstraint, JoinOperator, Query, SetExpr,
    Statement, VisitMut, VisitorMut,
};

/// `x = ANY(a)` where `x` and `a`'s elements have no common type for
/// DataFusion's `array_has` but do compare as numbers: an unsigned MySQL
/// `BIGINT` against `int8[]` (`UInt64` and `Int64`, which PostgreSQL
/// compares as numerics). An analyzer rule that runs before type
/// coercion: both sides are cast to the type DataFusion compares them in
/// (`Decimal128(20, 0)` for those two), so the answer is the comparison's,
/// not an error.
#[derive(Debug, Default)]
pub struct ComparableElements;

impl AnalyzerRule for ComparableElements {
    fn analyze(
        &self,
        plan: LogicalPlan,
        _config: &ConfigOptions,
    ) -> datafusion::common::Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let inputs = node.inputs();
            let mut schema = merge_schema(&inputs);
            if let LogicalPlan::TableScan(scan) = &node {
                schema.merge(scan.projected_schema.as_ref());
            }
            node.map_expressions(|e| e.transform_up(|e| comparable(e, &schema)))
        })
        .data()
    }

    fn name(&self) -> &str {
        "tautan_comparable_array_elements"
    }
}

/// `array_has(a, x)` with both sides cast to their comparison type when
/// DataFusion's own coercion of the call would fail.
fn comparable(
    e: datafusion::logical_expr::Expr,
    schema: &DFSchema,
) -> datafusion::common::Result<Transformed<datafusion::logical_expr::Expr>> {
    use datafusion::logical_expr::Expr as L;
    let L::ScalarFunction(f) = &e else {
        return Ok(Transformed::no(e));
    };
    if f.name() != "array_has" || f.args.len() != 2 {
        return Ok(Transformed::no(e));
    }
    let (Ok(array), Ok(element)) = (f.args[0].get_type(schema), f.args[1].get_type(schema)) else {
        return Ok(Transformed::no(e));
    };
    let (DataType::List(item) | DataType::LargeList(item)) = &array else {
        return Ok(Transformed::no(e));
    };
    let pair = [item.data_type().clone(), element.clone()];
    if pair[0] == pair[1] || pair.contains(&DataType::Null) {
        return Ok(Transformed::no(e));
    }
    // `array_has` does not widen the array's element type to one holding
    // both (a `List(Int64)` is not coerced to `List(Decimal128(20, 0))` for
    // a `UInt64`); a comparison does. When only the element side needs a
    // cast, DataFusion's own coercion does it.
    let Some(common) = comparison_coercion(&pair[0], &pair[1]) else {
        return Ok(Transformed::no(e));
    };
    if common == pair[0] {
        return Ok(Transformed::no(e));
    }
    let list = match &array {
        DataType::LargeList(_) => {
            DataType::LargeList(Arc::new(Field::new_list_field(common.clone(), true)))
        }
        _ => DataType::List(Arc::new(Field::new_list_field(common.clone(), true))),
    };
    let mut call = f.clone();
    call.args = vec![
        cast(call.args[0].clone(), list),
        cast(call.args[1].clone(), common),
    ];
    Ok(Transformed::yes(L::ScalarFunction(call)))
}

/// Rewrites every `x <op> ANY(array)` of `statement` that can be NULL where
/// DataFusion says false (see the module's docs).
pub fn with_null_semantics(statement: &mut Statement) {
    // `is_some` (ANY vs SOME, the same operator) marks the comparisons that
    // stay: first none, then the filters' conjuncts.
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::AnyOp { is_some, right, .. } = e {
            if !matches!(right.as_ref(), Expr::Subquery(_)) {
                *is_some = false;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = statement.visit(&mut KeepFilterConjuncts);
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::AnyOp {
            is_some: false,
            right,
            ..
        } = e
        {
            if matches!(right.as_ref(), Expr::Subquery(_)) {
                return ControlFlow::<()>::Continue(());
            }
            let Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            } = e.clone()
            else {
                return ControlFlow::Continue(());
            };
            if let Some(safe) = null_safe(*left, compare_op, *right) {
                *e = safe;
            }
        }
        ControlFlow::Continue(())
    });
    // The marks go: the statement prints as written (ANY, not SOME).
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::AnyOp { is_some, right, .. } = e {
            if !matches!(right.as_ref(), Expr::Subquery(_)) {
                *is_some = false;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The CASE of the module's docs (`None` only if the template did not
/// parse, which a unit test rules out).
fn null_safe(left: Expr, compare_op: BinaryOperator, right: Expr) -> Option<Expr> {
    let any = Expr::AnyOp {
        left: Box::new(left.clone()),
        compare_op,
        right: Box::new(right.clone()),
        is_some: true,
    };
    crate::statement::template(
        "CASE WHEN ($2) IS NULL THEN NULL \
              WHEN cardinality($2) = 0 THEN false \
              WHEN ($1) IS NULL THEN NULL \
              WHEN $3 THEN true \
              WHEN array_position($2, NULL) IS NOT NULL THEN NULL \
              ELSE false END",
        vec![left, right, any],
    )
}

/// Marks the `ANY` comparisons that are top-level conjuncts of a filter
/// (`WHERE`, `HAVING`, `JOIN ... ON`) of every SELECT.
struct KeepFilterConjuncts;

impl VisitorMut for KeepFilterConjuncts {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        keep_in_body(query.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn keep_in_body(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            if let Some(selection) = &mut select.selection {
                keep_conjuncts(selection);
            }
            if let Some(having) = &mut select.having {
                keep_conjuncts(having);
            }
            for table in &mut select.from {
                for join in &mut table.joins {
                    if let Some(JoinConstraint::On(on)) = inner_constraint(&mut join.join_operator)
                    {
                        keep_conjuncts(on);
                    }
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            keep_in_body(left);
            keep_in_body(right);
        }
        _ => {}
    }
}

/// The constraint of an inner join (an outer join's ON decides which rows
/// are padded with NULLs, where false and NULL also agree; but only inner
/// joins are needed for pushdown).
fn inner_constraint(op: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    match op {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => Some(c),
        _ => None,
    }
}

fn keep_conjuncts(e: &mut Expr) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            keep_conjuncts(left);
            keep_conjuncts(right);
        }
        Expr::Nested(inner) => keep_conjuncts(inner),
        Expr::AnyOp { is_some, .. } => *is_some = true,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            sql,
        )
        .expect("parses");
        with_null_semantics(&mut statements[0]);
        statements[0].to_string()
    }

    #[test]
    fn filters_keep_any_and_every_other_place_gets_the_null_safe_form() {
        let kept = rewritten("SELECT a FROM t WHERE a = ANY($1) AND b > 0");
        assert!(!kept.contains("CASE"), "{kept}");
        for sql in [
            "SELECT a = ANY(ARRAY[1, NULL]) FROM t",
            "SELECT a FROM t WHERE NOT (a = ANY($1))",
            "SELECT a FROM t WHERE a = ANY($1) OR b = 1",
            "SELECT a FROM t WHERE (a > ANY($1)) IS NULL",
        ] {
            let out = rewritten(sql);
            assert!(out.contains("CASE WHEN"), "{sql}: {out}");
            assert!(out.contains("array_position"), "{sql}: {out}");
        }
        let subquery = rewritten("SELECT a = ANY(SELECT b FROM u) FROM t");
        assert!(!subquery.contains("CASE"), "{subquery}");
    }
}
