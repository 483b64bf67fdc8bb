//! What kind of statement arrived, decided on the parsed SQL before any
//! name is resolved: queries go on to the grant check and planning, session
//! commands are answered by the session, and everything that could change
//! data anywhere is refused here with SQLSTATE 25006.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::parser::{ResetStatement, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    CloseCursor, DeclareType, FetchDirection, ObjectName, Query, SetExpr, Statement, Value, Visit,
    Visitor,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

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
    /// Transaction control and other session commands with nothing to
    /// do; answered with this command tag.
    Transaction(&'static str),
    /// `RESET name`, `RESET ALL` (`None`), `DISCARD ALL`.
    Reset(Option<String>),
    /// `DECLARE name [NO SCROLL] CURSOR [WITHOUT HOLD] FOR query`.
    Declare {
        /// Cursor name.
        name: String,
        /// The query it reads.
        query: Box<Query>,
    },
    /// `FETCH [FORWARD] n | NEXT | ALL FROM name`: `count` is `None` for ALL.
    Fetch {
        /// Cursor name.
        name: String,
        /// How many rows.
        count: Option<u64>,
    },
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close(Option<String>),
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

/// The PostgreSQL-compatibility rewriter of `datafusion-pg-catalog`: turns
/// what clients send to browse the catalog (`'t'::regclass`, `= ANY(...)`,
/// `OPERATOR(pg_catalog.~)`, unqualified `pg_class`, ...) into SQL
/// DataFusion plans.
static COMPAT: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// Whether a table name is part of the PostgreSQL catalog.
fn is_catalog_relation(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    match parts.as_slice() {
        [table] => table.starts_with("pg_"),
        [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
        [] => false,
    }
}

/// A query that reads only the PostgreSQL catalog (or no table at all):
/// what clients send to browse, rewritten by [`COMPAT`]. Queries over
/// federation tables are never rewritten.
fn is_catalog_query(statement: &Statement) -> bool {
    if !matches!(statement, Statement::Query(_)) {
        return false;
    }
    let mut all_catalog = true;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(statement, |name| {
        if !is_catalog_relation(name) {
            all_catalog = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    all_catalog
}

fn compat_parse(sql: &str) -> Option<Vec<DFStatement>> {
    let statements = COMPAT.parse(sql).ok()?;
    statements.iter().all(is_catalog_query).then(|| {
        statements
            .into_iter()
            .map(|s| DFStatement::Statement(Box::new(s)))
            .collect()
    })
}

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
        Ok(statements) => {
            let catalog_only = !statements.is_empty()
                && statements.iter().all(|s| match s {
                    DFStatement::Statement(s) => is_catalog_query(s),
                    _ => false,
                });
            if catalog_only {
                if let Some(rewritten) = compat_parse(sql) {
                    return Ok(rewritten);
                }
            }
            Ok(statements.into_iter().collect())
        }
        Err(e) => {
            if let Some(rewritten) = compat_parse(sql) {
                return Ok(rewritten);
            }
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
        DFStatement::Reset(ResetStatement::Variable(name)) => reset(name),
    }
}

fn reset(name: &ObjectName) -> StatementKind {
    let name = name.to_string().to_ascii_lowercase();
    StatementKind::Reset((name != "all").then_some(name))
}

fn classify_declare(stmts: &[datafusion::sql::sqlparser::ast::Declare]) -> StatementKind {
    let [declare] = stmts else {
        return StatementKind::Unsupported("DECLARE of several cursors".into());
    };
    let (Some(DeclareType::Cursor), Some(query), [name]) = (
        &declare.declare_type,
        &declare.for_query,
        declare.names.as_slice(),
    ) else {
        return StatementKind::Unsupported("this form of DECLARE".into());
    };
    if declare.scroll == Some(true) {
        return StatementKind::Unsupported("SCROLL cursors (tautan cursors are NO SCROLL)".into());
    }
    match classify_sql(&Statement::Query(query.clone())) {
        StatementKind::Query => StatementKind::Declare {
            name: name.value.clone(),
            query: query.clone(),
        },
        other => other,
    }
}

fn fetch_count(limit: &Value) -> Option<u64> {
    match limit {
        Value::Number(n, _) => n.parse().ok(),
        _ => None,
    }
}

fn classify_fetch(name: &str, direction: &FetchDirection) -> StatementKind {
    let count = match direction {
        FetchDirection::Next => Some(Some(1)),
        FetchDirection::All | FetchDirection::ForwardAll => Some(None),
        FetchDirection::Count { limit } => fetch_count(&limit.value).map(Some),
        FetchDirection::Forward { limit: None } => Some(Some(1)),
        FetchDirection::Forward { limit: Some(l) } => fetch_count(&l.value).map(Some),
        _ => None,
    };
    match count {
        Some(count) => StatementKind::Fetch {
            name: name.to_string(),
            count,
        },
        None => StatementKind::Unsupported(
            "this FETCH direction (tautan cursors are forward-only)".into(),
        ),
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
        Statement::Discard { .. } => StatementKind::Reset(None),
        Statement::Reset(r) => match &r.reset {
            datafusion::sql::sqlparser::ast::Reset::ALL => StatementKind::Reset(None),
            datafusion::sql::sqlparser::ast::Reset::ConfigurationParameter(name) => reset(name),
        },
        Statement::Declare { stmts } => classify_declare(stmts),
        Statement::Fetch {
            name,
            direction,
            into: None,
            ..
        } => classify_fetch(&name.value, direction),
        Statement::Close { cursor } => StatementKind::Close(match cursor {
            CloseCursor::All => None,
            CloseCursor::Specific { name } => Some(name.value.clone()),
        }),
        Statement::LISTEN { .. } => StatementKind::Transaction("LISTEN"),
        Statement::UNLISTEN { .. } => StatementKind::Transaction("UNLISTEN"),
        Statement::Deallocate { .. } => StatementKind::Transaction("DEALLOCATE"),
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
        assert_eq!(kind("RESET ALL"), StatementKind::Reset(None));
        assert_eq!(kind("DISCARD ALL"), StatementKind::Reset(None));
        assert_eq!(
            kind("RESET application_name"),
            StatementKind::Reset(Some("application_name".into()))
        );
        assert_eq!(kind("UNLISTEN *"), StatementKind::Transaction("UNLISTEN"));
        assert_eq!(kind("CLOSE ALL"), StatementKind::Close(None));
        assert_eq!(kind("CLOSE c1"), StatementKind::Close(Some("c1".into())));
    }

    #[test]
    fn cursors() {
        assert!(matches!(
            kind(r#"DECLARE "c 1" NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1"#),
            StatementKind::Declare { name, .. } if name == "c 1"
        ));
        assert!(matches!(
            kind("DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE"),
            StatementKind::Write(_)
        ));
        assert_eq!(
            kind(r#"FETCH FORWARD 2000 FROM "c 1""#),
            StatementKind::Fetch {
                name: "c 1".into(),
                count: Some(2000)
            }
        );
        assert_eq!(
            kind("FETCH ALL FROM c"),
            StatementKind::Fetch {
                name: "c".into(),
                count: None
            }
        );
        assert!(matches!(
            kind("FETCH BACKWARD 1 FROM c"),
            StatementKind::Unsupported(_)
        ));
    }

    #[test]
    fn catalog_queries_are_rewritten_and_others_are_not() {
        let rewritten = |sql: &str| match parse(sql) {
            Ok(mut s) => s.remove(0).to_string(),
            Err(e) => panic!("{sql}: {e}"),
        };
        // Unqualified catalog tables get their schema.
        assert!(rewritten("SELECT relname FROM pg_class").contains("pg_catalog.pg_class"));
        // A federation query is left as written.
        let sql = "SELECT nama FROM ref.kecamatan WHERE kode = ANY(ARRAY['a'])";
        assert_eq!(rewritten(sql), sql);
    }
}
