//! Catalog functions that describe the user's objects by OID:
//! `pg_get_indexdef`, `pg_get_constraintdef` (the sources' primary keys),
//! and the visibility and description helpers clients call with them; and
//! `pg_typeof`, the type of a value as the catalog names it.
//!
//! An OID names an object through [`crate::oids`]; the object is looked up
//! in the session's own catalog list, so what the user may not see (a table
//! not granted, a column not granted) is never described: such an OID
//! answers NULL, as an unknown one does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::catalog::CatalogProviderList;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use futures::FutureExt;

use crate::oids::Object;

/// The functions, reading `catalogs` (the session's) under `database`.
pub fn functions(catalogs: Arc<dyn CatalogProviderList>, database: &str) -> Vec<ScalarUDF> {
    let keys = Keys {
        catalogs,
        database: database.to_string(),
    };
    let int = DataType::Int64;
    let mut functions = vec![
        ScalarUDF::new_from_impl(OidFunction::new(
            "pg_get_indexdef",
            vec![
                vec![int.clone()],
                vec![int.clone(), int.clone(), DataType::Boolean],
            ],
            DataType::Utf8,
            {
                let keys = keys.clone();
                move |args| {
                    let (schema, table, columns) = keys.index(args.first().copied().flatten()?)?;
                    match args.get(1).copied().flatten() {
                        Some(n) if n > 0 => {
                            let column = columns.get(usize::try_from(n - 1).ok()?)?;
                            Some(ScalarValue::Utf8(Some(quote_ident(column))))
                        }
                        _ => Some(ScalarValue::Utf8(Some(format!(
                            "CREATE UNIQUE INDEX {} ON {}.{} USING btree ({})",
                            quote_ident(&format!("{table}_pkey")),
                            quote_ident(&schema),
                            quote_ident(&table),
                            column_list(&columns)
                        )))),
                    }
                }
            },
        )),
        ScalarUDF::new_from_impl(OidFunction::new(
            "pg_get_constraintdef",
            vec![vec![int.clone()], vec![int.clone(), DataType::Boolean]],
            DataType::Utf8,
            {
                let keys = keys.clone();
                move |args| {
                    let (_, _, columns) = keys.constraint(args.first().copied().flatten()?)?;
                    Some(ScalarValue::Utf8(Some(format!(
                        "PRIMARY KEY ({})",
                        column_list(&columns)
                    ))))
                }
            },
        )),
    ];
    // Every type and every function is in pg_catalog, on every path.
    for name in ["pg_type_is_visible", "pg_function_is_visible"] {
        functions.push(ScalarUDF::new_from_impl(OidFunction::new(
            name,
            vec![vec![int.clone()]],
            DataType::Boolean,
            |args| {
                Some(ScalarValue::Boolean(
                    args.first().copied().flatten().map(|_| true),
                ))
            },
        )));
    }
    // tautan defines no functions of its own: none to describe.
    for name in ["pg_get_function_result", "pg_get_function_arguments"] {
        functions.push(ScalarUDF::new_from_impl(OidFunction::new(
            name,
            vec![vec![int.clone()]],
            DataType::Utf8,
            |_| None,
        )));
    }
    functions.push(ScalarUDF::new_from_impl(NameFound::regclass()));
    functions.push(ScalarUDF::new_from_impl(NameFound::regtype()));
    functions.push(ScalarUDF::new_from_impl(PgTypeof {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    functions
}

/// `tautan_regclass_found(oid, name)` and `tautan_regtype_found(oid, name)`:
/// `'name'::regclass` (or `::regtype`) once the name was looked up (`oid`):
/// PostgreSQL's error when none was found, as the cast raises (42P01
/// `relation "…" does not exist`, 42704 `type "…" does not exist`), rather
/// than NULL ([`crate::statement`] wraps the lookup in it).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NameFound {
    name: &'static str,
    sqlstate: &'static str,
    noun: &'static str,
    signature: Signature,
}

impl NameFound {
    /// The check of a `'name'::regclass` lookup.
    pub fn regclass() -> Self {
        Self::new(REGCLASS_FOUND, "42P01", "relation")
    }

    /// The check of a `'name'::regtype` lookup.
    pub fn regtype() -> Self {
        Self::new(REGTYPE_FOUND, "42704", "type")
    }

    fn new(name: &'static str, sqlstate: &'static str, noun: &'static str) -> Self {
        Self {
            name,
            sqlstate,
            noun,
            signature: Signature::any(2, Volatility::Stable),
        }
    }
}

/// The name of [`NameFound::regclass`].
pub const REGCLASS_FOUND: &str = "tautan_regclass_found";
/// The name of [`NameFound::regtype`].
pub const REGTYPE_FOUND: &str = "tautan_regtype_found";

impl ScalarUDFImpl for NameFound {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Int64))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (Some(oid), Some(name)) = (args.args.first(), args.args.get(1)) else {
            return datafusion::common::plan_err!("{} takes an oid and a name", self.name);
        };
        let oids = oid.to_array(rows)?;
        let names = cast(&name.to_array(rows)?, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        for row in 0..rows {
            if oids.is_null(row) && names.is_valid(row) {
                let e = crate::error::QueryError::new(
                    self.sqlstate,
                    format!("{} \"{}\" does not exist", self.noun, names.value(row)),
                );
                return Err(datafusion::error::DataFusionError::External(Box::new(e)));
            }
        }
        Ok(oid.clone())
    }
}

/// `name` quoted as PostgreSQL's `quote_ident` does.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Primary keys of the tables the session sees, by OID.
#[derive(Debug, Clone)]
struct Keys {
    catalogs: Arc<dyn CatalogProviderList>,
    database: String,
}

impl Keys {
    fn index(&self, oid: i64) -> Option<(String, String, Vec<String>)> {
        match crate::oids::lookup(oid)? {
            Object::PrimaryKeyIndex(schema, table) => self.key(schema, table),
            _ => None,
        }
    }

    fn constraint(&self, oid: i64) -> Option<(String, String, Vec<String>)> {
        match crate::oids::lookup(oid)? {
            Object::PrimaryKeyConstraint(schema, table) => self.key(schema, table),
            _ => None,
        }
    }

    /// The key columns of `schema.table` the user may see (none: NULL).
    fn key(&self, schema: String, table: String) -> Option<(String, String, Vec<String>)> {
        let provider = self.catalogs.catalog(&self.database)?.schema(&schema)?;
        // Tables of the user's catalog are at hand: their lookup does not
        // wait (one that would answers NULL rather than block).
        let table_provider = provider.table(&table).now_or_never()?.ok()??;
        let arrow = table_provider.schema();
        let mut keyed: Vec<(usize, String)> = arrow
            .fields()
            .iter()
            .filter_map(|f: &Arc<Field>| {
                let p = f.metadata().get(tautan_connector::types::PRIMARY_KEY)?;
                Some((p.parse().unwrap_or(usize::MAX), f.name().clone()))
            })
            .collect();
        if keyed.is_empty() {
            return None;
        }
        keyed.sort();
        Some((schema, table, keyed.into_iter().map(|(_, c)| c).collect()))
    }
}

type OidBody = dyn Fn(&[Option<i64>]) -> Option<ScalarValue> + Send + Sync;

/// A function of integer (OID, position) and boolean (pretty) arguments,
/// row by row; the boolean is read as an integer and not used.
struct OidFunction {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Arc<OidBody>,
}

impl std::fmt::Debug for OidFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for OidFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.body, &other.body)
    }
}
impl Eq for OidFunction {}
impl std::hash::Hash for OidFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl OidFunction {
    fn new(
        name: &'static str,
        arities: Vec<Vec<DataType>>,
        returns: DataType,
        body: impl Fn(&[Option<i64>]) -> Option<ScalarValue> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            signature: Signature::one_of(
                arities.into_iter().map(TypeSignature::Exact).collect(),
                Volatility::Stable,
            ),
            returns,
            body: Arc::new(body),
        }
    }
}

impl ScalarUDFImpl for OidFunction {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| Ok(cast(&a.to_array(rows)?, &DataType::Int64)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let values: Vec<Option<i64>> = arrays
                .iter()
                .map(|a| {
                    let a = a.as_primitive::<Int64Type>();
                    a.is_valid(row).then(|| a.value(row))
                })
                .collect();
            out.push((self.body)(&values));
        }
        let array: ArrayRef = match self.returns {
            DataType::Boolean => Arc::new(
                out.iter()
                    .map(|v| match v {
                        Some(ScalarValue::Boolean(b)) => *b,
                        _ => None,
                    })
                    .collect::<BooleanArray>(),
            ),
            _ => Arc::new(
                out.into_iter()
                    .map(|v| match v {
                        Some(ScalarValue::Utf8(s)) => s,
                        _ => None,
                    })
                    .collect::<StringArray>(),
            ),
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_as_postgresql_does() {
        assert_eq!(quote_ident("nik"), "nik");
        assert_eq!(
            quote_ident("kesehatan.kesehatan"),
            "\"kesehatan.kesehatan\""
        );
        assert_eq!(quote_ident("Nama"), "\"Nama\"");
        assert_eq!(column_list(&["a".into(), "b c".into()]), "a, \"b c\"");
    }
}

/// `pg_typeof(x)`: the name of the PostgreSQL type `x` is sent as, as
/// PostgreSQL prints a `regtype` (`integer`, `numeric`, `timestamp with
/// time zone`, `text[]`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(field) = args.arg_fields.first() else {
            return datafusion::common::exec_err!("pg_typeof takes one argument");
        };
        let name = crate::pg_catalog::regtype_name(field);
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}
