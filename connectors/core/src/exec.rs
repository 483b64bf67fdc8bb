//! [`RemoteScanExec`]: the leaf of a plan that reads from a link.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};

use crate::{LinkRef, SnapshotShare, SourceQuery};

/// Sends one SQL statement to a link and streams the answer. `EXPLAIN`
/// shows the link and the exact SQL.
pub struct RemoteScanExec {
    link: LinkRef,
    /// One statement per partition.
    sqls: Vec<SourceQuery>,
    schema: SchemaRef,
    /// Shared by the parts of a split scan (one snapshot).
    share: Option<SnapshotShare>,
    properties: Arc<PlanProperties>,
}

impl RemoteScanExec {
    /// A scan of `link` running `sql`, producing `schema`.
    pub fn new(link: LinkRef, sql: SourceQuery, schema: SchemaRef) -> Self {
        Self::build(link, vec![sql], schema, None)
    }

    /// A scan split into parts, one partition each, all reading the
    /// snapshot `share` stands for (see [`Link::split_scan`](crate::Link::split_scan)).
    pub fn split(
        link: LinkRef,
        sqls: Vec<SourceQuery>,
        schema: SchemaRef,
        share: SnapshotShare,
    ) -> Self {
        Self::build(link, sqls, schema, Some(share))
    }

    fn build(
        link: LinkRef,
        sqls: Vec<SourceQuery>,
        schema: SchemaRef,
        share: Option<SnapshotShare>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(sqls.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            link,
            sqls,
            schema,
            share,
            properties,
        }
    }

    /// The statement of the first (often only) part.
    pub fn sql(&self) -> &str {
        self.sqls.first().map(SourceQuery::sql).unwrap_or_default()
    }

    /// The statement of every part.
    pub fn sqls(&self) -> impl Iterator<Item = &str> {
        self.sqls.iter().map(SourceQuery::sql)
    }

    pub fn link_name(&self) -> &str {
        self.link.name()
    }
}

impl fmt::Debug for RemoteScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteScanExec")
            .field("link", &self.link.name())
            .field("sqls", &self.sqls().collect::<Vec<_>>())
            .finish()
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        if self.sqls.len() == 1 {
            write!(
                f,
                "RemoteScanExec: link={} sql={}",
                self.link.name(),
                self.sql()
            )
        } else {
            write!(
                f,
                "RemoteScanExec: link={} parts={} sql={}",
                self.link.name(),
                self.sqls.len(),
                self.sqls().collect::<Vec<_>>().join(" | ")
            )
        }
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        "RemoteScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
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
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let query = self.sqls.get(partition).ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!(
                "RemoteScanExec has {} partitions, asked for {partition}",
                self.sqls.len()
            ))
        })?;
        tracing::debug!(link = self.link.name(), partition, sql = %query, "remote scan");
        crate::sent::note(self.link.name(), query.sql());
        Ok(match &self.share {
            Some(share) => self
                .link
                .execute_part(query.clone(), self.schema.clone(), share),
            None => self.link.execute(query.clone(), self.schema.clone()),
        })
    }
}
