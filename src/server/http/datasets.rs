//! `GET /v1/datasets/{name}`: a dataset read with PostgREST-style query
//! parameters, for clients that do not write SQL.
//!
//! `name` is `link.schema.table` (or `ref.table`, or any name the SQL door
//! takes), each part an exact identifier. Parameters:
//! - `select=a,b` — the columns (all when absent);
//! - `<column>=<op>.<value>` — a filter, with `op` one of `eq`, `neq`, `gt`,
//!   `gte`, `lt`, `lte`, `like`, `ilike` (`*` as the wildcard), `in`
//!   (`in.(a,b,"c,d")`), `is` (`is.null`, `is.true`, `is.false`); `not.`
//!   before the operator negates it; several filters are ANDed;
//! - `order=a.desc.nullslast,b` — the order; `limit=`, `offset=`;
//! - `format=` — instead of an `Accept` header.
//!
//! The request is written as one SQL statement in which every name is a
//! quoted identifier and every value a bound parameter (`$n`): nothing a
//! client sends is spliced into SQL text. It then runs as any statement
//! does (grants, policy, audit).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;

use super::auth::authenticate;
use super::error::ApiError;
use super::format::Format;
use crate::engine::{Engine, Prepared};
use crate::error::QueryError;

/// A dataset request written as SQL: the statement, and the text of each
/// of its parameters in order.
#[derive(Debug, PartialEq, Eq)]
pub struct DatasetQuery {
    /// `SELECT ... FROM ... WHERE ... ORDER BY ... LIMIT ... OFFSET ...`.
    pub sql: String,
    /// The value of `$1`, `$2`, ... (`None` is NULL).
    pub params: Vec<Option<String>>,
}

/// `name` as a quoted identifier.
fn ident(name: &str) -> Result<String, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("an empty name"));
    }
    if name.contains('\0') {
        return Err(ApiError::bad_request("a name cannot hold a NUL character"));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A dotted dataset name (`link.schema.table`), each part quoted.
fn dataset(name: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 3 {
        return Err(ApiError::bad_request(format!(
            "{name:?} is not a dataset name: use link.schema.table"
        )));
    }
    Ok(parts
        .into_iter()
        .map(ident)
        .collect::<Result<Vec<_>, _>>()?
        .join("."))
}

/// The items of `in.(a,b,"c,d")`: comma-separated, double quotes around
/// an item that holds commas, parentheses or quotes (`\"` inside).
fn in_list(text: &str) -> Result<Vec<String>, ApiError> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!("in. takes a list: in.(a,b), not {text:?}"))
        })?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(ApiError::bad_request("an unterminated quote in in.(...)")),
                    Some('\\') => match chars.next() {
                        Some(c) => item.push(c),
                        None => {
                            return Err(ApiError::bad_request("an unterminated quote in in.(...)"))
                        }
                    },
                    Some('"') => break,
                    Some(c) => item.push(c),
                }
            }
            match chars.next() {
                None => {
                    items.push(item);
                    break;
                }
                Some(',') => items.push(item),
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "after a quoted item in in.(...) comes a comma",
                    ))
                }
            }
        } else {
            let mut ended = true;
            for c in chars.by_ref() {
                if c == ',' {
                    ended = false;
                    break;
                }
                item.push(c);
            }
            items.push(item);
            if ended {
                break;
            }
        }
    }
    if items.len() == 1 && items[0].is_empty() && !inner.starts_with('"') {
        return Ok(Vec::new());
    }
    Ok(items)
}

/// One `column=op.value` filter as a SQL condition, its values pushed onto
/// `params`.
fn filter(column: &str, spec: &str, params: &mut Vec<Option<String>>) -> Result<String, ApiError> {
    let (negated, spec) = match spec.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let (op, value) = spec.split_once('.').ok_or_else(|| {
        ApiError::bad_request(format!(
            "filter {column}={spec:?}: write op.value, e.g. {column}=eq.5"
        ))
    })?;
    let col = ident(column)?;
    let mut bind = |v: String| {
        params.push(Some(v));
        format!("${}", params.len())
    };
    let condition = match op {
        "eq" | "neq" | "gt" | "gte" | "lt" | "lte" => {
            let sql_op = match op {
                "eq" => "=",
                "neq" => "<>",
                "gt" => ">",
                "gte" => ">=",
                "lt" => "<",
                _ => "<=",
            };
            format!("{col} {sql_op} {}", bind(value.to_string()))
        }
        "like" | "ilike" => {
            let pattern = value.replace('*', "%");
            format!("{col} {} {}", op.to_ascii_uppercase(), bind(pattern))
        }
        "in" => {
            let items = in_list(value)?;
            if items.is_empty() {
                // `x IN ()` is no row, as PostgREST answers.
                "FALSE".to_string()
            } else {
                let placeholders: Vec<String> = items.into_iter().map(&mut bind).collect();
                format!("{col} IN ({})", placeholders.join(", "))
            }
        }
        "is" => match value.to_ascii_lowercase().as_str() {
            "null" => format!("{col} IS NULL"),
            "true" => format!("{col} IS TRUE"),
            "false" => format!("{col} IS FALSE"),
            "unknown" => format!("{col} IS UNKNOWN"),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "is. takes null, true, false or unknown, not {value:?}"
                )))
            }
        },
        _ => {
            return Err(ApiError::bad_request(format!(
                "unknown operator {op:?}: use eq, neq, gt, gte, lt, lte, like, ilike, in or is"
            )))
        }
    };
    Ok(if negated {
        format!("NOT ({condition})")
    } else {
        condition
    })
}

/// `order=a.desc.nullslast,b` as an ORDER BY list.
fn order(spec: &str) -> Result<String, ApiError> {
    let mut keys = Vec::new();
    for item in spec.split(',') {
        let mut parts = item.split('.');
        let column = ident(parts.next().unwrap_or_default())?;
        let mut key = column;
        for modifier in parts {
            key.push_str(match modifier {
                "asc" => " ASC",
                "desc" => " DESC",
                "nullsfirst" => " NULLS FIRST",
                "nullslast" => " NULLS LAST",
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "order: {modifier:?} is not asc, desc, nullsfirst or nullslast"
                    )))
                }
            });
        }
        keys.push(key);
    }
    Ok(keys.join(", "))
}

fn count(name: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("{name} takes a whole number, not {value:?}")))
}

/// Writes a dataset request as SQL (see the module's documentation).
pub fn to_sql(name: &str, query: &[(String, String)]) -> Result<DatasetQuery, ApiError> {
    let mut columns = "*".to_string();
    let mut filters = Vec::new();
    let mut ordering = None;
    let mut limit = None;
    let mut offset = None;
    let mut params = Vec::new();
    for (key, value) in query {
        match key.as_str() {
            "select" => {
                columns = value
                    .split(',')
                    .map(|c| ident(c.trim()))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(", ")
            }
            "order" => ordering = Some(order(value)?),
            "limit" => limit = Some(count("limit", value)?),
            "offset" => offset = Some(count("offset", value)?),
            "format" => {}
            column => filters.push(filter(column, value, &mut params)?),
        }
    }
    let mut sql = format!("SELECT {columns} FROM {}", dataset(name)?);
    if !filters.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&filters.join(" AND "));
    }
    if let Some(o) = ordering {
        sql.push_str(" ORDER BY ");
        sql.push_str(&o);
    }
    if let Some(l) = limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    if let Some(o) = offset {
        sql.push_str(&format!(" OFFSET {o}"));
    }
    Ok(DatasetQuery { sql, params })
}

/// `GET /v1/datasets/{name}`.
pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let format = Format::negotiate(
        pairs
            .iter()
            .find(|(k, _)| k == "format")
            .map(|(_, v)| v.as_str()),
        headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()),
    )?;
    let caller = authenticate(&engine, &headers, peer).await?;
    let request = to_sql(&name, &pairs)?;
    let mut statements = caller.session.parse(&request.sql)?;
    let statement = statements
        .pop()
        .ok_or_else(|| QueryError::new("XX000", "the dataset request made no statement"))?;
    match caller.session.prepare(statement).await? {
        Prepared::Query(query) => {
            let values = super::sql::bind(&query, &request.params)?;
            super::answer(caller, query, values, format).await
        }
        _ => Err(QueryError::new("XX000", "the dataset request made no query").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_dataset_request_is_quoted_names_and_bound_values() {
        let r = to_sql(
            "kependudukan.public.penduduk",
            &q(&[
                ("select", "nik,nama"),
                ("kecamatan", "eq.3171010"),
                ("umur", "gte.17"),
                ("nama", "like.*Budi*"),
                ("agama", "in.(Islam,\"Kristen, Protestan\")"),
                ("alamat", "not.is.null"),
                ("order", "nama.desc.nullslast,nik"),
                ("limit", "10"),
                ("offset", "20"),
                ("format", "csv"),
            ]),
        )
        .unwrap();
        assert_eq!(
            r.sql,
            "SELECT \"nik\", \"nama\" FROM \"kependudukan\".\"public\".\"penduduk\" \
             WHERE \"kecamatan\" = $1 AND \"umur\" >= $2 AND \"nama\" LIKE $3 \
             AND \"agama\" IN ($4, $5) AND NOT (\"alamat\" IS NULL) \
             ORDER BY \"nama\" DESC NULLS LAST, \"nik\" LIMIT 10 OFFSET 20"
        );
        let params: Vec<&str> = r.params.iter().map(|p| p.as_deref().unwrap()).collect();
        assert_eq!(
            params,
            ["3171010", "17", "%Budi%", "Islam", "Kristen, Protestan"]
        );
    }

    #[test]
    fn hostile_names_and_values_stay_names_and_values() {
        let r = to_sql(
            "ref.kecamatan\"; DROP TABLE x; --",
            &q(&[
                ("nama\" OR 1=1 --", "eq.'; DELETE FROM y; --"),
                ("select", "a\"b"),
            ]),
        )
        .unwrap();
        assert_eq!(
            r.sql,
            "SELECT \"a\"\"b\" FROM \"ref\".\"kecamatan\"\"; DROP TABLE x; --\" \
             WHERE \"nama\"\" OR 1=1 --\" = $1"
        );
        assert_eq!(r.params, vec![Some("'; DELETE FROM y; --".to_string())]);
        // Every generated statement parses as one SELECT.
        let parsed = datafusion::sql::parser::DFParser::parse_sql(&r.sql).unwrap();
        assert_eq!(parsed.len(), 1);
    }

    #[test]
    fn malformed_requests_are_refused() {
        for pairs in [
            vec![("x", "eq")],
            vec![("x", "between.1.2")],
            vec![("x", "in.1,2")],
            vec![("x", "in.(\"a)")],
            vec![("x", "is.maybe")],
            vec![("order", "x.sideways")],
            vec![("limit", "-1")],
            vec![("limit", "1; DROP")],
            vec![("select", "a,,b")],
        ] {
            assert!(to_sql("t", &q(&pairs)).is_err(), "{pairs:?}");
        }
        assert!(to_sql("a.b.c.d", &[]).is_err());
        assert!(to_sql("a..b", &[]).is_err());
        assert_eq!(
            to_sql("t", &q(&[("x", "in.()")])).unwrap().sql,
            "SELECT * FROM \"t\" WHERE FALSE"
        );
    }
}
