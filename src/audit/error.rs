//! Errors of the audit module.

use std::path::{Path, PathBuf};

/// What went wrong in the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read, written or synced.
    #[error("audit log: {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The log refuses appends: an earlier write or sync failed, so what is
    /// on disk after the last acknowledged record is unknown.
    #[error("audit log unavailable (an earlier write failed: {0}); statements are refused until it is repaired and reopened")]
    Failed(String),
    /// The log was closed.
    #[error("audit log is closed")]
    Closed,
    /// The files on disk are not a consistent log (run `tautan audit verify`).
    #[error("audit log: {0}")]
    Corrupt(String),
    /// A key file could not be read or written.
    #[error("key: {0}")]
    Key(String),
    /// An inclusion proof does not hold.
    #[error("proof rejected: {0}")]
    Proof(String),
    /// Anything else the caller asked for that cannot be done.
    #[error("audit log: {0}")]
    Invalid(String),
}

impl AuditError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
