//! The PostgreSQL wire endpoint (pgwire): simple and extended query
//! protocol over the session's check → plan → execute path.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::LogicalPlan;
use futures::{FutureExt, Sink, SinkExt, StreamExt};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    send_execution_response, send_partial_query_response, ExtendedQueryHandler, SimpleQueryHandler,
};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PgWireConnectionState,
    PgWireServerHandlers, RandomPidSecretKeyGenerator, Type, DEFAULT_NAME,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Bind, BindComplete, Execute};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{MaybeTls, PgWireMessageServerCodec};
use pgwire::types::format::FormatOptions;
use std::panic::AssertUnwindSafe;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, FramedParts};

use crate::engine::{Engine, Prepared, Query, Session};
use crate::error::QueryError;
use crate::server::cancel::{Canceller, LiveSessions};
use crate::server::encode::{
    copy_response, error_info, error_info_of, fields, row_stream, send_copy_out, to_pg_error,
};
use crate::server::guard::{Guarded, ProtocolViolation};
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

/// How values are written for this client: its startup parameters, with
/// the session's current `TimeZone` (timestamptz is written in it).
fn format_options<C: ClientInfo>(client: &C, session: &Session) -> Arc<FormatOptions> {
    let mut options = FormatOptions::from_client_metadata(client.metadata());
    if let Some(zone) = session.setting("timezone") {
        options.time_zone = zone;
    }
    Arc::new(options)
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
    query: Query,
    format: &Format,
    params: Option<datafusion::common::ParamValues>,
) -> PgWireResult<Response> {
    let schema = Arc::new(result_fields(
        &query.plan,
        format,
        Some(format_options(client, session)),
    )?);
    let stream = session.execute(query, params).await.map_err(to_pg_error)?;
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
        Prepared::Query(query) => run_query(client, session, query.clone(), format, params).await,
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
        Prepared::Declare { name, query } => {
            session
                .declare(name, query.clone(), params)
                .await
                .map_err(to_pg_error)?;
            Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
        }
        Prepared::Fetch { name, count, .. } => {
            let stream = session.fetch(name, *count).await.map_err(to_pg_error)?;
            let schema = Arc::new(fields(
                &stream.schema(),
                format,
                Some(format_options(client, session)),
            )?);
            let mut response = QueryResponse::new(schema.clone(), row_stream(stream, schema));
            response.set_command_tag("FETCH");
            Ok(Response::Query(response))
        }
        Prepared::Close(name) => {
            session.close(name.as_deref()).await.map_err(to_pg_error)?;
            Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
        }
        Prepared::CopyOut { query, options } => {
            let stream = session
                .execute(query.clone(), params)
                .await
                .map_err(to_pg_error)?;
            Ok(Response::CopyOut(copy_response(
                stream,
                options,
                format_options(client, session),
            )?))
        }
        Prepared::Empty => Ok(Response::EmptyQuery),
    }
}

#[async_trait]
impl SimpleQueryHandler for Handlers {
    /// pgwire's own `on_query`, except that a COPY answer is sent by
    /// [`send_copy_out`] (pgwire ends a failed COPY with CopyFail, a
    /// message only clients send, which no client can parse).
    async fn on_query<C>(
        &self,
        client: &mut C,
        query: pgwire::messages::simplequery::Query,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut transaction_status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let text = query.query;
        if text.trim().trim_matches(';').trim().is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        } else {
            let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
                Some(handle) => Some(handle.start_query().await),
                None => None,
            };
            let responses = match cancel {
                Some(cancel) => {
                    match futures::future::select(
                        SimpleQueryHandler::do_query(self, client, &text),
                        cancel,
                    )
                    .await
                    {
                        futures::future::Either::Left((result, _)) => result,
                        futures::future::Either::Right(_) => Err(PgWireError::QueryCanceled),
                    }
                }
                None => SimpleQueryHandler::do_query(self, client, &text).await,
            }?;
            for response in responses {
                match response {
                    Response::EmptyQuery => {
                        client
                            .feed(PgWireBackendMessage::EmptyQueryResponse(
                                EmptyQueryResponse::new(),
                            ))
                            .await?;
                    }
                    Response::Query(results) => {
                        pgwire::api::query::send_query_response(client, results, true).await?;
                    }
                    Response::Execution(tag) => send_execution_response(client, tag).await?,
                    Response::TransactionStart(tag) => {
                        send_execution_response(client, tag).await?;
                        transaction_status = transaction_status.to_in_transaction_state();
                    }
                    Response::TransactionEnd(tag) => {
                        send_execution_response(client, tag).await?;
                        transaction_status = transaction_status.to_idle_state();
                    }
                    Response::Error(e) => {
                        client
                            .feed(PgWireBackendMessage::ErrorResponse((*e).into()))
                            .await?;
                        transaction_status = transaction_status.to_error_state();
                    }
                    Response::CopyOut(result) => {
                        if let Err(e) = send_copy_out(client, result).await {
                            client
                                .feed(PgWireBackendMessage::ErrorResponse(error_info_of(e).into()))
                                .await?;
                            transaction_status = transaction_status.to_error_state();
                            break;
                        }
                    }
                    Response::CopyIn(_) | Response::CopyBoth(_) => {
                        // tautan never reads COPY data (read-only).
                        client
                            .feed(PgWireBackendMessage::ErrorResponse(
                                error_info(QueryError::read_only("COPY FROM")).into(),
                            ))
                            .await?;
                        transaction_status = transaction_status.to_error_state();
                    }
                }
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(transaction_status);
        pgwire::api::query::send_ready_for_query(client, transaction_status).await?;
        Ok(())
    }

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
        // Nothing is bound in the simple protocol: PostgreSQL answers 42P02.
        if let Some(name) = statements.iter().find_map(crate::limits::first_placeholder) {
            return Ok(vec![Response::Error(Box::new(error_info(
                params::no_parameter(&name),
            )))]);
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

#[async_trait]
impl QueryParser for Parser {
    type Statement = ParsedStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
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
        let declared: Vec<_> = types
            .iter()
            .map(|t| t.as_ref().and_then(params::declared_arrow_type))
            .collect();
        let prepared = session
            .prepare_declared(statement, &declared)
            .await
            .map_err(to_pg_error)?;
        Ok(Some(ParsedStatement {
            sql: sql.to_string(),
            prepared,
        }))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        match &stmt.prepared {
            Prepared::Query(query) => params::announced_types(&query.plan).map_err(to_pg_error),
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
            Prepared::Query(query) => result_fields(&query.plan, &format, None),
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

    /// pgwire's Execute, except for how rows are fetched: pgwire's
    /// `Portal::fetch` reserves room for `max_rows` rows before reading one
    /// (an Execute asking for 2147483647 rows, or a negative count read as
    /// a huge one, aborted the process on a failed 55 GB allocation), and
    /// buffers every row of a `max_rows = 0` Execute before sending any.
    /// Here rows stream to the client as they come (pgwire's
    /// `send_partial_query_response`), and a count of 0 or below means all
    /// rows, as in PostgreSQL. The rest is pgwire's `_on_execute`.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let mut transaction_status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            Some(Entry::Empty) => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
                client.set_state(PgWireConnectionState::ReadyForQuery);
                return Ok(());
            }
            None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
        };
        let initial = matches!(*portal.state.lock().await, PortalExecutionState::Initial);
        let needs_fetch = if initial {
            let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
                Some(handle) => Some(handle.start_query().await),
                None => None,
            };
            let response = match cancel {
                Some(cancel) => {
                    match futures::future::select(
                        ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows),
                        cancel,
                    )
                    .await
                    {
                        futures::future::Either::Left((result, _)) => result,
                        futures::future::Either::Right(_) => Err(PgWireError::QueryCanceled),
                    }
                }
                None => {
                    ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows).await
                }
            }?;
            match response {
                Response::Query(results) => {
                    portal.start(results).await;
                    true
                }
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                    false
                }
                Response::Execution(tag) => {
                    send_execution_response(client, tag).await?;
                    false
                }
                Response::TransactionStart(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_in_transaction_state();
                    false
                }
                Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_idle_state();
                    client.portal_store().rm_portal(DEFAULT_NAME);
                    false
                }
                Response::Error(err) => {
                    client
                        .send(PgWireBackendMessage::ErrorResponse((*err).into()))
                        .await?;
                    transaction_status = transaction_status.to_error_state();
                    false
                }
                Response::CopyIn(result) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_in_response(client, result).await?;
                    false
                }
                Response::CopyOut(result) => {
                    if let Err(e) = send_copy_out(client, result).await {
                        client
                            .send(PgWireBackendMessage::ErrorResponse(error_info_of(e).into()))
                            .await?;
                        transaction_status = transaction_status.to_error_state();
                    }
                    false
                }
                Response::CopyBoth(result) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_both_response(client, result).await?;
                    false
                }
            }
        } else {
            true
        };
        if needs_fetch {
            let mut state = portal.state.lock().await;
            match &mut *state {
                PortalExecutionState::Suspended(response) => {
                    if !send_partial_query_response(client, response, max_rows).await? {
                        *state = PortalExecutionState::Finished;
                    }
                }
                PortalExecutionState::Finished => {
                    client
                        .send(PgWireBackendMessage::CommandComplete(
                            Tag::new("SELECT").with_rows(0).into(),
                        ))
                        .await?;
                }
                PortalExecutionState::Initial => return Err(PgWireError::PortalNotStarted),
            }
        }
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(transaction_status);
        }
        Ok(())
    }

    /// pgwire's Bind, with PostgreSQL's checks first: as many values as
    /// the statement has parameters, as many format codes as values (or
    /// one, or none), format codes 0 or 1 only, and as many result formats
    /// as columns. A portal is never created from a Bind that fails them,
    /// so nothing later reads past the formats or values sent.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let shown = if statement_name == DEFAULT_NAME {
            ""
        } else {
            statement_name
        };
        let values = message.parameters.len();
        check_format_codes(
            &message.parameter_format_codes,
            values,
            "parameter formats",
            "parameters",
        )?;
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let required = required_parameters(&statement)?;
                if values != required {
                    return Err(bind_error(format!(
                        "bind message supplies {values} parameters, but prepared statement \"{shown}\" requires {required}"
                    )));
                }
                let columns = result_columns(&statement.statement.prepared);
                check_format_codes(
                    &message.result_column_format_codes,
                    columns,
                    "result formats",
                    "columns",
                )?;
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if values != 0 {
                    return Err(bind_error(format!(
                        "bind message supplies {values} parameters, but prepared statement \"{shown}\" requires 0"
                    )));
                }
                let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .send(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
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
            Prepared::Query(Query { plan, .. })
            | Prepared::Declare {
                query: Query { plan, .. },
                ..
            }
            | Prepared::CopyOut {
                query: Query { plan, .. },
                ..
            } => {
                let inferred = params::parameter_types(plan).map_err(to_pg_error)?;
                let binary: Vec<bool> = (0..portal.parameters.len())
                    .map(|i| is_binary(&portal.parameter_format, i))
                    .collect();
                // What decode falls back on for types the client left
                // open: the inferred ones, or a known client query's own.
                let announced = crate::client_queries::parameter_types(plan).unwrap_or_default();
                let values = params::decode(
                    &portal.parameters,
                    &binary,
                    &portal.statement.parameter_types,
                    &inferred,
                    &announced,
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
            Prepared::Declare { name, query } => {
                let fetch = Prepared::Fetch {
                    name: name.clone(),
                    count: None,
                    schema: query.plan.schema().inner().clone(),
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

/// Whether value `i` of a Bind is binary (a format code list shorter than
/// the values was refused at Bind; text if it were not).
fn is_binary(format: &Format, i: usize) -> bool {
    match format {
        Format::UnifiedText => false,
        Format::UnifiedBinary => true,
        Format::Individual(codes) => codes.get(i) == Some(&1),
    }
}

/// 08P01 for a Bind message that does not fit its statement.
fn bind_error(message: String) -> PgWireError {
    to_pg_error(QueryError::new("08P01", message))
}

/// PostgreSQL's checks of a Bind message's format codes: none (all text),
/// one (for all), or one per item; each 0 (text) or 1 (binary).
fn check_format_codes(codes: &[i16], items: usize, what: &str, of: &str) -> PgWireResult<()> {
    if let Some(code) = codes.iter().find(|c| **c != 0 && **c != 1) {
        return Err(to_pg_error(QueryError::new(
            "22023",
            format!("unsupported format code: {code}"),
        )));
    }
    if codes.len() > 1 && codes.len() != items {
        return Err(bind_error(format!(
            "bind message has {} {what} but {} {of}",
            codes.len(),
            if of == "columns" {
                format!("query has {items}")
            } else {
                items.to_string()
            }
        )));
    }
    Ok(())
}

/// How many values a Bind must supply: the parameters the client declared
/// at Parse, or as many as the highest `$n` in the statement.
fn required_parameters(statement: &StoredStatement<ParsedStatement>) -> PgWireResult<usize> {
    let planned = match &statement.statement.prepared {
        Prepared::Query(query)
        | Prepared::Declare { query, .. }
        | Prepared::CopyOut { query, .. } => params::parameter_types(&query.plan)
            .map_err(to_pg_error)?
            .len(),
        _ => 0,
    };
    Ok(planned.max(statement.parameter_types.len()))
}

/// How many columns a statement returns (for the result formats of Bind).
fn result_columns(prepared: &Prepared) -> usize {
    match prepared {
        Prepared::Query(query) => query.plan.schema().fields().len(),
        Prepared::Command { show: Some(_), .. } => 1,
        Prepared::Fetch { schema, .. } => schema.fields().len(),
        _ => 0,
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
///
/// Each connection is a task of its own: a panic while it is served (in
/// tautan, DataFusion or pgwire) ends that task only, never another
/// session or the process (`panic = "abort"` is never set). Inside the
/// connection a panic while a message is handled is caught and answered as
/// that statement's XX000 error ([`connection`]).
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) -> std::io::Result<()> {
    let tls = crate::server::tls::from_config(&engine.config).map_err(std::io::Error::other)?;
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
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors (or memory, or a connection reset
                // before it was taken): serving goes on. Waiting a little
                // lets closing sockets free what the next accept needs
                // instead of spinning on the same error.
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = factory.engine.admission.connection();
        let factory = factory.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(socket, tls, factory, slot).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// The pause after a failed `accept()`.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a client refused for lack of a connection slot has to send its
/// startup packet and read the refusal.
const REFUSAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// One connection's socket: pgwire's framing over [`Guarded`] bytes.
type Socket = Framed<Guarded<MaybeTls>, PgWireMessageServerCodec<ParsedStatement>>;

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// Serves one connection: pgwire's TLS negotiation, then pgwire's message
/// handling (`process_message`) in tautan's own loop, which differs from
/// pgwire's `process_socket` in what a client can make it do:
///
/// * bytes reach pgwire's decoder only as whole, checked messages
///   ([`Guarded`]); a malformed one ends the connection with FATAL 08P01;
/// * a panic while a message is handled is caught and answered with XX000
///   for that statement (the session goes on), and logged;
/// * a FATAL error (a failed login among them) is answered with the
///   ErrorResponse alone and the connection is closed, as PostgreSQL does:
///   no ReadyForQuery follows it.
pub async fn connection(
    socket: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    factory: Arc<Factory>,
    slot: Option<crate::admission::ConnectionSlot>,
) -> std::io::Result<()> {
    let peer = socket.peer_addr().ok();
    // Logging in, TLS included, has one deadline: a client that stalls
    // anywhere before ReadyForQuery holds its socket no longer than this.
    let login_time = match slot {
        Some(_) => {
            std::time::Duration::from_millis(factory.engine.config.server.authentication_timeout_ms)
        }
        None => REFUSAL_TIMEOUT,
    };
    let deadline = tokio::time::sleep(login_time);
    tokio::pin!(deadline);
    let negotiated = tokio::select! {
        _ = &mut deadline => return Ok(()),
        negotiated = pgwire::tokio::server::negotiate_tls::<ParsedStatement>(socket, tls) => negotiated?,
    };
    let Some(negotiated) = negotiated else {
        return Ok(());
    };
    let parts = negotiated.into_parts();
    let mut guarded = FramedParts::new(Guarded::new(parts.io, parts.read_buf), parts.codec);
    guarded.write_buf = parts.write_buf;
    let mut socket: Socket = Framed::from_parts(guarded);

    let startup = factory.startup_handler();
    let simple = factory.handlers.clone();
    let extended = factory.handlers.clone();
    let copy = factory.copy_handler();
    let cancel = factory.cancel_handler();
    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let next = AssertUnwindSafe(async {
            if logging_in {
                tokio::select! {
                    _ = &mut deadline => None,
                    next = socket.next() => next,
                }
            } else {
                socket.next().await
            }
        })
        .catch_unwind()
        .await;
        let message = match next {
            Ok(None) => break,
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => {
                // Refused by the guard or by pgwire's decoder: a protocol
                // violation ends the connection, as in PostgreSQL.
                let text = match &e {
                    PgWireError::IoError(io) => match io
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<ProtocolViolation>())
                    {
                        Some(v) => v.0.clone(),
                        None => break, // the connection itself failed
                    },
                    other => other.to_string(),
                };
                tracing::info!(?peer, reason = %text, "protocol violation; connection closed");
                let info = ErrorInfo::new("FATAL".into(), "08P01".into(), text);
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(info.into()))
                    .await;
                let _ = socket.close().await;
                break;
            }
            Err(panic) => {
                tracing::error!(?peer, panic = %panic_text(panic.as_ref()), "panic while decoding a message; connection closed");
                let info = ErrorInfo::new(
                    "FATAL".into(),
                    "XX000".into(),
                    "internal error while reading a message".into(),
                );
                let _ = socket
                    .send(PgWireBackendMessage::ErrorResponse(info.into()))
                    .await;
                let _ = socket.close().await;
                break;
            }
        };
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        if slot.is_none() && matches!(message, PgWireFrontendMessage::Startup(_)) {
            // Over `[server] max_connections`: PostgreSQL's answer, then
            // the end of the connection.
            tracing::warn!(
                ?peer,
                limit = factory.engine.admission.max_connections(),
                "connection refused: too many clients"
            );
            let full = PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "53300".into(),
                "sorry, too many clients already".into(),
            )));
            answer_error(&mut socket, full, false).await?;
            break;
        }
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let outcome = AssertUnwindSafe(pgwire::tokio::server::process_message(
            message,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        ))
        .catch_unwind()
        .await;
        let error = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(panic) => {
                let text = panic_text(panic.as_ref());
                tracing::error!(?peer, panic = %text, "panic while handling a message; answered XX000");
                PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".into(),
                    "XX000".into(),
                    format!("internal error: {text}"),
                )))
            }
        };
        if !answer_error(&mut socket, error, is_extended).await? {
            break;
        }
    }
    Ok(())
}

/// Answers a failed message as pgwire's `process_error` does, except that a
/// FATAL error (and any error before login completes, which PostgreSQL
/// reports as FATAL) is followed by nothing but the end of the connection.
/// Returns whether the connection goes on.
async fn answer_error(
    socket: &mut Socket,
    error: PgWireError,
    is_extended: bool,
) -> std::io::Result<bool> {
    let mut info: ErrorInfo = error.into();
    let logging_in = matches!(
        socket.state(),
        PgWireConnectionState::AwaitingStartup | PgWireConnectionState::AuthenticationInProgress
    );
    if logging_in {
        info.severity = "FATAL".into();
    }
    let fatal = info.is_fatal();
    socket
        .feed(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    if fatal {
        socket.flush().await?;
        socket.close().await?;
        return Ok(false);
    }
    let status = socket.transaction_status().to_error_state();
    socket.set_transaction_status(status);
    if is_extended {
        socket.set_state(PgWireConnectionState::AwaitingSync);
    } else {
        socket.set_state(PgWireConnectionState::ReadyForQuery);
        socket
            .feed(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
    }
    socket.flush().await?;
    Ok(true)
}
