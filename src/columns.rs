//! A table as a user granted only some of its columns sees it: a table of
//! just those columns.
//!
//! [`crate::catalog::UserCatalogList`] hands these out for every table the
//! user's grants cover only in part, so whatever is derived from a table's
//! schema names only granted columns: `information_schema.columns`,
//! `pg_attribute` (psql's `\d`), `pg_description`, primary keys, `SELECT *`
//! (which reads the granted columns), Describe, EXPLAIN, and DataFusion's
//! errors. A column the user names explicitly but may not read is still
//! refused with 42501 ([`crate::engine`]: the name the user typed, mapped
//! back to the full table).
//!
//! A remote table becomes a remote table of fewer columns (so sub-plans
//! over it are still sent to its link, and the SQL sent names only those
//! columns); any other table (files, reference data) is wrapped.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use tautan_connector::federation::{remote_table, LinkFederation};
use tautan_connector::RemoteTable;

/// `table` with only the columns in `granted`, in the table's order; the
/// table itself when every column is granted.
pub fn granted_view(
    table: &Arc<dyn TableProvider>,
    granted: &BTreeSet<String>,
) -> Arc<dyn TableProvider> {
    let schema = table.schema();
    let keep: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| granted.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    if keep.len() == schema.fields().len() {
        return table.clone();
    }
    let Ok(projected) = schema.project(&keep) else {
        return Arc::new(NoColumns::of(table.table_type()));
    };
    let projected = Arc::new(projected);
    if let Some(remote) = remote_table(table.as_ref()) {
        let full = remote.def();
        if full.arrow_schema.fields().len() == schema.fields().len() {
            let mut def = full.clone();
            def.arrow_schema = projected;
            def.reads = keep
                .iter()
                .filter_map(|i| full.reads.get(*i).copied())
                .collect();
            if !full.estimates.distinct.is_empty() {
                def.estimates.distinct = keep.iter().map(|i| full.estimates.distinct(*i)).collect();
            }
            let link = remote.link().clone();
            return LinkFederation::new(link.clone()).table(RemoteTable::new(link, def));
        }
    }
    Arc::new(GrantedColumns {
        inner: table.clone(),
        columns: keep,
        schema: projected,
    })
}

/// Any table, scanned through its granted columns only.
#[derive(Debug)]
struct GrantedColumns {
    inner: Arc<dyn TableProvider>,
    /// Index in `inner`'s schema of each column of `schema`.
    columns: Vec<usize>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for GrantedColumns {
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
        // Filters name columns, all of them granted ones here.
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner: Vec<usize> = match projection {
            Some(p) => p
                .iter()
                .map(|i| {
                    self.columns.get(*i).copied().ok_or_else(|| {
                        DataFusionError::Internal(format!("no column {i} in the granted view"))
                    })
                })
                .collect::<Result<_>>()?,
            None => self.columns.clone(),
        };
        self.inner.scan(state, Some(&inner), filters, limit).await
    }
}

/// A table none of whose columns are granted (grants name columns the
/// table does not have).
#[derive(Debug)]
struct NoColumns {
    table_type: TableType,
}

impl NoColumns {
    fn of(table_type: TableType) -> Self {
        Self { table_type }
    }
}

#[async_trait]
impl TableProvider for NoColumns {
    fn schema(&self) -> SchemaRef {
        Arc::new(datafusion::arrow::datatypes::Schema::empty())
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
            self.schema(),
        )))
    }
}
