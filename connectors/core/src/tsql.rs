//! T-SQL (Microsoft SQL Server): the unparser dialect and the rewrites a
//! statement needs before it can be sealed for SQL Server.
//!
//! DataFusion's unparser writes standard SQL; T-SQL differs where tautan's
//! statements reach:
//!
//! - names are quoted `[…]` with `]` doubled (the sealing does that, see
//!   [`crate::sql::quote`]); text with characters outside ASCII is written
//!   `N'…'` so it does not pass through the database's code page;
//! - there is no `LIMIT`: a row limit is `SELECT TOP n …`, or with an
//!   `ORDER BY` (the only place T-SQL allows an offset)
//!   `ORDER BY … OFFSET m ROWS FETCH FIRST n ROWS ONLY`. An offset without
//!   `ORDER BY`, and a limit over a set operation without one, cannot be
//!   written: such statements are *unsendable* and the work stays in
//!   DataFusion;
//! - an `ORDER BY` inside a derived table is an error in T-SQL unless the
//!   same query has `TOP` or `OFFSET`: unsendable as well;
//! - there are no boolean values (`TRUE`, `x IS TRUE`, a comparison in a
//!   select list): the federation rule keeps such expressions local, and
//!   [`normalize`] refuses any that remain;
//! - no `USING`/`NATURAL` joins, no `||`, no `IS DISTINCT FROM`, no
//!   `ILIKE`: refused.
//!
//! [`normalize`] runs inside [`crate::SourceQuery::new`] for SQL Server
//! statements, before sealing, so the guard checks the statement that is
//! actually sent.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::TimeUnit;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, CharacterLength, Expr, Fetch, Ident, JoinConstraint, JoinOperator,
    LimitClause, ObjectName, Offset, OffsetRows, Query, SetExpr, Top, TopQuantity, Value, VisitMut,
    VisitorMut,
};
use datafusion::sql::unparser::dialect::{
    CharacterLengthStyle, DateFieldExtractStyle, Dialect, IntervalStyle,
};

/// DataFusion's unparser dialect for SQL Server.
///
/// What it cannot say through the unparser's hooks (`TOP`, `OFFSET …
/// FETCH`) [`normalize`] rewrites afterwards.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqlServerUnparser;

impl Dialect for SqlServerUnparser {
    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        // Every identifier quoted; the sealing writes `[…]` with `]]`.
        Some('[')
    }
    fn supports_nulls_first_in_sort(&self) -> bool {
        false
    }
    fn interval_style(&self) -> IntervalStyle {
        // Interval literals are never sent to SQL Server (see
        // `federation.rs`); any style is as good.
        IntervalStyle::SQLStandard
    }
    fn float64_ast_dtype(&self) -> ast::DataType {
        ast::DataType::Float(ast::ExactNumberInfo::None)
    }
    fn utf8_cast_dtype(&self) -> ast::DataType {
        ast::DataType::Nvarchar(Some(CharacterLength::Max))
    }
    fn large_utf8_cast_dtype(&self) -> ast::DataType {
        ast::DataType::Nvarchar(Some(CharacterLength::Max))
    }
    fn date_field_extract_style(&self) -> DateFieldExtractStyle {
        DateFieldExtractStyle::DatePart
    }
    fn character_length_style(&self) -> CharacterLengthStyle {
        CharacterLengthStyle::Length
    }
    fn int64_cast_dtype(&self) -> ast::DataType {
        ast::DataType::BigInt(None)
    }
    fn int32_cast_dtype(&self) -> ast::DataType {
        ast::DataType::Int(None)
    }
    fn int8_cast_dtype(&self) -> ast::DataType {
        // T-SQL's tinyint is unsigned.
        ast::DataType::SmallInt(None)
    }
    fn timestamp_cast_dtype(&self, _time_unit: &TimeUnit, tz: &Option<Arc<str>>) -> ast::DataType {
        let name = if tz.is_some() {
            "DATETIMEOFFSET"
        } else {
            "DATETIME2"
        };
        ast::DataType::Custom(ObjectName::from(vec![Ident::new(name)]), vec!["6".into()])
    }
    fn date32_cast_dtype(&self) -> ast::DataType {
        ast::DataType::Date
    }
    fn requires_derived_table_alias(&self) -> bool {
        true
    }
    fn supports_qualify(&self) -> bool {
        false
    }
    fn supports_empty_select_list(&self) -> bool {
        false
    }
}

/// Rewrites `query` into the T-SQL form of the same statement (`TOP`,
/// `OFFSET … FETCH`), or says why it cannot be written for SQL Server.
pub fn normalize(mut query: Query) -> Result<Query, String> {
    let mut rewriter = Rewriter { depth: 0 };
    match query.visit(&mut rewriter) {
        ControlFlow::Continue(()) => Ok(query),
        ControlFlow::Break(reason) => Err(reason),
    }
}

struct Rewriter {
    /// Queries entered and not yet left (0: the statement itself).
    depth: usize,
}

impl VisitorMut for Rewriter {
    type Break = String;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<String> {
        let nested = self.depth > 0;
        self.depth += 1;
        match rows(query, nested).and_then(|()| joins(&query.body)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(reason) => ControlFlow::Break(reason),
        }
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<String> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<String> {
        let refused = match expr {
            Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => {
                Some("a boolean value (T-SQL has none)")
            }
            Expr::IsTrue(_) | Expr::IsFalse(_) | Expr::IsNotTrue(_) | Expr::IsNotFalse(_) => {
                Some("IS TRUE / IS FALSE")
            }
            Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => Some("IS DISTINCT FROM"),
            Expr::ILike { .. } | Expr::SimilarTo { .. } | Expr::RLike { .. } => {
                Some("a pattern match T-SQL does not have")
            }
            Expr::BinaryOp {
                op: BinaryOperator::StringConcat,
                ..
            } => Some("||"),
            _ => None,
        };
        match refused {
            Some(what) => ControlFlow::Break(format!("{what} cannot be written in T-SQL")),
            None => ControlFlow::Continue(()),
        }
    }
}

/// The query's row limit and offset in T-SQL's form.
fn rows(query: &mut Query, nested: bool) -> Result<(), String> {
    let ordered = query.order_by.is_some();
    let (limit, offset) = match query.limit_clause.take() {
        None => (None, None),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err("LIMIT BY cannot be written in T-SQL".into());
            }
            (limit, offset.map(|o| o.value))
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => {
            return Err("LIMIT m, n cannot be written in T-SQL".into())
        }
    };
    if query.fetch.is_some() {
        return Err("a FETCH clause tautan did not write".into());
    }
    if ordered {
        if nested && limit.is_none() && offset.is_none() && !has_top(&query.body) {
            return Err("ORDER BY in a derived table without TOP or OFFSET".into());
        }
        if limit.is_some() || offset.is_some() {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: None,
                offset: Some(Offset {
                    value: offset.unwrap_or_else(|| number(0)),
                    rows: OffsetRows::Rows,
                }),
                limit_by: vec![],
            });
            query.fetch = limit.map(|n| Fetch {
                with_ties: false,
                percent: false,
                quantity: Some(n),
            });
        }
        return Ok(());
    }
    if offset.is_some() {
        return Err("OFFSET without ORDER BY cannot be written in T-SQL".into());
    }
    let Some(limit) = limit else {
        return Ok(());
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err("a row limit over a set operation without ORDER BY".into());
    };
    if select.top.is_some() {
        return Err("both TOP and LIMIT".into());
    }
    let quantity = match &limit {
        Expr::Value(v) => match &v.value {
            Value::Number(n, false) => n.parse::<u64>().ok().map(TopQuantity::Constant),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| format!("a row limit that is not a whole number: {limit}"))?;
    select.top = Some(Top {
        with_ties: false,
        percent: false,
        quantity: Some(quantity),
    });
    select.top_before_distinct = false;
    Ok(())
}

fn has_top(body: &SetExpr) -> bool {
    matches!(body, SetExpr::Select(s) if s.top.is_some())
}

fn number(n: u64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// Refuses join forms T-SQL does not have.
fn joins(body: &SetExpr) -> Result<(), String> {
    match body {
        SetExpr::Select(select) => {
            for table in &select.from {
                for join in &table.joins {
                    let constraint = match &join.join_operator {
                        JoinOperator::Join(c)
                        | JoinOperator::Inner(c)
                        | JoinOperator::Left(c)
                        | JoinOperator::LeftOuter(c)
                        | JoinOperator::Right(c)
                        | JoinOperator::RightOuter(c)
                        | JoinOperator::FullOuter(c) => Some(c),
                        JoinOperator::CrossJoin(_) => None,
                        other => {
                            return Err(format!("a join T-SQL does not have: {other:?}"));
                        }
                    };
                    if let Some(JoinConstraint::Using(_) | JoinConstraint::Natural) = constraint {
                        return Err("USING / NATURAL joins cannot be written in T-SQL".into());
                    }
                }
            }
            Ok(())
        }
        SetExpr::SetOperation { left, right, .. } => {
            joins(left)?;
            joins(right)
        }
        _ => Ok(()),
    }
}
