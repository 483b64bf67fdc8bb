//! Web pages for people who do not write SQL: `GET /catalog`, the metadata
//! catalog of the datasets the visitor may read (the same rows as
//! `GET /v1/catalog`), and `GET /status`, the links and pulls the visitor
//! may see with their health. Plain server-written HTML (no scripts), every
//! value escaped; the visitor logs in like any caller of the HTTP door
//! (the browser asks for the password on the `401`).

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Html;

use super::auth::authenticate;
use super::catalog::{datasets, system_rows, Dataset, Producer};
use super::error::ApiError;
use crate::engine::Engine;
use crate::html::{escape, STYLE};

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"id\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        title = escape(title),
    ))
}

fn or_dash(v: &Option<String>) -> String {
    v.as_deref().map(escape).unwrap_or_else(|| "–".into())
}

fn dataset_html(h: &mut String, d: &Dataset) {
    let producer = match &d.producer {
        Producer::Link {
            link,
            description,
            status,
        } => format!(
            "{} <span class=\"{}\">({})</span>{}",
            escape(link),
            if status == "up" { "up" } else { "down" },
            escape(status),
            description
                .as_deref()
                .map(|t| format!(" — {}", escape(t)))
                .unwrap_or_default()
        ),
        Producer::Custodian { custodian } => format!("Walidata ({})", escape(custodian)),
    };
    let _ = write!(
        h,
        "<section class=\"dataset\" id=\"{name}\"><h2><code>{name}</code></h2>\
         <p>{description}</p><table>\
         <tr><th>Produsen (producer)</th><td>{producer}</td></tr>\
         <tr><th>Jenis (kind)</th><td>{kind}</td></tr>\
         <tr><th>Klasifikasi (labels)</th><td>{labels}</td></tr>\
         <tr><th>Kebijakan (policy)</th><td>{policy}</td></tr>\
         <tr><th>Kunci primer (primary key)</th><td>{pk}</td></tr>\
         <tr><th>Perkiraan baris (row estimate)</th><td class=\"n\">{rows}</td></tr>\
         <tr><th>Terakhir dibaca (fresh at)</th><td>{fresh}</td></tr>\
         <tr><th>Data referensi (reference keys)</th><td>{refs}</td></tr>\
         <tr><th>API</th><td><a href=\"{url}\"><code>{url}</code></a></td></tr></table>\
         <details><summary>{n} kolom (columns)</summary><table>\
         <tr><th>kolom</th><th>tipe</th><th>klasifikasi</th><th>mask</th><th>keterangan</th></tr>",
        name = escape(&d.name),
        description = or_dash(&d.description),
        kind = escape(&d.kind),
        labels = or_dash(&d.labels),
        policy = or_dash(&d.policy),
        pk = or_dash(&d.primary_key),
        rows = d
            .row_estimate
            .map(|n| n.to_string())
            .unwrap_or_else(|| "–".into()),
        fresh = or_dash(&d.fresh_at),
        refs = or_dash(&d.reference_keys),
        url = escape(&d.url),
        n = d.columns.len(),
    );
    for c in &d.columns {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.name),
            escape(&c.data_type),
            or_dash(&c.labels),
            or_dash(&c.mask),
            or_dash(&c.description)
        );
    }
    h.push_str("</table></details></section>");
}

/// `GET /catalog`.
pub async fn catalog(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    let caller = authenticate(&engine, &headers, peer).await?;
    let all = datasets(&caller.session, &engine.config.server.database).await?;
    let mut h = format!(
        "<h1>Katalog data (data catalog)</h1><p>Dataset yang boleh dibaca oleh <b id=\"user\">{}</b>: \
         <b id=\"count\">{}</b> · <a href=\"/status\">status</a></p><ul>",
        escape(caller.session.user()),
        all.len()
    );
    for d in &all {
        let _ = write!(
            h,
            "<li><a href=\"#{0}\"><code>{0}</code></a></li>",
            escape(&d.name)
        );
    }
    h.push_str("</ul>");
    for d in &all {
        dataset_html(&mut h, d);
    }
    Ok(page("Katalog data", &h))
}

/// A table of a `system.*` query's rows, under `headers`.
fn rows_table(h: &mut String, id: &str, headers: &[&str], rows: &[Vec<Option<String>>]) {
    let _ = write!(h, "<table id=\"{id}\"><tr>");
    for name in headers {
        let _ = write!(h, "<th>{}</th>", escape(name));
    }
    h.push_str("</tr>");
    for r in rows {
        h.push_str("<tr>");
        for (i, v) in r.iter().enumerate() {
            let class = match (i, v.as_deref()) {
                (1, Some("up")) => " class=\"up\"",
                (1, Some("down" | "degraded" | "failed")) => " class=\"down\"",
                _ => "",
            };
            let _ = write!(h, "<td{class}>{}</td>", or_dash(v));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

/// `GET /status`.
pub async fn status(
    State(engine): State<Arc<Engine>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    let caller = authenticate(&engine, &headers, peer).await?;
    let session = &caller.session;
    let links = system_rows(
        session,
        "SELECT name, status, kind, tables, checked_at, error, description FROM system.links \
         ORDER BY name",
    )
    .await?;
    let pulls = system_rows(
        session,
        "SELECT name, status, schedule, last_end, snapshot_rows, snapshot_age_s, last_error \
         FROM system.pulls ORDER BY name",
    )
    .await?;
    let mut h = String::from(
        "<h1>Status tautan (links and pulls)</h1><p><a href=\"/catalog\">katalog</a></p>\
         <h2>Db link</h2>",
    );
    rows_table(
        &mut h,
        "links",
        &[
            "link",
            "status",
            "jenis",
            "tabel",
            "diperiksa",
            "galat",
            "keterangan",
        ],
        &links,
    );
    h.push_str("<h2>Tarikan terjadwal (pulls)</h2>");
    rows_table(
        &mut h,
        "pulls",
        &[
            "pull", "status", "jadwal", "selesai", "baris", "umur (s)", "galat",
        ],
        &pulls,
    );
    Ok(page("Status tautan", &h))
}
