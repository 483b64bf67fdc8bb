//! Where statements run: a tokio runtime of their own, apart from the one
//! that serves connections.
//!
//! Reading sockets, logging users in, answering a cancel request and
//! timing a statement out are small, latency-bound jobs; planning and
//! executing a query can keep a core busy for minutes. On one runtime a few
//! heavy queries can occupy every worker thread, and then a cancel request
//! or a login waits behind them. So each statement is planned and its rows
//! computed on the *statement runtime* ([`start`]), and only finished
//! batches cross over, through a short channel, to the connection's task on
//! the I/O runtime. The operating system shares the cores between the two
//! runtimes' threads, so a cancel or a statement timeout is acted on at
//! once; dropping the stream on the I/O side aborts the statement's task,
//! which drops its plan and with it what it started at the sources.
//!
//! A panic while a statement is planned or run is caught on the statement
//! runtime and becomes that statement's error (XX000): the rows already
//! sent are never taken for a complete answer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{FutureExt, StreamExt};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, oneshot};

use crate::error::QueryError;

/// Batches computed ahead of the client: enough to overlap computing with
/// sending, few enough that memory stays in the statement's budget.
const AHEAD: usize = 2;

/// The statement runtime, built on first use; `None` when the system
/// refused its threads (statements then run on the caller's runtime).
fn runtime() -> Option<Handle> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let threads = std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(2);
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("tautan-exec")
                .enable_all()
                .build()
            {
                Ok(rt) => Some(rt),
                Err(e) => {
                    tracing::warn!(error = %e, "no statement runtime; statements share the I/O runtime");
                    None
                }
            }
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Aborts the statement's task when the stream reading it is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `plan` (the planning of a statement, ending in its stream of rows)
/// on the statement runtime and returns a stream of the same rows, read
/// from the caller's runtime.
pub async fn start<F>(plan: F) -> Result<SendableRecordBatchStream, QueryError>
where
    F: Future<Output = Result<SendableRecordBatchStream, QueryError>> + Send + 'static,
{
    let Some(runtime) = runtime() else {
        return plan.await;
    };
    let (planned_tx, planned_rx) = oneshot::channel();
    let (rows_tx, rows_rx) = mpsc::channel(AHEAD);
    let task = runtime.spawn(async move {
        let planned = AssertUnwindSafe(plan).catch_unwind().await;
        let mut stream = match planned {
            Ok(Ok(stream)) => {
                let _ = planned_tx.send(Ok(stream.schema()));
                stream
            }
            Ok(Err(e)) => {
                let _ = planned_tx.send(Err(e));
                return;
            }
            Err(panic) => {
                let text = panic_text(panic.as_ref());
                tracing::error!(panic = %text, "panic while planning a statement");
                let _ = planned_tx.send(Err(QueryError::new(
                    "XX000",
                    format!("internal error: {text}"),
                )));
                return;
            }
        };
        loop {
            let next = AssertUnwindSafe(stream.next()).catch_unwind().await;
            let item = match next {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(panic) => {
                    let text = panic_text(panic.as_ref());
                    tracing::error!(panic = %text, "panic while running a statement");
                    Err(DataFusionError::External(Box::new(QueryError::new(
                        "XX000",
                        format!("internal error: {text}"),
                    ))))
                }
            };
            let failed = item.is_err();
            if rows_tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let abort = AbortOnDrop(task);
    let schema = match planned_rx.await {
        Ok(planned) => planned?,
        Err(_) => {
            return Err(QueryError::new(
                "XX000",
                "internal error: the statement's task ended before it was planned",
            ))
        }
    };
    let rows = futures::stream::unfold((rows_rx, abort), |(mut rx, abort)| async move {
        rx.recv().await.map(|item| (item, (rx, abort)))
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
}

/// A physical optimizer rule that makes every join give its thread back to
/// the scheduler regularly.
///
/// DataFusion's operators poll their inputs in a loop until an input is
/// pending, and only its leaves count batches against tokio's cooperative
/// budget ([`datafusion::physical_plan::coop`]). A join can turn one input
/// batch into millions of output batches (a cross join, a join on a
/// low-cardinality key) without touching a leaf: the aggregate above it
/// then never returns, its worker thread runs nothing else, and an abort —
/// a cancel, a statement timeout — waits until the join is done. Wrapping
/// each join's output in a [`CooperativeExec`] makes it count its own
/// batches, so a heavy statement yields every 128 batches: other
/// statements get their turn on the statement runtime and a cancel takes
/// effect at once.
///
/// [`CooperativeExec`]: datafusion::physical_plan::coop::CooperativeExec
#[derive(Debug, Default)]
pub struct YieldingJoins;

impl datafusion::physical_optimizer::PhysicalOptimizerRule for YieldingJoins {
    fn optimize(
        &self,
        plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> datafusion::error::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>
    {
        use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
        plan.transform_up(|node| {
            if node.name().ends_with("JoinExec") {
                let wrapped: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan> =
                    std::sync::Arc::new(datafusion::physical_plan::coop::CooperativeExec::new(
                        node,
                    ));
                Ok(Transformed::yes(wrapped))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "tautan_yielding_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn rows_and_errors_cross_over() {
        let ctx = SessionContext::new();
        let df = ctx
            .sql("SELECT * FROM (VALUES (1), (2), (3)) t(x)")
            .await
            .expect("plan");
        let stream = start(async move { Ok(df.execute_stream().await?) })
            .await
            .expect("started");
        let batches: Vec<_> = stream.collect().await;
        let rows: usize = batches
            .iter()
            .map(|b| b.as_ref().map(|b| b.num_rows()).unwrap_or(0))
            .sum();
        assert_eq!(rows, 3);

        let Err(err) = start(async { Err(QueryError::new("42601", "bad")) }).await else {
            panic!("a planning error must come back as the statement's error");
        };
        assert_eq!(err.code, "42601");
    }

    #[tokio::test]
    async fn a_panic_is_the_statements_error() {
        let Err(err) = start(async { panic!("boom") }).await else {
            panic!("a panic while planning must come back as the statement's error");
        };
        assert_eq!(err.code, "XX000");
        assert!(err.message.contains("boom"));
    }
}
