//! What one endpoint of a web-service link is, as a table.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

/// One endpoint served as a table.
///
/// ```toml
/// [[links.bps.tables]]
/// name = "inflasi"
/// path = "/v1/inflasi"
/// records = "/data"
/// columns = ["kode text", "tahun int4", "bulan int4", "nilai float8"]
/// keys = ["tahun"]
/// pagination = { kind = "next_link", pointer = "/links/next" }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The table's name.
    pub name: String,
    /// Path (and fixed query string) relative to the link's `base_url`.
    pub path: String,
    /// What the body is.
    #[serde(default)]
    pub format: Format,
    /// JSON pointer to the array of records in the body (`""`: the body
    /// itself is the array).
    #[serde(default)]
    pub records: String,
    /// Columns as `"name type"` (types as in PostgreSQL: text, bool, int2,
    /// int4, int8, float4, float8, numeric(p,s), date, timestamp,
    /// timestamptz). Empty: inferred from the first page, for `tautan
    /// check` to print and the custodian to pin.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Columns the service filters on: an equality on one of them
    /// (`WHERE tahun = 2025`) is sent as the query parameter of that name.
    #[serde(default)]
    pub keys: Vec<String>,
    /// How the endpoint pages.
    #[serde(default)]
    pub pagination: Pagination,
    /// Free-text description.
    pub description: Option<String>,
}

/// The body format of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A JSON document holding an array of objects.
    #[default]
    Json,
    /// CSV with a header row.
    Csv,
}

/// How an endpoint's answer continues past its first page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One page.
    #[default]
    None,
    /// The next page's URL is in the body (JSON pointer); absent, null or
    /// empty ends the answer.
    NextLink {
        /// JSON pointer to the URL.
        pointer: String,
    },
    /// The next page's URL is in the `Link` header (`rel="next"`).
    LinkHeader,
    /// A cursor token in the body (JSON pointer) is sent back as the query
    /// parameter `param`; absent, null or empty ends the answer.
    Cursor {
        /// JSON pointer to the token.
        pointer: String,
        /// The query parameter that carries it.
        param: String,
    },
    /// `param` (`offset`) advances by `page_size` rows, sent with
    /// `limit_param` (`limit`); a short page ends the answer.
    Offset {
        /// The offset parameter.
        #[serde(default = "default_offset")]
        param: String,
        /// The page size parameter.
        #[serde(default = "default_limit")]
        limit_param: String,
        /// Rows per page.
        page_size: usize,
    },
    /// `param` (`page`) counts pages from `start`; an empty page (or one
    /// shorter than `page_size`, when given) ends the answer.
    Page {
        /// The page parameter.
        #[serde(default = "default_page")]
        param: String,
        /// The first page's number.
        #[serde(default = "default_start")]
        start: u64,
        /// Rows per full page, when the service says.
        page_size: Option<usize>,
    },
}

fn default_offset() -> String {
    "offset".into()
}
fn default_limit() -> String {
    "limit".into()
}
fn default_page() -> String {
    "page".into()
}
fn default_start() -> u64 {
    1
}

impl Endpoint {
    /// The declared columns as an Arrow schema (`Ok(None)` when none are
    /// declared), or what is wrong with them.
    pub fn declared_schema(&self) -> Result<Option<SchemaRef>, String> {
        if self.columns.is_empty() {
            return Ok(None);
        }
        let mut fields = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let (name, ty) = column
                .trim()
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("column \"{column}\" has no type (write \"name type\")"))?;
            let data_type = data_type(ty.trim())
                .ok_or_else(|| format!("column \"{name}\": unknown type \"{}\"", ty.trim()))?;
            if fields.iter().any(|f: &Field| f.name() == name) {
                return Err(format!("column \"{name}\" is declared twice"));
            }
            fields.push(Field::new(name, data_type, true));
        }
        for key in &self.keys {
            if !fields.iter().any(|f| f.name() == key) {
                return Err(format!("key \"{key}\" is not a declared column"));
            }
        }
        Ok(Some(Arc::new(Schema::new(fields))))
    }

    /// Whether the configuration can work at all (pointers well formed,
    /// a pagination a CSV body can carry).
    pub fn validate(&self) -> Result<(), String> {
        let pointer_ok = |p: &str| p.is_empty() || p.starts_with('/');
        if !pointer_ok(&self.records) {
            return Err(format!(
                "records \"{}\" is not a JSON pointer (\"/data\", or \"\" for the body)",
                self.records
            ));
        }
        match &self.pagination {
            Pagination::NextLink { pointer } | Pagination::Cursor { pointer, .. }
                if !pointer.starts_with('/') =>
            {
                return Err(format!(
                    "pagination pointer \"{pointer}\" is not a JSON pointer"
                ));
            }
            Pagination::NextLink { .. } | Pagination::Cursor { .. }
                if self.format == Format::Csv =>
            {
                return Err("a CSV endpoint cannot carry a next link or cursor in its body".into());
            }
            Pagination::Offset { page_size: 0, .. }
            | Pagination::Page {
                page_size: Some(0), ..
            } => {
                return Err("page_size must be at least 1".into());
            }
            _ => {}
        }
        self.declared_schema().map(|_| ())
    }
}

/// The Arrow type for a column type written as in PostgreSQL.
pub fn data_type(ty: &str) -> Option<DataType> {
    let t = ty.to_ascii_lowercase();
    Some(match t.as_str() {
        "text" | "varchar" | "string" => DataType::Utf8,
        "bool" | "boolean" => DataType::Boolean,
        "int2" | "smallint" => DataType::Int16,
        "int4" | "int" | "integer" => DataType::Int32,
        "int8" | "bigint" => DataType::Int64,
        "float4" | "real" => DataType::Float32,
        "float8" | "double precision" | "double" => DataType::Float64,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => {
            let inner = t
                .strip_prefix("numeric(")
                .or_else(|| t.strip_prefix("decimal("))?
                .strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            let (p, s): (u8, i8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
            if p == 0 || p > 38 || s < 0 || s as u8 > p {
                return None;
            }
            DataType::Decimal128(p, s)
        }
    })
}

/// A column type as [`data_type`] reads it, for a column inferred from a
/// page (`tautan check` prints them for the custodian to pin).
pub fn type_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Boolean => "bool",
        DataType::Int16 => "int2",
        DataType::Int32 => "int4",
        DataType::Int64 => "int8",
        DataType::Float32 => "float4",
        DataType::Float64 => "float8",
        DataType::Date32 => "date",
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        _ => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(columns: &[&str], keys: &[&str]) -> Endpoint {
        Endpoint {
            name: "t".into(),
            path: "/t".into(),
            format: Format::Json,
            records: "/data".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            keys: keys.iter().map(|c| c.to_string()).collect(),
            pagination: Pagination::None,
            description: None,
        }
    }

    #[test]
    fn declared_columns_map_to_arrow_and_mistakes_are_named() {
        let e = endpoint(
            &["kode text", "n numeric(12, 2)", "at timestamptz"],
            &["kode"],
        );
        let schema = e.declared_schema().unwrap().unwrap();
        assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(12, 2));
        for (columns, keys, says) in [
            (&["kode"][..], &[][..], "has no type"),
            (&["kode texty"], &[], "unknown type"),
            (&["a int4", "a int8"], &[], "declared twice"),
            (&["a int4"], &["b"], "not a declared column"),
            (&["a numeric(40,2)"], &[], "unknown type"),
        ] {
            let err = endpoint(columns, keys).declared_schema().unwrap_err();
            assert!(err.contains(says), "{columns:?}: {err}");
        }
    }

    #[test]
    fn pagination_reads_from_toml_and_csv_bodies_cannot_carry_a_cursor() {
        let e: Endpoint = toml_like(
            r#"{"name":"t","path":"/t","format":"csv","pagination":{"kind":"cursor","pointer":"/next","param":"c"}}"#,
        );
        assert!(e.validate().unwrap_err().contains("CSV"));
        let e: Endpoint =
            toml_like(r#"{"name":"t","path":"/t","pagination":{"kind":"offset","page_size":50}}"#);
        assert_eq!(
            e.pagination,
            Pagination::Offset {
                param: "offset".into(),
                limit_param: "limit".into(),
                page_size: 50
            }
        );
        let e: Endpoint = toml_like(r#"{"name":"t","path":"/t","records":"data"}"#);
        assert!(e.validate().unwrap_err().contains("JSON pointer"));
    }

    fn toml_like(json: &str) -> Endpoint {
        serde_json::from_str(json).unwrap()
    }
}
