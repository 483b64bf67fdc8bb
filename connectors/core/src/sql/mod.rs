//! SQL that tautan sends to a source, and why user input cannot
//! restructure it.
//!
//! Every statement that leaves tautan for a link is a [`SourceQuery`]. One
//! can only be made from a syntax tree tautan built from the plan
//! ([`SourceQuery::new`]), never from text, and making it
//!
//! 1. **seals** the tree ([`seal`]): every identifier and string literal
//!    is written with tautan's own dialect-exact quoting ([`quote`]), not
//!    sqlparser's; values a source cannot hold (NUL) make the statement
//!    *unsendable*, and the operation that needed them stays in DataFusion;
//! 2. **guards** the text ([`guard`]): it is parsed back with the source's
//!    lexical rules and refused unless it is exactly the one `SELECT` that
//!    was built — same tables, same literals, only known functions.
//!
//! The PostgreSQL connector's `COPY (…) TO STDOUT` wrapper is built the
//! same way ([`SourceQuery::copy_binary`]).

pub mod guard;
pub mod quote;
mod seal;

use std::fmt;

use datafusion::sql::sqlparser::ast::{self, CopyOption, CopySource, CopyTarget, Ident, Statement};

pub use guard::refused_statements;
pub use quote::Unquotable;

use crate::SourceDialect;

/// Why a statement was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSqlError {
    /// It holds something that cannot be written for the source (a NUL
    /// character, a value kind tautan does not write); the work stays in
    /// DataFusion. Expected, and not a fault.
    Unsendable(String),
    /// The guard refused the text: it would not read back as the
    /// statement tautan built. Never expected; logged and counted.
    Refused(String),
}

impl SourceSqlError {
    pub(crate) fn unsendable(reason: impl Into<String>) -> Self {
        SourceSqlError::Unsendable(reason.into())
    }
}

impl fmt::Display for SourceSqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSqlError::Unsendable(r) => write!(f, "cannot be sent to the source: {r}"),
            SourceSqlError::Refused(r) => {
                write!(f, "tautan refused to send a statement to the source: {r}")
            }
        }
    }
}

impl std::error::Error for SourceSqlError {}

/// A `SELECT` for one source, sealed and checked by the guard.
#[derive(Debug, Clone)]
pub struct SourceQuery {
    dialect: SourceDialect,
    query: Box<ast::Query>,
    sql: String,
}

impl SourceQuery {
    /// Seals `query` for `dialect` and checks it with the guard.
    pub fn new(dialect: SourceDialect, query: ast::Query) -> Result<Self, SourceSqlError> {
        Self::sealed(dialect, query).map(|(_, q)| q)
    }

    /// [`Self::new`], also returning the sealed tree, which prints exactly
    /// as [`Self::sql`] (for code that prints trees itself).
    pub fn sealed(
        dialect: SourceDialect,
        query: ast::Query,
    ) -> Result<(Statement, Self), SourceSqlError> {
        let query = match dialect {
            // T-SQL has no LIMIT: written as TOP / OFFSET … FETCH first.
            SourceDialect::SqlServer => {
                crate::tsql::normalize(query).map_err(SourceSqlError::Unsendable)?
            }
            _ => query,
        };
        let query = Box::new(query);
        let statement = Statement::Query(query.clone());
        let sealed = checked(&statement, dialect)?;
        let source = Self {
            dialect,
            query,
            sql: sealed.text,
        };
        Ok((sealed.statement, source))
    }

    /// The text sent to the source.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The statement as built (unsealed), e.g. to wrap it in another.
    pub fn query(&self) -> &ast::Query {
        &self.query
    }

    /// The source's dialect.
    pub fn dialect(&self) -> SourceDialect {
        self.dialect
    }

    /// `COPY (query) TO STDOUT (FORMAT binary)`, sealed and checked
    /// (PostgreSQL).
    pub fn copy_binary(&self) -> Result<String, SourceSqlError> {
        let statement = Statement::Copy {
            source: CopySource::Query(self.query.clone()),
            to: true,
            target: CopyTarget::Stdout,
            options: vec![CopyOption::Format(Ident::new("binary"))],
            legacy_options: vec![],
            values: vec![],
        };
        Ok(checked(&statement, self.dialect)?.text)
    }
}

impl fmt::Display for SourceQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

fn checked(statement: &Statement, dialect: SourceDialect) -> Result<seal::Sealed, SourceSqlError> {
    let sealed = seal::seal(statement, dialect)?;
    guard::check(&sealed, statement, dialect)?;
    Ok(sealed)
}
