//! Connection startup: SCRAM-SHA-256 login, then the session.
//!
//! pgwire handles protocol negotiation and the parameter statuses; the
//! SCRAM exchange itself runs against tautan's stored verifiers
//! ([`crate::auth`]). On success the user's [`Session`] is stored in the
//! connection's extensions for the query handlers.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use crate::auth::{ScramError, ScramExchange, ScramVerifier};
use crate::engine::{Engine, Session};
use crate::server::cancel::LiveSessions;

/// Where the exchange stands.
enum Step {
    Initial,
    /// Mechanism list sent; waiting for the client-first message.
    MechanismsSent,
    /// Server-first sent.
    Challenged(Box<ScramExchange>, Option<String>),
    Done,
}

/// Startup handler for one connection.
pub struct ScramStartup {
    engine: Arc<Engine>,
    connections: Arc<ConnectionManager>,
    pids: Arc<RandomPidSecretKeyGenerator>,
    sessions: Arc<LiveSessions>,
    step: Mutex<Step>,
}

impl ScramStartup {
    /// A handler for a new connection.
    pub fn new(
        engine: Arc<Engine>,
        connections: Arc<ConnectionManager>,
        pids: Arc<RandomPidSecretKeyGenerator>,
        sessions: Arc<LiveSessions>,
    ) -> Self {
        Self {
            engine,
            connections,
            pids,
            sessions,
            step: Mutex::new(Step::Initial),
        }
    }
}

/// Parameter statuses sent after login.
pub struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let app = client
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        let params = [
            ("server_version", crate::SERVER_VERSION.to_string()),
            ("server_version_num", crate::SERVER_VERSION_NUM.to_string()),
            ("server_encoding", "UTF8".to_string()),
            ("client_encoding", "UTF8".to_string()),
            ("DateStyle", "ISO, MDY".to_string()),
            ("IntervalStyle", "postgres".to_string()),
            ("TimeZone", "UTC".to_string()),
            ("integer_datetimes", "on".to_string()),
            ("standard_conforming_strings", "on".to_string()),
            ("is_superuser", "off".to_string()),
            ("default_transaction_read_only", "on".to_string()),
            ("in_hot_standby", "off".to_string()),
            ("session_authorization", user),
            ("application_name", app),
        ];
        Some(
            params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

fn auth_failed(user: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "28P01".into(),
        format!("password authentication failed for user \"{user}\""),
    )))
}

fn protocol(msg: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "08P01".into(),
        msg,
    )))
}

#[async_trait]
impl StartupHandler for ScramStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut step = self.step.lock().await;
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec!["SCRAM-SHA-256".to_string()],
                    )))
                    .await?;
                *step = Step::MechanismsSent;
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                match std::mem::replace(&mut *step, Step::Done) {
                    Step::MechanismsSent => {
                        let initial = msg.into_sasl_initial_response()?;
                        if initial.auth_method != "SCRAM-SHA-256" {
                            return Err(protocol(format!(
                                "unsupported SASL mechanism {}",
                                initial.auth_method
                            )));
                        }
                        let data = initial.data.unwrap_or_default();
                        let text = String::from_utf8_lossy(&data).to_string();
                        let verifier = self.engine.verifier(&user);
                        let known = verifier.is_some();
                        let verifier = verifier.unwrap_or_else(ScramVerifier::impossible);
                        let (exchange, server_first) = ScramExchange::start(&text, verifier)
                            .map_err(|e| match e {
                                ScramError::Protocol(m) => protocol(m),
                                ScramError::WrongPassword => auth_failed(&user),
                            })?;
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(server_first.into_bytes().into()),
                            ))
                            .await?;
                        *step = Step::Challenged(Box::new(exchange), known.then_some(user));
                    }
                    Step::Challenged(exchange, known_user) => {
                        let response = msg.into_sasl_response()?;
                        let text = String::from_utf8_lossy(&response.data).to_string();
                        let server_final = match (exchange.finish(&text), known_user) {
                            (Ok(f), Some(_)) => f,
                            (Err(ScramError::Protocol(m)), _) => return Err(protocol(m)),
                            _ => {
                                tracing::warn!(user = %user, peer = %client.socket_addr(), "login failed");
                                return Err(auth_failed(&user));
                            }
                        };
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(server_final.into_bytes().into()),
                            ))
                            .await?;
                        let (pid, key) = self.pids.generate(client);
                        client.set_pid_and_secret_key(pid, key.clone());
                        let secret = key.to_bytes().to_vec();
                        let (handle, guard) = self.connections.register(pid, key);
                        client.session_extensions().insert(handle);
                        client.session_extensions().insert(guard);
                        let session: Arc<Session> = Arc::new(self.engine.session(&user));
                        self.sessions.register(pid, secret, &session);
                        client.session_extensions().insert(session);
                        tracing::info!(user = %user, peer = %client.socket_addr(), "login");
                        finish_authentication(client, &Parameters).await?;
                    }
                    _ => return Err(protocol("unexpected authentication message".into())),
                }
            }
            _ => {}
        }
        Ok(())
    }
}
