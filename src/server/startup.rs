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
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use crate::auth::{ScramError, ScramExchange};
use crate::engine::{Engine, Session};
use crate::server::cancel::LiveSessions;

/// Where the exchange stands.
enum Step {
    Initial,
    /// Mechanism list sent; waiting for the client-first message.
    MechanismsSent,
    /// Server-first sent.
    Challenged(Box<ScramExchange>, Option<String>),
    /// A password asked for in clear (TLS with single sign-on on).
    PasswordRequested,
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
                if self.engine.single_sign_on() && client.is_secure() {
                    // Over TLS with single sign-on on, the password comes in
                    // clear so that it can be an identity provider's token
                    // (a user's own password is checked too).
                    client
                        .send(PgWireBackendMessage::Authentication(
                            Authentication::CleartextPassword,
                        ))
                        .await?;
                    *step = Step::PasswordRequested;
                } else {
                    client
                        .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                            vec!["SCRAM-SHA-256".to_string()],
                        )))
                        .await?;
                    *step = Step::MechanismsSent;
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                match std::mem::replace(&mut *step, Step::Done) {
                    Step::MechanismsSent => {
                        let (mechanism, data) = sasl_initial_response(msg)?;
                        if mechanism != "SCRAM-SHA-256" {
                            return Err(protocol(format!(
                                "unsupported SASL mechanism {mechanism}"
                            )));
                        }
                        let text = String::from_utf8_lossy(&data).to_string();
                        // An unknown user gets a mock verifier with a
                        // stable salt: the same answers as a real user.
                        let (verifier, known) = self.engine.login_verifier(&user);
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
                        let text = String::from_utf8_lossy(&raw_body(msg)?).to_string();
                        let origin = crate::audit::Origin::new(
                            "postgres",
                            Some(client.socket_addr().to_string()),
                        );
                        let server_final = match (exchange.finish(&text), known_user) {
                            (Ok(f), Some(_)) => f,
                            (Err(ScramError::Protocol(m)), _) => return Err(protocol(m)),
                            (result, known) => {
                                tracing::warn!(user = %user, peer = %client.socket_addr(), "login failed");
                                let reason = match (result, known) {
                                    (_, None) => "unknown user",
                                    _ => "wrong password",
                                };
                                self.engine
                                    .trail()
                                    .login_failed(&user, &origin, reason)
                                    .await;
                                return Err(auth_failed(&user));
                            }
                        };
                        let server_final =
                            Authentication::SASLFinal(server_final.into_bytes().into());
                        self.admit(client, &user, origin, Some(server_final), None)
                            .await?;
                    }
                    Step::PasswordRequested => {
                        let origin = crate::audit::Origin::new(
                            "postgres",
                            Some(client.socket_addr().to_string()),
                        );
                        let password = cleartext_password(msg)?;
                        let identity = match self.check_password(&user, password).await {
                            Ok(identity) => identity,
                            Err(reason) => {
                                tracing::warn!(user = %user, peer = %client.socket_addr(), reason, "login failed");
                                self.engine
                                    .trail()
                                    .login_failed(&user, &origin, reason)
                                    .await;
                                return Err(auth_failed(&user));
                            }
                        };
                        self.admit(client, &user, origin, None, identity).await?;
                    }
                    _ => return Err(protocol("unexpected authentication message".into())),
                }
            }
            // Anything else before the login completes: PostgreSQL ends
            // the connection ("expected SASL response").
            _ => {
                *step = Step::Done;
                return Err(protocol("expected SASL response".into()));
            }
        }
        Ok(())
    }
}

impl ScramStartup {
    /// Checks a password sent in clear (over TLS, when single sign-on is
    /// on): a JWT of the identity provider naming this user, or the user's
    /// own password against the stored verifier. What the token said of
    /// the user, if it was one; the reason when refused.
    async fn check_password(
        &self,
        user: &str,
        password: String,
    ) -> Result<Option<crate::grants::Identity>, &'static str> {
        if crate::oidc::looks_like_jwt(&password) {
            return match self.engine.jwt_identity(&password).await {
                Ok(identity) if identity.user == user => Ok(Some(identity)),
                Ok(_) => Err("single sign-on token of another user"),
                Err(_) => Err("single sign-on token refused"),
            };
        }
        let (verifier, known) = self.engine.login_verifier(user);
        let accepted = tokio::task::spawn_blocking(move || verifier.accepts_password(&password))
            .await
            .unwrap_or(false);
        match (accepted, known) {
            (true, true) => Ok(None),
            (_, false) => Err("unknown user"),
            _ => Err("wrong password"),
        }
    }

    /// Completes an authenticated login: the user's connection limit, the
    /// last authentication message (`last_step`, SCRAM's final), the session
    /// with the startup packet's settings, the audit record, then
    /// AuthenticationOk and the parameter statuses. `identity`: what a
    /// single sign-on token said of the user.
    async fn admit<C>(
        &self,
        client: &mut C,
        user: &str,
        origin: crate::audit::Origin,
        last_step: Option<Authentication>,
        identity: Option<crate::grants::Identity>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = user.to_string();
        // The user's own connection limit, checked once
        // they are known to be who they say (as PostgreSQL
        // checks a role's CONNECTION LIMIT).
        let login = match self.engine.admission.login(&user) {
            Ok(login) => login,
            Err(e) => {
                tracing::warn!(user = %user, peer = %client.socket_addr(), limit = e.limit, "login refused: too many connections for the user");
                self.engine
                    .trail()
                    .login_failed(&user, &origin, "too many connections")
                    .await;
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "53300".into(),
                    e.to_string(),
                ))));
            }
        };
        client.session_extensions().insert(login);
        if let Some(last) = last_step {
            client
                .send(PgWireBackendMessage::Authentication(last))
                .await?;
        }
        let (pid, key) = self.pids.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        let secret = key.to_bytes().to_vec();
        let (handle, guard) = self.connections.register(pid, key);
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);
        let session: Arc<Session> = Arc::new(match &identity {
            Some(identity) => self.engine.session_as(identity),
            None => self.engine.session(&user),
        });
        // Settings sent with the startup packet (`options`
        // as PGOPTIONS fills it, and plain parameters such
        // as asyncpg's server_settings) apply as SET would.
        for (name, value) in startup_settings(client.metadata()).map_err(protocol)? {
            session.set(&name, &value).map_err(|e| {
                PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    e.code.clone(),
                    e.message,
                )))
            })?;
        }
        // Recorded before the first statement; a login the
        // audit log cannot take is refused.
        session.set_origin(origin);
        session.record_login().await.map_err(|e| {
            PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                e.code.clone(),
                e.message,
            )))
        })?;
        self.sessions.register(pid, secret, &session);
        client.session_extensions().insert(session);
        tracing::info!(user = %user, peer = %client.socket_addr(), "login");
        finish_authentication(client, &Parameters).await?;
        Ok(())
    }
}

/// The password of a PasswordMessage (NUL-terminated text).
fn cleartext_password(msg: PasswordMessageFamily) -> PgWireResult<String> {
    let body = raw_body(msg)?;
    let end = body
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| protocol("malformed password message".into()))?;
    String::from_utf8(body[..end].to_vec())
        .map_err(|_| protocol("malformed password message".into()))
}

/// The body of a password-family message as the client sent it.
fn raw_body(msg: PasswordMessageFamily) -> PgWireResult<bytes::BytesMut> {
    match msg {
        PasswordMessageFamily::Raw(body) => Ok(body),
        _ => Err(protocol("malformed SASL message".into())),
    }
}

/// The mechanism and data of a SASLInitialResponse, read here from the raw
/// body: pgwire's reader panics on a body shorter than its fields or a
/// data length beyond it.
fn sasl_initial_response(msg: PasswordMessageFamily) -> PgWireResult<(String, Vec<u8>)> {
    let body = raw_body(msg)?;
    let malformed = || protocol("malformed SASL message".into());
    let end = body.iter().position(|b| *b == 0).ok_or_else(malformed)?;
    let mechanism = String::from_utf8_lossy(&body[..end]).to_string();
    let rest = body.get(end + 1..).ok_or_else(malformed)?;
    let (len, data) = match rest {
        [a, b, c, d, data @ ..] => (i32::from_be_bytes([*a, *b, *c, *d]), data),
        _ => return Err(malformed()),
    };
    match len {
        -1 if data.is_empty() => Ok((mechanism, Vec::new())),
        n if usize::try_from(n).ok() == Some(data.len()) => Ok((mechanism, data.to_vec())),
        _ => Err(malformed()),
    }
}

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "options", "replication"];

/// The settings a startup packet asks for: every parameter but the ones
/// naming the connection, and each `-c name=value` / `--name=value` of
/// `options` (PGOPTIONS), whose words split at blanks not escaped with a
/// backslash, as PostgreSQL splits them. Anything else in `options` is
/// refused, as PostgreSQL refuses it.
pub fn startup_settings(
    parameters: &HashMap<String, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = parameters
        .iter()
        .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    out.sort();
    let Some(options) = parameters.get("options") else {
        return Ok(out);
    };
    let words = option_words(options);
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let pair = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "invalid command-line argument for server process: -c".to_string())?
                .as_str()
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest
        } else if let Some(rest) = word.strip_prefix("--") {
            rest
        } else {
            return Err(format!(
                "invalid command-line argument for server process: {word}"
            ));
        };
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("-c {pair} requires a value"))?;
        out.push((
            name.replace('-', "_").to_ascii_lowercase(),
            value.to_string(),
        ));
    }
    Ok(out)
}

/// `options` split into words: blanks separate, `\` escapes the next
/// character.
fn option_words(options: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_as_postgresql_reads_them() {
        let got = startup_settings(&params(&[
            ("user", "u"),
            ("database", "tautan"),
            ("TimeZone", "Asia/Jakarta"),
            (
                "options",
                "-c statement_timeout=5s  -csearch_path=a,b --application-name=my\\ app",
            ),
        ]))
        .expect("valid");
        assert_eq!(
            got,
            vec![
                ("timezone".to_string(), "Asia/Jakarta".to_string()),
                ("statement_timeout".to_string(), "5s".to_string()),
                ("search_path".to_string(), "a,b".to_string()),
                ("application_name".to_string(), "my app".to_string()),
            ]
        );
    }

    #[test]
    fn other_switches_are_refused() {
        for bad in ["-D /tmp", "-c", "-c novalue", "--x"] {
            assert!(
                startup_settings(&params(&[("options", bad)])).is_err(),
                "{bad}"
            );
        }
    }
}
