//! CancelRequest: stops what a session runs, down to the sources.
//!
//! pgwire's [`ConnectionManager`] interrupts a statement while it is being
//! planned; once rows stream, the statement lives in the session's result
//! stream, so the session itself is told too ([`Session::cancel`]): its
//! stream ends with 57014 and dropping it cancels the remote statement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::ConnectionManager;
use pgwire::messages::cancel::CancelRequest;

use crate::engine::Session;

/// A connection's backend key: process id and secret, as sent in
/// BackendKeyData and CancelRequest.
type BackendKey = (i32, Vec<u8>);

/// The sessions of open connections, by backend key.
#[derive(Debug, Default)]
pub struct LiveSessions {
    sessions: Mutex<HashMap<BackendKey, Weak<Session>>>,
}

impl LiveSessions {
    /// Records the session of a new connection; forgets closed ones.
    pub fn register(&self, pid: i32, secret: Vec<u8>, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.strong_count() > 0);
        sessions.insert((pid, secret), Arc::downgrade(session));
    }

    fn get(&self, pid: i32, secret: &[u8]) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(&(pid, secret.to_vec()))?.upgrade()
    }
}

/// Cancels both the statement being planned and the rows streaming.
#[derive(Debug)]
pub struct Canceller {
    /// pgwire's per-connection cancel signals.
    pub connections: Arc<ConnectionManager>,
    /// tautan's sessions.
    pub sessions: Arc<LiveSessions>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let secret = request.secret_key.to_bytes().to_vec();
        match self.sessions.get(request.pid, &secret) {
            Some(session) => {
                tracing::info!(pid = request.pid, user = %session.user(), "cancel request");
                session.cancel();
            }
            None => tracing::debug!(pid = request.pid, "cancel request for no open session"),
        }
        self.connections
            .cancel(request.pid, &request.secret_key)
            .await;
    }
}
