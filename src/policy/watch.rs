//! Noticing that the policy changed on disk: a fingerprint of the files it
//! is read from, and SIGHUP.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Size and modification time of every file among `paths` (a folder
/// stands for the `*.toml` files in it). Two equal fingerprints mean
/// nothing was added, removed or changed.
pub fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(path) {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                files.sort();
                out.extend(files.iter().map(|f| stat(f)));
            }
        } else {
            out.push(stat(path));
        }
    }
    out
}

fn stat(path: &Path) -> (PathBuf, Option<SystemTime>, u64) {
    let meta = std::fs::metadata(path).ok();
    (
        path.to_path_buf(),
        meta.as_ref().and_then(|m| m.modified().ok()),
        meta.map(|m| m.len()).unwrap_or(0),
    )
}

/// SIGHUP, as a stream of wake-ups; never wakes where signals cannot be
/// had.
pub struct Hangups(Option<tokio::signal::unix::Signal>);

impl Hangups {
    /// The next SIGHUP.
    pub async fn recv(&mut self) {
        match &mut self.0 {
            Some(signal) => {
                if signal.recv().await.is_none() {
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Starts listening for SIGHUP.
pub fn hangups() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Hangups(Some(s)),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP not available; the policy reloads on file changes only");
            Hangups(None)
        }
    }
}
