//! What a source is asked to do: the SQL text of a pushed-down scan.
//!
//! [`SourceDialect`] decides which filters a source evaluates *exactly* as
//! DataFusion would (those are removed from the plan), which it can only
//! narrow down (*inexact*: DataFusion re-checks the rows), and which stay in
//! DataFusion. Filter expressions are written out by DataFusion's own
//! unparser in the source's dialect; identifiers are quoted here.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::sql::unparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use datafusion::sql::unparser::Unparser;

/// The SQL dialect of a source, with what tautan knows about its semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDialect {
    /// PostgreSQL: byte-exact string equality, standard string literals.
    Postgres,
    /// MySQL/MariaDB: string comparisons follow the column collation, which
    /// is usually case- and accent-insensitive, so string predicates can
    /// only narrow rows down. Sessions run with `NO_BACKSLASH_ESCAPES`.
    MySql,
}

impl SourceDialect {
    /// Quotes an identifier for this source.
    pub fn quote_ident(&self, ident: &str) -> String {
        match self {
            SourceDialect::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
            SourceDialect::MySql => format!("`{}`", ident.replace('`', "``")),
        }
    }

    /// `schema.table`, quoted.
    pub fn qualified(&self, schema: &str, table: &str) -> String {
        format!("{}.{}", self.quote_ident(schema), self.quote_ident(table))
    }

    /// DataFusion's unparser dialect for this source. A T-SQL source would
    /// add a variant here with a `CustomDialect` (bracket quoting, `TOP`),
    /// plus its arms in [`Self::cast_type`] and [`Self::decodable`].
    pub fn unparser_dialect(&self) -> Arc<dyn Dialect> {
        match self {
            SourceDialect::Postgres => Arc::new(PostgreSqlDialect {}),
            SourceDialect::MySql => Arc::new(MySqlDialect {}),
        }
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
        }
    }

    /// Wraps a statement whose result should have `schema` so the link's
    /// decoder can read it: on PostgreSQL every column is cast to the type
    /// [`Self::cast_type`] names (binary COPY carries no types); MySQL rows
    /// carry typed values, so the statement is sent as it is. Returns the
    /// SQL and the schema to decode with (column tags removed: the values
    /// are plain after the casts).
    pub fn decodable(&self, query: &str, schema: &Schema) -> Result<(String, Arc<Schema>)> {
        let wire = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_metadata(Default::default()))
                .collect::<Vec<_>>(),
        ));
        match self {
            SourceDialect::MySql => Ok((query.to_string(), wire)),
            SourceDialect::Postgres => {
                if schema.fields().is_empty() {
                    return Err(datafusion::error::DataFusionError::NotImplemented(
                        "a sub-plan without output columns".into(),
                    ));
                }
                let mut casts = Vec::with_capacity(schema.fields().len());
                let mut names = Vec::with_capacity(schema.fields().len());
                for (i, f) in schema.fields().iter().enumerate() {
                    let ty = self.cast_type(f.data_type()).ok_or_else(|| {
                        datafusion::error::DataFusionError::NotImplemented(format!(
                            "no decoder for {} ({})",
                            f.name(),
                            f.data_type()
                        ))
                    })?;
                    casts.push(format!("CAST(q.c{i} AS {ty})"));
                    names.push(format!("c{i}"));
                }
                Ok((
                    format!(
                        "SELECT {} FROM ({query}) AS q({})",
                        casts.join(", "),
                        names.join(", ")
                    ),
                    wire,
                ))
            }
        }
    }

    /// Writes `expr` as SQL for this source, or `None` when it cannot be
    /// written (the filter then stays in DataFusion).
    pub fn expr_to_sql(&self, expr: &Expr) -> Option<String> {
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
        let unparser = Unparser::new(dialect.as_ref());
        unparser
            .expr_to_sql(&unqualified)
            .ok()
            .map(|e| e.to_string())
    }

    /// How far this source can take `filter` on a table with `schema`.
    /// `pushable_columns[i]` is false for columns selected through a cast
    /// (their remote type differs from the Arrow one).
    pub fn classify(
        &self,
        filter: &Expr,
        schema: &Schema,
        pushable_columns: &[bool],
    ) -> TableProviderFilterPushDown {
        let verdict = Classifier {
            dialect: *self,
            schema,
            pushable_columns,
        }
        .classify(filter);
        match verdict {
            Some(v) if self.expr_to_sql(filter).is_some() => v,
            _ => TableProviderFilterPushDown::Unsupported,
        }
    }
}

struct Classifier<'a> {
    dialect: SourceDialect,
    schema: &'a Schema,
    pushable_columns: &'a [bool],
}

use TableProviderFilterPushDown::{Exact, Inexact};

fn weakest(
    a: TableProviderFilterPushDown,
    b: TableProviderFilterPushDown,
) -> TableProviderFilterPushDown {
    if a == Exact && b == Exact {
        Exact
    } else {
        Inexact
    }
}

/// Kinds of comparison, for deciding what string collations allow.
#[derive(PartialEq)]
enum Cmp {
    Eq,
    NotEq,
    Range,
}

impl Classifier<'_> {
    /// The type of a pushable column reference, or None.
    fn column_type(&self, e: &Expr) -> Option<&DataType> {
        let Expr::Column(c) = e else { return None };
        let idx = self.schema.index_of(&c.name).ok()?;
        if !self.pushable_columns.get(idx).copied().unwrap_or(false) {
            return None;
        }
        Some(self.schema.field(idx).data_type())
    }

    fn literal_ok(&self, e: &Expr) -> bool {
        match e {
            Expr::Literal(v, _) => {
                !v.is_null()
                    && matches!(
                        v,
                        ScalarValue::Boolean(_)
                            | ScalarValue::Int8(_)
                            | ScalarValue::Int16(_)
                            | ScalarValue::Int32(_)
                            | ScalarValue::Int64(_)
                            | ScalarValue::UInt8(_)
                            | ScalarValue::UInt16(_)
                            | ScalarValue::UInt32(_)
                            | ScalarValue::UInt64(_)
                            | ScalarValue::Float32(_)
                            | ScalarValue::Float64(_)
                            | ScalarValue::Decimal128(..)
                            | ScalarValue::Utf8(_)
                            | ScalarValue::Utf8View(_)
                            | ScalarValue::LargeUtf8(_)
                            | ScalarValue::Date32(_)
                            | ScalarValue::TimestampSecond(..)
                            | ScalarValue::TimestampMillisecond(..)
                            | ScalarValue::TimestampMicrosecond(..)
                    )
            }
            _ => false,
        }
    }

    /// A comparison between a column of type `ty` and literals.
    fn comparison(&self, ty: &DataType, cmp: Cmp) -> Option<TableProviderFilterPushDown> {
        let is_string = matches!(
            ty,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        // Timestamp literals are written as text cast to the source's
        // timestamp type: exact without a time zone on both; with one only
        // on PostgreSQL, whose sessions run in UTC (the offset is part of
        // the text and the comparison is on instants).
        let timestamp_ok = match ty {
            DataType::Timestamp(_, None) => true,
            DataType::Timestamp(_, Some(_)) => self.dialect == SourceDialect::Postgres,
            _ => false,
        };
        let ok_type = is_string
            || ty.is_numeric()
            || timestamp_ok
            || matches!(ty, DataType::Boolean | DataType::Date32);
        if !ok_type {
            return None;
        }
        if !is_string {
            return Some(Exact);
        }
        match (self.dialect, cmp) {
            // Byte-wise equality is the same on both sides; range order
            // depends on the source collation.
            (SourceDialect::Postgres, Cmp::Eq | Cmp::NotEq) => Some(Exact),
            // Collation equality is implied by byte equality: a superset.
            (SourceDialect::MySql, Cmp::Eq) => Some(Inexact),
            _ => None,
        }
    }

    fn classify(&self, e: &Expr) -> Option<TableProviderFilterPushDown> {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And => Some(weakest(self.classify(left)?, self.classify(right)?)),
                Operator::Or => Some(weakest(self.classify(left)?, self.classify(right)?)),
                Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq => {
                    let cmp = match op {
                        Operator::Eq => Cmp::Eq,
                        Operator::NotEq => Cmp::NotEq,
                        _ => Cmp::Range,
                    };
                    let ty = match (self.column_type(left), self.column_type(right)) {
                        (Some(t), _) if self.literal_ok(right) => t,
                        (_, Some(t)) if self.literal_ok(left) => t,
                        _ => return None,
                    };
                    self.comparison(ty, cmp)
                }
                _ => None,
            },
            Expr::Not(inner) => match self.classify(inner)? {
                Exact => Some(Exact),
                _ => None,
            },
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => self.column_type(inner).map(|_| Exact),
            Expr::Column(_) => match self.column_type(e)? {
                DataType::Boolean => Some(Exact),
                _ => None,
            },
            Expr::InList(list) => {
                let ty = self.column_type(&list.expr)?;
                if !list.list.iter().all(|v| self.literal_ok(v)) {
                    return None;
                }
                self.comparison(ty, if list.negated { Cmp::NotEq } else { Cmp::Eq })
            }
            Expr::Between(b) => {
                let ty = self.column_type(&b.expr)?;
                if b.negated || !self.literal_ok(&b.low) || !self.literal_ok(&b.high) {
                    return None;
                }
                self.comparison(ty, Cmp::Range)
            }
            Expr::Like(like) => {
                let ty = self.column_type(&like.expr)?;
                let is_string = matches!(
                    ty,
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
                if !is_string || like.negated || like.escape_char.is_some() {
                    return None;
                }
                if !self.literal_ok(&like.pattern) {
                    return None;
                }
                match self.dialect {
                    SourceDialect::Postgres => Some(Exact),
                    SourceDialect::MySql => Some(Inexact),
                }
            }
            _ => None,
        }
    }
}

/// Everything needed to write the `SELECT` for one scan.
#[derive(Debug)]
pub struct ScanSql<'a> {
    /// Dialect of the source.
    pub dialect: SourceDialect,
    /// Remote schema.
    pub schema: &'a str,
    /// Remote table.
    pub table: &'a str,
    /// Select expression per column of the table (see
    /// [`RemoteTableDef::select_exprs`](crate::RemoteTableDef)).
    pub select_exprs: &'a [String],
    /// Columns to fetch, by index; `None` for all.
    pub projection: Option<&'a [usize]>,
    /// Filters to send (already classified as pushable).
    pub filters: &'a [Expr],
    /// Row limit, when every filter was pushed exactly.
    pub limit: Option<usize>,
    /// The part of a split scan this statement reads (a predicate from
    /// [`Link::split_scan`](crate::Link::split_scan)), if any.
    pub part: Option<&'a str>,
}

impl ScanSql<'_> {
    /// The SQL text. An empty projection (e.g. `count(*)`) selects the
    /// constant `1` so the source still sends one (tiny) value per row.
    pub fn to_sql(&self) -> Result<String> {
        let cols: Vec<&str> = match self.projection {
            Some(p) => p
                .iter()
                .filter_map(|&i| self.select_exprs.get(i).map(String::as_str))
                .collect(),
            None => self.select_exprs.iter().map(String::as_str).collect(),
        };
        let mut sql = String::from("SELECT ");
        if cols.is_empty() {
            sql.push('1');
        } else {
            sql.push_str(&cols.join(", "));
        }
        sql.push_str(" FROM ");
        sql.push_str(&self.dialect.qualified(self.schema, self.table));
        let mut predicates = Vec::with_capacity(self.filters.len() + 1);
        if let Some(part) = self.part {
            predicates.push(format!("({part})"));
        }
        for f in self.filters {
            let text = self.dialect.expr_to_sql(f).ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!(
                    "filter {f} was classified pushable but cannot be written as SQL"
                ))
            })?;
            predicates.push(format!("({text})"));
        }
        if !predicates.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&predicates.join(" AND "));
        }
        if let Some(n) = self.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        Ok(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};
    use datafusion::prelude::{col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Nama Lengkap", DataType::Utf8, true),
            Field::new("aktif", DataType::Boolean, true),
        ])
    }

    #[test]
    fn string_equality_is_exact_on_postgres_and_inexact_on_mysql() {
        let s = schema();
        let f = col("Nama Lengkap").eq(lit("O'Brien"));
        let all = [true, true, true];
        assert_eq!(SourceDialect::Postgres.classify(&f, &s, &all), Exact);
        assert_eq!(SourceDialect::MySql.classify(&f, &s, &all), Inexact);
        let range = col("Nama Lengkap").gt(lit("b"));
        assert_eq!(
            SourceDialect::Postgres.classify(&range, &s, &all),
            TableProviderFilterPushDown::Unsupported
        );
    }

    #[test]
    fn quoting_survives_odd_names_and_literals() {
        let f = col("Nama Lengkap").eq(lit("it's"));
        let pg = SourceDialect::Postgres.expr_to_sql(&f).unwrap();
        assert_eq!(pg, "(\"Nama Lengkap\" = 'it''s')");
        let my = SourceDialect::MySql.expr_to_sql(&f).unwrap();
        assert_eq!(my, "(`Nama Lengkap` = 'it''s')");
        assert_eq!(SourceDialect::MySql.quote_ident("a`b"), "`a``b`");
    }

    #[test]
    fn timestamp_filters_are_written_for_each_dialect() {
        let s = Schema::new(vec![
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
        ]);
        let all = [true, true];
        // 2026-02-01 00:00:00 UTC
        let micros = 1_769_904_000_000_000i64;
        let f = col("t").gt(lit(ScalarValue::TimestampMicrosecond(Some(micros), None)));
        assert_eq!(SourceDialect::Postgres.classify(&f, &s, &all), Exact);
        assert_eq!(SourceDialect::MySql.classify(&f, &s, &all), Exact);
        assert_eq!(
            SourceDialect::Postgres.expr_to_sql(&f).unwrap(),
            "(\"t\" > CAST('2026-02-01 00:00:00' AS TIMESTAMP))"
        );
        assert_eq!(
            SourceDialect::MySql.expr_to_sql(&f).unwrap(),
            "(`t` > CAST('2026-02-01 00:00:00' AS DATETIME))"
        );
        let g = col("tz").gt(lit(ScalarValue::TimestampMicrosecond(
            Some(micros),
            Some("+00:00".into()),
        )));
        assert_eq!(SourceDialect::Postgres.classify(&g, &s, &all), Exact);
        assert_eq!(
            SourceDialect::MySql.classify(&g, &s, &all),
            TableProviderFilterPushDown::Unsupported
        );
    }

    #[test]
    fn sub_plans_are_cast_to_what_the_decoder_reads() {
        let s = Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("total", DataType::Decimal128(25, 2), true),
            Field::new("nama", DataType::Utf8, true)
                .with_metadata([("tautan.pg_type".to_string(), "uuid".to_string())].into()),
        ]);
        let (sql, wire) = SourceDialect::Postgres
            .decodable("SELECT count(*), sum(x), y FROM t GROUP BY y", &s)
            .unwrap();
        assert_eq!(
            sql,
            "SELECT CAST(q.c0 AS int8), CAST(q.c1 AS numeric(25,2)), CAST(q.c2 AS text) \
             FROM (SELECT count(*), sum(x), y FROM t GROUP BY y) AS q(c0, c1, c2)"
        );
        // Tags are dropped: the text cast is decoded as text, not uuid.
        assert!(wire.field(2).metadata().is_empty());
        let (sql, _) = SourceDialect::MySql.decodable("SELECT 1", &s).unwrap();
        assert_eq!(sql, "SELECT 1");
        assert_eq!(SourceDialect::Postgres.cast_type(&DataType::UInt64), None);
    }

    #[test]
    fn scan_sql_has_projection_filters_and_limit() {
        let exprs = vec!["\"id\"".to_string(), "\"Nama Lengkap\"".to_string()];
        let filters = vec![col("id").gt(lit(10i64))];
        let sql = ScanSql {
            dialect: SourceDialect::Postgres,
            schema: "public",
            table: "Penduduk",
            select_exprs: &exprs,
            projection: Some(&[1]),
            filters: &filters,
            limit: Some(5),
            part: None,
        }
        .to_sql()
        .unwrap();
        assert_eq!(
            sql,
            "SELECT \"Nama Lengkap\" FROM \"public\".\"Penduduk\" WHERE ((\"id\" > 10)) LIMIT 5"
        );
    }
}
