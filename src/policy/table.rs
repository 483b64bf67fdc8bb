//! [`PolicyTable`]: a table as a user under a row filter and masks sees it.
//!
//! The table's scan is, from the bottom up:
//!
//! 1. the table's own scan, given the row filter and only those of the
//!    user's predicates that cannot leak ([`super::leak_proof`]) — for a
//!    link, the SQL sent is `WHERE <row filter> AND <leak-proof predicates>`;
//! 2. a `FilterExec` of the row filter, when the source could not take it;
//! 3. [`PolicyExec`], which applies the masks and is a **barrier**: it takes
//!    no predicate from above (DataFusion's filter pushdown stops at it), so
//!    every other predicate of the user runs on rows already filtered and
//!    values already masked.
//!
//! DataFusion sees the table with its masked schema (a pseudonymized NIK is
//! text), so catalogs, Describe and `SELECT *` show what the user gets. The
//! filters DataFusion hands to [`PolicyTable::scan`] are checked again: one
//! this table did not accept fails the query instead of running below the
//! policy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

use super::leak_proof::{is_leak_proof, Scope};
use super::mask::{Mask, PseudonymKey};
use super::TablePolicy;

/// A table read under a [`TablePolicy`].
#[derive(Debug)]
pub struct PolicyTable {
    pub(super) inner: Arc<dyn TableProvider>,
    pub(super) policy: TablePolicy,
    /// The inner table's schema with masked columns retyped.
    schema: SchemaRef,
    pub(super) masked: BTreeSet<String>,
    /// The row filter planned without the session, when it uses no
    /// function ([`PolicyTable::plain_row_filter`]).
    plain_row_filter: std::sync::OnceLock<Option<Expr>>,
}

impl PolicyTable {
    /// `inner` under `policy`; masks naming columns the table does not have
    /// are ignored (the table may show only granted columns).
    pub fn new(inner: Arc<dyn TableProvider>, mut policy: TablePolicy) -> Result<Self> {
        let source = inner.schema();
        // Masks by label become masks of the columns carrying the label; a
        // mask naming the column wins.
        let by_label: Vec<(String, Mask)> = source
            .fields()
            .iter()
            .filter(|f| !policy.masks.contains_key(f.name()))
            .filter_map(|f| policy.mask_for(f).map(|m| (f.name().clone(), m.clone())))
            .collect();
        policy.masks.extend(by_label);
        let mut masked = BTreeSet::new();
        let fields = source
            .fields()
            .iter()
            .map(|f| match policy.masks.get(f.name()) {
                Some(mask) => {
                    masked.insert(f.name().clone());
                    // The type changed: only the description and labels
                    // stay from the source's metadata.
                    let kept = f
                        .metadata()
                        .iter()
                        .filter(|(k, _)| {
                            k.as_str() == tautan_connector::types::COMMENT_KEY
                                || k.as_str() == super::labels::LABELS_KEY
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Ok(Arc::new(
                        Field::new(f.name(), mask.output_type(f.data_type())?, true)
                            .with_metadata(kept),
                    ))
                }
                None => Ok(f.clone()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inner,
            policy,
            schema: Arc::new(Schema::new_with_metadata(fields, source.metadata().clone())),
            masked,
            plain_row_filter: std::sync::OnceLock::new(),
        })
    }

    /// The row filter as an expression over the inner table, planned with
    /// DataFusion's defaults rather than the session's, for the optimizer
    /// ([`super::federated`]), which has no session at hand. Only a filter
    /// that calls no function is given (a function's meaning is the
    /// session's: tautan replaces some of DataFusion's); `None` otherwise,
    /// or when there is no row filter or it does not plan.
    pub(super) fn plain_row_filter(&self) -> Option<Expr> {
        self.plain_row_filter
            .get_or_init(|| {
                let expr = self.row_filter(super::federated::default_state()).ok()??;
                let calls = expr
                    .exists(|e| {
                        Ok(matches!(
                            e,
                            Expr::ScalarFunction(_)
                                | Expr::AggregateFunction(_)
                                | Expr::WindowFunction(_)
                                | Expr::ScalarSubquery(_)
                                | Expr::Exists(_)
                                | Expr::InSubquery(_)
                                | Expr::ScalarVariable(..)
                                | Expr::Placeholder(_)
                                | Expr::OuterReferenceColumn(..)
                        ))
                    })
                    .unwrap_or(true);
                (!calls).then_some(expr)
            })
            .clone()
    }

    fn scope<'a>(&'a self, source: &'a Schema) -> Scope<'a> {
        Scope {
            schema: source,
            masked: &self.masked,
        }
    }

    /// The row filter as an expression over the inner table, typed.
    fn row_filter(&self, state: &dyn Session) -> Result<Option<Expr>> {
        let Some(sql) = &self.policy.row_filter else {
            return Ok(None);
        };
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("row filter outside a session".into()))?;
        let schema = Arc::new(DFSchema::try_from(self.inner.schema())?);
        let misfit = |e: String| {
            DataFusionError::Plan(format!(
                "the row filter of {} does not fit the table: {e}",
                self.policy.origin
            ))
        };
        let parsed = super::parse_row_filter(sql).map_err(misfit)?;
        let expr = state
            .create_logical_expr_from_sql_expr(
                datafusion::sql::sqlparser::ast::ExprWithAlias {
                    expr: parsed,
                    alias: None,
                },
                &schema,
            )
            .map_err(|e| misfit(e.to_string()))?;
        let context = SimplifyContext::builder()
            .with_schema(schema.clone())
            .with_config_options(Arc::clone(state.config_options()))
            .build();
        let simplifier = ExprSimplifier::new(context);
        let expr = simplifier.coerce(expr, &schema)?;
        Ok(Some(simplifier.simplify(expr)?))
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let source = self.inner.schema();
        super::leak_proof::pushdown(self.inner.as_ref(), self.scope(&source), filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let source = self.inner.schema();
        // DataFusion hands down only what `supports_filters_pushdown`
        // accepted; anything else would run below the policy.
        if let Some(f) = filters
            .iter()
            .find(|f| !is_leak_proof(f, self.scope(&source)))
        {
            return Err(DataFusionError::Internal(format!(
                "policy check: a predicate that is not leak-proof reached the scan of a \
                 table under {} ({f})",
                self.policy.origin
            )));
        }
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let row_filter = self.row_filter(state)?;
        let mut inner_filters = filters.to_vec();
        let mut inner_projection: BTreeSet<usize> = wanted.iter().copied().collect();
        let mut local_row_filter = None;
        if let Some(f) = row_filter {
            let support = self.inner.supports_filters_pushdown(&[&f])?;
            let support = support
                .first()
                .unwrap_or(&TableProviderFilterPushDown::Unsupported);
            if *support != TableProviderFilterPushDown::Unsupported {
                inner_filters.push(f.clone());
            }
            if *support != TableProviderFilterPushDown::Exact {
                for c in f.column_refs() {
                    inner_projection.insert(source.index_of(&c.name)?);
                }
                local_row_filter = Some(f);
            }
        }
        let inner_projection: Vec<usize> = inner_projection.into_iter().collect();
        let inner_limit = if local_row_filter.is_some() {
            None
        } else {
            limit
        };
        let mut plan = self
            .inner
            .scan(state, Some(&inner_projection), &inner_filters, inner_limit)
            .await?;
        if let Some(f) = local_row_filter {
            let schema = DFSchema::try_from(plan.schema())?;
            let predicate = state.create_physical_expr(f, &schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        let scanned = plan.schema();
        let mut columns = Vec::with_capacity(wanted.len());
        for i in &wanted {
            let name = self.schema.field(*i).name();
            let at = scanned.index_of(name)?;
            columns.push((at, self.policy.masks.get(name).cloned()));
        }
        let schema = Arc::new(self.schema.project(&wanted)?);
        Ok(Arc::new(PolicyExec::new(
            plan,
            columns,
            schema,
            self.policy.key.clone(),
            self.policy.origin.clone(),
        )))
    }
}

/// Whether `plan` reads any table through a policy (a sub-plan sent whole
/// with a row filter in it included).
pub fn reads_policed(plan: &datafusion::logical_expr::LogicalPlan) -> bool {
    if super::federated::has_note(plan) {
        return true;
    }
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let datafusion::logical_expr::LogicalPlan::TableScan(scan) = node {
            if is_policed_scan(scan) {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether `scan` reads a table through a policy: a [`PolicyTable`], or a
/// link's table under a row filter inside a sub-plan sent whole
/// ([`super::federated`]).
pub fn is_policed_scan(scan: &datafusion::logical_expr::TableScan) -> bool {
    if super::federated::policed_link(scan).is_some() {
        return true;
    }
    datafusion::datasource::source_as_provider(&scan.source).is_ok_and(|provider| {
        let any: &dyn std::any::Any = provider.as_ref();
        any.downcast_ref::<PolicyTable>().is_some()
    })
}

/// Applies masks to the rows of its input, and lets no predicate through:
/// the barrier between a policy and the user's own expressions.
pub struct PolicyExec {
    input: Arc<dyn ExecutionPlan>,
    /// For each output column: its index in the input, and its mask.
    columns: Vec<(usize, Option<Mask>)>,
    schema: SchemaRef,
    key: Arc<PseudonymKey>,
    origin: String,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for PolicyExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyExec")
            .field("columns", &self.columns)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl PolicyExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        columns: Vec<(usize, Option<Mask>)>,
        schema: SchemaRef,
        key: Arc<PseudonymKey>,
        origin: String,
    ) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            input.pipeline_behavior(),
            input.boundedness(),
        ));
        Self {
            input,
            columns,
            schema,
            key,
            origin,
            properties,
        }
    }

    /// Its input's rows as they are, for display: a sub-plan sent whole
    /// with the row filter in it ([`super::federated`]).
    pub(super) fn unmasked(
        input: Arc<dyn ExecutionPlan>,
        origin: String,
        key: Arc<PseudonymKey>,
    ) -> Self {
        let schema = input.schema();
        let columns = (0..schema.fields().len()).map(|i| (i, None)).collect();
        Self::new(input, columns, schema, key, origin)
    }

    /// The masks, by output column name, for display.
    fn masks(&self) -> BTreeMap<&str, String> {
        self.columns
            .iter()
            .enumerate()
            .filter_map(|(i, (_, m))| {
                m.as_ref()
                    .map(|m| (self.schema.field(i).name().as_str(), m.to_string()))
            })
            .collect()
    }
}

impl DisplayAs for PolicyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let masks: Vec<String> = self
            .masks()
            .into_iter()
            .map(|(c, m)| format!("{c}={m}"))
            .collect();
        write!(
            f,
            "PolicyExec: {} masks=[{}]",
            self.origin,
            masks.join(", ")
        )
    }
}

impl ExecutionPlan for PolicyExec {
    fn name(&self) -> &str {
        "PolicyExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "PolicyExec has exactly one input".into(),
            ));
        }
        Ok(Arc::new(PolicyExec::new(
            children.swap_remove(0),
            self.columns.clone(),
            self.schema.clone(),
            self.key.clone(),
            self.origin.clone(),
        )))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let columns = self.columns.clone();
        let schema = self.schema.clone();
        let key = self.key.clone();
        let out_schema = schema.clone();
        let masked = input.map(move |batch| {
            let batch = batch?;
            let mut out = Vec::with_capacity(columns.len());
            for (at, mask) in &columns {
                let column = batch.column(*at);
                out.push(match mask {
                    Some(m) => m.apply(column, &key)?,
                    None => column.clone(),
                });
            }
            Ok(RecordBatch::try_new_with_options(
                schema.clone(),
                out,
                &datafusion::arrow::record_batch::RecordBatchOptions::new()
                    .with_row_count(Some(batch.num_rows())),
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(out_schema, masked)))
    }
}
