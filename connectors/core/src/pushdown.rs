//! What a scan asks a source for: the pushed-down projection, filters and
//! limit of one remote table, as a statement.
//!
//! [`SourceDialect::classify`] decides which filters a source evaluates
//! *exactly* as DataFusion would (those are removed from the plan), which
//! it can only narrow down (*inexact*: DataFusion re-checks the rows), and
//! which stay in DataFusion. Filter expressions are written by DataFusion's
//! own unparser in the source's dialect; [`ScanSql`] assembles the
//! statement as a syntax tree, which [`crate::sql`] seals and checks.

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::sql::sqlparser::ast::{self, BinaryOperator, Ident, SelectItem};

use crate::dialect::{cast, select_query, table_name, table_relation};
use crate::sql::SourceQuery;
use crate::{ColumnRead, RemoteTableDef, SourceDialect};

impl SourceDialect {
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
            Some(v) if self.expr_to_ast(filter).is_some() => v,
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
        let sqlserver = self.dialect == SourceDialect::SqlServer;
        match e {
            // T-SQL has no boolean values; its datetime/datetime2 columns
            // compare with a timestamp literal by rules that depend on the
            // database's compatibility level: both stay in DataFusion.
            Expr::Literal(
                ScalarValue::Boolean(_)
                | ScalarValue::TimestampSecond(..)
                | ScalarValue::TimestampMillisecond(..)
                | ScalarValue::TimestampMicrosecond(..),
                _,
            ) if sqlserver => false,
            Expr::Literal(ScalarValue::Float64(Some(v)), _) => crate::federation::short_float(*v),
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
            DataType::Timestamp(_, None) => self.dialect != SourceDialect::SqlServer,
            DataType::Timestamp(_, Some(_)) => self.dialect == SourceDialect::Postgres,
            _ => false,
        };
        // A `real` column compared with a literal: DataFusion compares in
        // single precision, the sources in double (3.14 as a float4 is
        // 3.1400001...), so the source would miss the row.
        let ok_type = is_string
            || (ty.is_numeric() && *ty != DataType::Float32)
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
            // (SQL Server also ignores trailing spaces: still a superset.)
            (SourceDialect::MySql | SourceDialect::SqlServer, Cmp::Eq) => Some(Inexact),
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
            // A bare bit column is no predicate in T-SQL.
            Expr::Column(_) if self.dialect == SourceDialect::SqlServer => None,
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
                    // Under NO_BACKSLASH_ESCAPES MySQL's LIKE has no
                    // escape character, where DataFusion (and PostgreSQL)
                    // read `\%` as a literal `%`: such patterns stay here.
                    SourceDialect::MySql => {
                        let backslash = match like.pattern.as_ref() {
                            Expr::Literal(v, _) => {
                                v.try_as_str().flatten().is_none_or(|p| p.contains('\\'))
                            }
                            _ => true,
                        };
                        (!backslash).then_some(Inexact)
                    }
                    // T-SQL's LIKE follows the collation and reads `[…]`
                    // as a character class: kept here.
                    SourceDialect::SqlServer => None,
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
    /// The remote table.
    pub def: &'a RemoteTableDef,
    /// Columns to fetch, by index; `None` for all.
    pub projection: Option<&'a [usize]>,
    /// Filters to send (already classified as pushable).
    pub filters: &'a [Expr],
    /// Row limit, when every filter was pushed exactly.
    pub limit: Option<usize>,
    /// The part of a split scan this statement reads (a predicate from
    /// [`Link::split_scan`](crate::Link::split_scan)), if any.
    pub part: Option<&'a ast::Expr>,
}

impl ScanSql<'_> {
    /// The statement, sealed and checked. An empty projection (e.g.
    /// `count(*)`) selects the constant `1` so the source still sends one
    /// (tiny) value per row.
    pub fn to_query(&self) -> Result<SourceQuery> {
        let fields = self.def.arrow_schema.fields();
        let all: Vec<usize> = (0..fields.len()).collect();
        let mut items = Vec::new();
        for &i in self.projection.unwrap_or(&all) {
            let (Some(field), Some(read)) = (fields.get(i), self.def.reads.get(i)) else {
                continue;
            };
            let column = ast::Expr::Identifier(Ident::with_quote('"', field.name()));
            items.push(SelectItem::UnnamedExpr(match read {
                ColumnRead::Plain => column,
                ColumnRead::Cast(ty) => cast(column, self.dialect.data_type(ty)?),
            }));
        }
        if items.is_empty() {
            items.push(SelectItem::UnnamedExpr(ast::Expr::value(
                ast::Value::Number("1".into(), false),
            )));
        }
        let mut predicates = Vec::with_capacity(self.filters.len() + 1);
        if let Some(part) = self.part {
            predicates.push(part.clone());
        }
        for f in self.filters {
            let written = self.dialect.expr_to_ast(f).ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!(
                    "filter {f} was classified pushable but cannot be written as SQL"
                ))
            })?;
            predicates.push(written);
        }
        let selection = predicates
            .into_iter()
            .map(|p| ast::Expr::Nested(Box::new(p)))
            .reduce(|a, b| ast::Expr::BinaryOp {
                left: Box::new(a),
                op: BinaryOperator::And,
                right: Box::new(b),
            });
        let relation = table_relation(table_name(&self.def.schema, &self.def.name));
        let query = select_query(items, relation, selection, self.limit)?;
        self.dialect.checked(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};
    use datafusion::prelude::{col, lit};
    use std::sync::Arc;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Nama Lengkap", DataType::Utf8, true),
            Field::new("aktif", DataType::Boolean, true),
        ])
    }

    fn def(schema: Schema, reads: Vec<ColumnRead>) -> RemoteTableDef {
        RemoteTableDef {
            schema: "public".into(),
            name: "Penduduk".into(),
            arrow_schema: Arc::new(schema),
            reads,
            is_view: false,
            comment: None,
            pages: None,
            estimates: Default::default(),
        }
    }

    fn filter_sql(dialect: SourceDialect, f: &Expr, schema: Schema) -> String {
        let n = schema.fields().len();
        let def = def(schema, vec![ColumnRead::Plain; n]);
        let sql = ScanSql {
            dialect,
            def: &def,
            projection: Some(&[0]),
            filters: std::slice::from_ref(f),
            limit: None,
            part: None,
        }
        .to_query()
        .unwrap()
        .sql()
        .to_string();
        sql.split_once(" WHERE ").unwrap().1.to_string()
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
        assert_eq!(
            filter_sql(SourceDialect::Postgres, &f, schema()),
            r#"(("Nama Lengkap" = 'it''s'))"#
        );
        assert_eq!(
            filter_sql(SourceDialect::MySql, &f, schema()),
            "((`Nama Lengkap` = 'it''s'))"
        );
        // A quote after a backslash, and a doubled quote, are doubled too.
        let f = col("Nama Lengkap").eq(lit(r"\'')) OR 1=1 -- ''"));
        assert_eq!(
            filter_sql(SourceDialect::MySql, &f, schema()),
            r"((`Nama Lengkap` = '\'''')) OR 1=1 -- '''''))"
        );
        // NUL cannot be sent: the filter stays in DataFusion.
        let nul = col("Nama Lengkap").eq(lit("a\0b"));
        assert_eq!(
            SourceDialect::Postgres.classify(&nul, &schema(), &[true, true, true]),
            TableProviderFilterPushDown::Unsupported
        );
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
            filter_sql(SourceDialect::Postgres, &f, s.clone()),
            r#"(("t" > CAST('2026-02-01 00:00:00' AS TIMESTAMP)))"#
        );
        assert_eq!(
            filter_sql(SourceDialect::MySql, &f, s.clone()),
            "((`t` > CAST('2026-02-01 00:00:00' AS DATETIME(6))))"
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
        use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        let s = Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("total", DataType::Decimal128(25, 2), true),
            Field::new("nama", DataType::Utf8, true)
                .with_metadata([("tautan.pg_type".to_string(), "uuid".to_string())].into()),
        ]);
        let inner = |sql: &str| match Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
        {
            ast::Statement::Query(q) => *q,
            _ => unreachable!(),
        };
        let (sql, wire) = SourceDialect::Postgres
            .decodable(inner("SELECT count(*), sum(x), y FROM t GROUP BY y"), &s)
            .unwrap();
        assert_eq!(
            sql.sql(),
            "SELECT CAST(q.c0 AS INT8), CAST(q.c1 AS NUMERIC(25,2)), CAST(q.c2 AS TEXT) \
             FROM (SELECT count(*), sum(x), y FROM t GROUP BY y) AS q (c0, c1, c2)"
        );
        // Tags are dropped: the text cast is decoded as text, not uuid.
        assert!(wire.field(2).metadata().is_empty());
        let (sql, _) = SourceDialect::MySql
            .decodable(inner("SELECT 1"), &s)
            .unwrap();
        assert_eq!(sql.sql(), "SELECT 1");
        assert_eq!(SourceDialect::Postgres.cast_type(&DataType::UInt64), None);
    }

    #[test]
    fn scan_sql_has_projection_filters_and_limit() {
        let def = def(
            schema(),
            vec![
                ColumnRead::Plain,
                ColumnRead::Cast("text"),
                ColumnRead::Plain,
            ],
        );
        let filters = vec![col("id").gt(lit(10i64))];
        let sql = ScanSql {
            dialect: SourceDialect::Postgres,
            def: &def,
            projection: Some(&[1]),
            filters: &filters,
            limit: Some(5),
            part: None,
        }
        .to_query()
        .unwrap();
        assert_eq!(
            sql.sql(),
            r#"SELECT CAST("Nama Lengkap" AS TEXT) FROM "public"."Penduduk" WHERE (("id" > 10)) LIMIT 5"#
        );
        assert_eq!(
            sql.copy_binary().unwrap(),
            format!("COPY ({}) TO STDOUT (FORMAT binary)", sql.sql())
        );
    }
}
