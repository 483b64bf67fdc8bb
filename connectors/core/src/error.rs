//! Errors a link reports, carrying the link's name and the cause.

use std::fmt;

/// What went wrong, in terms a client can act on. Each kind maps to one
/// PostgreSQL SQLSTATE at the wire endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkErrorKind {
    /// The source cannot be reached (refused, timed out, DNS). SQLSTATE 08001.
    Unavailable,
    /// The source refused the link's credentials. SQLSTATE 08001 as well: to
    /// the data user the link is simply not available.
    Authentication,
    /// The connection broke (or stalled) while a query was running.
    /// SQLSTATE 08006.
    ConnectionLost,
    /// Every connection of the link is busy and the wait in line ran out.
    /// SQLSTATE 53300 (too many connections): the source is up.
    Busy,
    /// The source rejected or failed the query. SQLSTATE XX000 unless the
    /// source gave one.
    Query,
    /// A value could not be converted to its Arrow type. SQLSTATE 22000.
    Conversion,
    /// The link's configuration is not usable.
    Config,
}

/// An error from one link, naming it.
#[derive(Debug)]
pub struct LinkError {
    /// Name of the link (its catalog).
    pub link: String,
    /// What kind of failure.
    pub kind: LinkErrorKind,
    /// SQLSTATE reported by the source, when it gave one.
    pub sqlstate: Option<String>,
    /// Human-readable explanation.
    pub message: String,
    /// The underlying driver error.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl LinkError {
    /// A new error of `kind` on `link`.
    pub fn new(link: impl Into<String>, kind: LinkErrorKind, message: impl Into<String>) -> Self {
        Self {
            link: link.into(),
            kind,
            sqlstate: None,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the driver error that caused this one.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Attaches the SQLSTATE the source reported.
    pub fn with_sqlstate(mut self, sqlstate: impl Into<String>) -> Self {
        self.sqlstate = Some(sqlstate.into());
        self
    }

    /// The PostgreSQL SQLSTATE a client should see for this error.
    pub fn client_sqlstate(&self) -> &str {
        match self.kind {
            LinkErrorKind::Unavailable | LinkErrorKind::Authentication => "08001",
            LinkErrorKind::ConnectionLost => "08006",
            LinkErrorKind::Busy => "53300",
            LinkErrorKind::Conversion => "22000",
            LinkErrorKind::Config => "F0000",
            LinkErrorKind::Query => self.sqlstate.as_deref().unwrap_or("XX000"),
        }
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            LinkErrorKind::Unavailable => "is unavailable",
            LinkErrorKind::Authentication => "rejected its credentials",
            LinkErrorKind::ConnectionLost => "lost its connection",
            LinkErrorKind::Busy => "is busy",
            LinkErrorKind::Query => "failed the query",
            LinkErrorKind::Conversion => "returned a value tautan cannot convert",
            LinkErrorKind::Config => "is misconfigured",
        };
        write!(f, "link \"{}\" {}: {}", self.link, what, self.message)
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<LinkError> for datafusion::error::DataFusionError {
    fn from(e: LinkError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}

/// Finds a [`LinkError`] inside a DataFusion error, however deeply wrapped.
pub fn find_link_error(err: &datafusion::error::DataFusionError) -> Option<&LinkError> {
    use datafusion::error::DataFusionError;
    match err {
        DataFusionError::External(e) => e.downcast_ref::<LinkError>(),
        DataFusionError::Context(_, inner) => find_link_error(inner),
        DataFusionError::Shared(inner) => find_link_error(inner),
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            datafusion::arrow::error::ArrowError::ExternalError(e) => {
                if let Some(l) = e.downcast_ref::<LinkError>() {
                    Some(l)
                } else {
                    e.downcast_ref::<DataFusionError>()
                        .and_then(find_link_error)
                }
            }
            _ => None,
        },
        _ => None,
    }
}
