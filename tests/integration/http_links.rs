//! `kind = "http"` links against a real local web service: a small
//! fixture app serving agency-like JSON and CSV with every kind of
//! pagination, failures (500, 429, 503, 404), malformed bodies, a secret
//! header, and hostile next links.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::common::*;

/// What the fixture app saw.
#[derive(Default)]
struct Seen {
    /// Requests per path.
    hits: Mutex<HashMap<String, usize>>,
    /// Query strings of `/v1/keyed`.
    keyed: Mutex<Vec<String>>,
    /// When each `/v1/paced` request arrived.
    paced: Mutex<Vec<Instant>>,
    /// Requests to the foreign origin.
    foreign: AtomicUsize,
}

impl Seen {
    fn hit(&self, path: &str) -> usize {
        let mut hits = self.hits.lock().unwrap();
        let n = hits.entry(path.to_string()).or_default();
        *n += 1;
        *n
    }
}

/// Ten residents, `kode` 1..=10 and `nilai` = kode * 1.5.
fn record(i: usize) -> serde_json::Value {
    serde_json::json!({"kode": format!("K{i:02}"), "kecamatan": i % 3, "nilai": i as f64 * 1.5, "nama": format!("Warga {i} ✓")})
}

fn json(v: serde_json::Value) -> Response {
    axum::Json(v).into_response()
}

fn param<T: std::str::FromStr>(q: &HashMap<String, String>, k: &str, default: T) -> T {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Starts the fixture app; its base URL.
async fn agency_api(seen: Arc<Seen>, foreign: &str) -> String {
    let foreign = foreign.to_string();
    let app = Router::new()
        .route(
            "/v1/page",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let page: usize = param(&q, "page", 1);
                let rows: Vec<_> = (1..=10).filter(|i| (i - 1) / 4 + 1 == page).map(record).collect();
                json(serde_json::json!({"data": rows}))
            }),
        )
        .route(
            "/v1/next",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let after: usize = param(&q, "after", 0);
                let rows: Vec<_> = (after + 1..=(after + 3).min(10)).map(record).collect();
                let next = (after + 3 < 10).then(|| format!("/v1/next?after={}", after + 3));
                json(serde_json::json!({"data": rows, "links": {"next": next}}))
            }),
        )
        .route(
            "/v1/link",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let p: usize = param(&q, "p", 0);
                let rows: Vec<_> = (p * 5 + 1..=p * 5 + 5).map(record).collect();
                let mut r = json(serde_json::json!(rows));
                if p == 0 {
                    r.headers_mut().insert(
                        "link",
                        "</v1/link?p=0>; rel=\"prev\", </v1/link?p=1>; rel=\"next\"".parse().unwrap(),
                    );
                }
                r
            }),
        )
        .route(
            "/v1/cursor",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let at: usize = q.get("c").and_then(|c| c.strip_prefix("tok-")).and_then(|c| c.parse().ok()).unwrap_or(0);
                let rows: Vec<_> = (at + 1..=(at + 6).min(10)).map(record).collect();
                let next = (at + 6 < 10).then(|| format!("tok-{}", at + 6));
                json(serde_json::json!({"result": {"items": rows}, "cursor": next}))
            }),
        )
        .route(
            "/v1/offset",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let offset: usize = param(&q, "offset", 0);
                let limit: usize = param(&q, "limit", 100);
                let rows: Vec<_> = (1..=10).skip(offset).take(limit).map(record).collect();
                json(serde_json::json!({"data": rows}))
            }),
        )
        .route(
            "/v1/csv",
            get(|| async {
                let mut body = String::from("kode,kecamatan,nilai,nama\n");
                for i in 1..=10 {
                    body += &format!("K{i:02},{},{},\"Warga {i}, ✓\"\n", i % 3, i as f64 * 1.5);
                }
                ([("content-type", "text/csv")], body).into_response()
            }),
        )
        .route(
            "/v1/flaky",
            get(|State(seen): State<Arc<Seen>>| async move {
                match seen.hit("flaky") {
                    1 => (StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response(),
                    2 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response(),
                    _ => json(serde_json::json!({"data": (1..=10).map(record).collect::<Vec<_>>()})),
                }
            }),
        )
        .route(
            "/v1/down",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.hit("down");
                (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response()
            }),
        )
        .route(
            "/v1/slow",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.hit("slow");
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                json(serde_json::json!({"data": [record(1)]}))
            }),
        )
        .route("/v1/missing", get(|| async { (StatusCode::NOT_FOUND, "<html>not found</html>").into_response() }))
        .route(
            "/v1/broken",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let page: usize = param(&q, "page", 1);
                if page == 1 {
                    json(serde_json::json!({"data": (1..=4).map(record).collect::<Vec<_>>()}))
                } else {
                    ([("content-type", "application/json")], "{\"data\": [{\"kode\": \"K0").into_response()
                }
            }),
        )
        .route("/v1/html", get(|| async { ([("content-type", "text/html")], "<html><body>Error 500</body></html>").into_response() }))
        .route(
            "/v1/typed",
            get(|| async { json(serde_json::json!({"data": [{"kode": "K01", "kecamatan": "satu", "nilai": 1.5, "nama": "x"}]})) }),
        )
        .route("/v1/notarray", get(|| async { json(serde_json::json!({"data": {"kode": "K01"}})) }))
        .route(
            "/v1/forever",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let page: usize = param(&q, "page", 1);
                json(serde_json::json!({"data": [record(page % 10 + 1)]}))
            }),
        )
        .route(
            "/v1/evil",
            get(move || {
                let foreign = foreign.clone();
                async move {
                    json(serde_json::json!({"data": [record(1)], "next": format!("{foreign}/steal")}))
                }
            }),
        )
        .route(
            "/v1/keyed",
            get(|State(seen): State<Arc<Seen>>, uri: axum::http::Uri, Query(q): Query<HashMap<String, String>>| async move {
                seen.keyed.lock().unwrap().push(uri.query().unwrap_or_default().to_string());
                let rows: Vec<_> = (1..=10)
                    .map(record)
                    .filter(|r| q.get("kode").is_none_or(|k| r["kode"] == *k))
                    .collect();
                json(serde_json::json!({"data": rows}))
            }),
        )
        .route(
            "/v1/secret",
            get(|headers: HeaderMap| async move {
                if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("rahasia-123") {
                    return (StatusCode::UNAUTHORIZED, "no key").into_response();
                }
                json(serde_json::json!({"data": [record(1)]}))
            }),
        )
        .route(
            "/v1/paced",
            get(|State(seen): State<Arc<Seen>>, Query(q): Query<HashMap<String, String>>| async move {
                seen.paced.lock().unwrap().push(Instant::now());
                let page: usize = param(&q, "page", 1);
                let rows: Vec<_> = (1..=10).filter(|i| (i - 1) / 2 + 1 == page).map(record).collect();
                json(serde_json::json!({"data": rows}))
            }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A second origin, counting what reaches it.
async fn foreign_origin(seen: Arc<Seen>) -> String {
    let app = Router::new()
        .route(
            "/steal",
            get(|State(seen): State<Arc<Seen>>| async move {
                seen.foreign.fetch_add(1, Ordering::SeqCst);
                json(serde_json::json!({"data": [record(9)]}))
            }),
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

const COLUMNS: &str = r#"columns = ["kode text", "kecamatan int4", "nilai float8", "nama text"]"#;

fn table(name: &str, path: &str, rest: &str) -> String {
    format!("\n[[links.agensi.tables]]\nname = \"{name}\"\npath = \"{path}\"\n{COLUMNS}\n{rest}\n")
}

/// The link's config: every endpoint of the fixture app.
fn link_config(base: &str) -> String {
    let mut text = format!(
        "[links.agensi]\nkind = \"http\"\nbase_url = \"{base}\"\nretries = 2\nmax_pages = 20\nrequests_per_second = 0\ntimeout_ms = 1000\n\
         headers_env = {{ \"X-Api-Key\" = \"TAUTAN_TEST_AGENSI_KEY\" }}\n"
    );
    text += &table(
        "halaman",
        "/v1/page",
        "records = \"/data\"\npagination = { kind = \"page\" }",
    );
    text += &table(
        "tautan_berikut",
        "/v1/next",
        "records = \"/data\"\npagination = { kind = \"next_link\", pointer = \"/links/next\" }",
    );
    text += &table(
        "header_link",
        "/v1/link",
        "pagination = { kind = \"link_header\" }",
    );
    text += &table("kursor", "/v1/cursor", "records = \"/result/items\"\npagination = { kind = \"cursor\", pointer = \"/cursor\", param = \"c\" }");
    text += &table(
        "ofset",
        "/v1/offset",
        "records = \"/data\"\npagination = { kind = \"offset\", page_size = 3 }",
    );
    text += &table("csv", "/v1/csv", "format = \"csv\"");
    text += &table("goyah", "/v1/flaky", "records = \"/data\"");
    text += &table("mati", "/v1/down", "records = \"/data\"");
    text += &table("hilang", "/v1/missing", "records = \"/data\"");
    text += &table("lamban", "/v1/slow", "records = \"/data\"");
    text += &table(
        "rusak",
        "/v1/broken",
        "records = \"/data\"\npagination = { kind = \"page\", page_size = 4 }",
    );
    text += &table("html", "/v1/html", "records = \"/data\"");
    text += &table("salah_tipe", "/v1/typed", "records = \"/data\"");
    text += &table("bukan_larik", "/v1/notarray", "records = \"/data\"");
    text += &table(
        "tanpa_akhir",
        "/v1/forever",
        "records = \"/data\"\npagination = { kind = \"page\" }",
    );
    text += &table(
        "jahat",
        "/v1/evil",
        "records = \"/data\"\npagination = { kind = \"next_link\", pointer = \"/next\" }",
    );
    text += &table(
        "berkunci",
        "/v1/keyed",
        "records = \"/data\"\nkeys = [\"kode\", \"kecamatan\"]",
    );
    text += &table("rahasia", "/v1/secret", "records = \"/data\"");
    // Inferred: no columns declared.
    text += "\n[[links.agensi.tables]]\nname = \"disimpulkan\"\npath = \"/v1/page\"\nrecords = \"/data\"\npagination = { kind = \"page\" }\n";
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pagination_kind_reads_the_whole_answer_exactly_and_failures_never_become_rows() {
    std::env::set_var("TAUTAN_TEST_AGENSI_KEY", "rahasia-123");
    let seen = Arc::new(Seen::default());
    let foreign = foreign_origin(seen.clone()).await;
    let base = agency_api(seen.clone(), &foreign).await;
    let server = start_with(&link_config(&base)).await;
    let client = server.connect(WALIDATA).await;

    // Every pagination kind and CSV: all ten records, exact values.
    let expected: Vec<Vec<Option<String>>> = (1..=10)
        .map(|i| {
            vec![
                Some(format!("K{i:02}")),
                Some((i % 3).to_string()),
                Some((i as f64 * 1.5).to_string()),
            ]
        })
        .collect();
    for t in [
        "halaman",
        "tautan_berikut",
        "header_link",
        "kursor",
        "ofset",
        "csv",
        "goyah",
        "disimpulkan",
    ] {
        let got = text_rows(
            &client,
            &format!("SELECT kode, kecamatan, nilai FROM agensi.public.{t} ORDER BY kode"),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(got, expected, "{t}");
    }
    // 500 then 429 (Retry-After honoured), then the answer.
    assert_eq!(seen.hits.lock().unwrap().get("flaky"), Some(&3));
    let names = text_rows(
        &client,
        "SELECT nama FROM agensi.public.csv WHERE kode = 'K03'",
    )
    .await
    .unwrap();
    assert_eq!(names, vec![vec![Some("Warga 3, ✓".to_string())]]);

    // Failures are errors, never rows (and never a cut answer).
    for (t, code) in [
        ("mati", "08001"),
        ("lamban", "08001"),
        ("hilang", "XX000"),
        ("rusak", "22000"),
        ("html", "22000"),
        ("salah_tipe", "22000"),
        ("bukan_larik", "22000"),
        ("tanpa_akhir", "54000"),
        ("jahat", "XX000"),
    ] {
        let got = text_rows(&client, &format!("SELECT count(*) FROM agensi.public.{t}")).await;
        let err = got.expect_err(t);
        assert!(err.starts_with(code), "{t}: {err}");
        assert!(
            err.contains("agensi"),
            "{t}: the error names the link: {err}"
        );
    }
    // 503 is retried (1 + retries = 3 tries), then an error; so is a page
    // slower than timeout_ms.
    assert_eq!(seen.hits.lock().unwrap().get("down"), Some(&3));
    assert_eq!(seen.hits.lock().unwrap().get("slow"), Some(&3));
    // The foreign origin never got a request carrying the link's headers.
    assert_eq!(seen.foreign.load(Ordering::SeqCst), 0);

    // The secret header is sent; it is in no error, EXPLAIN or system table.
    let got = text_rows(&client, "SELECT kode FROM agensi.public.rahasia")
        .await
        .unwrap();
    assert_eq!(got, vec![vec![Some("K01".to_string())]]);
    for sql in [
        "EXPLAIN SELECT * FROM agensi.public.rahasia",
        "SELECT * FROM system.links",
        "SELECT * FROM system.datasets",
    ] {
        let text = format!("{:?}", text_rows(&client, sql).await);
        assert!(!text.contains("rahasia-123"), "{sql}: {text}");
    }

    // Key equalities go to the service as query parameters, encoded,
    // never spliced; everything else is filtered in tautan.
    for (value, expect) in [("K04", 1usize), ("a&kode=K05", 0), ("K07' OR '1'='1", 0)] {
        let sql = format!(
            "SELECT kode FROM agensi.public.berkunci WHERE kode = '{}' AND nilai > 0",
            value.replace('\'', "''")
        );
        let got = text_rows(&client, &sql).await.unwrap();
        assert_eq!(got.len(), expect, "{value}");
        let sent = seen.keyed.lock().unwrap().last().cloned().unwrap();
        let pairs: Vec<(String, String)> = url_pairs(&sent);
        assert_eq!(
            pairs,
            vec![("kode".to_string(), value.to_string())],
            "{sent}"
        );
    }
    let got = text_rows(
        &client,
        "SELECT count(*) FROM agensi.public.berkunci WHERE kecamatan = 1 AND kode LIKE 'K%'",
    )
    .await
    .unwrap();
    assert_eq!(got, vec![vec![Some("4".to_string())]]);
    let sent = seen.keyed.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        url_pairs(&sent),
        vec![("kecamatan".to_string(), "1".to_string())]
    );
    // A join against the custodian's reference data.
    let got = text_rows(
        &client,
        "SELECT count(*) FROM agensi.public.halaman h JOIN agensi.public.csv c ON h.kode = c.kode WHERE h.nilai = c.nilai",
    )
    .await
    .unwrap();
    assert_eq!(got, vec![vec![Some("10".to_string())]]);
}

/// The query string's pairs, percent-decoded.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Requests to one link are spaced by its rate limit, and a link whose
/// service is unreachable is down without stopping the federation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_to_the_rate_limit_and_an_unreachable_service_is_a_down_link() {
    let seen = Arc::new(Seen::default());
    let base = agency_api(seen.clone(), "http://127.0.0.1:1").await;
    let config = format!(
        "[links.lambat]\nkind = \"http\"\nbase_url = \"{base}\"\nrequests_per_second = 10\n{}\n\
         [links.tiada]\nkind = \"http\"\nbase_url = \"http://127.0.0.1:1\"\ntimeout_ms = 500\nretries = 0\n\
         [[links.tiada.tables]]\nname = \"x\"\npath = \"/x\"\nrecords = \"/data\"\n",
        table("berjeda", "/v1/paced", "records = \"/data\"\npagination = { kind = \"page\" }").replace("agensi", "lambat"),
    );
    let server = start_with(&config).await;
    let client = server.connect(WALIDATA).await;
    // (Loading the link read its first page once.)
    seen.paced.lock().unwrap().clear();
    let got = text_rows(&client, "SELECT count(*) FROM lambat.public.berjeda")
        .await
        .unwrap();
    assert_eq!(got, vec![vec![Some("10".to_string())]]);
    let at = seen.paced.lock().unwrap().clone();
    assert_eq!(at.len(), 6, "five pages of two and an empty one");
    for pair in at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap.as_millis() >= 90,
            "requests {gap:?} apart at 10 per second"
        );
    }
    let down = text_rows(
        &client,
        "SELECT status FROM system.links WHERE name = 'tiada'",
    )
    .await
    .unwrap();
    assert_eq!(down, vec![vec![Some("down".to_string())]]);
    let err = text_rows(&client, "SELECT * FROM tiada.public.x")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("08001") || err.starts_with("42P01"),
        "{err}"
    );
    // The rest of the federation still answers.
    let ok = text_rows(&client, "SELECT count(*) FROM ref.kecamatan")
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
}

/// The shipped config's web-service link and its pull, against the
/// shipped stand-in service (`scripts/agency-api.py`): the pull joins the
/// service's pages to the reference data and serves them as `mat.*` to
/// its readers; a key filter reaches the service as a query parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_web_service_link_is_read_through_its_pull() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut service = std::process::Command::new("python3")
        .arg(repo().join("scripts/agency-api.py"))
        .arg(port.to_string())
        .spawn()
        .expect("python3 scripts/agency-api.py");
    let base = format!("http://127.0.0.1:{port}");
    let up = async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    };
    assert!(up.await, "the stand-in service listens");
    let dir = temp_dir("http-pull");
    let text = pull_config(&dir, 2, "")
        .replace(
            "base_url = \"http://127.0.0.1:6490\"",
            &format!("base_url = \"{base}\""),
        )
        .replace("requests_per_second = 5 ", "requests_per_second = 0 ");
    let server = start_config(&text).await;
    let report =
        tautan::pulls::run::run_pull(&server.engine, "harga_pangan", &tautan::export::NoProgress)
            .await
            .expect("the pull runs");
    assert_eq!(report.fetched, 384);
    let dinkes = server.connect(DINKES).await;
    let got = text_rows(
        &dinkes,
        "SELECT count(*), count(DISTINCT kecamatan) FROM mat.harga_pangan WHERE tahun = 2026",
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        vec![vec![Some("192".to_string()), Some("8".to_string())]]
    );
    // The link itself is the custodian's (dinkes has no grant on it).
    let e = text_rows(&dinkes, "SELECT * FROM bps.public.harga")
        .await
        .unwrap_err();
    assert!(e.starts_with("42P01"), "{e}");
    let walidata = server.connect(WALIDATA).await;
    let got = text_rows(
        &walidata,
        "SELECT count(*) FROM bps.public.harga WHERE tahun = 2025 AND bulan = 12",
    )
    .await
    .unwrap();
    assert_eq!(got, vec![vec![Some("16".to_string())]]);
    let _ = service.kill();
    let _ = service.wait();
}
