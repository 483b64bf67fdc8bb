//! `has_table_privilege`, `has_column_privilege`,
//! `has_any_column_privilege`, `has_schema_privilege` and
//! `has_database_privilege`, answered for the session's user from its
//! grants (`datafusion-pg-catalog` answers `true` to everything).
//!
//! tautan is read-only: the only privileges anyone holds are SELECT on
//! what the grants cover (table-level only for a table granted whole; a
//! table granted in part has SELECT on those columns, as PostgreSQL's
//! column privileges), USAGE on the schemas the user sees, and CONNECT on
//! the federation's database. INSERT, UPDATE, DELETE, CREATE, ... are
//! always false. As in PostgreSQL a name that does not exist (for this
//! user: an invisible table is one that does not exist) is an error, an
//! unknown privilege is 22023, and an oid argument tautan cannot resolve
//! gives NULL. Another role's privileges are not disclosed: only the
//! session user exists here (as in `pg_roles`), other names are 42704.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::CatalogProviderList;
use datafusion::common::{Result, TableReference};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::catalog::{Registry, PUBLIC_SCHEMA};
use crate::error::QueryError;
use crate::grants::{AccessCell, TableAccess};

/// What a session's privilege functions read.
#[derive(Debug)]
struct Privileges {
    registry: Arc<Registry>,
    /// The session's access (the policy version of its statement).
    access: Arc<AccessCell>,
    catalogs: Arc<dyn CatalogProviderList>,
}

/// Registers the functions in `ctx` (over the catalog crate's).
pub fn install(ctx: &SessionContext, registry: Arc<Registry>, access: Arc<AccessCell>) {
    let privileges = Arc::new(Privileges {
        registry,
        access,
        catalogs: ctx.state().catalog_list().clone(),
    });
    for object in [
        Object::Table,
        Object::Column,
        Object::AnyColumn,
        Object::Schema,
        Object::Database,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(HasPrivilege {
            object,
            privileges: privileges.clone(),
            signature: Signature::variadic_any(Volatility::Stable),
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Object {
    Table,
    Column,
    AnyColumn,
    Schema,
    Database,
}

impl Object {
    fn function(self) -> &'static str {
        match self {
            Object::Table => "has_table_privilege",
            Object::Column => "has_column_privilege",
            Object::AnyColumn => "has_any_column_privilege",
            Object::Schema => "has_schema_privilege",
            Object::Database => "has_database_privilege",
        }
    }

    /// Arguments naming the object (before the privilege, after the
    /// optional user).
    fn object_args(self) -> usize {
        match self {
            Object::Column => 2,
            _ => 1,
        }
    }

    /// Privilege names PostgreSQL accepts for the object.
    fn known(self) -> &'static [&'static str] {
        match self {
            Object::Table => &[
                "SELECT",
                "INSERT",
                "UPDATE",
                "DELETE",
                "TRUNCATE",
                "REFERENCES",
                "TRIGGER",
                "MAINTAIN",
            ],
            Object::Column | Object::AnyColumn => &["SELECT", "INSERT", "UPDATE", "REFERENCES"],
            Object::Schema => &["CREATE", "USAGE"],
            Object::Database => &["CREATE", "CONNECT", "TEMPORARY", "TEMP"],
        }
    }

    /// The one privilege that can be held on the object here.
    fn readable(self) -> &'static str {
        match self {
            Object::Table | Object::Column | Object::AnyColumn => "SELECT",
            Object::Schema => "USAGE",
            Object::Database => "CONNECT",
        }
    }
}

fn fail(e: QueryError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[derive(Debug)]
struct HasPrivilege {
    object: Object,
    privileges: Arc<Privileges>,
    signature: Signature,
}

impl PartialEq for HasPrivilege {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object && Arc::ptr_eq(&self.privileges, &other.privileges)
    }
}
impl Eq for HasPrivilege {}
impl std::hash::Hash for HasPrivilege {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.object.hash(state);
    }
}

/// A value of an argument: text, or an integer (an oid or attnum).
enum Arg {
    Null,
    Text(String),
    Number,
}

fn arg(array: &ArrayRef, row: usize) -> Result<Arg> {
    if array.is_null(row) {
        return Ok(Arg::Null);
    }
    if array.data_type().is_integer() {
        return Ok(Arg::Number);
    }
    let text = cast(array, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| DataFusionError::Internal("text expected".into()))?;
    Ok(Arg::Text(text.value(row).to_string()))
}

impl ScalarUDFImpl for HasPrivilege {
    fn name(&self) -> &str {
        self.object.function()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arity = self.object.object_args() + 1;
        let with_user = match args.args.len() {
            n if n == arity => false,
            n if n == arity + 1 => true,
            n => {
                return Err(fail(QueryError::new(
                    "42883",
                    format!(
                        "function {} with {n} arguments does not exist",
                        self.object.function()
                    ),
                )))
            }
        };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut out = BooleanBuilder::with_capacity(rows);
        for row in 0..rows {
            let mut values = Vec::with_capacity(arrays.len());
            for a in &arrays {
                values.push(arg(a, row)?);
            }
            let mut values = values.into_iter();
            if with_user {
                match values.next() {
                    Some(Arg::Text(user)) if *user == self.privileges.access.get().user => {}
                    Some(Arg::Text(user)) => {
                        return Err(fail(QueryError::new(
                            "42704",
                            format!("role \"{user}\" does not exist"),
                        )))
                    }
                    _ => {
                        out.append_null();
                        continue;
                    }
                }
            }
            let object: Vec<Arg> = values.by_ref().take(self.object.object_args()).collect();
            let privilege = match values.next() {
                Some(Arg::Text(p)) => p,
                _ => {
                    out.append_null();
                    continue;
                }
            };
            let wanted = self.parse_privileges(&privilege)?;
            match self.held(&object)? {
                Some(held) => {
                    out.append_value(held && wanted.iter().any(|p| *p == self.object.readable()))
                }
                None => out.append_null(),
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }
}

impl HasPrivilege {
    /// The privileges named (upper case), those `WITH GRANT OPTION` left
    /// out (nobody holds a grant option here); 22023 for an unknown one.
    fn parse_privileges(&self, text: &str) -> Result<Vec<&'static str>> {
        let mut out = Vec::new();
        for part in text.split(',') {
            let upper = part.trim().to_ascii_uppercase();
            let (name, grant_option) = match upper.strip_suffix("WITH GRANT OPTION") {
                Some(name) => (name.trim_end().to_string(), true),
                None => (upper.clone(), false),
            };
            let Some(known) = self.object.known().iter().find(|k| **k == name) else {
                return Err(fail(QueryError::new(
                    "22023",
                    format!("unrecognized privilege type: \"{}\"", part.trim()),
                )));
            };
            if !grant_option {
                out.push(*known);
            }
        }
        Ok(out)
    }

    /// Whether the user may read the object (`None` when an argument is
    /// NULL or an oid this cannot resolve).
    fn held(&self, object: &[Arg]) -> Result<Option<bool>> {
        let p = &self.privileges;
        let database = &p.registry.database;
        match (self.object, object) {
            (Object::Database, [Arg::Text(name)]) => {
                if name == database {
                    Ok(Some(true))
                } else {
                    Err(fail(QueryError::new(
                        "3D000",
                        format!("database \"{name}\" does not exist"),
                    )))
                }
            }
            (Object::Schema, [Arg::Text(name)]) => {
                let visible = matches!(name.as_str(), "pg_catalog" | "information_schema")
                    || p.catalogs
                        .catalog(database)
                        .is_some_and(|c| c.schema_names().iter().any(|s| s == name));
                if visible {
                    Ok(Some(true))
                } else {
                    Err(fail(QueryError::new(
                        "3F000",
                        format!("schema \"{name}\" does not exist"),
                    )))
                }
            }
            (Object::Table | Object::AnyColumn, [Arg::Text(name)]) => {
                let access = self.table_access(name)?;
                Ok(Some(match (self.object, access) {
                    (Object::Table, TableAccess::All) => true,
                    (Object::Table, _) => false,
                    (_, TableAccess::All) => true,
                    (_, TableAccess::Columns(c)) => !c.is_empty(),
                    (_, TableAccess::Invisible) => false,
                }))
            }
            (Object::Column, [Arg::Text(table), Arg::Text(column)]) => {
                let access = self.table_access(table)?;
                if access.allows_column(column) {
                    return Ok(Some(true));
                }
                let (catalog, schema, name) = self.resolve(table)?;
                if p.registry.has_column(&catalog, &schema, &name, column) {
                    Ok(Some(false))
                } else {
                    Err(fail(QueryError::new(
                        "42703",
                        format!("column \"{column}\" of relation \"{table}\" does not exist"),
                    )))
                }
            }
            _ => Ok(None),
        }
    }

    /// A table name as the user wrote it, resolved like a name in a query.
    fn resolve(&self, name: &str) -> Result<(String, String, String)> {
        let r = TableReference::parse_str(name)
            .resolve(&self.privileges.registry.database, PUBLIC_SCHEMA);
        Ok((
            r.catalog.to_string(),
            r.schema.to_string(),
            r.table.to_string(),
        ))
    }

    /// What the user may read of a table; 42P01 if it does not exist for
    /// the user.
    fn table_access(&self, name: &str) -> Result<TableAccess> {
        let p = &self.privileges;
        let (catalog, schema, table) = self.resolve(name)?;
        let missing = || fail(QueryError::undefined_table(name));
        let provider = p
            .catalogs
            .catalog(&catalog)
            .and_then(|c| c.schema(&schema))
            .ok_or_else(missing)?;
        if !provider.table_exist(&table) {
            return Err(missing());
        }
        let (located_catalog, located_schema) = p.registry.locate(&catalog, &schema);
        if matches!(located_schema, "pg_catalog" | "information_schema")
            || (located_catalog == p.registry.database
                && located_schema == crate::catalog::SYSTEM_SCHEMA)
        {
            return Ok(TableAccess::All);
        }
        let grant = p.registry.grant_name(&catalog, &schema, &table);
        match p.access.get().table(&grant) {
            TableAccess::Invisible => Err(missing()),
            access => Ok(access),
        }
    }
}
