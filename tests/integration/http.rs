//! The HTTP door (`POST /v1/sql`, `GET /v1/datasets/...`), driven by curl:
//! the same answer as the engine gives the PostgreSQL door, in every format,
//! under the same grants, masks and row filters; values bound, never
//! spliced; errors with PostgreSQL's SQLSTATE and a fitting status.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;
use tautan::engine::{Engine, Outcome};

use crate::common::{self, DINKES, WALIDATA};

const DINSOS: (&str, &str) = ("dinsos", "dinsos-demo");

/// A reply as curl saw it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The SQLSTATE of an error reply.
    fn sqlstate(&self) -> String {
        self.json()["error"]["sqlstate"]
            .as_str()
            .unwrap_or_else(|| panic!("no sqlstate: {}", self.text()))
            .to_string()
    }
}

/// Runs curl with `args` against the door on `port` at `path`.
pub(crate) async fn curl(port: u16, path: &str, args: &[&str]) -> Reply {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = common::temp_dir(&format!("http-curl-{n}"));
    let headers = dir.join("headers");
    let body = dir.join("body");
    let mut command = std::process::Command::new("curl");
    command
        .args(["-sS", "--globoff", "--max-time", "60", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(format!("http://127.0.0.1:{port}{path}"));
    let out = tokio::task::spawn_blocking(move || command.output().expect("curl runs"))
        .await
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {path} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&headers).expect("headers");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let body = std::fs::read(&body).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    Reply {
        status,
        content_type,
        body,
    }
}

fn login((user, password): (&str, &str)) -> String {
    format!("{user}:{password}")
}

/// `POST /v1/sql` of `sql` as `credentials`, answered as JSON.
async fn post_sql(port: u16, credentials: (&str, &str), sql: &str) -> Reply {
    curl(
        port,
        "/v1/sql",
        &["-u", &login(credentials), "--data-binary", sql],
    )
    .await
}

/// `POST /v1/sql` of `sql` with HTTP Basic `auth` (`user:password`),
/// asking for the answer as `accept`.
async fn post_sql_as(port: u16, auth: &str, accept: &str, sql: &str) -> Reply {
    curl(
        port,
        "/v1/sql",
        &[
            "-u",
            auth,
            "-H",
            &format!("Accept: {accept}"),
            "--data-binary",
            sql,
        ],
    )
    .await
}

/// Serves the HTTP door of `engine` on a free port.
pub(crate) async fn door(engine: Arc<Engine>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(tautan::server::http::serve(engine, listener));
    port
}

/// What the engine answers `user` for `sql` (as the PostgreSQL door runs it).
async fn engine_answer(engine: &Arc<Engine>, user: &str, sql: &str) -> Vec<RecordBatch> {
    let session = engine.session(user);
    match session.run(sql).await.expect(sql).pop() {
        Some(Outcome::Rows(_, batches)) => batches,
        other => panic!("{sql}: {other:?}"),
    }
}

/// The rows of `batches` as lines of text (one value per column), for
/// comparing answers whatever their batch boundaries and column names.
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| {
                datafusion::arrow::util::display::ArrayFormatter::try_new(
                    c.as_ref(),
                    &Default::default(),
                )
                .expect("formatter")
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

fn arrow_batches(body: &[u8]) -> Vec<RecordBatch> {
    datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body.to_vec()), None)
        .expect("an Arrow IPC stream")
        .collect::<Result<Vec<_>, _>>()
        .expect("Arrow batches")
}

fn parquet_batches(body: &[u8]) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(Bytes::from(
        body.to_vec(),
    ))
    .expect("a Parquet file")
    .build()
    .expect("reader")
    .collect::<Result<Vec<_>, _>>()
    .expect("Parquet batches")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_carries_exactly_the_answer_the_engine_gives() {
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    let cases = [
        (
            "walidata",
            WALIDATA,
            "SELECT * FROM uji_pg.\"Skema Campuran\".\"Data Penting\" ORDER BY \"NilaiBesar\"",
        ),
        (
            "walidata",
            WALIDATA,
            "SELECT id, grup, nilai, label FROM uji_pg.public.angka WHERE id <= 20000 ORDER BY id",
        ),
        (
            "walidata",
            WALIDATA,
            "SELECT p.kecamatan_kode, k.nama, count(*) AS n FROM kependudukan.public.penduduk p \
             JOIN ref.kecamatan k ON k.kode = p.kecamatan_kode GROUP BY 1, 2 ORDER BY 1",
        ),
        // Masks and row filters hold at this door too.
        (
            "analis_kota",
            ("analis_kota", "kota-demo"),
            "SELECT * FROM kependudukan.public.penduduk ORDER BY 1, 2",
        ),
        ("walidata", WALIDATA, "SELECT 1 AS a WHERE false"),
    ];
    for (user, credentials, sql) in cases {
        let expected = rows(&engine_answer(&server.engine, user, sql).await);
        let auth = login(credentials);
        let post = |accept: &'static str| {
            let auth = auth.clone();
            async move { post_sql_as(port, &auth, accept, sql).await }
        };
        let arrow = post("application/vnd.apache.arrow.stream").await;
        assert_eq!(arrow.status, 200, "{sql}: {}", arrow.text());
        assert_eq!(arrow.content_type, "application/vnd.apache.arrow.stream");
        assert_eq!(rows(&arrow_batches(&arrow.body)), expected, "Arrow: {sql}");

        let parquet = post("application/vnd.apache.parquet").await;
        assert_eq!(parquet.status, 200, "{sql}: {}", parquet.text());
        assert_eq!(
            rows(&parquet_batches(&parquet.body)),
            expected,
            "Parquet: {sql}"
        );

        let json = post("application/json").await;
        assert_eq!(json.status, 200, "{sql}: {}", json.text());
        let array = json.json();
        let objects = array.as_array().expect("a JSON array");
        assert_eq!(objects.len(), expected.len(), "JSON: {sql}");

        let ndjson = post("application/x-ndjson").await;
        assert_eq!(ndjson.status, 200);
        let lines: Vec<Value> = ndjson
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(
            &lines, objects,
            "NDJSON and JSON carry the same rows: {sql}"
        );

        let csv = post("text/csv").await;
        assert_eq!(csv.status, 200);
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.body.as_slice());
        assert_eq!(reader.records().count(), expected.len(), "CSV: {sql}");
    }

    // Values the JSON carries as written at the source: the quote, the
    // backslash, the numbers.
    let reply = post_sql(port, WALIDATA, "SELECT \"Kode Wilayah\", \"NilaiBesar\", \"quote\"\"d\" FROM uji_pg.\"Skema Campuran\".\"Data Penting\" ORDER BY \"NilaiBesar\"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let rows = reply.json();
    assert_eq!(rows[2]["Kode Wilayah"], "it's");
    assert_eq!(rows[3]["Kode Wilayah"], "a\\b");
    assert_eq!(rows[0]["NilaiBesar"], 10);
    assert_eq!(rows[3]["quote\"d"], "A");
    // numeric(12,2) as an exact JSON number.
    let reply = post_sql(
        port,
        WALIDATA,
        "SELECT nilai FROM uji_pg.public.angka WHERE id = 999",
    )
    .await;
    assert_eq!(reply.text().trim(), "[{\"nilai\":99.90}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_and_dataset_filters_are_bound_never_spliced() {
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    let auth = login(WALIDATA);
    // JSON with parameters.
    let reply = curl(
        port,
        "/v1/sql",
        &[
            "-u",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"sql": "SELECT id, label FROM uji_pg.public.angka WHERE id = $1 OR label = $2 ORDER BY id", "params": [7, "label-9"]}"#,
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!([{"id": 7, "label": "label-7"}, {"id": 9, "label": "label-9"}])
    );
    let wrong_count = curl(
        port,
        "/v1/sql",
        &[
            "-u",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"sql": "SELECT $1::int + $2::int", "params": [1]}"#,
        ],
    )
    .await;
    assert_eq!(wrong_count.status, 400, "{}", wrong_count.text());

    // A dataset request: filters, order, limit, offset.
    let reply = curl(
        port,
        "/v1/datasets/uji_pg.public.angka?select=id,label&grup=eq.7&id=lt.1000&order=id.desc&limit=3&offset=1",
        &["-u", &auth],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!([
            {"id": 807, "label": "label-807"},
            {"id": 707, "label": "label-707"},
            {"id": 607, "label": "label-607"}
        ])
    );
    let reply = curl(
        port,
        "/v1/datasets/uji_pg.public.angka?select=id&id=in.(3,5,8)&label=not.like.*5&order=id",
        &["-u", &auth, "-H", "Accept: text/csv"],
    )
    .await;
    assert_eq!(reply.text(), "id\n3\n8\n");

    // Hostile strings as filter values find exactly the rows holding them
    // (none, except the two stored ones), never an error from the source
    // nor more rows; as names they name nothing.
    let table = "/v1/datasets/uji_pg.Skema%20Campuran.Data%20Penting";
    let mut hostile: Vec<String> = crate::injection::REGRESSIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    hostile.extend(["it's".to_string(), "a\\b".to_string()]);
    for value in &hostile {
        let reply = curl(
            port,
            table,
            &[
                "-u",
                &auth,
                "-G",
                "--data-urlencode",
                // (curl encodes the part after `=` only.)
                &format!("Kode%20Wilayah=eq.{value}"),
                "--data-urlencode",
                "select=Kode Wilayah",
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{value:?}: {}", reply.text());
        let found = reply.json();
        let expected = if value == "it's" || value == "a\\b" {
            serde_json::json!([{ "Kode Wilayah": value }])
        } else {
            serde_json::json!([])
        };
        assert_eq!(found, expected, "{value:?}");
        let as_name = curl(
            port,
            table,
            &[
                "-u",
                &auth,
                "-G",
                "--data-urlencode",
                &format!("select={value}"),
            ],
        )
        .await;
        assert_eq!(as_name.status, 400, "{value:?}: {}", as_name.text());
        assert_eq!(as_name.sqlstate(), "42703", "{value:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_sqlstate_and_a_fitting_status() {
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    // No login, a wrong password, an unknown user: 401 with a challenge.
    let anonymous = curl(port, "/v1/sql", &["--data-binary", "SELECT 1"]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.sqlstate(), "28P01");
    for credentials in [("walidata", "salah"), ("tidak_ada", "walidata-demo")] {
        let reply = post_sql(port, credentials, "SELECT 1").await;
        assert_eq!(reply.status, 401, "{credentials:?}");
    }
    let cases: &[(&str, (&str, &str), u16, &str)] = &[
        ("SELEC 1", WALIDATA, 400, "42601"),
        ("SELECT 1; SELECT 2", WALIDATA, 400, "42601"),
        (
            "SELECT tidak_ada FROM ref.kecamatan",
            WALIDATA,
            400,
            "42703",
        ),
        ("SELECT * FROM ref.tidak_ada", WALIDATA, 404, "42P01"),
        (
            "SELECT nik FROM kependudukan.public.penduduk",
            DINKES,
            403,
            "42501",
        ),
        (
            "SELECT * FROM kepegawaian.kepegawaian.pegawai",
            DINKES,
            404,
            "42P01",
        ),
        ("DELETE FROM ref.kecamatan", WALIDATA, 403, "25006"),
        ("SELECT 1/0", WALIDATA, 400, "22012"),
        ("DECLARE c CURSOR FOR SELECT 1", WALIDATA, 400, "0A000"),
    ];
    for (body, credentials, status, sqlstate) in cases {
        let reply = post_sql(port, *credentials, body).await;
        assert_eq!(reply.status, *status, "{body}: {}", reply.text());
        assert_eq!(reply.sqlstate(), *sqlstate, "{body}: {}", reply.text());
        assert_eq!(reply.content_type, "application/json");
    }
    let unacceptable = curl(
        port,
        "/v1/sql",
        &[
            "-u",
            &login(WALIDATA),
            "-H",
            "Accept: image/png",
            "--data-binary",
            "SELECT 1",
        ],
    )
    .await;
    assert_eq!(unacceptable.status, 406);
    let not_json = curl(
        port,
        "/v1/sql",
        &[
            "-u",
            &login(WALIDATA),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "{\"sql\": 1}",
        ],
    )
    .await;
    assert_eq!(not_json.status, 400);
    // A session command answers its tag.
    let set = post_sql(port, WALIDATA, "SET statement_timeout = '5s'").await;
    assert_eq!(set.status, 200);
    assert_eq!(set.json()["command"], "SET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_is_down_is_503() {
    // A link whose database does not answer (nothing listens on the port).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let server = common::start_with(&format!(
        "[links.mati]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {dead_port}\n\
         database = \"x\"\nuser = \"x\"\npassword = \"x\"\n"
    ))
    .await;
    let port = door(server.engine.clone()).await;
    let reply = post_sql(port, WALIDATA, "SELECT * FROM mati.public.t").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.sqlstate().starts_with("08"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_logs_in_as_its_user_and_nothing_else_does() {
    let (token, stored) = tautan::auth::new_token();
    let shipped = common::config_text("");
    // A robot user with walidata's role; its password is dinsos's demo
    // verifier, its token the one made above.
    let verifier = shipped
        .split("[users.dinsos]")
        .nth(1)
        .and_then(|rest| rest.split("password = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the dinsos demo verifier")
        .to_string();
    let server = common::start_config(&format!(
        "{shipped}\n[users.robot]\npassword = \"{verifier}\"\nroles = [\"walidata\"]\ntokens = [\"{stored}\"]\n"
    ))
    .await;
    let port = door(server.engine.clone()).await;
    let bearer = |t: String| format!("Authorization: Bearer {t}");
    let reply = curl(
        port,
        "/v1/sql",
        &[
            "-H",
            &bearer(token.clone()),
            "--data-binary",
            "SELECT current_user AS u",
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), serde_json::json!([{ "u": "robot" }]));
    // The stored hash, a changed token, another user's password form: 401.
    let mut changed = token.clone();
    changed.pop();
    changed.push(if token.ends_with('A') { 'B' } else { 'A' });
    for wrong in [stored.clone(), changed, String::new(), format!("{token} ")] {
        let reply = curl(
            port,
            "/v1/sql",
            &["-H", &bearer(wrong.clone()), "--data-binary", "SELECT 1"],
        )
        .await;
        // (curl trims a trailing blank of a header value: that token is
        // the right one.)
        if wrong.trim() == token {
            assert_eq!(reply.status, 200);
        } else {
            assert_eq!(reply.status, 401, "{wrong:?}");
        }
    }
    // A config that stores a token itself instead of its hash is refused.
    let bad = format!(
        "{shipped}\n[users.robot]\npassword = \"{verifier}\"\nroles = []\ntokens = [\"{token}\"]\n"
    );
    let e = tautan::config::FederationConfig::parse(&bad, &common::repo().join("federation.toml"))
        .expect_err("a plain token in the config");
    assert!(e.to_string().contains("tokens"), "{e}");
    assert!(!e.to_string().contains(&token), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_the_statement_at_the_source() {
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    // A literal only this test sends, so its statement is found among
    // other tests' at the source.
    let marker = 917_364_251;
    let sql = format!("SELECT * FROM uji_pg.public.lambat WHERE x <> {marker}");
    let running = |admin: tokio_postgres::Client| async move {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'tautan_ro' \
                 AND state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&marker.to_string()],
            )
            .await
            .expect("pg_stat_activity");
        (row.get::<_, i64>(0), admin)
    };
    let auth = login(WALIDATA);
    let client = tokio::task::spawn_blocking(move || {
        // curl gives up after 2 s: the source statement (a 60 s sleep)
        // must not outlive it by much.
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "2", "-u", &auth, "--data-binary", &sql])
            .arg(format!("http://127.0.0.1:{port}/v1/sql"))
            .output()
            .expect("curl runs")
    });
    let mut admin = common::pg_admin("tautan_uji").await;
    let mut seen = false;
    for _ in 0..30 {
        let (n, a) = running(admin).await;
        admin = a;
        if n > 0 {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the statement reached the source");
    let out = client.await.expect("curl");
    assert!(!out.status.success(), "curl timed out");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (n, a) = running(admin).await;
        admin = a;
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the source statement still runs 10 s after the client went away"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_exactly_what_the_caller_may_read() {
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    let doc = |credentials: (&'static str, &'static str)| async move {
        let reply = curl(port, "/openapi.json", &["-u", &login(credentials)]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    let dinkes = doc(DINKES).await;
    let paths = dinkes["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/v1/sql"));
    assert!(paths.contains_key("/v1/datasets/ref.kecamatan"));
    assert!(paths.contains_key("/v1/datasets/kesehatan.kesehatan.kunjungan"));
    assert!(
        !paths.keys().any(|p| p.contains("kepegawaian")),
        "not granted: {:?}",
        paths.keys()
    );
    // Column grants: penduduk without nik or nama.
    let penduduk = &dinkes["components"]["schemas"]["kependudukan.public.penduduk"]["properties"];
    let columns: Vec<&String> = penduduk.as_object().expect("columns").keys().collect();
    assert!(
        columns.iter().any(|c| *c == "kecamatan_kode"),
        "{columns:?}"
    );
    assert!(
        !columns.iter().any(|c| *c == "nik" || *c == "nama"),
        "{columns:?}"
    );
    // Every dataset listed answers its GET for this user.
    for path in paths.keys().filter(|p| p.starts_with("/v1/datasets/")) {
        let reply = curl(port, &format!("{path}?limit=1"), &["-u", &login(DINKES)]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    // walidata sees more; nobody unauthenticated sees anything.
    let all = doc(WALIDATA).await;
    assert!(all["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .any(|p| p.contains("kepegawaian")));
    let anonymous = curl(port, "/openapi.json", &[]).await;
    assert_eq!(anonymous.status, 401);
}

/// An identity provider for the tests: its JWKS file and signing key.
struct Provider {
    jwks: std::path::PathBuf,
    key: ed25519_dalek::SigningKey,
}

impl Provider {
    fn new(tag: &str) -> Provider {
        use base64::Engine as _;
        let dir = common::temp_dir(tag);
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let x =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let jwks = dir.join("jwks.json");
        std::fs::write(
            &jwks,
            serde_json::json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "pemda-1" }] })
                .to_string(),
        )
        .expect("jwks");
        Provider { jwks, key }
    }

    /// The `[http]` section trusting this provider.
    fn config(&self) -> String {
        format!(
            "\n[http]\nlisten = \"127.0.0.1:0\"\n[http.oidc]\nissuer = \"https://sso.pemda.example\"\n\
             audience = \"tautan\"\njwks = \"{}\"\n",
            self.jwks.display()
        )
    }

    /// A token for `user` expiring at `exp`, signed by `key` (the
    /// provider's own when `None`).
    fn token(&self, user: &str, exp: u64, key: Option<&ed25519_dalek::SigningKey>) -> String {
        self.token_with(user, exp, key, serde_json::json!({}))
    }

    /// As [`Provider::token`], with more claims.
    fn token_with(
        &self,
        user: &str,
        exp: u64,
        key: Option<&ed25519_dalek::SigningKey>,
        extra: serde_json::Value,
    ) -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let key = key.unwrap_or(&self.key);
        let signer =
            jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().expect("der").as_bytes());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("pemda-1".into());
        let mut claims = serde_json::json!({
            "iss": "https://sso.pemda.example", "aud": "tautan", "exp": exp,
            "preferred_username": user,
        });
        for (k, v) in extra.as_object().expect("claims") {
            claims[k] = v.clone();
        }
        jsonwebtoken::encode(&header, &claims, &signer).expect("jwt")
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_sign_on_token_logs_in_as_the_user_it_names() {
    let provider = Provider::new("http-oidc");
    let server =
        common::start_config(&format!("{}{}", common::config_text(""), provider.config())).await;
    let port = door(server.engine.clone()).await;
    let ask = |token: String, sql: &'static str| async move {
        curl(
            port,
            "/v1/sql",
            &[
                "-H",
                &format!("Authorization: Bearer {token}"),
                "--data-binary",
                sql,
            ],
        )
        .await
    };
    // The analyst's token: their grants, not more.
    let ok = ask(
        provider.token("analis_dinkes", now() + 600, None),
        "SELECT current_user AS u",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json(), serde_json::json!([{ "u": "analis_dinkes" }]));
    let denied = ask(
        provider.token("analis_dinkes", now() + 600, None),
        "SELECT nik FROM kependudukan.public.penduduk",
    )
    .await;
    assert_eq!(denied.status, 403);
    // Expired, a user tautan does not have, another signer: 401.
    let other = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    for token in [
        provider.token("analis_dinkes", now() - 3600, None),
        provider.token("tidak_ada", now() + 600, None),
        provider.token("walidata", now() + 600, Some(&other)),
    ] {
        assert_eq!(ask(token, "SELECT 1").await.status, 401);
    }
}

/// `[http.oidc] roles_claim`/`role_map`/`attribute_claims`: a token's
/// groups give the roles the custodian mapped (no others), its claims the
/// attributes row filters use, and with `users_from_claims` a user not in
/// `[users]` logs in with only those; on the wire as over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_claims_give_mapped_roles_and_attributes() {
    let provider = Provider::new("claims-oidc");
    let grant = "[[grants]]\nrole = \"analis_kota\"\ntables = [\"kependudukan.public.penduduk\"]\n\
                 row_filter = \"kecamatan_kode IN ({wilayah})\"\nmasks = { nik = \"pseudonym\" }\n";
    let claims = "roles_claim = \"realm_access.roles\"\n\
                  role_map = { \"pemkot-analis\" = \"analis_kota\" }\n\
                  attribute_claims = { wilayah = \"kode_wilayah\" }\nusers_from_claims = true\n";
    let text = |base: String| format!("{base}\n{grant}{}{claims}", provider.config());
    let server = common::start_config(&text(common::config_text(""))).await;
    let port = door(server.engine.clone()).await;
    let token = |user: &str, claims: serde_json::Value| {
        provider.token_with(user, now() + 600, None, claims)
    };
    let ask = |token: String, sql: &'static str| async move {
        curl(
            port,
            "/v1/sql",
            &[
                "-H",
                &format!("Authorization: Bearer {token}"),
                "--data-binary",
                sql,
            ],
        )
        .await
    };
    let districts =
        "SELECT DISTINCT kecamatan_kode AS k FROM kependudukan.public.penduduk ORDER BY k";
    let rows = |r: &Reply| -> Vec<String> {
        r.json()
            .as_array()
            .expect("rows")
            .iter()
            .map(|row| row["k"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // A user the config does not have: the mapped group's role, the
    // claim's districts; the unmapped group `walidata` gives nothing.
    let budi = token(
        "budi",
        serde_json::json!({
            "realm_access": { "roles": ["pemkot-analis", "walidata"] },
            "kode_wilayah": ["31.71.03"],
        }),
    );
    let seen = ask(budi.clone(), districts).await;
    assert_eq!(seen.status, 200, "{}", seen.text());
    assert_eq!(rows(&seen), ["31.71.03"]);
    let me = ask(budi.clone(), "SELECT current_user AS u").await;
    assert_eq!(me.json(), serde_json::json!([{ "u": "budi" }]));
    let staff = ask(
        budi.clone(),
        "SELECT count(*) FROM kepegawaian.kepegawaian.pegawai",
    )
    .await;
    assert!(matches!(staff.status, 403 | 404), "{}", staff.text());
    // No mapped group: not a user here.
    for claims in [
        serde_json::json!({ "kode_wilayah": ["31.71.03"] }),
        serde_json::json!({ "realm_access": { "roles": ["walidata"] } }),
    ] {
        assert_eq!(ask(token("budi", claims), "SELECT 1").await.status, 401);
    }
    // A configured user: its own attributes win over the claim's.
    let kota = token(
        "analis_kota",
        serde_json::json!({ "kode_wilayah": ["31.71.03"] }),
    );
    assert_eq!(rows(&ask(kota, districts).await), ["31.71.01", "31.71.02"]);
    // A configured user without the attribute takes it from the claim,
    // and the mapped role beside its own.
    let dinsos = token(
        "dinsos",
        serde_json::json!({
            "realm_access": { "roles": "pemkot-analis" },
            "kode_wilayah": "31.71.04",
        }),
    );
    assert_eq!(rows(&ask(dinsos, districts).await), ["31.71.04"]);
    // The same token is the password on the wire (over TLS).
    let server = common::start_config(&text(common::tls_config_text("claims-oidc-tls"))).await;
    let (ok, out, err) = server.psql_env(
        ("budi", &budi),
        &[("PGSSLMODE", "require")],
        &[
            "-At",
            "-c",
            "SELECT DISTINCT kecamatan_kode FROM kependudukan.public.penduduk",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "31.71.03");

    // A config that lets unknown users in without mapping roles is refused.
    let bad = format!(
        "{}{}users_from_claims = true\n",
        common::config_text(""),
        provider.config()
    );
    let e = tautan::config::FederationConfig::parse(&bad, std::path::Path::new("x.toml"))
        .expect_err("users_from_claims alone");
    assert!(e.to_string().contains("users_from_claims"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_token_is_the_password_on_the_postgresql_wire_over_tls() {
    let provider = Provider::new("wire-oidc");
    let text = common::tls_config_text("wire-oidc-tls") + &provider.config();
    let server = common::start_config(&text).await;
    let tls = [("PGSSLMODE", "require")];
    let token = provider.token("analis_dinkes", now() + 600, None);
    // Over TLS: the token logs in as the user it names, with their grants.
    let (ok, out, err) = server.psql_env(
        ("analis_dinkes", &token),
        &tls,
        &[
            "-At",
            "-c",
            "SELECT current_user",
            "-c",
            "SELECT count(*) FROM ref.kecamatan",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("analis_dinkes\n"), "{out}");
    // The user's own password still works; the token of another user, an
    // expired one and a wrong password do not.
    let (ok, _, err) = server.psql_env(DINKES, &tls, &["-c", "SELECT 1"]);
    assert!(ok, "{err}");
    for (user, password) in [
        ("walidata", token.clone()),
        (
            "analis_dinkes",
            provider.token("analis_dinkes", now() - 3600, None),
        ),
        ("analis_dinkes", "salah".to_string()),
        ("tidak_ada", provider.token("tidak_ada", now() + 600, None)),
    ] {
        let (ok, _, err) = server.psql_env((user, &password), &tls, &["-c", "SELECT 1"]);
        assert!(
            !ok && err.contains("password authentication failed"),
            "{user}: {err}"
        );
    }
    // Without TLS the login is SCRAM, where a token is no password.
    let (ok, _, _) = server.psql_env(
        ("analis_dinkes", &token),
        &[("PGSSLMODE", "disable")],
        &["-c", "SELECT 1"],
    );
    assert!(!ok, "a token is not accepted in clear text without TLS");
    let (ok, _, err) = server.psql_env(DINKES, &[("PGSSLMODE", "disable")], &["-c", "SELECT 1"]);
    assert!(ok, "{err}");

    // With the certificate configured the HTTP door is HTTPS only, and
    // the token works there too.
    let port = door(server.engine.clone()).await;
    let run = |args: Vec<String>| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(&args)
            .output()
            .expect("curl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (ok, body) = run(vec![
        "-k".into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        "--data-binary".into(),
        "SELECT current_user AS u".into(),
        format!("https://127.0.0.1:{port}/v1/sql"),
    ]);
    assert!(ok, "{body}");
    assert_eq!(body, r#"[{"u":"analis_dinkes"}]"#);
    let (ok, body) = run(vec![
        "-u".into(),
        "analis_dinkes:dinkes-demo".into(),
        "--data-binary".into(),
        "SELECT 1".into(),
        format!("http://127.0.0.1:{port}/v1/sql"),
    ]);
    assert!(
        !ok,
        "plain HTTP is not served when TLS is configured: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_names_producers_labels_and_granted_columns() {
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    let reply = curl(port, "/v1/catalog", &["-u", &login(DINKES)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let catalog = reply.json();
    let datasets = catalog["datasets"].as_array().expect("datasets");
    let find = |name: &str| datasets.iter().find(|d| d["name"] == name).cloned();
    let kunjungan = find("kesehatan.kesehatan.kunjungan").expect("kunjungan listed");
    assert_eq!(kunjungan["producer"]["link"], "kesehatan");
    assert_eq!(
        kunjungan["producer"]["description"],
        "Dinkes: puskesmas visits (NIK)"
    );
    assert_eq!(
        kunjungan["url"],
        "/v1/datasets/kesehatan.kesehatan.kunjungan"
    );
    let nik = kunjungan["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["name"] == "nik")
        .cloned()
        .expect("nik column");
    assert_eq!(nik["labels"], "pribadi");
    let kecamatan = find("ref.kecamatan").expect("reference data listed");
    assert_eq!(kecamatan["producer"]["custodian"], "reference data");
    // Column grants: penduduk's identity columns are not in the catalog.
    let penduduk = find("kependudukan.public.penduduk").expect("penduduk listed");
    let names: Vec<&str> = penduduk["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"nik") && !names.contains(&"nama"),
        "{names:?}"
    );
    assert!(find("kepegawaian.kepegawaian.pegawai").is_none());
    assert!(datasets
        .iter()
        .all(|d| !d["name"].as_str().unwrap_or("").starts_with("system.")));
    // Keys, descriptions and the reference data a dataset is keyed by.
    assert_eq!(kunjungan["primary_key"], "id");
    let refs = kunjungan["reference_keys"].as_str().unwrap_or_default();
    assert!(
        refs.contains("kecamatan_kode → ref.kecamatan.kode"),
        "{kunjungan}"
    );
    let puskesmas = find("kesehatan.kesehatan.puskesmas").expect("puskesmas listed");
    assert_eq!(puskesmas["description"], "Daftar puskesmas");
    assert_eq!(puskesmas["primary_key"], "kode");
    // A key with a column the user may not read is not shown (it would
    // name that column).
    assert_eq!(penduduk["primary_key"], Value::Null, "{penduduk}");
    // The row estimate is the source's own.
    let reltuples: f64 = common::pg_admin("kependudukan")
        .await
        .query_one(
            "SELECT reltuples::float8 FROM pg_class WHERE oid = 'public.penduduk'::regclass",
            &[],
        )
        .await
        .expect("reltuples")
        .get(0);
    let expected = (reltuples >= 0.0).then(|| reltuples.round() as i64);
    assert_eq!(penduduk["row_estimate"].as_i64(), expected, "{penduduk}");
    // Freshness: nothing read from kesehatan yet by this server; after a
    // read to the end, when it ended.
    assert_eq!(kunjungan["fresh_at"], Value::Null);
    let read = post_sql(
        port,
        DINKES,
        "SELECT count(*) AS n FROM kesehatan.kesehatan.kunjungan",
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let reply = curl(port, "/v1/catalog", &["-u", &login(DINKES)]).await;
    let again = reply.json();
    let fresh = again["datasets"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|d| d["name"] == "kesehatan.kesehatan.kunjungan")
        })
        .and_then(|d| d["fresh_at"].as_str().map(str::to_string))
        .expect("fresh_at after a read");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(fresh.starts_with(&today), "{fresh}");
    // The same rows in SQL: system.datasets.
    let client = server.connect(DINKES).await;
    let row = client
        .query_one(
            "SELECT primary_key, reference_keys, producer FROM system.datasets \
             WHERE dataset = 'kesehatan.kesehatan.kunjungan'",
            &[],
        )
        .await
        .expect("system.datasets");
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("id"));
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("kesehatan")
    );
    let hidden = client
        .query(
            "SELECT 1 FROM system.datasets WHERE dataset LIKE 'kepegawaian.%'",
            &[],
        )
        .await
        .expect("system.datasets");
    assert!(hidden.is_empty());
}

/// The catalog and status pages: what the visitor may see, escaped, and
/// rendered by a real browser (headless Chromium: the DOM it builds and a
/// screenshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_and_status_pages_show_what_the_visitor_may_see_in_a_browser() {
    let dir = common::temp_dir("http-pages");
    std::fs::write(dir.join("catatan.csv"), "a,b\n1,2\n").expect("csv");
    let hostile = format!(
        "[links.berkas]\nkind = \"files\"\npath = \"{}\"\ndescription = \"<script>alert('x')</script> & \\\"kutip\\\"\"\n",
        dir.display()
    );
    let server = common::start_with(&hostile).await;
    let port = door(server.engine.clone()).await;
    let anonymous = curl(port, "/catalog", &[]).await;
    assert_eq!(anonymous.status, 401);
    let page = curl(port, "/catalog", &["-u", &login(WALIDATA)]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    let html = page.text();
    assert!(html.contains("kesehatan.kesehatan.kunjungan"));
    assert!(html.contains("berkas.public.catatan"), "{html}");
    assert!(
        !html.contains("<script>"),
        "markup from the config is escaped"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;kutip&quot;")
    );
    // dinsos sees only its own link.
    let dinsos = curl(port, "/catalog", &["-u", &login(DINSOS)]).await.text();
    assert!(dinsos.contains("dinsos.public.penerima_bansos"), "{dinsos}");
    assert!(!dinsos.contains("kesehatan.kesehatan"), "{dinsos}");
    let status = curl(port, "/status", &["-u", &login(WALIDATA)]).await;
    assert_eq!(status.status, 200);
    let status = status.text();
    assert!(status.contains("<table id=\"links\">") && status.contains("kependudukan"));
    assert!(!curl(port, "/status", &["-u", &login(DINSOS)])
        .await
        .text()
        .contains("kesehatan"));

    if std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("notice: no Chromium here: the catalog page is not rendered in a browser");
        return;
    }
    let file = dir.join("katalog.html");
    std::fs::write(&file, &html).expect("page");
    let chromium = |args: &[String]| {
        let out = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1024,2000",
            ])
            .args(args)
            .output()
            .expect("chromium");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let url = format!("file://{}", file.display());
    let dom = chromium(&["--dump-dom".to_string(), url.clone()]);
    // The browser built one section per dataset, with its columns.
    let sections = dom.matches("<section class=\"dataset\"").count();
    let listed = html.matches("<section class=\"dataset\"").count();
    assert!(
        sections >= 5 && sections == listed,
        "{sections} of {listed}"
    );
    assert!(
        dom.contains("<code>kecamatan_kode</code>"),
        "columns rendered"
    );
    let shot = dir.join("katalog.png");
    chromium(&[format!("--screenshot={}", shot.display()), url]);
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a rendered page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_added_or_revoked_counts_from_the_next_reload() {
    let (token, stored) = tautan::auth::new_token();
    let dir = common::temp_dir("http-token-reload");
    let path = dir.join("federation.toml");
    let base = common::pull_config(&dir.join("data"), 1, "");
    let with_token = base.replace(
        "[users.dinsos]\n",
        &format!("[users.dinsos]\ntokens = [\"{stored}\"]\n"),
    );
    assert_ne!(with_token, base, "the dinsos user is in the config");
    std::fs::write(&path, &base).expect("config");
    let engine = tautan::engine::Engine::start(
        tautan::config::FederationConfig::load(&path).expect("config"),
    )
    .await
    .expect("engine");
    let port = door(engine.clone()).await;
    let ask = || async {
        curl(
            port,
            "/v1/sql",
            &[
                "-H",
                &format!("Authorization: Bearer {token}"),
                "--data-binary",
                "SELECT current_user AS u",
            ],
        )
        .await
    };
    assert_eq!(ask().await.status, 401, "not yet in the config");
    std::fs::write(&path, &with_token).expect("config");
    engine.reload_policy().expect("reload");
    let reply = ask().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), serde_json::json!([{ "u": "dinsos" }]));
    std::fs::write(&path, &base).expect("config");
    engine.reload_policy().expect("reload");
    assert_eq!(ask().await.status, 401, "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_of_both_sources_is_answered_in_every_format() {
    // The fixture tables with a column of every type tautan maps (extremes,
    // NULLs, non-ASCII): each format answers every row, or the whole
    // statement fails with a clear error; never a 500 or a cut body.
    let server = common::start().await;
    let port = door(server.engine.clone()).await;
    let auth = login(WALIDATA);
    for table in [
        "uji_pg.public.semua_tipe",
        "uji_pg.public.beda",
        "uji_my.tautan_uji.semua_tipe",
        "uji_my.tautan_uji.beda",
    ] {
        let sql = format!("SELECT * FROM {table}");
        let expected = rows(&engine_answer(&server.engine, "walidata", &sql).await);
        for accept in [
            "application/json",
            "application/x-ndjson",
            "text/csv",
            "application/vnd.apache.arrow.stream",
            "application/vnd.apache.parquet",
        ] {
            let reply = post_sql_as(port, &auth, accept, &sql).await;
            assert_eq!(reply.status, 200, "{table} as {accept}: {}", reply.text());
            let count = match accept {
                "application/json" => reply.json().as_array().map(Vec::len).unwrap_or(0),
                "application/x-ndjson" => reply
                    .text()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
                    .collect::<Vec<_>>()
                    .len(),
                "text/csv" => csv::ReaderBuilder::new()
                    .from_reader(reply.body.as_slice())
                    .records()
                    .collect::<Result<Vec<_>, _>>()
                    .expect("CSV records")
                    .len(),
                "application/vnd.apache.arrow.stream" => {
                    let got = arrow_batches(&reply.body);
                    assert_eq!(rows(&got), expected, "{table} as Arrow");
                    expected.len()
                }
                _ => {
                    let got = parquet_batches(&reply.body);
                    assert_eq!(rows(&got).len(), expected.len(), "{table} as Parquet");
                    expected.len()
                }
            };
            assert_eq!(count, expected.len(), "{table} as {accept}");
        }
    }
}

/// A token for `user` signed by `key` under key id `kid`.
fn token_with(key: &ed25519_dalek::SigningKey, kid: &str, user: &str) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let signer =
        jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().expect("der").as_bytes());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &serde_json::json!({
            "iss": "https://sso.pemda.example", "aud": "tautan", "exp": now() + 600,
            "preferred_username": user,
        }),
        &signer,
    )
    .expect("jwt")
}

/// The JWKS of `keys` (key id, key).
fn jwks_of(keys: &[(&str, &ed25519_dalek::SigningKey)]) -> String {
    use base64::Engine as _;
    let keys: Vec<_> = keys
        .iter()
        .map(|(kid, key)| {
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(key.verifying_key().as_bytes());
            serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid })
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// `[http.oidc] jwks_url`: the key set is fetched from the provider, a
/// token under a key id the set does not hold fetches it again (the
/// provider rotated its keys), a key the provider dropped no longer logs
/// in, and a provider that does not answer at startup leaves JWT logins
/// refused while the federation serves everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_fetched_from_the_provider_follows_its_key_rotation() {
    let old = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let new = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let served = std::sync::Arc::new(std::sync::Mutex::new(jwks_of(&[("pemda-1", &old)])));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let (served, fetches) = (served.clone(), fetches.clone());
        axum::Router::new().route(
            "/certs",
            axum::routing::get(move || {
                let (served, fetches) = (served.clone(), fetches.clone());
                async move {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    served.lock().unwrap().clone()
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let idp = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let oidc = |url: &str| {
        format!(
            "\n[http]\nlisten = \"127.0.0.1:0\"\n[http.oidc]\nissuer = \"https://sso.pemda.example\"\n\
             audience = \"tautan\"\njwks_url = \"{url}\"\n"
        )
    };
    let server = common::start_config(&format!(
        "{}{}",
        common::config_text(""),
        oidc(&format!("http://{idp}/certs"))
    ))
    .await;
    let port = door(server.engine.clone()).await;
    let ask = |token: String| async move {
        curl(
            port,
            "/v1/sql",
            &[
                "-H",
                &format!("Authorization: Bearer {token}"),
                "--data-binary",
                "SELECT current_user AS u",
            ],
        )
        .await
        .status
    };
    assert_eq!(ask(token_with(&old, "pemda-1", "analis_dinkes")).await, 200);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The provider rotates: the new key only.
    *served.lock().unwrap() = jwks_of(&[("pemda-2", &new)]);
    assert_eq!(ask(token_with(&new, "pemda-2", "analis_dinkes")).await, 200);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(ask(token_with(&old, "pemda-1", "analis_dinkes")).await, 401);
    // Unknown key ids do not make tautan hammer the provider.
    for _ in 0..5 {
        assert_eq!(ask(token_with(&old, "pemda-9", "walidata")).await, 401);
    }
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);

    // A provider down at startup: JWTs refused, passwords still work.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead_url = format!("http://{}/certs", dead.local_addr().expect("addr"));
    drop(dead);
    let server =
        common::start_config(&format!("{}{}", common::config_text(""), oidc(&dead_url))).await;
    let port = door(server.engine.clone()).await;
    let refused = curl(
        port,
        "/v1/sql",
        &[
            "-H",
            &format!(
                "Authorization: Bearer {}",
                token_with(&new, "pemda-2", "walidata")
            ),
            "--data-binary",
            "SELECT 1",
        ],
    )
    .await;
    assert_eq!(refused.status, 401);
    let ok = curl(
        port,
        "/v1/sql",
        &[
            "-u",
            "walidata:walidata-demo",
            "--data-binary",
            "SELECT 1 AS x",
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}
