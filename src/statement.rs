//! What kind of statement arrived, decided on the parsed SQL before any
//! name is resolved: queries go on to the grant check and planning, session
//! commands are answered by the session, and everything that could change
//! data anywhere is refused here with SQLSTATE 25006.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement, Visit, Visitor};

/// How the engine handles a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    /// A read: checked against grants, planned and run.
    Query,
    /// `SET name = value` (session setting, never sent to a source).
    Set {
        /// Setting name, lower case.
        name: String,
        /// Value as written (quotes removed).
        value: String,
    },
    /// `SHOW name`.
    Show(String),
    /// Transaction control; answered with this command tag.
    Transaction(&'static str),
    /// A statement that would write: refused with 25006.
    Write(String),
    /// A statement tautan does not support (0A000).
    Unsupported(String),
}

/// The first keyword(s) of a statement, for messages.
fn verb(text: &str) -> String {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("statement").to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let second = words.next().unwrap_or("").to_ascii_uppercase();
            format!("{first} {second}").trim().to_string()
        }
        _ => first,
    }
}

/// Finds anything inside a query that writes or locks.
struct WriteFinder {
    found: Option<String>,
}

impl Visitor for WriteFinder {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if !query.locks.is_empty() {
            self.found = Some("SELECT FOR UPDATE/SHARE".into());
            return ControlFlow::Break(());
        }
        if let SetExpr::Select(select) = query.body.as_ref() {
            if select.into.is_some() {
                self.found = Some("SELECT INTO".into());
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        if !matches!(statement, Statement::Query(_)) {
            self.found = Some(verb(&statement.to_string()));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn strip_quotes(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('\'') && t.ends_with('\'')) || (t.starts_with('"') && t.ends_with('"')))
    {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

/// Statements that change data or schema, by first keyword: refused with
/// 25006 even when the parser does not know their exact form.
const WRITE_VERBS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP", "ALTER",
    "TRUNCATE", "COPY", "CALL", "DO", "GRANT", "REVOKE", "VACUUM", "ANALYZE", "CLUSTER", "REINDEX",
    "COMMENT", "LOCK", "REFRESH", "IMPORT", "LOAD", "SECURITY", "REASSIGN",
];

/// Splits and parses SQL text (PostgreSQL dialect). A statement the parser
/// rejects but that starts like a write is refused as a write (25006), not
/// as a syntax error: the answer to "may I write?" does not depend on syntax.
pub fn parse(sql: &str) -> Result<Vec<DFStatement>, crate::error::QueryError> {
    use datafusion::sql::parser::DFParserBuilder;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    let dialect = PostgreSqlDialect {};
    match DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .and_then(|mut p| p.parse_statements())
    {
        Ok(statements) => Ok(statements.into_iter().collect()),
        Err(e) => {
            // Skip leading comments and parentheses to find the verb.
            let first = sql
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ");
            let v = verb(first.trim_start_matches('('));
            let head = v.split_whitespace().next().unwrap_or("");
            if WRITE_VERBS.contains(&head) {
                Err(crate::error::QueryError::read_only(&v))
            } else {
                Err(crate::error::QueryError::new("42601", e.to_string()))
            }
        }
    }
}

/// Classifies one parsed statement.
pub fn classify(statement: &DFStatement) -> StatementKind {
    match statement {
        DFStatement::Statement(s) => classify_sql(s),
        DFStatement::Explain(e) => match classify(&e.statement) {
            StatementKind::Query => StatementKind::Query,
            StatementKind::Write(w) => StatementKind::Write(w),
            _ => StatementKind::Unsupported("EXPLAIN of a non-query".into()),
        },
        DFStatement::CopyTo(_) => StatementKind::Write("COPY TO a file".into()),
        DFStatement::CreateExternalTable(_) => StatementKind::Write("CREATE EXTERNAL TABLE".into()),
        DFStatement::Reset(_) => StatementKind::Transaction("RESET"),
    }
}

fn classify_sql(s: &Statement) -> StatementKind {
    match s {
        Statement::Query(q) => {
            let mut finder = WriteFinder { found: None };
            let _ = q.visit(&mut finder);
            match finder.found {
                Some(w) => StatementKind::Write(w),
                None => StatementKind::Query,
            }
        }
        Statement::ShowTables { .. } | Statement::ShowColumns { .. } => StatementKind::Query,
        Statement::ShowVariable { variable } => StatementKind::Show(
            variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Statement::StartTransaction { .. } => StatementKind::Transaction("BEGIN"),
        Statement::Commit { .. } => StatementKind::Transaction("COMMIT"),
        Statement::Rollback { .. } => StatementKind::Transaction("ROLLBACK"),
        Statement::Savepoint { .. } => StatementKind::Transaction("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => StatementKind::Transaction("RELEASE"),
        Statement::Discard { .. } => StatementKind::Transaction("DISCARD ALL"),
        Statement::Set(set) => classify_set(set, s),
        Statement::Copy { to: true, .. } => {
            StatementKind::Unsupported("COPY ... TO STDOUT (use a SELECT)".into())
        }
        Statement::Explain { .. } | Statement::ExplainTable { .. } => {
            StatementKind::Unsupported("this form of EXPLAIN".into())
        }
        other => StatementKind::Write(verb(&other.to_string())),
    }
}

fn classify_set(set: &datafusion::sql::sqlparser::ast::Set, whole: &Statement) -> StatementKind {
    use datafusion::sql::sqlparser::ast::Set;
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => StatementKind::Set {
            name: variable.to_string().to_ascii_lowercase(),
            value: values
                .iter()
                .map(|v| strip_quotes(&v.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        },
        Set::SetTimeZone { value, .. } => StatementKind::Set {
            name: "timezone".into(),
            value: strip_quotes(&value.to_string()),
        },
        Set::SetNames { charset_name, .. } => StatementKind::Set {
            name: "client_encoding".into(),
            value: strip_quotes(&charset_name.to_string()),
        },
        Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
            StatementKind::Write(verb(&whole.to_string()) + " ROLE")
        }
        Set::SetTransaction { .. } => StatementKind::Transaction("SET"),
        _ => StatementKind::Transaction("SET"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(sql: &str) -> StatementKind {
        match parse(sql) {
            Ok(mut stmts) => classify(&stmts.remove(0)),
            Err(e) if e.code == "25006" => StatementKind::Write(e.message),
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    #[test]
    fn writes_are_refused() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "CREATE TABLE x (a int)",
            "DROP TABLE t",
            "TRUNCATE t",
            "COPY t FROM STDIN",
            "CALL p()",
            "SET ROLE admin",
            "SELECT * INTO x FROM t",
            "SELECT * FROM t FOR UPDATE",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "GRANT SELECT ON t TO u",
        ] {
            assert!(
                matches!(kind(sql), StatementKind::Write(_)),
                "{sql}: {:?}",
                kind(sql)
            );
        }
    }

    #[test]
    fn reads_and_session_commands_pass() {
        assert_eq!(kind("SELECT 1"), StatementKind::Query);
        assert_eq!(
            kind("WITH a AS (SELECT 1) SELECT * FROM a"),
            StatementKind::Query
        );
        assert_eq!(kind("EXPLAIN SELECT 1"), StatementKind::Query);
        assert_eq!(kind("BEGIN"), StatementKind::Transaction("BEGIN"));
        assert_eq!(
            kind("SET application_name = 'psql'"),
            StatementKind::Set {
                name: "application_name".into(),
                value: "psql".into()
            }
        );
        assert_eq!(
            kind("SHOW search_path"),
            StatementKind::Show("search_path".into())
        );
    }
}
