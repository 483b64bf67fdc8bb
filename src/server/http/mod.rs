//! The HTTP door (the web service method): data users send SQL, or ask for
//! a dataset with PostgREST-style parameters, and get the answer streamed in
//! the format they ask for — under the same grants, masks, row filters and
//! audit log as the PostgreSQL door, because both run through the same
//! [`Session`].
//!
//! - `POST /v1/sql` ([`sql`]): the SQL as the body, or JSON
//!   `{"sql": "...", "params": [...]}` with `$1, $2, ...` bound, never
//!   spliced;
//! - `GET /v1/datasets/{catalog.schema.table}` ([`datasets`]): `select=`,
//!   `col=op.value` filters from a fixed list of operators, `order=`,
//!   `limit=`, `offset=`, written as SQL with bound values;
//! - answers in JSON, NDJSON, CSV, Arrow IPC or Parquet ([`format`]);
//! - `GET /v1/catalog` ([`catalog`]): the metadata catalog of the datasets
//!   the caller may read (producer, labels, keys, row estimate, freshness,
//!   reference keys, columns); `GET /catalog` and `GET /status`
//!   ([`pages`]): the same catalog, and the links and pulls, as web pages;
//! - `GET /openapi.json` ([`openapi`]): the datasets the caller may read;
//! - errors as JSON with PostgreSQL's SQLSTATE and a fitting status
//!   ([`error`]); logins by HTTP Basic or an API token ([`auth`]).
//!
//! The first batch is computed before the status line is sent, so a query
//! that fails at its start (a link down, a denied column, a bad cast)
//! answers with its error and status. A failure later cuts the body short
//! (the client sees an incomplete transfer, never a truncated answer passed
//! off as whole). A client that disconnects drops the body, which drops the
//! statement's stream and cancels what it started at the sources.

pub mod auth;
pub mod catalog;
pub mod datasets;
pub mod error;
pub mod format;
pub mod openapi;
pub mod pages;
pub mod sql;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use tokio::net::TcpListener;

use self::auth::Caller;
use self::error::ApiError;
use self::format::{Encoder, Format};
use crate::engine::{Engine, Query};
use crate::error::QueryError;

/// The HTTP door's routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/v1/sql", post(sql::handle))
        .route("/v1/datasets/{name}", get(datasets::handle))
        .route("/v1/catalog", get(catalog::handle))
        .route("/openapi.json", get(openapi::handle))
        .route("/catalog", get(pages::catalog))
        .route("/status", get(pages::status))
        .with_state(engine)
}

/// Serves the HTTP door on `listener` until the task is dropped: HTTPS
/// when `[server] tls_cert` and `tls_key` are set (the PostgreSQL
/// endpoint's certificate), plain HTTP otherwise.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let tls = crate::server::tls::from_config(&engine.config).map_err(std::io::Error::other)?;
    let app = router(engine).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(acceptor) => {
            // (`tap_io` lets axum's ConnectInfo read the peer's address.)
            let listener = tls::TlsListener::new(listener, acceptor)?.tap_io(|_| {});
            axum::serve(listener, app).await
        }
        None => axum::serve(listener, app).await,
    }
}

/// What streams the answer: the caller's session and slots are held until
/// the last byte is sent or the client goes away.
struct Streaming {
    stream: SendableRecordBatchStream,
    encoder: Encoder,
    _caller: Caller,
}

fn cut_short(e: QueryError) -> std::io::Error {
    tracing::warn!(sqlstate = %e.code, error = %e.message, "HTTP answer cut short");
    std::io::Error::other(format!("{}: {}", e.code, e.message))
}

/// Runs `query` for `caller` and answers it in `format`, streamed.
pub async fn answer(
    caller: Caller,
    query: Query,
    params: Option<ParamValues>,
    format: Format,
) -> Result<Response, ApiError> {
    let schema =
        crate::export::client_schema(query.plan.schema().inner(), format == Format::Parquet)?;
    let mut stream = caller.session.execute(query, params).await?;
    let mut encoder = Encoder::new(format, schema)?;
    let mut head = vec![encoder.start()];
    match stream.next().await {
        Some(Ok(batch)) => head.push(encoder.write(&batch)?),
        Some(Err(e)) => return Err(QueryError::from(e).into()),
        None => {}
    }
    let state = Streaming {
        stream,
        encoder,
        _caller: caller,
    };
    let rest = futures::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        match st.stream.next().await {
            Some(Ok(batch)) => match st.encoder.write(&batch) {
                Ok(bytes) => Some((Ok(bytes), Some(st))),
                Err(e) => Some((Err(cut_short(e)), None)),
            },
            Some(Err(e)) => Some((Err(cut_short(QueryError::from(e))), None)),
            None => Some((st.encoder.finish().map_err(cut_short), None)),
        }
    });
    let body = futures::stream::iter(head.into_iter().map(Ok))
        .chain(rest)
        .filter(|chunk| futures::future::ready(chunk.as_ref().map_or(true, |b| !b.is_empty())));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(body),
    )
        .into_response())
}
