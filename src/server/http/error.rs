//! Errors of the HTTP door: a JSON body with PostgreSQL's SQLSTATE, and
//! the HTTP status that fits it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::QueryError;

/// An error answered to an HTTP client:
/// `{"error": {"sqlstate": "42501", "message": "...", "hint": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    /// What went wrong, as the PostgreSQL door would say it.
    pub error: QueryError,
    status: StatusCode,
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        let status = status_of(&error.code);
        ApiError { error, status }
    }
}

impl ApiError {
    /// A client's mistake in the request itself (not its SQL): 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        QueryError::new("22023", message).into()
    }

    /// No credentials, or wrong ones: 401.
    pub fn unauthorized() -> Self {
        QueryError::new(
            "28P01",
            "authentication failed: send HTTP Basic credentials or an API token of a tautan user",
        )
        .into()
    }

    /// An `Accept` header naming no format tautan writes: 406.
    pub fn not_acceptable(accept: &str) -> Self {
        ApiError {
            error: QueryError::new(
                "0A000",
                format!(
                    "cannot answer in {accept:?}: ask for application/json, \
                     application/x-ndjson, text/csv, application/vnd.apache.arrow.stream \
                     or application/vnd.apache.parquet"
                ),
            ),
            status: StatusCode::NOT_ACCEPTABLE,
        }
    }
}

/// The HTTP status for a SQLSTATE: 401 for a failed login, 403 for what
/// the grants refuse, 404 for a relation that does not exist (for this
/// user), 408 for a cancelled statement (timeout), 429 for too many
/// connections, 503 for a link that is down or an audit log that cannot
/// be written, 400 for other errors in the statement, 500 otherwise.
pub fn status_of(sqlstate: &str) -> StatusCode {
    match sqlstate {
        "28000" | "28P01" => StatusCode::UNAUTHORIZED,
        "42501" | "25006" => StatusCode::FORBIDDEN,
        "42P01" | "3F000" | "3D000" => StatusCode::NOT_FOUND,
        "57014" => StatusCode::REQUEST_TIMEOUT,
        "53300" => StatusCode::TOO_MANY_REQUESTS,
        "58030" => StatusCode::SERVICE_UNAVAILABLE,
        s if s.starts_with("08") || s.starts_with("53") || s.starts_with("57") => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        s if s.starts_with("XX") || s.starts_with("58") => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (e, status) = (self.error, self.status);
        let mut body = json!({ "sqlstate": e.code, "message": e.message });
        if let (Some(hint), Some(map)) = (&e.hint, body.as_object_mut()) {
            map.insert("hint".into(), json!(hint));
        }
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "error": body }).to_string(),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tautan\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_sqlstate_class() {
        assert_eq!(status_of("42501"), StatusCode::FORBIDDEN);
        assert_eq!(status_of("42P01"), StatusCode::NOT_FOUND);
        assert_eq!(status_of("42601"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("42703"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("22P02"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("28P01"), StatusCode::UNAUTHORIZED);
        assert_eq!(status_of("57014"), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(status_of("08006"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of("58030"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of("53300"), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status_of("XX000"), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
