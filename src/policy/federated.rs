//! Policed tables inside sub-plans sent whole to their link.
//!
//! A [`PolicyTable`] is opaque to datafusion-federation: a join of a
//! policed `lineitem` with `orders`, both on one PostgreSQL link, would be
//! two reads joined in tautan, where without the policy it is one statement
//! at the source (TPC-H q12 and q18 ran 1.4× slower under a row filter that
//! keeps every row). When the policy can be written into the statement,
//! [`SubPlanPushdown`](crate::pushdown::SubPlanPushdown) offers the
//! federation rule a copy of the plan in which such scans read the link's
//! table directly, with the row filter among the scan's filters
//! ([`inline`]), and keeps the result only if it is as safe as the
//! [`PolicyExec`] barrier ([`Inlined::accept`]):
//!
//! - the scan reads no masked column (masks are computed in tautan; the
//!   pseudonym key never leaves it), the link is PostgreSQL or MySQL (which
//!   evaluate select lists only on the rows their `WHERE` keeps; SQL Server
//!   may compute them first), and the link takes the row filter exactly;
//! - some such scan ended up inside a sub-plan sent whole (nothing of the
//!   user's can be pushed into it later), and every predicate of every
//!   such sub-plan cannot leak ([`super::leak_proof::sub_plan_is_leak_proof`]),
//!   since the source orders them as it likes. A policed scan left on its
//!   own reads the link under the row filter and takes only leak-proof
//!   predicates ([`PolicedLink`]), as its policy table would; it is read
//!   in parallel parts like any large scan.
//!
//! Otherwise the plan goes on with its [`PolicyTable`]s as before. An
//! accepted sub-plan is wrapped in a [`PolicyNote`], planned as a
//! [`PolicyExec`] without masks, so `EXPLAIN` still names the policy.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, DataFusionError, Result};
use datafusion::datasource::{provider_as_source, source_as_provider, TableType};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, TableProviderFilterPushDown, TableScan, TableScanBuilder,
    UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use datafusion_federation::{FederatedPlanNode, FederatedTableProviderAdaptor};
use tautan_connector::SourceDialect;

use super::leak_proof::{is_leak_proof, sub_plan_is_leak_proof, Scope};
use super::mask::PseudonymKey;
use super::table::{PolicyExec, PolicyTable};

/// A plan whose eligible policed scans read their link directly.
pub struct Inlined {
    /// The rewritten plan.
    pub plan: LogicalPlan,
}

/// `plan` with each eligible policed scan (see the module docs) reading
/// the link's table under the row filter; `None` when there is none.
pub fn inline(plan: &LogicalPlan) -> Result<Option<Inlined>> {
    let mut scans = 0;
    let rewritten = plan.clone().transform_up(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        let Ok(provider) = source_as_provider(&scan.source) else {
            return Ok(Transformed::no(node));
        };
        let any: &dyn Any = provider.as_ref();
        let Some(table) = any.downcast_ref::<PolicyTable>() else {
            return Ok(Transformed::no(node));
        };
        match direct_scan(table, scan)? {
            Some(direct) => {
                scans += 1;
                Ok(Transformed::yes(direct))
            }
            None => Ok(Transformed::no(node)),
        }
    })?;
    Ok((scans > 0).then_some(Inlined {
        plan: rewritten.data,
    }))
}

/// The scan of `table`'s link table that `scan` of the policed table
/// becomes, when it is eligible.
fn direct_scan(table: &PolicyTable, scan: &TableScan) -> Result<Option<LogicalPlan>> {
    let schema = table.schema();
    let reads_masked = match &scan.projection {
        Some(p) => p
            .iter()
            .any(|i| table.masked.contains(schema.field(*i).name())),
        None => !table.masked.is_empty(),
    };
    if reads_masked {
        return Ok(None);
    }
    let inner: &dyn Any = table.inner.as_ref();
    let Some(adaptor) = inner.downcast_ref::<FederatedTableProviderAdaptor>() else {
        return Ok(None);
    };
    let (Some(fallback), Some(remote)) = (
        adaptor.table_provider.clone(),
        tautan_connector::federation::remote_table(table.inner.as_ref()),
    ) else {
        return Ok(None);
    };
    if !matches!(
        remote.link().dialect(),
        SourceDialect::Postgres | SourceDialect::MySql
    ) {
        return Ok(None);
    }
    let mut filters = scan.filters.clone();
    let row_filter = match &table.policy.row_filter {
        None => None,
        Some(_) => {
            let Some(f) = table.plain_row_filter() else {
                return Ok(None);
            };
            let exact = table.inner.supports_filters_pushdown(&[&f])?;
            if exact.first() != Some(&TableProviderFilterPushDown::Exact) {
                return Ok(None);
            }
            filters.push(f.clone());
            Some(f)
        }
    };
    let link = PolicedLink {
        inner: fallback,
        masked: table.masked.clone(),
        row_filter,
        origin: table.policy.origin.clone(),
        key: table.policy.key.clone(),
    };
    let provider =
        FederatedTableProviderAdaptor::new_with_provider(adaptor.source.clone(), Arc::new(link));
    let direct = TableScanBuilder::new(
        scan.table_name.clone(),
        provider_as_source(Arc::new(provider)),
    )
    .with_projection(scan.projection.clone())
    .with_filters(filters)
    .with_fetch(scan.fetch)
    .with_statistics_requests(scan.statistics_requests.clone())
    .build()?;
    let same = |a: &DFSchemaRef, b: &DFSchemaRef| {
        a.fields().len() == b.fields().len()
            && a.iter().zip(b.iter()).all(|((qa, fa), (qb, fb))| {
                qa == qb && fa.name() == fb.name() && fa.data_type() == fb.data_type()
            })
    };
    if !same(&direct.projected_schema, &scan.projected_schema) {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::TableScan(direct)))
}

impl Inlined {
    /// `federated` (this plan after the federation rule) with each sub-plan
    /// holding a policed scan, and each policed scan left on its own,
    /// wrapped in a [`PolicyNote`], if some policed scan went with a
    /// sub-plan sent whole and every such sub-plan is leak-proof; `None`
    /// otherwise.
    pub fn accept(&self, federated: LogicalPlan) -> Result<Option<LogicalPlan>> {
        let mut inside = 0;
        let mut fine = true;
        federated.apply(|node| {
            if let LogicalPlan::Extension(ext) = node {
                if let Some(fed) = ext.node.as_any().downcast_ref::<FederatedPlanNode>() {
                    let policed = policed_links(&fed.plan);
                    if !policed.is_empty() {
                        inside += policed.len();
                        fine &= sub_plan_is_leak_proof(&fed.plan);
                    }
                }
            }
            Ok(if fine {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        })?;
        // Nothing sent whole: the plan as it was, with its policy tables.
        if !fine || inside == 0 {
            return Ok(None);
        }
        let noted = federated.transform_up(|node| {
            let policed = match &node {
                // A policed scan left on its own reads the link with the
                // row filter and takes only leak-proof predicates (as a
                // policy table would); its note keeps later predicates
                // above it and names the policy.
                LogicalPlan::TableScan(scan) => policed_link(scan).into_iter().collect(),
                LogicalPlan::Extension(ext) => {
                    match ext.node.as_any().downcast_ref::<FederatedPlanNode>() {
                        Some(fed) => policed_links(&fed.plan),
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            let Some(first) = policed.first() else {
                return Ok(Transformed::no(node));
            };
            let origins: BTreeSet<&str> = policed.iter().map(|l| l.origin.as_str()).collect();
            let note = PolicyNote {
                origin: origins.into_iter().collect::<Vec<_>>().join(", "),
                key: first.key.clone(),
                input: node.clone(),
            };
            Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                node: Arc::new(note),
            })))
        })?;
        Ok(Some(noted.data))
    }
}

/// The policed scans of a sub-plan.
fn policed_links(plan: &LogicalPlan) -> Vec<&PolicedLink> {
    let mut found = Vec::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Some(link) = policed_link(scan) {
                found.push(link);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// The table a [`PolicedLink`] reads, for the federation's estimates
/// (registered with [`tautan_connector::federation::register_unwrap`]).
pub fn unwrap(provider: &dyn TableProvider) -> Option<&dyn TableProvider> {
    let any: &dyn Any = provider;
    any.downcast_ref::<PolicedLink>().map(|l| l.inner.as_ref())
}

/// The [`PolicedLink`] a scan reads, if it reads one.
pub fn policed_link(scan: &TableScan) -> Option<&PolicedLink> {
    let any: &dyn Any = scan.source.as_ref();
    let source = any.downcast_ref::<datafusion::datasource::DefaultTableSource>()?;
    let provider: &dyn Any = source.table_provider.as_ref();
    let adaptor = provider.downcast_ref::<FederatedTableProviderAdaptor>()?;
    let fallback: &dyn Any = adaptor.table_provider.as_deref()?;
    fallback.downcast_ref::<PolicedLink>()
}

/// A link's table read directly under a row filter, inside a sub-plan
/// sent whole: what [`inline`] puts behind the federation adaptor, so the
/// scan is still known as policed (audit, `EXPLAIN ANALYZE`), and so
/// nothing but leak-proof predicates can ever be pushed into it.
#[derive(Debug)]
pub struct PolicedLink {
    inner: Arc<dyn TableProvider>,
    masked: BTreeSet<String>,
    row_filter: Option<Expr>,
    origin: String,
    key: Arc<PseudonymKey>,
}

#[async_trait]
impl TableProvider for PolicedLink {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let schema = self.inner.schema();
        let scope = Scope {
            schema: &schema,
            masked: &self.masked,
        };
        super::leak_proof::pushdown(self.inner.as_ref(), scope, filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.inner.schema();
        let scope = Scope {
            schema: &schema,
            masked: &self.masked,
        };
        if let Some(f) = filters
            .iter()
            .find(|f| Some(*f) != self.row_filter.as_ref() && !is_leak_proof(f, scope))
        {
            return Err(DataFusionError::Internal(format!(
                "policy check: a predicate that is not leak-proof reached the scan of a \
                 table under {} ({f})",
                self.origin
            )));
        }
        if self
            .row_filter
            .as_ref()
            .is_some_and(|r| !filters.contains(r))
        {
            return Err(DataFusionError::Internal(format!(
                "policy check: the scan of a table under {} lost its row filter",
                self.origin
            )));
        }
        self.inner.scan(state, projection, filters, limit).await
    }
}

/// Marks a sub-plan sent whole that reads tables under a policy: planned
/// as a [`PolicyExec`] without masks, so plans name the policy.
pub struct PolicyNote {
    input: LogicalPlan,
    origin: String,
    key: Arc<PseudonymKey>,
}

impl fmt::Debug for PolicyNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        UserDefinedLogicalNodeCore::fmt_for_explain(self, f)
    }
}

impl PartialEq for PolicyNote {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.origin == other.origin
    }
}

impl Eq for PolicyNote {}

impl PartialOrd for PolicyNote {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match self.input.partial_cmp(&other.input) {
            Some(std::cmp::Ordering::Equal) => self.origin.partial_cmp(&other.origin),
            order => order,
        }
    }
}

impl std::hash::Hash for PolicyNote {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.origin.hash(state);
    }
}

impl UserDefinedLogicalNodeCore for PolicyNote {
    fn name(&self) -> &str {
        "Policy"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Policy: {} (row filter sent with the sub-plan)",
            self.origin
        )
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if !exprs.is_empty() || inputs.len() != 1 {
            return Err(DataFusionError::Internal(
                "a policy note has one input and no expressions".into(),
            ));
        }
        Ok(Self {
            input: inputs.swap_remove(0),
            origin: self.origin.clone(),
            key: self.key.clone(),
        })
    }
}

/// Whether `plan` holds a [`PolicyNote`] (subqueries included).
pub fn has_note(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Extension(ext) = node {
            if ext.node.as_any().downcast_ref::<PolicyNote>().is_some() {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Plans a [`PolicyNote`] as a [`PolicyExec`] without masks.
#[derive(Debug, Default)]
pub struct NotePlanner;

#[async_trait]
impl ExtensionPlanner for NotePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(note) = node.as_any().downcast_ref::<PolicyNote>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return Err(DataFusionError::Internal(
                "a policy note has one input".into(),
            ));
        };
        Ok(Some(Arc::new(PolicyExec::unmasked(
            input.clone(),
            format!("{} (row filter sent with the sub-plan)", note.origin),
            note.key.clone(),
        ))))
    }
}

/// A session state with DataFusion's defaults, for planning row filters
/// that use no function ([`PolicyTable::plain_row_filter`]).
pub(super) fn default_state() -> &'static SessionState {
    static STATE: std::sync::LazyLock<SessionState> = std::sync::LazyLock::new(|| {
        datafusion::execution::session_state::SessionStateBuilder::new()
            .with_default_features()
            .build()
    });
    &STATE
}
