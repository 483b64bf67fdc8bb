//! `system.*`: the federation's own tables — links, tables, columns,
//! datasets, grants, pulls, agreements, policy and the audit log — computed
//! per query for the user asking, so each shows only what that user may
//! see.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result;

use crate::catalog::{LinkEntry, LinkStatus, Registry, MAT_SCHEMA, REF_SCHEMA};
use crate::grants::{Access, TableAccess};

/// `system.links`, `system.tables`, `system.grants`, computed per query for
/// the user asking.
#[derive(Debug)]
pub struct SystemSchema {
    registry: Arc<Registry>,
    access: Arc<Access>,
}

const SYSTEM_TABLES: &[&str] = &[
    "audit",
    "links",
    "tables",
    "columns",
    "datasets",
    "grants",
    "pulls",
    "agreements",
    "policy",
];

/// A table the user may see, for `system.tables` and `system.columns`.
struct VisibleTable {
    catalog: String,
    schema: String,
    table: String,
    kind: &'static str,
    provider: Arc<dyn TableProvider>,
    access: TableAccess,
    policy: Option<crate::policy::TablePolicy>,
    /// The link it is read from (none for reference data and pulls).
    link: Option<Arc<LinkEntry>>,
}

/// `t` as microseconds since 1970 (a `timestamptz` column's value).
fn micros(t: SystemTime) -> Option<i64> {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as i64)
}

fn mem_table(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<Arc<dyn TableProvider>> {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

impl SystemSchema {
    /// The system tables `access` may see.
    pub fn new(registry: Arc<Registry>, access: Arc<Access>) -> Self {
        Self { registry, access }
    }

    fn visible_links(&self) -> Vec<Arc<LinkEntry>> {
        self.registry
            .links()
            .iter()
            .filter(|(n, _)| self.access.may_see_prefix(&[n.to_string()]))
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn links(&self) -> Result<Arc<dyn TableProvider>> {
        let links = self.visible_links();
        let mut name = vec![];
        let mut kind = vec![];
        let mut status = vec![];
        let mut error = vec![];
        let mut tables = vec![];
        let mut checked = vec![];
        let mut description = vec![];
        let mut in_use = vec![];
        let mut queued = vec![];
        for l in links {
            let s = l.state();
            name.push(l.name.clone());
            kind.push(l.kind.to_string());
            let health = l.remote().and_then(|r| r.health());
            // A statement that found the source unreachable or stalled
            // since the link was last checked: degraded, with why.
            let failure = l.failure_since_check(&s);
            match (&failure, s.status) {
                (Some(f), LinkStatus::Up) => {
                    status.push("degraded".to_string());
                    error.push(Some(f.message.clone()));
                }
                _ => {
                    status.push(s.status.as_str().to_string());
                    error.push(s.error.clone());
                }
            }
            in_use.push(health.map(|h| h.in_use() as i64));
            queued.push(health.map(|h| h.queued() as i64));
            let n: usize = s
                .schemas
                .iter()
                .map(|(schema, t)| {
                    t.keys()
                        .filter(|t| {
                            self.access
                                .table(&[l.name.clone(), schema.clone(), t.to_string()])
                                != TableAccess::Invisible
                        })
                        .count()
                })
                .sum();
            tables.push(n as i64);
            checked.push(s.checked_at.and_then(micros));
            description.push(l.description.clone());
        }
        mem_table(
            vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("status", DataType::Utf8, false),
                Field::new("error", DataType::Utf8, true),
                Field::new("tables", DataType::Int64, false),
                Field::new(
                    "checked_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                    true,
                ),
                Field::new("description", DataType::Utf8, true),
                Field::new("connections_in_use", DataType::Int64, true),
                Field::new("queued", DataType::Int64, true),
            ],
            vec![
                Arc::new(StringArray::from(name)),
                Arc::new(StringArray::from(kind)),
                Arc::new(StringArray::from(status)),
                Arc::new(StringArray::from(error)),
                Arc::new(Int64Array::from(tables)),
                Arc::new(TimestampMicrosecondArray::from(checked).with_timezone("+00:00")),
                Arc::new(StringArray::from(description)),
                Arc::new(Int64Array::from(in_use)),
                Arc::new(Int64Array::from(queued)),
            ],
        )
    }

    /// Every table of a link or of the reference data the user may see,
    /// with what the user may read of it.
    fn visible_tables(&self) -> Vec<VisibleTable> {
        let mut out = Vec::new();
        let mut push = |catalog: &str,
                        schema: &str,
                        table: &str,
                        kind: &'static str,
                        provider: &Arc<dyn TableProvider>,
                        link: Option<&Arc<LinkEntry>>,
                        full: Vec<String>| {
            let access = self.access.table(&full);
            if access == TableAccess::Invisible {
                return;
            }
            out.push(VisibleTable {
                catalog: catalog.to_string(),
                schema: schema.to_string(),
                table: table.to_string(),
                kind,
                provider: provider.clone(),
                policy: self.access.policy(&full),
                access,
                link: link.cloned(),
            });
        };
        for l in self.visible_links() {
            let s = l.state();
            for (sch, tables) in s.schemas.iter() {
                for (t, p) in tables.iter() {
                    push(
                        &l.name,
                        sch,
                        t,
                        l.kind,
                        p,
                        Some(&l),
                        vec![l.name.clone(), sch.clone(), t.clone()],
                    );
                }
            }
        }
        let db = self.registry.database.clone();
        for (t, p) in self.registry.reference().iter() {
            push(
                &db,
                REF_SCHEMA,
                t,
                "reference",
                p,
                None,
                vec![REF_SCHEMA.to_string(), t.clone()],
            );
        }
        out
    }

    /// `system.datasets`: the metadata catalog — every table the user may
    /// read as a dataset (named as `GET /v1/datasets/` takes it), with its
    /// producer, description, classification, primary key, row estimate,
    /// freshness and the reference data its columns are keyed by. The same
    /// rows feed `GET /v1/catalog` and the catalog page.
    async fn datasets(&self) -> Result<Arc<dyn TableProvider>> {
        let reference = self.registry.reference();
        let mut rows: Vec<Dataset> = self
            .visible_tables()
            .iter()
            .map(|t| Dataset::of(t, &self.registry.database, &reference))
            .collect();
        let pulls = &self.registry.pulls;
        for name in pulls.names() {
            let full = [MAT_SCHEMA.to_string(), name.clone()];
            let access = self.access.table(&full);
            if access == TableAccess::Invisible {
                continue;
            }
            // A pull without a snapshot (or whose snapshot cannot be read
            // now) is not a dataset yet; the others are still listed.
            let provider = pulls.table(&name).await.ok().flatten();
            let (Some(info), Some(provider)) = (pulls.info(&name), provider) else {
                continue;
            };
            let table = VisibleTable {
                catalog: self.registry.database.clone(),
                schema: MAT_SCHEMA.to_string(),
                table: name.clone(),
                kind: "materialized",
                provider,
                policy: self.access.policy(&full),
                access,
                link: None,
            };
            let mut row = Dataset::of(&table, &self.registry.database, &reference);
            row.description = Some(match &info.def.config.schedule {
                Some(schedule) => format!("materialized pull, scheduled {schedule}"),
                None => "materialized pull, on demand".to_string(),
            });
            row.fresh_at = info.current.as_ref().map(|c| c.created_us);
            rows.push(row);
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let text = |f: &dyn Fn(&Dataset) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        mem_table(
            vec![
                Field::new("dataset", DataType::Utf8, false),
                Field::new("catalog", DataType::Utf8, false),
                Field::new("schema", DataType::Utf8, false),
                Field::new("table", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("producer", DataType::Utf8, true),
                Field::new("producer_description", DataType::Utf8, true),
                Field::new("description", DataType::Utf8, true),
                Field::new("labels", DataType::Utf8, true),
                Field::new("policy", DataType::Utf8, true),
                Field::new("columns", DataType::Int64, false),
                Field::new("primary_key", DataType::Utf8, true),
                Field::new("row_estimate", DataType::Int64, true),
                Field::new(
                    "fresh_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                    true,
                ),
                Field::new("reference_keys", DataType::Utf8, true),
            ],
            vec![
                text(&|d| Some(d.name.clone())),
                text(&|d| Some(d.catalog.clone())),
                text(&|d| Some(d.schema.clone())),
                text(&|d| Some(d.table.clone())),
                text(&|d| Some(d.kind.to_string())),
                text(&|d| d.producer.clone()),
                text(&|d| d.producer_description.clone()),
                text(&|d| d.description.clone()),
                text(&|d| d.labels.clone()),
                text(&|d| d.policy.clone()),
                Arc::new(Int64Array::from(
                    rows.iter().map(|d| d.columns).collect::<Vec<_>>(),
                )),
                text(&|d| d.primary_key.clone()),
                Arc::new(Int64Array::from(
                    rows.iter().map(|d| d.row_estimate).collect::<Vec<_>>(),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        rows.iter().map(|d| d.fresh_at).collect::<Vec<_>>(),
                    )
                    .with_timezone("+00:00"),
                ),
                text(&|d| d.reference_keys.clone()),
            ],
        )
    }

    fn tables(&self) -> Result<Arc<dyn TableProvider>> {
        let visible = self.visible_tables();
        let text = |f: &dyn Fn(&VisibleTable) -> Option<String>| {
            Arc::new(StringArray::from(visible.iter().map(f).collect::<Vec<_>>())) as ArrayRef
        };
        mem_table(
            vec![
                Field::new("catalog", DataType::Utf8, false),
                Field::new("schema", DataType::Utf8, false),
                Field::new("table", DataType::Utf8, false),
                Field::new("kind", DataType::Utf8, false),
                Field::new("columns", DataType::Int64, false),
                Field::new("access", DataType::Utf8, false),
                Field::new("labels", DataType::Utf8, true),
                Field::new("policy", DataType::Utf8, true),
            ],
            vec![
                text(&|t| Some(t.catalog.clone())),
                text(&|t| Some(t.schema.clone())),
                text(&|t| Some(t.table.clone())),
                text(&|t| Some(t.kind.to_string())),
                // The columns this user sees.
                Arc::new(Int64Array::from(
                    visible
                        .iter()
                        .map(|t| {
                            t.provider
                                .schema()
                                .fields()
                                .iter()
                                .filter(|f| t.access.allows_column(f.name()))
                                .count() as i64
                        })
                        .collect::<Vec<_>>(),
                )),
                text(&|t| {
                    Some(match &t.access {
                        TableAccess::Columns(c) => c.iter().cloned().collect::<Vec<_>>().join(", "),
                        _ => "all columns".to_string(),
                    })
                }),
                text(&|t| {
                    t.provider
                        .schema()
                        .metadata()
                        .get(crate::policy::labels::LABELS_KEY)
                        .cloned()
                }),
                // Under which grants or agreements, when a row filter or
                // masks apply (never the key).
                text(&|t| t.policy.as_ref().map(|p| p.origin.clone())),
            ],
        )
    }

    /// `system.columns`: every column the user may read, with its type,
    /// classification labels, the mask the user sees it through, and its
    /// description.
    fn columns(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows: Vec<[Option<String>; 8]> = Vec::new();
        for t in self.visible_tables() {
            let schema = t.provider.schema();
            for f in schema.fields() {
                if !t.access.allows_column(f.name()) {
                    continue;
                }
                let labels = crate::policy::labels::of_field(f);
                let mask = t.policy.as_ref().and_then(|p| p.mask_for(f));
                rows.push([
                    Some(t.catalog.clone()),
                    Some(t.schema.clone()),
                    Some(t.table.clone()),
                    Some(f.name().clone()),
                    Some(f.data_type().to_string()),
                    (!labels.is_empty()).then(|| labels.into_iter().collect::<Vec<_>>().join(", ")),
                    mask.map(|m| m.to_string()),
                    f.metadata()
                        .get(tautan_connector::types::COMMENT_KEY)
                        .cloned(),
                ]);
            }
        }
        let names = [
            "catalog",
            "schema",
            "table",
            "column",
            "data_type",
            "labels",
            "mask",
            "description",
        ];
        let fields = names
            .iter()
            .enumerate()
            .map(|(i, n)| Field::new(*n, DataType::Utf8, i >= 5))
            .collect();
        let columns = (0..names.len())
            .map(|i| {
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                )) as ArrayRef
            })
            .collect();
        mem_table(fields, columns)
    }

    /// `system.policy`: the policy version this statement runs under.
    fn policy(&self) -> Result<Arc<dyn TableProvider>> {
        let version = self.access.version.as_ref();
        let loaded = version.map(|v| {
            chrono::DateTime::<chrono::Utc>::from(v.loaded_at)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        });
        let in_force = self
            .access
            .agreements
            .iter()
            .filter(|a| a.status == crate::policy::agreement::Status::Valid)
            .count();
        mem_table(
            vec![
                Field::new("version", DataType::Int64, true),
                Field::new("loaded_at", DataType::Utf8, true),
                Field::new("agreements", DataType::Int64, false),
                Field::new("agreements_in_force", DataType::Int64, false),
            ],
            vec![
                Arc::new(Int64Array::from(vec![version.map(|v| v.number as i64)])),
                Arc::new(StringArray::from(vec![loaded])),
                Arc::new(Int64Array::from(vec![self.access.agreements.len() as i64])),
                Arc::new(Int64Array::from(vec![in_force as i64])),
            ],
        )
    }

    /// `system.agreements`: the agreements naming the user (all of them
    /// for the custodian), with whether each grants anything now and why
    /// not.
    fn agreements(&self) -> Result<Arc<dyn TableProvider>> {
        let shown: Vec<&crate::policy::agreement::Agreement> = self
            .access
            .agreements
            .iter()
            .filter(|a| self.access.sees_agreement(a))
            .collect();
        let terms = |f: &dyn Fn(&crate::policy::agreement::Terms) -> Option<String>| {
            Arc::new(StringArray::from(
                shown
                    .iter()
                    .map(|a| a.file.as_ref().and_then(|file| f(&file.terms)))
                    .collect::<Vec<_>>(),
            )) as ArrayRef
        };
        mem_table(
            vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("producer", DataType::Utf8, true),
                Field::new("data_user", DataType::Utf8, true),
                Field::new("tables", DataType::Utf8, true),
                Field::new("purpose", DataType::Utf8, true),
                Field::new("valid_from", DataType::Utf8, true),
                Field::new("valid_until", DataType::Utf8, true),
                Field::new("status", DataType::Utf8, false),
                Field::new("reason", DataType::Utf8, true),
                Field::new("file", DataType::Utf8, false),
            ],
            vec![
                Arc::new(StringArray::from(
                    shown.iter().map(|a| a.id()).collect::<Vec<_>>(),
                )),
                terms(&|t| Some(t.producer.clone())),
                terms(&|t| {
                    t.user
                        .as_ref()
                        .map(|u| format!("user {u}"))
                        .or_else(|| t.role.as_ref().map(|r| format!("role {r}")))
                }),
                terms(&|t| Some(t.tables.join(", "))),
                terms(&|t| Some(t.purpose.clone())),
                terms(&|t| Some(t.valid_from.clone())),
                terms(&|t| Some(t.valid_until.clone())),
                Arc::new(StringArray::from(
                    shown
                        .iter()
                        .map(|a| a.status.name().to_string())
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    shown
                        .iter()
                        .map(|a| {
                            (a.status != crate::policy::agreement::Status::Valid)
                                .then(|| a.status.to_string())
                        })
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    shown
                        .iter()
                        .map(|a| {
                            a.path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
    }

    fn pulls(&self) -> Result<Arc<dyn TableProvider>> {
        let pulls = &self.registry.pulls;
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let ts_array = |v: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(v).with_timezone("+00:00"))
        };
        let now = crate::pulls::store::now_us();
        let infos: Vec<_> = pulls
            .names()
            .iter()
            .filter(|n| {
                self.access.table(&[MAT_SCHEMA.to_string(), n.to_string()])
                    != TableAccess::Invisible
            })
            .filter_map(|n| pulls.info(n))
            .collect();
        let text = |f: &dyn Fn(&crate::pulls::PullInfo) -> Option<String>| -> ArrayRef {
            Arc::new(StringArray::from(infos.iter().map(f).collect::<Vec<_>>()))
        };
        let int = |f: &dyn Fn(&crate::pulls::PullInfo) -> Option<i64>| -> ArrayRef {
            Arc::new(Int64Array::from(infos.iter().map(f).collect::<Vec<_>>()))
        };
        let time = |f: &dyn Fn(&crate::pulls::PullInfo) -> Option<i64>| -> ArrayRef {
            ts_array(infos.iter().map(f).collect())
        };
        mem_table(
            vec![
                Field::new("name", DataType::Utf8, true),
                Field::new("mode", DataType::Utf8, true),
                Field::new("schedule", DataType::Utf8, true),
                Field::new("timezone", DataType::Utf8, true),
                Field::new("next_run", ts(), true),
                Field::new("status", DataType::Utf8, true),
                Field::new("last_start", ts(), true),
                Field::new("last_end", ts(), true),
                Field::new("duration_ms", DataType::Int64, true),
                Field::new("attempts", DataType::Int64, true),
                Field::new("rows", DataType::Int64, true),
                Field::new("bytes", DataType::Int64, true),
                Field::new("last_error", DataType::Utf8, true),
                Field::new("snapshot", DataType::Int64, true),
                Field::new("snapshot_rows", DataType::Int64, true),
                Field::new("snapshot_bytes", DataType::Int64, true),
                Field::new("snapshot_created", ts(), true),
                Field::new("snapshot_age_s", DataType::Int64, true),
                Field::new("watermark", DataType::Utf8, true),
            ],
            vec![
                text(&|i| Some(i.def.name.clone())),
                text(&|i| Some(i.def.config.mode.as_str().to_string())),
                text(&|i| i.def.config.schedule.clone()),
                text(&|i| Some(i.def.config.timezone.clone())),
                time(&|i| i.next_run_us),
                text(&|i| {
                    Some(
                        i.status
                            .as_ref()
                            .map(|s| s.state.as_str())
                            .unwrap_or("never run")
                            .to_string(),
                    )
                }),
                time(&|i| i.status.as_ref().map(|s| s.started_us)),
                time(&|i| i.status.as_ref().and_then(|s| s.ended_us)),
                int(&|i| {
                    let s = i.status.as_ref()?;
                    Some((s.ended_us? - s.started_us) / 1000)
                }),
                int(&|i| i.status.as_ref().map(|s| i64::from(s.attempts))),
                int(&|i| i.status.as_ref().map(|s| s.rows as i64)),
                int(&|i| i.status.as_ref().map(|s| s.bytes as i64)),
                text(&|i| i.status.as_ref().and_then(|s| s.error.clone())),
                int(&|i| i.current.as_ref().map(|c| c.id as i64)),
                int(&|i| i.current.as_ref().map(|c| c.rows as i64)),
                int(&|i| i.current.as_ref().map(|c| c.bytes as i64)),
                time(&|i| i.current.as_ref().map(|c| c.created_us)),
                int(&|i| i.current.as_ref().map(|c| (now - c.created_us) / 1_000_000)),
                text(&|i| i.current.as_ref().and_then(|c| c.watermark.clone())),
            ],
        )
    }

    fn grants(&self) -> Result<Arc<dyn TableProvider>> {
        let rules = &self.access.rules;
        mem_table(
            vec![
                Field::new("user", DataType::Utf8, false),
                Field::new("role", DataType::Utf8, false),
                Field::new("tables", DataType::Utf8, false),
                Field::new("columns", DataType::Utf8, true),
                Field::new("row_filter", DataType::Utf8, true),
                Field::new("masks", DataType::Utf8, true),
            ],
            vec![
                Arc::new(StringArray::from(vec![
                    self.access.user.clone();
                    rules.len()
                ])),
                Arc::new(StringArray::from(
                    rules.iter().map(|r| r.role.clone()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| r.pattern.as_str().to_string())
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| {
                            r.columns
                                .as_ref()
                                .map(|c| c.iter().cloned().collect::<Vec<_>>().join(", "))
                        })
                        .collect::<Vec<_>>(),
                )),
                // The filter as the grant writes it ({attributes} unbound).
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| r.row_filter.clone())
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rules
                        .iter()
                        .map(|r| {
                            (!r.masks.is_empty()).then(|| {
                                r.masks
                                    .iter()
                                    .map(|(c, m)| format!("{c}={m}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                        })
                        .collect::<Vec<_>>(),
                )),
            ],
        )
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        SYSTEM_TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match name {
            "links" => self.links().map(Some),
            "tables" => self.tables().map(Some),
            "grants" => self.grants().map(Some),
            "pulls" => self.pulls().map(Some),
            "agreements" => self.agreements().map(Some),
            "columns" => self.columns().map(Some),
            "datasets" => self.datasets().await.map(Some),
            "policy" => self.policy().map(Some),
            "audit" => Ok(Some(Arc::new(crate::audit::table::AuditTable::new(
                self.registry.audit_dir.clone(),
                &self.access,
            )))),
            _ => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        SYSTEM_TABLES.contains(&name)
    }
}

/// A dataset's name (`system.datasets`, and what `GET /v1/datasets/` takes): `schema.table` in the
/// federation's own catalog (`ref.kecamatan`), `link.schema.table` else.
pub fn dataset_name(database: &str, catalog: &str, schema: &str, table: &str) -> String {
    if catalog == database {
        format!("{schema}.{table}")
    } else {
        format!("{catalog}.{schema}.{table}")
    }
}

/// One row of `system.datasets`.
struct Dataset {
    name: String,
    catalog: String,
    schema: String,
    table: String,
    kind: &'static str,
    producer: Option<String>,
    producer_description: Option<String>,
    description: Option<String>,
    labels: Option<String>,
    policy: Option<String>,
    columns: i64,
    primary_key: Option<String>,
    row_estimate: Option<i64>,
    fresh_at: Option<i64>,
    reference_keys: Option<String>,
}

impl Dataset {
    fn of(t: &VisibleTable, database: &str, reference: &crate::catalog::TableMap) -> Self {
        let schema = t.provider.schema();
        let readable: Vec<&Field> = schema
            .fields()
            .iter()
            .filter(|f| t.access.allows_column(f.name()))
            .map(|f| f.as_ref())
            .collect();
        let remote = tautan_connector::federation::remote_table(t.provider.as_ref());
        // Freshness: a live link's last statement that read to its end; a
        // folder of files as of its last load.
        let fresh = t.link.as_ref().and_then(|l| match l.remote() {
            Some(r) => r.health().and_then(|h| h.last_success()),
            None => l.state().checked_at,
        });
        let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(", "));
        Dataset {
            name: dataset_name(database, &t.catalog, &t.schema, &t.table),
            catalog: t.catalog.clone(),
            schema: t.schema.clone(),
            table: t.table.clone(),
            kind: t.kind,
            producer: t.link.as_ref().map(|l| l.name.clone()),
            producer_description: t.link.as_ref().and_then(|l| l.description.clone()),
            description: remote.and_then(|r| r.def().comment.clone()),
            labels: schema
                .metadata()
                .get(crate::policy::labels::LABELS_KEY)
                .cloned(),
            policy: t.policy.as_ref().map(|p| p.origin.clone()),
            columns: readable.len() as i64,
            primary_key: primary_key(schema.fields(), &t.access),
            row_estimate: remote
                .and_then(|r| r.def().estimates.rows)
                .map(|rows| rows.round() as i64),
            fresh_at: fresh.and_then(micros),
            reference_keys: join(
                readable
                    .iter()
                    .filter_map(|f| reference_key(f.name(), reference))
                    .collect(),
            ),
        }
    }
}

/// The source's primary key, in key order, when the user may read all of
/// its columns (a partly granted key is not shown: it would name a column
/// the user may not see).
fn primary_key(
    fields: &datafusion::arrow::datatypes::Fields,
    access: &TableAccess,
) -> Option<String> {
    let mut key: Vec<(usize, &str)> = fields
        .iter()
        .filter_map(|f| {
            let position = f
                .metadata()
                .get(tautan_connector::types::PRIMARY_KEY)?
                .parse()
                .ok()?;
            Some((position, f.name().as_str()))
        })
        .collect();
    if key.is_empty() || key.iter().any(|(_, name)| !access.allows_column(name)) {
        return None;
    }
    key.sort();
    Some(key.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", "))
}

/// The reference data a column is keyed by, by the custodian's naming
/// convention: a column `<table>_<key>` or `<key>_<table>`, where
/// `ref.<table>`'s first column is `<key>` (`kecamatan_kode` →
/// `ref.kecamatan.kode`). Written `column → ref.table.key`.
fn reference_key(column: &str, reference: &crate::catalog::TableMap) -> Option<String> {
    let column_lower = column.to_ascii_lowercase();
    reference.iter().find_map(|(table, provider)| {
        let schema = provider.schema();
        let key = schema.fields().first()?.name().to_ascii_lowercase();
        let table_lower = table.to_ascii_lowercase();
        (column_lower == format!("{table_lower}_{key}")
            || column_lower == format!("{key}_{table_lower}"))
        .then(|| format!("{column} → {REF_SCHEMA}.{table}.{key}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Fields;

    #[test]
    fn dataset_names_are_what_the_dataset_door_takes() {
        assert_eq!(
            dataset_name("tautan", "tautan", "ref", "kecamatan"),
            "ref.kecamatan"
        );
        assert_eq!(
            dataset_name("tautan", "kesehatan", "kesehatan", "kunjungan"),
            "kesehatan.kesehatan.kunjungan"
        );
    }

    #[test]
    fn columns_named_after_a_reference_table_and_its_key_are_keyed_by_it() {
        let kecamatan: Arc<dyn TableProvider> = Arc::new(
            MemTable::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("kode", DataType::Utf8, false),
                    Field::new("nama", DataType::Utf8, false),
                ])),
                vec![vec![]],
            )
            .unwrap(),
        );
        let reference = crate::catalog::TableMap::from([("kecamatan".to_string(), kecamatan)]);
        assert_eq!(
            reference_key("kecamatan_kode", &reference).as_deref(),
            Some("kecamatan_kode → ref.kecamatan.kode")
        );
        assert_eq!(
            reference_key("KODE_KECAMATAN", &reference).as_deref(),
            Some("KODE_KECAMATAN → ref.kecamatan.kode")
        );
        assert_eq!(reference_key("kecamatan", &reference), None);
        assert_eq!(reference_key("kecamatan_nama", &reference), None);
    }

    #[test]
    fn a_primary_key_is_shown_in_key_order_only_when_every_column_is_readable() {
        let key = |name: &str, position: usize| {
            tautan_connector::types::in_primary_key(
                Field::new(name, DataType::Int32, false),
                position,
            )
        };
        let fields = Fields::from(vec![
            key("b", 2),
            Field::new("x", DataType::Utf8, true),
            key("a", 1),
        ]);
        assert_eq!(
            primary_key(&fields, &TableAccess::All).as_deref(),
            Some("a, b")
        );
        let some = TableAccess::Columns(["a".to_string(), "x".to_string()].into());
        assert_eq!(primary_key(&fields, &some), None);
        assert_eq!(
            primary_key(
                &Fields::from(vec![Field::new("x", DataType::Utf8, true)]),
                &TableAccess::All
            ),
            None
        );
    }
}
