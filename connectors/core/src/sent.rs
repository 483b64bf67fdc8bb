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
//! it, before it is sent. The wrapper also times what each link returns
//! ([`LinkRun`]: rows, Arrow bytes, seconds, whether it ended well), for
//! the completion record and the per-link metrics. Nothing is recorded for
//! a query that carries no list.

use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::RecordBatchStream;
use futures::Stream;

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

/// What one link node returned: one statement's answer as it streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRun {
    /// The link's name.
    pub link: String,
    /// Rows returned.
    pub rows: u64,
    /// Arrow bytes returned.
    pub bytes: u64,
    /// From the start of the statement to its last batch (or its end).
    pub seconds: f64,
    /// How it ended: `ok`, `error`, or `dropped` (the query stopped
    /// reading first: a LIMIT met, a cancel, a client gone).
    pub outcome: &'static str,
}

/// The Arrow bytes a batch holds (its slices only), as the audit log and
/// the metrics count what a statement returned.
pub fn arrow_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0) as u64)
        .sum()
}

/// The statements one query sent, in the order they were built, and what
/// each link node returned.
#[derive(Debug, Default)]
pub struct SentStatements {
    sent: Mutex<Vec<Sent>>,
    runs: Mutex<Vec<LinkRun>>,
}

impl SentStatements {
    /// At most this many statements are kept per query (a split scan sends
    /// one per part; the rest are counted, not kept).
    pub const KEEP: usize = 64;

    /// Writes down one statement.
    pub fn push(&self, link: &str, sql: &str) {
        let mut list = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() < Self::KEEP {
            list.push(Sent {
                link: link.to_string(),
                sql: sql.to_string(),
            });
        }
    }

    /// The statements written down so far.
    pub fn list(&self) -> Vec<Sent> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes down what one link node returned.
    pub fn ran(&self, run: LinkRun) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.len() < Self::KEEP {
            runs.push(run);
        }
    }

    /// What the link nodes returned so far.
    pub fn runs(&self) -> Vec<LinkRun> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
/// [`SentStatements`] (from the task's session config) as it starts, and
/// what it returns is timed and counted.
#[derive(Debug)]
pub struct RecordingExec {
    input: Arc<dyn ExecutionPlan>,
    link: String,
}

impl RecordingExec {
    /// `input`, which reads `link`, recorded.
    pub fn new(input: Arc<dyn ExecutionPlan>, link: String) -> Self {
        Self { input, link }
    }
}

/// A link node's stream, counted; its [`LinkRun`] is written once, at the
/// end, at an error, or when dropped unfinished.
struct Timed {
    inner: SendableRecordBatchStream,
    list: Arc<SentStatements>,
    run: LinkRun,
    started: Instant,
    done: bool,
}

impl Timed {
    fn finish(&mut self, outcome: &'static str) {
        if !self.done {
            self.done = true;
            let mut run = self.run.clone();
            run.outcome = outcome;
            run.seconds = self.started.elapsed().as_secs_f64();
            self.list.ran(run);
        }
    }
}

impl Stream for Timed {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(batch))) => {
                self.run.rows += batch.num_rows() as u64;
                self.run.bytes += arrow_bytes(batch);
            }
            Poll::Ready(Some(Err(_))) => self.finish("error"),
            Poll::Ready(None) => self.finish("ok"),
            Poll::Pending => {}
        }
        polled
    }
}

impl RecordBatchStream for Timed {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        self.finish("dropped");
    }
}

impl DisplayAs for RecordingExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RecordingExec: link={}", self.link)
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
            Ok([input]) => Ok(Arc::new(RecordingExec {
                input,
                link: self.link.clone(),
            })),
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
        let Some(list) = context.session_config().get_extension::<SentStatements>() else {
            return self.input.execute(partition, context);
        };
        let started = Instant::now();
        let inner = with_current(Some(list.clone()), || {
            self.input.execute(partition, context)
        })?;
        Ok(Box::pin(Timed {
            inner,
            list,
            run: LinkRun {
                link: self.link.clone(),
                rows: 0,
                bytes: 0,
                seconds: 0.0,
                outcome: "ok",
            },
            started,
            done: false,
        }))
    }
}

/// The physical optimizer rule that wraps every node reading a link in a
/// [`RecordingExec`]; it runs last, so no other rule sees the wrapper.
#[derive(Debug, Default)]
pub struct RecordSentStatements;

/// The link a physical node reads, when it is one that sends statements
/// to a link.
fn link_of(node: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let any: &dyn std::any::Any = node.as_ref();
    if let Some(scan) = any.downcast_ref::<crate::RemoteScanExec>() {
        return Some(scan.link_name().to_string());
    }
    any.downcast_ref::<datafusion_federation::sql::VirtualExecutionPlan>()
        .map(|v| v.executor().name().to_string())
}

impl PhysicalOptimizerRule for RecordSentStatements {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match link_of(&node) {
            Some(link) => {
                let wrapped: Arc<dyn ExecutionPlan> = Arc::new(RecordingExec::new(node, link));
                Ok(Transformed::yes(wrapped))
            }
            None => Ok(Transformed::no(node)),
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
