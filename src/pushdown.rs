//! Where a plan's single-link sub-plans are sent to their link.
//!
//! [`SubPlanPushdown`] wraps datafusion-federation's
//! [`FederationOptimizerRule`]: it runs last in each optimizer pass (after
//! DataFusion has pruned columns and pushed filters into scans, so the SQL a
//! link receives names only what the query needs), can be turned off per
//! session with `SET tautan.pushdown = off` (scans then still push their
//! projection, filters and limit), and turns the rule's "not implemented"
//! answers into "nothing federated" instead of a failed query. Which parts
//! of a sub-plan a link may run is decided per dialect in
//! [`tautan_connector::federation`].

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::optimizer::Optimizer;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion_federation::{FederatedPlanner, FederationOptimizerRule};

use crate::pg_catalog::Settings;

/// The session setting that switches sub-plan pushdown (`on`/`off`).
pub const SETTING: &str = "tautan.pushdown";

/// DataFusion's optimizer rules, its simplifier made NULL-safe
/// ([`crate::simplify`]), with [`SubPlanPushdown`] appended.
pub fn optimizer_rules(settings: Settings) -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    // A policed scan keeps its table's estimates (a wide aggregate over it
    // stays in tautan, as over the table itself); set once per process.
    tautan_connector::federation::register_unwrap(crate::policy::federated::unwrap);
    let mut rules = crate::simplify::null_safe(Optimizer::new().rules);
    rules.push(Arc::new(SubPlanPushdown {
        inner: FederationOptimizerRule::new(),
        settings,
    }));
    rules
}

/// The physical planner that turns federated sub-plans into remote scans
/// (and the policy notes around some of them into policy nodes).
pub fn query_planner() -> Arc<dyn QueryPlanner + Send + Sync> {
    Arc::new(Planner)
}

/// DataFusion's physical planner with datafusion-federation's and the
/// policy's extension planners.
#[derive(Debug)]
struct Planner;

#[async_trait::async_trait]
impl QueryPlanner for Planner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::physical_planner::PhysicalPlanner;
        datafusion::physical_planner::DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(FederatedPlanner::new()),
            Arc::new(crate::policy::federated::NotePlanner),
        ])
        .create_physical_plan(logical_plan, session)
        .await
    }
}

/// Sends each largest single-link sub-plan to its link (see the module
/// docs).
#[derive(Debug)]
pub struct SubPlanPushdown {
    inner: FederationOptimizerRule,
    settings: Settings,
}

impl SubPlanPushdown {
    fn enabled(&self) -> bool {
        let settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        !matches!(
            settings
                .get(SETTING)
                .map(|v| v.to_ascii_lowercase())
                .as_deref(),
            Some("off" | "false" | "0" | "no")
        )
    }
}

impl OptimizerRule for SubPlanPushdown {
    fn name(&self) -> &str {
        "tautan_subplan_pushdown"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !self.enabled() {
            return Ok(Transformed::no(plan));
        }
        // Policed tables may go with the sub-plan around them when that is
        // as safe as reading them through their policy
        // ([`crate::policy::federated`]); else they stay as they are.
        if let Some(inlined) = crate::policy::federated::inline(&plan)? {
            match self.inner.rewrite(inlined.plan.clone(), config) {
                Ok(t) if t.transformed => {
                    if let Some(accepted) = inlined.accept(t.data)? {
                        return Ok(Transformed::yes(without_identity_projections(accepted)?));
                    }
                }
                Ok(_) | Err(DataFusionError::NotImplemented(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match self.inner.rewrite(plan.clone(), config) {
            Ok(t) if t.transformed => Ok(Transformed::yes(without_identity_projections(t.data)?)),
            Ok(t) => Ok(t),
            Err(DataFusionError::NotImplemented(what)) => {
                tracing::debug!(%what, "sub-plan pushdown skipped");
                Ok(Transformed::no(plan))
            }
            Err(e) => Err(e),
        }
    }
}

/// `plan` without the projections that only repeat their input's columns.
///
/// The federation rule leaves such projections around the parts it did
/// not send. In a later pass they would sit between DataFusion's joins and
/// the cross joins of a FROM list that `eliminate_cross_join` has yet to
/// turn into joins, and stop it (TPC-H q02 kept `part × supplier`,
/// 8 million rows, and ran 4× slower than with pushdown off).
fn without_identity_projections(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::Projection(p) = &node else {
            return Ok(Transformed::no(node));
        };
        let input = p.input.schema();
        let identity = p.schema == *input
            && p.expr.len() == input.fields().len()
            && p.expr
                .iter()
                .zip(input.columns())
                .all(|(e, c)| matches!(e, Expr::Column(col) if *col == c));
        if identity {
            Ok(Transformed::yes(p.input.as_ref().clone()))
        } else {
            Ok(Transformed::no(node))
        }
    })
    .map(|t| t.data)
}
