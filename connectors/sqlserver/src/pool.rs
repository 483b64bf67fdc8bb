//! Connecting to SQL Server, and the pool of sessions.
//!
//! tiberius has no pool of its own. `bb8-tiberius` exists, but it is a
//! thin manager for another pool crate tautan does not use; deadpool is
//! already in the tree (deadpool-postgres), so [`Manager`] is a small
//! deadpool manager of tautan's own: it connects with the link's
//! [`tiberius::Config`] and, before a session is handed out again, checks
//! it with `SELECT 1` (which also drains anything left unread — a session
//! whose scan stopped early is never returned, see [`Checkout`]).

use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use futures::future::BoxFuture;
use tautan_connector::{LinkError, LinkErrorKind};
use tiberius::Client;
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::tds_error;

/// A TDS session over TCP.
pub type TdsClient = Client<Compat<TcpStream>>;

/// Opens one session as `config` says (TLS, login, read-only intent).
pub async fn connect(config: &tiberius::Config) -> tiberius::Result<TdsClient> {
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config.clone(), tcp.compat_write()).await
}

/// deadpool's manager of a link's sessions.
#[derive(Debug)]
pub struct Manager {
    config: tiberius::Config,
}

impl Manager {
    /// A manager connecting with `config`.
    pub fn new(config: tiberius::Config) -> Self {
        Self { config }
    }
}

impl managed::Manager for Manager {
    type Type = TdsClient;
    type Error = tiberius::error::Error;

    async fn create(&self) -> Result<TdsClient, tiberius::error::Error> {
        connect(&self.config).await
    }

    async fn recycle(
        &self,
        client: &mut TdsClient,
        _metrics: &Metrics,
    ) -> RecycleResult<tiberius::error::Error> {
        client.simple_query("SELECT 1").await?.into_row().await?;
        Ok(())
    }
}

/// The pool of one link's sessions.
pub type Pool = managed::Pool<Manager>;

/// A pooled session.
pub type Pooled = managed::Object<Manager>;

/// Builds a pool of at most `size` sessions (none opened yet).
pub fn pool(link: &str, config: tiberius::Config, size: usize) -> Result<Pool, LinkError> {
    Pool::builder(Manager::new(config))
        .max_size(size.max(1))
        .build()
        .map_err(|e| {
            LinkError::new(
                link,
                LinkErrorKind::Config,
                format!("building the pool: {e}"),
            )
            .with_source(e)
        })
}

/// A session from `pool` within `timeout`.
pub async fn checkout(link: &str, pool: &Pool, timeout: Duration) -> Result<Pooled, LinkError> {
    match tokio::time::timeout(timeout, pool.get()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(managed::PoolError::Backend(e))) => Err(tds_error(link, e)),
        Ok(Err(e)) => Err(LinkError::new(
            link,
            LinkErrorKind::Unavailable,
            format!("no connection: {e}"),
        )),
        Err(_) => Err(LinkError::new(
            link,
            LinkErrorKind::Unavailable,
            format!("no connection within {timeout:?}"),
        )),
    }
}

/// A checked-out session that goes back to the pool only when its
/// statement was read to the end ([`Checkout::finished`]); otherwise —
/// an error, a cancel, a consumer gone, a stall — it is taken out of the
/// pool and closed, so the server stops sending (tiberius would otherwise
/// read the rest of the result before the next statement).
pub struct Checkout {
    session: Option<Pooled>,
}

impl Checkout {
    /// Guards `session`.
    pub fn new(session: Pooled) -> Self {
        Self {
            session: Some(session),
        }
    }

    /// The session.
    pub fn client(&mut self) -> Option<&mut TdsClient> {
        self.session.as_deref_mut()
    }

    /// The statement was read to the end: the session may be reused.
    pub fn finished(mut self) {
        drop(self.session.take());
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Out of the pool; dropping the client closes the socket.
            drop(Pooled::take(session));
        }
    }
}

/// Whether the server answers at all, on a connection of its own.
pub fn ping(config: tiberius::Config, link: String) -> BoxFuture<'static, Result<(), LinkError>> {
    Box::pin(async move {
        let mut client = connect(&config).await.map_err(|e| tds_error(&link, e))?;
        let answer = match client.simple_query("SELECT 1").await {
            Ok(stream) => stream.into_row().await.map(|_| ()),
            Err(e) => Err(e),
        }
        .map_err(|e| tds_error(&link, e));
        let _ = client.close().await;
        answer
    })
}
