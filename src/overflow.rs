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
//! Floats: PostgreSQL raises 22003 where finite operands overflow to
//! infinity (`1e308 * 10`) and 22012 for a division by zero; DataFusion
//! answered `Infinity`. [`FiniteFloat`] checks the result of each float
//! operator evaluated in tautan (infinite operands stay allowed, as in
//! PostgreSQL: `'Infinity'::float8 * 2` is `Infinity`).

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
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
/// failing on overflow, and every float `+`, `-`, `*`, `/` failing where
/// finite operands give an infinite result ([`FiniteFloat`]). Decimals
/// are left alone: a decimal result's precision, not the i128 holding it,
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
        let both = |f: fn(&DataType) -> bool| {
            b.left().data_type(schema).is_ok_and(|t| f(&t))
                && b.right().data_type(schema).is_ok_and(|t| f(&t))
        };
        let arithmetic = matches!(
            b.op(),
            Operator::Plus | Operator::Minus | Operator::Multiply
        );
        if both(DataType::is_floating) && (arithmetic || *b.op() == Operator::Divide) {
            return Ok(Transformed::yes(Arc::new(FiniteFloat {
                inner: Arc::clone(&e),
            }) as Arc<dyn PhysicalExpr>));
        }
        if !both(DataType::is_integer) || !arithmetic {
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

/// Whether `e` is `+`, `-`, `*` or `/` over constants only (no column,
/// no parameter, nothing volatile): what the simplifier will fold.
fn constant_arithmetic(e: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::logical_expr::Expr;
    let Expr::BinaryExpr(b) = e else {
        return false;
    };
    if !matches!(
        b.op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
    ) {
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
/// overflows or divides by zero (other failures are left to the
/// simplifier, which reports them as it always has).
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
                    if matches!(
                        a.as_ref(),
                        datafusion::arrow::error::ArrowError::ArithmeticOverflow(_)
                            | datafusion::arrow::error::ArrowError::DivideByZero
                    )
            ) =>
        {
            Err(err)
        }
        _ => Ok(()),
    }
}

/// The analyzer rule: constant `+`, `-`, `*`, `/` that overflow (or divide
/// a float by zero) are an error before the simplifier folds them into a
/// wrapped value or an infinity.
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
                        // The whole constant subtree at once: its parts
                        // are evaluated inside it (checking each nested
                        // one again was cubic in a 1000-deep `+ 0` chain).
                        check_constant(x)?;
                        return Ok(datafusion::common::tree_node::TreeNodeRecursion::Jump);
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

/// A float `+`, `-`, `*` or `/` whose result must be finite wherever its
/// operands are (PostgreSQL's `float_overflow_error`,
/// `float_zero_divide_error`). The operands are evaluated again only for a
/// batch whose result holds an infinity or NaN, so finite answers cost one
/// scan of the result, in place.
#[derive(Debug, Eq)]
pub struct FiniteFloat {
    inner: Arc<dyn PhysicalExpr>,
}

// By hand, as DataFusion's own expressions do (rust-lang/rust#78808).
impl PartialEq for FiniteFloat {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner)
    }
}

impl std::hash::Hash for FiniteFloat {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl std::fmt::Display for FiniteFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// Whether every non-NULL value of `v` is finite, read in place (the
/// check every batch of a float operator pays).
fn all_finite(v: &datafusion::logical_expr::ColumnarValue) -> bool {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float32Type, Float64Type};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ColumnarValue;
    match v {
        ColumnarValue::Scalar(ScalarValue::Float64(x)) => x.is_none_or(f64::is_finite),
        ColumnarValue::Scalar(ScalarValue::Float32(x)) => x.is_none_or(f32::is_finite),
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Float64 => a
                .as_primitive::<Float64Type>()
                .iter()
                .all(|x| x.is_none_or(f64::is_finite)),
            DataType::Float32 => a
                .as_primitive::<Float32Type>()
                .iter()
                .all(|x| x.is_none_or(f32::is_finite)),
            _ => true,
        },
        _ => true,
    }
}

/// `v` as f64 values, NULL as 0 (for the rare batch that holds a
/// non-finite value).
fn floats(v: datafusion::logical_expr::ColumnarValue, rows: usize) -> Result<Vec<f64>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Float64Type;
    let array = v.into_array(rows)?;
    let wide = datafusion::arrow::compute::cast(&array, &DataType::Float64)?;
    let values = wide.as_primitive::<Float64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                0.0
            } else {
                values.value(i)
            }
        })
        .collect())
}

impl PhysicalExpr for FiniteFloat {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn evaluate(
        &self,
        batch: &datafusion::arrow::record_batch::RecordBatch,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::error::ArrowError;
        use datafusion::error::DataFusionError;
        let out = self.inner.evaluate(batch)?;
        if all_finite(&out) {
            return Ok(out);
        }
        let rows = batch.num_rows().max(1);
        let results = floats(out.clone(), rows)?;
        let any: &dyn Any = self.inner.as_ref();
        let Some(b) = any.downcast_ref::<BinaryExpr>() else {
            return Ok(out);
        };
        let left = floats(b.left().evaluate(batch)?, rows)?;
        let right = floats(b.right().evaluate(batch)?, rows)?;
        for ((r, l), x) in results.iter().zip(&left).zip(&right) {
            if r.is_finite() || !l.is_finite() || !x.is_finite() {
                continue;
            }
            if *b.op() == Operator::Divide && *x == 0.0 {
                return Err(DataFusionError::ArrowError(
                    Box::new(ArrowError::DivideByZero),
                    None,
                ));
            }
            return Err(DataFusionError::ArrowError(
                Box::new(ArrowError::ArithmeticOverflow(
                    "value out of range: overflow".into(),
                )),
                None,
            ));
        }
        Ok(out)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        match children.into_iter().next() {
            Some(inner) => Ok(Arc::new(FiniteFloat { inner })),
            None => Err(datafusion::error::DataFusionError::Internal(
                "FiniteFloat has one child".into(),
            )),
        }
    }

    fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt_sql(f)
    }
}
