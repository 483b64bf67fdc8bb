//! The operations door: an HTTP listener (axum) for monitoring, apart from
//! the data doors. `GET /metrics` is the Prometheus/OpenMetrics text of
//! [`crate::metrics`]; `GET /healthz` says whether tautan can serve (200)
//! or not (503: the audit log refuses writes, so every statement would be
//! refused), with each link's status.
//!
//! Neither needs a login and neither shows data: names of links, users and
//! pulls, counts and timings only. Keep the listener on a private address.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;

use crate::engine::Engine;

/// The operations routes over `engine`.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(engine)
}

/// Serves the operations routes on `listener` until the task is dropped.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).await
}

async fn metrics(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let text = engine.trail().metrics().render(&engine.metrics_snapshot());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

async fn healthz(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    let links: serde_json::Map<String, serde_json::Value> = engine
        .registry
        .links()
        .iter()
        .map(|(name, l)| (name.clone(), json!(l.state().status.as_str())))
        .collect();
    let audit = match engine.trail().log() {
        None => json!("off"),
        Some(log) => match log.failure() {
            None => json!("ok"),
            Some(why) => json!({ "failed": why }),
        },
    };
    let serving = engine
        .trail()
        .log()
        .is_none_or(|log| log.failure().is_none());
    let status = if serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if serving { "ok" } else { "unavailable" },
        "audit": audit,
        "links": links,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}
