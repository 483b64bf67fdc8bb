//! What PostgreSQL clients browse before their first query: `pg_catalog`,
//! and the functions they call (`version()`, `current_setting()`, ...).
//!
//! The tables and most functions come from `datafusion-pg-catalog`, built
//! over the session's own catalog list — the user's filtered view — so
//! `pg_class`, `pg_namespace`, `pg_attribute` list only what the user may
//! read. tautan adds what that crate leaves to the server: `version()` in
//! PostgreSQL's format, `current_setting()` reading the session's settings,
//! and `pg_roles` showing the connected user.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
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
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
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
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version_text()))))
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
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
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
        let names = args.args[0].to_array(rows)?;
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
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}
