//! Who is calling: HTTP Basic with the user's own password, checked against
//! the same stored SCRAM verifier the PostgreSQL door uses (the password is
//! derived and compared, never stored), or `Authorization: Bearer` with an
//! API token of the user (`tautan token new`; only its SHA-256 is in the
//! config) or a single sign-on JWT of the region's identity provider
//! ([`crate::oidc`]). Each request is a login: recorded
//! in the audit log (refused ones with their reason and address), admitted
//! under the user's connection limit, and its session lives as long as its
//! answer streams.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine as _;

use super::error::ApiError;
use crate::admission::{ConnectionSlot, LoginSlot};
use crate::audit::Origin;
use crate::engine::{Engine, Session, PURPOSE_SETTING};
use crate::error::QueryError;

/// Header naming the purpose of the request, recorded in the audit log
/// (the PostgreSQL door's `SET tautan.purpose`).
pub const PURPOSE_HEADER: &str = "x-tautan-purpose";

/// An authenticated caller: the session the request runs in, and the
/// connection slots it holds until its answer is sent.
pub struct Caller {
    /// The session (the login is recorded; dropping the last handle
    /// records the logout).
    pub session: Arc<Session>,
    _login: LoginSlot,
    _connection: ConnectionSlot,
}

/// What an `Authorization` header carries.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    /// `Basic`: a user and a password.
    Password(String, String),
    /// `Bearer`: an API token.
    Token(String),
}

/// The credentials of the `Authorization` header, if it holds any tautan
/// reads.
fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Token(rest.trim().to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    // Padding optional: Go's Flight client (ADBC) sends it unpadded.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = lenient.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials::Password(
        user.to_string(),
        password.to_string(),
    ))
}

/// Authenticates the request and opens its session.
pub async fn authenticate(
    engine: &Arc<Engine>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Caller, ApiError> {
    let origin = Origin::new("http", Some(peer.to_string()));
    let Some(credentials) = credentials(headers) else {
        return Err(ApiError::unauthorized());
    };
    let connection = engine.admission.connection().ok_or_else(|| {
        QueryError::new(
            "53300",
            "sorry, too many clients already (the server's max_connections)",
        )
    })?;
    let mut identity = None;
    let user = match credentials {
        Credentials::Password(user, password) => {
            // An unknown user is checked against a mock verifier: the same
            // work, the same answer, as a wrong password.
            let (verifier, known) = engine.login_verifier(&user);
            let accepted =
                tokio::task::spawn_blocking(move || verifier.accepts_password(&password))
                    .await
                    .unwrap_or(false);
            if !(accepted && known) {
                let reason = if known {
                    "wrong password"
                } else {
                    "unknown user"
                };
                tracing::warn!(user = %user, peer = %peer, "HTTP login failed");
                engine.trail().login_failed(&user, &origin, reason).await;
                return Err(ApiError::unauthorized());
            }
            user
        }
        Credentials::Token(token) if crate::oidc::looks_like_jwt(&token) => {
            match engine.jwt_identity(&token).await {
                Ok(id) => identity.insert(id).user.clone(),
                Err(why) => {
                    tracing::warn!(peer = %peer, reason = %why, "HTTP login with a JWT refused");
                    engine
                        .trail()
                        .login_failed("", &origin, "single sign-on token refused")
                        .await;
                    return Err(ApiError::unauthorized());
                }
            }
        }
        Credentials::Token(token) => match engine.token_user(&token) {
            Some(user) => user.to_string(),
            None => {
                tracing::warn!(peer = %peer, "HTTP login with an unknown token");
                engine
                    .trail()
                    .login_failed("", &origin, "unknown token")
                    .await;
                return Err(ApiError::unauthorized());
            }
        },
    };
    let login = match engine.admission.login(&user) {
        Ok(login) => login,
        Err(e) => {
            engine
                .trail()
                .login_failed(&user, &origin, "too many connections")
                .await;
            return Err(QueryError::new("53300", e.to_string()).into());
        }
    };
    let session = Arc::new(match &identity {
        Some(identity) => engine.session_as(identity),
        None => engine.session(&user),
    });
    if let Some(purpose) = headers.get(PURPOSE_HEADER) {
        let purpose = purpose
            .to_str()
            .map_err(|_| ApiError::bad_request(format!("{PURPOSE_HEADER} must be text")))?;
        session.set(PURPOSE_SETTING, purpose)?;
    }
    if let Some(agent) = headers
        .get(header::USER_AGENT)
        .and_then(|a| a.to_str().ok())
    {
        // Shortened as PostgreSQL shortens application_name (63 bytes).
        let agent: String = agent.chars().take(63).collect();
        let _ = session.set("application_name", &agent);
    }
    session.set_origin(origin);
    session.record_login().await?;
    Ok(Caller {
        session,
        _login: login,
        _connection: connection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use base64::engine::general_purpose::STANDARD as B64;

    #[test]
    fn basic_and_bearer_credentials_are_read_and_anything_else_is_not() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            credentials(&h)
        };
        let encoded = B64.encode("walidata:pass:with:colons");
        assert_eq!(
            with(&format!("Basic {encoded}")),
            Some(Credentials::Password(
                "walidata".into(),
                "pass:with:colons".into()
            ))
        );
        assert_eq!(
            with(&format!("basic   {encoded}")),
            Some(Credentials::Password(
                "walidata".into(),
                "pass:with:colons".into()
            ))
        );
        assert_eq!(
            with("Bearer tautan_abc"),
            Some(Credentials::Token("tautan_abc".into()))
        );
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("dinsos:x");
        assert_eq!(
            with(&format!("Basic {unpadded}")),
            Some(Credentials::Password("dinsos".into(), "x".into()))
        );
        assert_eq!(with("Digest abc"), None);
        assert_eq!(with("Basic !!!not-base64"), None);
        assert_eq!(with(&format!("Basic {}", B64.encode("no-colon"))), None);
        assert_eq!(credentials(&HeaderMap::new()), None);
    }
}
