//! Who may come in, and how many at once: connection and statement limits.
//!
//! PostgreSQL refuses a connection beyond `max_connections` ("sorry, too
//! many clients already") and beyond a role's `CONNECTION LIMIT` ("too many
//! connections for role"), both with SQLSTATE 53300. tautan does the same,
//! and also bounds how many statements one user runs at once across all
//! their sessions, so one user's dashboard refresh cannot take every
//! source connection and memory share from everyone else:
//!
//! * [`Admission::connection`] — a slot of the server's
//!   `[server] max_connections`, taken when a socket is accepted (logged in
//!   or not: an unauthenticated socket holds a file descriptor too). A
//!   socket without a slot is told 53300 and closed at once.
//! * [`Admission::login`] — a slot of the user's connection limit
//!   (`[users.X] max_connections`, else `[server] max_connections_per_user`),
//!   taken when the login succeeds.
//! * [`Admission::statement`] — a slot of the user's concurrent statements
//!   (`[users.X] max_statements`, else `[server] max_statements_per_user`),
//!   held while a statement's rows stream (an open cursor holds one too).
//!   A statement beyond it waits up to `[server] statement_queue_timeout_ms`,
//!   then fails with 53300.
//!
//! Every slot is a guard: dropping it (the connection closing, the stream
//! ending or being dropped) gives it back, so no path can leak one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::FederationConfig;
use crate::error::QueryError;

/// Server-wide limits, read once from the config.
#[derive(Debug)]
pub struct Admission {
    connections: Arc<Semaphore>,
    max_connections: usize,
    per_user_connections: HashMap<String, usize>,
    default_user_connections: usize,
    per_user_statements: HashMap<String, usize>,
    default_user_statements: usize,
    statement_queue_timeout: Duration,
    users: Mutex<HashMap<String, UserSlots>>,
}

/// One user's live counters.
#[derive(Debug)]
struct UserSlots {
    connections: usize,
    statements: Arc<Semaphore>,
}

/// A connection slot of the server; given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
}

/// A logged-in user's connection slot; given back on drop.
#[derive(Debug)]
pub struct LoginSlot {
    admission: Arc<Admission>,
    user: String,
}

impl Drop for LoginSlot {
    fn drop(&mut self) {
        let mut users = self.admission.lock_users();
        if let Some(slots) = users.get_mut(&self.user) {
            slots.connections = slots.connections.saturating_sub(1);
        }
    }
}

/// A running statement's slot; given back on drop.
#[derive(Debug)]
pub struct StatementSlot {
    _permit: OwnedSemaphorePermit,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyConnections {
    /// The user whose limit was reached.
    pub user: String,
    /// That limit.
    pub limit: usize,
}

impl std::fmt::Display for TooManyConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too many connections for role \"{}\" (limit {})",
            self.user, self.limit
        )
    }
}

impl Admission {
    /// The limits of `config`.
    pub fn new(config: &FederationConfig) -> Self {
        let server = &config.server;
        let max_connections = server.max_connections.max(1);
        let mut per_user_connections = HashMap::new();
        let mut per_user_statements = HashMap::new();
        for (name, user) in &config.users {
            let user = user.get_ref();
            if let Some(n) = user.max_connections {
                per_user_connections.insert(name.clone(), n);
            }
            if let Some(n) = user.max_statements {
                per_user_statements.insert(name.clone(), n.max(1));
            }
        }
        Self {
            connections: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            per_user_connections,
            default_user_connections: server.max_connections_per_user,
            per_user_statements,
            default_user_statements: server.max_statements_per_user.max(1),
            statement_queue_timeout: Duration::from_millis(server.statement_queue_timeout_ms),
            users: Mutex::new(HashMap::new()),
        }
    }

    fn lock_users(&self) -> std::sync::MutexGuard<'_, HashMap<String, UserSlots>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for an accepted socket, or `None` when the server is full.
    pub fn connection(&self) -> Option<ConnectionSlot> {
        self.connections
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| ConnectionSlot { _permit: permit })
    }

    /// The server's connection limit.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Connections open now (logged in or not).
    pub fn connections_open(&self) -> usize {
        self.max_connections - self.connections.available_permits()
    }

    fn user_connection_limit(&self, user: &str) -> usize {
        self.per_user_connections
            .get(user)
            .copied()
            .unwrap_or(self.default_user_connections)
    }

    fn user_statement_limit(&self, user: &str) -> usize {
        self.per_user_statements
            .get(user)
            .copied()
            .unwrap_or(self.default_user_statements)
    }

    fn slots<'a>(
        &self,
        users: &'a mut HashMap<String, UserSlots>,
        user: &str,
    ) -> &'a mut UserSlots {
        users.entry(user.to_string()).or_insert_with(|| UserSlots {
            connections: 0,
            statements: Arc::new(Semaphore::new(self.user_statement_limit(user))),
        })
    }

    /// A connection slot of `user`, taken when their login succeeds.
    pub fn login(self: &Arc<Self>, user: &str) -> Result<LoginSlot, TooManyConnections> {
        let limit = self.user_connection_limit(user);
        let mut users = self.lock_users();
        let slots = self.slots(&mut users, user);
        if limit > 0 && slots.connections >= limit {
            return Err(TooManyConnections {
                user: user.to_string(),
                limit,
            });
        }
        slots.connections += 1;
        Ok(LoginSlot {
            admission: self.clone(),
            user: user.to_string(),
        })
    }

    /// A statement slot of `user`: at once when one is free, else after
    /// waiting up to the queue timeout, else 53300.
    pub async fn statement(&self, user: &str) -> Result<StatementSlot, QueryError> {
        let semaphore = {
            let mut users = self.lock_users();
            self.slots(&mut users, user).statements.clone()
        };
        let waited =
            tokio::time::timeout(self.statement_queue_timeout, semaphore.acquire_owned()).await;
        match waited {
            Ok(Ok(permit)) => Ok(StatementSlot { _permit: permit }),
            _ => Err(QueryError::new(
                "53300",
                format!(
                    "too many statements running for user \"{user}\" (limit {}); waited {} ms for one to finish",
                    self.user_statement_limit(user),
                    self.statement_queue_timeout.as_millis()
                ),
            )
            .with_hint(
                "Finish or close the user's other queries and cursors, or raise max_statements for the user.",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> FederationConfig {
        toml::from_str(text).expect("test config")
    }

    #[test]
    fn server_slots_are_given_back() {
        let a = Admission::new(&config("[server]\nmax_connections = 2\n"));
        let one = a.connection().expect("first");
        let two = a.connection().expect("second");
        assert!(a.connection().is_none(), "a third socket is refused");
        assert_eq!(a.connections_open(), 2);
        drop(one);
        assert!(a.connection().is_some(), "a slot comes back on close");
        drop(two);
    }

    #[test]
    fn user_limits_count_logins() {
        let a = Arc::new(Admission::new(&config(
            "[server]\nmax_connections_per_user = 1\n[users.x]\npassword_env = \"X\"\nmax_connections = 2\n",
        )));
        let x1 = a.login("x").expect("x 1");
        let _x2 = a.login("x").expect("x 2 (own limit 2)");
        let refused = a.login("x").expect_err("x 3");
        assert_eq!(refused.limit, 2);
        assert!(refused
            .to_string()
            .contains("too many connections for role \"x\""));
        let _y = a.login("y").expect("y 1 (server default 1)");
        assert!(a.login("y").is_err());
        drop(x1);
        assert!(a.login("x").is_ok(), "a slot comes back on disconnect");
    }

    #[tokio::test]
    async fn statements_wait_then_refuse() {
        let a = Admission::new(&config(
            "[server]\nmax_statements_per_user = 1\nstatement_queue_timeout_ms = 50\n",
        ));
        let first = a.statement("u").await.expect("first");
        let err = a
            .statement("u")
            .await
            .expect_err("second waits, then 53300");
        assert_eq!(err.code, "53300");
        assert!(
            a.statement("v").await.is_ok(),
            "other users are not held up"
        );
        drop(first);
        assert!(a.statement("u").await.is_ok());
    }
}
