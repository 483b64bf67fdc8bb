//! [`RemoteTable`]: one remote table as a DataFusion table provider.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use crate::pushdown::ScanSql;
use crate::{ColumnRead, LinkRef, RemoteScanExec, RemoteTableDef, ScanOptions};

/// A table of a link. Planning uses only the cached schema; the source is
/// contacted when the plan executes.
#[derive(Debug)]
pub struct RemoteTable {
    link: LinkRef,
    def: RemoteTableDef,
    /// Columns that can appear in pushed-down filters (not selected through
    /// a cast).
    pushable: Vec<bool>,
}

impl RemoteTable {
    /// Wraps `def` of `link`.
    pub fn new(link: LinkRef, def: RemoteTableDef) -> Self {
        let pushable = def
            .reads
            .iter()
            .map(|read| *read == ColumnRead::Plain)
            .collect();
        Self {
            link,
            def,
            pushable,
        }
    }

    /// The table as the link described it.
    pub fn def(&self) -> &RemoteTableDef {
        &self.def
    }

    /// Whether every column is read as it is (none through a cast).
    pub fn all_columns_plain(&self) -> bool {
        self.pushable.iter().all(|p| *p)
    }

    /// The link this table belongs to.
    pub fn link(&self) -> &LinkRef {
        &self.link
    }

    fn classify(&self, filter: &Expr) -> TableProviderFilterPushDown {
        self.link
            .dialect()
            .classify(filter, &self.def.arrow_schema, &self.pushable)
    }
}

#[async_trait]
impl TableProvider for RemoteTable {
    fn schema(&self) -> SchemaRef {
        self.def.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        if self.def.is_view {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| self.classify(f)).collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut pushed = Vec::with_capacity(filters.len());
        let mut all_exact = true;
        for f in filters {
            match self.classify(f) {
                TableProviderFilterPushDown::Exact => pushed.push(f.clone()),
                TableProviderFilterPushDown::Inexact => {
                    all_exact = false;
                    pushed.push(f.clone())
                }
                TableProviderFilterPushDown::Unsupported => all_exact = false,
            }
        }
        let wanted_limit = limit;
        let limit = if all_exact { limit } else { None };
        let write = |part| {
            ScanSql {
                dialect: self.link.dialect(),
                def: &self.def,
                projection: projection.map(Vec::as_slice),
                filters: &pushed,
                limit,
                part,
            }
            .to_query()
        };
        let schema = match projection {
            Some(p) => Arc::new(self.def.arrow_schema.project(p)?),
            None => self.def.arrow_schema.clone(),
        };
        // A scan without a limit may be split into parts read in parallel.
        let parts = state
            .config()
            .get_extension::<ScanOptions>()
            .map(|o| o.parts())
            .unwrap_or(1);
        if wanted_limit.is_none() && parts > 1 {
            if let Some(split) = self.link.split_scan(&self.def, parts) {
                let sqls = split
                    .predicates
                    .iter()
                    .map(|p| write(Some(p)))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Arc::new(RemoteScanExec::split(
                    self.link.clone(),
                    sqls,
                    schema,
                    split.share,
                )));
            }
        }
        Ok(Arc::new(RemoteScanExec::new(
            self.link.clone(),
            write(None)?,
            schema,
        )))
    }
}
