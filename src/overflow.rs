//! Arithmetic that fails on overflow, as PostgreSQL's does.
//!
//! DataFusion evaluates integer `+`, `-` and `*` with Arrow's wrapping kernels:
//! `bigint_column + 1` at `9223372036854775807` answered
//! `-9223372036854775808`, a wrong answer with no error. PostgreSQL raises
//! 22003 (`bigint out of range`). [`CheckedArithmetic`], the last physical
//! optimizer rule, turns every such operator evaluated in tautan (in a
//! projection or a filter) into its checked form, whose overflow is an
//! error ([`crate::error`] maps it to 22003). Arithmetic sent to a source is
//! checked by the source itself. Constant arithmetic is folded while
//! planning, by DataFusion's simplifier with the wrapping kernels, before
//! any physical rule runs: [`CheckedConstants`], an analyzer rule after
//! type coercion, evaluates each constant `+`, `-`, `*` with the checked
//! kernels first, so `9223372036854775807::bigint + 1` is the same error.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;

/// `expr` (over rows of `schema`) with every integer `+`, `-`, `*`
/// failing on overflow. Only integers: a float overflows to infinity
/// either way, and a decimal result's precision, not the i128 holding it,
/// is what bounds it (checked decimal kernels cost time for nothing).
fn checked(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let any: &dyn Any = e.as_ref();
        let Some(b) = any.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        let integers = b.left().data_type(schema).is_ok_and(|t| t.is_integer())
            && b.right().data_type(schema).is_ok_and(|t| t.is_integer());
        if !integers
            || !matches!(
                b.op(),
                Operator::Plus | Operator::Minus | Operator::Multiply
            )
        {
            return Ok(Transformed::no(e));
        }
        let strict = BinaryExpr::new(Arc::clone(b.left()), *b.op(), Arc::clone(b.right()))
            .with_fail_on_overflow(true);
        Ok(Transformed::yes(Arc::new(strict) as Arc<dyn PhysicalExpr>))
    })
}

/// The physical optimizer rule: projections and filters evaluate `+`, `-`
/// and `*` with overflow checks.
#[derive(Debug, Default)]
pub struct CheckedArithmetic;

impl PhysicalOptimizerRule for CheckedArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let any: &dyn Any = node.as_ref();
            if let Some(p) = any.downcast_ref::<ProjectionExec>() {
                let mut changed = false;
                let mut exprs = Vec::with_capacity(p.expr().len());
                let input = p.input().schema();
                for e in p.expr() {
                    let t = checked(&e.expr, &input)?;
                    changed |= t.transformed;
                    exprs.push(ProjectionExpr {
                        expr: t.data,
                        alias: e.alias.clone(),
                    });
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let schema = p.schema();
                let strict = ProjectionExec::try_new_with_schema_metadata(
                    exprs,
                    Arc::clone(p.input()),
                    schema.as_ref(),
                )?;
                return Ok(Transformed::yes(Arc::new(strict) as Arc<dyn ExecutionPlan>));
            }
            if let Some(f) = any.downcast_ref::<FilterExec>() {
                let t = checked(f.predicate(), &f.input().schema())?;
                if !t.transformed {
                    return Ok(Transformed::no(node));
                }
                let strict = FilterExecBuilder::from(f).with_predicate(t.data).build()?;
                return Ok(Transformed::yes(Arc::new(strict) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .data()
    }

    fn name(&self) -> &str {
        "tautan_checked_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `e` is `+`, `-` or `*` over constants only (no column, no
/// parameter, nothing volatile): what the simplifier will fold.
fn constant_arithmetic(e: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::logical_expr::Expr;
    let Expr::BinaryExpr(b) = e else {
        return false;
    };
    if !matches!(b.op, Operator::Plus | Operator::Minus | Operator::Multiply) {
        return false;
    }
    let mut constant = true;
    let _ = e.apply(|x| {
        if matches!(
            x,
            Expr::Column(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
                | Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
        ) || x.is_volatile_node()
        {
            constant = false;
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    constant
}

/// Evaluates constant `e` with the checked kernels: `Err` when it
/// overflows (other failures are left to the simplifier, which reports
/// them as it always has).
fn check_constant(e: &datafusion::logical_expr::Expr) -> Result<()> {
    use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
    use datafusion::common::DFSchema;
    use datafusion::execution::context::ExecutionProps;
    let Ok(physical) = datafusion::physical_expr::create_physical_expr(
        e,
        &DFSchema::empty(),
        &ExecutionProps::new(),
        &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
    ) else {
        return Ok(());
    };
    let strict = checked(&physical, &Schema::empty())?.data;
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    match strict.evaluate(&one_row) {
        Err(err)
            if matches!(
                err.find_root(),
                datafusion::error::DataFusionError::ArrowError(a, _)
                    if matches!(a.as_ref(), datafusion::arrow::error::ArrowError::ArithmeticOverflow(_))
            ) =>
        {
            Err(err)
        }
        _ => Ok(()),
    }
}

/// The analyzer rule: constant `+`, `-`, `*` that overflow are an error
/// before the simplifier folds them into a wrapped value.
#[derive(Debug, Default)]
pub struct CheckedConstants;

impl datafusion::optimizer::AnalyzerRule for CheckedConstants {
    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &ConfigOptions,
    ) -> Result<datafusion::logical_expr::LogicalPlan> {
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|x| {
                    if constant_arithmetic(x) {
                        check_constant(x)?;
                    }
                    Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
                })
            })
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "tautan_checked_constants"
    }
}
