//! Remote tables from `pg_catalog`, and how each PostgreSQL type maps to
//! Arrow.
//!
//! | PostgreSQL | Arrow | shown to clients as |
//! |---|---|---|
//! | bool | Boolean | bool |
//! | int2 / int4 / int8 | Int16 / Int32 / Int64 | same |
//! | oid | Int64 (selected as `::int8`) | int8 |
//! | float4 / float8 | Float32 / Float64 | same |
//! | numeric(p,s), p ≤ 38 | Decimal128(p,s) | numeric |
//! | numeric (no typmod) | Decimal128(38,10) | numeric |
//! | numeric(p,s), p > 38 | Utf8 (selected as `::text`) | text |
//! | text, varchar, bpchar, name, citext | Utf8 | text |
//! | bytea | Binary | bytea |
//! | date | Date32 | date |
//! | time | Time64(µs) | time |
//! | timestamp | Timestamp(µs) | timestamp |
//! | timestamptz | Timestamp(µs, UTC) | timestamptz |
//! | interval | Interval(MonthDayNano) | interval |
//! | uuid | Utf8 (+`tautan.pg_type=uuid`) | uuid |
//! | json / jsonb | Utf8 (+`tautan.pg_type`) | json / jsonb |
//! | enum types | Utf8 (+`tautan.pg_type=enum`) | text |
//! | one-dimensional arrays of the above | List(element) | element[] |
//! | anything else (inet, money, domains, ranges, ...) | Utf8 (selected as `::text`, warning logged) | text |

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, TimeUnit};
use tautan_connector::types::{field, in_primary_key, with_typmod};
use tautan_connector::{ColumnRead, LinkError, RemoteTableDef, TableEstimates};

use crate::pg_error;

const TABLES_SQL: &str = "
SELECT n.nspname::text, c.relname::text, c.relkind::text,
       a.attname::text, t.typname::text, t.typtype::text, a.atttypmod,
       et.typname::text AS elem_name, et.typtype::text AS elem_type,
       format_type(a.atttypid, a.atttypmod) AS declared,
       NOT a.attnotnull AS nullable,
       obj_description(c.oid, 'pg_class') AS table_comment,
       col_description(c.oid, a.attnum) AS column_comment,
       (SELECT array_position(i.indkey::int2[], a.attnum)
               - array_lower(i.indkey::int2[], 1) + 1
          FROM pg_catalog.pg_index i
         WHERE i.indrelid = c.oid AND i.indisprimary) AS pk_position,
       c.relpages::int8 AS pages,
       c.reltuples::float8 AS reltuples,
       (SELECT s.n_distinct::float8 FROM pg_catalog.pg_stats s
         WHERE s.schemaname = n.nspname AND s.tablename = c.relname
           AND s.attname = a.attname AND NOT s.inherited) AS n_distinct
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type et ON t.typcategory = 'A' AND et.oid = t.typelem
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND has_table_privilege(c.oid, 'SELECT')
  AND (cardinality($1::text[]) = 0 OR n.nspname = ANY($1::text[]))
ORDER BY n.nspname, c.relname, a.attnum";

/// The table being read: schema, name, is a view, comment, heap pages,
/// estimated rows.
type Current = (
    String,
    String,
    bool,
    Option<String>,
    Option<u64>,
    Option<f64>,
);

/// Lists the tables of `schemas` (all readable ones when empty).
pub async fn tables(
    link: &str,
    client: &tokio_postgres::Client,
    schemas: &[String],
) -> Result<Vec<RemoteTableDef>, LinkError> {
    let rows = client
        .query(TABLES_SQL, &[&schemas])
        .await
        .map_err(|e| pg_error(link, e))?;
    let mut out: Vec<RemoteTableDef> = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut current: Option<Current> = None;
    let mut exprs: Vec<ColumnRead> = Vec::new();
    let mut distinct: Vec<Option<f64>> = Vec::new();

    let mut flush = |cur: Option<Current>,
                     fields: &mut Vec<Field>,
                     exprs: &mut Vec<ColumnRead>,
                     distinct: &mut Vec<Option<f64>>| {
        if let Some((schema, name, is_view, comment, pages, rows)) = cur {
            out.push(RemoteTableDef {
                schema,
                name,
                arrow_schema: Arc::new(Schema::new(std::mem::take(fields))),
                reads: std::mem::take(exprs),
                is_view,
                comment,
                pages,
                estimates: TableEstimates {
                    rows,
                    distinct: std::mem::take(distinct),
                },
            });
        }
    };

    for row in rows {
        let schema: String = row.get(0);
        let table: String = row.get(1);
        let relkind: String = row.get(2);
        let column: String = row.get(3);
        let typname: String = row.get(4);
        let typtype: String = row.get(5);
        let typmod: i32 = row.get(6);
        let elem_name: Option<String> = row.get(7);
        let elem_type: Option<String> = row.get(8);
        let declared: String = row.get(9);
        let nullable: bool = row.get(10);
        let table_comment: Option<String> = row.get(11);
        let column_comment: Option<String> = row.get(12);
        let pk_position: Option<i32> = row.get(13);
        let pages: i64 = row.get(14);
        let reltuples: f64 = row.get(15);
        let n_distinct: Option<f64> = row.get(16);

        let same = matches!(&current, Some((s, t, ..)) if *s == schema && *t == table);
        if !same {
            flush(current.take(), &mut fields, &mut exprs, &mut distinct);
            // Only heap relations have page ranges (ctid).
            let heap = matches!(relkind.as_str(), "r" | "m");
            let pages = heap.then(|| pages.max(0) as u64);
            current = Some((
                schema.clone(),
                table.clone(),
                relkind == "v",
                table_comment,
                pages,
                heap.then_some(reltuples).and_then(estimated_rows),
            ));
        }
        let rows = current.as_ref().and_then(|c| c.5);
        distinct.push(n_distinct.and_then(|d| absolute_distinct(d, rows)));
        let mapped = map_type(
            &typname,
            &typtype,
            typmod,
            elem_name.as_deref(),
            elem_type.as_deref(),
        );
        let (data_type, pg_type, expr) = match mapped {
            Mapped::Native(dt, pg) => (dt, pg, ColumnRead::Plain),
            Mapped::Cast(dt, cast) => (dt, None, ColumnRead::Cast(cast)),
            Mapped::Fallback => {
                tracing::warn!(
                    link,
                    table = %format!("{schema}.{table}"),
                    column = %column,
                    r#type = %declared,
                    "no Arrow mapping for this PostgreSQL type; reading it as text"
                );
                (DataType::Utf8, None, ColumnRead::Cast("text"))
            }
        };
        let mut f = field(
            &column,
            data_type,
            nullable,
            &declared,
            pg_type,
            column_comment.as_deref(),
        );
        if let Some(position) = pk_position.and_then(|p| usize::try_from(p).ok()) {
            f = in_primary_key(f, position);
        }
        if typmod >= 0 {
            f = with_typmod(f, typmod);
        }
        fields.push(f);
        exprs.push(expr);
    }
    flush(current.take(), &mut fields, &mut exprs, &mut distinct);
    Ok(out)
}

/// `pg_class.reltuples` as an estimate: negative (PostgreSQL 14+) means
/// never vacuumed or analyzed.
fn estimated_rows(reltuples: f64) -> Option<f64> {
    (reltuples >= 0.0 && reltuples.is_finite()).then_some(reltuples)
}

/// `pg_stats.n_distinct` as a count: a negative value is minus the
/// fraction of rows that are distinct.
fn absolute_distinct(n_distinct: f64, rows: Option<f64>) -> Option<f64> {
    if !n_distinct.is_finite() {
        None
    } else if n_distinct >= 0.0 {
        Some(n_distinct)
    } else {
        rows.map(|r| (-n_distinct * r).max(1.0))
    }
}

/// How one column is read.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// Read as is; Arrow type and optional `tautan.pg_type` tag.
    Native(DataType, Option<&'static str>),
    /// Read through a cast to the named SQL type.
    Cast(DataType, &'static str),
    /// No mapping: read as text.
    Fallback,
}

fn scalar(typname: &str, typtype: &str, typmod: i32) -> Mapped {
    use Mapped::*;
    match typname {
        "bool" => Native(DataType::Boolean, None),
        "int2" => Native(DataType::Int16, None),
        "int4" => Native(DataType::Int32, None),
        "int8" => Native(DataType::Int64, None),
        "oid" => Cast(DataType::Int64, "int8"),
        "float4" => Native(DataType::Float32, None),
        "float8" => Native(DataType::Float64, None),
        "numeric" => {
            if typmod < 0 {
                // Without a declared precision a numeric holds values no
                // Arrow number does (1e40, 0.1e-30, NaN, ±Infinity): read
                // exactly, as the text PostgreSQL prints.
                Cast(DataType::Utf8, "text")
            } else {
                let precision = ((typmod - 4) >> 16) & 0xffff;
                let scale = (typmod - 4) & 0xffff;
                // Scales above 0x7ff are negative scales (PostgreSQL 15+).
                if (1..=38).contains(&precision) && scale <= precision {
                    Native(DataType::Decimal128(precision as u8, scale as i8), None)
                } else {
                    Cast(DataType::Utf8, "text")
                }
            }
        }
        "bpchar" => Native(DataType::Utf8, Some("bpchar")),
        "varchar" => Native(DataType::Utf8, Some("varchar")),
        "text" | "name" | "citext" | "char" => Native(DataType::Utf8, None),
        "bytea" => Native(DataType::Binary, None),
        "date" => Native(DataType::Date32, None),
        "time" => Native(DataType::Time64(TimeUnit::Microsecond), None),
        "timestamp" => Native(DataType::Timestamp(TimeUnit::Microsecond, None), None),
        "timestamptz" => Native(
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            None,
        ),
        "interval" => Native(DataType::Interval(IntervalUnit::MonthDayNano), None),
        "uuid" => Native(DataType::Utf8, Some("uuid")),
        "json" => Native(DataType::Utf8, Some("json")),
        "jsonb" => Native(DataType::Utf8, Some("jsonb")),
        _ if typtype == "e" => Native(DataType::Utf8, Some("enum")),
        _ => Fallback,
    }
}

/// Maps one column type. Arrays map to lists when their element type has a
/// native mapping.
pub fn map_type(
    typname: &str,
    typtype: &str,
    typmod: i32,
    elem_name: Option<&str>,
    elem_type: Option<&str>,
) -> Mapped {
    match elem_name {
        Some(elem) => match scalar(elem, elem_type.unwrap_or("b"), typmod) {
            // An array's tag would describe the element; only plain element
            // types are read as lists.
            Mapped::Native(dt, None) => Mapped::Native(
                DataType::List(Arc::new(Field::new_list_field(dt, true))),
                None,
            ),
            _ => Mapped::Fallback,
        },
        None => scalar(typname, typtype, typmod),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_typmods() {
        // numeric(12,2): typmod = (12 << 16 | 2) + 4
        assert_eq!(
            map_type("numeric", "b", (12 << 16 | 2) + 4, None, None),
            Mapped::Native(DataType::Decimal128(12, 2), None)
        );
        assert_eq!(
            map_type("numeric", "b", -1, None, None),
            Mapped::Cast(DataType::Utf8, "text")
        );
        assert_eq!(
            map_type("numeric", "b", (60 << 16 | 2) + 4, None, None),
            Mapped::Cast(DataType::Utf8, "text")
        );
    }

    #[test]
    fn estimates_from_pg_stats() {
        // Never analyzed (PostgreSQL 14+ says -1).
        assert_eq!(estimated_rows(-1.0), None);
        assert_eq!(estimated_rows(6_001_215.0), Some(6_001_215.0));
        // n_distinct: a count, or minus the distinct fraction of the rows.
        assert_eq!(absolute_distinct(3.0, Some(1000.0)), Some(3.0));
        assert_eq!(absolute_distinct(-1.0, Some(1000.0)), Some(1000.0));
        assert_eq!(absolute_distinct(-0.25, Some(1000.0)), Some(250.0));
        assert_eq!(absolute_distinct(-0.25, None), None);
        assert_eq!(absolute_distinct(f64::NAN, Some(1000.0)), None);
    }

    #[test]
    fn arrays_and_fallbacks() {
        assert!(matches!(
            map_type("_int4", "b", -1, Some("int4"), Some("b")),
            Mapped::Native(DataType::List(_), None)
        ));
        assert_eq!(map_type("inet", "b", -1, None, None), Mapped::Fallback);
        assert_eq!(
            map_type("mood", "e", -1, None, None),
            Mapped::Native(DataType::Utf8, Some("enum"))
        );
    }
}
