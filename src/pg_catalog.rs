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
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
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

/// Applies `SET name = value` to a session (what `set_config()` calls).
pub type SetSetting =
    Arc<dyn Fn(&str, &str) -> std::result::Result<(), crate::error::QueryError> + Send + Sync>;

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
/// `set` applies a setting as `SET` does (`set_config()` calls it).
pub fn install(
    ctx: &SessionContext,
    database: &str,
    user: &str,
    settings: Settings,
    set: SetSetting,
) -> Result<()> {
    datafusion_pg_catalog::setup_pg_catalog(
        ctx,
        database,
        ConnectedUser {
            name: user.to_string(),
        },
    )
    .map_err(|e| *e)?;
    if let Some(catalog) = ctx.catalog(database) {
        // The crate's pg_catalog, over the one copy of its static tables
        // (the setup above decodes its own ~5 MiB, which no session keeps).
        let inner: Option<Arc<dyn SchemaProvider>> = match static_tables() {
            Some(tables) => Some(Arc::new(
                datafusion_pg_catalog::pg_catalog::PgCatalogSchemaProvider::try_new(
                    ctx.state().catalog_list().clone(),
                    tables,
                    ConnectedUser {
                        name: user.to_string(),
                    },
                )?,
            )),
            None => catalog.schema("pg_catalog"),
        };
        if let Some(inner) = inner {
            let facts = SourceFacts {
                inner,
                catalogs: ctx.state().catalog_list().clone(),
                database: database.to_string(),
                settings: settings.clone(),
                user: user.to_string(),
            };
            let information_schema = InformationSchema {
                inner: Arc::new(
                    datafusion::catalog::information_schema::InformationSchemaProvider::new(
                        ctx.state().catalog_list().clone(),
                    ),
                ),
                source: facts.clone(),
            };
            catalog.register_schema("pg_catalog", Arc::new(facts))?;
            catalog.register_schema("information_schema", Arc::new(information_schema))?;
        }
    }
    for udf in compat_functions() {
        ctx.register_udf(udf);
    }
    // The logged-in user, as PostgreSQL answers `current_user`,
    // `session_user` and `user` (the catalog crate answers `postgres`).
    for name in ["session_user", "current_user", "user"] {
        let user = user.to_string();
        ctx.register_udf(text_udf(name, vec![], move |_| Some(user.clone())));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(JsonBuildObject::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(ExpandArray::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(If::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting::new(settings)));
    ctx.register_udf(ScalarUDF::new_from_impl(SetConfig::new(set)));
    let catalogs = ctx.state().catalog_list().clone();
    for udf in crate::pg_functions::functions(catalogs, database) {
        ctx.register_udf(udf);
    }
    #[cfg(debug_assertions)]
    ctx.register_udf(debug_panic());
    Ok(())
}

/// PostgreSQL's built-in catalog rows (`pg_proc`, `pg_type`, ...), decoded
/// once for the process and shared by every session.
fn static_tables() -> Option<Arc<datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables>> {
    static TABLES: std::sync::OnceLock<
        Option<Arc<datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables>>,
    > = std::sync::OnceLock::new();
    TABLES
        .get_or_init(|| {
            datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables::try_new()
                .map(Arc::new)
                .map_err(|e| tracing::warn!(error = %e, "pg_catalog's static tables"))
                .ok()
        })
        .clone()
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

/// `set_config(name, value, is_local)`: `SET name = value` (a local
/// setting lasts the session too: tautan has no transactions to end it),
/// returning the value.
struct SetConfig {
    signature: Signature,
    set: SetSetting,
}

impl std::fmt::Debug for SetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetConfig")
    }
}

impl PartialEq for SetConfig {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.set, &other.set)
    }
}
impl Eq for SetConfig {}
impl std::hash::Hash for SetConfig {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "set_config".hash(state);
    }
}

impl SetConfig {
    fn new(set: SetSetting) -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
                Volatility::Volatile,
            ),
            set,
        }
    }
}

impl ScalarUDFImpl for SetConfig {
    fn name(&self) -> &str {
        "set_config"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (Some(names), Some(values)) = (args.args.first(), args.args.get(1)) else {
            return exec_err!("set_config needs a name and a value");
        };
        let names = cast(&names.to_array(rows)?, &DataType::Utf8)?;
        let values = cast(&values.to_array(rows)?, &DataType::Utf8)?;
        let (names, values) = (names.as_string::<i32>(), values.as_string::<i32>());
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            if names.is_null(row) {
                return exec_err!("SET requires parameter name");
            }
            let value = (!values.is_null(row)).then(|| values.value(row));
            (self.set)(names.value(row), value.unwrap_or(""))
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            out.push(value.map(str::to_string));
        }
        let array: ArrayRef = Arc::new(StringArray::from(out));
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
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
/// `oid` of the `btree` access method in `pg_am`.
const BTREE_AM_OID: i32 = 403;
/// `oid` of the `heap` access method in `pg_am`.
const HEAP_AM_OID: i32 = 2;
/// `oid` of the connected user in `pg_roles`, the owner of every relation.
const OWNER_OID: i32 = 10;

/// One column as the catalog describes it: the type the wire sends
/// ([`crate::server::encode::pg_type`]) and its modifier.
#[derive(Debug, Clone)]
pub struct ColumnType {
    /// `pg_type.oid`.
    pub oid: i32,
    /// `typname` (`int4`, `varchar`, `_text`, ...).
    pub name: String,
    /// `atttypmod`: -1, or `char(n)`/`varchar(n)`: n + 4, `numeric(p,s)`:
    /// (p << 16 | s) + 4, time precision.
    pub typmod: i32,
    /// `attlen`.
    pub len: i16,
    /// `attbyval`.
    pub by_value: bool,
    /// `attalign`.
    pub align: &'static str,
    /// `attstorage`.
    pub storage: &'static str,
    /// `attndims`.
    pub dims: i32,
}

/// The catalog's description of a column of Arrow type and metadata `field`.
pub fn column_type(field: &Field) -> ColumnType {
    use pgwire::api::Type;
    let ty = crate::server::encode::pg_type(field).unwrap_or(Type::TEXT);
    let metadata = field.metadata();
    let declared = |key: &str| metadata.get(key).map(String::as_str);
    let mut typmod = declared(tautan_connector::types::PG_TYPMOD_KEY)
        .and_then(|t| t.parse::<i32>().ok())
        .unwrap_or(-1);
    if typmod < 0 && ty == Type::NUMERIC {
        // A declared precision the source did not give as a typmod (MySQL's
        // `decimal(12,3)`).
        let source = declared(tautan_connector::types::SOURCE_TYPE_KEY).unwrap_or("");
        if let DataType::Decimal128(p, s) = field.data_type() {
            let lower = source.to_ascii_lowercase();
            if (lower.starts_with("decimal(") || lower.starts_with("numeric(")) && *s >= 0 {
                typmod = ((i32::from(*p) << 16) | i32::from(*s)) + 4;
            }
        }
    }
    let (len, by_value, align, storage) = match ty.oid() {
        16 => (1, true, "c", "p"),
        21 => (2, true, "s", "p"),
        23 | 26 => (4, true, "i", "p"),
        20 => (8, true, "d", "p"),
        700 => (4, true, "i", "p"),
        701 => (8, true, "d", "p"),
        1082 => (4, true, "i", "p"),
        1083 | 1114 | 1184 => (8, true, "d", "p"),
        1186 => (16, false, "d", "p"),
        2950 => (16, false, "c", "p"),
        1700 => (-1, false, "i", "m"),
        _ => (-1, false, "i", "x"),
    };
    let dims = i32::from(matches!(ty.kind(), postgres_types::Kind::Array(_)));
    ColumnType {
        oid: i32::try_from(ty.oid()).unwrap_or(25),
        name: ty.name().to_string(),
        typmod,
        len,
        by_value,
        align,
        storage,
        dims,
    }
}

/// One relation the user may see, as `pg_class` and `pg_attribute` list it.
struct Relation {
    oid: i32,
    namespace: i32,
    schema: String,
    name: String,
    /// `relkind`.
    kind: &'static str,
    columns: Vec<Field>,
    comment: Option<String>,
    /// (attnum, comment)
    column_comments: Vec<(i16, String)>,
    /// attnums in key order
    primary_key: Vec<i16>,
}

impl Relation {
    fn index_oid(&self) -> i32 {
        crate::oids::oid(&crate::oids::Object::PrimaryKeyIndex(
            self.schema.clone(),
            self.name.clone(),
        ))
    }

    fn constraint_oid(&self) -> i32 {
        crate::oids::oid(&crate::oids::Object::PrimaryKeyConstraint(
            self.schema.clone(),
            self.name.clone(),
        ))
    }

    fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    fn key_columns(&self) -> Vec<&str> {
        self.primary_key
            .iter()
            .filter_map(|a| usize::try_from(*a - 1).ok())
            .filter_map(|i| self.columns.get(i))
            .map(|f| f.name().as_str())
            .collect()
    }
}

/// `pg_catalog` with what the sources told the connectors: the tables the
/// catalog crate builds from the session's catalog list, except the ones
/// naming the user's objects (`pg_namespace`, `pg_class`, `pg_attribute`,
/// `pg_database`), which tautan builds itself with stable OIDs
/// ([`crate::oids`]) and the types the wire sends; plus rows for remote
/// comments (`pg_description`) and primary keys (`pg_constraint`,
/// `pg_index`, and their indexes in `pg_class`), and the session's
/// settings in `pg_settings`.
#[derive(Debug, Clone)]
pub struct SourceFacts {
    inner: Arc<dyn SchemaProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    database: String,
    settings: Settings,
    /// The connected user: owner of everything listed, granted SELECT
    /// (`relacl`) on every relation it sees.
    user: String,
}

async fn collect_table(provider: Arc<dyn TableProvider>) -> Result<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    ctx.read_table(provider)?.collect().await
}

/// Columns PostgreSQL types `int2vector`/`int2[]`, which clients
/// `unnest`: lists here, whatever the catalog crate's export says.
const KEY_COLUMNS: &[&str] = &["conkey", "confkey", "indkey", "indoption"];

/// `oidvector` columns of `pg_index`, which clients `unnest` too.
const OID_VECTOR_COLUMNS: &[&str] = &["indclass", "indcollation"];

/// Catalog tables whose exported rows describe PostgreSQL's own system
/// tables, or objects tautan numbers itself: only tautan's rows are kept.
const REPLACED_TABLES: &[&str] = &[
    "pg_constraint",
    "pg_index",
    "pg_class",
    "pg_namespace",
    "pg_attribute",
    "pg_settings",
];

/// Catalog tables tautan builds or completes when they are scanned.
const BUILT_TABLES: &[&str] = &[
    "pg_description",
    "pg_constraint",
    "pg_index",
    "pg_class",
    "pg_namespace",
    "pg_attribute",
    "pg_database",
    "pg_settings",
    "pg_roles",
];

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

/// The rows of `base` (unless tautan replaces them) followed by `extra`
/// columns (by name; missing ones NULL), all under `base`'s schema made
/// nullable.
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

fn smallints(values: impl IntoIterator<Item = i16>) -> ArrayRef {
    Arc::new(Int16Array::from_iter_values(values))
}

fn bools(value: bool, rows: usize) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; rows]))
}

fn key_lists(keys: &[&Relation]) -> ArrayRef {
    let mut builder = ListBuilder::new(Int16Builder::new());
    for t in keys {
        for k in &t.primary_key {
            builder.values().append_value(*k);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

fn zero_lists(keys: &[&Relation]) -> ArrayRef {
    let mut builder = ListBuilder::new(Int16Builder::new());
    for t in keys {
        for _ in &t.primary_key {
            builder.values().append_value(0);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// `pg_settings` names as PostgreSQL spells them (settings are kept
/// lower-case).
const SETTING_NAMES: &[&str] = &[
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "client_encoding",
    "server_version",
    "server_version_num",
    "standard_conforming_strings",
    "integer_datetimes",
];

/// Read-only facts every PostgreSQL reports in `pg_settings`, which
/// clients read (pgJDBC's `getImportedKeys` reads `max_index_keys`).
const FIXED_SETTINGS: &[(&str, &str)] = &[
    ("max_index_keys", "32"),
    ("block_size", "8192"),
    ("max_function_args", "100"),
    ("data_checksums", "off"),
];

impl SourceFacts {
    /// Every schema and relation of the user's catalog, with OIDs.
    async fn relations(&self) -> Result<(Vec<(i32, String)>, Vec<Relation>)> {
        use crate::oids::{oid, Object};
        let Some(catalog) = self.catalogs.catalog(&self.database) else {
            return Ok((vec![], vec![]));
        };
        let mut namespaces = Vec::new();
        let mut relations = Vec::new();
        for schema_name in catalog.schema_names() {
            let namespace = oid(&Object::Namespace(schema_name.clone()));
            namespaces.push((namespace, schema_name.clone()));
            let catalog_schema = schema_name == "pg_catalog";
            let schema: Arc<dyn SchemaProvider> = if catalog_schema {
                Arc::new(self.clone())
            } else {
                match catalog.schema(&schema_name) {
                    Some(s) => s,
                    None => continue,
                }
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Some(table) = schema.table(&name).await? else {
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
                let comment = tautan_connector::federation::remote_table(table.as_ref())
                    .and_then(|r| r.def().comment.clone());
                let kind = match table.table_type() {
                    datafusion::datasource::TableType::View if !catalog_schema => "v",
                    _ => "r",
                };
                relations.push(Relation {
                    oid: oid(&Object::Relation(schema_name.clone(), name.clone())),
                    namespace,
                    schema: schema_name.clone(),
                    name,
                    kind,
                    columns: arrow.fields().iter().map(|f| f.as_ref().clone()).collect(),
                    comment,
                    column_comments,
                    primary_key: keyed.into_iter().map(|(_, a)| a).collect(),
                });
            }
        }
        Ok((namespaces, relations))
    }

    /// The session's settings as `pg_settings` rows (name, setting).
    fn setting_rows(&self) -> Vec<(String, String)> {
        let settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(String, String)> = settings
            .iter()
            .filter(|(name, _)| !name.contains(' '))
            .map(|(name, value)| {
                let shown = SETTING_NAMES
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(name))
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| name.clone());
                (shown, value.clone())
            })
            .collect();
        for (name, value) in FIXED_SETTINGS {
            if !rows.iter().any(|(n, _)| n == name) {
                rows.push((name.to_string(), value.to_string()));
            }
        }
        rows.sort();
        rows
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
        if !BUILT_TABLES.contains(&lower.as_str()) {
            return self.inner.table(name).await;
        }
        let Some(base) = self.inner.table(name).await? else {
            return Ok(None);
        };
        // Computed when scanned, not when looked up: tables are looked up
        // (for their schemas) while pg_class itself is built.
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
    /// `base` (the catalog crate's `name` table) with tautan's rows.
    async fn build(
        &self,
        name: &str,
        base: Arc<dyn TableProvider>,
    ) -> Result<Arc<dyn TableProvider>> {
        let lower = name;
        let mut extra: HashMap<&'static str, ArrayRef> = HashMap::new();
        if lower == "pg_settings" {
            let rows = self.setting_rows();
            let n = rows.len();
            extra.insert("name", strings(rows.iter().map(|(k, _)| k.clone())));
            extra.insert("setting", strings(rows.iter().map(|(_, v)| v.clone())));
            extra.insert("reset_val", strings(rows.iter().map(|(_, v)| v.clone())));
            extra.insert("context", strings(rows.iter().map(|_| "user".to_string())));
            extra.insert(
                "vartype",
                strings(rows.iter().map(|_| "string".to_string())),
            );
            extra.insert(
                "source",
                strings(rows.iter().map(|_| "session".to_string())),
            );
            extra.insert("pending_restart", bools(false, n));
            return extended(lower, base, n, extra).await;
        }
        if lower == "pg_database" {
            return renumbered(lower, base, "datname", |name| {
                crate::oids::oid(&crate::oids::Object::Database(name.to_string()))
            })
            .await;
        }
        if lower == "pg_roles" {
            // The connected user owns what it sees (`relowner`).
            return renumbered(lower, base, "rolname", |_| OWNER_OID).await;
        }
        let (namespaces, relations) = self.relations().await?;
        let keyed: Vec<&Relation> = relations
            .iter()
            .filter(|t| !t.primary_key.is_empty())
            .collect();
        let n = keyed.len();
        let rows = match lower {
            "pg_namespace" => {
                let rows = namespaces.len();
                extra.insert("oid", ints(namespaces.iter().map(|(o, _)| *o)));
                extra.insert(
                    "nspname",
                    strings(namespaces.iter().map(|(_, s)| s.clone())),
                );
                extra.insert("nspowner", ints(vec![OWNER_OID; rows]));
                rows
            }
            "pg_attribute" => attribute_columns(&relations, &keyed, &mut extra),
            "pg_description" => {
                let mut objoid = Vec::new();
                let mut objsubid = Vec::new();
                let mut text = Vec::new();
                for t in &relations {
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
                extra.insert("oid", ints(keyed.iter().map(|t| t.constraint_oid())));
                extra.insert("conname", strings(keyed.iter().map(|t| t.pkey_name())));
                extra.insert("connamespace", ints(keyed.iter().map(|t| t.namespace)));
                extra.insert("contype", strings(keyed.iter().map(|_| "p".to_string())));
                extra.insert("condeferrable", bools(false, n));
                extra.insert("condeferred", bools(false, n));
                extra.insert("convalidated", bools(true, n));
                extra.insert("conrelid", ints(keyed.iter().map(|t| t.oid)));
                extra.insert("contypid", ints(vec![0; n]));
                extra.insert("conindid", ints(keyed.iter().map(|t| t.index_oid())));
                extra.insert("conparentid", ints(vec![0; n]));
                extra.insert("confrelid", ints(vec![0; n]));
                extra.insert("conislocal", bools(true, n));
                extra.insert("coninhcount", ints(vec![0; n]));
                extra.insert("connoinherit", bools(true, n));
                extra.insert("conkey", key_lists(&keyed));
                n
            }
            "pg_index" => {
                let widths: Vec<i16> = keyed
                    .iter()
                    .map(|t| i16::try_from(t.primary_key.len()).unwrap_or(i16::MAX))
                    .collect();
                extra.insert("indexrelid", ints(keyed.iter().map(|t| t.index_oid())));
                extra.insert("indrelid", ints(keyed.iter().map(|t| t.oid)));
                extra.insert("indnatts", smallints(widths.clone()));
                extra.insert("indnkeyatts", smallints(widths));
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
                extra.insert("indkey", key_lists(&keyed));
                extra.insert("indoption", zero_lists(&keyed));
                n
            }
            _ => class_columns(&relations, &keyed, &self.user, &mut extra)?,
        };
        extended(lower, base, rows, extra).await
    }
}

/// The catalog crate's table `name` with its `oid` column computed from
/// its `key` column.
async fn renumbered(
    name: &str,
    base: Arc<dyn TableProvider>,
    key: &str,
    oid_of: impl Fn(&str) -> i32,
) -> Result<Arc<dyn TableProvider>> {
    let schema = nullable(name, &base.schema());
    let mut batches = Vec::new();
    for batch in collect_table(base).await? {
        let names = batch
            .column_by_name(key)
            .map(|a| cast(a, &DataType::Utf8))
            .transpose()?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let column = match (f.name().as_str(), &names) {
                    ("oid", Some(names)) => {
                        let names = names.as_string::<i32>();
                        let oids: Int32Array = names.iter().map(|n| n.map(&oid_of)).collect();
                        Arc::new(oids) as ArrayRef
                    }
                    _ => match batch.column_by_name(f.name()) {
                        Some(a) => a.clone(),
                        None => new_null_array(f.data_type(), batch.num_rows()),
                    },
                };
                if column.data_type() == f.data_type() {
                    Ok(column)
                } else {
                    Ok(cast(&column, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

/// `pg_attribute` rows: every column of every relation, then the columns
/// of each primary-key index.
fn attribute_columns(
    relations: &[Relation],
    keyed: &[&Relation],
    extra: &mut HashMap<&'static str, ArrayRef>,
) -> usize {
    let mut relid = Vec::new();
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut nums = Vec::new();
    let mut notnull = Vec::new();
    for t in relations {
        for (i, f) in t.columns.iter().enumerate() {
            relid.push(t.oid);
            names.push(f.name().clone());
            types.push(column_type(f));
            nums.push(i16::try_from(i + 1).unwrap_or(i16::MAX));
            notnull.push(!f.is_nullable() || t.primary_key.contains(&nums[nums.len() - 1]));
        }
    }
    for t in keyed {
        for (i, name) in t.key_columns().into_iter().enumerate() {
            let Some(f) = t.columns.iter().find(|f| f.name() == name) else {
                continue;
            };
            relid.push(t.index_oid());
            names.push(name.to_string());
            types.push(column_type(f));
            nums.push(i16::try_from(i + 1).unwrap_or(i16::MAX));
            notnull.push(true);
        }
    }
    let rows = relid.len();
    extra.insert("attrelid", ints(relid));
    extra.insert("attname", strings(names));
    extra.insert("atttypid", ints(types.iter().map(|t| t.oid)));
    extra.insert("attstattarget", ints(vec![-1; rows]));
    extra.insert("attlen", smallints(types.iter().map(|t| t.len)));
    extra.insert("attnum", smallints(nums));
    extra.insert("attndims", ints(types.iter().map(|t| t.dims)));
    extra.insert("attcacheoff", ints(vec![-1; rows]));
    extra.insert("atttypmod", ints(types.iter().map(|t| t.typmod)));
    extra.insert(
        "attbyval",
        Arc::new(BooleanArray::from(
            types.iter().map(|t| t.by_value).collect::<Vec<_>>(),
        )),
    );
    extra.insert(
        "attalign",
        strings(types.iter().map(|t| t.align.to_string())),
    );
    extra.insert(
        "attstorage",
        strings(types.iter().map(|t| t.storage.to_string())),
    );
    extra.insert("attnotnull", Arc::new(BooleanArray::from(notnull)));
    for flag in ["atthasdef", "atthasmissing", "attisdropped"] {
        extra.insert(flag, bools(false, rows));
    }
    extra.insert("attidentity", strings(vec![String::new(); rows]));
    extra.insert("attgenerated", strings(vec![String::new(); rows]));
    extra.insert("attislocal", bools(true, rows));
    extra.insert("attinhcount", ints(vec![0; rows]));
    extra.insert("attcollation", ints(vec![0; rows]));
    rows
}

/// `pg_class` rows: every relation, then each primary-key index.
fn class_columns(
    relations: &[Relation],
    keyed: &[&Relation],
    user: &str,
    extra: &mut HashMap<&'static str, ArrayRef>,
) -> Result<usize> {
    let tables = relations.len();
    let rows = tables + keyed.len();
    let oid = relations
        .iter()
        .map(|t| t.oid)
        .chain(keyed.iter().map(|t| t.index_oid()));
    extra.insert("oid", ints(oid));
    extra.insert(
        "relname",
        strings(
            relations
                .iter()
                .map(|t| t.name.clone())
                .chain(keyed.iter().map(|t| t.pkey_name())),
        ),
    );
    extra.insert(
        "relnamespace",
        ints(
            relations
                .iter()
                .map(|t| t.namespace)
                .chain(keyed.iter().map(|t| t.namespace)),
        ),
    );
    extra.insert(
        "relkind",
        strings(
            relations
                .iter()
                .map(|t| t.kind.to_string())
                .chain(keyed.iter().map(|_| "i".to_string())),
        ),
    );
    extra.insert(
        "relam",
        ints(
            relations
                .iter()
                .map(|t| if t.kind == "r" { HEAP_AM_OID } else { 0 })
                .chain(keyed.iter().map(|_| BTREE_AM_OID)),
        ),
    );
    extra.insert(
        "relnatts",
        smallints(
            relations
                .iter()
                .map(|t| i16::try_from(t.columns.len()).unwrap_or(i16::MAX))
                .chain(
                    keyed
                        .iter()
                        .map(|t| i16::try_from(t.primary_key.len()).unwrap_or(0)),
                ),
        ),
    );
    extra.insert(
        "relhasindex",
        Arc::new(BooleanArray::from(
            relations
                .iter()
                .map(|t| !t.primary_key.is_empty())
                .chain(keyed.iter().map(|_| false))
                .collect::<Vec<_>>(),
        )),
    );
    extra.insert("relowner", ints(vec![OWNER_OID; rows]));
    // Read-only federation: SELECT is all anyone is granted (pgJDBC's
    // getTablePrivileges reads this; NULL would mean the owner's all).
    let acl = format!("{{{user}=r/{user}}}");
    extra.insert("relacl", strings(vec![acl; rows]));
    for zero in [
        "reltype",
        "reloftype",
        "relfilenode",
        "reltablespace",
        "relpages",
        "relallvisible",
        "reltoastrelid",
        "relfrozenxid",
        "relminmxid",
        "relrewrite",
    ] {
        extra.insert(zero, ints(vec![0; rows]));
    }
    extra.insert(
        "reltuples",
        cast(&ints(vec![-1; rows]), &DataType::Float64)?,
    );
    extra.insert("relchecks", smallints(vec![0; rows]));
    for flag in [
        "relisshared",
        "relhasrules",
        "relhastriggers",
        "relhassubclass",
        "relrowsecurity",
        "relforcerowsecurity",
        "relispartition",
    ] {
        extra.insert(flag, bools(false, rows));
    }
    extra.insert("relispopulated", bools(true, rows));
    extra.insert("relpersistence", strings(vec!["p".to_string(); rows]));
    extra.insert(
        "relreplident",
        strings(
            relations
                .iter()
                .map(|_| "d".to_string())
                .chain(keyed.iter().map(|_| "n".to_string())),
        ),
    );
    Ok(rows)
}

/// `information_schema` as the session sees it: DataFusion's, except
/// `columns`, which tautan builds like `pg_attribute` (PostgreSQL's
/// `data_type` names, `udt_name`, lengths, precisions and scales, the
/// types the wire sends) from the same user's catalog.
#[derive(Debug)]
pub struct InformationSchema {
    inner: Arc<dyn SchemaProvider>,
    source: SourceFacts,
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("columns") {
            return Ok(Some(Arc::new(InformationSchemaColumns {
                source: self.source.clone(),
            })));
        }
        self.inner.table(name).await
    }
}

/// `information_schema.columns`, built at scan time.
#[derive(Debug)]
struct InformationSchemaColumns {
    source: SourceFacts,
}

fn information_schema_columns_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let int = |name: &str| Field::new(name, DataType::Int32, true);
    Arc::new(Schema::new(vec![
        text("table_catalog"),
        text("table_schema"),
        text("table_name"),
        text("column_name"),
        int("ordinal_position"),
        text("column_default"),
        text("is_nullable"),
        text("data_type"),
        int("character_maximum_length"),
        int("character_octet_length"),
        int("numeric_precision"),
        int("numeric_precision_radix"),
        int("numeric_scale"),
        int("datetime_precision"),
        text("interval_type"),
        int("interval_precision"),
        text("collation_name"),
        text("domain_name"),
        text("udt_catalog"),
        text("udt_schema"),
        text("udt_name"),
        text("dtd_identifier"),
        text("is_self_referencing"),
        text("is_identity"),
        text("is_generated"),
        text("is_updatable"),
    ]))
}

/// The name PostgreSQL prints for the type of a value of `field` (a
/// `regtype`, as `pg_typeof` answers): `integer`, `character varying`,
/// `integer[]`; `unknown` for an untyped NULL.
pub fn regtype_name(field: &Field) -> String {
    match field.data_type() {
        DataType::Null => "unknown".into(),
        DataType::List(inner) | DataType::LargeList(inner) | DataType::FixedSizeList(inner, _) => {
            format!("{}[]", regtype_name(inner))
        }
        _ => {
            let t = column_type(field);
            match sql_type_name(&t).as_str() {
                "USER-DEFINED" | "ARRAY" => t.name,
                name => name.to_string(),
            }
        }
    }
}

/// PostgreSQL's `information_schema` name of a type.
fn sql_type_name(t: &ColumnType) -> String {
    match t.oid {
        16 => "boolean",
        17 => "bytea",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        114 => "json",
        700 => "real",
        701 => "double precision",
        1042 => "character",
        1043 => "character varying",
        1082 => "date",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1186 => "interval",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        _ if t.dims > 0 => "ARRAY",
        _ => "USER-DEFINED",
    }
    .to_string()
}

/// (character_maximum_length, character_octet_length, numeric_precision,
/// numeric_precision_radix, numeric_scale, datetime_precision) as
/// PostgreSQL's `information_schema.columns` computes them.
type Measures = [Option<i32>; 6];

fn measures(t: &ColumnType) -> Measures {
    let length = (t.typmod >= 4).then(|| t.typmod - 4);
    match t.oid {
        25 | 1042 | 1043 => [
            length,
            Some(length.map_or(1_073_741_824, |n| n.saturating_mul(4))),
            None,
            None,
            None,
            None,
        ],
        21 => [None, None, Some(16), Some(2), Some(0), None],
        23 => [None, None, Some(32), Some(2), Some(0), None],
        20 => [None, None, Some(64), Some(2), Some(0), None],
        700 => [None, None, Some(24), Some(2), None, None],
        701 => [None, None, Some(53), Some(2), None, None],
        1700 => match length {
            Some(m) => [
                None,
                None,
                Some((m >> 16) & 0xffff),
                Some(10),
                Some(m & 0xffff),
                None,
            ],
            None => [None, None, None, Some(10), None, None],
        },
        1082 => [None, None, None, None, None, Some(0)],
        1083 | 1114 | 1184 | 1186 => [
            None,
            None,
            None,
            None,
            None,
            Some(if t.typmod >= 0 { t.typmod } else { 6 }),
        ],
        _ => [None; 6],
    }
}

#[async_trait]
impl TableProvider for InformationSchemaColumns {
    fn schema(&self) -> SchemaRef {
        information_schema_columns_schema()
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
        let (_, relations) = self.source.relations().await?;
        let mut rows: Vec<(&Relation, usize, &Field, ColumnType)> = Vec::new();
        for t in &relations {
            for (i, f) in t.columns.iter().enumerate() {
                rows.push((t, i + 1, f, column_type(f)));
            }
        }
        let text = |f: &dyn Fn(&(&Relation, usize, &Field, ColumnType)) -> Option<String>| {
            Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef
        };
        let int = |f: &dyn Fn(&(&Relation, usize, &Field, ColumnType)) -> Option<i32>| {
            Arc::new(rows.iter().map(f).collect::<Int32Array>()) as ArrayRef
        };
        let database = self.source.database.clone();
        let measure = |k: usize| int(&|r| measures(&r.3)[k]);
        let columns: Vec<ArrayRef> = vec![
            text(&|_| Some(database.clone())),
            text(&|r| Some(r.0.schema.clone())),
            text(&|r| Some(r.0.name.clone())),
            text(&|r| Some(r.2.name().clone())),
            int(&|r| i32::try_from(r.1).ok()),
            text(&|_| None),
            text(&|r| {
                let key = i16::try_from(r.1)
                    .ok()
                    .is_some_and(|n| r.0.primary_key.contains(&n));
                Some(
                    if r.2.is_nullable() && !key {
                        "YES"
                    } else {
                        "NO"
                    }
                    .to_string(),
                )
            }),
            text(&|r| Some(sql_type_name(&r.3))),
            measure(0),
            measure(1),
            measure(2),
            measure(3),
            measure(4),
            measure(5),
            text(&|_| None),
            int(&|_| None),
            text(&|_| None),
            text(&|_| None),
            text(&|_| Some(database.clone())),
            text(&|_| Some("pg_catalog".to_string())),
            text(&|r| Some(r.3.name.clone())),
            text(&|r| Some(r.1.to_string())),
            text(&|_| Some("NO".to_string())),
            text(&|_| Some("NO".to_string())),
            text(&|_| Some("NEVER".to_string())),
            text(&|_| Some("NO".to_string())),
        ];
        let schema = self.schema();
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
