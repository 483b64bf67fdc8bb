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
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use crate::limits::{Shape, TautanDialect, PARSER_RECURSION_LIMIT};

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
    /// The query is taken from the statement by [`take_query`] (not
    /// copied: a query can be [`crate::limits::MAX_DEPTH`] deep).
    Declare {
        /// Cursor name.
        name: String,
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
    /// `COPY (query) TO STDOUT` / `COPY table [(cols)] TO STDOUT`: a read,
    /// answered as a COPY-out stream.
    /// The query is taken from the statement by [`take_query`].
    CopyOut {
        /// Format and its options.
        options: CopyOptions,
    },
    /// A statement that would write: refused with 25006.
    Write(String),
    /// A statement tautan does not support (0A000).
    Unsupported(String),
}

/// The format of a `COPY ... TO STDOUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Tab-separated text with backslash escapes (the default).
    Text,
    /// Comma-separated values.
    Csv,
    /// PostgreSQL's binary COPY format.
    Binary,
}

/// Options of a `COPY ... TO STDOUT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Output format.
    pub format: CopyFormat,
    /// Whether a header line with the column names comes first (text, CSV).
    pub header: bool,
    /// Column delimiter (text, CSV); the format's default when `None`.
    pub delimiter: Option<char>,
    /// How NULL is written (text, CSV); the format's default when `None`.
    pub null: Option<String>,
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

/// Unqualified names the statement calls as table functions
/// (`FROM generate_series(1, 10)`) and never names as a plain table: those
/// relations are DataFusion's table functions, not tables to grant.
pub fn table_function_calls(statement: &DFStatement) -> Vec<String> {
    #[derive(Default)]
    struct Calls {
        called: Vec<String>,
        plain: Vec<String>,
    }
    impl Visitor for Calls {
        type Break = ();
        fn pre_visit_table_factor(
            &mut self,
            factor: &datafusion::sql::sqlparser::ast::TableFactor,
        ) -> ControlFlow<()> {
            if let datafusion::sql::sqlparser::ast::TableFactor::Table { name, args, .. } = factor {
                let bare = match name.0.as_slice() {
                    [part] => part.as_ident().map(|i| i.value.to_ascii_lowercase()),
                    _ => None,
                };
                let to = if args.is_some() {
                    &mut self.called
                } else {
                    &mut self.plain
                };
                to.push(bare.unwrap_or_default());
            }
            ControlFlow::Continue(())
        }
    }
    let mut calls = Calls::default();
    match statement {
        DFStatement::Statement(s) => {
            let _ = s.visit(&mut calls);
        }
        DFStatement::Explain(e) => return table_function_calls(&e.statement),
        _ => {}
    }
    calls
        .called
        .into_iter()
        .filter(|n| !n.is_empty() && !calls.plain.contains(n))
        .collect()
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
    let mut functions = false;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(statement, |name| {
        if is_table_function(name) {
            functions = true;
            return ControlFlow::Continue(());
        }
        if !is_catalog_relation(name) {
            all_catalog = false;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    // A catalog query may read table functions too (pgJDBC's type lookup
    // numbers the search path with `generate_series`); one reading table
    // functions only is not a catalog query.
    all_catalog && (!functions || reads_catalog(statement))
}

/// Set-returning functions catalog queries read rows from.
fn is_table_function(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    matches!(
        parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["generate_series" | "unnest" | "generate_subscripts"]
            | [
                "pg_catalog",
                "generate_series" | "unnest" | "generate_subscripts"
            ]
    )
}

/// Whether `statement` reads a catalog table (not only table functions).
fn reads_catalog(statement: &Statement) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(statement, |name| {
        if !is_table_function(name) && is_catalog_relation(name) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// The compatibility parser's reading of `sql` (rewritten for DataFusion),
/// if every statement only reads the catalog. It is plain sqlparser, with
/// the exponential alternatives [`crate::limits::TautanDialect`] removes,
/// so it only sees statements nested at most `max_nesting` deep.
fn compat_parse(sql: &str, shape: Shape, max_nesting: usize) -> Option<Vec<DFStatement>> {
    if shape.nesting > max_nesting {
        return None;
    }
    let statements = COMPAT.parse(sql).ok()?;
    finish_compat(statements, false)
}

/// [`compat_parse`] of statements already known to read only the catalog.
fn compat_parse_catalog(sql: &str, shape: Shape, max_nesting: usize) -> Option<Vec<DFStatement>> {
    if shape.nesting > max_nesting {
        return None;
    }
    let statements = COMPAT.parse(sql).ok()?;
    finish_compat(statements, true)
}

/// Statements tautan parsed, through the compatibility parser's rewrites
/// only (for catalog queries nested too deeply for its own parser).
fn compat_rewrite(statements: &[DFStatement]) -> Option<Vec<DFStatement>> {
    let plain = statements
        .iter()
        .map(|s| match s {
            DFStatement::Statement(s) => Some(COMPAT.rewrite(s.as_ref().clone())),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    finish_compat(plain, true)
}

/// `statements` as the compatibility parser rewrote them, finished; `None`
/// unless they only read the catalog (`catalog`: known from before the
/// rewrite, which strips `pg_catalog.` from table functions such as
/// `pg_catalog.unnest(...)`).
fn finish_compat(mut statements: Vec<Statement>, catalog: bool) -> Option<Vec<DFStatement>> {
    if !catalog && !statements.iter().all(is_catalog_query) {
        return None;
    }
    for s in &mut statements {
        rewrite_like_escape(s);
        regclass_on_search_path(s);
        regproc_columns_as_names(s);
        regtype_text_as_format_type(s);
        regtype_found(s);
        rewrite_catalog_functions(s);
        name_columns_as_postgresql(s);
        crate::limits::check_sql(s).ok()?;
    }
    Some(
        statements
            .into_iter()
            .map(|s| DFStatement::Statement(Box::new(s)))
            .collect(),
    )
}

/// `oid_column::regtype::text` is the type's name, as `format_type(oid,
/// NULL)` writes it (`integer`, `text[]`): DataFusion's cast would give the
/// oid's digits (asyncpg's type introspection reads `elemtype::regtype::text`).
fn regtype_text_as_format_type(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    let type_name = |t: &datafusion::sql::sqlparser::ast::DataType| {
        let name = t.to_string().to_ascii_lowercase();
        name.strip_prefix("pg_catalog.")
            .unwrap_or(&name)
            .to_string()
    };
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Cast {
            expr: outer,
            data_type,
            ..
        } = e
        {
            if matches!(type_name(data_type).as_str(), "text" | "varchar") {
                // A type named by a literal (`'int4'::regtype::text`), which
                // the compatibility parser made an oid lookup by `typname`:
                // looked up with PostgreSQL's aliases (`integer`), written
                // as `format_type` writes it.
                if let Some(name) = typname_lookup(outer) {
                    if let Some(expr) = template(
                        // (A cast of a cast: named `text`, as PostgreSQL names it.)
                        &format!(
                            "CAST(CAST(format_type({REGTYPE_FOUND}((SELECT oid FROM pg_catalog.pg_type WHERE typname = $1), $2), NULL) AS TEXT) AS TEXT)",
                            REGTYPE_FOUND = crate::pg_functions::REGTYPE_FOUND
                        ),
                        vec![
                            Expr::value(Value::SingleQuotedString(type_alias(&name))),
                            Expr::value(Value::SingleQuotedString(written_type_name(&name))),
                        ],
                    ) {
                        *e = expr;
                    }
                    return ControlFlow::Continue(());
                }
                if let Expr::Cast {
                    expr: inner,
                    data_type: reg,
                    ..
                } = outer.as_ref()
                {
                    if type_name(reg) == "regtype" {
                        if let Some(expr) = template(
                            "CASE WHEN $1 = 0 THEN '-' ELSE format_type($1, NULL) END",
                            vec![inner.as_ref().clone()],
                        ) {
                            *e = expr;
                        }
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A type's name as PostgreSQL's error names it: the compatibility
/// parser looks up `text[]` as `_text`.
fn written_type_name(typname: &str) -> String {
    match typname.strip_prefix('_') {
        Some(element) if !element.is_empty() => format!("{element}[]"),
        _ => typname.to_string(),
    }
}

/// `'name'::regtype` (not read as text): the compatibility parser's lookup
/// by `typname`, with PostgreSQL's aliases (`integer`, `text[]`), and
/// 42704 when no type has that name, as PostgreSQL's cast raises.
fn regtype_found(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    let _ = visit_expressions_mut(statement, |e| {
        if let Some(name) = typname_lookup(e) {
            if let Some(expr) = template(
                &format!(
                    "{}((SELECT oid FROM pg_catalog.pg_type WHERE typname = $1), $2)",
                    crate::pg_functions::REGTYPE_FOUND
                ),
                vec![
                    Expr::value(Value::SingleQuotedString(type_alias(&name))),
                    Expr::value(Value::SingleQuotedString(written_type_name(&name))),
                ],
            ) {
                *e = expr;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The name in the compatibility parser's lookup of `'name'::regtype`,
/// `(SELECT oid FROM pg_catalog.pg_type WHERE typname = 'name')`.
fn typname_lookup(e: &datafusion::sql::sqlparser::ast::Expr) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, BinaryOperator, Expr};
    let Expr::Subquery(query) = e else {
        return None;
    };
    if !query
        .to_string()
        .starts_with("SELECT oid FROM pg_catalog.pg_type WHERE typname = ")
    {
        return None;
    }
    let mut name = None;
    let _ = visit_expressions(query.as_ref(), |x| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = x
        {
            let typname = matches!(left.as_ref(), Expr::Identifier(i) if i.value == "typname");
            if let (true, Expr::Value(v)) = (typname, right.as_ref()) {
                if let Value::SingleQuotedString(n) = &v.value {
                    name = Some(n.clone());
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    name
}

/// The `pg_type.typname` of a type as SQL names it (`integer` is `int4`,
/// `character varying` is `varchar`, `pg_catalog.text` is `text`).
fn type_alias(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    // `text[]` is `_text`; a type modifier (`varchar(10)`) names no other type.
    let (name, array) = match name.strip_suffix("[]") {
        Some(element) => (element.trim_end().to_string(), true),
        None => (name, false),
    };
    let name = match name.find('(') {
        Some(at) if name.ends_with(')') => name[..at].trim_end().to_string(),
        _ => name,
    };
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let base = match name {
        "integer" | "int" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "character" => "bpchar",
        "decimal" => "numeric",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        other => other,
    };
    if array {
        format!("_{base}")
    } else {
        base.to_string()
    }
}

/// `pg_type`'s `regproc` columns (`typinput`, `typoutput`, ...) hold the
/// function's name here, not its oid: `typinput = 'pg_catalog.array_in'::regproc`
/// (pgJDBC's type lookup), which the compatibility parser turns into an oid
/// lookup in `pg_proc`, compares with the name instead.
fn regproc_columns_as_names(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, BinaryOperator, Expr};
    const LOOKUP: &str = "SELECT oid FROM pg_catalog.pg_proc WHERE proname = '";
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = e
        {
            let column = match left.as_ref() {
                Expr::Identifier(i) => Some(i.value.as_str()),
                Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
                _ => None,
            };
            let regproc_column = column.is_some_and(|c| {
                matches!(
                    c,
                    "typinput" | "typoutput" | "typreceive" | "typsend" | "typmodin" | "typmodout"
                )
            });
            if let (true, Expr::Subquery(query)) = (regproc_column, right.as_ref()) {
                let text = query.to_string();
                let name = text
                    .strip_prefix(LOOKUP)
                    .and_then(|rest| rest.strip_suffix('\''))
                    .filter(|n| !n.contains('\''));
                if let Some(name) = name {
                    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
                    **right = Expr::value(Value::SingleQuotedString(name.to_string()));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `'name'::regclass` of an unqualified name finds the relation on the
/// search path, which starts with `pg_catalog` (`'pg_class'::regclass` is
/// 1259): the compatibility parser's lookup only reads `current_schema()`.
fn regclass_on_search_path(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    const CURRENT: &str = "n.nspname = current_schema()";
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Subquery(query) = e {
            let text = query.to_string();
            if text.contains("parse_ident(") && text.contains(CURRENT) {
                let widened =
                    text.replace(CURRENT, "n.nspname IN ('pg_catalog', current_schema())");
                // The name looked up: `parse_ident(<name>::TEXT)`'s operand.
                let mut name = None;
                let _ =
                    datafusion::sql::sqlparser::ast::visit_expressions(
                        query.as_ref(),
                        |x| match x {
                            Expr::Function(f)
                                if f.name.to_string().eq_ignore_ascii_case("parse_ident") =>
                            {
                                name = unnamed_arg(f, 0).cloned();
                                ControlFlow::Break(())
                            }
                            _ => ControlFlow::Continue(()),
                        },
                    );
                let lookup = template(&format!("({widened})"), vec![]);
                // Not found is 42P01, as PostgreSQL's cast raises.
                let found = match (&lookup, name) {
                    (Some(l), Some(n)) => template(
                        &format!("{}($1, $2)", crate::pg_functions::REGCLASS_FOUND),
                        vec![l.clone(), n],
                    ),
                    _ => None,
                };
                if let Some(expr) = found.or(lookup) {
                    *e = expr;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Argument `i` of a call, when it is a plain positional one.
fn unnamed_arg(
    f: &datafusion::sql::sqlparser::ast::Function,
    i: usize,
) -> Option<&datafusion::sql::sqlparser::ast::Expr> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    match &f.args {
        FunctionArguments::List(list) => match list.args.get(i) {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(a))) => Some(a),
            _ => None,
        },
        _ => None,
    }
}

/// The type a lookup [`regclass_on_search_path`] or [`regtype_found`] made
/// of a `'name'::regclass` or `'name'::regtype` cast stands for, as
/// PostgreSQL names the column (`None` for any other expression).
fn reg_lookup(e: &datafusion::sql::sqlparser::ast::Expr) -> Option<&'static str> {
    match e {
        datafusion::sql::sqlparser::ast::Expr::Function(f) => match f.name.to_string().as_str() {
            crate::pg_functions::REGCLASS_FOUND => Some("regclass"),
            crate::pg_functions::REGTYPE_FOUND => Some("regtype"),
            _ => None,
        },
        _ => None,
    }
}

/// Catalog functions that read catalog tables, as the SQL they stand for:
/// `obj_description`/`col_description` as lookups in `pg_description`,
/// and the set-returning `generate_subscripts(a, 1)` (SQLAlchemy's primary
/// keys) and `information_schema._pg_expandarray(a)` (pgJDBC's
/// `getPrimaryKeys`) as DataFusion `unnest`s (zipped like PostgreSQL's).
fn rewrite_catalog_functions(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    let _ = visit_expressions_mut(statement, |e| {
        // psql's `\d+` appends a TOAST table's options to `reloptions`:
        // `c.reloptions || array(select 'toast.' || x from unnest(tc.reloptions) x)`.
        // tautan's relations have no TOAST table: the options are the
        // relation's own.
        if let Expr::BinaryOp { left, op, right } = e {
            let toast = matches!(
                op,
                datafusion::sql::sqlparser::ast::BinaryOperator::StringConcat
            ) && matches!(right.as_ref(), Expr::Function(f)
                    if f.name.to_string().eq_ignore_ascii_case("array")
                        && f.args.to_string().contains("toast."));
            if toast {
                *e = left.as_ref().clone();
                return ControlFlow::Continue(());
            }
        }
        // `(composite).field`, as PostgreSQL writes access to a row's
        // field, is DataFusion's `get_field(struct, 'field')`.
        if let Expr::CompoundFieldAccess { root, access_chain } = e {
            use datafusion::sql::sqlparser::ast::AccessExpr;
            if matches!(**root, Expr::Nested(_)) {
                let mut built = (**root).clone();
                for access in access_chain.iter() {
                    match access {
                        AccessExpr::Dot(Expr::Identifier(field)) => {
                            let name = Expr::value(Value::SingleQuotedString(field.value.clone()));
                            match template("get_field($1, $2)", vec![built, name]) {
                                Some(expr) => built = expr,
                                None => return ControlFlow::Continue(()),
                            }
                        }
                        _ => return ControlFlow::Continue(()),
                    }
                }
                *e = built;
            }
            return ControlFlow::Continue(());
        }
        // A scalar subquery in a catalog query returns at most one row
        // (PostgreSQL errors otherwise); DataFusion wants that proved by an
        // aggregate, so `(SELECT x FROM ... WHERE correlated)` becomes
        // `(SELECT max(x) ...)`.
        if let Expr::Subquery(query) = e {
            // `pg_get_serial_sequence` is NULL here (no sequences behind
            // remote columns), and so is the oid looked up from it.
            if query.to_string().contains("pg_get_serial_sequence(") {
                *e = Expr::value(Value::Null);
                return ControlFlow::Continue(());
            }
            aggregate_scalar_subquery(query);
            // Predicates on the outer row only (`WHERE outer.flag AND
            // inner.k = outer.k`) stop DataFusion's decorrelation; they
            // move out: `tautan_if(outer.flag, (SELECT ... WHERE inner.k =
            // outer.k))`.
            if let Some(outer) = take_outer_predicates(query) {
                let subquery = Expr::Subquery(query.clone());
                if let Some(expr) = template("tautan_if($1, $2)", vec![outer, subquery]) {
                    *e = expr;
                }
            }
            return ControlFlow::Continue(());
        }
        // `CASE WHEN c THEN (SELECT ...) [ELSE NULL] END`: DataFusion does
        // not decorrelate subqueries under CASE, but does under a function
        // call, so this becomes `tautan_if(c, (SELECT ...))`.
        if let Expr::Case {
            operand: None,
            conditions,
            else_result,
            ..
        } = e
        {
            let else_null = match else_result {
                None => true,
                Some(v) => v.to_string().eq_ignore_ascii_case("null"),
            };
            if let ([branch], true) = (conditions.as_slice(), else_null) {
                if matches!(branch.result, Expr::Subquery(_)) {
                    let args = vec![branch.condition.clone(), branch.result.clone()];
                    if let Some(expr) = template("tautan_if($1, $2)", args) {
                        *e = expr;
                    }
                }
            }
            return ControlFlow::Continue(());
        }
        let Expr::Function(f) = e else {
            return ControlFlow::<()>::Continue(());
        };
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase())
            .unwrap_or_default();
        let Some(first) = unnamed_arg(f, 0).cloned() else {
            return ControlFlow::Continue(());
        };
        let second = unnamed_arg(f, 1).cloned();
        let rewritten = match name.as_str() {
            // Descriptions are rows of pg_description (the sources'
            // comments, see pg_catalog::SourceFacts).
            "obj_description" => template(
                "(SELECT max(d.description) FROM pg_catalog.pg_description d \
                 WHERE d.objoid = $1 AND d.objsubid = 0)",
                vec![first],
            ),
            "col_description" => match second {
                Some(column) => template(
                    "(SELECT max(d.description) FROM pg_catalog.pg_description d \
                     WHERE d.objoid = $1 AND d.objsubid = $2)",
                    vec![first, column],
                ),
                None => return ControlFlow::Continue(()),
            },
            "generate_subscripts" => template(
                "unnest(range(1, CAST(cardinality($1) AS BIGINT) + 1))",
                vec![first],
            ),
            "_pg_expandarray" => template("unnest(tautan_expandarray($1))", vec![first]),
            _ => return ControlFlow::Continue(()),
        };
        if let Some(expr) = rewritten {
            *e = expr;
        }
        ControlFlow::Continue(())
    });
}

fn aggregate_scalar_subquery(query: &mut Query) {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SelectItem};
    if query.limit_clause.is_some() {
        return;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.projection.len() != 1 || select.having.is_some() {
        return;
    }
    let expr = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return,
    };
    let text = expr.to_string();
    let lower = text.to_ascii_lowercase();
    const AGGREGATES: &[&str] = &[
        "count(",
        "max(",
        "min(",
        "sum(",
        "avg(",
        "array_agg(",
        "bool_and(",
        "bool_or(",
        "string_agg(",
    ];
    if AGGREGATES.iter().any(|a| lower.contains(a)) {
        return;
    }
    if let Some(wrapped) = template("max($1)", vec![expr.clone()]) {
        *expr = wrapped;
    }
}

fn conjuncts(
    e: &datafusion::sql::sqlparser::ast::Expr,
) -> Vec<datafusion::sql::sqlparser::ast::Expr> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr};
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut out = conjuncts(left);
            out.extend(conjuncts(right));
            out
        }
        Expr::Nested(inner)
            if matches!(
                **inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(inner)
        }
        other => vec![other.clone()],
    }
}

/// Removes from a scalar subquery's WHERE the conjuncts that name only
/// tables outside its FROM (qualified columns of the outer query) and
/// returns them AND-ed, if any.
fn take_outer_predicates(query: &mut Query) -> Option<datafusion::sql::sqlparser::ast::Expr> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Expr, TableFactor};
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let mut inner: Vec<String> = Vec::new();
    for t in &select.from {
        let factors = std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation));
        for f in factors {
            if let TableFactor::Table { name, alias, .. } = f {
                inner.push(name.to_string().to_ascii_lowercase());
                if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                    inner.push(last.value.to_ascii_lowercase());
                }
                if let Some(a) = alias {
                    inner.push(a.name.value.to_ascii_lowercase());
                }
            } else {
                return None; // derived tables: leave as is
            }
        }
    }
    let selection = select.selection.as_ref()?;
    let (mut outer, mut keep) = (Vec::new(), Vec::new());
    for c in conjuncts(selection) {
        let mut qualified = 0;
        let mut only_outer = true;
        let _ = visit_expressions(&c, |e| {
            match e {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    qualified += 1;
                    let qualifier = parts[..parts.len() - 1]
                        .iter()
                        .map(|p| p.value.to_ascii_lowercase())
                        .collect::<Vec<_>>()
                        .join(".");
                    let last = parts[parts.len() - 2].value.to_ascii_lowercase();
                    if inner.contains(&qualifier) || inner.contains(&last) {
                        only_outer = false;
                    }
                }
                Expr::Identifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. } => only_outer = false,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        if qualified > 0 && only_outer {
            outer.push(c);
        } else {
            keep.push(c);
        }
    }
    let and = |parts: Vec<Expr>| {
        parts.into_iter().reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: datafusion::sql::sqlparser::ast::BinaryOperator::And,
            right: Box::new(b),
        })
    };
    let outer = and(outer)?;
    select.selection = and(keep);
    Some(outer)
}

/// The expression `text` (constant SQL written here, with `$1`, `$2`, ...
/// where the arguments go) with `args` put in place as syntax trees: the
/// rewrites above never print a user's expression and parse it back, so
/// no quoting of theirs is involved.
pub(crate) fn template(
    text: &str,
    args: Vec<datafusion::sql::sqlparser::ast::Expr>,
) -> Option<datafusion::sql::sqlparser::ast::Expr> {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    use datafusion::sql::sqlparser::parser::Parser;
    let dialect = TautanDialect::for_sql(text);
    let mut expr = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .ok()?;
    let mut missing = false;
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let Expr::Value(v) = e {
            if let Value::Placeholder(p) = &v.value {
                let arg = p
                    .strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| args.get(n.wrapping_sub(1)));
                match arg {
                    Some(arg) => *e = arg.clone(),
                    None => missing = true,
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    (!missing).then_some(expr)
}

/// `x LIKE p ESCAPE 'c'` (SQLAlchemy's inspector writes `ESCAPE '/'`)
/// becomes `x LIKE tautan_like_escape(p, 'c')`: DataFusion's LIKE escapes
/// with backslash only.
fn rewrite_like_escape(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr};
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } = e
        {
            let escape = escape_char.as_ref().map(|v| v.value.clone());
            if let Some(Value::SingleQuotedString(c)) = escape {
                if c != "\\" {
                    let args = vec![
                        (**pattern).clone(),
                        Expr::value(Value::SingleQuotedString(c)),
                    ];
                    if let Some(expr) = template("tautan_like_escape($1, $2)", args) {
                        **pattern = expr;
                        *escape_char = None;
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Splits and parses SQL text (PostgreSQL dialect). A statement the parser
/// rejects but that starts like a write is refused as a write (25006), not
/// as a syntax error: the answer to "may I write?" does not depend on syntax.
///
/// Every statement is bounded here, whichever way it arrives (simple query,
/// Parse, `DECLARE … CURSOR FOR`, `COPY (…) TO STDOUT`, `EXPLAIN`): nesting
/// at most [`crate::limits::MAX_DEPTH`] and placeholders a Bind can supply
/// ([`crate::limits`]). Parsing runs on a stack segment of its own.
pub fn parse(sql: &str) -> Result<Vec<DFStatement>, crate::error::QueryError> {
    crate::limits::on_parse_stack(|| {
        let mut statements = parse_bounded(sql)?;
        for statement in &mut statements {
            as_postgresql_reads_it(statement);
        }
        Ok(statements)
    })
}

/// tautan's rewrites of a parsed statement, so DataFusion plans it as
/// PostgreSQL reads it; an `EXPLAIN`'s statement too, so the plan it shows
/// is the plan the statement runs with.
fn as_postgresql_reads_it(statement: &mut DFStatement) {
    match statement {
        DFStatement::Statement(s) => {
            intervals_as_casts(s);
            timestamps_in_microseconds(s);
            negations_as_comparisons(s);
            // Before `= ANY` is rewritten (as a CASE): PostgreSQL names
            // the column `?column?`, not `case`.
            name_columns_as_postgresql(s);
            aggregates_apart_from_casts(s);
            crate::any_array::with_null_semantics(s);
            crate::unbounded_numeric::casts_as_placeholders(s);
            crate::numeric::literals_as_numerics(s);
            operators_as_functions(s);
        }
        DFStatement::Explain(e) => as_postgresql_reads_it(&mut e.statement),
        _ => {}
    }
}

/// Separates a result column's name from the suffix that keeps it unique
/// for DataFusion (PostgreSQL allows two columns of one name; DataFusion
/// does not). No identifier a client writes contains it.
pub const NAME_SUFFIX: char = '\u{0}';

/// The name a client is told for result column `name`
/// ([`name_columns_as_postgresql`]).
pub fn column_name(name: &str) -> &str {
    name.split(NAME_SUFFIX).next().unwrap_or(name)
}

/// The name PostgreSQL gives an unaliased select-list expression, where
/// DataFusion's would differ (`?column?` for `1`, `NULL`, `a + 1`; the type
/// for `1::int`; `case` for CASE; the function's name for a call): `None`
/// where DataFusion names it as PostgreSQL does (columns).
fn postgresql_column_name(expr: &datafusion::sql::sqlparser::ast::Expr) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{DataType, Expr, SelectItem};
    match expr {
        Expr::Value(_)
        | Expr::BinaryOp { .. }
        | Expr::UnaryOp { .. }
        | Expr::InList { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::SimilarTo { .. }
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsNotTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotUnknown(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::AnyOp { .. }
        | Expr::AllOp { .. } => Some("?column?".into()),
        Expr::Nested(inner) => postgresql_column_name(inner),
        Expr::Case { .. } => Some("case".into()),
        // `'name'::regclass`, which is a lookup here: named as the cast.
        e if reg_lookup(e).is_some() => reg_lookup(e).map(String::from),
        // A function call is named after the function: `count(*)` is
        // `count`, `pg_catalog.lower(x)` is `lower`.
        Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(|i| {
            if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            }
        }),
        Expr::Extract { .. } => Some("extract".into()),
        Expr::Substring { .. } => Some("substring".into()),
        Expr::Position { .. } => Some("position".into()),
        Expr::Overlay { .. } => Some("overlay".into()),
        Expr::Ceil { .. } => Some("ceil".into()),
        Expr::Floor { .. } => Some("floor".into()),
        Expr::Trim { trim_where, .. } => Some(
            match trim_where {
                Some(datafusion::sql::sqlparser::ast::TrimWhereField::Leading) => "ltrim",
                Some(datafusion::sql::sqlparser::ast::TrimWhereField::Trailing) => "rtrim",
                _ => "btrim",
            }
            .into(),
        ),
        Expr::Exists { .. } => Some("exists".into()),
        // A scalar subquery is named after its one column.
        Expr::Subquery(query) => Some(match query.body.as_ref() {
            SetExpr::Select(select) => match select.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => alias.value.clone(),
                Some(SelectItem::UnnamedExpr(Expr::Identifier(i))) => i.value.clone(),
                Some(SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))) => parts
                    .last()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| "?column?".into()),
                Some(SelectItem::UnnamedExpr(e)) => {
                    postgresql_column_name(e).unwrap_or_else(|| "?column?".into())
                }
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        }),
        Expr::Array(_) => Some("array".into()),
        Expr::Interval(_) => Some("interval".into()),
        Expr::Cast {
            expr, data_type, ..
        } => {
            // A cast keeps a column's, a function's or a subquery's (or
            // ARRAY's, EXISTS's) name; a constant or an operator's result
            // is named after the type.
            let mut operand = expr.as_ref();
            while let Expr::Nested(inner) = operand {
                operand = inner;
            }
            let weak = matches!(
                operand,
                Expr::Value(_)
                    | Expr::BinaryOp { .. }
                    | Expr::UnaryOp { .. }
                    | Expr::Case { .. }
                    | Expr::Cast { .. }
            ) || reg_lookup(operand).is_some();
            let ident = |i: &datafusion::sql::sqlparser::ast::Ident| {
                if i.quote_style.is_some() {
                    i.value.clone()
                } else {
                    i.value.to_lowercase()
                }
            };
            match operand {
                // DataFusion would name `t.id::text` by its qualified name.
                Expr::Identifier(i) => return Some(ident(i)),
                Expr::CompoundIdentifier(parts) => return parts.last().map(ident),
                _ if !weak => return postgresql_column_name(expr),
                _ => {}
            }
            let name = match data_type {
                DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4".into(),
                DataType::BigInt(_) | DataType::Int8(_) => "int8".into(),
                DataType::SmallInt(_) | DataType::Int2(_) => "int2".into(),
                DataType::Boolean | DataType::Bool => "bool".into(),
                DataType::Real | DataType::Float4 => "float4".into(),
                DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => {
                    "float8".into()
                }
                DataType::Numeric(_) | DataType::Decimal(_) => "numeric".into(),
                DataType::Varchar(_) | DataType::CharacterVarying(_) => "varchar".into(),
                DataType::Char(_) | DataType::Character(_) => "bpchar".into(),
                DataType::Timestamp(_, datafusion::sql::sqlparser::ast::TimezoneInfo::Tz)
                | DataType::Timestamp(
                    _,
                    datafusion::sql::sqlparser::ast::TimezoneInfo::WithTimeZone,
                ) => "timestamptz".into(),
                DataType::Timestamp(..) => "timestamp".into(),
                DataType::Time(..) => "time".into(),
                other => other
                    .to_string()
                    .rsplit('.')
                    .next()
                    .unwrap_or("?column?")
                    .to_ascii_lowercase(),
            };
            Some(name)
        }
        _ => None,
    }
}

/// An identifier as DataFusion reads it: as written when quoted, else
/// lowercased.
fn normalized(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Unaliased select-list expressions named as PostgreSQL names them
/// (`SELECT 1, 2` has two columns `?column?`; DataFusion would call them
/// `Int64(1)` and `Int64(2)`, and refuse `SELECT NULL AS a, NULL, NULL` for
/// the two columns named `NULL`). Names that repeat get an invisible suffix
/// ([`NAME_SUFFIX`]) the wire drops ([`column_name`]).
fn name_columns_as_postgresql(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, VisitMut, VisitorMut};
    struct Namer {
        /// The statement's own query (not a subquery) is next.
        top: bool,
    }
    /// Names the select list of `body`; answers the user's aliases it
    /// renamed (as written, as renamed), for the query's ORDER BY.
    fn name_select(body: &mut SetExpr, top: bool) -> Vec<(String, String)> {
        let mut renamed = vec![];
        match body {
            SetExpr::Select(select) => {
                // `SELECT *, kode`: the star holds `kode` too. In the
                // statement's own select list (whose names only the client
                // reads) a column next to a star is kept apart.
                let beside_star = top
                    && select.projection.iter().any(|item| {
                        matches!(
                            item,
                            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                        )
                    });
                let aliases: Vec<String> = select
                    .projection
                    .iter()
                    .filter_map(|item| match item {
                        SelectItem::ExprWithAlias { alias, .. } => Some(normalized(alias)),
                        _ => None,
                    })
                    .collect();
                let mut taken: std::collections::HashSet<String> = Default::default();
                // `name`, or `name` with the invisible suffix, that is in
                // neither `taken` nor `avoid`; taken from now on.
                let unique = |taken: &mut std::collections::HashSet<String>,
                              avoid: &[String],
                              name: &str| {
                    let mut unique = name.to_string();
                    let mut n = 1;
                    while taken.contains(&unique) || avoid.contains(&unique) {
                        n += 1;
                        unique = format!("{name}{NAME_SUFFIX}{n}");
                    }
                    taken.insert(unique.clone());
                    unique
                };
                for item in select.projection.iter_mut() {
                    match item {
                        // `SELECT 1 AS a, 2 AS a`: the second `a` is kept
                        // apart for DataFusion; the client sees two `a`.
                        // `SELECT *, 1 AS id`: an alias beside a star
                        // is kept apart from the star's columns too.
                        SelectItem::ExprWithAlias { alias, .. } => {
                            let written = normalized(alias);
                            let name = if beside_star {
                                unique(&mut taken, &[], &format!("{written}{NAME_SUFFIX}*"))
                            } else {
                                unique(&mut taken, &[], &written)
                            };
                            if name != written {
                                renamed.push((written, name.clone()));
                                *alias = Ident::with_quote('"', name);
                            }
                        }
                        // `SELECT kode, kode`: a column named again.
                        SelectItem::UnnamedExpr(
                            expr @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_)),
                        ) => {
                            let last = match &*expr {
                                Expr::CompoundIdentifier(parts) => parts.last(),
                                Expr::Identifier(i) => Some(i),
                                _ => None,
                            };
                            let Some(last) = last else { continue };
                            let name = normalized(last);
                            let taken_already =
                                beside_star || taken.contains(&name) || aliases.contains(&name);
                            let fresh = if beside_star {
                                unique(&mut taken, &[], &format!("{name}{NAME_SUFFIX}*"))
                            } else {
                                unique(&mut taken, &[], &name)
                            };
                            if taken_already {
                                *item = SelectItem::ExprWithAlias {
                                    expr: expr.clone(),
                                    alias: Ident::with_quote('"', fresh),
                                };
                            }
                        }
                        SelectItem::UnnamedExpr(expr) => {
                            let Some(name) = postgresql_column_name(expr) else {
                                continue;
                            };
                            // Not an alias written later in the list either.
                            let fresh = if beside_star {
                                unique(&mut taken, &aliases, &format!("{name}{NAME_SUFFIX}*"))
                            } else {
                                unique(&mut taken, &aliases, &name)
                            };
                            *item = SelectItem::ExprWithAlias {
                                expr: expr.clone(),
                                alias: Ident::with_quote('"', fresh),
                            };
                        }
                        _ => {}
                    }
                }
            }
            SetExpr::SetOperation { left, .. } => return name_select(left, top),
            SetExpr::Query(query) => return name_select(&mut query.body, top),
            _ => {}
        }
        renamed
    }
    impl VisitorMut for Namer {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let renamed = name_select(&mut query.body, self.top);
            self.top = false;
            // `ORDER BY x` of `SELECT *, 1 AS x`: the renamed alias.
            if let Some(datafusion::sql::sqlparser::ast::OrderBy {
                kind: datafusion::sql::sqlparser::ast::OrderByKind::Expressions(items),
                ..
            }) = query.order_by.as_mut()
            {
                for item in items {
                    let Expr::Identifier(ident) = &mut item.expr else {
                        continue;
                    };
                    let written = normalized(ident);
                    if let Some((_, name)) = renamed.iter().find(|(from, _)| *from == written) {
                        *ident = Ident::with_quote('"', name.clone());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Namer { top: true });
}

/// `NOT (x = 'text')` becomes `(x = 'text') = false` when the negated
/// expression compares with a quoted literal. The same for every boolean
/// and NULL, but DataFusion's planner types the operand of `NOT` before
/// [`crate::pg_input`] has given the literal its column's type, and a
/// boolean, time or interval column compared with text would fail there.
fn negations_as_comparisons(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions, visit_expressions_mut, BinaryOperator, Expr, UnaryOperator,
    };
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } = e
        {
            let mut quoted = false;
            let _ = visit_expressions(expr.as_ref(), |x| {
                if matches!(x, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))) {
                    quoted = true;
                }
                ControlFlow::<()>::Continue(())
            });
            if quoted {
                let operand = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                *e = Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(operand))),
                    op: BinaryOperator::Eq,
                    right: Box::new(Expr::value(Value::Boolean(false))),
                };
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Aggregates of one select that differ only by casts of their arguments
/// (`count(x), count(x::text)`, `sum(i), sum(i::int8)`) kept apart:
/// DataFusion names a cast after its operand, so both were one name in
/// its aggregate ("duplicate field name") where PostgreSQL answers. The
/// later ones take their arguments through a one-argument `coalesce`,
/// which is the argument itself and has a name of its own.
fn aggregates_apart_from_casts(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        visit_expressions, visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr,
        FunctionArguments, OrderBy, OrderByKind, Query, SelectItem, SetExpr, VisitMut, VisitorMut,
    };
    /// Aggregates whose argument's cast DataFusion's names leave out.
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "bool_and",
        "bool_or",
        "every",
        "string_agg",
        "array_agg",
        "stddev",
        "stddev_samp",
        "stddev_pop",
        "variance",
        "var_samp",
        "var_pop",
        "median",
        "bit_and",
        "bit_or",
        "bit_xor",
    ];
    /// `e` as text with its casts and parentheses left out.
    fn uncast(e: &Expr) -> String {
        let mut e = e.clone();
        let _ = visit_expressions_mut(&mut e, |x| {
            while let Expr::Cast { expr, .. } | Expr::Nested(expr) = x {
                let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                *x = inner;
            }
            ControlFlow::<()>::Continue(())
        });
        e.to_string()
    }
    fn has_cast(e: &Expr) -> bool {
        let mut found = false;
        let _ = visit_expressions(e, |x| {
            found |= matches!(x, Expr::Cast { .. });
            ControlFlow::<()>::Continue(())
        });
        found
    }
    struct Apart;
    impl VisitorMut for Apart {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let SetExpr::Select(select) = query.body.as_mut() else {
                return ControlFlow::Continue(());
            };
            // Uncast text of each call → its distinct writings, in order.
            let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
            let mut exprs: Vec<&mut Expr> = Vec::new();
            for item in select.projection.iter_mut() {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    exprs.push(e);
                }
            }
            exprs.extend(select.having.as_mut());
            if let Some(OrderBy {
                kind: OrderByKind::Expressions(order),
                ..
            }) = query.order_by.as_mut()
            {
                exprs.extend(order.iter_mut().map(|o| &mut o.expr));
            }
            for expr in exprs {
                let _ = visit_expressions_mut(expr, |x| {
                    let Expr::Function(f) = x else {
                        return ControlFlow::<()>::Continue(());
                    };
                    let name = f.name.to_string().to_ascii_lowercase();
                    let FunctionArguments::List(list) = &mut f.args else {
                        return ControlFlow::Continue(());
                    };
                    if !AGGREGATES.contains(&name.as_str()) {
                        return ControlFlow::Continue(());
                    }
                    let key = format!("{name}({})", {
                        list.args
                            .iter()
                            .map(|a| match a {
                                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => uncast(e),
                                other => other.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    // The n-th distinct writing takes n `coalesce`s.
                    let written = list.to_string();
                    let writings = seen.entry(key).or_default();
                    let n = match writings.iter().position(|w| *w == written) {
                        Some(n) => n,
                        None => {
                            writings.push(written);
                            writings.len() - 1
                        }
                    };
                    for a in list.args.iter_mut() {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = a {
                            if has_cast(e) {
                                for _ in 0..n {
                                    let arg = std::mem::replace(e, Expr::value(Value::Null));
                                    *e = template("coalesce($1)", vec![arg.clone()]).unwrap_or(arg);
                                }
                            }
                        }
                    }
                    ControlFlow::Continue(())
                });
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Apart);
}

/// PostgreSQL's operators and functions DataFusion's planner does not know,
/// as the DataFusion expressions that answer the same: `@ x` is `abs(x)`,
/// `|/ x` is `sqrt(x)`, `||/ x` is `cbrt(x)`, `mod(a, b)` is `a % b`
/// (truncating, and raising on a zero divisor, as PostgreSQL's `mod`), and
/// `extract(f FROM x)` is `date_part('f', x)`. Runs
/// after [`name_columns_as_postgresql`], so result columns keep the names
/// PostgreSQL gives the original (`?column?`, `mod`).
fn operators_as_functions(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, Expr, UnaryOperator};
    let _ = visit_expressions_mut(statement, |e| {
        let rewritten = match e {
            Expr::UnaryOp { op, expr } => {
                let function = match op {
                    UnaryOperator::PGAbs => "abs",
                    UnaryOperator::PGSquareRoot => "sqrt",
                    UnaryOperator::PGCubeRoot => "cbrt",
                    _ => return ControlFlow::<()>::Continue(()),
                };
                template(&format!("{function}($1)"), vec![expr.as_ref().clone()])
            }
            // DataFusion plans `extract` with its own `date_part`, not the
            // session's ([`crate::date_part`]): written as a call of it.
            Expr::Extract { field, expr, .. } => template(
                "date_part($1, $2)",
                vec![
                    Expr::value(Value::SingleQuotedString(field.to_string())),
                    expr.as_ref().clone(),
                ],
            ),
            Expr::Function(f)
                if matches!(
                    f.name.to_string().to_ascii_lowercase().as_str(),
                    "mod" | "pg_catalog.mod"
                ) =>
            {
                match (unnamed_arg(f, 0), unnamed_arg(f, 1), unnamed_arg(f, 2)) {
                    (Some(a), Some(b), None) => template("($1) % ($2)", vec![a.clone(), b.clone()]),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(expr) = rewritten {
            *e = Expr::Nested(Box::new(expr));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `INTERVAL '1 year 2 mons'` becomes `CAST('1 year 2 mons' AS INTERVAL)`,
/// which [`crate::pg_input`] reads with PostgreSQL's interval syntax
/// (DataFusion's own reading of interval literals does not know
/// PostgreSQL's words, e.g. `mons`). Intervals with a unit after the
/// quotes (`INTERVAL '1' DAY`) are left to DataFusion.
fn intervals_as_casts(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, CastKind, DataType, Expr};
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Interval(interval) = e {
            let plain = interval.leading_field.is_none()
                && interval.last_field.is_none()
                && interval.leading_precision.is_none()
                && interval.fractional_seconds_precision.is_none();
            if plain
                && matches!(&*interval.value, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
            {
                *e = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: interval.value.clone(),
                    data_type: DataType::Interval {
                        fields: None,
                        precision: None,
                    },
                    array: false,
                    format: None,
                };
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `::timestamp`, `CAST(… AS timestamp)` and `TIMESTAMP '…'` are read as
/// PostgreSQL's timestamps, in microseconds (`timestamp(6)`): DataFusion's
/// plain `timestamp` is in nanoseconds, whose range ends in 1677 and 2262,
/// so `date '0001-01-01'::timestamp` failed where PostgreSQL answers.
fn timestamps_in_microseconds(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, DataType, Expr};
    let _ = visit_expressions_mut(statement, |e| {
        // A literal with more than six digits of a second is read in
        // nanoseconds and rounded to microseconds when written, as
        // PostgreSQL rounds it (reading it in microseconds would truncate).
        let finer = |v: &datafusion::sql::sqlparser::ast::Value| match v {
            Value::SingleQuotedString(text) => text
                .rsplit('.')
                .next()
                .filter(|_| text.contains('.'))
                .is_some_and(|f| f.chars().take_while(char::is_ascii_digit).count() > 6),
            _ => false,
        };
        let data_type = match e {
            Expr::Cast {
                data_type, expr, ..
            } => {
                if matches!(&**expr, Expr::Value(v) if finer(&v.value)) {
                    return ControlFlow::Continue(());
                }
                data_type
            }
            Expr::TypedString(typed) => {
                if finer(&typed.value.value) {
                    return ControlFlow::Continue(());
                }
                &mut typed.data_type
            }
            _ => return ControlFlow::Continue(()),
        };
        let DataType::Timestamp(precision, _) = data_type else {
            return ControlFlow::Continue(());
        };
        if precision.is_none() {
            *precision = Some(6);
        }
        // `'2024-01-01 10:00'`: PostgreSQL reads a time without seconds,
        // Arrow's parser does not.
        let literal = match e {
            Expr::Cast { expr, .. } => match &mut **expr {
                Expr::Value(v) => Some(&mut v.value),
                _ => None,
            },
            Expr::TypedString(typed) => Some(&mut typed.value.value),
            _ => None,
        };
        if let Some(Value::SingleQuotedString(text)) = literal {
            if let Some(with_seconds) = with_seconds(text) {
                *text = with_seconds;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `text` with `:00` seconds after an `HH:MM` time that has none
/// and a two-digit hour (`2024-01-01 9:00+07` → `2024-01-01 09:00:00+07`),
/// if it is such.
fn with_seconds(text: &str) -> Option<String> {
    let (date, rest) = text.trim().split_once([' ', 'T'])?;
    let time_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let (time, zone) = rest.split_at(time_len);
    let (hours, minutes) = time.split_once(':')?;
    let two_digits = |s: &str| (1..=2).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit());
    (date.len() >= 8 && two_digits(hours) && minutes.len() == 2 && two_digits(minutes))
        .then(|| format!("{date} {hours:0>2}:{minutes}:00{zone}"))
}

/// The verb of a statement that starts like a write, if it does.
fn write_verb(sql: &str) -> Option<String> {
    // Skip leading comments and parentheses to find the verb.
    let first = sql
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    let v = verb(first.trim_start_matches('('));
    let head = v.split_whitespace().next().unwrap_or("");
    WRITE_VERBS.contains(&head).then_some(v)
}

fn parse_bounded(sql: &str) -> Result<Vec<DFStatement>, crate::error::QueryError> {
    use datafusion::sql::parser::DFParserBuilder;
    // Too deep or not, a write is a write; `COPY (…) TO STDOUT` is a read.
    let copy_out = sql.to_ascii_uppercase().contains("TO STDOUT");
    let refuse = |e: crate::error::QueryError| match write_verb(sql) {
        Some(v) if !(copy_out && v == "COPY") => crate::error::QueryError::read_only(&v),
        _ => e,
    };
    let shape = crate::limits::scan(sql).map_err(refuse)?;
    if let Some(copy) = parse_copy_to_stdout(sql).map_err(refuse)? {
        for s in &copy {
            crate::limits::check(s)?;
        }
        return Ok(copy);
    }
    let dialect = TautanDialect::for_sql(sql);
    let parsed = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .build()
        .and_then(|mut p| p.parse_statements());
    match parsed {
        Ok(statements) => {
            let statements: Vec<DFStatement> = statements.into_iter().collect();
            for s in &statements {
                crate::limits::check(s).map_err(refuse)?;
            }
            if let Some(equivalent) = crate::client_queries::equivalent(&statements) {
                return parse_bounded(equivalent);
            }
            let catalog_only = !statements.is_empty()
                && statements.iter().all(|s| match s {
                    DFStatement::Statement(s) => is_catalog_query(s),
                    _ => false,
                });
            if catalog_only {
                let rewritten = compat_parse_catalog(sql, shape, crate::limits::COMPAT_MAX_NESTING)
                    .or_else(|| compat_rewrite(&statements));
                if let Some(rewritten) = rewritten {
                    return Ok(rewritten);
                }
            }
            Ok(statements)
        }
        Err(e) => {
            let bounded = match &e {
                datafusion::error::DataFusionError::SQL(pe, _) => {
                    dialect.stopped() || matches!(**pe, ParserError::RecursionLimitExceeded)
                }
                _ => dialect.stopped(),
            };
            if bounded {
                let error = match &e {
                    datafusion::error::DataFusionError::SQL(pe, _) => dialect.error(pe),
                    _ => crate::error::QueryError::stack_depth_exceeded(),
                };
                return Err(refuse(error));
            }
            if let Some(rewritten) =
                compat_parse(sql, shape, crate::limits::COMPAT_FALLBACK_MAX_NESTING)
            {
                return Ok(rewritten);
            }
            match write_verb(sql) {
                Some(v) => Err(crate::error::QueryError::read_only(&v)),
                None => Err(crate::error::QueryError::new("42601", e.to_string())),
            }
        }
    }
}

/// `COPY ... TO STDOUT` statements, which DataFusion's parser reads as its
/// own `COPY ... TO 'file'` and rejects: parsed by sqlparser directly.
fn parse_copy_to_stdout(sql: &str) -> Result<Option<Vec<DFStatement>>, crate::error::QueryError> {
    use datafusion::sql::sqlparser::ast::CopyTarget;
    use datafusion::sql::sqlparser::parser::Parser;
    let Some(head) = sql.trim_start().get(..4) else {
        return Ok(None);
    };
    if !head.eq_ignore_ascii_case("copy") {
        return Ok(None);
    }
    let dialect = TautanDialect::for_sql(sql);
    let statements = match Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
    {
        Ok(s) => s,
        Err(e) if dialect.stopped() || matches!(e, ParserError::RecursionLimitExceeded) => {
            return Err(dialect.error(&e))
        }
        Err(_) => return Ok(None),
    };
    let all_out = !statements.is_empty()
        && statements.iter().all(|s| {
            matches!(
                s,
                Statement::Copy {
                    to: true,
                    target: CopyTarget::Stdout,
                    ..
                }
            )
        });
    Ok(all_out.then(|| {
        statements
            .into_iter()
            .map(|s| DFStatement::Statement(Box::new(s)))
            .collect()
    }))
}

/// The query `COPY table [(columns)] TO STDOUT` reads.
fn copy_table_query(
    table_name: &ObjectName,
    columns: &[datafusion::sql::sqlparser::ast::Ident],
) -> Result<Box<Query>, String> {
    // `SELECT cols FROM table`, with the names put into the tree as they
    // are (never printed and parsed back).
    use datafusion::sql::sqlparser::ast::{Expr, SelectItem, TableFactor};
    use datafusion::sql::sqlparser::parser::Parser;
    let text = "SELECT * FROM t";
    let dialect = TautanDialect::for_sql(text);
    let mut query = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| format!("COPY of {table_name}: {e}"))?;
    if let SetExpr::Select(select) = query.body.as_mut() {
        if !columns.is_empty() {
            select.projection = columns
                .iter()
                .map(|c| SelectItem::UnnamedExpr(Expr::Identifier(c.clone())))
                .collect();
        }
        if let Some(TableFactor::Table { name, .. }) =
            select.from.first_mut().map(|f| &mut f.relation)
        {
            *name = table_name.clone();
        }
    }
    Ok(query)
}

/// The query of a `DECLARE … CURSOR FOR query` or `COPY (query) TO STDOUT`
/// (or `COPY table TO STDOUT`), taken out of the statement.
pub fn take_query(statement: DFStatement) -> Option<Box<Query>> {
    use datafusion::sql::sqlparser::ast::CopySource;
    let DFStatement::Statement(s) = statement else {
        return None;
    };
    match *s {
        Statement::Declare { stmts } => stmts.into_iter().next()?.for_query,
        Statement::Copy { source, .. } => match source {
            CopySource::Query(q) => Some(q),
            CopySource::Table {
                table_name,
                columns,
            } => copy_table_query(&table_name, &columns).ok(),
        },
        _ => None,
    }
}

/// The options of `COPY ... TO STDOUT`.
fn classify_copy_out(
    source: &datafusion::sql::sqlparser::ast::CopySource,
    options: &[datafusion::sql::sqlparser::ast::CopyOption],
    legacy: &[datafusion::sql::sqlparser::ast::CopyLegacyOption],
) -> StatementKind {
    use datafusion::sql::sqlparser::ast::{CopyLegacyOption, CopyOption, CopySource};
    if let CopySource::Table {
        table_name,
        columns,
    } = source
    {
        if let Err(e) = copy_table_query(table_name, columns) {
            return StatementKind::Unsupported(e);
        }
    }
    let mut out = CopyOptions {
        format: CopyFormat::Text,
        header: false,
        delimiter: None,
        null: None,
    };
    for o in options {
        match o {
            CopyOption::Format(f) => {
                out.format = match f.value.to_ascii_lowercase().as_str() {
                    "text" => CopyFormat::Text,
                    "csv" => CopyFormat::Csv,
                    "binary" => CopyFormat::Binary,
                    other => return StatementKind::Unsupported(format!("COPY format \"{other}\"")),
                }
            }
            CopyOption::Header(h) => out.header = *h,
            CopyOption::Delimiter(d) => out.delimiter = Some(*d),
            CopyOption::Null(n) => out.null = Some(n.clone()),
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            other => return StatementKind::Unsupported(format!("COPY option {other}")),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => out.format = CopyFormat::Binary,
            CopyLegacyOption::Csv(_) => out.format = CopyFormat::Csv,
            CopyLegacyOption::Delimiter(d) => out.delimiter = Some(*d),
            CopyLegacyOption::Null(n) => out.null = Some(n.clone()),
            other => return StatementKind::Unsupported(format!("COPY option {other}")),
        }
    }
    if out.format == CopyFormat::Binary
        && (out.header || out.delimiter.is_some() || out.null.is_some())
    {
        return StatementKind::Unsupported("HEADER, DELIMITER or NULL with FORMAT binary".into());
    }
    StatementKind::CopyOut { options: out }
}

/// Whether `statement` ends a transaction block (COMMIT or ROLLBACK): the
/// only statements a failed block accepts.
pub fn ends_block(statement: &DFStatement) -> bool {
    matches!(
        classify(statement),
        StatementKind::Transaction("COMMIT") | StatementKind::Transaction("ROLLBACK")
    )
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
    let mut finder = WriteFinder { found: None };
    let _ = query.visit(&mut finder);
    match finder.found {
        Some(w) => StatementKind::Write(w),
        None => StatementKind::Declare {
            name: name.value.clone(),
        },
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
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            // `SHOW TIME ZONE` is PostgreSQL's spelling of `SHOW timezone`.
            StatementKind::Show(if name == "time zone" {
                "timezone".into()
            } else {
                name
            })
        }
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
        Statement::Copy {
            to: true,
            target: datafusion::sql::sqlparser::ast::CopyTarget::Stdout,
            source,
            options,
            legacy_options,
            ..
        } => classify_copy_out(source, options, legacy_options),
        Statement::Copy { to: true, .. } => {
            StatementKind::Write("COPY TO a file or program".into())
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

    #[test]
    fn a_time_without_seconds_gets_them() {
        assert_eq!(
            with_seconds("2024-01-01 10:00").as_deref(),
            Some("2024-01-01 10:00:00")
        );
        assert_eq!(
            with_seconds("2024-01-01T9:05+07").as_deref(),
            Some("2024-01-01 09:05:00+07")
        );
        assert_eq!(with_seconds("2024-01-01 10:00:00"), None);
        assert_eq!(with_seconds("2024-01-01"), None);
        assert_eq!(with_seconds("2024-01-01 10:00:00.5"), None);
    }

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
        assert_eq!(
            kind("SHOW TIME ZONE"),
            StatementKind::Show("timezone".into())
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
    fn like_escape_becomes_backslash() {
        let rewritten = match parse(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'",
        ) {
            Ok(mut s) => s.remove(0).to_string(),
            Err(e) => panic!("{e}"),
        };
        assert!(
            rewritten.contains("tautan_like_escape(") && !rewritten.contains("ESCAPE"),
            "{rewritten}"
        );
        assert_eq!(
            crate::pg_catalog::like_escape_to_backslash("pg/_%", '/'),
            "pg\\_%"
        );
        assert_eq!(
            crate::pg_catalog::like_escape_to_backslash("a\\b//", '/'),
            "a\\\\b\\/"
        );
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
