//! Password authentication: SCRAM-SHA-256 against stored verifiers.
//!
//! tautan stores what PostgreSQL stores in `pg_authid` — a verifier
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` — never a
//! password or anything equivalent to one. (pgwire's own SCRAM handler wants
//! the salted password, which would let anyone who reads the config log in;
//! so the exchange is done here, and pgwire is used for the rest of the
//! startup.) `tautan passwd` prints a verifier for a password.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Iterations used for new verifiers (PostgreSQL's default).
pub const DEFAULT_ITERATIONS: u32 = 4096;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any size"),
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// A stored SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// `SHA256(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl ScramVerifier {
    /// Derives a verifier for `password` with a fresh random salt.
    pub fn new(password: &str, iterations: u32) -> Self {
        let salt: [u8; 16] = rand::random();
        Self::with_salt(password, &salt, iterations)
    }

    /// Derives a verifier with a given salt.
    pub fn with_salt(password: &str, salt: &[u8], iterations: u32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        Self {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// Whether `password` is the one this verifier was made from (for
    /// doors where the client sends the password itself, HTTP Basic over
    /// TLS): the same derivation, compared in constant time. Costs the
    /// verifier's PBKDF2 iterations; run it off the async threads.
    pub fn accepts_password(&self, password: &str) -> bool {
        let derived = Self::with_salt(password, &self.salt, self.iterations);
        let diff = derived
            .stored_key
            .iter()
            .zip(self.stored_key.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }

    /// Parses `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (run `tautan passwd`)".to_string()
        };
        let rest = text.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (iter_salt, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iter, salt) = iter_salt.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let iterations: u32 = iter.parse().map_err(|_| bad())?;
        if iterations == 0 {
            return Err(bad());
        }
        let salt = B64.decode(salt).map_err(|_| bad())?;
        let key = |s: &str| -> Result<[u8; 32], String> {
            B64.decode(s)
                .map_err(|_| bad())?
                .try_into()
                .map_err(|_| bad())
        };
        Ok(Self {
            iterations,
            salt,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }

    /// The verifier an unknown user is answered with, so that the exchange
    /// does not reveal whether a user exists. Like PostgreSQL's
    /// `mock_scram_secret`: the salt is derived from a server secret and
    /// the user name ([`mock_salt`]), so every attempt as the same name
    /// gets the same salt, as a real user does; the iteration count is the
    /// default; the keys (derived the same way) match no proof. The
    /// exchange then runs exactly as for a real user: the same messages,
    /// and the proof checked with the same HMAC and SHA-256 work (neither
    /// path runs PBKDF2 at login: a real user's keys are stored).
    pub fn mock(secret: &[u8; 32], user: &str) -> Self {
        let key = |label: &[u8]| {
            let mut msg = label.to_vec();
            msg.extend_from_slice(user.as_bytes());
            hmac(secret, &msg)
        };
        Self {
            iterations: DEFAULT_ITERATIONS,
            salt: mock_salt(secret, user).to_vec(),
            stored_key: key(b"tautan mock StoredKey\0"),
            server_key: key(b"tautan mock ServerKey\0"),
        }
    }
}

/// The salt of user `user` when no stored one applies: the first 16 bytes
/// of HMAC-SHA-256(secret, user) (PostgreSQL's `scram_mock_salt` hashes
/// the name with a cluster nonce).
pub fn mock_salt(secret: &[u8; 32], user: &str) -> [u8; 16] {
    let mut msg = b"tautan mock salt\0".to_vec();
    msg.extend_from_slice(user.as_bytes());
    let mac = hmac(secret, &msg);
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&mac[..16]);
    salt
}

/// The server secret mock salts are derived from: SHA-256 over what only
/// the server knows and what stays the same across restarts — every
/// user's stored verifier and, for users whose password comes from the
/// environment, that password — so an unknown user's salt is as stable
/// as a real one's (PostgreSQL keeps its nonce in `pg_control`).
pub fn mock_secret<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"tautan mock secret\0");
    for (user, secret) in secrets {
        hash.update((user.len() as u64).to_be_bytes());
        hash.update(user.as_bytes());
        hash.update((secret.len() as u64).to_be_bytes());
        hash.update(secret.as_bytes());
    }
    hash.finalize().into()
}

impl std::fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// Server side of one SCRAM exchange, after the client's first message.
#[derive(Debug)]
pub struct ScramExchange {
    verifier: ScramVerifier,
    client_first_bare: String,
    gs2_header: String,
    server_first: String,
    nonce: String,
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    /// The message does not follow RFC 5802.
    Protocol(String),
    /// The proof does not match: wrong password.
    WrongPassword,
}

impl ScramExchange {
    /// Handles client-first (`n,,n=user,r=nonce`); returns the exchange and
    /// the server-first message.
    pub fn start(
        client_first: &str,
        verifier: ScramVerifier,
    ) -> Result<(Self, String), ScramError> {
        let proto = |m: &str| ScramError::Protocol(m.to_string());
        let mut parts = client_first.splitn(3, ',');
        let cb = parts
            .next()
            .ok_or_else(|| proto("empty client-first message"))?;
        let authzid = parts.next().ok_or_else(|| proto("missing authzid"))?;
        let bare = parts
            .next()
            .ok_or_else(|| proto("missing client-first-bare"))?;
        if cb.starts_with("p=") {
            return Err(proto("channel binding is not offered on this connection"));
        }
        if cb != "n" && cb != "y" {
            return Err(proto("bad gs2 header"));
        }
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .ok_or_else(|| proto("missing client nonce"))?;
        let server_nonce: [u8; 18] = rand::random();
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&verifier.salt),
            verifier.iterations
        );
        Ok((
            Self {
                verifier,
                client_first_bare: bare.to_string(),
                gs2_header: format!("{cb},{authzid},"),
                server_first: server_first.clone(),
                nonce,
            },
            server_first,
        ))
    }

    /// Handles client-final (`c=..,r=..,p=..`); returns server-final when
    /// the proof is right.
    pub fn finish(&self, client_final: &str) -> Result<String, ScramError> {
        let proto = |m: &str| ScramError::Protocol(m.to_string());
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or_else(|| proto("missing proof"))?;
        let mut channel = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                channel = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        if channel != Some(B64.encode(self.gs2_header.as_bytes()).as_str()) {
            return Err(proto("channel binding mismatch"));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(proto("nonce mismatch"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| proto("proof is not base64"))?;
        if proof.len() != 32 {
            return Err(ScramError::WrongPassword);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let client_signature = hmac(&self.verifier.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        // Constant-time comparison.
        let diff = stored
            .iter()
            .zip(self.verifier.stored_key.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(ScramError::WrongPassword);
        }
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

/// The prefix of an API token (so a leaked one is recognizable by secret
/// scanners).
pub const TOKEN_PREFIX: &str = "tautan_";

/// A new API token and the form stored in `federation.toml`
/// (`sha256:<hex>`): the token itself is shown once and never stored.
pub fn new_token() -> (String, String) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let secret: [u8; 32] = rand::random();
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let stored = token_hash(&token);
    (token, stored)
}

/// The stored form of `token`: `sha256:` and the hex SHA-256 of its text.
/// (A token is 256 random bits: a fast hash loses nothing, unlike a
/// password, which needs the slow derivation of a verifier.)
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `stored` is a stored token hash (`sha256:` and 64 hex digits).
pub fn is_token_hash(stored: &str) -> bool {
    stored
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_accepted_by_its_own_verifier_only() {
        let v = ScramVerifier::new("rahasia", 4096);
        assert!(v.accepts_password("rahasia"));
        assert!(!v.accepts_password("Rahasia"));
        assert!(!v.accepts_password(""));
        // The stored form, parsed back, accepts it too.
        let parsed = ScramVerifier::parse(&v.to_string()).unwrap();
        assert!(parsed.accepts_password("rahasia"));
    }

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let (a, stored_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert!(is_token_hash(&stored_a));
        assert_eq!(token_hash(&a), stored_a);
        assert!(!stored_a.contains(&a[TOKEN_PREFIX.len()..]));
        assert!(!is_token_hash("sha256:xyz"));
        assert!(!is_token_hash(&a));
    }

    /// RFC 7677 test vector: user "user", password "pencil".
    #[test]
    fn rfc7677_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = ScramVerifier::with_salt("pencil", &salt, 4096);
        let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let (mut ex, _) = ScramExchange::start(client_first, v).unwrap();
        // Pin the server nonce to the RFC's.
        ex.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        ex.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", ex.nonce);
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            ex.finish(client_final).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let wrong = client_final.replace("p=dH", "p=dX");
        assert!(ex.finish(&wrong).is_err());
    }

    #[test]
    fn mock_verifiers_are_stable_per_user_and_match_no_proof() {
        let secret = mock_secret([("walidata", "SCRAM-SHA-256$4096:...")]);
        let a = ScramVerifier::mock(&secret, "nobody");
        assert_eq!(a, ScramVerifier::mock(&secret, "nobody"));
        assert_ne!(a.salt, ScramVerifier::mock(&secret, "somebody").salt);
        assert_ne!(a.salt, ScramVerifier::mock(&[0; 32], "nobody").salt);
        assert_eq!((a.salt.len(), a.iterations), (16, DEFAULT_ITERATIONS));
        // The exchange answers like a real user's, and the proof fails.
        let real = ScramVerifier::new("pencil", DEFAULT_ITERATIONS);
        let first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let (_, real_first) = ScramExchange::start(first, real).unwrap();
        let (ex, mock_first) = ScramExchange::start(first, a).unwrap();
        let shape = |m: &str| {
            m.split(',')
                .map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.len())))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&real_first), shape(&mock_first));
        let proof = B64.encode([7u8; 32]);
        let client_final = format!("c=biws,r={},p={proof}", ex.nonce);
        assert_eq!(ex.finish(&client_final), Err(ScramError::WrongPassword));
    }

    #[test]
    fn verifier_round_trips_through_text() {
        let v = ScramVerifier::new("rahasia", 4096);
        assert_eq!(ScramVerifier::parse(&v.to_string()).unwrap(), v);
        assert!(ScramVerifier::parse("md5abc").is_err());
    }
}
