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
    for udf in compat_functions() {
        ctx.register_udf(udf);
    }
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(ExpandArray::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(If::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting::new(settings)));
    #[cfg(debug_assertions)]
    ctx.register_udf(debug_panic());
    Ok(())
}

/// `tautan_debug_panic(message)`: panics while the statement runs. Debug
/// builds only: the integration tests use it to check that a panic ends
/// one statement (XX000), not the session, the server or the process.
#[cfg(debug_assertions)]
fn debug_panic() -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        "tautan_debug_panic",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| {
            let message = match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(m)))) => m.clone(),
                _ => "tautan_debug_panic".to_string(),
            };
            panic!("{message}")
        }),
    )
}

/// A text function of one or two text arguments, row by row.
fn text_udf(
    name: &str,
    inputs: Vec<DataType>,
    f: impl Fn(&[Option<&str>]) -> Option<String> + Send + Sync + 'static,
) -> ScalarUDF {
    let arity = inputs.len();
    datafusion::logical_expr::create_udf(
        name,
        inputs,
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let rows = args
                .iter()
                .find_map(|a| match a {
                    ColumnarValue::Array(a) => Some(a.len()),
                    _ => None,
                })
                .unwrap_or(1);
            let arrays = args
                .iter()
                .map(|a| Ok(cast(&a.to_array(rows)?, &DataType::Utf8)?))
                .collect::<Result<Vec<ArrayRef>>>()?;
            let texts: Vec<&StringArray> = arrays
                .iter()
                .filter_map(|a| a.as_any().downcast_ref::<StringArray>())
                .collect();
            let mut out = Vec::with_capacity(rows);
            for row in 0..rows {
                let values: Vec<Option<&str>> = (0..arity)
                    .map(|i| {
                        texts
                            .get(i)
                            .filter(|t| t.is_valid(row))
                            .map(|t| t.value(row))
                    })
                    .collect();
                out.push(f(&values));
            }
            let array: ArrayRef = Arc::new(StringArray::from(out));
            if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &array, 0,
                )?))
            } else {
                Ok(ColumnarValue::Array(array))
            }
        }),
    )
}

/// `pattern` of `LIKE pattern ESCAPE 'c'` rewritten for DataFusion, whose
/// LIKE escapes with backslash only (see `statement::compat_parse`).
pub fn like_escape_to_backslash(pattern: &str, escape: char) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            out.push('\\');
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// Functions clients call that neither DataFusion nor the catalog crate
/// has: session housekeeping with nothing to do in a read-only federation,
/// and display helpers.
fn compat_functions() -> Vec<ScalarUDF> {
    vec![
        text_udf("version", vec![], |_| Some(version_text())),
        // asyncpg's pool reset; tautan takes no advisory locks.
        text_udf("pg_advisory_unlock_all", vec![], |_| None),
        // No sequences behind remote columns.
        text_udf(
            "pg_get_serial_sequence",
            vec![DataType::Utf8, DataType::Utf8],
            |_| None,
        ),
        // Sizes of remote tables are the sources' business: unknown here.
        datafusion::logical_expr::create_udf(
            "pg_table_size",
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)))),
        ),
        // One collation (C): every collation is visible.
        datafusion::logical_expr::create_udf(
            "pg_collation_is_visible",
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Immutable,
            Arc::new(|_: &[ColumnarValue]| {
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
            }),
        ),
        // Index definitions have no text form here (the indexes are the
        // sources' primary keys, listed in pg_index/pg_constraint).
        text_udf(
            "pg_get_indexdef",
            vec![DataType::Int64, DataType::Int64, DataType::Boolean],
            |_| None,
        ),
        text_udf("pg_size_pretty", vec![DataType::Int64], |v| {
            let bytes: i64 = v.first().copied().flatten()?.parse().ok()?;
            Some(size_pretty(bytes))
        }),
        text_udf(
            "tautan_like_escape",
            vec![DataType::Utf8, DataType::Utf8],
            |v| {
                let pattern = v.first().copied().flatten()?;
                let escape = v.get(1).copied().flatten()?.chars().next();
                Some(match escape {
                    Some(e) => like_escape_to_backslash(pattern, e),
                    None => pattern.to_string(),
                })
            },
        ),
    ]
}

/// `json_build_object(key, value, ...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn json_value(v: &ScalarValue) -> serde_json::Value {
    if v.is_null() {
        return serde_json::Value::Null;
    }
    let text = v.to_string();
    match v.data_type() {
        DataType::Boolean => serde_json::Value::Bool(text == "true"),
        t if t.is_numeric() => {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        }
        _ => serde_json::Value::String(text),
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        if !args.args.len().is_multiple_of(2) {
            return exec_err!("json_build_object needs key/value pairs");
        }
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?.to_string();
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                object.insert(key, json_value(&value));
            }
            out.push(serde_json::Value::Object(object).to_string());
        }
        let array: ArrayRef = Arc::new(StringArray::from(out));
        Ok(ColumnarValue::Array(array))
    }
}

/// `tautan_expandarray(int2[])`: `[{x, n}]` for each element `x` at 1-based
/// position `n`; `information_schema._pg_expandarray` is rewritten to
/// `unnest` of it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

impl ExpandArray {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    fn item() -> DataType {
        DataType::Struct(
            vec![
                Field::new("x", DataType::Int64, true),
                Field::new("n", DataType::Int64, false),
            ]
            .into(),
        )
    }
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "tautan_expandarray"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::new_list(Self::item(), true))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Int64Array, ListArray, StructArray};
        let Some(arg) = args.args.first() else {
            return exec_err!("tautan_expandarray needs an array");
        };
        let input = arg.to_array(args.number_rows)?;
        let input = cast(&input, &DataType::new_list(DataType::Int64, true))?;
        let Some(list) = input.as_list_opt::<i32>() else {
            return exec_err!("tautan_expandarray needs an array");
        };
        let xs = list.values().clone();
        let mut ns = vec![0i64; xs.len()];
        for row in 0..list.len() {
            let start = list.value_offsets()[row] as usize;
            let end = list.value_offsets()[row + 1] as usize;
            for (k, n) in ns.iter_mut().enumerate().take(end).skip(start) {
                *n = (k - start + 1) as i64;
            }
        }
        let DataType::Struct(fields) = Self::item() else {
            return exec_err!("struct type");
        };
        let items = StructArray::try_new(fields, vec![xs, Arc::new(Int64Array::from(ns))], None)?;
        let out = ListArray::try_new(
            Arc::new(Field::new_list_field(Self::item(), true)),
            list.offsets().clone(),
            Arc::new(items),
            list.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `tautan_if(condition, value)`: `value` where `condition` is true, else
/// NULL (what `CASE WHEN condition THEN (subquery) END` in client catalog
/// queries is rewritten to).
#[derive(Debug, PartialEq, Eq, Hash)]
struct If {
    signature: Signature,
}

impl If {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for If {
    fn name(&self) -> &str {
        "tautan_if"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.get(1).cloned().unwrap_or(DataType::Null))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [condition, value] = args.args.as_slice() else {
            return exec_err!("tautan_if takes a condition and a value");
        };
        let condition = cast(&condition.to_array(rows)?, &DataType::Boolean)?;
        let Some(mask) = condition.as_boolean_opt() else {
            return exec_err!("tautan_if: condition is not boolean");
        };
        let value = value.to_array(rows)?;
        let nulls = new_null_array(value.data_type(), rows);
        let mask: BooleanArray = mask.iter().map(|c| Some(c == Some(true))).collect();
        let out = datafusion::arrow::compute::kernels::zip::zip(&mask, &value, &nulls)?;
        Ok(ColumnarValue::Array(out))
    }
}

/// `pg_size_pretty`: bytes in kB, MB, GB, TB as PostgreSQL rounds them.
fn size_pretty(bytes: i64) -> String {
    let mut value = bytes;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if value.abs() < 10 * 1024 || unit == "TB" {
            return format!("{value} {unit}");
        }
        value = (value + 512) / 1024;
    }
    format!("{value} PB")
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

/// Catalog tables served empty: roles' secrets and memberships, user
/// mappings and subscriptions (connection strings), statistics (sampled
/// values), large objects. The crate fills some of them from a sample
/// PostgreSQL instance.
const EMPTIED_TABLES: &[&str] = &[
    "pg_authid",
    "pg_auth_members",
    "pg_user_mapping",
    "pg_subscription",
    "pg_statistic",
    "pg_statistic_ext_data",
    "pg_largeobject",
    "pg_db_role_setting",
];

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
/// Columns PostgreSQL types `int2vector`/`int2[]`, which clients
/// `unnest`: lists here, whatever the catalog crate's export says.
const KEY_COLUMNS: &[&str] = &["conkey", "confkey", "indkey", "indoption"];

/// `oidvector` columns of `pg_index`, which clients `unnest` too.
const OID_VECTOR_COLUMNS: &[&str] = &["indclass", "indcollation"];

/// Catalog tables whose exported rows describe PostgreSQL's own system
/// tables, which tautan does not have: only the sources' rows are kept.
const REPLACED_TABLES: &[&str] = &["pg_constraint", "pg_index"];

/// Columns PostgreSQL has that the catalog crate's tables lack, which
/// clients select (SQLAlchemy reads `pg_class.reloptions`).
fn missing_columns(table: &str) -> Vec<Field> {
    match table {
        "pg_class" => vec![
            Field::new("reloptions", DataType::new_list(DataType::Utf8, true), true),
            Field::new("relacl", DataType::Utf8, true),
        ],
        _ => vec![],
    }
}

/// `schema` of catalog table `table` with every column nullable, key
/// columns as int2 lists, and the columns it lacks added.
fn nullable(table: &str, schema: &SchemaRef) -> SchemaRef {
    let missing = missing_columns(table)
        .into_iter()
        .filter(|f| schema.field_with_name(f.name()).is_err());
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone().with_nullable(true);
                if KEY_COLUMNS.contains(&f.name().as_str()) {
                    f.with_data_type(DataType::new_list(DataType::Int16, true))
                } else if OID_VECTOR_COLUMNS.contains(&f.name().as_str()) {
                    f.with_data_type(DataType::new_list(DataType::Int64, true))
                } else {
                    f
                }
            })
            .chain(missing)
            .collect::<Vec<Field>>(),
    ))
}

async fn extended(
    name: &str,
    base: Arc<dyn TableProvider>,
    rows: usize,
    mut extra: HashMap<&'static str, ArrayRef>,
) -> Result<Arc<dyn TableProvider>> {
    let schema = nullable(name, &base.schema());
    let mut batches = Vec::new();
    let exported = if REPLACED_TABLES.contains(&name) {
        vec![]
    } else {
        collect_table(base).await?
    };
    for batch in exported {
        let columns = schema
            .fields()
            .iter()
            .map(|f| match batch.column_by_name(f.name()) {
                Some(a) if a.data_type() == f.data_type() => Ok(a.clone()),
                Some(a) => Ok(cast(a, f.data_type())?),
                None => Ok(new_null_array(f.data_type(), batch.num_rows())),
            })
            .collect::<Result<Vec<_>>>()?;
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
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
    /// Also returns the oid `pg_catalog.pg_class` has in this session
    /// (the `classoid` of table descriptions; clients find it with
    /// `'pg_catalog.pg_class'::regclass`).
    async fn facts(&self) -> Result<(Vec<TableFacts>, i32)> {
        let (Some(classes), Some(namespaces)) = (
            self.inner.table("pg_class").await?,
            self.inner.table("pg_namespace").await?,
        ) else {
            return Ok((vec![], PG_CLASS_OID));
        };
        let namespaces = oids_by_name(namespaces, "oid", &["nspname"]).await?;
        let classes = oids_by_name(classes, "oid", &["relnamespace", "relname"]).await?;
        let class_oid = namespaces
            .get(&["pg_catalog".to_string()][..])
            .and_then(|ns| classes.get(&[ns.to_string(), "pg_class".to_string()][..]))
            .copied()
            .unwrap_or(PG_CLASS_OID);
        let Some(catalog) = self.catalogs.catalog(&self.database) else {
            return Ok((vec![], class_oid));
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
                let Some(remote) = tautan_connector::federation::remote_table(table.as_ref())
                else {
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
        Ok((out, class_oid))
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
        if EMPTIED_TABLES.contains(&lower.as_str()) {
            // The catalog crate's fixture rows (a `postgres` role with a
            // SCRAM verifier, role memberships, a sample instance's column
            // statistics): tautan has none of these to show.
            let Some(base) = self.inner.table(name).await? else {
                return Ok(None);
            };
            let schema = base.schema();
            return Ok(Some(Arc::new(MemTable::try_new(schema, vec![vec![]])?)));
        }
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
            schema: nullable(&lower, &base.schema()),
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
        let (facts, class_oid) = self.facts().await?;
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
                extra.insert("classoid", ints(vec![class_oid; rows]));
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
        extended(lower, base, rows, extra).await
    }
}
