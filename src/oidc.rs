//! Single sign-on: OpenID Connect ID or access tokens (JWTs) issued by the
//! region's identity provider, checked against its published keys (a JWKS
//! file, or its `jwks_uri`, fetched again as the provider rotates keys:
//! [`SingleSignOn`]) and mapped to a tautan user by one claim.
//!
//! A token is accepted only when its signature verifies under a key of the
//! set with an asymmetric algorithm that key's type allows (RSA: RS*/PS*,
//! EC: ES256/ES384, OKP: EdDSA; the header's `alg` cannot choose another,
//! and symmetric `oct` keys are refused when the set is loaded), its `iss`
//! and `aud` are the configured ones, it has not expired (`exp` is
//! required; 60 s of clock skew), and the user its claim names exists in
//! `federation.toml` — or, with `users_from_claims`, its claims give the
//! user at least one role. Roles come from the config's `[users]` and from
//! the groups of `roles_claim` that `role_map` maps (a group the custodian
//! did not map gives nothing); attributes from `[users]` and, for those it
//! does not set, from `attribute_claims` ([`Identity`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::OidcConfig;
use crate::grants::Identity;

/// The identity provider's keys and what a token must say.
#[derive(Clone)]
pub struct Oidc {
    keys: Vec<(Option<String>, DecodingKey, Vec<Algorithm>)>,
    issuer: String,
    audience: String,
    user_claim: String,
    roles_claim: Option<String>,
    role_map: BTreeMap<String, String>,
    attribute_claims: BTreeMap<String, String>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// The algorithms a key of this type may verify.
fn algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    use Algorithm::*;
    let allowed = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(_) => vec![ES256, ES384],
        AlgorithmParameters::OctetKeyPair(_) => vec![EdDSA],
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "a symmetric (oct) key: an identity provider's tokens are checked with public keys only"
                    .into(),
            )
        }
    };
    // A key that names its algorithm verifies that one only.
    match jwk.common.key_algorithm.map(|a| format!("{a:?}")) {
        Some(named) => Ok(allowed
            .into_iter()
            .filter(|a| format!("{a:?}") == named)
            .collect()),
        None => Ok(allowed),
    }
}

/// Single sign-on as configured: the key set in force, and where it is
/// read again from when the provider publishes it at a URL.
pub struct SingleSignOn {
    config: OidcConfig,
    /// The key set's URL (`jwks_url`), if it is fetched.
    url: Option<String>,
    /// The verifier over the last key set read (none until a fetch from
    /// `jwks_url` succeeds: JWT logins are refused until then).
    current: RwLock<Option<Arc<Oidc>>>,
    /// When an unknown key id last caused a fetch: at most one a minute.
    fetched: Mutex<Option<Instant>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for SingleSignOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleSignOn")
            .field("issuer", &self.config.issuer)
            .field("url", &self.url)
            .finish()
    }
}

/// The longest a key set may be (bytes).
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The least time between two fetches caused by unknown key ids.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

impl SingleSignOn {
    /// Single sign-on per `config` (a `jwks` path relative to `base`, or a
    /// `jwks_url`, fetched now: a provider that does not answer leaves JWT
    /// logins refused until a later fetch succeeds, and the federation
    /// starts anyway).
    pub async fn start(config: &OidcConfig, base: &Path) -> Result<Arc<SingleSignOn>, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("[http.oidc] HTTP client: {e}"))?;
        let sso = Arc::new(SingleSignOn {
            config: config.clone(),
            url: config.jwks_url.clone(),
            current: RwLock::new(None),
            fetched: Mutex::new(None),
            client,
        });
        match (&config.jwks, &config.jwks_url) {
            (Some(path), None) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("[http.oidc] jwks {}: {e}", path.display()))?;
                let oidc = Oidc::from_jwks(&text, config)
                    .map_err(|e| format!("[http.oidc] jwks {}: {e}", path.display()))?;
                sso.install(oidc);
            }
            (None, Some(url)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!(
                        "[http.oidc] jwks_url {url:?} is not an http(s) URL"
                    ));
                }
                if let Err(e) = sso.refresh().await {
                    tracing::warn!(error = %e, "single sign-on keys not loaded; JWT logins are refused until they are");
                }
            }
            _ => return Err("[http.oidc]: give either `jwks` (a file) or `jwks_url`".into()),
        }
        Ok(sso)
    }

    fn install(&self, oidc: Oidc) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(oidc));
    }

    /// Fetches the key set from `jwks_url` and puts it in force; the set in
    /// force stays when the fetch or the set is bad.
    pub async fn refresh(&self) -> Result<(), String> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("jwks_url {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("jwks_url {url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("jwks_url {url}: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(format!("jwks_url {url}: the key set is over 1 MiB"));
            }
        }
        let text = String::from_utf8(body).map_err(|_| format!("jwks_url {url}: not UTF-8"))?;
        let oidc =
            Oidc::from_jwks(&text, &self.config).map_err(|e| format!("jwks_url {url}: {e}"))?;
        tracing::info!(url = %url, keys = oidc.keys.len(), "single sign-on keys loaded");
        self.install(oidc);
        Ok(())
    }

    /// Fetches `jwks_url` again every `jwks_refresh_secs` while the
    /// single sign-on is in use.
    pub fn spawn_refresh(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.url.as_ref()?;
        let every = Duration::from_secs(self.config.jwks_refresh_secs.max(10));
        let weak = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(sso) = weak.upgrade() else { return };
                if let Err(e) = sso.refresh().await {
                    tracing::warn!(error = %e, "single sign-on keys not refreshed; the last ones stay");
                }
            }
        }))
    }

    /// Whether a token may log in a user who is not in `[users]`.
    pub fn users_from_claims(&self) -> bool {
        self.config.users_from_claims
    }

    /// Who a token says its bearer is (the user, and the roles and
    /// attributes its claims give), once it is verified; why not
    /// otherwise. A token naming a key id the set does not hold fetches the
    /// set again first (the provider rotated its keys), at most once a
    /// minute.
    pub async fn identity(&self, token: &str) -> Result<Identity, String> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        let known = current.as_ref().is_some_and(|o| {
            kid.as_ref()
                .is_none_or(|k| o.keys.iter().any(|(have, _, _)| have.as_ref() == Some(k)))
        });
        let recently = self
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < REFETCH_AT_MOST_EVERY);
        if !known && self.url.is_some() && !recently {
            *self.fetched.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "single sign-on keys not refreshed");
            }
        }
        let current = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match current {
            Some(oidc) => oidc.identity(token),
            None => Err("the identity provider's keys are not loaded".into()),
        }
    }
}

impl Oidc {
    /// The verifier for a JWKS document.
    pub fn from_jwks(jwks: &str, config: &OidcConfig) -> Result<Oidc, String> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("not a JWK set: {e}"))?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let algs = algorithms(jwk).map_err(|e| format!("key {i}: {e}"))?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i}: {e}"))?;
            keys.push((jwk.common.key_id.clone(), key, algs));
        }
        if keys.is_empty() {
            return Err("the set has no keys".into());
        }
        Ok(Oidc {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            user_claim: config.user_claim.clone(),
            roles_claim: config.roles_claim.clone(),
            role_map: config.role_map.clone(),
            attribute_claims: config.attribute_claims.clone(),
        })
    }

    /// The user a token names, once it is verified; why not otherwise.
    pub fn user(&self, token: &str) -> Result<String, String> {
        self.identity(token).map(|i| i.user)
    }

    /// Who a verified token says its bearer is: the user its user claim
    /// names, the roles `role_map` gives for the groups of its roles claim,
    /// and the attributes of `attribute_claims` it carries.
    pub fn identity(&self, token: &str) -> Result<Identity, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        let candidates = self.keys.iter().filter(|(kid, _, algs)| {
            algs.contains(&header.alg)
                && match (&header.kid, kid) {
                    (Some(want), Some(have)) => want == have,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        });
        let mut last = format!("no key of the set verifies {:?} tokens", header.alg);
        for (_, key, _) in candidates {
            let mut validation = Validation::new(header.alg);
            validation.set_issuer(&[&self.issuer]);
            validation.set_audience(&[&self.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.leeway = 60;
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                token,
                key,
                &validation,
            ) {
                Ok(data) => return self.read_claims(&data.claims),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

impl Oidc {
    fn read_claims(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Identity, String> {
        let user = match claim(claims, &self.user_claim) {
            Some(serde_json::Value::String(user)) if !user.is_empty() => user.clone(),
            _ => return Err(format!("the token has no `{}` claim", self.user_claim)),
        };
        let mut roles: Vec<String> = Vec::new();
        if let Some(groups) = self.roles_claim.as_deref().and_then(|c| claim(claims, c)) {
            for group in strings(groups) {
                if let Some(role) = self.role_map.get(&group) {
                    if !roles.contains(role) {
                        roles.push(role.clone());
                    }
                }
            }
        }
        let attributes = self
            .attribute_claims
            .iter()
            .filter_map(|(name, c)| {
                let values = strings(claim(claims, c)?);
                (!values.is_empty()).then(|| (name.clone(), values))
            })
            .collect();
        Ok(Identity {
            user,
            roles,
            attributes,
        })
    }
}

/// The claim `name` of `claims`: the key itself (claim names may hold dots,
/// as URLs do), else a dotted path into nested objects.
fn claim<'a>(
    claims: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'a serde_json::Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut at = claims.get(parts.next()?)?;
    for part in parts {
        at = at.as_object()?.get(part)?;
    }
    Some(at)
}

/// The names a claim value holds: a list of strings (or numbers), or one
/// string of names separated by spaces or commas (as OAuth's `scope`).
fn strings(value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(one)
            .filter(|s| !s.is_empty())
            .collect(),
        Value::String(s) => s
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect(),
        other => one(other).into_iter().collect(),
    }
}

/// Whether a bearer credential looks like a JWT (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://sso.example.go.id/realms/pemda".into(),
            audience: "tautan".into(),
            jwks: Some("jwks.json".into()),
            jwks_url: None,
            jwks_refresh_secs: 3600,
            user_claim: "preferred_username".into(),
            roles_claim: Some("realm_access.roles".into()),
            role_map: [
                ("dinkes-analis".to_string(), "analis_kesehatan".to_string()),
                ("pemkot-analis".to_string(), "analis_kota".to_string()),
            ]
            .into_iter()
            .collect(),
            attribute_claims: [("wilayah".to_string(), "kode_wilayah".to_string())]
                .into_iter()
                .collect(),
            users_from_claims: false,
        }
    }

    #[test]
    fn claims_give_mapped_roles_and_attributes_and_unmapped_groups_give_nothing() {
        let (jwk, signer) = keypair("k1");
        let oidc = Oidc::from_jwks(&json!({ "keys": [jwk] }).to_string(), &config()).unwrap();
        let base = json!({
            "iss": "https://sso.example.go.id/realms/pemda",
            "aud": "tautan",
            "exp": now() + 600,
            "preferred_username": "budi",
        });
        let with = |extra: serde_json::Value| {
            let mut c = base.clone();
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            oidc.identity(&token(&signer, "k1", c)).unwrap()
        };
        let id = with(json!({
            "realm_access": { "roles": ["pemkot-analis", "walidata", "offline_access"] },
            "kode_wilayah": ["31.71.01", "31.71.02"],
        }));
        assert_eq!(id.user, "budi");
        // `walidata` is a group the map does not name: no role from it.
        assert_eq!(id.roles, vec!["analis_kota".to_string()]);
        assert_eq!(
            id.attributes.get("wilayah"),
            Some(&vec!["31.71.01".to_string(), "31.71.02".to_string()])
        );
        // One string of names; a number as an attribute.
        let id = with(json!({
            "realm_access": { "roles": "dinkes-analis pemkot-analis" },
            "kode_wilayah": 3171,
        }));
        assert_eq!(
            id.roles,
            vec!["analis_kesehatan".to_string(), "analis_kota".to_string()]
        );
        assert_eq!(
            id.attributes.get("wilayah"),
            Some(&vec!["3171".to_string()])
        );
        // No such claims: no roles, no attributes.
        let id = with(json!({}));
        assert!(id.roles.is_empty() && id.attributes.is_empty());
        // A claim of the wrong shape gives nothing either.
        let id = with(json!({ "realm_access": { "roles": { "x": 1 } }, "kode_wilayah": true }));
        assert!(id.roles.is_empty() && id.attributes.is_empty());
    }

    /// A key pair: the JWKS with its public half, and a signer.
    fn keypair(kid: &str) -> (serde_json::Value, EncodingKey) {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let der = key.to_pkcs8_der().unwrap();
        (
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig" }),
            EncodingKey::from_ed_der(der.as_bytes()),
        )
    }

    fn token(signer: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        encode(&header, &claims, signer).unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_token_of_the_provider_names_its_user_and_nothing_else_passes() {
        let (jwk, signer) = keypair("k1");
        let (_, stranger) = keypair("k1");
        let public_x = jwk["x"].as_str().unwrap().to_string();
        let oidc = Oidc::from_jwks(&json!({ "keys": [jwk] }).to_string(), &config()).unwrap();
        let good = json!({
            "iss": "https://sso.example.go.id/realms/pemda",
            "aud": "tautan",
            "exp": now() + 600,
            "preferred_username": "analis_dinkes",
        });
        assert_eq!(
            oidc.user(&token(&signer, "k1", good.clone())),
            Ok("analis_dinkes".into())
        );
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        for (why, t) in [
            ("another key", token(&stranger, "k1", good.clone())),
            (
                "expired",
                token(&signer, "k1", with("exp", json!(now() - 3600))),
            ),
            (
                "another issuer",
                token(&signer, "k1", with("iss", json!("https://evil"))),
            ),
            (
                "another audience",
                token(&signer, "k1", with("aud", json!("other"))),
            ),
            (
                "no user",
                token(&signer, "k1", with("preferred_username", json!(""))),
            ),
            ("unknown kid", token(&signer, "k2", good.clone())),
        ] {
            assert!(oidc.user(&t).is_err(), "{why}");
        }
        // No exp at all.
        let mut no_exp = good.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(oidc.user(&token(&signer, "k1", no_exp)).is_err());
        // A token whose header asks for HMAC with the public key as secret.
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("k1".into());
        let forged = encode(&hs, &good, &EncodingKey::from_secret(public_x.as_bytes())).unwrap();
        assert!(oidc.user(&forged).is_err());
        // Tampered payload.
        let t = token(&signer, "k1", good);
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            br#"{"iss":"https://sso.example.go.id/realms/pemda","aud":"tautan","exp":9999999999,"preferred_username":"walidata"}"#,
        );
        assert!(oidc.user(&parts.join(".")).is_err());
    }

    #[test]
    fn a_symmetric_key_set_is_refused() {
        let set = json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "kid": "h" }] });
        assert!(Oidc::from_jwks(&set.to_string(), &config()).is_err());
        assert!(Oidc::from_jwks("{\"keys\": []}", &config()).is_err());
        assert!(Oidc::from_jwks("not json", &config()).is_err());
    }
}
