//! `GET /v1/catalog`: the metadata catalog of the datasets the caller may
//! read — for each, the producing agency (its link and the link's
//! description and status, or the custodian for reference data and pulls),
//! description, classification labels, the policy it is read under, primary
//! key, row estimate, freshness, the reference data it is keyed by, and its
//! columns with type, description, labels and mask. Read from
//! `system.datasets` and `system.columns` as the caller sees them, so it
//! shows exactly what their grants allow; [`super::pages`] shows the same
//! as a web page.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray};
use serde::Serialize;
use serde_json::json;

use super::auth::authenticate;
use super::error::ApiError;
use crate::engine::{Engine, Outcome, Session};
use crate::system::dataset_name;

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

fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

fn maybe(row: &[Option<String>], i: usize) -> Option<String> {
    row.get(i).cloned().flatten()
}

/// One column of a dataset.
#[derive(Debug, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub description: Option<String>,
    pub labels: Option<String>,
    pub mask: Option<String>,
}

/// Who produces a dataset: an agency's link (with its status), or the
/// custodian (reference data, materialized pulls).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Producer {
    Link {
        link: String,
        description: Option<String>,
        status: String,
    },
    Custodian {
        custodian: String,
    },
}

/// One dataset the caller may read: `system.datasets` and the columns of
/// `system.columns`.
#[derive(Debug, Serialize)]
pub struct Dataset {
    pub name: String,
    pub url: String,
    pub kind: String,
    pub producer: Producer,
    pub description: Option<String>,
    pub labels: Option<String>,
    pub policy: Option<String>,
    pub primary_key: Option<String>,
    pub row_estimate: Option<i64>,
    /// When the data was last read from its source to the end (live
    /// links) or pulled (materialized datasets).
    pub fresh_at: Option<String>,
    pub reference_keys: Option<String>,
    pub columns: Vec<Column>,
}

/// The catalog as the session's user sees it.
pub async fn datasets(session: &Session, database: &str) -> Result<Vec<Dataset>, ApiError> {
    let links: BTreeMap<String, String> =
        system_rows(session, "SELECT name, status FROM system.links")
            .await?
            .into_iter()
            .map(|r| (cell(&r, 0), cell(&r, 1)))
            .collect();
    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for r in system_rows(
        session,
        "SELECT catalog, schema, \"table\", \"column\", data_type, description, labels, mask \
         FROM system.columns WHERE schema <> 'system'",
    )
    .await?
    {
        let name = dataset_name(database, &cell(&r, 0), &cell(&r, 1), &cell(&r, 2));
        columns.entry(name).or_default().push(Column {
            name: cell(&r, 3),
            data_type: cell(&r, 4),
            description: maybe(&r, 5),
            labels: maybe(&r, 6),
            mask: maybe(&r, 7),
        });
    }
    let mut out = Vec::new();
    for r in system_rows(
        session,
        "SELECT dataset, kind, producer, producer_description, description, labels, policy, \
         primary_key, row_estimate, fresh_at, reference_keys FROM system.datasets ORDER BY 1",
    )
    .await?
    {
        let name = cell(&r, 0);
        let kind = cell(&r, 1);
        let producer = match maybe(&r, 2) {
            Some(link) => Producer::Link {
                status: links.get(&link).cloned().unwrap_or_default(),
                description: maybe(&r, 3),
                link,
            },
            None => Producer::Custodian {
                custodian: match kind.as_str() {
                    "materialized" => "materialized pull",
                    _ => "reference data",
                }
                .to_string(),
            },
        };
        out.push(Dataset {
            url: format!("/v1/datasets/{name}"),
            columns: columns.remove(&name).unwrap_or_default(),
            name,
            kind,
            producer,
            description: maybe(&r, 4),
            labels: maybe(&r, 5),
            policy: maybe(&r, 6),
            primary_key: maybe(&r, 7),
            row_estimate: maybe(&r, 8).and_then(|n| n.parse().ok()),
            fresh_at: maybe(&r, 9),
            reference_keys: maybe(&r, 10),
        });
    }
    Ok(out)
}

/// `GET /v1/catalog`.
pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&engine, &headers, peer).await?;
    let datasets = datasets(&caller.session, &engine.config.server.database).await?;
    Ok(axum::Json(json!({ "datasets": datasets })).into_response())
}
