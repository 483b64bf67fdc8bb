//! The Arrow Flight SQL door with arrow-rs's own Flight SQL client:
//! handshake logins, statements and prepared statements streamed as
//! Arrow, catalog listings — and the same grants as psql.

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::CommandGetTables;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::TryStreamExt;
use tonic::transport::Channel;

use crate::common::*;

/// A Flight SQL door on an ephemeral port over `server`'s engine.
async fn door(server: &Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(tautan::server::flight_sql::serve(
        server.engine.clone(),
        listener,
    ));
    format!("http://{addr}")
}

async fn client(url: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    FlightSqlServiceClient::new(channel)
}

/// Every row of the batches as text.
fn text(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| {
                ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).expect("formatter")
            })
            .collect();
        for r in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| c.is_valid(r).then(|| f.value(r).to_string()))
                    .collect(),
            );
        }
    }
    rows
}

/// Runs `sql` through Flight SQL: the rows as text, or the gRPC status.
async fn flight(
    c: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let info = c
        .execute(sql.to_string(), None)
        .await
        .map_err(|e| e.to_string())?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("no ticket")?;
        let stream = c.do_get(ticket).await.map_err(|e| e.to_string())?;
        batches.extend(
            stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(text(&batches))
}

/// An HTTP door on an ephemeral port over `server`'s engine.
async fn http_door(server: &Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(tautan::server::http::serve(server.engine.clone(), listener));
    format!("http://{addr}")
}

/// Runs `sql` through the HTTP door as CSV: rows as text, or the SQLSTATE.
async fn http(
    url: &str,
    (user, password): (&str, &str),
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let reply = reqwest::Client::new()
        .post(format!("{url}/v1/sql"))
        .basic_auth(user, Some(password))
        .header("Accept", "text/csv")
        .body(sql.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let ok = reply.status().is_success();
    let body = reply.text().await.map_err(|e| e.to_string())?;
    if !ok {
        let error: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        return Err(error["error"]["sqlstate"]
            .as_str()
            .unwrap_or_default()
            .to_string());
    }
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    Ok(reader
        .records()
        .map(|r| {
            r.expect("csv")
                .iter()
                .map(|v| Some(v.to_string()))
                .collect()
        })
        .collect())
}

/// A user reads through Flight SQL and the HTTP door exactly what psql
/// shows them: the same rows, the same refusals (the SQLSTATE is in the
/// gRPC message and the HTTP body), and Flight listings of only the tables
/// they may read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_answers_what_the_wire_answers_under_the_same_grants() {
    let server = start().await;
    let url = door(&server).await;
    let web = http_door(&server).await;
    let cases = [
        "SELECT kode, nama FROM ref.kecamatan ORDER BY kode",
        "SELECT kecamatan_kode, count(*) AS n FROM kesehatan.kesehatan.kunjungan GROUP BY 1 ORDER BY 1",
        "SELECT jenis_kelamin, count(*) FROM kependudukan.public.penduduk GROUP BY 1 ORDER BY 1",
        "SELECT nik FROM kependudukan.public.penduduk ORDER BY nik LIMIT 1",
        "SELECT * FROM dinsos.public.penerima_bansos ORDER BY nik, program, bulan LIMIT 2",
        "SELECT count(*) FROM kepegawaian.kepegawaian.pegawai",
        "SELECT 1/0",
    ];
    for login in [WALIDATA, DINKES] {
        let pg = server.connect(login).await;
        let mut fl = client(&url).await;
        fl.handshake(login.0, login.1).await.expect("handshake");
        for sql in cases {
            let ours = flight(&mut fl, sql).await;
            let theirs = text_rows(&pg, sql)
                .await
                .map_err(|e| e.split(' ').next().unwrap_or_default().to_string());
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{} {sql}", login.0),
                (Err(a), Err(code)) => assert!(
                    a.contains(&format!("SQLSTATE {code}")),
                    "{} {sql}: {a} vs {code}",
                    login.0
                ),
                _ => panic!("{} {sql}: flight {ours:?} vs wire {theirs:?}", login.0),
            }
            assert_eq!(
                http(&web, login, sql).await,
                theirs,
                "{} {sql} over HTTP",
                login.0
            );
        }
        // Prepared statements answer the same.
        let mut prepared = fl
            .prepare("SELECT kode FROM ref.kecamatan ORDER BY kode".into(), None)
            .await
            .expect("prepare");
        assert_eq!(prepared.dataset_schema().expect("schema").fields().len(), 1);
        let info = prepared.execute().await.expect("execute");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let batches: Vec<RecordBatch> = fl
            .do_get(ticket)
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("rows");
        assert_eq!(text(&batches).len(), 8);
        // The table listing is what information_schema shows over the wire.
        let info = fl
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: None,
                table_name_filter_pattern: None,
                table_types: vec![],
                include_schema: false,
            })
            .await
            .expect("get_tables");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let batches: Vec<RecordBatch> = fl
            .do_get(ticket)
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("rows");
        let mut listed: Vec<String> = text(&batches)
            .into_iter()
            .map(|r| {
                format!(
                    "{}.{}.{}",
                    r[0].clone().unwrap_or_default(),
                    r[1].clone().unwrap_or_default(),
                    r[2].clone().unwrap_or_default()
                )
            })
            .collect();
        listed.sort();
        let mut shown: Vec<String> = text_rows(
            &pg,
            "SELECT table_catalog || '.' || table_schema || '.' || table_name FROM information_schema.tables \
             WHERE table_schema NOT IN ('information_schema', 'pg_catalog')",
        )
        .await
        .expect("information_schema")
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
        shown.sort();
        assert_eq!(listed, shown, "{}", login.0);
        // Primary keys: the source's, in key order, for a table the user
        // may read; nothing for one the user may not.
        let keys = |c: &FlightSqlServiceClient<Channel>, schema: &str, table: &str| {
            let request = arrow_flight::sql::CommandGetPrimaryKeys {
                catalog: None,
                db_schema: Some(schema.to_string()),
                table: table.to_string(),
            };
            let mut c = c.clone();
            async move {
                let info = c.get_primary_keys(request).await.expect("get_primary_keys");
                let ticket = info.endpoint[0].ticket.clone().expect("ticket");
                let batches: Vec<RecordBatch> = c
                    .do_get(ticket)
                    .await
                    .expect("do_get")
                    .try_collect()
                    .await
                    .expect("keys");
                text(&batches)
                    .into_iter()
                    .map(|r| {
                        format!(
                            "{}:{}",
                            r[3].clone().unwrap_or_default(),
                            r[5].clone().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let beda = keys(&fl, "uji_pg.public", "beda").await;
        if listed.iter().any(|t| t.ends_with("uji_pg.public.beda")) {
            assert_eq!(beda, vec!["id:1".to_string()], "{}", login.0);
        } else {
            assert!(beda.is_empty(), "{}: {beda:?}", login.0);
        }
        if login == DINKES {
            assert!(
                !listed.iter().any(|t| t.starts_with("dinsos.")),
                "{listed:?}"
            );
        }
    }
}

/// No login, a wrong password or an unknown session token is refused
/// before anything is planned; an API token or Basic credentials work on
/// each call without a handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_refuses_calls_without_a_valid_login() {
    let server = start().await;
    let url = door(&server).await;
    let mut anonymous = client(&url).await;
    let err = flight(&mut anonymous, "SELECT 1")
        .await
        .expect_err("no login");
    assert!(
        err.contains("Unauthenticated") || err.contains("SQLSTATE 28"),
        "{err}"
    );
    let mut wrong = client(&url).await;
    let err = wrong
        .handshake("walidata", "not-the-password")
        .await
        .expect_err("wrong password");
    assert!(
        err.to_string().contains("28P01") || err.to_string().contains("Unauthenticated"),
        "{err}"
    );
    let mut forged = client(&url).await;
    forged.set_token("0".repeat(64));
    let err = flight(&mut forged, "SELECT 1")
        .await
        .expect_err("forged token");
    assert!(
        err.contains("Unauthenticated") || err.contains("SQLSTATE 28"),
        "{err}"
    );
    // Basic on every call, no handshake.
    let mut basic = client(&url).await;
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode("analis_dinkes:dinkes-demo");
    basic.set_header("authorization", format!("Basic {credentials}"));
    let rows = flight(&mut basic, "SELECT count(*) FROM ref.kecamatan")
        .await
        .expect("basic");
    assert_eq!(rows, vec![vec![Some("8".to_string())]]);
}
