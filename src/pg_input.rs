//! PostgreSQL's reading of quoted literals.
//!
//! In PostgreSQL a quoted literal has no type until its context gives it
//! one: `bool_col = 't'`, `bytea_col = '\x00ff10'`, `interval_col =
//! '1 year 2 mons'`, `'…'::bytea` are read with *that type's* input syntax.
//! DataFusion reads every quoted literal as text and then either refuses
//! the comparison (boolean), casts the text's UTF-8 bytes (bytea: a filter
//! that silently matches nothing) or fails on PostgreSQL's interval words.
//!
//! [`UnknownLiterals`], an analyzer rule that runs before DataFusion's type
//! coercion, gives text literals compared with, listed against or cast to a
//! boolean, bytea or interval the value PostgreSQL would read, with
//! PostgreSQL's errors (22P02) for text it would refuse;
//! [`UnknownLiteralPlanner`] does the same for comparisons while the SQL
//! is planned (a select list is typed then). The input syntaxes
//! themselves are [`parse_bool`], [`parse_bytea`] and [`parse_interval`].

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, ExprSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, Cast, Expr, ExprSchemable, LogicalPlan, Operator, TryCast,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::QueryError;

/// The analyzer rule; see the module docs.
#[derive(Debug, Default)]
pub struct UnknownLiterals;

impl AnalyzerRule for UnknownLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let inputs = node.inputs();
            let mut schema = merge_schema(&inputs);
            if let LogicalPlan::TableScan(scan) = &node {
                schema.merge(scan.projected_schema.as_ref());
            }
            node.map_expressions(|e| e.transform_up(|e| typed_literal(e, &schema)))
        })
        .data()
    }

    fn name(&self) -> &str {
        "tautan_unknown_literals"
    }
}

/// The same reading, at SQL planning time, of the literal in a
/// comparison: DataFusion's planner types a select-list expression
/// (`SELECT bool_col = 't'`) before any analyzer rule runs, and refuses
/// the comparison there. Registered as an [`ExprPlanner`]; the analyzer
/// rule still reads the literals planning leaves (IN lists, casts).
#[derive(Debug, Default)]
pub struct UnknownLiteralPlanner;

impl ExprPlanner for UnknownLiteralPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        use datafusion::sql::sqlparser::ast::BinaryOperator as Sql;
        let op = match expr.op {
            Sql::Eq => Operator::Eq,
            Sql::NotEq => Operator::NotEq,
            Sql::Lt => Operator::Lt,
            Sql::LtEq => Operator::LtEq,
            Sql::Gt => Operator::Gt,
            Sql::GtEq => Operator::GtEq,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let RawBinaryExpr {
            op: sql_op,
            left,
            right,
        } = expr;
        let comparison = Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)));
        let Expr::BinaryExpr(BinaryExpr { left, right, .. }) =
            typed_literal(comparison, schema)?.data
        else {
            return Err(DataFusionError::Internal(
                "a comparison stays a comparison".into(),
            ));
        };
        Ok(PlannerResult::Original(RawBinaryExpr {
            op: sql_op,
            left: *left,
            right: *right,
        }))
    }
}

/// `plan` with a type for each untyped parameter of `x = ANY($n)`
/// (planned as `array_has($n, x)`): an array of `x`'s type, as PostgreSQL
/// types it. DataFusion infers none there, so a client that leaves the
/// type to the server (psycopg sends a list of strings untyped) had its
/// array read as one string, and the ParameterDescription said `text`.
/// Likewise an untyped parameter cast explicitly (`$1::text[]`) takes the
/// cast's type, as in PostgreSQL (asyncpg then binds a list, not a string).
pub fn typed_array_parameters(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::expr::{Cast, Placeholder, ScalarFunction};
    plan.transform_up_with_subqueries(|node| {
        let schema = merge_schema(&node.inputs());
        node.map_expressions(|e| {
            e.transform_up(|e| {
                if let Expr::Cast(Cast { expr, field }) = e {
                    return Ok(match *expr {
                        Expr::Placeholder(Placeholder { id, field: None })
                            if matches!(field.data_type(), DataType::List(_)) =>
                        {
                            let typed = Field::new("", field.data_type().clone(), true);
                            Transformed::yes(Expr::Cast(Cast {
                                expr: Box::new(Expr::Placeholder(Placeholder {
                                    id,
                                    field: Some(Arc::new(typed)),
                                })),
                                field,
                            }))
                        }
                        other => Transformed::no(Expr::Cast(Cast {
                            expr: Box::new(other),
                            field,
                        })),
                    });
                }
                let Expr::ScalarFunction(ScalarFunction { func, mut args }) = e else {
                    return Ok(Transformed::no(e));
                };
                let untyped = matches!(
                    args.as_slice(),
                    [Expr::Placeholder(Placeholder { field: None, .. }), _]
                );
                let element = match (func.name() == "array_has" && untyped, args.get(1)) {
                    (true, Some(needle)) => needle.get_type(&schema).ok(),
                    _ => None,
                };
                match (element, args.first_mut()) {
                    (Some(t), Some(Expr::Placeholder(p))) => {
                        let list = DataType::List(Arc::new(Field::new_list_field(t, true)));
                        p.field = Some(Arc::new(Field::new("", list, true)));
                        Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                            func,
                            args,
                        })))
                    }
                    _ => Ok(Transformed::no(Expr::ScalarFunction(ScalarFunction {
                        func,
                        args,
                    }))),
                }
            })
        })
    })
    .data()
    .and_then(same_type_everywhere)
}

/// `plan` with each parameter it leaves untyped (`SELECT $1`, `$1 IS
/// NULL`) given the type the client declared for it (`declared[n - 1]` for
/// `$n`), as PostgreSQL types it: the row description then names that
/// type and a bound value is read as one. Parameters the statement types
/// itself keep their type. The plan's schemas are recomputed, so a
/// projection of the parameter has the declared type.
pub fn declared_parameters(
    plan: LogicalPlan,
    declared: &[Option<DataType>],
) -> Result<LogicalPlan> {
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::expr::Placeholder;
    if declared.iter().all(Option::is_none) {
        return Ok(plan);
    }
    let type_of = |id: &str| -> Option<DataType> {
        let n: usize = id.strip_prefix('$')?.parse().ok()?;
        declared.get(n.checked_sub(1)?).cloned().flatten()
    };
    // Most statements type every parameter themselves (`id = $1`): then
    // nothing is rewritten and no schema recomputed (pgJDBC declares a
    // type for every parameter of every statement).
    let mut untyped = false;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::Placeholder(Placeholder { id, field: None }) = e {
                    untyped |= type_of(id).is_some();
                }
                Ok(if untyped {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })
    })?;
    if !untyped {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        let node = node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Placeholder(Placeholder { id, field: None }) => match type_of(&id) {
                    Some(t) => Ok(Transformed::yes(Expr::Placeholder(Placeholder {
                        id,
                        field: Some(Arc::new(Field::new("", t, true))),
                    }))),
                    None => Ok(Transformed::no(Expr::Placeholder(Placeholder {
                        id,
                        field: None,
                    }))),
                },
                other => Ok(Transformed::no(other)),
            })
        })?;
        // Every node: a schema above a typed parameter (an outer
        // projection, a join) holds the type too.
        node.map_data(|n| n.recompute_schema())
    })
    .data()
    .and_then(same_type_everywhere)
}

/// Every untyped occurrence of a parameter typed somewhere in `plan` gets
/// that type: `x = ANY($1)` outside a filter becomes a CASE naming `$1`
/// four times ([`crate::any_array`]), one of which is typed above.
fn same_type_everywhere(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::expr::Placeholder;
    let mut typed: std::collections::HashMap<String, datafusion::arrow::datatypes::FieldRef> =
        Default::default();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::Placeholder(Placeholder { id, field: Some(f) }) = e {
                    typed.entry(id.clone()).or_insert_with(|| f.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    if typed.is_empty() {
        return Ok(plan);
    }
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Placeholder(Placeholder { id, field: None }) => {
                    let field = typed.get(&id).cloned();
                    let changed = field.is_some();
                    let e = Expr::Placeholder(Placeholder { id, field });
                    Ok(if changed {
                        Transformed::yes(e)
                    } else {
                        Transformed::no(e)
                    })
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .data()
}

/// Whether `t` reads quoted literals with its own syntax here.
fn reads_own_syntax(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Boolean
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Interval(_)
    )
}

fn text_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(v, _) => v.try_as_str().flatten(),
        _ => None,
    }
}

/// The type `e` gives a text literal compared with it, when PostgreSQL's
/// reading differs from DataFusion's: the types above, and dates, times
/// and timestamps (DataFusion reads a text timestamp as nanoseconds, which
/// cannot hold years before 1677 or after 2262; the column's own
/// microseconds can).
fn type_of(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    e.get_type(schema).ok().filter(|t| {
        reads_own_syntax(t)
            || matches!(
                t,
                DataType::Timestamp(..) | DataType::Date32 | DataType::Time64(_)
            )
    })
}

/// Whether `e` is a `char(n)` column (trailing blanks insignificant).
fn is_bpchar(e: &Expr, schema: &DFSchema) -> bool {
    let Expr::Column(c) = e else {
        return false;
    };
    schema.field_from_column(c).is_ok_and(|f| {
        f.metadata()
            .get(tautan_connector::types::PG_TYPE_KEY)
            .is_some_and(|t| t == "bpchar")
    })
}

/// A text literal compared with a `char(n)` column loses its trailing
/// blanks, as PostgreSQL reads it as `char`.
#[allow(clippy::boxed_local)] // takes and gives back a BinaryExpr's side
fn unpadded(e: Box<Expr>) -> Box<Expr> {
    match *e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), m) => Box::new(Expr::Literal(
            ScalarValue::Utf8(Some(s.trim_end_matches(' ').to_string())),
            m,
        )),
        other => Box::new(other),
    }
}

fn typed_literal(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr {
            mut left,
            op,
            mut right,
        }) if is_comparison(op) => {
            let mut changed = false;
            if let (Some(t), Some(text)) = (type_of(&left, schema), text_literal(&right)) {
                right = Box::new(Expr::Literal(read_as(text, &t)?, None));
                changed = true;
            } else if let (Some(text), Some(t)) = (text_literal(&left), type_of(&right, schema)) {
                left = Box::new(Expr::Literal(read_as(text, &t)?, None));
                changed = true;
            } else if is_bpchar(&left, schema) && text_literal(&right).is_some() {
                right = unpadded(right);
                changed = true;
            } else if is_bpchar(&right, schema) && text_literal(&left).is_some() {
                left = unpadded(left);
                changed = true;
            }
            let interval = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Interval(_)));
            if interval(&left) && interval(&right) {
                // PostgreSQL compares intervals as one length (a month is
                // 30 days, a day 24 hours): '1 mon' = '30 days'.
                left = Box::new(interval_key(*left));
                right = Box::new(interval_key(*right));
                changed = true;
            }
            let e = Expr::BinaryExpr(BinaryExpr { left, op, right });
            if changed {
                Transformed::yes(e)
            } else {
                Transformed::no(e)
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => match type_of(&expr, schema) {
            Some(t) if list.iter().any(|v| text_literal(v).is_some()) => {
                let mut list = list
                    .into_iter()
                    .map(|v| match text_literal(&v) {
                        Some(text) => Ok(Expr::Literal(read_as(text, &t)?, None)),
                        None => Ok(v),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut expr = expr;
                if matches!(t, DataType::Interval(_)) {
                    expr = Box::new(interval_key(*expr));
                    list = list.into_iter().map(interval_key).collect();
                }
                Transformed::yes(Expr::InList(InList {
                    expr,
                    list,
                    negated,
                }))
            }
            _ if is_bpchar(&expr, schema) && list.iter().any(|v| text_literal(v).is_some()) => {
                Transformed::yes(Expr::InList(InList {
                    expr,
                    list: list.into_iter().map(|v| *unpadded(Box::new(v))).collect(),
                    negated,
                }))
            }
            _ => Transformed::no(Expr::InList(InList {
                expr,
                list,
                negated,
            })),
        },
        Expr::Cast(Cast { expr, field }) => match text_literal(&expr) {
            Some(text) if reads_own_syntax(field.data_type()) => {
                Transformed::yes(Expr::Literal(read_as(text, field.data_type())?, None))
            }
            _ => Transformed::no(Expr::Cast(Cast { expr, field })),
        },
        Expr::TryCast(TryCast { expr, field }) => match text_literal(&expr) {
            Some(text) if reads_own_syntax(field.data_type()) => {
                let value = read_as(text, field.data_type())
                    .or_else(|_| ScalarValue::try_from(field.data_type()))?;
                Transformed::yes(Expr::Literal(value, None))
            }
            _ => Transformed::no(Expr::TryCast(TryCast { expr, field })),
        },
        other => Transformed::no(other),
    })
}

/// `e` (an interval) as the single length PostgreSQL compares intervals
/// by ([`IntervalKey`]).
fn interval_key(e: Expr) -> Expr {
    datafusion::logical_expr::ScalarUDF::new_from_impl(IntervalKey::new()).call(vec![e])
}

/// An interval's length in nanoseconds, with PostgreSQL's 30-day months
/// and 24-hour days: what `=`, `<`, `IN` compare intervals by.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntervalKey {
    signature: datafusion::logical_expr::Signature,
}

impl IntervalKey {
    fn new() -> Self {
        Self {
            signature: datafusion::logical_expr::Signature::exact(
                vec![DataType::Interval(
                    datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
                )],
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for IntervalKey {
    fn name(&self) -> &str {
        "tautan_interval_key"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{AsArray, Decimal128Array};
        use datafusion::arrow::datatypes::IntervalMonthDayNanoType;
        const DAY: i128 = 86_400_000_000_000;
        let key = |v: IntervalMonthDayNano| {
            i128::from(v.months) * 30 * DAY + i128::from(v.days) * DAY + i128::from(v.nanoseconds)
        };
        let array = args
            .args
            .first()
            .ok_or_else(|| {
                DataFusionError::Internal("tautan_interval_key takes one argument".into())
            })?
            .to_array(args.number_rows)?;
        let keys: Decimal128Array = array
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| v.map(key))
            .collect();
        Ok(datafusion::logical_expr::ColumnarValue::Array(
            std::sync::Arc::new(keys.with_precision_and_scale(38, 0)?),
        ))
    }
}

/// The comparison operators (`=`, `<>`, `<`, `<=`, `>`, `>=`, `IS [NOT]
/// DISTINCT FROM`).
pub(crate) fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// `text` read as PostgreSQL reads a literal of type `t`.
fn read_as(text: &str, t: &DataType) -> Result<ScalarValue> {
    let invalid = |pg: &str, why: Option<String>| {
        let mut message = format!("invalid input syntax for type {pg}: \"{text}\"");
        if let Some(why) = why {
            message = format!("{message} ({why})");
        }
        DataFusionError::External(Box::new(QueryError::new("22P02", message)))
    };
    match t {
        DataType::Boolean => parse_bool(text)
            .map(|b| ScalarValue::Boolean(Some(b)))
            .ok_or_else(|| invalid("boolean", None)),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let bytes = parse_bytea(text).map_err(|e| invalid("bytea", Some(e)))?;
            ScalarValue::Binary(Some(bytes)).cast_to(t)
        }
        DataType::Interval(_) => {
            let v = parse_interval(text).map_err(|e| invalid("interval", Some(e)))?;
            ScalarValue::IntervalMonthDayNano(Some(v)).cast_to(t)
        }
        other => ScalarValue::Utf8(Some(text.to_string())).cast_to(other),
    }
}

/// PostgreSQL's boolean input: `t`/`true`/`yes`/`on`/`1` and
/// `f`/`false`/`no`/`off`/`0`, any unique prefix of the words, any case,
/// surrounding blanks ignored.
pub fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim().to_ascii_lowercase();
    let prefix_of = |word: &str| !t.is_empty() && word.starts_with(t.as_str());
    match t.as_str() {
        "1" | "on" => Some(true),
        "0" | "of" | "off" => Some(false),
        _ if prefix_of("true") || prefix_of("yes") => Some(true),
        _ if prefix_of("false") || prefix_of("no") => Some(false),
        _ => None,
    }
}

/// PostgreSQL's bytea input: hex format (`\x` then digit pairs, blanks
/// allowed between pairs) or escape format (bytes as written, `\\` for a
/// backslash, `\ooo` for an octal byte).
pub fn parse_bytea(text: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    if let Some(hex) = text.strip_prefix("\\x") {
        let mut out = Vec::with_capacity(hex.len() / 2);
        // Blanks only between pairs, never inside one.
        let raw = hex.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let hi = hex_value(raw[i]).ok_or("invalid hexadecimal digit")?;
            let lo = raw
                .get(i + 1)
                .copied()
                .and_then(hex_value)
                .ok_or("invalid hexadecimal data: odd number of digits")?;
            out.push(hi << 4 | lo);
            i += 2;
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)) && d[0] <= b'3');
            let Some(d) = octal else {
                return Err(
                    "a backslash must be followed by a backslash or three octal digits".into(),
                );
            };
            out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
            i += 4;
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const MICROS_PER_SECOND: f64 = 1e6;
const MICROS_PER_DAY: f64 = 86_400.0 * 1e6;

/// An interval being read: months, days and microseconds, each kept apart
/// as PostgreSQL does; fractions spill down (a month is 30 days, a day
/// 24 hours).
#[derive(Default)]
struct Parts {
    months: f64,
    days: f64,
    micros: f64,
}

impl Parts {
    fn add_months(&mut self, n: f64) {
        let whole = n.trunc();
        self.months += whole;
        self.add_days((n - whole) * 30.0);
    }
    fn add_days(&mut self, n: f64) {
        let whole = n.trunc();
        self.days += whole;
        self.micros += (n - whole) * MICROS_PER_DAY;
    }
    fn finish(self, negate: bool) -> std::result::Result<IntervalMonthDayNano, String> {
        let sign = if negate { -1.0 } else { 1.0 };
        let months = (self.months * sign).round();
        let days = (self.days * sign).round();
        let nanos = (self.micros * sign).round() * 1000.0;
        if months.abs() > i32::MAX as f64 || days.abs() > i32::MAX as f64 || nanos.abs() > 9.2e18 {
            return Err("interval out of range".into());
        }
        Ok(IntervalMonthDayNano::new(
            months as i32,
            days as i32,
            nanos as i64,
        ))
    }
}

/// PostgreSQL's interval input: `[@] quantity unit [quantity unit ...]
/// [ago]` with the units PostgreSQL knows (and their abbreviations), time
/// of day fields `[-]HH:MM[:SS[.ffffff]]`, a bare number as seconds, and
/// ISO 8601 `P1Y2M3DT4H5M6S`.
pub fn parse_interval(text: &str) -> std::result::Result<IntervalMonthDayNano, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_prefix('@').unwrap_or(&t).trim();
    if t.is_empty() {
        return Err("empty interval".into());
    }
    if let Some(iso) = t.strip_prefix('p') {
        return parse_iso_interval(iso);
    }
    let mut parts = Parts::default();
    let mut negate = false;
    let tokens: Vec<&str> = t.split_whitespace().collect();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if token == "ago" && i + 1 == tokens.len() {
            negate = true;
            i += 1;
            continue;
        }
        if token.contains(':') {
            parts.micros += time_of_day(token)?;
            i += 1;
            continue;
        }
        // A number, maybe glued to its unit ("10days").
        let split = token
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(token.len());
        let (number, glued) = token.split_at(split);
        let n: f64 = number
            .parse()
            .map_err(|_| format!("unexpected \"{token}\""))?;
        let unit = if !glued.is_empty() {
            i += 1;
            glued
        } else if let Some(next) = tokens.get(i + 1).filter(|u| unit_scale(u).is_some()) {
            i += 2;
            next
        } else {
            // A bare number is seconds.
            parts.micros += n * MICROS_PER_SECOND;
            i += 1;
            continue;
        };
        match unit_scale(unit).ok_or_else(|| format!("unknown unit \"{unit}\""))? {
            Unit::Months(m) => parts.add_months(n * m),
            Unit::Days(d) => parts.add_days(n * d),
            Unit::Micros(u) => parts.micros += n * u,
        }
    }
    parts.finish(negate)
}

enum Unit {
    Months(f64),
    Days(f64),
    Micros(f64),
}

fn unit_scale(unit: &str) -> Option<Unit> {
    Some(match unit.trim_end_matches(',') {
        "millennium" | "millennia" | "millenniums" | "mil" | "mils" => Unit::Months(12_000.0),
        "century" | "centuries" | "c" | "cent" => Unit::Months(1_200.0),
        "decade" | "decades" | "dec" | "decs" => Unit::Months(120.0),
        "year" | "years" | "y" | "yr" | "yrs" => Unit::Months(12.0),
        "month" | "months" | "mon" | "mons" => Unit::Months(1.0),
        "week" | "weeks" | "w" => Unit::Days(7.0),
        "day" | "days" | "d" => Unit::Days(1.0),
        "hour" | "hours" | "h" | "hr" | "hrs" => Unit::Micros(3_600.0 * MICROS_PER_SECOND),
        "minute" | "minutes" | "m" | "min" | "mins" => Unit::Micros(60.0 * MICROS_PER_SECOND),
        "second" | "seconds" | "s" | "sec" | "secs" => Unit::Micros(MICROS_PER_SECOND),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => Unit::Micros(1_000.0),
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => Unit::Micros(1.0),
        _ => return None,
    })
}

/// `[-]HH:MM[:SS[.f]]` in microseconds.
fn time_of_day(token: &str) -> std::result::Result<f64, String> {
    let (sign, body) = match token.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, token.strip_prefix('+').unwrap_or(token)),
    };
    let fields: Vec<&str> = body.split(':').collect();
    let number = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("invalid time field \"{token}\""))
    };
    let (h, m, s) = match fields.as_slice() {
        [h, m] => (number(h)?, number(m)?, 0.0),
        [h, m, s] => (number(h)?, number(m)?, number(s)?),
        _ => return Err(format!("invalid time field \"{token}\"")),
    };
    Ok(sign * ((h * 60.0 + m) * 60.0 + s) * MICROS_PER_SECOND)
}

/// ISO 8601 `P[nY][nM][nW][nD][T[nH][nM][nS]]` (after the `P`).
fn parse_iso_interval(text: &str) -> std::result::Result<IntervalMonthDayNano, String> {
    let mut parts = Parts::default();
    let mut in_time = false;
    let mut number = String::new();
    for c in text.chars() {
        match c {
            't' => in_time = true,
            '0'..='9' | '.' | '-' | '+' => number.push(c),
            unit => {
                let n: f64 = std::mem::take(&mut number)
                    .parse()
                    .map_err(|_| format!("invalid ISO 8601 interval near '{unit}'"))?;
                match (in_time, unit) {
                    (false, 'y') => parts.add_months(n * 12.0),
                    (false, 'm') => parts.add_months(n),
                    (false, 'w') => parts.add_days(n * 7.0),
                    (false, 'd') => parts.add_days(n),
                    (true, 'h') => parts.micros += n * 3_600.0 * MICROS_PER_SECOND,
                    (true, 'm') => parts.micros += n * 60.0 * MICROS_PER_SECOND,
                    (true, 's') => parts.micros += n * MICROS_PER_SECOND,
                    _ => return Err(format!("invalid ISO 8601 interval unit '{unit}'")),
                }
            }
        }
    }
    if !number.is_empty() {
        return Err("ISO 8601 interval ends without a unit".into());
    }
    parts.finish(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(months: i32, days: i32, micros: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, micros * 1000)
    }

    #[test]
    fn booleans() {
        for t in ["t", "TRUE", " yes ", "on", "1", "y", "tr"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["f", "false", "no", "off", "0", "n", "of"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "o", "2", "truex", "nope"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn bytea_hex_and_escape() {
        assert_eq!(parse_bytea(r"\x00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(
            parse_bytea(r"\xDE AD be ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(parse_bytea(r"\x").unwrap(), Vec::<u8>::new());
        assert!(parse_bytea(r"\x0").is_err());
        assert!(parse_bytea(r"\xzz").is_err());
        assert_eq!(parse_bytea(r"ab\\c\001").unwrap(), b"ab\\c\x01".to_vec());
        assert!(parse_bytea(r"a\b").is_err());
        assert_eq!(parse_bytea("plain").unwrap(), b"plain".to_vec());
    }

    #[test]
    fn intervals_as_postgresql_reads_them() {
        let micros = |h: i64, m: i64, s: i64, us: i64| ((h * 60 + m) * 60 + s) * 1_000_000 + us;
        assert_eq!(
            parse_interval("1 year 2 mons 3 days 04:05:06.789").unwrap(),
            iv(14, 3, micros(4, 5, 6, 789_000))
        );
        assert_eq!(parse_interval("-1 days").unwrap(), iv(0, -1, 0));
        assert_eq!(
            parse_interval("@ 1 day 2 hours ago").unwrap(),
            iv(0, -1, -micros(2, 0, 0, 0))
        );
        assert_eq!(parse_interval("1.5 months").unwrap(), iv(1, 15, 0));
        assert_eq!(
            parse_interval("1.5 days").unwrap(),
            iv(0, 1, micros(12, 0, 0, 0))
        );
        assert_eq!(parse_interval("2 weeks").unwrap(), iv(0, 14, 0));
        assert_eq!(parse_interval("90").unwrap(), iv(0, 0, micros(0, 1, 30, 0)));
        assert_eq!(parse_interval("10days").unwrap(), iv(0, 10, 0));
        assert_eq!(
            parse_interval("-04:05").unwrap(),
            iv(0, 0, -micros(4, 5, 0, 0))
        );
        assert_eq!(
            parse_interval("P1Y2M3DT4H5M6S").unwrap(),
            iv(14, 3, micros(4, 5, 6, 0))
        );
        assert!(parse_interval("1 fortnight").is_err());
        assert!(parse_interval("").is_err());
        assert!(parse_interval("99999999999 years").is_err());
    }
}
