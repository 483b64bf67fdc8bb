//! Pages: the first request of a scan, the next one, and a page's body
//! decoded into Arrow.

use std::io::Cursor;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::Value;
use tautan_connector::{LinkError, LinkErrorKind};

use crate::endpoint::{Endpoint, Format, Pagination};
use crate::fetch::HttpLink;

/// `url` with the query parameter `name` set to `value` (replacing it if
/// it is there), encoded, never spliced.
pub fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    {
        let mut q = out.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(name, value);
    }
    out
}

/// The first page's address: the endpoint's path, the key filters as
/// query parameters, and the pagination's first parameters.
pub fn first_url(
    link: &HttpLink,
    endpoint: &Endpoint,
    keys: &[(String, String)],
) -> Result<Url, LinkError> {
    let mut url = link.resolve(link.base(), &endpoint.path)?;
    for (k, v) in keys {
        url = with_param(&url, k, v);
    }
    Ok(match &endpoint.pagination {
        Pagination::Offset {
            param,
            limit_param,
            page_size,
        } => with_param(
            &with_param(&url, param, "0"),
            limit_param,
            &page_size.to_string(),
        ),
        Pagination::Page { param, start, .. } => with_param(&url, param, &start.to_string()),
        _ => url,
    })
}

/// One decoded page.
#[derive(Debug)]
pub struct Page {
    /// Its rows.
    pub batch: RecordBatch,
    /// Its body as JSON (for a next link or cursor in it).
    pub json: Option<Value>,
}

/// The records of a page's `body`, in `schema`'s columns: an error, never
/// rows, for a body that is not the whole, expected document.
pub fn decode(
    link: &HttpLink,
    endpoint: &Endpoint,
    schema: &SchemaRef,
    body: &[u8],
) -> Result<Page, LinkError> {
    let bad = |m: String| link.error(LinkErrorKind::Conversion, format!("{}: {m}", endpoint.name));
    match endpoint.format {
        Format::Csv => {
            let reader = datafusion::arrow::csv::ReaderBuilder::new(schema.clone())
                .with_header(true)
                .build(Cursor::new(body))
                .map_err(|e| bad(format!("not CSV: {e}")))?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("CSV does not match the declared columns: {e}")))?;
            let batch = datafusion::arrow::compute::concat_batches(schema, &batches)
                .map_err(|e| bad(e.to_string()))?;
            Ok(Page { batch, json: None })
        }
        Format::Json => {
            let json: Value =
                serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
            let records = records(&json, &endpoint.records).map_err(bad)?;
            let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
                .with_coerce_primitive(true)
                .build_decoder()
                .map_err(|e| bad(e.to_string()))?;
            decoder
                .serialize(records)
                .map_err(|e| bad(format!("records do not match the declared columns: {e}")))?;
            let batch = decoder
                .flush()
                .map_err(|e| bad(format!("records do not match the declared columns: {e}")))?
                .unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
            Ok(Page {
                batch,
                json: Some(json),
            })
        }
    }
}

/// The array of objects at `pointer` in `json`.
pub fn records<'a>(json: &'a Value, pointer: &str) -> Result<&'a [Value], String> {
    let at = json
        .pointer(pointer)
        .ok_or_else(|| format!("no records at \"{pointer}\""))?;
    let array = at
        .as_array()
        .ok_or_else(|| format!("the records at \"{pointer}\" are not an array"))?;
    if let Some(i) = array.iter().position(|r| !r.is_object()) {
        return Err(format!("record {i} at \"{pointer}\" is not an object"));
    }
    Ok(array)
}

/// The next page's address after `page` (read from `url`, answered with
/// `headers`), or `None` when the answer is complete.
pub fn next_url(
    link: &HttpLink,
    endpoint: &Endpoint,
    url: &Url,
    headers: &HeaderMap,
    page: &Page,
) -> Result<Option<Url>, LinkError> {
    let rows = page.batch.num_rows();
    let token = |pointer: &str| -> Result<Option<String>, LinkError> {
        match page.json.as_ref().and_then(|j| j.pointer(pointer)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(link.error(
                LinkErrorKind::Conversion,
                format!(
                    "{}: the value at \"{pointer}\" is not a link or token",
                    endpoint.name
                ),
            )),
        }
    };
    let next = match &endpoint.pagination {
        Pagination::None => None,
        Pagination::NextLink { pointer } => match token(pointer)? {
            Some(next) => Some(link.resolve(url, &next)?),
            None => None,
        },
        Pagination::LinkHeader => match link_next(headers) {
            Some(next) => Some(link.resolve(url, &next)?),
            None => None,
        },
        Pagination::Cursor { pointer, param } => {
            token(pointer)?.map(|cursor| with_param(url, param, &cursor))
        }
        Pagination::Offset {
            param, page_size, ..
        } => {
            if rows < *page_size {
                None
            } else {
                let at: usize = url
                    .query_pairs()
                    .find(|(k, _)| k == param)
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                Some(with_param(url, param, &(at + page_size).to_string()))
            }
        }
        Pagination::Page {
            param, page_size, ..
        } => {
            if rows == 0 || page_size.is_some_and(|size| rows < size) {
                None
            } else {
                let at: u64 = url
                    .query_pairs()
                    .find(|(k, _)| k == param)
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                Some(with_param(url, param, &(at + 1).to_string()))
            }
        }
    };
    if next.as_ref() == Some(url) {
        return Err(link.error(
            LinkErrorKind::Query,
            format!("{}: the service sent the same page again", endpoint.name),
        ));
    }
    Ok(next)
}

/// The `rel="next"` target of a `Link` header (RFC 8288), if any.
fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                let t = target.strip_prefix('<')?.strip_suffix('>')?;
                return Some(t.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_is_set_encoded_and_replaced_never_spliced() {
        let url = Url::parse("http://h/p?a=1&page=2").unwrap();
        let out = with_param(&url, "page", "3&admin=1");
        assert_eq!(out.as_str(), "http://h/p?a=1&page=3%26admin%3D1");
        assert_eq!(out.query_pairs().count(), 2);
    }

    #[test]
    fn the_link_header_names_the_next_page() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<http://h/p?page=1>; rel=\"prev\", <http://h/p?page=3>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(link_next(&h).as_deref(), Some("http://h/p?page=3"));
        assert_eq!(link_next(&HeaderMap::new()), None);
    }

    #[test]
    fn records_must_be_an_array_of_objects() {
        let v: Value = serde_json::from_str(r#"{"data":[{"a":1},2]}"#).unwrap();
        assert!(records(&v, "/data").unwrap_err().contains("record 1"));
        assert!(records(&v, "/nope").unwrap_err().contains("no records"));
        let v: Value = serde_json::from_str(r#"[{"a":1}]"#).unwrap();
        assert_eq!(records(&v, "").unwrap().len(), 1);
    }
}
