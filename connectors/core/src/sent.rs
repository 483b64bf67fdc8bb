//! Which statements one query sent to which links, as sent: what the audit
//! log records as "the SQL sent to each link".
//!
//! The engine puts a [`SentStatements`] in the session config of a query
//! ([`datafusion::prelude::SessionConfig::set_extension`]). Every node that
//! reads a link — a [`RemoteScanExec`](crate::RemoteScanExec) or the
//! federation's whole sub-plan node — is wrapped by the physical optimizer
//! rule [`RecordSentStatements`] in a [`RecordingExec`], which makes the
//! query's list current on its thread while its child starts: the link's
//! executor writes each statement down ([`note`]) at the moment it builds
//! it, before it is sent. Nothing is recorded for a query that carries no
//! list.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

/// One statement sent to a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The link's name.
    pub link: String,
    /// The statement exactly as the link received it.
    pub sql: String,
}

/// The statements one query sent, in the order they were built.
#[derive(Debug, Default)]
pub struct SentStatements(Mutex<Vec<Sent>>);

impl SentStatements {
    /// At most this many statements are kept per query (a split scan sends
    /// one per part; the rest are counted, not kept).
    pub const KEEP: usize = 64;

    /// Writes down one statement.
    pub fn push(&self, link: &str, sql: &str) {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() < Self::KEEP {
            list.push(Sent {
                link: link.to_string(),
                sql: sql.to_string(),
            });
        }
    }

    /// The statements written down so far.
    pub fn list(&self) -> Vec<Sent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<SentStatements>>> = const { RefCell::new(None) };
}

/// Writes `sql` down as sent to `link`, in the list of the query whose link
/// node is starting on this thread (nothing when none is).
pub fn note(link: &str, sql: &str) {
    CURRENT.with(|current| {
        if let Some(list) = current.borrow().as_ref() {
            list.push(link, sql);
        }
    });
}

/// Runs `f` with `list` current on this thread (restoring what was current).
fn with_current<R>(list: Option<Arc<SentStatements>>, f: impl FnOnce() -> R) -> R {
    let before = CURRENT.with(|current| current.replace(list));
    let out = f();
    CURRENT.with(|current| current.replace(before));
    out
}

/// Wraps a node that reads a link: its statements go to the query's
/// [`SentStatements`] (from the task's session config) as it starts.
#[derive(Debug)]
pub struct RecordingExec {
    input: Arc<dyn ExecutionPlan>,
}

impl RecordingExec {
    /// `input`, recorded.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input }
    }
}

impl DisplayAs for RecordingExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RecordingExec")
    }
}

impl ExecutionPlan for RecordingExec {
    fn name(&self) -> &str {
        "RecordingExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> Result<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(RecordingExec { input })),
            Err(children) => Err(datafusion::error::DataFusionError::Internal(format!(
                "RecordingExec takes one child, got {}",
                children.len()
            ))),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let list = context.session_config().get_extension::<SentStatements>();
        with_current(list, || self.input.execute(partition, context))
    }
}

/// The physical optimizer rule that wraps every node reading a link in a
/// [`RecordingExec`]; it runs last, so no other rule sees the wrapper.
#[derive(Debug, Default)]
pub struct RecordSentStatements;

/// Names of the physical nodes that send statements to links.
const LINK_NODES: [&str; 2] = ["RemoteScanExec", "sql_federation_exec"];

impl PhysicalOptimizerRule for RecordSentStatements {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if LINK_NODES.contains(&node.name()) {
                let wrapped: Arc<dyn ExecutionPlan> = Arc::new(RecordingExec::new(node));
                Ok(Transformed::yes(wrapped))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "tautan_record_sent_statements"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_lands_only_in_the_current_list() {
        note("a", "SELECT 0");
        let list = Arc::new(SentStatements::default());
        with_current(Some(list.clone()), || {
            note("a", "SELECT 1");
            with_current(None, || note("b", "SELECT 2"));
            note("c", "SELECT 3");
        });
        note("d", "SELECT 4");
        let sent: Vec<_> = list.list().into_iter().map(|s| s.link).collect();
        assert_eq!(sent, ["a", "c"]);
    }
}
