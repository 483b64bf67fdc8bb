//! The guard: the last look at a statement before it leaves tautan.
//!
//! The text is read back the way the source will read it — tokenized and
//! parsed in the source's dialect with the source session's string rules
//! (no backslash escapes on either) — and refused unless
//!
//! - it is exactly one statement: a query, or on PostgreSQL a
//!   `COPY (query) TO STDOUT`;
//! - it holds no comments, no statement separator, no parameter marker;
//! - every table it reads is one the statement tautan built reads, only
//!   through plain table references and derived tables (no table
//!   functions, no `LATERAL`, no `INTO`, no locking clause);
//! - every function it calls is one tautan writes ([`FUNCTIONS`]);
//! - its string literals are exactly the built statement's, value for
//!   value;
//! - sealed again, it prints back to the very same text — it *is* the
//!   statement tautan built.
//!
//! A refusal is an error for the query and a `tautan::guard` log line at
//! error level with the reason and the text, and is counted
//! ([`refused_statements`]). It should never happen: sealing makes the
//! text unambiguous; the guard is there in case it does not.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::sql::sqlparser::ast::{
    CopySource, CopyTarget, Expr, ObjectName, Query, SetExpr, Statement, TableFactor, Visit,
    Visitor,
};
use datafusion::sql::sqlparser::dialect::{Dialect, MsSqlDialect, MySqlDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::seal::{seal, Sealed};
use super::SourceSqlError;
use crate::SourceDialect;

/// Functions tautan's SQL may call at a source (lower case). Anything
/// else — `pg_sleep`, `lo_from_bytea`, `set_config`, `SLEEP`,
/// `BENCHMARK`, ... — is refused.
pub const FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "coalesce",
    "nullif",
    "abs",
    "date_part",
    "substr",
    "substring",
    "upper",
    "lower",
    "length",
    "character_length",
    "char_length",
    "btrim",
    "ltrim",
    "rtrim",
    "concat",
];

static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Nesting the guard's parser accepts: above any statement tautan plans
/// (sqlparser's default, 50, would refuse legitimate deep statements).
pub const GUARD_RECURSION_LIMIT: usize = 4096;

/// How many statements the guard has refused since the process started.
pub fn refused_statements() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}

/// MySQL's lexical rules under `NO_BACKSLASH_ESCAPES`: sqlparser's MySQL
/// dialect reads `\'` as an escaped quote, the session does not.
#[derive(Debug)]
struct MySqlNoBackslashEscapes;

impl Dialect for MySqlNoBackslashEscapes {
    fn is_identifier_start(&self, ch: char) -> bool {
        MySqlDialect {}.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        MySqlDialect {}.is_identifier_part(ch)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }
    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('`')
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        false
    }
    fn requires_single_line_comment_whitespace(&self) -> bool {
        true
    }
}

/// The sqlparser dialect that reads text as `dialect`'s sessions do.
pub(crate) fn parser_dialect(dialect: SourceDialect) -> Box<dyn Dialect> {
    match dialect {
        SourceDialect::Postgres => Box::new(PostgreSqlDialect {}),
        SourceDialect::MySql => Box::new(MySqlNoBackslashEscapes),
        // T-SQL reads no backslash escapes, brackets and double quotes
        // delimit names (sqlparser's MsSqlDialect).
        SourceDialect::SqlServer => Box::new(MsSqlDialect {}),
    }
}

/// Checks that `sealed` (the sealed form of `built`) reads back at the
/// source as `built`; see the module docs.
pub(crate) fn check(
    sealed: &Sealed,
    built: &Statement,
    dialect: SourceDialect,
) -> Result<(), SourceSqlError> {
    inspect(sealed, built, dialect).map_err(|reason| {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            target: "tautan::guard",
            dialect = ?dialect,
            reason = %reason,
            sql = %sealed.text,
            "refused to send a statement to a source"
        );
        SourceSqlError::Refused(reason)
    })
}

fn inspect(sealed: &Sealed, built: &Statement, dialect: SourceDialect) -> Result<(), String> {
    let parser_dialect = parser_dialect(dialect);
    let tokens = Tokenizer::new(parser_dialect.as_ref(), &sealed.text)
        .tokenize()
        .map_err(|e| format!("does not tokenize: {e}"))?;
    for token in &tokens {
        match token {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {
                return Err("contains a comment".into())
            }
            Token::SemiColon => return Err("contains a statement separator".into()),
            Token::Placeholder(p) => return Err(format!("contains a parameter marker {p}")),
            Token::Sharp if dialect == SourceDialect::MySql => {
                return Err("contains a # comment marker".into())
            }
            _ => {}
        }
    }
    // Reads statements as deep as tautan plans (the engine bounds nesting
    // before planning and runs planning on a deep stack).
    let mut statements = Parser::new(parser_dialect.as_ref())
        .with_recursion_limit(GUARD_RECURSION_LIMIT)
        .try_with_sql(&sealed.text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| format!("does not parse: {e}"))?;
    if statements.len() != 1 {
        return Err(format!("{} statements, not one", statements.len()));
    }
    let parsed = statements.remove(0);
    match &parsed {
        Statement::Query(_) => {}
        Statement::Copy {
            source: CopySource::Query(_),
            to: true,
            target: CopyTarget::Stdout,
            ..
        } if dialect == SourceDialect::Postgres => {}
        other => return Err(format!("not a query: {}", kind_of(other))),
    }
    let found = Shape::of(&parsed)?;
    let intended = Shape::of(built)?;
    if let Some(t) = found.tables.difference(&intended.tables).next() {
        return Err(format!("reads {}, which the plan does not", t.join(".")));
    }
    let resealed = seal(&parsed, dialect).map_err(|e| format!("reads back as {e}"))?;
    if resealed.strings != sealed.strings {
        return Err("its string literals are not the plan's".into());
    }
    // The text must be what the built tree prints as, and read back as it.
    let intended = sealed.statement.to_string();
    if sealed.text != intended || resealed.text != intended {
        return Err(format!(
            "reads back as another statement: {}",
            resealed.text
        ));
    }
    Ok(())
}

fn kind_of(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace().next().unwrap_or("?").to_uppercase()
}

/// Tables a statement reads (by the values of their name parts), checked
/// for forms tautan never writes.
#[derive(Default)]
struct Shape {
    tables: BTreeSet<Vec<String>>,
}

impl Shape {
    fn of(statement: &Statement) -> Result<Shape, String> {
        let mut shape = Shape::default();
        match statement.visit(&mut shape) {
            ControlFlow::Continue(()) => Ok(shape),
            ControlFlow::Break(reason) => Err(reason),
        }
    }
}

impl Visitor for Shape {
    type Break = String;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        if !query.locks.is_empty() || query.for_clause.is_some() {
            return ControlFlow::Break("has a locking or FOR clause".into());
        }
        if let SetExpr::Select(select) = query.body.as_ref() {
            if select.into.is_some() {
                return ControlFlow::Break("has SELECT INTO".into());
            }
        }
        if query.with.as_ref().is_some_and(|w| w.recursive) {
            return ControlFlow::Break("has WITH RECURSIVE".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table { args: None, .. } => ControlFlow::Continue(()),
            TableFactor::Derived { lateral: false, .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            other => ControlFlow::Break(format!("reads from {other}")),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<String> {
        let mut parts = Vec::with_capacity(relation.0.len());
        for part in &relation.0 {
            match part.as_ident() {
                Some(ident) => parts.push(ident.value.clone()),
                None => return ControlFlow::Break(format!("reads from {relation}")),
            }
        }
        self.tables.insert(parts);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        if let Expr::Function(f) = expr {
            let name = f.name.to_string().to_ascii_lowercase();
            if !FUNCTIONS.contains(&name.as_str()) {
                return ControlFlow::Break(format!("calls {name}"));
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Ident, SelectItem, Value};

    fn parse(dialect: SourceDialect, sql: &str) -> Statement {
        Parser::parse_sql(parser_dialect(dialect).as_ref(), sql)
            .unwrap()
            .remove(0)
    }

    /// What sqlparser's own printing would have sent: the guard must
    /// refuse it.
    fn unsealed(statement: &Statement, dialect: SourceDialect) -> Result<(), String> {
        let mut sealed = seal(statement, dialect).unwrap();
        sealed.text = statement.to_string();
        inspect(&sealed, statement, dialect)
    }

    /// `SELECT a FROM t WHERE a = '<value>'` built as a tree.
    fn lookup(dialect: SourceDialect, value: &str) -> Statement {
        let mut statement = parse(dialect, "SELECT a FROM t WHERE a = 'x'");
        if let Statement::Query(q) = &mut statement {
            if let SetExpr::Select(s) = q.body.as_mut() {
                s.selection = Some(Expr::BinaryOp {
                    left: Box::new(Expr::Identifier(Ident::with_quote('"', "a"))),
                    op: BinaryOperator::Eq,
                    right: Box::new(Expr::value(Value::SingleQuotedString(value.into()))),
                });
            }
        }
        statement
    }

    #[test]
    fn sealed_statements_pass() {
        for dialect in [SourceDialect::Postgres, SourceDialect::MySql] {
            let statement = lookup(dialect, r"\')) UNION SELECT nip FROM pegawai -- ''");
            let sealed = seal(&statement, dialect).unwrap();
            assert_eq!(inspect(&sealed, &statement, dialect), Ok(()));
        }
    }

    #[test]
    fn sqlparsers_own_quoting_is_refused_where_it_breaks_out() {
        let payload = r"\'))) UNION SELECT nip, nama FROM kepegawaian.pegawai -- ";
        for dialect in [SourceDialect::Postgres, SourceDialect::MySql] {
            let refused = unsealed(&lookup(dialect, payload), dialect).unwrap_err();
            assert!(
                refused.contains("pegawai")
                    || refused.contains("parse")
                    || refused.contains("comment"),
                "{refused}"
            );
        }
        // An alias closing its quoted identifier.
        let mut statement = parse(SourceDialect::Postgres, "SELECT count(*) AS x FROM t");
        if let Statement::Query(q) = &mut statement {
            if let SetExpr::Select(s) = q.body.as_mut() {
                if let SelectItem::ExprWithAlias { alias, .. } = &mut s.projection[0] {
                    *alias = Ident::with_quote('"', r#"a\" FROM pg_authid UNION SELECT "x"#);
                }
            }
        }
        assert!(unsealed(&statement, SourceDialect::Postgres).is_err());
    }

    #[test]
    fn what_tautan_never_writes_is_refused() {
        let pg = SourceDialect::Postgres;
        let check = |sql: &str| {
            let statement = parse(pg, sql);
            let sealed = seal(&statement, pg).unwrap();
            inspect(&sealed, &statement, pg)
        };
        assert!(check("SELECT pg_sleep(10)")
            .unwrap_err()
            .contains("pg_sleep"));
        assert!(check("SELECT lo_from_bytea(0, 'x')").is_err());
        assert!(check("SELECT a FROM t FOR UPDATE").is_err());
        assert!(check("SELECT * FROM generate_series(1, 3)").is_err());
        assert!(check("SELECT count(*) FROM t").is_ok());
        // Text that is not the built statement: two statements, a comment.
        let statement = parse(pg, "SELECT 1");
        let mut sealed = seal(&statement, pg).unwrap();
        for text in [
            "SELECT 1; SELECT 2",
            "SELECT 1 -- x",
            "SELECT /* x */ 1",
            "SELECT 2",
        ] {
            sealed.text = text.into();
            assert!(inspect(&sealed, &statement, pg).is_err(), "{text}");
        }
        // MySQL reads `#` as a comment.
        let my = SourceDialect::MySql;
        let statement = parse(my, "SELECT 1");
        let mut sealed = seal(&statement, my).unwrap();
        sealed.text = "SELECT 1 # x".into();
        assert!(inspect(&sealed, &statement, my).is_err());
    }
}
