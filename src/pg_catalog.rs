//! What PostgreSQL clients browse before their first query: `pg_catalog`,
//! and the functions they call (`version()`, `current_setting()`, ...).
//!
//! The tables and most functions come from `datafusion-pg-catalog`, built
//! over the session's own catalog list — the user's filtered view — so
//! `pg_class`, `pg_namespace`, `pg_attribute` list only what the user may
//! read. tautan adds what that crate leaves to the server: `version()` in
//! PostgreSQL's format, `current_setting()` reading the session's settings,
//! `pg_roles` showing the connected user, and what only the sources know
//! ([`SourceFacts`]): table and column comments in `pg_description`,
//! primary keys in `pg_constraint`, `pg_index` and (as index relations)
//! `pg_class`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use std::collections::HashMap;

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int16Array, Int16Builder, Int32Array,
    ListBuilder, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProviderList, MemTable, SchemaProvider, TableProvider};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};

/// A session's settings (`SET`/`SHOW`), shared with `current_setting()`.
pub type Settings = Arc<Mutex<BTreeMap<String, String>>>;

/// The text `version()` returns: PostgreSQL's shape, so clients that parse
/// it (pgJDBC, Npgsql, SQLAlchemy) find a version they know.
pub fn version_text() -> String {
    format!(
        "PostgreSQL {} (tautan {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
        crate::SERVER_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// Installs `pg_catalog` (under the default catalog `database`) and the
/// functions clients call into `ctx`.
pub fn install(ctx: &SessionContext, database: &str, user: &str, settings: Settings) -> Result<()> {
    datafusion_pg_catalog::setup_pg_catalog(
        ctx,
        database,
        ConnectedUser {
            name: user.to_string(),
        },
    )
    .map_err(|e| *e)?;
    if let Some(catalog) = ctx.catalog(database) {
        if let Some(inner) = catalog.schema("pg_catalog") {
            let facts = SourceFacts {
                inner,
                catalogs: ctx.state().catalog_list().clone(),
                database: database.to_string(),
            };
            catalog.register_schema("pg_catalog", Arc::new(facts))?;
        }
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Version::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting::new(settings)));
    Ok(())
}

/// `pg_roles` as the connected user sees it: itself.
#[derive(Debug, Clone)]
struct ConnectedUser {
    name: String,
}

#[async_trait]
impl PgCatalogContextProvider for ConnectedUser {
    async fn roles(&self) -> Vec<String> {
        vec![self.name.clone()]
    }

    async fn role(&self, name: &str) -> Option<Role> {
        (name == self.name).then(|| Role {
            name: self.name.clone(),
            is_superuser: false,
            can_login: true,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: vec![],
            inherited_roles: vec![],
        })
    }
}

/// `version()`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Version {
    signature: Signature,
}

impl Version {
    fn new() -> Self {
        Self {
            signature: Signature::exact(vec![], Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for Version {
    fn name(&self) -> &str {
        "version"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            version_text(),
        ))))
    }
}

/// `current_setting(name [, missing_ok])`.
#[derive(Debug)]
struct CurrentSetting {
    signature: Signature,
    settings: Settings,
}

impl PartialEq for CurrentSetting {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}
impl Eq for CurrentSetting {}
impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "current_setting".hash(state);
    }
}

impl CurrentSetting {
    fn new(settings: Settings) -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                ],
                Volatility::Stable,
            ),
            settings,
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        let settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        settings.get(&name.to_ascii_lowercase()).cloned()
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let missing_ok = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(b)))) => *b,
            _ => false,
        };
        let Some(names) = args.args.first() else {
            return exec_err!("current_setting needs a setting name");
        };
        let names = names.to_array(rows)?;
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("text expected".into()))?;
        let mut out = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            if names.is_null(i) {
                out.push(None);
                continue;
            }
            let name = names.value(i);
            match self.lookup(name) {
                Some(v) => out.push(Some(v)),
                None if missing_ok => out.push(None),
                None => return exec_err!("unrecognized configuration parameter \"{name}\""),
            }
        }
        let array: ArrayRef = Arc::new(StringArray::from(out));
        if rows == 1 {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}

/// `oid` of `pg_class` itself, the `classoid` of table descriptions.
const PG_CLASS_OID: i32 = 1259;
/// Oids of the synthetic primary-key indexes and constraints, above what
/// the catalog assigns to schemas and tables.
const SYNTHETIC_OID_BASE: i32 = 1_000_000_000;

/// One remote table's comments and primary key, with its oids.
struct TableFacts {
    oid: i32,
    namespace: i32,
    name: String,
    comment: Option<String>,
    /// (attnum, comment)
    column_comments: Vec<(i16, String)>,
    /// attnums in key order
    primary_key: Vec<i16>,
}

/// `pg_catalog` with what the sources told the connectors: the tables the
/// catalog crate builds from the session's catalog list, plus rows for
/// remote comments (`pg_description`) and primary keys (`pg_constraint`,
/// `pg_index`, and their indexes in `pg_class`).
#[derive(Debug, Clone)]
pub struct SourceFacts {
    inner: Arc<dyn SchemaProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    database: String,
}

async fn collect_table(provider: Arc<dyn TableProvider>) -> Result<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    ctx.read_table(provider)?.collect().await
}

/// `(key column) -> oid` from two columns of a catalog table.
async fn oids_by_name(
    table: Arc<dyn TableProvider>,
    oid_column: &str,
    key_columns: &[&str],
) -> Result<HashMap<Vec<String>, i32>> {
    let mut out = HashMap::new();
    for batch in collect_table(table).await? {
        let oids = cast(
            batch.column_by_name(oid_column).ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!("no column {oid_column}"))
            })?,
            &DataType::Int64,
        )?;
        let oids = oids
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("oid column".into()))?;
        let keys: Vec<ArrayRef> = key_columns
            .iter()
            .map(|c| {
                batch
                    .column_by_name(c)
                    .ok_or_else(|| {
                        datafusion::error::DataFusionError::Internal(format!("no column {c}"))
                    })
                    .and_then(|a| Ok(cast(a, &DataType::Utf8)?))
            })
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            let key: Vec<String> = keys
                .iter()
                .map(|k| {
                    k.as_any()
                        .downcast_ref::<StringArray>()
                        .map(|s| s.value(row).to_string())
                        .unwrap_or_default()
                })
                .collect();
            if let Ok(oid) = i32::try_from(oids.value(row)) {
                out.insert(key, oid);
            }
        }
    }
    Ok(out)
}

/// The rows of `base` followed by `extra` columns (by name; missing ones
/// NULL), all under `base`'s schema made nullable.
fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<Field>>(),
    ))
}

async fn extended(
    base: Arc<dyn TableProvider>,
    rows: usize,
    mut extra: HashMap<&'static str, ArrayRef>,
) -> Result<Arc<dyn TableProvider>> {
    let schema = nullable(&base.schema());
    let mut batches = Vec::new();
    for batch in collect_table(base).await? {
        batches.push(RecordBatch::try_new(
            schema.clone(),
            batch.columns().to_vec(),
        )?);
    }
    if rows > 0 {
        let columns = schema
            .fields()
            .iter()
            .map(|f| match extra.remove(f.name().as_str()) {
                Some(a) if a.data_type() == f.data_type() => Ok(a),
                Some(a) => Ok(cast(&a, f.data_type())?),
                None => Ok(new_null_array(f.data_type(), rows)),
            })
            .collect::<Result<Vec<_>>>()?;
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

fn strings(values: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn ints(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn bools(value: bool, rows: usize) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; rows]))
}

fn key_lists(keys: &[&TableFacts]) -> ArrayRef {
    let mut builder = ListBuilder::new(Int16Builder::new());
    for t in keys {
        for k in &t.primary_key {
            builder.values().append_value(*k);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

impl SourceFacts {
    /// Comments and primary keys of every remote table the user may see.
    async fn facts(&self) -> Result<Vec<TableFacts>> {
        let (Some(classes), Some(namespaces)) = (
            self.inner.table("pg_class").await?,
            self.inner.table("pg_namespace").await?,
        ) else {
            return Ok(vec![]);
        };
        let namespaces = oids_by_name(namespaces, "oid", &["nspname"]).await?;
        let classes = oids_by_name(classes, "oid", &["relnamespace", "relname"]).await?;
        let Some(catalog) = self.catalogs.catalog(&self.database) else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for schema_name in catalog.schema_names() {
            if !schema_name.contains('.') {
                continue; // link schemas only: ref, mat and system have no comments or keys
            }
            let (Some(schema), Some(&namespace)) = (
                catalog.schema(&schema_name),
                namespaces.get(std::slice::from_ref(&schema_name)),
            ) else {
                continue;
            };
            for name in schema.table_names() {
                let Some(table) = schema.table(&name).await? else {
                    continue;
                };
                let Some(remote) = table.downcast_ref::<tautan_connector::RemoteTable>() else {
                    continue;
                };
                let Some(&oid) = classes.get(&[namespace.to_string(), name.clone()][..]) else {
                    continue;
                };
                let arrow = table.schema();
                let mut column_comments = Vec::new();
                let mut keyed: Vec<(usize, i16)> = Vec::new();
                for (i, f) in arrow.fields().iter().enumerate() {
                    let attnum = i16::try_from(i + 1).unwrap_or(i16::MAX);
                    if let Some(c) = f.metadata().get(tautan_connector::types::COMMENT_KEY) {
                        column_comments.push((attnum, c.clone()));
                    }
                    if let Some(p) = f.metadata().get(tautan_connector::types::PRIMARY_KEY) {
                        keyed.push((p.parse().unwrap_or(usize::MAX), attnum));
                    }
                }
                keyed.sort();
                out.push(TableFacts {
                    oid,
                    namespace,
                    name,
                    comment: remote.def().comment.clone(),
                    column_comments,
                    primary_key: keyed.into_iter().map(|(_, a)| a).collect(),
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SchemaProvider for SourceFacts {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let lower = name.to_ascii_lowercase();
        if !matches!(
            lower.as_str(),
            "pg_description" | "pg_constraint" | "pg_index" | "pg_class"
        ) {
            return self.inner.table(name).await;
        }
        let Some(base) = self.inner.table(name).await? else {
            return Ok(None);
        };
        // Computed when scanned, not when looked up: the catalog crate looks
        // tables up (for their schemas) while it builds pg_class itself.
        Ok(Some(Arc::new(WithFacts {
            schema: nullable(&base.schema()),
            name: lower,
            base,
            source: self.clone(),
        })))
    }
}

/// A catalog table with the sources' rows added, built at scan time.
#[derive(Debug)]
struct WithFacts {
    schema: SchemaRef,
    name: String,
    base: Arc<dyn TableProvider>,
    source: SourceFacts,
}

#[async_trait]
impl TableProvider for WithFacts {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let table = self.source.build(&self.name, self.base.clone()).await?;
        table.scan(state, projection, filters, limit).await
    }
}

impl SourceFacts {
    /// `base` (the catalog crate's `name` table) with the sources' rows.
    async fn build(
        &self,
        name: &str,
        base: Arc<dyn TableProvider>,
    ) -> Result<Arc<dyn TableProvider>> {
        let lower = name;
        let facts = self.facts().await?;
        let keyed: Vec<(usize, &TableFacts)> = facts
            .iter()
            .filter(|t| !t.primary_key.is_empty())
            .enumerate()
            .collect();
        let index_oid = |i: usize| SYNTHETIC_OID_BASE + 2 * i as i32;
        let constraint_oid = |i: usize| SYNTHETIC_OID_BASE + 2 * i as i32 + 1;
        let pkey_name = |t: &TableFacts| format!("{}_pkey", t.name);
        let n = keyed.len();
        let mut extra: HashMap<&'static str, ArrayRef> = HashMap::new();
        let rows = match lower {
            "pg_description" => {
                let mut objoid = Vec::new();
                let mut objsubid = Vec::new();
                let mut text = Vec::new();
                for t in &facts {
                    if let Some(c) = &t.comment {
                        objoid.push(t.oid);
                        objsubid.push(0);
                        text.push(c.clone());
                    }
                    for (attnum, c) in &t.column_comments {
                        objoid.push(t.oid);
                        objsubid.push(i32::from(*attnum));
                        text.push(c.clone());
                    }
                }
                let rows = objoid.len();
                extra.insert("objoid", ints(objoid));
                extra.insert("classoid", ints(vec![PG_CLASS_OID; rows]));
                extra.insert("objsubid", ints(objsubid));
                extra.insert("description", strings(text));
                rows
            }
            "pg_constraint" => {
                let tables: Vec<&TableFacts> = keyed.iter().map(|(_, t)| *t).collect();
                extra.insert("oid", ints(keyed.iter().map(|(i, _)| constraint_oid(*i))));
                extra.insert("conname", strings(tables.iter().map(|t| pkey_name(t))));
                extra.insert("connamespace", ints(tables.iter().map(|t| t.namespace)));
                extra.insert("contype", strings(tables.iter().map(|_| "p".to_string())));
                extra.insert("condeferrable", bools(false, n));
                extra.insert("condeferred", bools(false, n));
                extra.insert("convalidated", bools(true, n));
                extra.insert("conrelid", ints(tables.iter().map(|t| t.oid)));
                extra.insert("contypid", ints(vec![0; n]));
                extra.insert("conindid", ints(keyed.iter().map(|(i, _)| index_oid(*i))));
                extra.insert("conparentid", ints(vec![0; n]));
                extra.insert("confrelid", ints(vec![0; n]));
                extra.insert("conislocal", bools(true, n));
                extra.insert("coninhcount", ints(vec![0; n]));
                extra.insert("connoinherit", bools(true, n));
                extra.insert("conkey", key_lists(&tables));
                n
            }
            "pg_index" => {
                let tables: Vec<&TableFacts> = keyed.iter().map(|(_, t)| *t).collect();
                let widths: Vec<i16> = tables
                    .iter()
                    .map(|t| i16::try_from(t.primary_key.len()).unwrap_or(i16::MAX))
                    .collect();
                extra.insert("indexrelid", ints(keyed.iter().map(|(i, _)| index_oid(*i))));
                extra.insert("indrelid", ints(tables.iter().map(|t| t.oid)));
                extra.insert("indnatts", Arc::new(Int16Array::from(widths.clone())));
                extra.insert("indnkeyatts", Arc::new(Int16Array::from(widths)));
                for flag in [
                    "indisunique",
                    "indisprimary",
                    "indimmediate",
                    "indisvalid",
                    "indisready",
                    "indislive",
                ] {
                    extra.insert(flag, bools(true, n));
                }
                for flag in [
                    "indisexclusion",
                    "indisclustered",
                    "indcheckxmin",
                    "indisreplident",
                    "indnullsnotdistinct",
                ] {
                    extra.insert(flag, bools(false, n));
                }
                extra.insert("indkey", key_lists(&tables));
                n
            }
            _ => {
                // pg_class: the primary-key indexes, as index relations.
                let tables: Vec<&TableFacts> = keyed.iter().map(|(_, t)| *t).collect();
                extra.insert("oid", ints(keyed.iter().map(|(i, _)| index_oid(*i))));
                extra.insert("relname", strings(tables.iter().map(|t| pkey_name(t))));
                extra.insert("relnamespace", ints(tables.iter().map(|t| t.namespace)));
                extra.insert("relkind", strings(tables.iter().map(|_| "i".to_string())));
                extra.insert(
                    "relnatts",
                    Arc::new(Int16Array::from_iter_values(
                        tables
                            .iter()
                            .map(|t| i16::try_from(t.primary_key.len()).unwrap_or(0)),
                    )),
                );
                for zero in [
                    "reltype",
                    "reloftype",
                    "relowner",
                    "relam",
                    "relfilenode",
                    "reltablespace",
                    "relpages",
                    "relallvisible",
                    "reltoastrelid",
                    "relfrozenxid",
                    "relminmxid",
                ] {
                    extra.insert(zero, ints(vec![0; n]));
                }
                extra.insert("reltuples", cast(&ints(vec![0; n]), &DataType::Float64)?);
                extra.insert("relchecks", Arc::new(Int16Array::from(vec![0i16; n])));
                for flag in [
                    "relhasindex",
                    "relisshared",
                    "relhasrules",
                    "relhastriggers",
                    "relhassubclass",
                    "relrowsecurity",
                    "relforcerowsecurity",
                    "relispartition",
                ] {
                    extra.insert(flag, bools(false, n));
                }
                extra.insert("relispopulated", bools(true, n));
                extra.insert(
                    "relpersistence",
                    strings(tables.iter().map(|_| "p".to_string())),
                );
                extra.insert(
                    "relreplident",
                    strings(tables.iter().map(|_| "n".to_string())),
                );
                n
            }
        };
        extended(base, rows, extra).await
    }
}
