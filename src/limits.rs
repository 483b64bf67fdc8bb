//! Bounds on what one statement's text can make the server do, checked
//! while and right after it is parsed — before DataFusion sees it.
//!
//! Parsing, planning and optimizing recurse over the statement's syntax
//! tree, and so do dropping, cloning and printing it. A tree deep enough
//! overflows a thread's stack, which aborts the whole process (it is not a
//! panic a task boundary could stop). So every statement is bounded here:
//!
//! * **Nesting depth** at most [`MAX_DEPTH`]: expressions inside
//!   expressions (`1+1+…+1` is a left-leaning tree as deep as it is long),
//!   subqueries, set operations (`… UNION …`), joins. Deeper statements are
//!   refused with PostgreSQL's 54001 "stack depth limit exceeded".
//! * **Parser recursion** at most [`PARSER_RECURSION_LIMIT`] (sqlparser's
//!   own counter, also 54001).
//! * **Parser work**: sqlparser backtracks, and some constructions make it
//!   try alternatives at every level (nested function calls, `NOT (…)`,
//!   `CAST(…` with a syntax error inside): exponential time in the nesting.
//!   [`TautanDialect`] removes the two alternatives that did it (an
//!   expression as a named argument's name; a reserved word retried as an
//!   identifier) and counts the parser's steps against a budget in
//!   proportion to the text's length (54001 "statement too complex").
//!
//! Chains the parser builds in a loop (binary and postfix operators, set
//! operations, array type suffixes) are cut off while they are built, so
//! the parser never makes a tree deeper than a few times [`MAX_DEPTH`], and
//! the parse and the depth check run on a stack segment of their own
//! ([`PARSE_STACK`]), so that even that tree is dropped safely when it is
//! refused. A tree that passes is at most [`MAX_DEPTH`] deep; it is planned
//! on a segment of its own too ([`OnPlanStack`]), and executed on the
//! connection's thread: a statement just under the limit answers on a
//! 2 MiB thread stack (tokio's default, which `tautan serve` uses), tested
//! in `tests/integration/limits.rs`.

use std::any::TypeId;
use std::cell::Cell;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Query, Select, SetExpr, Statement, TableFactor, Value, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::QueryError;

/// The deepest nesting a statement may have: expressions, subqueries, set
/// operations and joins, counted together along the deepest path. Ordinary
/// queries (TPC-H, BI tools' catalog queries) stay under 30.
pub const MAX_DEPTH: usize = 1000;

/// sqlparser's recursion limit (its default): each level of recursive
/// descent is several KiB of stack in a debug build.
pub const PARSER_RECURSION_LIMIT: usize = 50;

/// The stack segment parsing and the depth check run on.
pub const PARSE_STACK: usize = 64 << 20;

/// Array type suffixes in a row (`int[][]…`); PostgreSQL allows 6
/// dimensions.
const MAX_ARRAY_SUFFIXES: usize = 64;

/// Parser steps allowed per byte of SQL, and in any case.
const STEPS_PER_BYTE: usize = 16;
const STEPS_BASE: usize = 100_000;

/// Bracket nesting up to which `datafusion-pg-catalog`'s rewriting parser
/// (plain sqlparser, with its exponential alternatives) is used on a valid
/// catalog query, and on a statement tautan's parser refused.
pub const COMPAT_MAX_NESTING: usize = 16;
pub const COMPAT_FALLBACK_MAX_NESTING: usize = 8;

/// Words PostgreSQL reserves (neither a column nor a function name):
/// when sqlparser fails to parse one as the construct it starts, it does
/// not retry it as an identifier — the retry, at every level of a nested
/// `CAST(…`, `NOT (…`, was exponential.
const PG_RESERVED: &[Keyword] = &[
    Keyword::ALL,
    Keyword::ANALYZE,
    Keyword::AND,
    Keyword::ANY,
    Keyword::ARRAY,
    Keyword::AS,
    Keyword::ASC,
    Keyword::ASYMMETRIC,
    Keyword::BOTH,
    Keyword::CASE,
    Keyword::CAST,
    Keyword::CHECK,
    Keyword::COLLATE,
    Keyword::COLUMN,
    Keyword::CONSTRAINT,
    Keyword::CREATE,
    Keyword::DEFAULT,
    Keyword::DEFERRABLE,
    Keyword::DESC,
    Keyword::DISTINCT,
    Keyword::DO,
    Keyword::ELSE,
    Keyword::END,
    Keyword::EXCEPT,
    Keyword::FALSE,
    Keyword::FETCH,
    Keyword::FOR,
    Keyword::FOREIGN,
    Keyword::FROM,
    Keyword::GRANT,
    Keyword::GROUP,
    Keyword::HAVING,
    Keyword::IN,
    Keyword::INITIALLY,
    Keyword::INTERSECT,
    Keyword::INTO,
    Keyword::LATERAL,
    Keyword::LEADING,
    Keyword::LIMIT,
    Keyword::NOT,
    Keyword::NULL,
    Keyword::OFFSET,
    Keyword::ON,
    Keyword::ONLY,
    Keyword::OR,
    Keyword::ORDER,
    Keyword::PLACING,
    Keyword::PRIMARY,
    Keyword::REFERENCES,
    Keyword::RETURNING,
    Keyword::SELECT,
    Keyword::SOME,
    Keyword::SYMMETRIC,
    Keyword::TABLE,
    Keyword::THEN,
    Keyword::TO,
    Keyword::TRAILING,
    Keyword::TRUE,
    Keyword::UNION,
    Keyword::UNIQUE,
    Keyword::USING,
    Keyword::VARIADIC,
    Keyword::WHEN,
    Keyword::WHERE,
    Keyword::WINDOW,
    Keyword::WITH,
];

/// Why a parse was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// An operator chain reached [`MAX_DEPTH`].
    Depth,
    /// The step budget ran out.
    Budget,
}

/// PostgreSQL's dialect with the bounds above: forwards everything
/// `PostgreSqlDialect` decides (and reports itself as that dialect, so
/// sqlparser's PostgreSQL-only syntax stays on), except the two backtracking
/// alternatives, and counts the parser's steps.
#[derive(Debug)]
pub struct TautanDialect {
    inner: PostgreSqlDialect,
    steps: Cell<usize>,
    budget: usize,
    stopped: Cell<Option<Stop>>,
}

impl TautanDialect {
    /// A dialect for parsing `sql`.
    pub fn for_sql(sql: &str) -> Self {
        Self {
            inner: PostgreSqlDialect {},
            steps: Cell::new(0),
            budget: STEPS_BASE.saturating_add(sql.len().saturating_mul(STEPS_PER_BYTE)),
            stopped: Cell::new(None),
        }
    }

    /// A parse error as the client sees it: the bounds as 54001, anything
    /// else as a syntax error (42601).
    pub fn error(&self, e: &ParserError) -> QueryError {
        match (self.stopped.get(), e) {
            (Some(Stop::Budget), _) => QueryError::new("54001", "statement too complex")
                .with_hint("Simplify the statement: its parse exceeded tautan's work limit."),
            (Some(Stop::Depth), _) | (None, ParserError::RecursionLimitExceeded) => {
                QueryError::stack_depth_exceeded()
            }
            (None, other) => QueryError::new("42601", other.to_string()),
        }
    }

    /// Whether parsing was stopped by a bound (not by a syntax error).
    pub fn stopped(&self) -> bool {
        self.stopped.get().is_some()
    }

    fn stop(&self, why: Stop) -> Option<Result<Expr, ParserError>> {
        self.stopped.set(Some(why));
        // The one error sqlparser's backtracking passes up unchanged.
        Some(Err(ParserError::RecursionLimitExceeded))
    }
}

/// The operand an infix or postfix operator was applied to: what the
/// parser's operator loop nests (`((1 + 1) + 1) + …`).
fn chained(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::BinaryOp { left, .. }
        | Expr::AnyOp { left, .. }
        | Expr::AllOp { left, .. }
        | Expr::IsDistinctFrom(left, _)
        | Expr::IsNotDistinctFrom(left, _) => Some(left),
        Expr::IsFalse(e)
        | Expr::IsNotFalse(e)
        | Expr::IsTrue(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotUnknown(e)
        | Expr::IsNormalized { expr: e, .. }
        | Expr::InList { expr: e, .. }
        | Expr::InSubquery { expr: e, .. }
        | Expr::InUnnest { expr: e, .. }
        | Expr::Between { expr: e, .. }
        | Expr::Like { expr: e, .. }
        | Expr::ILike { expr: e, .. }
        | Expr::SimilarTo { expr: e, .. }
        | Expr::RLike { expr: e, .. }
        | Expr::UnaryOp { expr: e, .. }
        | Expr::Cast { expr: e, .. }
        | Expr::Collate { expr: e, .. }
        | Expr::AtTimeZone { timestamp: e, .. }
        | Expr::CompoundFieldAccess { root: e, .. }
        | Expr::JsonAccess { value: e, .. } => Some(e),
        _ => None,
    }
}

impl Dialect for TautanDialect {
    fn dialect(&self) -> TypeId {
        self.inner.dialect()
    }

    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let steps = self.steps.get().saturating_add(1);
        self.steps.set(steps);
        if self.stopped.get().is_some() || steps > self.budget {
            return self.stop(self.stopped.get().unwrap_or(Stop::Budget));
        }
        None
    }

    fn parse_infix(
        &self,
        _parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let steps = self.steps.get().saturating_add(1);
        self.steps.set(steps);
        if self.stopped.get().is_some() || steps > self.budget {
            return self.stop(self.stopped.get().unwrap_or(Stop::Budget));
        }
        // The chain this operator would extend, counted up to the limit.
        let mut depth = 1;
        let mut e = expr;
        while let Some(inner) = chained(e) {
            depth += 1;
            if depth >= MAX_DEPTH {
                return self.stop(Stop::Depth);
            }
            e = inner;
        }
        None
    }

    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        self.inner.is_reserved_for_identifier(kw) || PG_RESERVED.contains(&kw)
    }

    /// Off: with it, every function argument is parsed twice (once as a
    /// possible `name => value` name), exponential in the nesting of calls.
    /// PostgreSQL's named arguments have identifiers for names, which the
    /// parser still tries. (`json_object('a': 1)` is not parsed.)
    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        false
    }

    // What follows forwards every method `PostgreSqlDialect` defines.

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.inner.identifier_quote_style(identifier)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.inner.is_delimited_identifier_start(ch)
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.inner.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.inner.is_identifier_part(ch)
    }
    fn supports_unicode_string_literal(&self) -> bool {
        self.inner.supports_unicode_string_literal()
    }
    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.inner.is_custom_operator_part(ch)
    }
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.inner.get_next_precedence(parser)
    }
    fn supports_filter_during_aggregation(&self) -> bool {
        self.inner.supports_filter_during_aggregation()
    }
    fn supports_group_by_expr(&self) -> bool {
        self.inner.supports_group_by_expr()
    }
    fn prec_value(&self, prec: Precedence) -> u8 {
        self.inner.prec_value(prec)
    }
    fn allow_extract_custom(&self) -> bool {
        self.inner.allow_extract_custom()
    }
    fn allow_extract_single_quotes(&self) -> bool {
        self.inner.allow_extract_single_quotes()
    }
    fn supports_create_index_with_clause(&self) -> bool {
        self.inner.supports_create_index_with_clause()
    }
    fn supports_explain_with_utility_options(&self) -> bool {
        self.inner.supports_explain_with_utility_options()
    }
    fn supports_listen_notify(&self) -> bool {
        self.inner.supports_listen_notify()
    }
    fn supports_factorial_operator(&self) -> bool {
        self.inner.supports_factorial_operator()
    }
    fn supports_bitwise_shift_operators(&self) -> bool {
        self.inner.supports_bitwise_shift_operators()
    }
    fn supports_comment_on(&self) -> bool {
        self.inner.supports_comment_on()
    }
    fn supports_load_extension(&self) -> bool {
        self.inner.supports_load_extension()
    }
    fn supports_named_fn_args_with_colon_operator(&self) -> bool {
        self.inner.supports_named_fn_args_with_colon_operator()
    }
    fn supports_empty_projections(&self) -> bool {
        self.inner.supports_empty_projections()
    }
    fn supports_nested_comments(&self) -> bool {
        self.inner.supports_nested_comments()
    }
    fn supports_string_escape_constant(&self) -> bool {
        self.inner.supports_string_escape_constant()
    }
    fn supports_numeric_literal_underscores(&self) -> bool {
        self.inner.supports_numeric_literal_underscores()
    }
    fn supports_array_typedef_with_brackets(&self) -> bool {
        self.inner.supports_array_typedef_with_brackets()
    }
    fn supports_geometric_types(&self) -> bool {
        self.inner.supports_geometric_types()
    }
    fn supports_set_names(&self) -> bool {
        self.inner.supports_set_names()
    }
    fn supports_alter_column_type_using(&self) -> bool {
        self.inner.supports_alter_column_type_using()
    }
    fn supports_notnull_operator(&self) -> bool {
        self.inner.supports_notnull_operator()
    }
    fn supports_interval_options(&self) -> bool {
        self.inner.supports_interval_options()
    }
    fn supports_insert_table_alias(&self) -> bool {
        self.inner.supports_insert_table_alias()
    }
    fn supports_create_table_like_parenthesized(&self) -> bool {
        self.inner.supports_create_table_like_parenthesized()
    }
    fn supports_select_wildcard_with_alias(&self) -> bool {
        self.inner.supports_select_wildcard_with_alias()
    }
    fn supports_comma_separated_trim(&self) -> bool {
        self.inner.supports_comma_separated_trim()
    }
    fn supports_xml_expressions(&self) -> bool {
        self.inner.supports_xml_expressions()
    }
    fn supports_comment_optimizer_hint(&self) -> bool {
        self.inner.supports_comment_optimizer_hint()
    }
}

/// What a scan of the tokens found, before the parser runs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Shape {
    /// Deepest nesting of `(` and `[`.
    pub nesting: usize,
}

/// Scans the tokens of `sql` (the tokenizer does not recurse) for what the
/// parser would nest without its recursion counter: brackets, set
/// operations, array type suffixes. 54001 if any is beyond the bounds; a
/// text the tokenizer rejects is left to the parser's error.
pub fn scan(sql: &str) -> Result<Shape, QueryError> {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return Ok(Shape::default());
    };
    let mut shape = Shape::default();
    let mut open = 0usize;
    let mut set_operations = 0usize;
    let mut suffixes = 0usize;
    let mut previous: Option<&Token> = None;
    for token in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
        match token {
            Token::LParen | Token::LBracket => {
                open += 1;
                shape.nesting = shape.nesting.max(open);
            }
            Token::RParen => open = open.saturating_sub(1),
            Token::RBracket => {
                open = open.saturating_sub(1);
                if matches!(previous, Some(Token::LBracket | Token::Number(..))) {
                    suffixes += 1;
                }
            }
            Token::Word(w)
                if matches!(
                    w.keyword,
                    Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT
                ) =>
            {
                set_operations += 1;
            }
            _ => {}
        }
        if !matches!(token, Token::LBracket | Token::RBracket | Token::Number(..)) {
            suffixes = 0;
        }
        if shape.nesting > MAX_DEPTH || set_operations > MAX_DEPTH {
            return Err(QueryError::stack_depth_exceeded());
        }
        if suffixes > MAX_ARRAY_SUFFIXES {
            return Err(QueryError::stack_depth_exceeded());
        }
        previous = Some(token);
    }
    Ok(shape)
}

/// Counts nesting along the deepest path of a parsed statement.
#[derive(Default)]
struct Depth {
    now: usize,
    /// What each open query or select added, to take off again after it.
    added: Vec<usize>,
    /// The first placeholder a Bind cannot supply (`$0`, `$70000`, `$x`).
    bad_placeholder: Option<String>,
}

impl Depth {
    fn enter(&mut self, n: usize) -> ControlFlow<()> {
        self.now = self.now.saturating_add(n);
        self.added.push(n);
        if self.now > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        let n = self.added.pop().unwrap_or(0);
        self.now = self.now.saturating_sub(n);
        ControlFlow::Continue(())
    }
}

/// How deep the set operations of a query body nest (without recursion).
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 0usize)];
    while let Some((e, d)) = pending.pop() {
        deepest = deepest.max(d);
        if let SetExpr::SetOperation { left, right, .. } = e {
            pending.push((left, d + 1));
            pending.push((right, d + 1));
        }
    }
    deepest
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.enter(1 + set_operation_depth(&query.body))
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        // Each FROM item and join is one more join in the plan.
        let joins: usize = select.from.iter().map(|t| 1 + t.joins.len()).sum();
        self.enter(joins)
    }

    fn post_visit_select(&mut self, _select: &Select) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<()> {
        self.enter(1)
    }

    fn post_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr {
            if let Value::Placeholder(name) = &v.value {
                if self.bad_placeholder.is_none()
                    && crate::server::params::parameter_number(name).is_err()
                {
                    self.bad_placeholder = Some(name.clone());
                }
            }
        }
        self.enter(1)
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.leave()
    }
}

/// Checks a parsed statement: nesting at most [`MAX_DEPTH`] (54001), and
/// every placeholder `$n` one a Bind can supply (42P02).
pub fn check(statement: &DFStatement) -> Result<(), QueryError> {
    let mut depth = Depth::default();
    let flow = match statement {
        DFStatement::Statement(s) => s.visit(&mut depth),
        DFStatement::Explain(e) => {
            let _ = depth.enter(1);
            match e.statement.as_ref() {
                DFStatement::Statement(s) => s.visit(&mut depth),
                other => return check(other),
            }
        }
        _ => ControlFlow::Continue(()),
    };
    verdict(flow, depth)
}

/// Checks a plain sqlparser statement (what the compatibility parser
/// returns) like [`check`].
pub fn check_sql(statement: &Statement) -> Result<(), QueryError> {
    let mut depth = Depth::default();
    let flow = statement.visit(&mut depth);
    verdict(flow, depth)
}

fn verdict(flow: ControlFlow<()>, depth: Depth) -> Result<(), QueryError> {
    if flow.is_break() {
        return Err(QueryError::stack_depth_exceeded());
    }
    match depth.bad_placeholder {
        Some(name) => Err(crate::server::params::no_parameter(&name)),
        None => Ok(()),
    }
}

/// The first placeholder of a statement, if it has any (the simple query
/// protocol binds none: PostgreSQL answers 42P02 for them).
pub fn first_placeholder(statement: &DFStatement) -> Option<String> {
    struct Find(Option<String>);
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = expr {
                if let Value::Placeholder(name) = &v.value {
                    self.0 = Some(name.clone());
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(None);
    match statement {
        DFStatement::Statement(s) => {
            let _ = s.visit(&mut find);
        }
        DFStatement::Explain(e) => return first_placeholder(&e.statement),
        _ => {}
    }
    find.0
}

/// Runs `f` (a parse and its checks) on a stack segment of its own, so
/// that a refused tree, however deep the parser made it, is dropped there.
pub fn on_parse_stack<T>(f: impl FnOnce() -> T) -> T {
    stacker::grow(PARSE_STACK, f)
}

/// The stack segment a statement is planned on.
pub const PLAN_STACK: usize = 64 << 20;

/// A future polled on a stack segment of its own ([`PLAN_STACK`]): what
/// planning does recursively (DataFusion's analyzer and optimizer, the
/// federation's unparser, copies of syntax trees) then has room for a
/// statement [`MAX_DEPTH`] deep whatever thread polls it. Each poll maps a
/// segment (address space; only the pages used are touched).
pub struct OnPlanStack<F> {
    inner: std::pin::Pin<Box<F>>,
}

impl<F> OnPlanStack<F> {
    /// Wraps `future`.
    pub fn new(future: F) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }
}

impl<F: std::future::Future> std::future::Future for OnPlanStack<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let inner = &mut self.inner;
        stacker::grow(PLAN_STACK, || inner.as_mut().poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Vec<DFStatement>, QueryError> {
        crate::statement::parse(sql)
    }

    fn code(sql: &str) -> String {
        match parse(sql) {
            Ok(_) => "ok".into(),
            Err(e) => e.code,
        }
    }

    #[test]
    fn long_operator_chains_are_refused_short_ones_pass() {
        let chain = |n: usize| format!("SELECT {}", vec!["1"; n].join(" + "));
        assert_eq!(code(&chain(MAX_DEPTH - 10)), "ok");
        assert_eq!(code(&chain(MAX_DEPTH + 1)), "54001");
        assert_eq!(code(&chain(200_000)), "54001");
        let e = parse(&chain(5000)).expect_err("deep");
        assert_eq!(e.message, "stack depth limit exceeded");
        assert!(e.hint.is_some());
        // Postfix operators chain the same way.
        assert_eq!(code(&format!("SELECT 1{}", "::int".repeat(5000))), "54001");
        assert_eq!(
            code(&format!("SELECT 1{}", " IS NULL".repeat(5000))),
            "54001"
        );
        assert_eq!(
            code(&format!("SELECT 1{}", " UNION SELECT 1".repeat(5000))),
            "54001"
        );
        assert_eq!(
            code(&format!("SELECT CAST(NULL AS int{})", "[]".repeat(5000))),
            "54001"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        for sql in [
            format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("SELECT {}true", "NOT ".repeat(5000)),
            format!("SELECT {}1{}", "(SELECT ".repeat(100), ")".repeat(100)),
            format!("SELECT * FROM {}t{}", "(".repeat(5000), ")".repeat(5000)),
            format!("SELECT {}1", "- ".repeat(5000)),
        ] {
            assert_eq!(code(&sql), "54001", "{}", &sql[..40]);
        }
    }

    #[test]
    fn exponential_parses_finish_quickly() {
        let started = std::time::Instant::now();
        for n in [20, 30, 45] {
            for sql in [
                format!("SELECT {}1{}", "abs(".repeat(n), ")".repeat(n)),
                format!("SELECT {}true{}", "NOT (".repeat(n), ")".repeat(n)),
                format!("SELECT {}1 AS{}", "CAST(".repeat(n), " AS int)".repeat(n)),
                format!("SELECT {}1 +{}", "abs(".repeat(n), ")".repeat(n)),
                format!("SELECT {}1 +{}", "CAST(".repeat(n), ")".repeat(n)),
            ] {
                let _ = parse(&sql);
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // Nested calls are still SQL.
        assert_eq!(
            code(&format!("SELECT {}1{}", "abs(".repeat(20), ")".repeat(20))),
            "ok"
        );
    }

    #[test]
    fn placeholders_beyond_what_bind_can_supply_are_42p02() {
        assert_eq!(code("SELECT $1, $65535"), "ok");
        assert_eq!(code("SELECT $4000000000"), "42P02");
        assert_eq!(code("SELECT $65536"), "42P02");
        assert_eq!(code("SELECT $0"), "42P02");
        let e = parse("SELECT 1 WHERE 2 = $70000").expect_err("42P02");
        assert_eq!(e.message, "there is no parameter $70000");
    }

    #[test]
    fn ordinary_statements_still_parse() {
        for sql in [
            "SELECT json_build_object('a', 1)",
            "SELECT CAST(1 AS int), 1::text, x::int[] FROM t",
            "SELECT interval '1 day', date '2020-01-01'",
            "SELECT count(*) FILTER (WHERE a > 1) FROM t",
            "SELECT a FROM t WHERE a = ANY(ARRAY[1, 2]) AND b NOT IN (1, 2) OR c IS NOT NULL",
            "SELECT position('a' IN 'abc'), substring('abc' FROM 1 FOR 2), trim(both ' ' FROM x)",
            "SELECT extract(year FROM d), \"date\", \"user\" FROM t",
            "SELECT 1 UNION SELECT 2 EXCEPT SELECT 3",
            "SELECT * FROM a JOIN b ON a.x = b.x LEFT JOIN c USING (y)",
            "WITH q AS (SELECT 1) SELECT * FROM q",
            "SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t",
            "SELECT make_interval(days => 1)",
        ] {
            assert_eq!(code(sql), "ok", "{sql}: {:?}", parse(sql).err());
        }
    }
}
