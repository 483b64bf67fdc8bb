//! `POST /v1/sql`: one statement, as the body (`text/plain`, or any type
//! but JSON) or as JSON `{"sql": "...", "params": [...]}`. Parameters
//! (`$1`, `$2`, ...) are bound as values — typed by the statement, as the
//! PostgreSQL door binds text-format parameters — never spliced into SQL.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query as UrlQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::authenticate;
use super::error::ApiError;
use super::format::Format;
use crate::engine::{Engine, Prepared};
use crate::error::QueryError;

/// The JSON form of a request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

/// `?format=` (instead of an `Accept` header).
#[derive(Debug, Deserialize)]
pub struct FormatParam {
    format: Option<String>,
}

/// The statement and parameters of a request body.
fn read_body(headers: &HeaderMap, body: &Bytes) -> Result<(String, Vec<Value>), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| {
            c.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if json {
        let request: SqlRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body is not {{\"sql\": \"...\", \"params\": [...]}}: {e}"
            ))
        })?;
        Ok((request.sql, request.params))
    } else {
        let sql =
            std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the SQL is not UTF-8"))?;
        Ok((sql.to_string(), Vec::new()))
    }
}

/// A JSON parameter as the text a PostgreSQL client would send for it:
/// strings as they are, numbers and booleans as written, arrays as an
/// array literal (`{1,"a b",NULL}`), objects as JSON text; null is NULL.
pub fn param_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => Some(value.to_string()),
        Value::Array(items) => {
            let elements: Vec<String> = items
                .iter()
                .map(|item| match param_text(item) {
                    None => "NULL".to_string(),
                    Some(text) if matches!(item, Value::Array(_)) => text,
                    Some(text) => {
                        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
                    }
                })
                .collect();
            Some(format!("{{{}}}", elements.join(",")))
        }
    }
}

/// Binds `params` (as text) to the placeholders of `query`.
pub fn bind(
    query: &crate::engine::Query,
    params: &[Option<String>],
) -> Result<Option<datafusion::common::ParamValues>, ApiError> {
    let inferred = crate::server::params::parameter_types(&query.plan)?;
    if inferred.len() != params.len() {
        return Err(ApiError::bad_request(format!(
            "the statement has {} parameter(s), {} given",
            inferred.len(),
            params.len()
        )));
    }
    if params.is_empty() {
        return Ok(None);
    }
    let raw: Vec<Option<Bytes>> = params
        .iter()
        .map(|p| p.as_ref().map(|t| Bytes::from(t.clone())))
        .collect();
    Ok(Some(crate::server::params::decode(
        &raw,
        &[],
        &[],
        &inferred,
        &[],
    )?))
}

/// `POST /v1/sql`.
pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlQuery(param): UrlQuery<FormatParam>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(
        param.format.as_deref(),
        headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()),
    )?;
    let caller = authenticate(&engine, &headers, peer).await?;
    let (sql, params) = read_body(&headers, &body)?;
    let mut statements = caller.session.parse(&sql)?;
    let statement = match statements.len() {
        1 => statements.remove(0),
        0 => return Err(QueryError::new("42601", "no statement was sent").into()),
        n => {
            return Err(QueryError::new(
                "42601",
                format!("one statement per request, {n} were sent"),
            )
            .into())
        }
    };
    let params: Vec<Option<String>> = params.iter().map(param_text).collect();
    match caller.session.prepare(statement).await? {
        Prepared::Query(query) | Prepared::CopyOut { query, .. } => {
            let values = bind(&query, &params)?;
            super::answer(caller, query, values, format).await
        }
        Prepared::Command { tag, show } => {
            let mut body = json!({ "command": tag });
            if let (Some((name, value)), Some(map)) = (show, body.as_object_mut()) {
                map.insert(name, json!(value));
            }
            Ok(axum::Json(body).into_response())
        }
        Prepared::Declare { .. } | Prepared::Fetch { .. } | Prepared::Close(_) => {
            Err(QueryError::new(
                "0A000",
                "cursors are not kept between HTTP requests: send the query itself",
            )
            .into())
        }
        Prepared::Empty => Err(QueryError::new("42601", "no statement was sent").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parameters_become_the_text_a_postgresql_client_sends() {
        assert_eq!(param_text(&json!(null)), None);
        assert_eq!(param_text(&json!("3174")).as_deref(), Some("3174"));
        assert_eq!(param_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(param_text(&json!(-1.5)).as_deref(), Some("-1.5"));
        assert_eq!(param_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(
            param_text(&json!([1, null, "a \"b\"\\"])).as_deref(),
            Some(r#"{"1",NULL,"a \"b\"\\"}"#)
        );
        assert_eq!(
            param_text(&json!([[1, 2], [3, 4]])).as_deref(),
            Some(r#"{{"1","2"},{"3","4"}}"#)
        );
        assert_eq!(param_text(&json!({"a": 1})).as_deref(), Some(r#"{"a":1}"#));
    }
}
