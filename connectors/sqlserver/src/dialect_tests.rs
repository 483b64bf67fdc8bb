//! The T-SQL dialect as the SQL Server link uses it: every construct is
//! sealed, guarded (re-parsed with sqlparser's MsSqlDialect and printed
//! back to the same text) and compared with the T-SQL expected; hostile
//! names and values from a seeded generator stay inside their quotes.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::TableProviderFilterPushDown as Push;
use datafusion::prelude::{col, lit};
use datafusion::sql::sqlparser::ast::{self, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::{MsSqlDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use tautan_connector::pushdown::ScanSql;
use tautan_connector::{ColumnRead, RemoteTableDef, SourceDialect, SourceQuery};

const MS: SourceDialect = SourceDialect::SqlServer;

/// A statement as tautan's planner would hand it over (standard SQL with
/// LIMIT/OFFSET, parsed as PostgreSQL), sent to SQL Server.
fn tsql(standard: &str) -> Result<String, String> {
    let statement = Parser::parse_sql(&PostgreSqlDialect {}, standard)
        .map_err(|e| e.to_string())?
        .remove(0);
    let Statement::Query(query) = statement else {
        return Err("not a query".into());
    };
    let sent = SourceQuery::new(MS, *query).map_err(|e| e.to_string())?;
    // What SQL Server reads: MsSqlDialect parses it back to the same text.
    let reparsed = Parser::parse_sql(&MsSqlDialect {}, sent.sql())
        .map_err(|e| format!("MsSqlDialect cannot read {}: {e}", sent.sql()))?;
    assert_eq!(reparsed.len(), 1);
    // sqlparser prints a bracketed name without doubling its `]` (the
    // reason tautan seals names itself): compare names by value there.
    if sent.sql().contains("]]") {
        let mut seen = Seen::default();
        let _ = reparsed[0].visit(&mut seen);
        assert!(
            seen.idents.iter().any(|i| i.contains(']')),
            "{}",
            sent.sql()
        );
    } else {
        assert_eq!(reparsed[0].to_string(), sent.sql());
    }
    Ok(sent.sql().to_string())
}

#[test]
fn constructs_round_trip_as_t_sql() {
    let cases = [
        (
            r#"SELECT "id" FROM "dbo"."Penduduk" LIMIT 5"#,
            "SELECT TOP 5 [id] FROM [dbo].[Penduduk]",
        ),
        (
            r#"SELECT "id" FROM "dbo"."t" ORDER BY "id" LIMIT 3 OFFSET 2"#,
            "SELECT [id] FROM [dbo].[t] ORDER BY [id] OFFSET 2 ROWS FETCH FIRST 3 ROWS ONLY",
        ),
        (
            r#"SELECT "id" FROM "dbo"."t" ORDER BY "id" LIMIT 3"#,
            "SELECT [id] FROM [dbo].[t] ORDER BY [id] OFFSET 0 ROWS FETCH FIRST 3 ROWS ONLY",
        ),
        (
            r#"SELECT "a" FROM "s"."t" WHERE "a" = 'Śląsk' AND "b" = 'plain'"#,
            "SELECT [a] FROM [s].[t] WHERE [a] = N'Śląsk' AND [b] = 'plain'",
        ),
        (
            r#"SELECT "a]b" AS "x[y" FROM "s"."t]]" AS "u""#,
            "SELECT [a]]b] AS [x[y] FROM [s].[t]]]]] AS [u]",
        ),
        (
            r#"SELECT "k", count(*), sum("v") FROM "s"."t" WHERE "v" IS NOT NULL AND "k" BETWEEN 1 AND 9 GROUP BY "k""#,
            "SELECT [k], count(*), sum([v]) FROM [s].[t] WHERE [v] IS NOT NULL AND [k] BETWEEN 1 AND 9 GROUP BY [k]",
        ),
        (
            r#"SELECT "a"."id", "b"."n" FROM "s"."a" AS "a" JOIN "s"."b" AS "b" ON "a"."id" = "b"."id" WHERE "b"."n" IN (1, 2, 3)"#,
            "SELECT [a].[id], [b].[n] FROM [s].[a] AS [a] JOIN [s].[b] AS [b] ON [a].[id] = [b].[id] WHERE [b].[n] IN (1, 2, 3)",
        ),
        (
            r#"SELECT "d"."c" FROM (SELECT count(*) AS "c" FROM "s"."t" LIMIT 10) AS "d""#,
            "SELECT [d].[c] FROM (SELECT TOP 10 count(*) AS [c] FROM [s].[t]) AS [d]",
        ),
        (
            r#"SELECT CASE WHEN "a" > 1 THEN 'x' ELSE NULL END FROM "s"."t" WHERE NOT ("a" = 2)"#,
            "SELECT CASE WHEN [a] > 1 THEN 'x' ELSE NULL END FROM [s].[t] WHERE NOT ([a] = 2)",
        ),
        (
            r#"SELECT "a" FROM "s"."t" WHERE "a" IN (SELECT "b" FROM "s"."u") UNION ALL SELECT "a" FROM "s"."v""#,
            "SELECT [a] FROM [s].[t] WHERE [a] IN (SELECT [b] FROM [s].[u]) UNION ALL SELECT [a] FROM [s].[v]",
        ),
        (
            r#"SELECT CAST("a" AS BIGINT), coalesce("b", 0) FROM "s"."t""#,
            "SELECT CAST([a] AS BIGINT), coalesce([b], 0) FROM [s].[t]",
        ),
    ];
    for (standard, expected) in cases {
        assert_eq!(tsql(standard).as_deref(), Ok(expected), "{standard}");
    }
}

#[test]
fn what_t_sql_cannot_say_is_not_sent() {
    for standard in [
        // OFFSET needs ORDER BY.
        r#"SELECT "a" FROM "s"."t" LIMIT 3 OFFSET 2"#,
        // A limit over a set operation needs ORDER BY.
        r#"SELECT "a" FROM "s"."t" UNION ALL SELECT "a" FROM "s"."u" LIMIT 3"#,
        // ORDER BY in a derived table needs TOP.
        r#"SELECT "d"."a" FROM (SELECT "a" FROM "s"."t" ORDER BY "a") AS "d""#,
        // No boolean values, no IS TRUE, no ||, no USING, no ILIKE.
        r#"SELECT "a" FROM "s"."t" WHERE "b" = true"#,
        r#"SELECT "a" FROM "s"."t" WHERE "b" IS TRUE"#,
        r#"SELECT "a" || 'x' FROM "s"."t""#,
        r#"SELECT "a" FROM "s"."t" JOIN "s"."u" USING ("a")"#,
        r#"SELECT "a" FROM "s"."t" WHERE "a" ILIKE 'x'"#,
        r#"SELECT "a" FROM "s"."t" WHERE "a" IS DISTINCT FROM 1"#,
        // A NUL cannot be written.
        "SELECT \"a\" FROM \"s\".\"t\" WHERE \"a\" = 'x\u{0}y'",
    ] {
        let refused = tsql(standard).expect_err(standard);
        assert!(refused.contains("cannot be sent"), "{standard}: {refused}");
    }
    // Only the functions tautan writes pass the guard.
    assert!(tsql(r#"SELECT xp_cmdshell('dir')"#).is_err());
    assert!(tsql(r#"SELECT "a" FROM OPENROWSET('x', 'y', 'z')"#).is_err());
}

/// Identifiers and string values of the statement, read back the way
/// SQL Server reads the text.
#[derive(Default)]
struct Seen {
    idents: Vec<String>,
    strings: Vec<String>,
}

impl Visitor for Seen {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &ast::Expr) -> std::ops::ControlFlow<()> {
        match expr {
            ast::Expr::Identifier(i) => self.idents.push(i.value.clone()),
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::NationalStringLiteral(s) => {
                    self.strings.push(s.clone())
                }
                _ => {}
            },
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }
}

fn hostile(next: &mut impl FnMut() -> u64) -> String {
    const PIECES: &[&str] = &[
        "]",
        "]]",
        "[",
        "'",
        "''",
        "\\",
        "\\'",
        "N'",
        "--",
        "/*",
        "*/",
        ";",
        "\"",
        "`",
        " ",
        "\n",
        "\r",
        "\t",
        "ś",
        "ł",
        "\u{1F600}",
        "\u{200B}",
        "\u{FEFF}",
        "\u{0}",
        "x",
        "SELECT",
        "DROP",
        "OR 1=1",
        "%",
        "_",
        "@P1",
        "#",
        "$",
        "\u{00A0}",
        "ß",
        "İ",
    ];
    let len = next() % 8;
    (0..len)
        .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
        .collect()
}

#[test]
fn hostile_names_and_values_stay_quoted() {
    let mut state: u64 = 0x7a55_0018;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut sent = 0;
    for _ in 0..3000 {
        let name = hostile(&mut next);
        let value = hostile(&mut next);
        if name.is_empty() {
            continue;
        }
        let schema = Schema::new(vec![Field::new(&name, DataType::Utf8, true)]);
        let def = RemoteTableDef {
            schema: hostile(&mut next) + "s",
            name: hostile(&mut next) + "t",
            arrow_schema: Arc::new(schema),
            reads: vec![ColumnRead::Plain],
            is_view: false,
            comment: None,
            pages: None,
            estimates: Default::default(),
        };
        let filter =
            col(datafusion::common::Column::new_unqualified(&name)).eq(lit(value.as_str()));
        let pushable = MS.classify(&filter, &def.arrow_schema, &[true]);
        if name.contains('\0') || value.contains('\0') {
            assert_eq!(pushable, Push::Unsupported, "{name:?} {value:?}");
            continue;
        }
        // String equality follows the collation: narrows rows down only.
        assert_eq!(pushable, Push::Inexact, "{name:?} = {value:?}");
        let query = ScanSql {
            dialect: MS,
            def: &def,
            projection: None,
            filters: std::slice::from_ref(&filter),
            limit: Some(7),
            part: None,
        }
        .to_query();
        if def.schema.contains('\0') || def.name.contains('\0') {
            assert!(query.is_err(), "a NUL in a table name was sent");
            continue;
        }
        let query = query.unwrap_or_else(|e| panic!("{name:?} {value:?}: {e}"));
        let text = query.sql();
        let mut parsed =
            Parser::parse_sql(&MsSqlDialect {}, text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.len(), 1, "{text}");
        let statement = parsed.remove(0);
        let mut seen = Seen::default();
        let _ = statement.visit(&mut seen);
        assert_eq!(seen.idents, vec![name.clone(), name.clone()], "{text}");
        assert_eq!(seen.strings, vec![value.clone()], "{text}");
        assert!(text.starts_with("SELECT TOP 7 "), "{text}");
        if !value.is_ascii() {
            assert!(text.contains(" = N'"), "{text}");
        }
        sent += 1;
    }
    assert!(sent > 1000, "{sent}");
}

#[test]
fn scan_filters_are_classified_for_sql_server() {
    let us = TimeUnit::Microsecond;
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("nama", DataType::Utf8, true),
        Field::new("aktif", DataType::Boolean, true),
        Field::new("t", DataType::Timestamp(us, None), true),
        Field::new("tgl", DataType::Date32, true),
    ]);
    let all = [true; 5];
    let c = |e| MS.classify(&e, &schema, &all);
    assert_eq!(c(col("id").gt(lit(10))), Push::Exact);
    assert_eq!(c(col("nama").eq(lit("a"))), Push::Inexact);
    assert_eq!(c(col("nama").not_eq(lit("a"))), Push::Unsupported);
    assert_eq!(c(col("nama").gt(lit("a"))), Push::Unsupported);
    assert_eq!(c(col("nama").like(lit("a%"))), Push::Unsupported);
    assert_eq!(c(col("aktif")), Push::Unsupported);
    assert_eq!(c(col("aktif").eq(lit(true))), Push::Unsupported);
    assert_eq!(
        c(col("t").gt(lit(ScalarValue::TimestampMicrosecond(Some(0), None)))),
        Push::Unsupported
    );
    assert_eq!(c(col("id").is_null()), Push::Exact);
    assert_eq!(
        c(col("tgl").gt(lit(ScalarValue::Date32(Some(19_782))))),
        Push::Exact
    );
}

#[test]
fn sub_plans_are_sent_as_they_are_and_cast_types_are_t_sql() {
    let schema = Schema::new(vec![Field::new("n", DataType::Int64, false)]);
    let query = match Parser::parse_sql(&PostgreSqlDialect {}, r#"SELECT count(*) FROM "s"."t""#)
        .expect("parses")
        .remove(0)
    {
        Statement::Query(q) => *q,
        _ => unreachable!(),
    };
    let (sent, _) = MS.decodable(query, &schema).expect("decodable");
    assert_eq!(sent.sql(), "SELECT count(*) FROM [s].[t]");
    assert_eq!(
        MS.cast_type(&DataType::Utf8).as_deref(),
        Some("nvarchar(max)")
    );
    assert_eq!(
        MS.cast_type(&DataType::Decimal128(19, 4)).as_deref(),
        Some("decimal(19,4)")
    );
    assert_eq!(MS.cast_type(&DataType::UInt64), None);
    // Type names for column reads parse as T-SQL.
    for name in [
        "nvarchar(max)",
        "decimal(19,4)",
        "varbinary(max)",
        "nvarchar(4000)",
    ] {
        assert!(MS.data_type(name).is_ok(), "{name}");
    }
    assert!(MS.collated(&DataType::Binary) && !SourceDialect::Postgres.collated(&DataType::Binary));
}
