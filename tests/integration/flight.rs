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

/// Prepared statements with bound parameters (`DoPut`): the values are
/// bound, never spliced into the SQL, converted to the types the planner
/// inferred, and a statement runs only with the parameters it has; the
/// type listing (`GetXdbcTypeInfo`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_binds_parameters_and_lists_types() {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let server = start().await;
    let url = door(&server).await;
    let mut fl = client(&url).await;
    fl.handshake("walidata", "walidata-demo")
        .await
        .expect("login");
    let pg = server.connect(WALIDATA).await;
    let texts = |values: Vec<Option<&str>>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("$1", DataType::Utf8, true),
                Field::new("$2", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec![values[0]])),
                Arc::new(StringArray::from(vec![values[1]])),
            ],
        )
        .expect("batch")
    };
    let sql = "SELECT kode, nama FROM ref.kecamatan WHERE kode = $1 OR nama = $2 ORDER BY kode";
    let runner = fl.clone();
    let run = move |mut prepared: arrow_flight::sql::client::PreparedStatement<Channel>| {
        let mut fl = runner.clone();
        async move {
            let info = prepared.execute().await.map_err(|e| e.to_string())?;
            let ticket = info.endpoint[0].ticket.clone().ok_or("no ticket")?;
            let batches: Vec<RecordBatch> = fl
                .do_get(ticket)
                .await
                .map_err(|e| e.to_string())?
                .try_collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(text(&batches))
        }
    };
    let prepared = fl.prepare(sql.into(), None).await.expect("prepare");
    let parameters = prepared.parameter_schema().expect("parameters").clone();
    assert_eq!(
        parameters
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect::<Vec<_>>(),
        [("$1", DataType::Utf8), ("$2", DataType::Utf8)]
    );
    let wire = |a: &'static str, b: &'static str| {
        let pg = &pg;
        async move {
            pg.query(sql, &[&a, &b])
                .await
                .expect("wire")
                .iter()
                .map(|r| vec![Some(r.get::<_, String>(0)), Some(r.get::<_, String>(1))])
                .collect::<Vec<_>>()
        }
    };
    for (a, b) in [
        ("31.71.01", "-"),
        ("-", "Gambir"),
        ("x' OR '1'='1", "') OR true --"),
        ("31.71.02", "Tanah Abang"),
    ] {
        let mut p = fl.prepare(sql.into(), None).await.expect("prepare");
        p.set_parameters(texts(vec![Some(a), Some(b)]))
            .expect("bind");
        assert_eq!(run(p).await.expect("run"), wire(a, b).await, "{a} / {b}");
    }
    // A NULL matches nothing.
    let mut p = fl.prepare(sql.into(), None).await.expect("prepare");
    p.set_parameters(texts(vec![None, None])).expect("bind");
    assert!(run(p).await.expect("run").is_empty());
    // An integer parameter of a link's table, sent as int64.
    let counted = "SELECT count(*) FROM uji_pg.public.angka WHERE grup = $1";
    let mut p = fl.prepare(counted.into(), None).await.expect("prepare");
    p.set_parameters(
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![Some(7)]))],
        )
        .expect("batch"),
    )
    .expect("bind");
    let source: i64 = pg_admin("tautan_uji")
        .await
        .query_one("SELECT count(*) FROM angka WHERE grup = 7", &[])
        .await
        .expect("source")
        .get(0);
    assert_eq!(
        run(p).await.expect("run"),
        vec![vec![Some(source.to_string())]]
    );
    // Unbound, too few values, two rows: refused with a reason.
    let unbound = fl.prepare(sql.into(), None).await.expect("prepare");
    let e = run(unbound).await.expect_err("unbound");
    assert!(e.contains("parameter"), "{e}");
    let mut one = fl.prepare(sql.into(), None).await.expect("prepare");
    one.set_parameters(
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![Some("31.71.01")]))],
        )
        .expect("batch"),
    )
    .expect("bind");
    let e = run(one).await.expect_err("one value for two");
    assert!(e.contains("2 parameter"), "{e}");
    let mut two_rows = fl.prepare(sql.into(), None).await.expect("prepare");
    two_rows
        .set_parameters(
            datafusion::arrow::compute::concat_batches(
                &texts(vec![Some("a"), Some("b")]).schema(),
                &[
                    texts(vec![Some("a"), Some("b")]),
                    texts(vec![Some("c"), None]),
                ],
            )
            .expect("two rows"),
        )
        .expect("bind");
    let e = run(two_rows).await.expect_err("two rows");
    assert!(e.contains("one row"), "{e}");
    // A forged handle is refused, not run.
    let forged = arrow_flight::sql::CommandPreparedStatementQuery {
        prepared_statement_handle: vec![0u8, 0, 0, 0, 9, b'x'].into(),
    };
    let refused = match fl
        .do_get(arrow_flight::Ticket::new(prost::Message::encode_to_vec(
            &arrow_flight::sql::ProstMessageExt::as_any(&forged),
        )))
        .await
    {
        Err(_) => true,
        Ok(stream) => stream.try_collect::<Vec<_>>().await.is_err(),
    };
    assert!(refused, "a forged handle ran");

    // The types, filtered by data type as the protocol says.
    let info = fl
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("type info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> = fl
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("rows");
    let names: Vec<String> = text(&batches)
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    for wanted in [
        "boolean",
        "integer",
        "bigint",
        "numeric",
        "text",
        "timestamp with time zone",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted}: {names:?}");
    }
    let info = fl
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo {
            data_type: Some(arrow_flight::sql::XdbcDataType::XdbcBigint as i32),
        })
        .await
        .expect("type info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> = fl
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("rows");
    assert_eq!(
        text(&batches)
            .into_iter()
            .filter_map(|r| r[0].clone())
            .collect::<Vec<_>>(),
        ["bigint"]
    );
}

/// With `[server] tls_cert`, the Flight SQL door is gRPC over TLS (ALPN
/// `h2`, as grpc-go clients such as ADBC's require), with the wire's
/// certificate; a client in clear gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_speaks_tls_with_the_wires_certificate() {
    use tokio_rustls::rustls;
    let text_config = tls_config_text("flight-tls");
    let cert_path = text_config
        .lines()
        .find_map(|l| l.strip_prefix("tls_cert = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("tls_cert")
        .to_string();
    let server = start_config(&text_config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(tautan::server::flight_sql::serve(
        server.engine.clone(),
        listener,
    ));
    let pem = std::fs::read(&cert_path).expect("certificate");
    let expected = rustls_pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls_pki_types::CertificateDer<'static>| c)
        .expect("pem");

    /// Trusts exactly the test's self-signed certificate.
    #[derive(Debug)]
    struct Pinned(
        rustls_pki_types::CertificateDer<'static>,
        Arc<rustls::crypto::CryptoProvider>,
    );
    use std::sync::Arc;
    impl rustls::client::danger::ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &rustls_pki_types::CertificateDer<'_>,
            _: &[rustls_pki_types::CertificateDer<'_>],
            _: &rustls_pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            if end_entity.as_ref() == self.0.as_ref() {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General("not the test certificate".into()))
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls_pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.1.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls_pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.1.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.1.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(expected, provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let negotiated = Arc::new(std::sync::Mutex::new(None::<Vec<u8>>));
    let seen = negotiated.clone();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_| {
            let (connector, seen) = (connector.clone(), seen.clone());
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
                    .map_err(std::io::Error::other)?;
                let stream = connector.connect(name, tcp).await?;
                *seen.lock().expect("lock") =
                    stream.get_ref().1.alpn_protocol().map(|p| p.to_vec());
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .expect("TLS connection");
    let mut fl = FlightSqlServiceClient::new(channel);
    fl.handshake("walidata", "walidata-demo")
        .await
        .expect("login over TLS");
    assert_eq!(
        flight(&mut fl, "SELECT count(*) FROM ref.kecamatan")
            .await
            .expect("query over TLS"),
        vec![vec![Some("8".to_string())]]
    );
    assert_eq!(
        negotiated.lock().expect("lock").as_deref(),
        Some(&b"h2"[..])
    );
    // In clear: the TLS door answers no gRPC.
    let plain = async {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        FlightSqlServiceClient::new(channel)
            .handshake("walidata", "walidata-demo")
            .await
            .map_err(|e| e.to_string())
    };
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(20), plain)
            .await
            .map_or(true, |r| r.is_err()),
        "a client in clear was answered"
    );
}
