//! Whole sub-plans sent to one link as one statement.
//!
//! [`datafusion_federation`] finds the largest sub-plans whose tables all
//! live in one link and hands each to that link's [`SQLExecutor`], which
//! DataFusion's unparser turns into SQL. This module is tautan's side of
//! that contract:
//!
//! - [`LinkFederation::table`] wraps a link's table so the federation
//!   optimizer rule recognises it, keeping the plain [`RemoteTable`] as the
//!   fallback for scans that are not part of a larger sub-plan (those keep
//!   their own projection/filter/limit pushdown);
//! - [`LinkExecutor`]'s logical optimizer hook decides how much of a
//!   candidate sub-plan the link runs **exactly as DataFusion would**
//!   ([`split`]): string order depends on collations, MySQL compares strings
//!   case-insensitively and turns integer division into decimals, so such
//!   nodes stay in DataFusion and only their inputs are sent;
//! - [`LinkExecutor`]'s AST analyzer seals and checks the unparsed
//!   statement ([`crate::sql`]) — the crate prints the sealed tree, which
//!   gives exactly the checked text — and its `execute` runs only
//!   statements its analyzer checked, with every output column cast to the
//!   type its decoder expects ([`SourceDialect::decodable`]).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, JoinType, NullEquality, ScalarValue, TableReference};
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::expr_rewriter::replace_col;
use datafusion::logical_expr::{
    Distinct, Expr, ExprSchemable, Extension, LogicalPlan, Operator, Projection, SubqueryAlias,
};
use datafusion::physical_plan::PhysicalExpr;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::unparser::dialect::Dialect;
use datafusion::sql::unparser::Unparser;
use datafusion_federation::sql::{
    AstAnalyzer, LogicalOptimizer, RemoteTable as FederatedTable, SQLExecutor,
    SQLFederationProvider, SQLTableSource,
};
use datafusion_federation::{FederatedPlanNode, FederatedTableProviderAdaptor, FederationPlanner};

use crate::{LinkRef, RemoteTable, SourceDialect, SourceQuery};

/// One link as a federation target: its executor and the provider the
/// optimizer rule groups its tables by.
#[derive(Debug)]
pub struct LinkFederation {
    provider: Arc<SQLFederationProvider>,
}

impl LinkFederation {
    /// The federation target for `link`.
    pub fn new(link: LinkRef) -> Self {
        let executor = Arc::new(LinkExecutor {
            link,
            checked: Default::default(),
        });
        Self {
            provider: Arc::new(SQLFederationProvider::new(executor)),
        }
    }

    /// `table` as the optimizer rule sees it. Tables with a column read
    /// through a cast (its remote type differs from the Arrow one) are not
    /// offered: a sub-plan would compare the remote values, not the ones
    /// clients see.
    pub fn table(&self, table: RemoteTable) -> Arc<dyn TableProvider> {
        if !table.all_columns_plain() {
            return Arc::new(table);
        }
        let def = table.def();
        let remote = FederatedTable::new(
            TableReference::partial(def.schema.as_str(), def.name.as_str()).into(),
            def.arrow_schema.clone(),
        );
        let source = SQLTableSource::new_with_table(self.provider.clone(), Arc::new(remote));
        Arc::new(FederatedTableProviderAdaptor::new_with_provider(
            Arc::new(source),
            Arc::new(table),
        ))
    }
}

/// How a provider that stands in for a link's table (tautan reads a
/// table under a row filter this way) gives the provider it wraps.
pub type Unwrap = for<'a> fn(&'a dyn TableProvider) -> Option<&'a dyn TableProvider>;

static UNWRAP: std::sync::OnceLock<Unwrap> = std::sync::OnceLock::new();

/// Registers how wrappers of link tables are seen through, so that the
/// table's estimates still reach the choices made here (a wide aggregate
/// is kept in tautan). The first registration stands.
pub fn register_unwrap(unwrap: Unwrap) {
    let _ = UNWRAP.set(unwrap);
}

/// The [`RemoteTable`] behind a provider from [`LinkFederation::table`]
/// (or the provider itself when it is one; or behind a registered
/// wrapper, [`register_unwrap`]).
pub fn remote_table(provider: &dyn TableProvider) -> Option<&RemoteTable> {
    let any: &dyn Any = provider;
    if let Some(t) = any.downcast_ref::<RemoteTable>() {
        return Some(t);
    }
    let adaptor = any.downcast_ref::<FederatedTableProviderAdaptor>()?;
    let inner: &dyn TableProvider = adaptor.table_provider.as_deref()?;
    let direct: &dyn Any = inner;
    if let Some(t) = direct.downcast_ref::<RemoteTable>() {
        return Some(t);
    }
    let wrapped: &dyn Any = UNWRAP.get()?(inner)?;
    wrapped.downcast_ref::<RemoteTable>()
}

/// Runs unparsed sub-plans on one link.
pub struct LinkExecutor {
    link: LinkRef,
    /// Statements the AST analyzer sealed and checked, by their text:
    /// `execute` runs only these. datafusion-federation calls the analyzer
    /// and then `execute` with the printed tree; EXPLAIN calls the
    /// analyzer alone, so the list is bounded.
    checked: CheckedStatements,
}

/// The last few statements [`LinkExecutor`]'s analyzer checked.
#[derive(Default, Clone)]
struct CheckedStatements(Arc<Mutex<VecDeque<(String, SourceQuery)>>>);

impl CheckedStatements {
    const KEEP: usize = 64;

    fn insert(&self, query: SourceQuery) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() >= Self::KEEP {
            list.pop_front();
        }
        list.push_back((query.sql().to_string(), query));
    }

    fn take(&self, sql: &str) -> Option<SourceQuery> {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let at = list.iter().rposition(|(text, _)| text == sql)?;
        list.remove(at).map(|(_, q)| q)
    }
}

#[async_trait]
impl SQLExecutor for LinkExecutor {
    fn name(&self) -> &str {
        self.link.name()
    }

    fn compute_context(&self) -> Option<String> {
        // Unique per link: two links never share a sub-plan.
        Some(format!("tautan-link:{}", self.link.name()))
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.link.dialect().unparser_dialect()
    }

    fn logical_optimizer(&self) -> Option<LogicalOptimizer> {
        let dialect = self.link.dialect();
        Some(Box::new(move |plan| split(plan, dialect)))
    }

    fn ast_analyzer(&self) -> Option<AstAnalyzer> {
        let dialect = self.link.dialect();
        let checked = self.checked.clone();
        Some(Box::new(move |statement| {
            let Statement::Query(query) = statement else {
                return Err(DataFusionError::Internal(format!(
                    "a sub-plan unparsed to a statement that is not a query: {statement}"
                )));
            };
            let (sealed, query) = dialect.checked_sealed(*query)?;
            checked.insert(query);
            Ok(sealed)
        }))
    }

    fn execute(
        &self,
        query: &str,
        schema: SchemaRef,
        _filters: &[Arc<dyn PhysicalExpr>],
    ) -> Result<SendableRecordBatchStream> {
        let checked = self.checked.take(query).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "link {}: refusing a statement its analyzer did not check",
                self.link.name()
            ))
        })?;
        let (query, wire) = self
            .link
            .dialect()
            .decodable(checked.query().clone(), &schema)?;
        tracing::debug!(link = self.link.name(), sql = %query, "remote sub-plan");
        crate::sent::note(self.link.name(), query.sql());
        Ok(self.link.execute(query, wire))
    }

    async fn table_names(&self) -> Result<Vec<String>> {
        Err(DataFusionError::NotImplemented(
            "tables of a link are listed by its catalog".into(),
        ))
    }

    async fn get_table_schema(&self, table_name: &str) -> Result<SchemaRef> {
        Err(DataFusionError::NotImplemented(format!(
            "schema of {table_name} comes from the link's catalog"
        )))
    }
}

/// Takes the sub-plan the federation rule offers (a `Federated` extension
/// node) and keeps federated only the parts `dialect` runs exactly as
/// DataFusion would; the rest is handed back to DataFusion.
pub fn split(plan: LogicalPlan, dialect: SourceDialect) -> Result<LogicalPlan> {
    let LogicalPlan::Extension(Extension { node }) = &plan else {
        return Ok(plan);
    };
    let Some(fed) = node.as_any().downcast_ref::<FederatedPlanNode>() else {
        return Ok(plan);
    };
    let splitter = Splitter {
        dialect,
        planner: fed.planner.clone(),
    };
    let plan = without_fetch_under_limits(fed.plan.clone())?;
    let plan = without_table_names_in_aliases(plan)?;
    splitter.split(without_projections_under_aggregates(plan)?, true)
}

/// `plan` with every aggregate's alias whose name spells a table's name
/// (DataFusion's simplifier names a rewritten expression after the original,
/// `max(f8 * Float64(2)) AS "max(l.public.t.f8 * Int64(2))"`) renamed so it
/// does not, with the references to it, and the original names restored
/// at the top. `datafusion_federation` rewrites the table name inside the
/// names of column references (`max(public.t.f8 * Int64(2))`) but not in
/// aliases, so the reference no longer found the alias:
/// `SELECT max(f8 * 2)` failed with "column does not exist".
fn without_table_names_in_aliases(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    let mut tables = Vec::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            tables.push(scan.table_name.to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    // The new name has no `.` at all: DataFusion reads a dotted name in a
    // column reference as qualified.
    let hidden = |name: &str| {
        tables
            .iter()
            .any(|t| name.contains(t.as_str()))
            .then(|| name.replace('.', "\u{b7}"))
    };
    let original = plan.schema().clone();
    let mut renamed: HashMap<String, String> = HashMap::new();
    let plan = plan
        .transform_up(|node| {
            let names = matches!(node, LogicalPlan::Aggregate(_));
            let mut new_names = Vec::new();
            let node = node.map_expressions(|e| {
                // References to a renamed alias follow it.
                let e = e.transform(|x| match x {
                    Expr::Column(c) if renamed.contains_key(&c.name) => {
                        let name = renamed[&c.name].clone();
                        Ok(Transformed::yes(Expr::Column(Column::new(
                            c.relation, name,
                        ))))
                    }
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(match e.data {
                    Expr::Alias(mut a) if names => match hidden(&a.name) {
                        Some(name) => {
                            new_names.push((a.name.clone(), name.clone()));
                            a.name = name;
                            Transformed::yes(Expr::Alias(a))
                        }
                        None => Transformed::new_transformed(Expr::Alias(a), e.transformed),
                    },
                    other => Transformed::new_transformed(other, e.transformed),
                })
            })?;
            renamed.extend(new_names);
            if node.transformed {
                Ok(Transformed::yes(node.data.recompute_schema()?))
            } else {
                Ok(node)
            }
        })?
        .data;
    if renamed.is_empty() {
        return Ok(plan);
    }
    // The names the plan had, at the top.
    let exprs = plan
        .schema()
        .iter()
        .zip(original.iter())
        .map(|((q, f), (oq, of))| {
            let column = Expr::Column(Column::new(q.cloned(), f.name()));
            if f.name() == of.name() {
                column
            } else {
                column.alias_qualified(oq.cloned(), of.name())
            }
        })
        .collect::<Vec<_>>();
    datafusion::logical_expr::LogicalPlanBuilder::from(plan)
        .project(exprs)?
        .build()
}

/// `plan` without the column-only projections right under an aggregate.
/// The unparser (DataFusion 55) writes such a projection as a derived
/// table whose columns lose their table names: over a self-join,
/// `GROUP BY a.id, b.id` became `GROUP BY "id", "id"` ("column reference
/// is ambiguous" at the source). Without it the aggregate reads the join
/// directly, in one SELECT, with qualified names.
fn without_projections_under_aggregates(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    plan.transform_up(|node| {
        let LogicalPlan::Aggregate(aggregate) = &node else {
            return Ok(Transformed::no(node));
        };
        let LogicalPlan::Projection(projection) = aggregate.input.as_ref() else {
            return Ok(Transformed::no(node));
        };
        if !projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) {
            return Ok(Transformed::no(node));
        }
        let input = projection.input.as_ref().clone();
        let rebuilt = node.with_new_exprs(node.expressions(), vec![input])?;
        Ok(Transformed::yes(rebuilt))
    })
    .map(|t| t.data)
}

/// `plan` with the row count of every sort right under a limit left to
/// the limit. DataFusion gives such a sort the limit's skip + fetch
/// (`Limit: skip=2, fetch=3` over `Sort: fetch=5`), and its unparser
/// (DataFusion 55) then writes `LIMIT 5 OFFSET 2`: five rows where the
/// query asked for three. The limit alone says the same.
fn without_fetch_under_limits(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    plan.transform_down(|node| {
        let LogicalPlan::Limit(limit) = &node else {
            return Ok(Transformed::no(node));
        };
        let LogicalPlan::Sort(sort) = limit.input.as_ref() else {
            return Ok(Transformed::no(node));
        };
        if sort.fetch.is_none() {
            return Ok(Transformed::no(node));
        }
        let mut sort = sort.clone();
        sort.fetch = None;
        let mut limit = limit.clone();
        limit.input = Arc::new(LogicalPlan::Sort(sort));
        Ok(Transformed::yes(LogicalPlan::Limit(limit)))
    })
    .map(|t| t.data)
}

struct Splitter {
    dialect: SourceDialect,
    planner: Arc<dyn FederationPlanner>,
}

impl Splitter {
    fn split(&self, plan: LogicalPlan, is_root: bool) -> Result<LogicalPlan> {
        // The cheap checks first: naming derived tables rebuilds the plan.
        let mut candidate = None;
        if worth_sending(&plan)? && !wide_aggregate(&plan) {
            let named = name_derived_tables(&plan)?;
            if self.runs_exactly(&named)? && self.unparses(&named) {
                candidate = Some(named);
            }
        }
        if let Some(candidate) = candidate {
            // An aggregate on top is written with its aggregates before
            // its group columns: a projection restores the planned order
            // (the decoder reads columns by position).
            let sent = if is_root && !matches!(candidate, LogicalPlan::Aggregate(_)) {
                candidate
            } else {
                with_projection(candidate)?
            };
            return Ok(LogicalPlan::Extension(Extension {
                node: Arc::new(FederatedPlanNode::new(sent, self.planner.clone())),
            }));
        }
        let inputs: Vec<LogicalPlan> = plan.inputs().into_iter().cloned().collect();
        if inputs.is_empty() {
            return Ok(plan);
        }
        let inputs = inputs
            .into_iter()
            .map(|p| self.split(p, false))
            .collect::<Result<Vec<_>>>()?;
        plan.with_new_exprs(plan.expressions(), inputs)
    }

    /// Whether the unparser can write `plan` and the result can be sent
    /// (sealed and checked, see [`crate::sql`]).
    fn unparses(&self, plan: &LogicalPlan) -> bool {
        let dialect = self.dialect.unparser_dialect();
        match Unparser::new(dialect.as_ref()).plan_to_sql(plan) {
            Ok(Statement::Query(query)) => {
                names_in_scope(&query) && SourceQuery::new(self.dialect, *query).is_ok()
            }
            _ => false,
        }
    }

    /// Whether every node and expression of `plan` (subqueries included)
    /// gives the same rows on the link as in DataFusion, and its output
    /// columns can be decoded.
    fn runs_exactly(&self, plan: &LogicalPlan) -> Result<bool> {
        if !plan
            .schema()
            .fields()
            .iter()
            .all(|f| self.dialect.cast_type(f.data_type()).is_some())
        {
            return Ok(false);
        }
        let mut ok = true;
        let mut root = true;
        plan.apply_with_subqueries(|node| {
            // Below the top, the unparser cannot refer back to an unnamed
            // computed column (`SELECT DISTINCT a % 7`): keep those here.
            // An aggregate whose output names hold nested arithmetic
            // (`sum(a * (1 - b))`): datafusion-federation's table renaming
            // rewrites those names inconsistently (0.5.8): not sent.
            let named = (root || !has_unnamed_expression(node)) && !has_nested_arithmetic(node);
            root = false;
            ok = named && self.node_ok(node).unwrap_or(false);
            Ok(if ok {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        })?;
        Ok(ok)
    }

    fn node_ok(&self, node: &LogicalPlan) -> Result<bool> {
        let pg = self.dialect == SourceDialect::Postgres;
        // String equality is byte equality only on PostgreSQL (MySQL and
        // SQL Server group, join and de-duplicate strings by collation).
        let exact_eq = self.dialect.exact_string_equality();
        // `SELECT FROM t` (no columns, e.g. under count(*)) is PostgreSQL
        // only.
        if !pg && node.schema().fields().is_empty() {
            return Ok(false);
        }
        Ok(match node {
            // A projection right over a projection (DataFusion's
            // common-subexpression elimination in a select list:
            // `SELECT b = false OR b, ...`) is written by the unparser
            // (DataFusion 55) as a derived table the outer select still
            // names the inner table through, and naming it does not
            // survive the unparser's folding of aliases into scans: the
            // outer one stays here.
            LogicalPlan::Projection(p)
                if matches!(p.input.as_ref(), LogicalPlan::Projection(_)) =>
            {
                false
            }
            LogicalPlan::Projection(p) => {
                self.values_ok(&p.expr, p.input.schema())?
                    && self.exprs_ok(&p.expr, p.input.schema())?
            }
            LogicalPlan::Filter(f) => self.predicate_ok(&f.predicate, f.input.schema())?,
            LogicalPlan::Aggregate(a) => {
                let schema = a.input.schema();
                // MySQL and SQL Server group strings by collation ('a' and
                // 'A' together).
                let keys_ok = exact_eq || !self.any_string(&a.group_expr, schema)?;
                keys_ok
                    && self.values_ok(&a.group_expr, schema)?
                    && self.exprs_ok(&a.group_expr, schema)?
                    && self.exprs_ok(&a.aggr_expr, schema)?
            }
            LogicalPlan::Sort(s) => {
                // String order follows the source's collation; MySQL cannot
                // write NULLS FIRST/LAST.
                let schema = s.input.schema();
                let exprs: Vec<Expr> = s.expr.iter().map(|e| e.expr.clone()).collect();
                // SQL Server cannot write NULLS FIRST/LAST either (and
                // sorts NULLs first): sorts are sent to PostgreSQL only.
                pg && !self.any_string(&exprs, schema)? && self.exprs_ok(&exprs, schema)?
            }
            LogicalPlan::Join(j) => {
                let schema = j.left.schema().join(j.right.schema())?;
                let mut exprs: Vec<Expr> = Vec::new();
                for (l, r) in &j.on {
                    exprs.push(l.clone());
                    exprs.push(r.clone());
                }
                // Semi and anti joins are written as EXISTS by the
                // unparser, which drops filters pushed into the scans of
                // the subquery side (DataFusion 55): kept here.
                let exists_form = matches!(
                    j.join_type,
                    JoinType::LeftSemi
                        | JoinType::LeftAnti
                        | JoinType::RightSemi
                        | JoinType::RightAnti
                        | JoinType::LeftMark
                        | JoinType::RightMark
                );
                // A projection (aggregate, ...) right under a join
                // becomes a derived table the join condition cannot name
                // (DataFusion 55 unparser); `name_derived_tables` aliases
                // them, and keeps these only where it could not.
                let derived_input = is_unnamed_derived(&j.left) || is_unnamed_derived(&j.right);
                // A join without keys is a cross join DataFusion has not
                // yet turned into joins (the rule runs in every optimizer
                // pass): sent, it would fix the join order of the FROM
                // list (TPC-H q02: part × supplier, 8 million rows).
                let cross = j.on.is_empty();
                !exists_form
                    && !cross
                    && !derived_input
                    && j.null_equality == NullEquality::NullEqualsNothing
                    && !j.null_aware
                    && (exact_eq || !self.any_string(&exprs, &schema)?)
                    && self.exprs_ok(&exprs, &schema)?
                    && match &j.filter {
                        Some(f) => self.predicate_ok(f, &schema)?,
                        None => true,
                    }
            }
            LogicalPlan::Distinct(Distinct::All(input)) => {
                exact_eq
                    || !input
                        .schema()
                        .fields()
                        .iter()
                        .any(|f| self.dialect.collated(f.data_type()))
            }
            LogicalPlan::TableScan(t) => {
                let schema =
                    DFSchema::try_from_qualified_schema(t.table_name.clone(), &t.source.schema())?;
                let mut ok = true;
                for f in &t.filters {
                    ok = ok && self.predicate_ok(f, &schema)?;
                }
                ok
            }
            LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::EmptyRelation(_) => true,
            _ => false,
        })
    }

    /// Whether any of `exprs` compares by collation at the source
    /// (strings; on SQL Server binary strings too).
    fn any_string(&self, exprs: &[Expr], schema: &DFSchema) -> Result<bool> {
        for e in exprs {
            if self.dialect.collated(&e.get_type(schema)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `expr` as a condition (WHERE, ON, a scan's filter): on SQL Server a
    /// bare bit column is no condition.
    fn predicate_ok(&self, expr: &Expr, schema: &DFSchema) -> Result<bool> {
        if self.dialect == SourceDialect::SqlServer && is_boolean_column(expr, schema) {
            return Ok(false);
        }
        self.expr_ok(expr, schema)
    }

    /// `exprs` as values (a select list, GROUP BY keys): T-SQL has no
    /// boolean values, so on SQL Server an expression of boolean type may
    /// only be a plain (bit) column.
    fn values_ok(&self, exprs: &[Expr], schema: &DFSchema) -> Result<bool> {
        if self.dialect != SourceDialect::SqlServer {
            return Ok(true);
        }
        for e in exprs {
            let plain = match e {
                Expr::Alias(a) => matches!(a.expr.as_ref(), Expr::Column(_)),
                Expr::Column(_) => true,
                _ => false,
            };
            if !plain && e.get_type(schema)? == DataType::Boolean {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn exprs_ok(&self, exprs: &[Expr], schema: &DFSchema) -> Result<bool> {
        for e in exprs {
            if !self.expr_ok(e, schema)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn expr_ok(&self, expr: &Expr, schema: &DFSchema) -> Result<bool> {
        if crate::dialect::too_deep(expr) {
            return Ok(false);
        }
        // T-SQL: a bit column inside an expression is a value where a
        // condition is expected (`NOT b`, `b AND c`, `CASE WHEN b`), or is
        // compared with a boolean T-SQL cannot write: kept here.
        if self.dialect == SourceDialect::SqlServer
            && !matches!(expr, Expr::Column(_))
            && !matches!(expr, Expr::Alias(a) if matches!(a.expr.as_ref(), Expr::Column(_)))
            && expr.exists(|e| Ok(is_boolean_column(e, schema)))?
        {
            return Ok(false);
        }
        let refused = expr.exists(|e| Ok(!self.one_expr_ok(e, schema).unwrap_or(false)))?;
        Ok(!refused)
    }

    /// One expression node (its children are visited separately).
    fn one_expr_ok(&self, e: &Expr, schema: &DFSchema) -> Result<bool> {
        let pg = self.dialect == SourceDialect::Postgres;
        let sqlserver = self.dialect == SourceDialect::SqlServer;
        let exact_eq = self.dialect.exact_string_equality();
        let string = |x: &Expr| -> Result<bool> { Ok(self.dialect.collated(&x.get_type(schema)?)) };
        Ok(match e {
            Expr::Column(_)
            | Expr::Alias(_)
            | Expr::Not(_)
            | Expr::Negative(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::Case(_)
            | Expr::ScalarSubquery(_)
            | Expr::Exists(_)
            | Expr::OuterReferenceColumn(..) => true,
            // T-SQL has no IS TRUE / IS FALSE.
            Expr::IsTrue(_) | Expr::IsFalse(_) | Expr::IsNotTrue(_) | Expr::IsNotFalse(_) => {
                !sqlserver
            }
            Expr::Literal(v, _) => self.literal_ok(v),
            Expr::BinaryExpr(b) => match b.op {
                Operator::And | Operator::Or => true,
                Operator::Eq | Operator::NotEq => exact_eq || !string(&b.left)?,
                Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                    !string(&b.left)? && !string(&b.right)?
                }
                // T-SQL keeps the operands' type (tinyint + tinyint
                // overflows at 255; decimal scales follow other rules):
                // only int, bigint and float arithmetic is sent.
                Operator::Plus | Operator::Minus | Operator::Multiply => {
                    !sqlserver
                        || (t_sql_arithmetic(&b.left, schema)?
                            && t_sql_arithmetic(&b.right, schema)?)
                }
                // MySQL's `/` gives decimals even for integers; T-SQL's
                // integer division and modulo are kept here as well.
                Operator::Divide | Operator::Modulo => pg,
                // MySQL's `||` is OR; T-SQL has none.
                Operator::StringConcat => pg,
                _ => false,
            },
            Expr::Between(b) => !string(&b.expr)?,
            Expr::InList(l) => exact_eq || !string(&l.expr)?,
            Expr::InSubquery(s) => exact_eq || !string(&s.expr)?,
            // PostgreSQL's LIKE is case-sensitive, as DataFusion's.
            Expr::Like(l) => pg && !l.case_insensitive,
            // T-SQL casts truncate fractions and convert dates by styles:
            // only widening integer casts are sent.
            Expr::Cast(c) if sqlserver => {
                let from = c.expr.get_type(schema)?;
                widening_integer_cast(&from, c.field.data_type())
            }
            Expr::Cast(c) => {
                let from = c.expr.get_type(schema)?;
                match c.field.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 => is_string(&from),
                    to => {
                        self.dialect.cast_type(to).is_some()
                            && (to.is_numeric()
                                || matches!(to, DataType::Date32 | DataType::Boolean))
                            && !is_string(&from)
                    }
                }
            }
            Expr::ScalarFunction(f) => {
                let name = f.name();
                let both = matches!(name, "coalesce" | "nullif" | "abs");
                let pg_only = matches!(
                    name,
                    "date_part"
                        | "substr"
                        | "substring"
                        | "upper"
                        | "lower"
                        | "length"
                        | "character_length"
                        | "char_length"
                        | "btrim"
                        | "ltrim"
                        | "rtrim"
                        | "concat"
                );
                both || (pg && pg_only)
            }
            Expr::AggregateFunction(a) => {
                let name = a.func.name();
                let p = &a.params;
                let known = matches!(name, "count" | "sum" | "avg" | "min" | "max");
                let plain = p.filter.is_none() && p.order_by.is_empty();
                // count(DISTINCT text) on MySQL counts by collation
                // ('a' = 'A', and 'x' = 'x ' even under a binary one).
                let distinct_ok = !p.distinct
                    || (name == "count" && (exact_eq || !self.any_string(&p.args, schema)?));
                // T-SQL's sum of int is int (overflows where DataFusion's
                // bigint does not), avg of integers is an integer and of
                // decimals has another scale: only these are sent.
                let types_ok = !sqlserver
                    || match name {
                        "sum" => p.args.iter().try_fold(true, |ok, a| {
                            Ok::<_, DataFusionError>(
                                ok && matches!(
                                    a.get_type(schema)?,
                                    DataType::Int64 | DataType::Float64 | DataType::Decimal128(..)
                                ),
                            )
                        })?,
                        "avg" => p.args.iter().try_fold(true, |ok, a| {
                            Ok::<_, DataFusionError>(ok && a.get_type(schema)? == DataType::Float64)
                        })?,
                        _ => true,
                    };
                // min/max of strings follow the collation; PostgreSQL has
                // no min/max of boolean or bytea: only orderable types.
                let order_ok = !matches!(name, "min" | "max")
                    || p.args.iter().try_fold(true, |ok, a| {
                        Ok::<_, DataFusionError>(ok && orderable(&a.get_type(schema)?))
                    })?;
                known && plain && distinct_ok && order_ok && types_ok
            }
            _ => false,
        })
    }

    fn literal_ok(&self, v: &ScalarValue) -> bool {
        let pg = self.dialect == SourceDialect::Postgres;
        let sqlserver = self.dialect == SourceDialect::SqlServer;
        match v {
            // T-SQL has no boolean values; timestamps compare with
            // datetime columns by rules of the database's compatibility
            // level: kept here.
            ScalarValue::Boolean(_)
            | ScalarValue::TimestampMicrosecond(..)
            | ScalarValue::TimestampMillisecond(..)
            | ScalarValue::TimestampSecond(..)
                if sqlserver =>
            {
                false
            }
            ScalarValue::Null
            | ScalarValue::Boolean(_)
            | ScalarValue::Int8(_)
            | ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::Decimal128(..)
            | ScalarValue::Utf8(_)
            | ScalarValue::LargeUtf8(_)
            | ScalarValue::Utf8View(_)
            | ScalarValue::Date32(_) => true,
            // Written as a decimal, a single-precision value is compared
            // in double precision at the source (3.14 vs 3.1400001...).
            ScalarValue::Float32(_) => false,
            ScalarValue::Float64(v) => v.is_none_or(short_float),
            ScalarValue::TimestampMicrosecond(_, None)
            | ScalarValue::TimestampMillisecond(_, None)
            | ScalarValue::TimestampSecond(_, None) => true,
            ScalarValue::TimestampMicrosecond(_, Some(_))
            | ScalarValue::IntervalYearMonth(_)
            | ScalarValue::IntervalDayTime(_)
            | ScalarValue::IntervalMonthDayNano(_) => pg,
            _ => false,
        }
    }
}

/// Whether a double is written short enough to be read back exactly by
/// every source: DataFusion writes doubles without an exponent, so 1e-300
/// becomes 300 digits, which MariaDB reads as a DECIMAL of at most 65
/// digits — zero.
pub fn short_float(v: f64) -> bool {
    v.is_finite() && v.to_string().len() <= 24
}

/// A projection computing a column it does not name.
fn has_unnamed_expression(node: &LogicalPlan) -> bool {
    match node {
        LogicalPlan::Projection(p) => p
            .expr
            .iter()
            .any(|e| !matches!(e, Expr::Column(_) | Expr::Alias(_))),
        _ => false,
    }
}

/// An aggregate computing over nested arithmetic (`sum(a * (1 - b))`).
fn has_nested_arithmetic(node: &LogicalPlan) -> bool {
    let LogicalPlan::Aggregate(a) = node else {
        return false;
    };
    a.aggr_expr.iter().any(|e| {
        // Two binary operators in one aggregate, whatever lies between
        // them (casts included).
        let mut operators = 0;
        let _ = e.apply(|x| {
            if matches!(x, Expr::BinaryExpr(_)) {
                operators += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        });
        operators >= 2
    })
}

/// Types whose order (min/max) is the same at every source as in
/// DataFusion: numbers (but not `real`, compared in single precision
/// here), dates, times and timestamps.
fn orderable(t: &DataType) -> bool {
    (t.is_numeric() && *t != DataType::Float32)
        || matches!(
            t,
            DataType::Date32 | DataType::Time64(_) | DataType::Timestamp(_, _)
        )
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A reference to a column of boolean (bit) type.
fn is_boolean_column(e: &Expr, schema: &DFSchema) -> bool {
    matches!(e, Expr::Column(_)) && e.get_type(schema).ok() == Some(DataType::Boolean)
}

/// An operand of arithmetic T-SQL computes in the type DataFusion does:
/// int, bigint, float (and untyped NULL).
fn t_sql_arithmetic(e: &Expr, schema: &DFSchema) -> Result<bool> {
    Ok(matches!(
        e.get_type(schema)?,
        DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Null
    ))
}

/// A cast from an integer type to one at least as wide (or to float).
fn widening_integer_cast(from: &DataType, to: &DataType) -> bool {
    let width = |t: &DataType| match t {
        DataType::Int8 => Some(1),
        DataType::Int16 => Some(2),
        DataType::Int32 => Some(4),
        DataType::Int64 => Some(8),
        _ => None,
    };
    match (width(from), to) {
        (Some(_), DataType::Float64) => true,
        (Some(f), to) => width(to).is_some_and(|t| t >= f),
        _ => false,
    }
}

/// Whether `plan` does more than a table scan already does (projection,
/// filters, limit): only then is it worth sending as a whole.
fn worth_sending(plan: &LogicalPlan) -> Result<bool> {
    plan.exists(|p| {
        Ok(matches!(
            p,
            LogicalPlan::Join(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Union(_)
        ))
    })
}

/// Whether every table-qualified column of `query` (`"beda"."id"`) names
/// a relation of the SELECT it appears in. The unparser (DataFusion 55)
/// sometimes wraps part of a plan in a derived table (`derived_sort`,
/// `derived_projection`) while the select around it still names the table
/// inside: the source then refuses the statement ("missing FROM-clause
/// entry"). Such a sub-plan is not sent; its parts are tried instead.
/// Expressions holding a subquery are not checked (their own relations
/// are in scope inside them).
fn names_in_scope(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions, Expr as SqlExpr, GroupByExpr, OrderByKind, SelectItem, SetExpr,
        TableFactor, TableWithJoins,
    };
    fn relations(from: &[TableWithJoins], names: &mut Vec<String>) -> bool {
        fn factor(f: &TableFactor, names: &mut Vec<String>) -> bool {
            match f {
                TableFactor::Table { name, alias, .. } => {
                    let own = alias.as_ref().map(|a| a.name.value.clone()).or_else(|| {
                        name.0
                            .last()
                            .and_then(|p| p.as_ident())
                            .map(|i| i.value.clone())
                    });
                    names.extend(own);
                    true
                }
                TableFactor::Derived {
                    subquery, alias, ..
                } => {
                    names.extend(alias.as_ref().map(|a| a.name.value.clone()));
                    names_in_scope(subquery)
                }
                TableFactor::NestedJoin {
                    table_with_joins, ..
                } => relations(std::slice::from_ref(table_with_joins), names),
                _ => true,
            }
        }
        from.iter().all(|t| {
            factor(&t.relation, names) && t.joins.iter().all(|j| factor(&j.relation, names))
        })
    }
    fn checked(e: &SqlExpr, names: &[String]) -> bool {
        let mut subquery = false;
        let mut ok = true;
        let _ = visit_expressions(e, |x| {
            match x {
                SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => {
                    subquery = true
                }
                SqlExpr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let qualifier = &parts[parts.len() - 2].value;
                    if !names.iter().any(|n| n == qualifier) {
                        ok = false;
                    }
                }
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        subquery || ok
    }
    fn body(b: &SetExpr, order: &[&SqlExpr]) -> bool {
        match b {
            SetExpr::Select(select) => {
                let mut names = Vec::new();
                if !relations(&select.from, &mut names) {
                    return false;
                }
                let mut exprs: Vec<&SqlExpr> = order.to_vec();
                for item in &select.projection {
                    match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                            exprs.push(e)
                        }
                        _ => {}
                    }
                }
                exprs.extend(select.selection.as_ref());
                exprs.extend(select.having.as_ref());
                if let GroupByExpr::Expressions(group, _) = &select.group_by {
                    exprs.extend(group.iter());
                }
                for join in select.from.iter().flat_map(|t| t.joins.iter()) {
                    use datafusion::sql::sqlparser::ast::{JoinConstraint, JoinOperator as J};
                    let constraint = match &join.join_operator {
                        J::Join(c)
                        | J::Inner(c)
                        | J::Left(c)
                        | J::LeftOuter(c)
                        | J::Right(c)
                        | J::RightOuter(c)
                        | J::FullOuter(c) => Some(c),
                        _ => None,
                    };
                    if let Some(JoinConstraint::On(on)) = constraint {
                        exprs.push(on);
                    }
                }
                exprs.into_iter().all(|e| checked(e, &names))
            }
            SetExpr::Query(q) => names_in_scope(q),
            SetExpr::SetOperation { left, right, .. } => body(left, &[]) && body(right, &[]),
            _ => true,
        }
    }
    let order: Vec<&SqlExpr> = match query.order_by.as_ref().map(|o| &o.kind) {
        Some(OrderByKind::Expressions(exprs)) => exprs.iter().map(|o| &o.expr).collect(),
        _ => Vec::new(),
    };
    body(&query.body, &order)
}

/// `plan` with every join input that the unparser writes as a derived
/// table (a projection, aggregate, sort, limit, distinct or union), and
/// every sort or limit under a projection ([`sorts_below_projection`]),
/// wrapped in a `SubqueryAlias` of its own (`tautan_d1`, ...), and the
/// columns above it renamed to match; a projection on top gives the
/// columns back their planned names, so the result has `plan`'s schema.
///
/// Without it the unparser (DataFusion 55) names such a derived table
/// `derived_projection` (etc.) while the join condition still says
/// `lineitem.l_orderkey`, and the source rejects the statement. Plans with
/// subquery expressions are left as they are (their outer references
/// would need renaming too); [`Splitter::node_ok`] keeps those joins
/// local.
fn name_derived_tables(plan: &LogicalPlan) -> Result<LogicalPlan> {
    let has_subquery = plan.exists(|node| {
        node.expressions().iter().try_fold(false, |found, e| {
            Ok(found
                || e.exists(|x| {
                    Ok(matches!(
                        x,
                        Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                    ))
                })?)
        })
    })?;
    if has_subquery {
        return Ok(plan.clone());
    }
    let renamed = DerivedTableNamer::default().rename(plan)?;
    if renamed.schema().columns() == plan.schema().columns() {
        return Ok(renamed);
    }
    let planned: Vec<(Option<&TableReference>, &Arc<Field>)> = plan.schema().iter().collect();
    // Give the columns their planned names back: in the projection on top
    // when there is one (a second projection would turn it into a derived
    // table its own qualifiers cannot reach), else in a new one.
    let named = |expr: Expr, (qualifier, field): (Option<&TableReference>, &Arc<Field>)| {
        let expr = match expr {
            Expr::Alias(a) => *a.expr,
            other => other,
        };
        expr.alias_qualified(qualifier.cloned(), field.name())
    };
    let (exprs, input) = match renamed {
        LogicalPlan::Projection(p) => (p.expr, p.input),
        other => (
            other
                .schema()
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect(),
            Arc::new(other),
        ),
    };
    let exprs = exprs
        .into_iter()
        .zip(planned)
        .map(|(e, f)| named(e, f))
        .collect::<Vec<_>>();
    Ok(LogicalPlan::Projection(Projection::try_new(exprs, input)?))
}

/// The state of [`name_derived_tables`]: the aliases handed out and the
/// columns renamed so far.
#[derive(Default)]
struct DerivedTableNamer {
    next: usize,
    renames: HashMap<Column, Column>,
}

impl DerivedTableNamer {
    fn rename(&mut self, plan: &LogicalPlan) -> Result<LogicalPlan> {
        let mut inputs = plan
            .inputs()
            .into_iter()
            .map(|input| self.rename(input))
            .collect::<Result<Vec<_>>>()?;
        // A filter over a projection (DataFusion's common-subexpression
        // elimination puts one there) is written as a derived table too.
        let filters_derived = matches!(plan, LogicalPlan::Filter(f) if matches!(f.input.as_ref(), LogicalPlan::Projection(_)));
        if matches!(plan, LogicalPlan::Join(_)) || sorts_below_projection(plan) || filters_derived {
            inputs = inputs
                .into_iter()
                .map(|input| self.alias_if_derived(input))
                .collect::<Result<Vec<_>>>()?;
        }
        let renames: HashMap<&Column, &Column> = self.renames.iter().collect();
        let exprs = plan
            .expressions()
            .into_iter()
            .map(|e| replace_col(e, &renames))
            .collect::<Result<Vec<_>>>()?;
        let rebuilt = plan.with_new_exprs(exprs, inputs)?;
        // Output names built from renamed inputs (`sum(tautan_d1.x)`)
        // change too: later references follow them.
        for (before, after) in plan
            .schema()
            .columns()
            .into_iter()
            .zip(rebuilt.schema().columns())
        {
            if before != after {
                self.renamed(before, after);
            }
        }
        Ok(rebuilt)
    }

    /// Records that `before` is now `after`, also for the columns renamed
    /// to `before` earlier (a derived table over a derived table).
    fn renamed(&mut self, before: Column, after: Column) {
        for target in self.renames.values_mut() {
            if *target == before {
                *target = after.clone();
            }
        }
        self.renames.insert(before, after);
    }

    fn alias_if_derived(&mut self, input: LogicalPlan) -> Result<LogicalPlan> {
        if !is_unnamed_derived(&input) {
            return Ok(input);
        }
        self.next += 1;
        let alias = format!("tautan_d{}", self.next);
        let aliased =
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), alias.as_str())?);
        for (before, after) in aliased
            .inputs()
            .iter()
            .flat_map(|i| i.schema().columns())
            .zip(aliased.schema().columns())
        {
            self.renamed(before, after);
        }
        Ok(aliased)
    }
}

/// A projection over a sort or limit that does not end in an aggregate:
/// `SELECT label … ORDER BY id LIMIT 3` plans as
/// `Projection(label) → Limit → Sort(id) → …`, which the unparser
/// (DataFusion 55) writes as a derived table `derived_limit` while the
/// outer SELECT still says `angka.label`. (Over an aggregate the unparser
/// folds the sort into the aggregate's SELECT itself.)
fn sorts_below_projection(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Projection(p) = plan else {
        return false;
    };
    let mut node = p.input.as_ref();
    if !matches!(node, LogicalPlan::Sort(_) | LogicalPlan::Limit(_)) {
        return false;
    }
    while let LogicalPlan::Sort(_) | LogicalPlan::Limit(_) = node {
        match node.inputs().first() {
            Some(input) => node = input,
            None => return false,
        }
    }
    !matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Window(_))
}

/// How many input rows per group a grouped aggregate over one table must
/// fold, by the source's estimates, to be worth sending
/// ([`wide_aggregate`]).
pub const MIN_ROWS_PER_GROUP: f64 = 100.0;

/// Whether `plan` is (under projections) a grouped aggregate over one
/// table that the source estimates returns more than one row per
/// [`MIN_ROWS_PER_GROUP`] it reads: `avg(l_quantity) GROUP BY l_partkey`
/// over all of `lineitem`, say.
///
/// Such an aggregate saves little transfer, and a source runs it on one
/// backend where DataFusion spreads it over every core (and a join above
/// it may need only a few of its groups): TPC-H q17 and q20 ran 1.3× and
/// 1.5× slower with it sent. Aggregates with few groups (q01), with a
/// HAVING above them (q18) or without estimates are sent as before.
fn wide_aggregate(plan: &LogicalPlan) -> bool {
    let mut node = plan;
    let aggregate = loop {
        match node {
            LogicalPlan::Projection(p) => node = p.input.as_ref(),
            LogicalPlan::SubqueryAlias(a) => node = a.input.as_ref(),
            LogicalPlan::Aggregate(a) if !a.group_expr.is_empty() => break a,
            _ => return false,
        }
    };
    let mut input = aggregate.input.as_ref();
    let scan = loop {
        match input {
            LogicalPlan::Projection(p) => input = p.input.as_ref(),
            LogicalPlan::Filter(f) => input = f.input.as_ref(),
            LogicalPlan::SubqueryAlias(a) => input = a.input.as_ref(),
            LogicalPlan::TableScan(t) => break t,
            _ => return false,
        }
    };
    let Ok(provider) = source_as_provider(&scan.source) else {
        return false;
    };
    let Some(table) = remote_table(provider.as_ref()) else {
        return false;
    };
    let def = table.def();
    let Some(rows) = def.estimates.rows else {
        return false;
    };
    let mut groups = 1.0_f64;
    for key in &aggregate.group_expr {
        let Expr::Column(column) = key else {
            return false;
        };
        let Ok(index) = def.arrow_schema.index_of(&column.name) else {
            return false;
        };
        let Some(distinct) = def.estimates.distinct(index) else {
            return false;
        };
        groups *= distinct;
    }
    groups.min(rows) * MIN_ROWS_PER_GROUP > rows
}

/// A plan the unparser writes as a derived table with a made-up name when
/// it is the input of a join.
fn is_unnamed_derived(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Projection(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::Union(_)
    )
}

/// A projection on top names every output column (what the unparser needs
/// for a sub-plan inside a larger query).
fn with_projection(plan: LogicalPlan) -> Result<LogicalPlan> {
    if matches!(plan, LogicalPlan::Projection(_)) {
        return Ok(plan);
    }
    let exprs = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect::<Vec<_>>();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan),
    )?))
}
