//! Aggregates that answer as PostgreSQL's do.
//!
//! [`ExactSum`] replaces DataFusion's `sum`. DataFusion sums a `bigint`
//! column into a `bigint` with wrapping addition: two rows of
//! `9223372036854775807` summed to `-2`, a wrong answer with no error.
//! PostgreSQL's `sum(bigint)` is `numeric` and exact. `ExactSum` gives
//! `sum` of a 64-bit integer the type `numeric` (`Decimal128(38, 0)`, which
//! holds the sum of 2^63 rows of the largest `bigint`) and of a smaller
//! integer `bigint`, as PostgreSQL types them, and otherwise is
//! DataFusion's own `sum`: its accumulators do the adding, fed values cast
//! to the result's type. The argument itself is not coerced (no cast
//! appears in the plan or in the SQL sent to a source, where the source's
//! own `sum` has the same types).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::functions_aggregate::sum::Sum;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature, Volatility,
};

/// `sum` with PostgreSQL's result types for integers; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactSum {
    inner: Sum,
    signature: Signature,
}

impl ExactSum {
    /// The `sum` to register in place of DataFusion's.
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::new_from_impl(ExactSum {
            inner: Sum::new(),
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }
}

/// The type DataFusion's `sum` adds in for an argument of type `arg`
/// (`None`: the argument's own type needs no cast).
fn summed_as(arg: &DataType) -> Option<DataType> {
    match arg {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Some(DataType::Int64),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Some(DataType::UInt64),
        DataType::Int64 | DataType::UInt64 => Some(DataType::Decimal128(38, 0)),
        _ => None,
    }
}

/// `args` with the argument's field cast to `to` and the result `to`.
fn cast_args<'a>(args: &AccumulatorArgs<'a>, fields: &'a [FieldRef]) -> AccumulatorArgs<'a> {
    AccumulatorArgs {
        return_field: Arc::clone(&args.return_field),
        schema: args.schema,
        ignore_nulls: args.ignore_nulls,
        order_bys: args.order_bys,
        is_reversed: args.is_reversed,
        name: args.name,
        is_distinct: args.is_distinct,
        exprs: args.exprs,
        expr_fields: fields,
    }
}

impl AggregateUDFImpl for ExactSum {
    fn name(&self) -> &str {
        "sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Integers as they are (their result type is chosen in
    /// [`Self::return_type`]); everything else as DataFusion's `sum`
    /// coerces it.
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if let [t] = arg_types {
            if t.is_integer() {
                return Ok(vec![t.clone()]);
            }
            if *t == DataType::Null {
                return Ok(vec![DataType::Int64]);
            }
        }
        let fields: Vec<FieldRef> = arg_types
            .iter()
            .map(|t| Arc::new(Field::new("x", t.clone(), true)))
            .collect();
        let inner = AggregateUDF::new_from_impl(Sum::new());
        let coerced =
            datafusion::logical_expr::type_coercion::functions::fields_with_udf(&fields, &inner)?;
        Ok(coerced.iter().map(|f| f.data_type().clone()).collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => match summed_as(t) {
                Some(wide) => Ok(wide),
                None => self.inner.return_type(arg_types),
            },
            _ => self.inner.return_type(arg_types),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some((fields, to)) = widened(&args) else {
            return self.inner.accumulator(args);
        };
        let inner = self.inner.accumulator(cast_args(&args, &fields))?;
        Ok(Box::new(CastInput { inner, to }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let Some((fields, to)) = widened(&args) else {
            return self.inner.create_groups_accumulator(args);
        };
        let inner = self
            .inner
            .create_groups_accumulator(cast_args(&args, &fields))?;
        Ok(Box::new(CastGroupsInput { inner, to }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some((fields, to)) = widened(&args) else {
            return self.inner.create_sliding_accumulator(args);
        };
        let inner = self
            .inner
            .create_sliding_accumulator(cast_args(&args, &fields))?;
        Ok(Box::new(CastInput { inner, to }))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        ScalarValue::try_from(data_type)
    }
}

/// For an integer argument: the argument's field as the accumulator sees
/// it (cast to the result type) and that type.
fn widened(args: &AccumulatorArgs) -> Option<(Vec<FieldRef>, DataType)> {
    let [field] = args.expr_fields else {
        return None;
    };
    let to = summed_as(field.data_type())?;
    let cast = Arc::new(Field::new(field.name(), to.clone(), field.is_nullable()));
    Some((vec![cast], to))
}

/// Each value array cast to `to`.
fn cast_all(values: &[ArrayRef], to: &DataType) -> Result<Vec<ArrayRef>> {
    values
        .iter()
        .map(|v| Ok(datafusion::arrow::compute::cast(v, to)?))
        .collect()
}

/// An accumulator fed its input cast to the type it adds in.
#[derive(Debug)]
struct CastInput {
    inner: Box<dyn Accumulator>,
    to: DataType,
}

impl Accumulator for CastInput {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(&cast_all(values, &self.to)?)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()
    }

    fn size(&self) -> usize {
        self.inner.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(&cast_all(values, &self.to)?)
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// A groups accumulator fed its input cast to the type it adds in.
struct CastGroupsInput {
    inner: Box<dyn GroupsAccumulator>,
    to: DataType,
}

impl GroupsAccumulator for CastGroupsInput {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner.update_batch(
            &cast_all(values, &self.to)?,
            group_indices,
            opt_filter,
            total_num_groups,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.inner.evaluate(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.inner
            .convert_to_state(&cast_all(values, &self.to)?, opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn one(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn a_bigint_sum_past_the_bigint_range_is_exact_and_numeric() {
        let ctx = SessionContext::new();
        ctx.register_udaf(ExactSum::udaf());
        let rows = "(VALUES (9223372036854775807), (9223372036854775807), (NULL)) t(x)";
        let out = one(
            &ctx,
            &format!("SELECT sum(x) AS s, arrow_typeof(sum(x)) AS t FROM {rows}"),
        )
        .await;
        assert!(out.contains("18446744073709551614"), "{out}");
        assert!(out.contains("Decimal128(38, 0)"), "{out}");
        // Grouped (the groups accumulator) and DISTINCT alike.
        let out = one(
            &ctx,
            &format!("SELECT sum(x) AS s, sum(DISTINCT x) AS d FROM {rows} GROUP BY x IS NULL ORDER BY 1"),
        )
        .await;
        assert!(out.contains("18446744073709551614"), "{out}");
        assert!(out.contains("9223372036854775807"), "{out}");
    }

    #[tokio::test]
    async fn smaller_integers_sum_to_bigint_and_other_types_as_before() {
        let ctx = SessionContext::new();
        ctx.register_udaf(ExactSum::udaf());
        let mut out = String::new();
        for e in [
            "arrow_typeof(sum(CAST(x AS INT)))",
            "arrow_typeof(sum(CAST(x AS DOUBLE)))",
            "arrow_typeof(sum(CAST(x AS DECIMAL(12,2))))",
            "sum(CAST(x AS INT))",
        ] {
            out += &one(
                &ctx,
                &format!("SELECT {e} AS v FROM (VALUES (2147483647), (2147483647)) t(x)"),
            )
            .await;
        }
        assert!(out.contains("Int64"), "{out}");
        assert!(out.contains("Float64"), "{out}");
        assert!(out.contains("Decimal128(22, 2)"), "{out}");
        assert!(out.contains("4294967294"), "{out}");
    }
}
