//! Ed25519 key files for the custodian and the witnesses.
//!
//! `tautan keygen --out <file>` writes two PEM files:
//!
//! - `<file>`: the private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`),
//!   created with mode 0600 and never overwritten;
//! - `<file>.pub`: the public key, SubjectPublicKeyInfo
//!   (`-----BEGIN PUBLIC KEY-----`).
//!
//! Both are what `openssl genpkey -algorithm ed25519` and `openssl pkey
//! -pubout` write, so keys made with OpenSSL work too. Readers also accept a
//! file holding just 64 hex characters (the raw 32-byte key).

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::TryRngCore;

use super::error::AuditError;
use super::hash::{from_hex, to_hex};
use super::Result;

/// A new private key from the operating system's random source.
pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|e| AuditError::Key(format!("no randomness from the system: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The path of the public key next to a private key file: `<file>.pub`.
pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Writes a new key pair: `out` (private, mode 0600) and `out.pub`.
/// Refuses to overwrite either file.
pub fn write_keypair(out: &Path, key: &SigningKey) -> Result<PathBuf> {
    // PKCS#8 v1 (no public key inside), the form OpenSSL reads and writes;
    // ed25519-dalek's own encoder writes v2, which OpenSSL 3 refuses.
    let private = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
    .to_pkcs8_pem(LineEnding::LF)
    .map_err(|e| AuditError::Key(format!("encoding the private key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| AuditError::Key(format!("encoding the public key: {e}")))?;
    let pub_path = public_path(out);
    if pub_path.exists() {
        return Err(AuditError::Key(format!(
            "{} exists; not overwriting a key",
            pub_path.display()
        )));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(out).map_err(|e| {
        AuditError::Key(format!(
            "{}: {e} (an existing key is never overwritten)",
            out.display()
        ))
    })?;
    f.write_all(private.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| AuditError::io(out, e))?;
    let mut p = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&pub_path)
        .map_err(|e| AuditError::io(&pub_path, e))?;
    p.write_all(public.as_bytes())
        .and_then(|_| p.sync_all())
        .map_err(|e| AuditError::io(&pub_path, e))?;
    Ok(pub_path)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| AuditError::Key(format!("cannot read {}: {e}", path.display())))
}

/// Reads a private key (PKCS#8 PEM, or 64 hex characters).
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let text = read_text(path)?;
    parse_signing_key(&text).map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))
}

/// Parses a private key (PKCS#8 PEM, or 64 hex characters).
pub fn parse_signing_key(text: &str) -> std::result::Result<SigningKey, String> {
    let t = text.trim();
    if let Some(raw) = from_hex::<32>(t) {
        return Ok(SigningKey::from_bytes(&raw));
    }
    SigningKey::from_pkcs8_pem(t)
        .map_err(|e| format!("not an Ed25519 private key (PKCS#8 PEM or 64 hex): {e}"))
}

/// Reads a public key (SubjectPublicKeyInfo PEM, or 64 hex characters).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey> {
    let text = read_text(path)?;
    parse_verifying_key(&text).map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))
}

/// Parses a public key (SubjectPublicKeyInfo PEM, or 64 hex characters).
pub fn parse_verifying_key(text: &str) -> std::result::Result<VerifyingKey, String> {
    let t = text.trim();
    if let Some(raw) = from_hex::<32>(t) {
        return VerifyingKey::from_bytes(&raw).map_err(|e| format!("not an Ed25519 key: {e}"));
    }
    VerifyingKey::from_public_key_pem(t)
        .map_err(|e| format!("not an Ed25519 public key (PEM or 64 hex): {e}"))
}

/// The public key as 64 hex characters (how checkpoints name their signer).
pub fn key_hex(key: &VerifyingKey) -> String {
    to_hex(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keys_round_trip_through_files() {
        let dir = std::env::temp_dir().join(format!("tautan-audit-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let k = generate().unwrap();
        let out = dir.join("custodian.pem");
        let pubp = write_keypair(&out, &k).unwrap();
        assert_eq!(pubp, dir.join("custodian.pem.pub"));
        let k2 = read_signing_key(&out).unwrap();
        assert_eq!(k2.to_bytes(), k.to_bytes());
        let v = read_verifying_key(&pubp).unwrap();
        assert_eq!(v, k.verifying_key());
        assert!(std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(std::fs::read_to_string(&pubp)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // PKCS#8 v1, 48 bytes of DER, as OpenSSL writes it.
        let pem = std::fs::read_to_string(&out).unwrap();
        assert!(
            pem.lines()
                .nth(1)
                .unwrap()
                .starts_with("MC4CAQAwBQYDK2VwBCIEI"),
            "{pem}"
        );
        // The RFC 8410 §10.3 example key reads.
        let rfc = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            to_hex(&parse_signing_key(rfc).unwrap().to_bytes()),
            "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842"
        );
        // Never overwritten.
        assert!(write_keypair(&out, &generate().unwrap()).is_err());
        // Hex works too.
        let hex = key_hex(&v);
        assert_eq!(parse_verifying_key(&hex).unwrap(), v);
        assert!(parse_verifying_key("nonsense").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
