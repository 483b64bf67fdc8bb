//! Who can log in, and with what: built whole from the config, swapped by
//! the engine when the policy is reloaded (a changed password, a new or
//! revoked API token, a removed user count from the next login).

use std::collections::{BTreeMap, BTreeSet};

use crate::auth::{mock_salt, mock_secret, token_hash, ScramVerifier, DEFAULT_ITERATIONS};
use crate::config::FederationConfig;

/// Who can log in, and with what, as the config says: each user's SCRAM
/// verifier (stored, or derived from a password in the environment), API
/// token hashes, and the secret unknown users' mock salts derive from.
/// Built whole from a config; the engine swaps it on reload.
#[derive(Debug, Clone)]
pub struct Logins {
    verifiers: BTreeMap<String, ScramVerifier>,
    tokens: BTreeMap<String, String>,
    users: BTreeSet<String>,
    mock_secret: [u8; 32],
}

impl Logins {
    /// The logins of `config`.
    pub fn from_config(config: &FederationConfig) -> Logins {
        // Each user's secret: a stored verifier, or a password from the
        // environment. The mock secret (unknown users' salts) is derived
        // from all of them, and so are the salts of environment passwords:
        // every salt a login sees is the same from one restart to the next.
        let mut secrets: Vec<(String, Result<ScramVerifier, String>)> = Vec::new();
        for (name, user) in &config.users {
            let u = user.get_ref();
            match (&u.password, &u.password_env) {
                (Some(text), _) => {
                    if let Ok(v) = ScramVerifier::parse(text) {
                        secrets.push((name.clone(), Ok(v)));
                    }
                }
                (None, Some(var)) => match std::env::var(var) {
                    Ok(p) => secrets.push((name.clone(), Err(p))),
                    Err(_) => {
                        tracing::warn!(user = %name, var = %var, "password variable not set; user cannot log in");
                    }
                },
                (None, None) => {}
            }
        }
        let texts: Vec<(String, String)> = secrets
            .iter()
            .map(|(name, s)| {
                let text = match s {
                    Ok(v) => v.to_string(),
                    Err(password) => password.clone(),
                };
                (name.clone(), text)
            })
            .collect();
        let mock_secret = mock_secret(texts.iter().map(|(u, t)| (u.as_str(), t.as_str())));
        let mut verifiers = BTreeMap::new();
        for (name, secret) in secrets {
            let v = match secret {
                Ok(v) => v,
                Err(password) => ScramVerifier::with_salt(
                    &password,
                    &mock_salt(&mock_secret, &name),
                    DEFAULT_ITERATIONS,
                ),
            };
            verifiers.insert(name, v);
        }
        let tokens = config
            .users
            .iter()
            .flat_map(|(name, u)| {
                u.get_ref()
                    .tokens
                    .iter()
                    .map(move |t| (t.to_ascii_lowercase(), name.clone()))
            })
            .collect();
        Logins {
            verifiers,
            tokens,
            users: config.users.keys().cloned().collect(),
            mock_secret,
        }
    }

    /// The verifier of `user`, if the user exists and can log in.
    pub fn verifier(&self, user: &str) -> Option<ScramVerifier> {
        self.verifiers.get(user).cloned()
    }

    /// What a login as `user` is checked against: the user's verifier, or
    /// for a user that does not exist (or cannot log in) a mock one with a
    /// stable salt ([`ScramVerifier::mock`]). `true` when it is real.
    pub fn login_verifier(&self, user: &str) -> (ScramVerifier, bool) {
        match self.verifiers.get(user) {
            Some(v) => (v.clone(), true),
            None => (ScramVerifier::mock(&self.mock_secret, user), false),
        }
    }

    /// The user an API token belongs to.
    pub fn token_user(&self, token: &str) -> Option<String> {
        self.tokens.get(&token_hash(token)).cloned()
    }

    /// Whether `user` is a user of the config.
    pub fn knows(&self, user: &str) -> bool {
        self.users.contains(user)
    }
}
