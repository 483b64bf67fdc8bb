//! The Arrow Flight SQL door: ADBC and the Flight SQL JDBC driver read
//! answers as Arrow, with no row-by-row encoding.
//!
//! Built on arrow-rs's own Flight SQL server traits
//! ([`FlightSqlService`]); tautan implements statements, prepared
//! statements with bound parameters ([`handle`]), the catalog, schema,
//! table, table-type and primary-key listings, each filtered by the
//! caller's grants (they walk the session's own catalog tree, which holds
//! only what the user may see: a key column the user may not read is not
//! listed), and the type listing ([`types`]). With `[server] tls_cert` the
//! door speaks TLS only ([`serve`]).
//!
//! Logins are the HTTP door's ([`crate::server::http::auth`]): HTTP Basic
//! with the user's password, an API token, or a single sign-on JWT in the
//! `authorization` header. A `Handshake` with Basic credentials answers a
//! session token (`authorization: Bearer …`, as ADBC expects) that later
//! calls send instead: one login, one session, for the connection's
//! statements. Every statement goes through the same session API as the
//! other doors: the grant check before planning, policies, the audit log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use axum::http::HeaderMap;
use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, Streaming};

use crate::engine::Engine;
use crate::error::QueryError;
use crate::server::http::auth::{authenticate, Caller};

pub mod handle;
pub mod types;

use handle::Handle;

/// How long a handshake's session lives without a call.
const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// The Flight SQL service over one engine.
pub struct FlightSql {
    engine: Arc<Engine>,
    /// Sessions opened by a handshake, by their token.
    sessions: Mutex<HashMap<String, (Arc<Caller>, Instant)>>,
    info: SqlInfoData,
    types: XdbcTypeInfoData,
}

/// What a call answers with.
type DoGetStream = <FlightSql as FlightService>::DoGetStream;

/// A [`QueryError`] as a gRPC status: the SQLSTATE in the message, and the
/// code that fits it.
fn status(e: QueryError) -> Status {
    let message = format!("{} (SQLSTATE {})", e.message, e.code);
    match e.code.as_str() {
        "28000" | "28P01" => Status::unauthenticated(message),
        "42501" | "25006" => Status::permission_denied(message),
        "42P01" | "3F000" | "3D000" => Status::not_found(message),
        "57014" => Status::cancelled(message),
        c if c.starts_with("53") => Status::resource_exhausted(message),
        c if c.starts_with("08") || c.starts_with("57") || c == "58030" => {
            Status::unavailable(message)
        }
        c if c.starts_with("XX") || c.starts_with("58") => Status::internal(message),
        _ => Status::invalid_argument(message),
    }
}

/// The schema as Flight SQL's IPC bytes.
fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?;
    Ok(message.0)
}

/// A `FlightInfo` for an answer of `schema`, fetched with `ticket`.
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// One batch (a listing), as a `DoGet` answer.
fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> DoGetStream {
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async { batch }))
            .map_err(Status::from),
    )
}

impl FlightSql {
    /// The service for `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "tautan");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        info.append(SqlInfo::FlightSqlServerCancel, false);
        // Building a fixed set of known items cannot fail; an empty set
        // is the answer if it ever did.
        let info = info
            .build()
            .unwrap_or_else(|_| SqlInfoDataBuilder::new().build().expect("empty sql info"));
        // A fixed list as well.
        let types = types::listing().unwrap_or_else(|_| {
            XdbcTypeInfoDataBuilder::new()
                .build()
                .expect("empty type listing")
        });
        FlightSql {
            engine,
            sessions: Mutex::new(HashMap::new()),
            info,
            types,
        }
    }

    /// The caller of `request`: a handshake's session, or a login with the
    /// credentials it carries.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Arc<Caller>, Status> {
        let headers: HeaderMap = request.metadata().clone().into_headers();
        if let Some(token) = bearer(&headers) {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((caller, used)) = sessions.get_mut(&token) {
                if used.elapsed() < SESSION_IDLE {
                    *used = Instant::now();
                    return Ok(caller.clone());
                }
                sessions.remove(&token);
            }
        }
        let peer = request
            .remote_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let caller = authenticate(&self.engine, &headers, peer)
            .await
            .map_err(|e| status(e.error))?;
        Ok(Arc::new(caller))
    }

    /// The `FlightInfo` of a listing (catalogs, schemas, tables, ...) for
    /// a logged-in caller: its schema, fetched with `ticket`.
    async fn listing(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        ticket: Vec<u8>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request).await?;
        flight_info(schema, ticket, request.into_inner())
    }

    /// Plans `sql` for `caller`: its answer's schema as clients see it.
    async fn plan(caller: &Caller, sql: &str) -> Result<(crate::engine::Query, SchemaRef), Status> {
        let query = caller.session.prepare_query(sql).await.map_err(status)?;
        let schema =
            crate::export::client_schema(query.plan.schema().inner(), false).map_err(status)?;
        Ok((query, schema))
    }

    /// Runs `sql` for `caller`, streamed as Flight data. The session is
    /// held until the stream ends or the client goes away (which cancels
    /// the statement and its source queries).
    async fn run(caller: Arc<Caller>, handle: Handle) -> Result<Response<DoGetStream>, Status> {
        let (query, schema) = Self::plan(&caller, &handle.sql).await?;
        let params = handle.values(&query.plan).map_err(status)?;
        let relabel = crate::export::TextColumns::new(&schema, |_| true);
        let stream = caller
            .session
            .execute(query, params)
            .await
            .map_err(status)?;
        let batches = stream.map(move |batch| {
            let _held = &caller;
            batch
                .map_err(QueryError::from)
                .and_then(|b| relabel.apply(&b))
                .map_err(|e| FlightError::Tonic(Box::new(status(e))))
        });
        Ok(Response::new(Box::pin(
            FlightDataEncoderBuilder::new()
                .with_schema(schema)
                .build(batches)
                .map_err(Status::from),
        )))
    }

    /// The catalogs, schemas and tables `caller` may see (by name).
    async fn tables(caller: &Caller) -> Vec<(String, String, String, SchemaRef)> {
        let state = caller.session.state();
        let catalogs = state.catalog_list();
        let mut out = Vec::new();
        for c in catalogs.catalog_names() {
            let Some(catalog) = catalogs.catalog(&c) else {
                continue;
            };
            for s in catalog.schema_names() {
                if s == "information_schema" || s == "pg_catalog" {
                    continue;
                }
                let Some(schema) = catalog.schema(&s) else {
                    continue;
                };
                for t in schema.table_names() {
                    if let Ok(Some(table)) = schema.table(&t).await {
                        out.push((c.clone(), s.clone(), t, table.schema()));
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        out
    }

    /// A ticket's or command's statement handle ([`Handle`]).
    fn handle(bytes: &[u8]) -> Result<Handle, Status> {
        Handle::decode(bytes).map_err(status)
    }
}

/// The token of a `Bearer` authorization, if any.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// A fresh session token (256 random bits).
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let caller = self.caller(&request).await?;
        let token = new_token();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.retain(|_, (_, used)| used.elapsed() < SESSION_IDLE);
            sessions.insert(token.clone(), (caller, Instant::now()));
        }
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into_bytes().into(),
        };
        let stream = futures::stream::once(async { Ok(answer) });
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(stream));
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("cannot write the session token"))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request).await?;
        let (_, schema) = Self::plan(&caller, &query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let handle = Self::handle(&ticket.statement_handle)?;
        Self::run(caller, handle).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request).await?;
        let (planned, schema) = Self::plan(&caller, &query.query).await?;
        let parameters = crate::server::params::parameter_types(&planned.plan).map_err(status)?;
        // `$1, $2, ...` with the types inferred for them (text where
        // nothing says).
        let parameter_schema = Schema::new(
            parameters
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Field::new(
                        format!("${}", i + 1),
                        t.clone().unwrap_or(DataType::Utf8),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Handle::unbound(query.query).encode().map_err(status)?,
            dataset_schema: schema_bytes(&schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<arrow_flight::sql::server::PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = self.caller(&request).await?;
        let handle = Self::handle(&query.prepared_statement_handle)?;
        let (planned, _) = Self::plan(&caller, &handle.sql).await?;
        let wanted = crate::server::params::parameter_types(&planned.plan)
            .map_err(status)?
            .len();
        // The client's messages, bounded (each is at most the door's
        // 16 MiB message size), decoded in one go.
        let mut messages = Vec::new();
        let mut stream = request.into_inner();
        while let Some(message) = stream.try_next().await? {
            if messages.len() >= handle::MAX_MESSAGES {
                return Err(status(QueryError::new(
                    "08P01",
                    "one row of parameter values per query",
                )));
            }
            messages.push(message);
        }
        let row = Handle::parameter_row(&messages).map_err(status)?;
        if row.num_columns() != wanted {
            return Err(status(QueryError::new(
                "08P01",
                format!(
                    "the statement has {wanted} parameter(s), {} value(s) were sent",
                    row.num_columns()
                ),
            )));
        }
        let bound = Handle {
            sql: handle.sql,
            params: Some(row),
        };
        // The values must convert now, not when the query runs.
        bound.values(&planned.plan).map_err(status)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bound.encode().map_err(status)?),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        self.caller(&request).await?;
        Ok(())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request).await?;
        let handle = Self::handle(&cmd.prepared_statement_handle)?;
        let (_, schema) = Self::plan(&caller, &handle.sql).await?;
        flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let handle = Self::handle(&query.prepared_statement_handle)?;
        Self::run(caller, handle).await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.listing(request, &schema, query.as_any().encode_to_vec())
            .await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let mut builder = query.into_builder();
        let mut seen = std::collections::BTreeSet::new();
        for (c, ..) in Self::tables(&caller).await {
            if seen.insert(c.clone()) {
                builder.append(c);
            }
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.listing(request, &schema, query.as_any().encode_to_vec())
            .await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let mut builder = query.into_builder();
        let mut seen = std::collections::BTreeSet::new();
        for (c, s, ..) in Self::tables(&caller).await {
            if seen.insert((c.clone(), s.clone())) {
                builder.append(c, s);
            }
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.listing(request, &schema, query.as_any().encode_to_vec())
            .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        let mut builder = query.into_builder();
        for (c, s, t, table_schema) in Self::tables(&caller).await {
            builder
                .append(c, s, t, "TABLE", &table_schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.listing(
            request,
            &table_types_schema(),
            query.as_any().encode_to_vec(),
        )
        .await
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.caller(&request).await?;
        let schema = Arc::new(table_types_schema());
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec!["TABLE"]))],
        )
        .map_err(FlightError::Arrow);
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.listing(
            request,
            &primary_keys_schema(),
            query.as_any().encode_to_vec(),
        )
        .await
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request).await?;
        // The key's columns as the source declared them, among the columns
        // the caller may read, in key order.
        let mut keys: Vec<(String, String, String, String, i32)> = Vec::new();
        for (c, s, t, table_schema) in Self::tables(&caller).await {
            let wanted = t == query.table
                && query.catalog.as_ref().is_none_or(|want| *want == c)
                && query.db_schema.as_ref().is_none_or(|want| *want == s);
            if !wanted {
                continue;
            }
            let mut key: Vec<(i32, String)> = table_schema
                .fields()
                .iter()
                .filter_map(|f| {
                    let position = f.metadata().get(tautan_connector::types::PRIMARY_KEY)?;
                    Some((position.parse::<i32>().ok()?, f.name().clone()))
                })
                .collect();
            key.sort();
            // A key with a column the caller may not read (a gap in the
            // positions) is not listed, as in `system.columns`.
            let whole = key.iter().zip(1..).all(|((position, _), n)| *position == n);
            if whole {
                for (position, column) in key {
                    keys.push((c.clone(), s.clone(), t.clone(), column, position));
                }
            }
        }
        keys.sort_by(|a, b| (&a.0, &a.1, &a.2, a.4).cmp(&(&b.0, &b.1, &b.2, b.4)));
        let column = |pick: fn(&(String, String, String, String, i32)) -> &str| {
            Arc::new(StringArray::from_iter_values(keys.iter().map(pick)))
                as datafusion::arrow::array::ArrayRef
        };
        let schema = Arc::new(primary_keys_schema());
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                column(|k| &k.0),
                column(|k| &k.1),
                column(|k| &k.2),
                column(|k| &k.3),
                Arc::new(StringArray::new_null(keys.len())),
                Arc::new(Int32Array::from_iter_values(keys.iter().map(|k| k.4))),
            ],
        )
        .map_err(FlightError::Arrow);
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.info).schema();
        self.listing(request, &schema, query.as_any().encode_to_vec())
            .await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.caller(&request).await?;
        let builder = query.into_builder(&self.info);
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.types).schema();
        self.listing(request, &schema, query.as_any().encode_to_vec())
            .await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.caller(&request).await?;
        let builder = query.into_builder(&self.types);
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<DoGetStream>, Status> {
        Err(Status::invalid_argument(format!(
            "not a ticket tautan issued ({})",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// `GetPrimaryKeys`' answer, as the Flight SQL protocol defines it.
fn primary_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ])
}

/// `GetTableTypes`' answer: one column, `table_type`.
fn table_types_schema() -> Schema {
    Schema::new(vec![Field::new("table_type", DataType::Utf8, false)])
}

/// Serves Flight SQL on `listener` until the task is dropped: gRPC over
/// TLS (ALPN `h2`, the wire's certificate) when `[server] tls_cert` is set,
/// else in clear.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) -> std::io::Result<()> {
    let tls = crate::server::tls::from_config_for(&engine.config, &[b"h2"])
        .map_err(std::io::Error::other)?;
    let service = FlightServiceServer::new(FlightSql::new(engine))
        .max_decoding_message_size(16 * 1024 * 1024);
    // HTTP/2's default 64 KiB windows make a long answer wait on window
    // updates; answers here are megabytes.
    let router = tonic::transport::Server::builder()
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size(1 << 20)
        .add_service(service);
    match tls {
        None => router
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .map_err(std::io::Error::other),
        Some(acceptor) => {
            // Handshakes on tasks of their own, as for HTTPS.
            let accepted = crate::server::http::tls::TlsListener::new(listener, acceptor)?;
            let incoming = futures::stream::unfold(accepted, |mut accepted| async move {
                let (io, _) = axum::serve::Listener::accept(&mut accepted).await;
                Some((Ok::<_, std::io::Error>(TlsIo(io)), accepted))
            });
            router
                .serve_with_incoming(incoming)
                .await
                .map_err(std::io::Error::other)
        }
    }
}

/// A TLS connection as tonic takes it: it reads the peer's address from
/// the TCP connection inside (`Request::remote_addr`, for the audit log).
struct TlsIo(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsIo {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl tokio::io::AsyncRead for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
