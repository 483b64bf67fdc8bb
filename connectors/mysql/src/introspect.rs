//! Remote tables from `information_schema`, and how each MySQL/MariaDB type
//! maps to Arrow.
//!
//! | MySQL / MariaDB | Arrow | shown to clients as |
//! |---|---|---|
//! | tinyint(1) | Boolean | bool |
//! | tinyint / smallint / mediumint, int / bigint | Int8 / Int16 / Int32 / Int32 / Int64 | int2 / int2 / int4 / int4 / int8 |
//! | the same UNSIGNED | UInt8 / UInt16 / UInt32 / UInt32 / UInt64 | int2 / int4 / int8 / int8 / numeric |
//! | decimal(p,s), p ≤ 38 | Decimal128(p,s) | numeric |
//! | decimal(p,s), p > 38 | Utf8 (selected as `CAST(.. AS CHAR)`) | text |
//! | float / double | Float32 / Float64 | float4 / float8 |
//! | char, varchar, *text | Utf8 | text |
//! | binary, varbinary, *blob | Binary | bytea |
//! | date | Date32 (zero date → NULL) | date |
//! | datetime | Timestamp(µs) (zero → NULL) | timestamp |
//! | timestamp | Timestamp(µs, UTC) (zero → NULL) | timestamptz |
//! | time (−838:59:59 … 838:59:59) | Interval(MonthDayNano) | interval |
//! | year | Int16 | int2 |
//! | enum / set | Utf8 (+`tautan.pg_type=enum`) / Utf8 | text |
//! | json (MySQL; MariaDB stores it as longtext) | Utf8 (+`tautan.pg_type=json`) | json |
//! | uuid (MariaDB 10.7+) | Utf8 (+`tautan.pg_type=uuid`) | uuid |
//! | bit(1) / bit(n ≤ 63) / bit(64) | Boolean / Int64 / UInt64 | bool / int8 / numeric |
//! | anything else (geometry, inet6, ...) | Utf8 (selected as `CAST(.. AS CHAR)`, warning logged) | text |

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, TimeUnit};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use tautan_connector::types::{field, in_primary_key};
use tautan_connector::{ColumnRead, LinkError, RemoteTableDef};

use crate::my_error;

const SYSTEM_DATABASES: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

const TABLES_SQL: &str = "
SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE,
       c.IS_NULLABLE, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.COLUMN_COMMENT, t.TABLE_COMMENT,
       CAST(k.ORDINAL_POSITION AS CHAR) AS pk_position
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
LEFT JOIN information_schema.KEY_COLUMN_USAGE k
  ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
 AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
WHERE c.TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION";

/// How one column is read.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// Read as is; Arrow type and optional `tautan.pg_type` tag.
    Native(DataType, Option<&'static str>),
    /// No exact mapping: read through `CAST(.. AS CHAR)` as text.
    AsText { warn: bool },
}

/// Maps one column from its `DATA_TYPE` and `COLUMN_TYPE`.
pub fn map_type(
    data_type: &str,
    column_type: &str,
    precision: Option<u64>,
    scale: Option<u64>,
) -> Mapped {
    use Mapped::*;
    let unsigned = column_type.contains("unsigned");
    let dt = data_type.to_ascii_lowercase();
    match dt.as_str() {
        "tinyint" if !unsigned && column_type.starts_with("tinyint(1)") => {
            Native(DataType::Boolean, None)
        }
        "tinyint" => Native(
            if unsigned {
                DataType::UInt8
            } else {
                DataType::Int8
            },
            None,
        ),
        "smallint" => Native(
            if unsigned {
                DataType::UInt16
            } else {
                DataType::Int16
            },
            None,
        ),
        "mediumint" | "int" | "integer" => Native(
            if unsigned {
                DataType::UInt32
            } else {
                DataType::Int32
            },
            None,
        ),
        "bigint" => Native(
            if unsigned {
                DataType::UInt64
            } else {
                DataType::Int64
            },
            None,
        ),
        "decimal" | "numeric" => {
            let p = precision.unwrap_or(10);
            let s = scale.unwrap_or(0);
            if (1..=38).contains(&p) && s <= p {
                Native(DataType::Decimal128(p as u8, s as i8), None)
            } else {
                AsText { warn: false }
            }
        }
        "float" => Native(DataType::Float32, None),
        "double" | "real" => Native(DataType::Float64, None),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
            Native(DataType::Utf8, None)
        }
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            Native(DataType::Binary, None)
        }
        "date" => Native(DataType::Date32, None),
        "datetime" => Native(DataType::Timestamp(TimeUnit::Microsecond, None), None),
        "timestamp" => Native(
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            None,
        ),
        "time" => Native(DataType::Interval(IntervalUnit::MonthDayNano), None),
        "year" => Native(DataType::Int16, None),
        "enum" => Native(DataType::Utf8, Some("enum")),
        "set" => Native(DataType::Utf8, None),
        "json" => Native(DataType::Utf8, Some("json")),
        "uuid" => Native(DataType::Utf8, Some("uuid")),
        "bit" => {
            let n = precision.unwrap_or(1);
            if n == 1 {
                Native(DataType::Boolean, None)
            } else if n <= 63 {
                Native(DataType::Int64, None)
            } else {
                Native(DataType::UInt64, None)
            }
        }
        _ => AsText { warn: true },
    }
}

/// Lists the tables of `databases` (all non-system ones when empty).
pub async fn tables(
    link: &str,
    conn: &mut Conn,
    databases: &[String],
) -> Result<Vec<RemoteTableDef>, LinkError> {
    let rows: Vec<Row> = conn
        .query(TABLES_SQL)
        .await
        .map_err(|e| my_error(link, e))?;
    let mut out: Vec<RemoteTableDef> = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut exprs: Vec<ColumnRead> = Vec::new();
    let mut current: Option<(String, String, bool, Option<String>)> = None;

    let finish = |cur: Option<(String, String, bool, Option<String>)>,
                  fields: &mut Vec<Field>,
                  exprs: &mut Vec<ColumnRead>,
                  out: &mut Vec<RemoteTableDef>| {
        if let Some((schema, name, is_view, comment)) = cur {
            out.push(RemoteTableDef {
                schema,
                name,
                arrow_schema: Arc::new(Schema::new(std::mem::take(fields))),
                reads: std::mem::take(exprs),
                is_view,
                comment,
                pages: None,
                estimates: Default::default(),
            });
        }
    };

    for row in rows {
        let get = |i: usize| -> String {
            row.get_opt::<Option<String>, usize>(i)
                .and_then(|r| r.ok())
                .flatten()
                .unwrap_or_default()
        };
        let schema = get(0);
        let table = get(1);
        if SYSTEM_DATABASES.contains(&schema.as_str())
            || (!databases.is_empty() && !databases.contains(&schema))
        {
            continue;
        }
        let table_type = get(2);
        let column = get(3);
        let data_type = get(4);
        let column_type = get(5);
        let nullable = get(6) == "YES";
        let precision: Option<u64> = row.get_opt(7).and_then(|r| r.ok()).flatten();
        let scale: Option<u64> = row.get_opt(8).and_then(|r| r.ok()).flatten();
        let column_comment = get(9);
        let table_comment = get(10);
        let pk_position: Option<usize> = get(11).parse().ok();

        let same = matches!(&current, Some((s, t, _, _)) if *s == schema && *t == table);
        if !same {
            finish(current.take(), &mut fields, &mut exprs, &mut out);
            let comment = Some(table_comment).filter(|c| !c.is_empty());
            current = Some((schema.clone(), table.clone(), table_type == "VIEW", comment));
        }
        let (arrow_type, tag, expr) = match map_type(&data_type, &column_type, precision, scale) {
            Mapped::Native(dt, tag) => (dt, tag, ColumnRead::Plain),
            Mapped::AsText { warn } => {
                if warn {
                    tracing::warn!(
                        link,
                        table = %format!("{schema}.{table}"),
                        column = %column,
                        r#type = %column_type,
                        "no Arrow mapping for this MySQL type; reading it as text"
                    );
                }
                (DataType::Utf8, None, ColumnRead::Cast("CHAR"))
            }
        };
        let mut f = field(
            &column,
            arrow_type,
            nullable,
            &column_type,
            tag,
            Some(column_comment.as_str()),
        );
        if let Some(position) = pk_position {
            f = in_primary_key(f, position);
        }
        fields.push(f);
        exprs.push(expr);
    }
    finish(current.take(), &mut fields, &mut exprs, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_widths_and_signedness() {
        assert_eq!(
            map_type("tinyint", "tinyint(1)", None, None),
            Mapped::Native(DataType::Boolean, None)
        );
        assert_eq!(
            map_type("tinyint", "tinyint(3) unsigned", None, None),
            Mapped::Native(DataType::UInt8, None)
        );
        assert_eq!(
            map_type("bigint", "bigint(20) unsigned", None, None),
            Mapped::Native(DataType::UInt64, None)
        );
        assert_eq!(
            map_type("mediumint", "mediumint(9)", None, None),
            Mapped::Native(DataType::Int32, None)
        );
        assert_eq!(
            map_type("decimal", "decimal(12,2)", Some(12), Some(2)),
            Mapped::Native(DataType::Decimal128(12, 2), None)
        );
        assert_eq!(
            map_type("decimal", "decimal(65,2)", Some(65), Some(2)),
            Mapped::AsText { warn: false }
        );
        assert_eq!(
            map_type("geometry", "geometry", None, None),
            Mapped::AsText { warn: true }
        );
    }
}
