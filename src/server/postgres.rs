//! The PostgreSQL wire endpoint (pgwire): simple and extended query
//! protocol over the session's check → plan → execute path.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::LogicalPlan;
use futures::Sink;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;
use tokio::net::TcpListener;

use crate::engine::{Engine, Prepared, Session};
use crate::error::QueryError;
use crate::server::cancel::{Canceller, LiveSessions};
use crate::server::encode::{copy_response, fields, row_stream, to_pg_error};
use crate::server::params;
use crate::server::startup::ScramStartup;

/// A statement after Parse: its text and what the session made of it.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// SQL text.
    pub sql: String,
    /// The checked statement.
    pub prepared: Prepared,
}

/// Query handlers shared by all connections.
#[derive(Debug)]
pub struct Handlers {
    parser: Arc<Parser>,
}

/// Extended-protocol parser: checks and plans at Parse time.
#[derive(Debug)]
pub struct Parser;

fn session<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Session>> {
    client
        .session_extensions()
        .get::<Arc<Session>>()
        .map(|s| s.as_ref().clone())
        .ok_or_else(|| to_pg_error(QueryError::new("28000", "not authenticated")))
}

fn format_options<C: ClientInfo>(client: &C) -> Arc<FormatOptions> {
    Arc::new(FormatOptions::from_client_metadata(client.metadata()))
}

/// The single-column result of SHOW.
fn show_response(name: &str, value: &str) -> PgWireResult<Response> {
    let schema = Arc::new(vec![FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::TEXT,
        pgwire::api::results::FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(schema.clone());
    encoder.encode_field(&value)?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        schema,
        futures::stream::iter(vec![Ok(row)]),
    )))
}

fn command_response(tag: &str) -> Response {
    match tag {
        "BEGIN" => Response::TransactionStart(Tag::new("BEGIN")),
        "COMMIT" | "ROLLBACK" => Response::TransactionEnd(Tag::new(tag)),
        other => Response::Execution(Tag::new(other)),
    }
}

fn result_fields(
    plan: &LogicalPlan,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    let schema: Schema = plan.schema().as_arrow().clone();
    fields(&schema, format, options)
}

async fn run_query<C: ClientInfo>(
    client: &C,
    session: &Session,
    plan: LogicalPlan,
    format: &Format,
    params: Option<datafusion::common::ParamValues>,
) -> PgWireResult<Response> {
    let schema = Arc::new(result_fields(&plan, format, Some(format_options(client)))?);
    let stream = session.execute(plan, params).await.map_err(to_pg_error)?;
    Ok(Response::Query(QueryResponse::new(
        schema.clone(),
        row_stream(stream, schema),
    )))
}

/// Whether the statement ends a transaction block (the only statements a
/// failed transaction accepts).
fn ends_transaction(prepared: &Prepared) -> bool {
    matches!(prepared, Prepared::Command { tag, .. } if tag == "COMMIT" || tag == "ROLLBACK")
}

/// Runs a prepared statement and answers it, for both protocols.
async fn respond<C: ClientInfo>(
    client: &C,
    session: &Session,
    prepared: &Prepared,
    format: &Format,
    params: Option<datafusion::common::ParamValues>,
) -> PgWireResult<Response> {
    match prepared {
        Prepared::Query(plan) => run_query(client, session, plan.clone(), format, params).await,
        Prepared::Command {
            show: Some((name, value)),
            ..
        } => {
            // Re-read: SET may have run since Parse.
            let current = session.setting(name).unwrap_or_else(|| value.clone());
            show_response(name, &current)
        }
        Prepared::Command { tag, .. } => {
            if ends_transaction(prepared) {
                // Cursors are WITHOUT HOLD; a failed block ends in ROLLBACK.
                session.close(None).await.map_err(to_pg_error)?;
                if client.transaction_status() == TransactionStatus::Error {
                    return Ok(command_response("ROLLBACK"));
                }
            }
            Ok(command_response(tag))
        }
        Prepared::Declare { name, plan } => {
            session
                .declare(name, plan.clone())
                .await
                .map_err(to_pg_error)?;
            Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
        }
        Prepared::Fetch { name, count, .. } => {
            let stream = session.fetch(name, *count).await.map_err(to_pg_error)?;
            let schema = Arc::new(fields(
                &stream.schema(),
                format,
                Some(format_options(client)),
            )?);
            let mut response = QueryResponse::new(schema.clone(), row_stream(stream, schema));
            response.set_command_tag("FETCH");
            Ok(Response::Query(response))
        }
        Prepared::Close(name) => {
            session.close(name.as_deref()).await.map_err(to_pg_error)?;
            Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
        }
        Prepared::CopyOut { plan, options } => {
            let stream = session
                .execute(plan.clone(), params)
                .await
                .map_err(to_pg_error)?;
            Ok(Response::CopyOut(copy_response(stream, options)?))
        }
        Prepared::Empty => Ok(Response::EmptyQuery),
    }
}

#[async_trait]
impl SimpleQueryHandler for Handlers {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session(client)?;
        let statements = match session.parse(query) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(Box::new(error_info(e)))]),
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut failed = client.transaction_status() == TransactionStatus::Error;
        let mut responses = Vec::new();
        for statement in statements {
            if failed {
                // Inside a failed block only COMMIT/ROLLBACK are accepted,
                // and both roll back.
                if !crate::statement::ends_block(&statement) {
                    responses.push(Response::Error(Box::new(error_info(
                        QueryError::in_failed_transaction(),
                    ))));
                    break;
                }
                session.close(None).await.map_err(to_pg_error)?;
                responses.push(command_response("ROLLBACK"));
                failed = false;
                continue;
            }
            let result = match session.prepare(statement).await {
                Ok(prepared) => {
                    respond(client, &session, &prepared, &Format::UnifiedText, None).await
                }
                Err(e) => Err(to_pg_error(e)),
            };
            match result {
                Ok(r) => responses.push(r),
                Err(PgWireError::UserError(info)) => {
                    // Like PostgreSQL: the first error ends the batch.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

fn error_info(e: QueryError) -> pgwire::error::ErrorInfo {
    pgwire::error::ErrorInfo::new("ERROR".to_string(), e.code, e.message)
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = ParsedStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session(client)?;
        let mut statements = session.parse(sql).map_err(to_pg_error)?;
        if statements.len() > 1 {
            return Err(to_pg_error(QueryError::new(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        if client.transaction_status() == TransactionStatus::Error
            && !crate::statement::ends_block(&statement)
        {
            return Err(to_pg_error(QueryError::in_failed_transaction()));
        }
        let prepared = session.prepare(statement).await.map_err(to_pg_error)?;
        Ok(Some(ParsedStatement {
            sql: sql.to_string(),
            prepared,
        }))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        match &stmt.prepared {
            Prepared::Query(plan) => Ok(params::parameter_types(plan)
                .map_err(to_pg_error)?
                .iter()
                .map(|t| params::pg_type_of(t.as_ref()))
                .collect()),
            _ => Ok(vec![]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.cloned().unwrap_or(Format::UnifiedText);
        match &stmt.prepared {
            Prepared::Query(plan) => result_fields(plan, &format, None),
            Prepared::Command {
                show: Some((name, _)),
                ..
            } => fields(
                &Schema::new(vec![Field::new(name, DataType::Utf8, true)]),
                &format,
                None,
            ),
            Prepared::Fetch { schema, .. } => fields(schema, &format, None),
            _ => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handlers {
    type Statement = ParsedStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session(client)?;
        let prepared = &portal.statement.statement.prepared;
        let values = match prepared {
            Prepared::Query(plan) => {
                let inferred = params::parameter_types(plan).map_err(to_pg_error)?;
                let binary: Vec<bool> = (0..portal.parameters.len())
                    .map(|i| portal.parameter_format.is_binary(i))
                    .collect();
                let values = params::decode(
                    &portal.parameters,
                    &binary,
                    &portal.statement.parameter_types,
                    &inferred,
                )
                .map_err(to_pg_error)?;
                (!inferred.is_empty()).then_some(values)
            }
            _ => None,
        };
        let response = respond(
            client,
            &session,
            prepared,
            &portal.result_column_format,
            values,
        )
        .await?;
        // A cursor is also a protocol-level portal of its name, as in
        // PostgreSQL: psycopg 3 describes it, and Execute reads from it.
        match prepared {
            Prepared::Declare { name, plan } => {
                let fetch = Prepared::Fetch {
                    name: name.clone(),
                    count: None,
                    schema: plan.schema().inner().clone(),
                };
                let statement = Arc::new(StoredStatement::new(
                    name.clone(),
                    ParsedStatement {
                        sql: format!("FETCH ALL FROM \"{name}\""),
                        prepared: fetch,
                    },
                    vec![],
                ));
                client
                    .portal_store()
                    .put_portal(Arc::new(Portal::new_cursor(name.clone(), statement)));
            }
            Prepared::Close(Some(name)) => client.portal_store().rm_portal(name),
            _ => {}
        }
        Ok(response)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        stmt: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let inferred = self.parser.get_parameter_types(&stmt.statement)?;
        let param_types = inferred
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                stmt.parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .unwrap_or(t)
            })
            .collect();
        let fields = self
            .parser
            .get_result_schema(&stmt.statement, Some(&Format::UnifiedText))?;
        Ok(DescribeStatementResponse::new(param_types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.parser.get_result_schema(
            &portal.statement.statement,
            Some(&portal.result_column_format),
        )?;
        Ok(DescribePortalResponse::new(fields))
    }
}

/// Everything pgwire needs for one connection.
pub struct Factory {
    engine: Arc<Engine>,
    handlers: Arc<Handlers>,
    connections: Arc<ConnectionManager>,
    pids: Arc<RandomPidSecretKeyGenerator>,
    sessions: Arc<LiveSessions>,
}

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handlers.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handlers.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(ScramStartup::new(
            self.engine.clone(),
            self.connections.clone(),
            self.pids.clone(),
            self.sessions.clone(),
        ))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(Canceller {
            connections: self.connections.clone(),
            sessions: self.sessions.clone(),
        })
    }
}

/// Serves the federation on `listener` until the task is dropped. With
/// `[server] tls_cert`/`tls_key` set, clients may negotiate TLS.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) -> std::io::Result<()> {
    let tls = match (
        &engine.config.server.tls_cert,
        &engine.config.server.tls_key,
    ) {
        (Some(cert), Some(key)) => Some(
            crate::server::tls::acceptor(
                &engine.config.resolve_path(cert),
                &engine.config.resolve_path(key),
            )
            .map_err(std::io::Error::other)?,
        ),
        _ => None,
    };
    let factory = Arc::new(Factory {
        engine,
        handlers: Arc::new(Handlers {
            parser: Arc::new(Parser),
        }),
        connections: Arc::new(ConnectionManager::new()),
        pids: Arc::new(RandomPidSecretKeyGenerator::default()),
        sessions: Arc::new(LiveSessions::default()),
    });
    loop {
        let (socket, peer) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let factory = factory.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, factory).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
