//! TLS for the PostgreSQL endpoint (rustls), offered on SSLRequest, for
//! the HTTP door (HTTPS only) and for the Flight SQL door (gRPC over TLS,
//! ALPN `h2`), when `[server] tls_cert` and `tls_key` are set.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Builds the acceptor from PEM files; the error names the file at fault.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    acceptor_for(cert, key, &[])
}

/// As [`acceptor`], offering the application protocols `alpn` (gRPC
/// clients require `h2`).
pub fn acceptor_for(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read certificates: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: cannot read private key: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS certificate and key do not match: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The acceptor `config` asks for (`[server] tls_cert` and `tls_key`, paths
/// relative to the config), or none.
pub fn from_config(
    config: &crate::config::FederationConfig,
) -> Result<Option<TlsAcceptor>, String> {
    from_config_for(config, &[])
}

/// As [`from_config`], offering the application protocols `alpn`.
pub fn from_config_for(
    config: &crate::config::FederationConfig,
    alpn: &[&[u8]],
) -> Result<Option<TlsAcceptor>, String> {
    match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(acceptor_for(
            &config.resolve_path(cert),
            &config.resolve_path(key),
            alpn,
        ))
        .transpose(),
        _ => Ok(None),
    }
}
