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
//! PostgreSQL: `'Infinity'::float8 * 2` is `Infinity`). It checks the float
//! functions PostgreSQL refuses arguments or results of in the same way:
//! `ln(0)` is 2201E, `sqrt(-1)` and `power(0, -1)` 2201F, `exp(1000)` and
//! `acos(2)` 22003 (DataFusion answered `-Infinity`, `NaN`, `Infinity`),
//! and float results that underflow to zero (`1e-300 * 1e-300`) are 22003.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Literal, NegativeExpr};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;

use crate::error::QueryError;

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
        if let Some(f) = any.downcast_ref::<ScalarFunctionExpr>() {
            return Ok(match FloatCheck::of_function(f.name(), f.return_type()) {
                Some(check) => Transformed::yes(Arc::new(FiniteFloat {
                    inner: Arc::clone(&e),
                    check,
                }) as Arc<dyn PhysicalExpr>),
                None => Transformed::no(e),
            });
        }
        if let Some(n) = any.downcast_ref::<NegativeExpr>() {
            // `-x` of the smallest integer: 22003, as `0 - x` checked.
            let Ok(t) = n.arg().data_type(schema) else {
                return Ok(Transformed::no(e));
            };
            if !t.is_integer() {
                return Ok(Transformed::no(e));
            }
            let zero = ScalarValue::new_zero(&t)?;
            let strict = BinaryExpr::new(
                Arc::new(Literal::new(zero)),
                Operator::Minus,
                Arc::clone(n.arg()),
            )
            .with_fail_on_overflow(true);
            return Ok(Transformed::yes(Arc::new(strict) as Arc<dyn PhysicalExpr>));
        }
        if let Some(c) = any.downcast_ref::<CastExpr>() {
            // A fraction cast to an integer rounds, as in PostgreSQL.
            let from = c.expr().data_type(schema)?;
            if RoundingCast::applies(&from, c.cast_type()) {
                return Ok(Transformed::yes(Arc::new(RoundingCast {
                    input: Arc::clone(c.expr()),
                    to: c.cast_type().clone(),
                })
                    as Arc<dyn PhysicalExpr>));
            }
            return Ok(Transformed::no(e));
        }
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
                check: FloatCheck::Operator(*b.op()),
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

/// `aggregate` with its aggregates' arguments checked, where it evaluates
/// them over input rows (not where it merges partial states):
/// `max(f8 * 2)` raised nothing where a product overflowed to infinity,
/// and `max` of the others answered as if that row were not there.
fn checked_aggregate(aggregate: &AggregateExec) -> Result<Option<AggregateExec>> {
    let reads_rows = matches!(
        aggregate.mode(),
        AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
    );
    if !reads_rows {
        return Ok(None);
    }
    let input = aggregate.input_schema();
    let mut changed = false;
    let mut exprs = Vec::with_capacity(aggregate.aggr_expr().len());
    for e in aggregate.aggr_expr() {
        let mut args = Vec::new();
        for arg in e.expressions() {
            let t = checked(&arg, &input)?;
            changed |= t.transformed;
            args.push(t.data);
        }
        let order_by = e.order_bys().iter().map(|s| Arc::clone(&s.expr)).collect();
        match e.with_new_expressions(args, order_by) {
            Some(strict) => exprs.push(Arc::new(strict)),
            None => exprs.push(Arc::clone(e)),
        }
    }
    Ok(changed.then(|| aggregate.with_new_aggr_exprs(exprs)))
}

/// The physical optimizer rule: projections, filters and the arguments of
/// aggregates evaluate `+`, `-` and `*` with overflow checks.
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
            if let Some(a) = any.downcast_ref::<AggregateExec>() {
                return Ok(match checked_aggregate(a)? {
                    Some(strict) => Transformed::yes(Arc::new(strict) as Arc<dyn ExecutionPlan>),
                    None => Transformed::no(node),
                });
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

/// Whether `e` is `+`, `-`, `*`, `/` or a checked float function
/// ([`FloatCheck`]) over constants only (no column, no parameter, nothing
/// volatile): what the simplifier will fold.
fn constant_arithmetic(e: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::logical_expr::Expr;
    let checked = match e {
        Expr::BinaryExpr(b) => matches!(
            b.op,
            Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
        ),
        // Its return type is not known here; a function that is not a
        // float's is left alone when the check is built.
        Expr::ScalarFunction(f) => FloatCheck::of_function(f.name(), &DataType::Float64).is_some(),
        _ => false,
    };
    checked && is_constant(e)
}

/// Whether `e` holds no column, parameter, subquery, aggregate or
/// volatile function: what the simplifier folds.
fn is_constant(e: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::logical_expr::Expr;
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

/// Constant `e` as a physical expression with the checked kernels
/// ([`checked`]); `None` when it cannot be planned without a schema.
fn checked_constant(e: &datafusion::logical_expr::Expr) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    use datafusion::common::DFSchema;
    use datafusion::execution::context::ExecutionProps;
    let Ok(physical) = datafusion::physical_expr::create_physical_expr(
        e,
        &DFSchema::empty(),
        &ExecutionProps::new(),
        &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
    ) else {
        return Ok(None);
    };
    Ok(Some(checked(&physical, &Schema::empty())?.data))
}

/// The one row, of no columns, a constant is evaluated over.
fn one_row() -> Result<datafusion::arrow::record_batch::RecordBatch> {
    use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?)
}

/// Evaluates constant `e` with the checked kernels: `Err` when it
/// overflows or divides by zero (other failures are left to the
/// simplifier, which reports them as it always has).
fn check_constant(e: &datafusion::logical_expr::Expr) -> Result<()> {
    let Some(strict) = checked_constant(e)? else {
        return Ok(());
    };
    match strict.evaluate(&one_row()?) {
        Err(err @ datafusion::error::DataFusionError::External(_)) => Err(err),
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

/// A constant fraction cast to an integer (`1.5::int`), rounded as
/// [`RoundingCast`] rounds it, as a literal: the simplifier would fold it
/// with Arrow's cast, which truncates (`1`, where PostgreSQL answers `2`).
fn round_constant_cast(
    e: datafusion::logical_expr::Expr,
) -> Result<Transformed<datafusion::logical_expr::Expr>> {
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::{Expr, ExprSchemable};
    let Expr::Cast(cast) = &e else {
        return Ok(Transformed::no(e));
    };
    let from = cast.expr.get_type(&DFSchema::empty());
    if !from.is_ok_and(|from| RoundingCast::applies(&from, cast.field.data_type()))
        || !is_constant(&cast.expr)
    {
        return Ok(Transformed::no(e));
    }
    let Some(rounding) = checked_constant(&e)? else {
        return Ok(Transformed::no(e));
    };
    let value = rounding.evaluate(&one_row()?)?.into_array(1)?;
    let value = ScalarValue::try_from_array(&value, 0)?;
    Ok(Transformed::yes(Expr::Literal(value, None)))
}

/// The analyzer rule: constant `+`, `-`, `*`, `/` that overflow (or divide
/// a float by zero) are an error before the simplifier folds them into a
/// wrapped value or an infinity; a constant fraction cast to an integer is
/// rounded ([`round_constant_cast`]).
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
        crate::rewrite::expressions_bottom_up(plan, |e, _| round_constant_cast(e))
    }

    fn name(&self) -> &str {
        "tautan_checked_constants"
    }
}

/// What a float operator or function evaluated in tautan must refuse, as
/// PostgreSQL's `float.c` does: results that overflow or underflow their
/// finite operands, and arguments outside a function's domain (DataFusion
/// answered `-Infinity` for `ln(0)`, `NaN` for `sqrt(-1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FloatCheck {
    /// `+`, `-`, `*`, `/`.
    Operator(Operator),
    /// `ln`, `log` and `log10` of one argument.
    Log,
    /// `sqrt`.
    Sqrt,
    /// `exp`.
    Exp,
    /// `power`/`pow`.
    Power,
    /// `acos`, `asin` (the domain is -1..1).
    UnitDomain,
    /// `acosh` (1 and above).
    Acosh,
    /// `atanh` (-1..1, both ends infinite).
    Atanh,
    /// `degrees`, `radians`: a multiplication.
    Scale,
}

impl FloatCheck {
    /// The check for the function `name` returning `returns`, if it has one.
    fn of_function(name: &str, returns: &DataType) -> Option<Self> {
        if !returns.is_floating() {
            return None;
        }
        Some(match name {
            "ln" | "log" | "log10" => FloatCheck::Log,
            "sqrt" => FloatCheck::Sqrt,
            "exp" => FloatCheck::Exp,
            "power" | "pow" => FloatCheck::Power,
            "acos" | "asin" => FloatCheck::UnitDomain,
            "acosh" => FloatCheck::Acosh,
            "atanh" => FloatCheck::Atanh,
            "degrees" | "radians" => FloatCheck::Scale,
            _ => return None,
        })
    }

    /// Whether a batch whose results are all finite needs no look at its
    /// arguments: a zero result can be an underflow for these.
    fn zero_is_suspect(self) -> bool {
        matches!(
            self,
            FloatCheck::Operator(Operator::Multiply | Operator::Divide)
                | FloatCheck::Exp
                | FloatCheck::Power
                | FloatCheck::Scale
                // `log(0, x)` is -0 in DataFusion.
                | FloatCheck::Log
        )
    }

    /// PostgreSQL's error for `args` giving `result`, if it raises one.
    fn violation(self, result: f64, args: &[f64]) -> Option<QueryError> {
        let overflow = || QueryError::new("22003", "value out of range: overflow");
        let underflow = || QueryError::new("22003", "value out of range: underflow");
        let out_of_range = || QueryError::new("22003", "input is out of range");
        let finite = args.iter().all(|a| a.is_finite());
        if args.iter().any(|a| a.is_nan()) {
            // NaN in, NaN out, everywhere in PostgreSQL but `0/0`.
            return None;
        }
        match (self, args) {
            (FloatCheck::Operator(Operator::Divide), [l, r]) => {
                if *r == 0.0 {
                    Some(QueryError::new("22012", "division by zero"))
                } else if result.is_infinite() && finite {
                    Some(overflow())
                } else if result == 0.0 && *l != 0.0 && r.is_finite() {
                    Some(underflow())
                } else {
                    None
                }
            }
            (FloatCheck::Operator(Operator::Multiply), [l, r]) => {
                if result.is_infinite() && finite {
                    Some(overflow())
                } else if result == 0.0 && *l != 0.0 && *r != 0.0 {
                    Some(underflow())
                } else {
                    None
                }
            }
            (FloatCheck::Operator(_), _) => (result.is_infinite() && finite).then(overflow),
            (FloatCheck::Log, [base, _]) if *base == 1.0 => {
                Some(QueryError::new("22012", "division by zero"))
            }
            (FloatCheck::Log, args) => {
                if args.contains(&0.0) {
                    Some(QueryError::new("2201E", "cannot take logarithm of zero"))
                } else if args.iter().any(|x| *x < 0.0) {
                    Some(QueryError::new(
                        "2201E",
                        "cannot take logarithm of a negative number",
                    ))
                } else {
                    None
                }
            }
            (FloatCheck::Sqrt, [x]) => (*x < 0.0)
                .then(|| QueryError::new("2201F", "cannot take square root of a negative number")),
            (FloatCheck::Exp, [_]) if finite => {
                if result.is_infinite() {
                    Some(overflow())
                } else if result == 0.0 {
                    Some(underflow())
                } else {
                    None
                }
            }
            (FloatCheck::Power, [x, y]) => {
                if *x == 0.0 && *y < 0.0 {
                    Some(QueryError::new(
                        "2201F",
                        "zero raised to a negative power is undefined",
                    ))
                } else if *x < 0.0 && y.floor() != *y {
                    Some(QueryError::new(
                        "2201F",
                        "a negative number raised to a non-integer power yields a complex result",
                    ))
                } else if finite && result.is_infinite() {
                    Some(overflow())
                } else if finite && result == 0.0 && *x != 0.0 {
                    Some(underflow())
                } else {
                    None
                }
            }
            (FloatCheck::UnitDomain, [x]) => (!(-1.0..=1.0).contains(x)).then(out_of_range),
            (FloatCheck::Acosh, [x]) => (*x < 1.0).then(out_of_range),
            (FloatCheck::Atanh, [x]) => (!(-1.0..=1.0).contains(x)).then(out_of_range),
            (FloatCheck::Scale, [x]) if finite => {
                if result.is_infinite() {
                    Some(overflow())
                } else if result == 0.0 && *x != 0.0 {
                    Some(underflow())
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// A float operator or function whose result PostgreSQL would have refused
/// ([`FloatCheck`]). The arguments are evaluated again only for a batch
/// whose results hold a value that can be a refusal (an infinity or NaN,
/// or a zero where that can be an underflow), so ordinary answers cost one
/// scan of the result, in place.
#[derive(Debug, Eq)]
pub struct FiniteFloat {
    inner: Arc<dyn PhysicalExpr>,
    check: FloatCheck,
}

// By hand, as DataFusion's own expressions do (rust-lang/rust#78808).
impl PartialEq for FiniteFloat {
    fn eq(&self, other: &Self) -> bool {
        self.inner.eq(&other.inner) && self.check == other.check
    }
}

impl std::hash::Hash for FiniteFloat {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.check.hash(state);
    }
}

impl std::fmt::Display for FiniteFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// Whether no value of `v` can be a refusal: every non-NULL value finite
/// (and, where `zero` says so, non-zero), read in place (the check every
/// batch pays).
fn unsuspicious(v: &datafusion::logical_expr::ColumnarValue, zero: bool) -> bool {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float32Type, Float64Type};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ColumnarValue;
    let fine64 = |x: f64| x.is_finite() && !(zero && x == 0.0);
    let fine32 = |x: f32| x.is_finite() && !(zero && x == 0.0);
    match v {
        ColumnarValue::Scalar(ScalarValue::Float64(x)) => x.is_none_or(fine64),
        ColumnarValue::Scalar(ScalarValue::Float32(x)) => x.is_none_or(fine32),
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Float64 => a
                .as_primitive::<Float64Type>()
                .iter()
                .all(|x| x.is_none_or(fine64)),
            DataType::Float32 => a
                .as_primitive::<Float32Type>()
                .iter()
                .all(|x| x.is_none_or(fine32)),
            _ => true,
        },
        _ => true,
    }
}

/// `v` as f64 values, `None` for NULL (for the rare batch that needs its
/// arguments looked at).
fn floats(v: datafusion::logical_expr::ColumnarValue, rows: usize) -> Result<Vec<Option<f64>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Float64Type;
    let array = v.into_array(rows)?;
    let wide = datafusion::arrow::compute::cast(&array, &DataType::Float64)?;
    let values = wide.as_primitive::<Float64Type>();
    Ok((0..values.len())
        .map(|i| (!values.is_null(i)).then(|| values.value(i)))
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
        let out = self.inner.evaluate(batch)?;
        if unsuspicious(&out, self.check.zero_is_suspect()) {
            return Ok(out);
        }
        let rows = batch.num_rows().max(1);
        let results = floats(out.clone(), rows)?;
        let args = self
            .inner
            .children()
            .into_iter()
            .map(|a| floats(a.evaluate(batch)?, rows))
            .collect::<Result<Vec<_>>>()?;
        let mut row_args = Vec::with_capacity(args.len());
        for (i, result) in results.iter().enumerate() {
            let Some(result) = result else { continue };
            row_args.clear();
            for a in &args {
                match a.get(i).copied().flatten() {
                    Some(x) => row_args.push(x),
                    None => break,
                }
            }
            if row_args.len() != args.len() {
                continue;
            }
            if let Some(error) = self.check.violation(*result, &row_args) {
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    error,
                )));
            }
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
            Some(inner) => Ok(Arc::new(FiniteFloat {
                inner,
                check: self.check,
            })),
            None => Err(datafusion::error::DataFusionError::Internal(
                "FiniteFloat has one child".into(),
            )),
        }
    }

    fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt_sql(f)
    }
}

/// A float or decimal cast to an integer type, rounded as PostgreSQL
/// rounds it (DataFusion truncated: `1.5::numeric::int` was 1 where
/// PostgreSQL answers 2): a decimal half away from zero (`numeric` to
/// `int`), a float half to even (`float8` to `int`, C's `rint`). A value
/// outside the integer type is 22003.
#[derive(Debug, Eq)]
pub struct RoundingCast {
    input: Arc<dyn PhysicalExpr>,
    to: DataType,
}

impl PartialEq for RoundingCast {
    fn eq(&self, other: &Self) -> bool {
        self.input.eq(&other.input) && self.to == other.to
    }
}

impl std::hash::Hash for RoundingCast {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.to.hash(state);
    }
}

impl std::fmt::Display for RoundingCast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CAST({} AS {})", self.input, self.to)
    }
}

impl RoundingCast {
    /// Whether a cast `from` → `to` needs rounding.
    fn applies(from: &DataType, to: &DataType) -> bool {
        to.is_integer() && (from.is_floating() || matches!(from, DataType::Decimal128(..)))
    }

    /// `values` rounded to whole numbers, still in their own type.
    fn round(
        values: &datafusion::arrow::array::ArrayRef,
    ) -> Result<datafusion::arrow::array::ArrayRef> {
        use datafusion::arrow::array::{AsArray, Decimal128Array};
        use datafusion::arrow::datatypes::{Decimal128Type, Float32Type, Float64Type};
        Ok(match values.data_type() {
            DataType::Float64 => Arc::new(
                values
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(f64::round_ties_even),
            ) as _,
            DataType::Float32 => Arc::new(
                values
                    .as_primitive::<Float32Type>()
                    .unary::<_, Float32Type>(f32::round_ties_even),
            ) as _,
            DataType::Decimal128(_, s) if *s > 0 => {
                let unit = 10i128.pow(*s as u32);
                let rounded: Decimal128Array = values
                    .as_primitive::<Decimal128Type>()
                    .unary::<_, Decimal128Type>(|v| {
                    let (q, r) = (v / unit, v % unit);
                    let q = if r.abs() * 2 >= unit {
                        q + v.signum()
                    } else {
                        q
                    };
                    q * unit
                });
                // Rounding up may need one more digit (99.5 → 100.0).
                Arc::new(rounded.with_precision_and_scale(38, *s)?) as _
            }
            _ => Arc::clone(values),
        })
    }
}

impl PhysicalExpr for RoundingCast {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(self.to.clone())
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.input.nullable(input_schema)
    }

    fn evaluate(
        &self,
        batch: &datafusion::arrow::record_batch::RecordBatch,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::compute::{cast_with_options, CastOptions};
        use datafusion::logical_expr::ColumnarValue;
        let value = self.input.evaluate(batch)?;
        let scalar = matches!(value, ColumnarValue::Scalar(_));
        let array = value.into_array(batch.num_rows().max(1))?;
        let rounded = Self::round(&array)?;
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let cast = cast_with_options(&rounded, &self.to, &options).map_err(|_| {
            let name = match self.to {
                DataType::Int16 | DataType::Int8 => "smallint",
                DataType::Int32 => "integer",
                _ => "bigint",
            };
            datafusion::error::DataFusionError::External(Box::new(QueryError::new(
                "22003",
                format!("{name} out of range"),
            )))
        })?;
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &cast, 0,
            )?));
        }
        Ok(ColumnarValue::Array(cast))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        match children.into_iter().next() {
            Some(input) => Ok(Arc::new(RoundingCast {
                input,
                to: self.to.clone(),
            })),
            None => Err(datafusion::error::DataFusionError::Internal(
                "RoundingCast has one child".into(),
            )),
        }
    }

    fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CAST(")?;
        self.input.fmt_sql(f)?;
        write!(f, " AS {})", self.to)
    }
}
