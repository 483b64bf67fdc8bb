//! Snapshots kept while queries read them.
//!
//! A query plans over snapshot `n` of a pull, then opens its file when it
//! executes. Two runs publishing in between would otherwise remove that
//! file (retention keeps the served snapshot and the one it replaced) and
//! the query would fail halfway. Every scan of a snapshot holds a
//! [`Lease`] from planning until its last stream is dropped; pruning skips
//! leased snapshots, and the last lease of a snapshot prunes again when it
//! goes. Leases are per process: a `tautan pull` run in another process
//! only keeps the replaced snapshot.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

use super::store::PullDir;

/// How many scans read each (pull, snapshot) now.
#[derive(Debug, Default)]
pub struct Readers {
    counts: Mutex<HashMap<(String, u64), usize>>,
}

impl Readers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), usize>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a scan is reading snapshot `id` of pull `pull`.
    pub fn reading(&self, pull: &str, id: u64) -> bool {
        self.lock().contains_key(&(pull.to_string(), id))
    }
}

/// Which snapshot of which pull, and how to prune its folder.
#[derive(Debug)]
struct Snapshot {
    readers: Arc<Readers>,
    dir: PullDir,
    pull: String,
    id: u64,
    retention: usize,
}

impl Snapshot {
    fn key(&self) -> (String, u64) {
        (self.pull.clone(), self.id)
    }
}

/// One scan's hold on a snapshot; released (and the pull pruned, if it was
/// the last hold) when dropped.
#[derive(Debug)]
pub struct Lease {
    snapshot: Arc<Snapshot>,
}

impl Lease {
    fn take(snapshot: &Arc<Snapshot>) -> Arc<Self> {
        *snapshot.readers.lock().entry(snapshot.key()).or_insert(0) += 1;
        Arc::new(Self {
            snapshot: snapshot.clone(),
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let s = &self.snapshot;
        let last = {
            let mut counts = s.readers.lock();
            match counts.get_mut(&s.key()) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    counts.remove(&s.key());
                    true
                }
            }
        };
        if last {
            s.dir
                .prune(s.retention, &|id| s.readers.reading(&s.pull, id));
        }
    }
}

/// A snapshot's table: the Parquet file's own provider, with every scan
/// holding a [`Lease`] on the snapshot.
#[derive(Debug)]
pub struct LeasedSnapshot {
    file: Arc<dyn TableProvider>,
    snapshot: Arc<Snapshot>,
}

impl LeasedSnapshot {
    /// Snapshot `id` of pull `pull` (in `dir`), read through `file`.
    pub fn new(
        file: Arc<dyn TableProvider>,
        readers: Arc<Readers>,
        dir: PullDir,
        pull: &str,
        id: u64,
        retention: usize,
    ) -> Self {
        Self {
            file,
            snapshot: Arc::new(Snapshot {
                readers,
                dir,
                pull: pull.to_string(),
                id,
                retention,
            }),
        }
    }
}

#[async_trait]
impl TableProvider for LeasedSnapshot {
    fn schema(&self) -> SchemaRef {
        self.file.schema()
    }

    fn table_type(&self) -> TableType {
        self.file.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.file.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Taken before the file is looked at: from here on no prune removes it.
        let lease = Lease::take(&self.snapshot);
        let input = self.file.scan(state, projection, filters, limit).await?;
        Ok(Arc::new(LeasedExec::new(input, lease)))
    }
}

/// Passes its input through, holding a [`Lease`] for as long as the plan
/// or any of its streams lives.
#[derive(Debug)]
struct LeasedExec {
    input: Arc<dyn ExecutionPlan>,
    lease: Arc<Lease>,
    properties: Arc<PlanProperties>,
}

impl LeasedExec {
    fn new(input: Arc<dyn ExecutionPlan>, lease: Arc<Lease>) -> Self {
        let properties = input.properties().clone();
        Self {
            input,
            lease,
            properties,
        }
    }
}

impl DisplayAs for LeasedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SnapshotLeaseExec: pull={} snapshot={}",
            self.lease.snapshot.pull, self.lease.snapshot.id
        )
    }
}

impl ExecutionPlan for LeasedExec {
    fn name(&self) -> &str {
        "SnapshotLeaseExec"
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

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(Self::new(input, self.lease.clone()))),
            Err(children) => Err(datafusion::error::DataFusionError::Internal(format!(
                "SnapshotLeaseExec has one input, given {}",
                children.len()
            ))),
        }
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
        let stream = self.input.execute(partition, context)?;
        let schema = stream.schema();
        let lease = self.lease.clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map(move |batch| {
                let _held = &lease;
                batch
            }),
        )))
    }
}
