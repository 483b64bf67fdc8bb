//! The grant check: who may name which table, and read which columns.
//!
//! Runs twice for every statement ([`crate::engine::Session::prepare`]):
//!
//! - [`GrantCheck::names`] **before planning**, on every table the statement
//!   names (CTEs, subqueries, UNION, joins): a table the user may not see is
//!   42P01, as if it did not exist; one an agreement names but no longer
//!   grants is 42501 saying why. Nothing has been planned and no source
//!   contacted yet.
//! - [`GrantCheck::columns`] **after optimizing**, on each scan's projection
//!   and the filters pushed into it (also inside sub-plans sent whole to a
//!   link): a column outside a partial grant is 42501, naming the agreement
//!   that gives the table without it.
//!
//! Row filters and masks are not checked here: they are part of the table a
//! policed user reads ([`crate::policy`]).

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::TableReference;
use datafusion::logical_expr::LogicalPlan;

use crate::catalog::{Registry, PUBLIC_SCHEMA, SYSTEM_SCHEMA};
use crate::error::QueryError;
use crate::grants::{display_name, Access, TableAccess};

/// A table a statement names, resolved against the registry.
#[derive(Debug, Clone)]
pub struct NamedTable {
    /// The catalog (a link's name, or the federation's database).
    pub catalog: String,
    /// The schema inside it (`public`, `ref`, `mat`, a link's schema).
    pub schema: String,
    /// The table.
    pub table: String,
    /// The name as the statement wrote it (for errors).
    pub written: String,
}

/// One user's grants, applied to one statement's names and plan.
#[derive(Debug, Clone, Copy)]
pub struct GrantCheck<'a> {
    registry: &'a Registry,
    access: &'a Access,
}

impl<'a> GrantCheck<'a> {
    /// The check of `access` over the tables of `registry`.
    pub fn new(registry: &'a Registry, access: &'a Access) -> Self {
        Self { registry, access }
    }

    /// The grant check on names. Returns the tables that still need their
    /// source to be up (every named table but the browsing schemas:
    /// `information_schema`, `pg_catalog` and `system`, which show each
    /// user only what they may see).
    pub fn names(&self, references: &[TableReference]) -> Result<Vec<NamedTable>, QueryError> {
        let database = &self.registry.database;
        let mut named = Vec::with_capacity(references.len());
        for r in references {
            let resolved = r.clone().resolve(database, PUBLIC_SCHEMA);
            let table = resolved.table.as_ref();
            let (catalog, schema) = self
                .registry
                .locate(resolved.catalog.as_ref(), resolved.schema.as_ref());
            if schema == "information_schema" || schema == "pg_catalog" {
                continue;
            }
            if catalog == database.as_str() && schema == SYSTEM_SCHEMA {
                // The system tables show each user their own part; the
                // audit log only to the custodian and producers.
                if table == "audit" && !crate::audit::table::may_read(self.access) {
                    return Err(crate::audit::table::refused());
                }
                continue;
            }
            let name = self.registry.grant_name(catalog, schema, table);
            if self.access.table(&name) == TableAccess::Invisible {
                // An agreement naming this user covers the table but grants
                // nothing now: say which, and why.
                if let Some(why) = self.access.lapsed(&name) {
                    return Err(QueryError::new(
                        "42501",
                        format!("permission denied for table {}: {why}", display_name(&name)),
                    ));
                }
                return Err(QueryError::undefined_table(&r.to_string()));
            }
            named.push(NamedTable {
                catalog: catalog.to_string(),
                schema: schema.to_string(),
                table: table.to_string(),
                written: r.to_string(),
            });
        }
        Ok(named)
    }

    /// A column the planner did not find because the user may not read it:
    /// a table granted in part shows only its granted columns
    /// ([`crate::columns`]), so naming another of its columns fails to
    /// resolve. When the name is a real column of such a table in the
    /// statement, the answer is PostgreSQL's 42501 for it (naming only what
    /// the user typed); an unknown name stays 42703 (`None`).
    pub fn denied_column(
        &self,
        error: &datafusion::error::DataFusionError,
        references: &[TableReference],
    ) -> Option<QueryError> {
        use datafusion::common::SchemaError;
        use datafusion::error::DataFusionError;
        let DataFusionError::SchemaError(e, _) = error.find_root() else {
            return None;
        };
        let SchemaError::FieldNotFound { field, .. } = e.as_ref() else {
            return None;
        };
        let database = &self.registry.database;
        references.iter().find_map(|r| {
            let resolved = r.clone().resolve(database, PUBLIC_SCHEMA);
            let (catalog, schema, table) = (
                resolved.catalog.as_ref(),
                resolved.schema.as_ref(),
                resolved.table.as_ref(),
            );
            let name = self.registry.grant_name(catalog, schema, table);
            match self.access.table(&name) {
                TableAccess::Columns(granted)
                    if !granted.contains(&field.name)
                        && self
                            .registry
                            .has_column(catalog, schema, table, &field.name) =>
                {
                    Some(self.column_denied(&field.name, &name))
                }
                _ => None,
            }
        })
    }

    /// Column grants, on the optimized plan: each scan's projection and the
    /// filters pushed into it, inside sub-plans sent whole to a link too.
    pub fn columns(&self, plan: &LogicalPlan) -> Result<(), QueryError> {
        each_scan(plan, &mut |scan| {
            let name = self.scan_name(scan);
            let access = self.access.table(&name);
            if let TableAccess::Columns(_) = &access {
                if let Some(col) = scan_columns(scan).iter().find(|c| !access.allows_column(c)) {
                    return Err(self.column_denied(col, &name));
                }
            }
            Ok(())
        })
    }

    /// What the optimized plan reads, table by table, for the audit log:
    /// the columns each scan projects or filters on, and the agreements the
    /// table is read under.
    pub fn reads(&self, plan: &LogicalPlan) -> Vec<crate::audit::TableRead> {
        let mut reads: Vec<crate::audit::TableRead> = Vec::new();
        let _ = each_scan(plan, &mut |scan| {
            let name = self.scan_name(scan);
            let table = name.join(".");
            let columns = scan_columns(scan);
            let policed = crate::policy::table::is_policed_scan(scan);
            match reads.iter_mut().find(|r| r.table == table) {
                Some(r) => {
                    for c in columns {
                        if !r.columns.contains(&c) {
                            r.columns.push(c);
                        }
                    }
                    r.policed |= policed;
                }
                None => reads.push(crate::audit::TableRead {
                    agreements: self.access.agreements_of(&name),
                    table,
                    columns,
                    policed,
                }),
            }
            Ok(())
        });
        reads
    }

    fn scan_name(&self, scan: &datafusion::logical_expr::TableScan) -> Vec<String> {
        let resolved = scan
            .table_name
            .clone()
            .resolve(&self.registry.database, PUBLIC_SCHEMA);
        self.registry.grant_name(
            resolved.catalog.as_ref(),
            resolved.schema.as_ref(),
            resolved.table.as_ref(),
        )
    }

    /// 42501 for a column the user may not read, naming the agreement that
    /// gives the table without it.
    pub fn column_denied(&self, column: &str, table: &[String]) -> QueryError {
        let mut e = QueryError::column_denied(column, &display_name(table));
        if let Some(agreements) = self.access.agreements_of(table) {
            e.message
                .push_str(&format!(" ({agreements} does not include it)"));
        }
        e
    }
}

/// Calls `f` on every table scan of `plan` (subqueries included, and the
/// scans inside sub-plans sent whole to a link), stopping at its first error.
fn each_scan(
    plan: &LogicalPlan,
    f: &mut dyn FnMut(&datafusion::logical_expr::TableScan) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    let mut failed: Option<QueryError> = None;
    let _ = plan.apply_with_subqueries(|node| {
        let outcome = match node {
            LogicalPlan::Extension(ext) => match ext
                .node
                .as_any()
                .downcast_ref::<datafusion_federation::FederatedPlanNode>(
            ) {
                Some(fed) => each_scan(&fed.plan, f),
                None => Ok(()),
            },
            LogicalPlan::TableScan(scan) => f(scan),
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => Ok(TreeNodeRecursion::Continue),
            Err(e) => {
                failed = Some(e);
                Ok(TreeNodeRecursion::Stop)
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The columns a scan reads: its projection and those its pushed filters name.
fn scan_columns(scan: &datafusion::logical_expr::TableScan) -> Vec<String> {
    let schema = scan.source.schema();
    let mut used: Vec<String> = match &scan.projection {
        Some(p) => p.iter().map(|&i| schema.field(i).name().clone()).collect(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    for f in &scan.filters {
        for c in f.column_refs() {
            if !used.contains(&c.name) {
                used.push(c.name.clone());
            }
        }
    }
    used
}
