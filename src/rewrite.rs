//! Rewriting every expression of a logical plan, bottom up, with the
//! schema its node reads: the walk tautan's analyzer rules before type
//! coercion share ([`crate::numeric::FloatOverNumeric`],
//! [`crate::math::RealAsDouble`], [`crate::age::TimestampDifferences`]) and
//! after it ([`crate::overflow::CheckedConstants`], [`crate::pg_text::TextCasts`]).
//!
//! A rewritten expression keeps its name (DataFusion's
//! [`NamePreserver`]): a projection above an aggregate finds
//! `max(f8 * 0.5)` by the name the aggregate gave it, so an aggregate
//! whose argument a rule rewrote must still answer to that name.

use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// `plan` with `f` applied to every expression, innermost first, in every
/// node and subquery; `f` is given the schema the node's expressions read
/// (its inputs', or a scan's own).
pub fn expressions_bottom_up(
    plan: LogicalPlan,
    mut f: impl FnMut(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let inputs = node.inputs();
        let mut schema = datafusion::logical_expr::utils::merge_schema(&inputs);
        if let LogicalPlan::TableScan(scan) = &node {
            schema.merge(scan.projected_schema.as_ref());
        }
        let names = NamePreserver::new(&node);
        node.map_expressions(|e| {
            let name = names.save(&e);
            Ok(e.transform_up(|e| f(e, &schema))?
                .update_data(|e| name.restore(e)))
        })
    })
    .data()
}
