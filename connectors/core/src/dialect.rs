//! [`SourceDialect`]: how SQL for one kind of source is written.
//!
//! The dialect knows which DataFusion unparser dialect writes expressions
//! for the source, which type an output column is cast to so the link's
//! decoder can read it, and how statements are assembled as syntax trees
//! (never as text: the text is produced by [`crate::sql`]'s sealing).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{
    self, CastKind, Ident, ObjectName, SelectItem, TableAlias, TableAliasColumnDef,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::unparser::ast::{
    DerivedRelationBuilder, QueryBuilder, RelationBuilder, SelectBuilder, TableRelationBuilder,
    TableWithJoinsBuilder,
};
use datafusion::sql::unparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use datafusion::sql::unparser::Unparser;

use crate::sql::{SourceQuery, SourceSqlError};

/// The SQL dialect of a source, with what tautan knows about its semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDialect {
    /// PostgreSQL: byte-exact string equality, standard string literals.
    Postgres,
    /// MySQL/MariaDB: string comparisons follow the column collation, which
    /// is usually case- and accent-insensitive, so string predicates can
    /// only narrow rows down. Sessions run with `NO_BACKSLASH_ESCAPES`.
    MySql,
    /// Microsoft SQL Server (T-SQL): `[bracket]` names, `N'…'` for text
    /// outside ASCII, `TOP`/`OFFSET … FETCH` instead of `LIMIT`, no boolean
    /// values ([`crate::tsql`]). String (and binary) comparisons follow the
    /// column collation and ignore trailing spaces, so, as on MySQL, string
    /// predicates only narrow rows down; sorts, integer division, casts and
    /// string functions stay in DataFusion.
    SqlServer,
}

impl SourceDialect {
    /// DataFusion's unparser dialect for this source (T-SQL's:
    /// [`crate::tsql::SqlServerUnparser`], whose `TOP`/`OFFSET … FETCH` are
    /// written by [`crate::tsql::normalize`] when the statement is sealed).
    pub fn unparser_dialect(&self) -> Arc<dyn Dialect> {
        match self {
            SourceDialect::Postgres => Arc::new(PostgreSqlDialect {}),
            SourceDialect::MySql => Arc::new(MySqlUnparser),
            SourceDialect::SqlServer => Arc::new(crate::tsql::SqlServerUnparser),
        }
    }

    /// Whether string equality at the source is byte equality, as in
    /// DataFusion (PostgreSQL). MySQL and SQL Server compare by collation
    /// (case, accents, trailing spaces), so equality there only narrows
    /// rows down, and grouping, joining or de-duplicating on strings merges
    /// values DataFusion keeps apart.
    pub fn exact_string_equality(&self) -> bool {
        matches!(self, SourceDialect::Postgres)
    }

    /// Whether values of `data_type` compare at the source by collation
    /// rather than by value: strings everywhere; on SQL Server binary
    /// strings too (trailing `0x00` bytes are ignored).
    pub fn collated(&self, data_type: &DataType) -> bool {
        matches!(
            data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) || (*self == SourceDialect::SqlServer
            && matches!(
                data_type,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            ))
    }

    /// The type to cast an output column of `data_type` to, so that the
    /// source sends it in the form the link's decoder reads for that Arrow
    /// type; `None` when there is no such decoder.
    pub fn cast_type(&self, data_type: &DataType) -> Option<String> {
        use datafusion::arrow::datatypes::{IntervalUnit, TimeUnit};
        let pg = match data_type {
            DataType::Boolean => "boolean".to_string(),
            DataType::Int16 => "int2".into(),
            DataType::Int32 => "int4".into(),
            DataType::Int64 => "int8".into(),
            DataType::Float32 => "float4".into(),
            DataType::Float64 => "float8".into(),
            DataType::Decimal128(p, s) if *s >= 0 => format!("numeric({p},{s})"),
            DataType::Utf8 | DataType::LargeUtf8 => "text".into(),
            DataType::Date32 => "date".into(),
            DataType::Time64(TimeUnit::Microsecond) => "time".into(),
            DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamptz".into(),
            DataType::Binary => "bytea".into(),
            DataType::Interval(IntervalUnit::MonthDayNano) => "interval".into(),
            _ => return None,
        };
        match self {
            SourceDialect::Postgres => Some(pg),
            // MySQL values carry their own type; the decoder converts.
            SourceDialect::MySql => match data_type {
                DataType::Interval(_) | DataType::Time64(_) => None,
                _ => Some(pg),
            },
            // Rows carry typed values (TDS); the decoder converts. The
            // names are T-SQL's, for casts inside sub-plans.
            SourceDialect::SqlServer => Some(match data_type {
                DataType::Boolean => "bit".to_string(),
                DataType::Int16 => "smallint".into(),
                DataType::Int32 => "int".into(),
                DataType::Int64 => "bigint".into(),
                DataType::Float32 => "real".into(),
                DataType::Float64 => "float".into(),
                DataType::Decimal128(p, s) if *s >= 0 => format!("decimal({p},{s})"),
                DataType::Utf8 | DataType::LargeUtf8 => "nvarchar(max)".into(),
                DataType::Date32 => "date".into(),
                DataType::Time64(TimeUnit::Microsecond) => "time(6)".into(),
                DataType::Timestamp(TimeUnit::Microsecond, None) => "datetime2(6)".into(),
                DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "datetimeoffset(6)".into(),
                DataType::Binary => "varbinary(max)".into(),
                _ => return None,
            }),
        }
    }

    /// A type name (from tautan's own mappings, e.g. `numeric(25,2)`,
    /// `text`, `CHAR`) as a syntax tree, parsed the way the source's text
    /// will be read back.
    pub fn data_type(&self, name: &str) -> Result<ast::DataType> {
        let dialect = crate::sql::guard::parser_dialect(*self);
        let parsed = Parser::new(dialect.as_ref())
            .try_with_sql(name)
            .and_then(|mut p| p.parse_data_type());
        parsed.map_err(|e| DataFusionError::Internal(format!("type {name}: {e}")))
    }

    /// Wraps `query`, whose result should have `schema`, so the link's
    /// decoder can read it: on PostgreSQL every column is cast to the type
    /// [`Self::cast_type`] names (binary COPY carries no types),
    /// `SELECT CAST(q.c0 AS …), … FROM (query) AS q(c0, …)`; MySQL rows
    /// carry typed values, so the query is kept as it is. Returns the
    /// checked statement and the schema to decode with (column tags
    /// removed: the values are plain after the casts).
    pub fn decodable(
        &self,
        query: ast::Query,
        schema: &Schema,
    ) -> Result<(SourceQuery, Arc<Schema>)> {
        let wire = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_metadata(Default::default()))
                .collect::<Vec<_>>(),
        ));
        let query = match self {
            // MySQL and SQL Server rows carry typed values.
            SourceDialect::MySql | SourceDialect::SqlServer => query,
            SourceDialect::Postgres => {
                if schema.fields().is_empty() {
                    return Err(DataFusionError::NotImplemented(
                        "a sub-plan without output columns".into(),
                    ));
                }
                let mut casts = Vec::with_capacity(schema.fields().len());
                let mut names = Vec::with_capacity(schema.fields().len());
                for (i, f) in schema.fields().iter().enumerate() {
                    let ty = self.cast_type(f.data_type()).ok_or_else(|| {
                        DataFusionError::NotImplemented(format!(
                            "no decoder for {} ({})",
                            f.name(),
                            f.data_type()
                        ))
                    })?;
                    let name = format!("c{i}");
                    casts.push(SelectItem::UnnamedExpr(cast(
                        ast::Expr::CompoundIdentifier(vec![Ident::new("q"), Ident::new(&name)]),
                        self.data_type(&ty)?,
                    )));
                    names.push(TableAliasColumnDef::from_name(name));
                }
                let mut derived = DerivedRelationBuilder::default();
                derived
                    .lateral(false)
                    .subquery(Box::new(query))
                    .alias(Some(TableAlias {
                        explicit: true,
                        name: Ident::new("q"),
                        columns: names,
                        at: None,
                    }));
                let mut relation = RelationBuilder::default();
                relation.derived(derived);
                select_query(casts, relation, None, None)?
            }
        };
        Ok((self.checked(query)?, wire))
    }

    /// Seals and guards `query` ([`SourceQuery::new`]); a statement that
    /// cannot be sent is `NotImplemented` (the planner keeps the work),
    /// a guard refusal an error of its own.
    pub fn checked(&self, query: ast::Query) -> Result<SourceQuery> {
        SourceQuery::new(*self, query).map_err(source_sql_error)
    }

    /// [`Self::checked`], with the sealed tree ([`SourceQuery::sealed`]).
    pub fn checked_sealed(&self, query: ast::Query) -> Result<(ast::Statement, SourceQuery)> {
        SourceQuery::sealed(*self, query).map_err(source_sql_error)
    }

    /// `expr` as an expression of this source (columns unqualified), or
    /// `None` when it cannot be written or sent (the filter then stays in
    /// DataFusion).
    pub fn expr_to_ast(&self, expr: &Expr) -> Option<ast::Expr> {
        if too_deep(expr) {
            return None;
        }
        let unqualified = expr
            .clone()
            .transform(|e| match e {
                Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                    c.name,
                )))),
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        let dialect = self.unparser_dialect();
        let ast = Unparser::new(dialect.as_ref())
            .expr_to_sql(&unqualified)
            .ok()?;
        // Sendable only if it seals: `SELECT <expr>` as a probe.
        let probe = select_query(
            vec![SelectItem::UnnamedExpr(ast.clone())],
            RelationBuilder::default(),
            None,
            None,
        )
        .ok()?;
        SourceQuery::new(*self, probe).ok()?;
        Some(ast)
    }
}

/// Deepest expression sent to a source: sources have stack limits of
/// their own (MariaDB's thread_stack fails a few hundred levels deep), and
/// no real filter comes near this.
pub const MAX_SENT_DEPTH: usize = 64;

/// Whether `expr` nests deeper than [`MAX_SENT_DEPTH`] (such work stays in
/// DataFusion).
pub fn too_deep(expr: &Expr) -> bool {
    fn depth(e: &Expr, level: usize) -> bool {
        if level > MAX_SENT_DEPTH {
            return true;
        }
        let mut deeper = false;
        let _ = e.apply_children(|child| {
            deeper = depth(child, level + 1);
            Ok(if deeper {
                datafusion::common::tree_node::TreeNodeRecursion::Stop
            } else {
                datafusion::common::tree_node::TreeNodeRecursion::Continue
            })
        });
        deeper
    }
    depth(expr, 0)
}

fn source_sql_error(e: SourceSqlError) -> DataFusionError {
    match e {
        SourceSqlError::Unsendable(_) => DataFusionError::NotImplemented(e.to_string()),
        SourceSqlError::Refused(_) => DataFusionError::External(Box::new(e)),
    }
}

/// DataFusion's MySQL unparser dialect, except that timestamps are cast
/// to `DATETIME(6)`: a plain `DATETIME` drops the microseconds of the
/// literal, so `dt6 = '… .123456'` matched nothing at the source.
struct MySqlUnparser;

impl Dialect for MySqlUnparser {
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        MySqlDialect {}.identifier_quote_style(identifier)
    }
    fn supports_qualify(&self) -> bool {
        MySqlDialect {}.supports_qualify()
    }
    fn supports_nulls_first_in_sort(&self) -> bool {
        MySqlDialect {}.supports_nulls_first_in_sort()
    }
    fn interval_style(&self) -> datafusion::sql::unparser::dialect::IntervalStyle {
        MySqlDialect {}.interval_style()
    }
    fn utf8_cast_dtype(&self) -> ast::DataType {
        MySqlDialect {}.utf8_cast_dtype()
    }
    fn large_utf8_cast_dtype(&self) -> ast::DataType {
        MySqlDialect {}.large_utf8_cast_dtype()
    }
    fn date_field_extract_style(
        &self,
    ) -> datafusion::sql::unparser::dialect::DateFieldExtractStyle {
        MySqlDialect {}.date_field_extract_style()
    }
    fn distinct_from_style(&self) -> datafusion::sql::unparser::dialect::DistinctFromStyle {
        MySqlDialect {}.distinct_from_style()
    }
    fn int64_cast_dtype(&self) -> ast::DataType {
        MySqlDialect {}.int64_cast_dtype()
    }
    fn int32_cast_dtype(&self) -> ast::DataType {
        MySqlDialect {}.int32_cast_dtype()
    }
    fn timestamp_cast_dtype(
        &self,
        _time_unit: &datafusion::arrow::datatypes::TimeUnit,
        _tz: &Option<Arc<str>>,
    ) -> ast::DataType {
        ast::DataType::Datetime(Some(6))
    }
    fn requires_derived_table_alias(&self) -> bool {
        MySqlDialect {}.requires_derived_table_alias()
    }
    fn scalar_function_to_sql_overrides(
        &self,
        unparser: &Unparser,
        func_name: &str,
        args: &[Expr],
    ) -> Result<Option<ast::Expr>> {
        MySqlDialect {}.scalar_function_to_sql_overrides(unparser, func_name, args)
    }
}

/// `CAST(expr AS data_type)`.
pub fn cast(expr: ast::Expr, data_type: ast::DataType) -> ast::Expr {
    ast::Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// `schema.table` as a relation name, both parts quoted.
pub fn table_name(schema: &str, table: &str) -> ObjectName {
    ObjectName::from(vec![
        Ident::with_quote('"', schema),
        Ident::with_quote('"', table),
    ])
}

/// `SELECT items FROM relation [WHERE selection] [LIMIT limit]`; an empty
/// relation builder means no `FROM`.
pub fn select_query(
    items: Vec<SelectItem>,
    relation: RelationBuilder,
    selection: Option<ast::Expr>,
    limit: Option<usize>,
) -> Result<ast::Query> {
    let built = |e: datafusion::sql::unparser::ast::BuilderError| {
        DataFusionError::Internal(format!("building a source statement: {e}"))
    };
    let mut select = SelectBuilder::default();
    select.projection(items).selection(selection);
    if relation.has_relation() {
        let mut from = TableWithJoinsBuilder::default();
        from.relation(relation);
        select.push_from(from);
    }
    let mut query = QueryBuilder::default();
    query
        .body(Box::new(ast::SetExpr::Select(Box::new(
            select.build().map_err(built)?,
        ))))
        .limit(limit.map(|n| ast::Expr::value(ast::Value::Number(n.to_string(), false))));
    query.build().map_err(built)
}

/// A relation reading table `name`.
pub fn table_relation(name: ObjectName) -> RelationBuilder {
    let mut table = TableRelationBuilder::default();
    table.name(name);
    let mut relation = RelationBuilder::default();
    relation.table(table);
    relation
}
