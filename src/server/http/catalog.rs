//! `GET /v1/catalog`: the metadata catalog of the datasets the caller may
//! read — for each, the producing agency (its link and the link's
//! description and status, or the custodian for reference data and pulls),
//! its classification labels and the policy it is read under, and its
//! columns with type, description, labels and mask. Read from `system.*` as
//! the caller sees them, so it shows exactly what their grants allow.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray};
use serde_json::{json, Value};

use super::auth::authenticate;
use super::error::ApiError;
use crate::engine::{Engine, Outcome, Session};

/// The text rows of a `system.*` query (every column read as text; NULL
/// as `None`).
pub async fn system_rows(
    session: &Session,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, ApiError> {
    let mut rows = Vec::new();
    for outcome in session.run(sql).await? {
        let Outcome::Rows(_, batches) = outcome else {
            continue;
        };
        for b in batches {
            let columns: Vec<_> = (0..b.num_columns())
                .map(|i| {
                    datafusion::arrow::compute::cast(
                        b.column(i),
                        &datafusion::arrow::datatypes::DataType::Utf8,
                    )
                })
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    crate::error::QueryError::from(datafusion::error::DataFusionError::from(e))
                })?;
            for r in 0..b.num_rows() {
                rows.push(
                    columns
                        .iter()
                        .map(|c| {
                            let c = c.as_string::<i32>();
                            c.is_valid(r).then(|| c.value(r).to_string())
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(rows)
}

/// The name `/v1/datasets/` takes for a table: `schema.table` in the
/// federation's own catalog (`ref.kecamatan`), `link.schema.table` else.
pub fn dataset_name(database: &str, catalog: &str, schema: &str, table: &str) -> String {
    if catalog == database {
        format!("{schema}.{table}")
    } else {
        format!("{catalog}.{schema}.{table}")
    }
}

fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// `GET /v1/catalog`.
pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&engine, &headers, peer).await?;
    let session = &caller.session;
    let database = engine.config.server.database.clone();
    let links: BTreeMap<String, (Option<String>, String)> = system_rows(
        session,
        "SELECT name, description, status FROM system.links",
    )
    .await?
    .into_iter()
    .map(|r| (cell(&r, 0), (r.get(1).cloned().flatten(), cell(&r, 2))))
    .collect();
    let mut columns: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in system_rows(
        session,
        "SELECT catalog, schema, \"table\", \"column\", data_type, description, labels, mask \
         FROM system.columns WHERE schema <> 'system'",
    )
    .await?
    {
        let name = dataset_name(&database, &cell(&r, 0), &cell(&r, 1), &cell(&r, 2));
        columns.entry(name).or_default().push(json!({
            "name": cell(&r, 3),
            "type": cell(&r, 4),
            "description": r.get(5).cloned().flatten(),
            "labels": r.get(6).cloned().flatten(),
            "mask": r.get(7).cloned().flatten(),
        }));
    }
    let mut datasets = Vec::new();
    for r in system_rows(
        session,
        "SELECT catalog, schema, \"table\", kind, labels, policy FROM system.tables \
         WHERE schema <> 'system' ORDER BY 1, 2, 3",
    )
    .await?
    {
        let (catalog, schema) = (cell(&r, 0), cell(&r, 1));
        let name = dataset_name(&database, &catalog, &schema, &cell(&r, 2));
        let producer = match links.get(&catalog) {
            Some((description, status)) => json!({
                "link": catalog,
                "description": description,
                "status": status,
            }),
            None if schema == "mat" => json!({ "custodian": "materialized pull" }),
            None => json!({ "custodian": "reference data" }),
        };
        datasets.push(json!({
            "name": name,
            "url": format!("/v1/datasets/{name}"),
            "kind": cell(&r, 3),
            "producer": producer,
            "labels": r.get(4).cloned().flatten(),
            "policy": r.get(5).cloned().flatten(),
            "columns": columns.remove(&name).unwrap_or_default(),
        }));
    }
    Ok(axum::Json(json!({ "datasets": datasets })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
