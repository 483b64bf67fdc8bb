//! `GET /openapi.json`: an OpenAPI 3 description of the HTTP door, listing
//! exactly the datasets the caller may read — each `GET
//! /v1/datasets/{name}` with its columns (the granted ones, typed as the
//! JSON answer carries them, with the source's descriptions) and the
//! filter parameters it takes. Built from `system.columns` as the caller
//! reads it, so grants, hidden tables and column grants apply as they do
//! to SQL.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::auth::authenticate;
use super::catalog::system_rows;
use super::error::ApiError;
use crate::engine::Engine;
use crate::system::dataset_name;

/// One readable column, as `system.columns` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The dataset's name as `/v1/datasets/` takes it.
    pub dataset: String,
    /// The column.
    pub column: String,
    /// Its Arrow type, as `system.columns.data_type` writes it.
    pub data_type: String,
    /// The source's or the config's description.
    pub description: Option<String>,
}

/// The JSON Schema of a value of an Arrow type, as the JSON answer writes
/// it (decimals as exact numbers, dates and times as strings).
fn json_schema(data_type: &str) -> Value {
    let t = data_type;
    let base = if t.starts_with("Int") || t.starts_with("UInt") {
        json!({ "type": "integer" })
    } else if t.starts_with("Float") || t.starts_with("Decimal") {
        json!({ "type": "number" })
    } else if t == "Boolean" {
        json!({ "type": "boolean" })
    } else if t.starts_with("Date") {
        json!({ "type": "string", "format": "date" })
    } else if t.starts_with("Timestamp") {
        json!({ "type": "string", "format": "date-time" })
    } else if t.starts_with("List") || t.starts_with("LargeList") {
        json!({ "type": "array", "items": {} })
    } else {
        json!({ "type": "string" })
    };
    let mut schema = base;
    if let Some(map) = schema.as_object_mut() {
        map.insert("nullable".into(), json!(true));
        map.insert("x-arrow-type".into(), json!(t));
    }
    schema
}

/// A name usable as an OpenAPI component key (`[A-Za-z0-9._-]`).
fn component_key(dataset: &str) -> String {
    dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema,
    })
}

/// The answer formats, as OpenAPI `content`, rows described by `row`.
fn content(row: Value) -> Value {
    json!({
        "application/json": { "schema": { "type": "array", "items": row } },
        "application/x-ndjson": { "schema": row },
        "text/csv": { "schema": { "type": "string" } },
        "application/vnd.apache.arrow.stream": { "schema": { "type": "string", "format": "binary" } },
        "application/vnd.apache.parquet": { "schema": { "type": "string", "format": "binary" } },
    })
}

fn error_responses() -> Value {
    let error = json!({
        "application/json": { "schema": { "$ref": "#/components/schemas/Error" } }
    });
    json!({
        "400": { "description": "an error in the request or the statement", "content": error.clone() },
        "401": { "description": "no login, or a wrong one", "content": error.clone() },
        "403": { "description": "not granted (42501), or a write (25006)", "content": error.clone() },
        "404": { "description": "no such dataset for this user (42P01)", "content": error.clone() },
        "503": { "description": "a link is down, or the audit log cannot be written", "content": error },
    })
}

/// The OpenAPI document for `columns` (in dataset order).
pub fn document(columns: &[ColumnInfo]) -> Value {
    let mut datasets: BTreeMap<&str, Vec<&ColumnInfo>> = BTreeMap::new();
    for c in columns {
        datasets.entry(c.dataset.as_str()).or_default().push(c);
    }
    let mut paths = Map::new();
    paths.insert(
        "/v1/sql".into(),
        json!({
            "post": {
                "summary": "Run one SQL statement (PostgreSQL dialect) over the federation",
                "requestBody": {
                    "required": true,
                    "content": {
                        "text/plain": { "schema": { "type": "string" } },
                        "application/json": { "schema": {
                            "type": "object",
                            "required": ["sql"],
                            "properties": {
                                "sql": { "type": "string" },
                                "params": { "type": "array", "items": {},
                                            "description": "values of $1, $2, ... (bound, never spliced)" }
                            }
                        } }
                    }
                },
                "parameters": [parameter("format", "json, ndjson, csv, arrow or parquet (instead of Accept)", json!({ "type": "string" }))],
                "responses": {
                    "200": { "description": "the rows", "content": content(json!({ "type": "object" })) }
                }
            }
        }),
    );
    let mut schemas = Map::new();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": { "error": { "type": "object", "properties": {
                "sqlstate": { "type": "string" },
                "message": { "type": "string" },
                "hint": { "type": "string" }
            } } }
        }),
    );
    for (dataset, cols) in &datasets {
        let key = component_key(dataset);
        let mut properties = Map::new();
        for c in cols {
            let mut schema = json_schema(&c.data_type);
            if let (Some(d), Some(map)) = (&c.description, schema.as_object_mut()) {
                map.insert("description".into(), json!(d));
            }
            properties.insert(c.column.clone(), schema);
        }
        schemas.insert(
            key.clone(),
            json!({ "type": "object", "properties": properties }),
        );
        let mut parameters = vec![
            parameter(
                "select",
                "columns to return, comma-separated",
                json!({ "type": "string" }),
            ),
            parameter(
                "order",
                "e.g. col.desc.nullslast,other",
                json!({ "type": "string" }),
            ),
            parameter(
                "limit",
                "at most this many rows",
                json!({ "type": "integer", "minimum": 0 }),
            ),
            parameter(
                "offset",
                "skip this many rows",
                json!({ "type": "integer", "minimum": 0 }),
            ),
            parameter(
                "format",
                "json, ndjson, csv, arrow or parquet (instead of Accept)",
                json!({ "type": "string" }),
            ),
        ];
        for c in cols {
            parameters.push(parameter(
                &c.column,
                "a filter: op.value with op one of eq, neq, gt, gte, lt, lte, like, ilike, in, is (not. before any)",
                json!({ "type": "string" }),
            ));
        }
        let mut responses = error_responses();
        if let Some(map) = responses.as_object_mut() {
            map.insert(
                "200".into(),
                json!({
                    "description": "the dataset's rows",
                    "content": content(json!({ "$ref": format!("#/components/schemas/{key}") })),
                }),
            );
        }
        paths.insert(
            format!("/v1/datasets/{dataset}"),
            json!({ "get": {
                "summary": format!("Read {dataset}"),
                "parameters": parameters,
                "responses": responses,
            } }),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "tautan: the custodian's data exchange (web service method)",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "security": [{ "basic": [] }, { "token": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": { "type": "http", "scheme": "basic" },
                "token": { "type": "http", "scheme": "bearer", "description": "an API token (`tautan token new`)" },
            },
            "schemas": schemas,
        },
    })
}

/// `GET /openapi.json`.
pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&engine, &headers, peer).await?;
    let database = &engine.config.server.database;
    let columns: Vec<ColumnInfo> = system_rows(
        &caller.session,
        "SELECT catalog, schema, \"table\", \"column\", data_type, description \
         FROM system.columns WHERE schema <> 'system' ORDER BY 1, 2, 3",
    )
    .await?
    .into_iter()
    .map(|r| {
        let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        ColumnInfo {
            dataset: dataset_name(database, &text(0), &text(1), &text(2)),
            column: text(3),
            data_type: text(4),
            description: r.get(5).cloned().flatten(),
        }
    })
    .collect();
    Ok(axum::Json(document(&columns)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_readable_dataset_is_a_path_with_its_columns() {
        let col = |d: &str, c: &str, t: &str| ColumnInfo {
            dataset: d.into(),
            column: c.into(),
            data_type: t.into(),
            description: None,
        };
        let doc = document(&[
            col("ref.kecamatan", "kode", "Utf8"),
            col("ref.kecamatan", "nama", "Utf8"),
            col("uji.Skema Campuran.Data Penting", "NilaiBesar", "Int32"),
            col("k.public.penduduk", "lahir", "Date32"),
            col("k.public.penduduk", "nilai", "Decimal128(12, 2)"),
        ]);
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 4);
        assert!(paths.contains_key("/v1/datasets/ref.kecamatan"));
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["uji.Skema_Campuran.Data_Penting"]["properties"]["NilaiBesar"]["type"],
            "integer"
        );
        assert_eq!(
            schemas["k.public.penduduk"]["properties"]["lahir"]["format"],
            "date"
        );
        assert_eq!(
            schemas["k.public.penduduk"]["properties"]["nilai"]["type"],
            "number"
        );
        let params = paths["/v1/datasets/ref.kecamatan"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(params.iter().any(|p| p["name"] == "kode"));
    }
}
