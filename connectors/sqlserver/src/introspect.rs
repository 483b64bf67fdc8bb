//! Remote tables from the `sys.*` catalogs, and how each SQL Server type
//! maps to Arrow.
//!
//! | SQL Server | Arrow | shown to clients as |
//! |---|---|---|
//! | bit | Boolean | bool |
//! | tinyint (unsigned, 0..255) / smallint / int / bigint | Int16 / Int16 / Int32 / Int64 | int2 / int2 / int4 / int8 |
//! | decimal(p,s), numeric(p,s) | Decimal128(p,s) | numeric(p,s) |
//! | money / smallmoney | Decimal128(19,4) (selected as `CAST(.. AS decimal(19,4))`) / Decimal128(10,4) | numeric |
//! | real / float | Float32 / Float64 | float4 / float8 |
//! | char, varchar, nchar, nvarchar (n or max) | Utf8 | text (varchar(n)/char(n) lengths kept) |
//! | text, ntext | Utf8 (selected as `CAST(.. AS nvarchar(max))`) | text |
//! | binary, varbinary (n or max), rowversion | Binary | bytea |
//! | image | Binary (selected as `CAST(.. AS varbinary(max))`) | bytea |
//! | date | Date32 | date |
//! | time(n) | Time64(µs) (time(7)'s last digit, 100 ns, is truncated) | time |
//! | datetime, datetime2(n), smalldatetime | Timestamp(µs) (datetime's 1/300 s ticks rounded to the µs; datetime2(7) truncated to the µs) | timestamp |
//! | datetimeoffset(n) | Timestamp(µs, UTC) | timestamptz |
//! | uniqueidentifier | Utf8 (+`tautan.pg_type=uuid`, lower case) | uuid |
//! | xml, sql_variant, geography, geometry, anything else | Utf8 (selected as `CAST(.. AS nvarchar(max))`) | text |
//! | hierarchyid | Utf8 (selected as `CAST(.. AS nvarchar(4000))`: `/1/2/`) | text |
//!
//! Every catalog statement is a constant text; the schema is a bound
//! parameter (`@P1`), never part of the text.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use tautan_connector::types::{field, in_primary_key, with_typmod};
use tautan_connector::{ColumnRead, LinkError, RemoteTableDef};
use tiberius::{ColumnData, Row};

use crate::pool::TdsClient;
use crate::tds_error;

/// Schemas that hold tables of the account's (not SQL Server's own, not
/// the fixed database roles' schemas).
const SCHEMAS_SQL: &str = "SELECT s.name FROM sys.schemas AS s \
WHERE s.name NOT IN ('sys', 'INFORMATION_SCHEMA', 'guest', 'db_owner', 'db_accessadmin', \
'db_securityadmin', 'db_ddladmin', 'db_backupoperator', 'db_datareader', 'db_datawriter', \
'db_denydatareader', 'db_denydatawriter') \
AND EXISTS (SELECT 1 FROM sys.objects AS o WHERE o.schema_id = s.schema_id \
AND o.type IN ('U', 'V') AND o.is_ms_shipped = 0) ORDER BY s.name";

/// Tables and views of schema `@P1` with their columns, exact types,
/// primary key positions and `MS_Description` comments.
const COLUMNS_SQL: &str = "SELECT o.name, o.type, c.name, \
CASE WHEN t.is_assembly_type = 1 THEN t.name ELSE TYPE_NAME(c.system_type_id) END, \
CAST(c.max_length AS int), CAST(c.precision AS int), CAST(c.scale AS int), c.is_nullable, \
CAST(td.value AS nvarchar(4000)), CAST(cd.value AS nvarchar(4000)), CAST(ic.key_ordinal AS int) \
FROM sys.objects AS o \
JOIN sys.schemas AS s ON s.schema_id = o.schema_id \
JOIN sys.columns AS c ON c.object_id = o.object_id \
JOIN sys.types AS t ON t.user_type_id = c.user_type_id \
LEFT JOIN sys.extended_properties AS td ON td.class = 1 AND td.major_id = o.object_id \
AND td.minor_id = 0 AND td.name = N'MS_Description' \
LEFT JOIN sys.extended_properties AS cd ON cd.class = 1 AND cd.major_id = o.object_id \
AND cd.minor_id = c.column_id AND cd.name = N'MS_Description' \
LEFT JOIN sys.indexes AS i ON i.object_id = o.object_id AND i.is_primary_key = 1 \
LEFT JOIN sys.index_columns AS ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id \
AND ic.column_id = c.column_id \
WHERE s.name = @P1 AND o.type IN ('U', 'V') AND o.is_ms_shipped = 0 \
ORDER BY o.name, c.column_id";

/// How one column is read.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// Read as is; Arrow type and optional `tautan.pg_type` tag.
    Native(DataType, Option<&'static str>),
    /// Read through `CAST(column AS <type>)` into the Arrow type.
    Cast(&'static str, DataType),
}

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// The base type's name (`nvarchar`, `decimal`, `geography`).
    pub name: String,
    /// `sys.columns.max_length`: bytes (−1 for `max`).
    pub max_length: i64,
    /// Decimal precision.
    pub precision: i64,
    /// Decimal scale, or fractional-second digits of time types.
    pub scale: i64,
}

impl ColumnType {
    /// The type as SQL Server writes it (`decimal(12,2)`, `nvarchar(50)`,
    /// `varbinary(max)`, `datetime2(7)`).
    pub fn declared(&self) -> String {
        let n = self.name.to_ascii_lowercase();
        let length = |unit: i64| {
            if self.max_length < 0 {
                "max".to_string()
            } else {
                (self.max_length / unit).to_string()
            }
        };
        match n.as_str() {
            "decimal" | "numeric" => format!("{n}({},{})", self.precision, self.scale),
            "char" | "varchar" | "binary" | "varbinary" => format!("{n}({})", length(1)),
            "nchar" | "nvarchar" => format!("{n}({})", length(2)),
            "time" | "datetime2" | "datetimeoffset" => format!("{n}({})", self.scale),
            _ => n,
        }
    }

    /// PostgreSQL's type modifier for the type clients are shown, if it has
    /// one: `varchar(n)`/`char(n)` lengths and `numeric(p,s)`.
    pub fn typmod(&self) -> Option<i32> {
        let n = self.name.to_ascii_lowercase();
        match n.as_str() {
            "decimal" | "numeric" => i32::try_from((self.precision << 16) | self.scale)
                .ok()
                .map(|t| t + 4),
            "char" | "varchar" if self.max_length > 0 => {
                i32::try_from(self.max_length).ok().map(|t| t + 4)
            }
            "nchar" | "nvarchar" if self.max_length > 0 => {
                i32::try_from(self.max_length / 2).ok().map(|t| t + 4)
            }
            _ => None,
        }
    }
}

/// Maps one column type to Arrow.
pub fn map_type(t: &ColumnType) -> Mapped {
    use Mapped::*;
    let micros = TimeUnit::Microsecond;
    match t.name.to_ascii_lowercase().as_str() {
        "bit" => Native(DataType::Boolean, None),
        // tinyint is unsigned (0..255): Int16 holds it.
        "tinyint" | "smallint" => Native(DataType::Int16, None),
        "int" => Native(DataType::Int32, None),
        "bigint" => Native(DataType::Int64, None),
        "decimal" | "numeric" => match (u8::try_from(t.precision), i8::try_from(t.scale)) {
            (Ok(p @ 1..=38), Ok(s)) if s >= 0 && i64::from(s) <= t.precision => {
                Native(DataType::Decimal128(p, s), None)
            }
            _ => Cast("nvarchar(max)", DataType::Utf8),
        },
        // money arrives from the driver as a double, exact only up to
        // 2^53 / 10^4 (about 900 billion): read as decimal(19,4) instead.
        "money" => Cast("decimal(19,4)", DataType::Decimal128(19, 4)),
        "smallmoney" => Native(DataType::Decimal128(10, 4), None),
        "real" => Native(DataType::Float32, None),
        "float" => Native(DataType::Float64, None),
        "char" | "varchar" | "nchar" | "nvarchar" => Native(DataType::Utf8, None),
        // Deprecated large types cannot be compared or grouped in T-SQL.
        "text" | "ntext" => Cast("nvarchar(max)", DataType::Utf8),
        "binary" | "varbinary" | "timestamp" | "rowversion" => Native(DataType::Binary, None),
        "image" => Cast("varbinary(max)", DataType::Binary),
        "date" => Native(DataType::Date32, None),
        "time" => Native(DataType::Time64(micros), None),
        "datetime" | "datetime2" | "smalldatetime" => {
            Native(DataType::Timestamp(micros, None), None)
        }
        "datetimeoffset" => Native(DataType::Timestamp(micros, Some("+00:00".into())), None),
        "uniqueidentifier" => Native(DataType::Utf8, Some("uuid")),
        "hierarchyid" => Cast("nvarchar(4000)", DataType::Utf8),
        // xml, sql_variant, geography, geometry and anything unknown: text.
        _ => Cast("nvarchar(max)", DataType::Utf8),
    }
}

/// The text value of column `index` of `row`, if it is text.
pub fn text(row: &Row, index: usize) -> Option<String> {
    match row.get_column_data(index).ok()? {
        ColumnData::String(Some(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// The integer value of column `index` of `row` (any integer or bit
/// type), if it is one.
pub fn integer(row: &Row, index: usize) -> Option<i64> {
    match row.get_column_data(index).ok()? {
        ColumnData::U8(Some(v)) => Some(i64::from(*v)),
        ColumnData::I16(Some(v)) => Some(i64::from(*v)),
        ColumnData::I32(Some(v)) => Some(i64::from(*v)),
        ColumnData::I64(Some(v)) => Some(*v),
        ColumnData::Bit(Some(v)) => Some(i64::from(*v)),
        _ => None,
    }
}

/// Lists the tables and views of `schemas` (all the account's when empty).
pub async fn tables(
    link: &str,
    client: &mut TdsClient,
    schemas: &[String],
) -> Result<Vec<RemoteTableDef>, LinkError> {
    let found: Vec<String> = client
        .simple_query(SCHEMAS_SQL)
        .await
        .map_err(|e| tds_error(link, e))?
        .into_first_result()
        .await
        .map_err(|e| tds_error(link, e))?
        .iter()
        .filter_map(|r| text(r, 0))
        .filter(|s| schemas.is_empty() || schemas.contains(s))
        .collect();
    let mut out = Vec::new();
    for schema in found {
        let rows = client
            .query(COLUMNS_SQL, &[&schema.as_str()])
            .await
            .map_err(|e| tds_error(link, e))?
            .into_first_result()
            .await
            .map_err(|e| tds_error(link, e))?;
        out.extend(schema_tables(link, &schema, &rows));
    }
    Ok(out)
}

/// The tables of one schema from the rows of [`COLUMNS_SQL`].
fn schema_tables(link: &str, schema: &str, rows: &[Row]) -> Vec<RemoteTableDef> {
    let mut out: Vec<RemoteTableDef> = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut reads: Vec<ColumnRead> = Vec::new();
    let mut current: Option<(String, bool, Option<String>)> = None;
    let finish = |cur: Option<(String, bool, Option<String>)>,
                  fields: &mut Vec<Field>,
                  reads: &mut Vec<ColumnRead>,
                  out: &mut Vec<RemoteTableDef>| {
        if let Some((name, is_view, comment)) = cur {
            out.push(RemoteTableDef {
                schema: schema.to_string(),
                name,
                arrow_schema: Arc::new(Schema::new(std::mem::take(fields))),
                reads: std::mem::take(reads),
                is_view,
                comment,
                pages: None,
                estimates: Default::default(),
            });
        }
    };
    for row in rows {
        let (Some(table), Some(column), Some(type_name)) =
            (text(row, 0), text(row, 2), text(row, 3))
        else {
            continue;
        };
        let is_view = text(row, 1).is_some_and(|k| k.trim() == "V");
        if current.as_ref().map(|(t, _, _)| t) != Some(&table) {
            finish(current.take(), &mut fields, &mut reads, &mut out);
            current = Some((
                table.clone(),
                is_view,
                text(row, 8).filter(|c| !c.is_empty()),
            ));
        }
        let ty = ColumnType {
            name: type_name,
            max_length: integer(row, 4).unwrap_or(0),
            precision: integer(row, 5).unwrap_or(0),
            scale: integer(row, 6).unwrap_or(0),
        };
        let nullable = integer(row, 7) != Some(0);
        let (arrow_type, tag, read) = match map_type(&ty) {
            Mapped::Native(dt, tag) => (dt, tag, ColumnRead::Plain),
            Mapped::Cast(cast, dt) => {
                if !matches!(
                    ty.name.to_ascii_lowercase().as_str(),
                    "money"
                        | "text"
                        | "ntext"
                        | "image"
                        | "xml"
                        | "sql_variant"
                        | "hierarchyid"
                        | "geography"
                        | "geometry"
                        | "decimal"
                        | "numeric"
                ) {
                    tracing::warn!(
                        link,
                        table = %format!("{schema}.{table}"),
                        column = %column,
                        r#type = %ty.name,
                        "no Arrow mapping for this SQL Server type; reading it as text"
                    );
                }
                (dt, None, ColumnRead::Cast(cast))
            }
        };
        let comment = text(row, 9);
        let mut f = field(
            &column,
            arrow_type,
            nullable,
            &ty.declared(),
            tag,
            comment.as_deref(),
        );
        if let Some(typmod) = ty.typmod() {
            f = with_typmod(f, typmod);
        }
        if let Some(position) = integer(row, 10).and_then(|p| usize::try_from(p).ok()) {
            f = in_primary_key(f, position);
        }
        fields.push(f);
        reads.push(read);
    }
    finish(current.take(), &mut fields, &mut reads, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiberius::ColumnType as Tds;

    fn ty(name: &str, max_length: i64, precision: i64, scale: i64) -> ColumnType {
        ColumnType {
            name: name.into(),
            max_length,
            precision,
            scale,
        }
    }

    #[test]
    fn every_type_maps() {
        let us = TimeUnit::Microsecond;
        let cases = [
            (ty("bit", 1, 1, 0), Mapped::Native(DataType::Boolean, None)),
            (
                ty("tinyint", 1, 3, 0),
                Mapped::Native(DataType::Int16, None),
            ),
            (
                ty("smallint", 2, 5, 0),
                Mapped::Native(DataType::Int16, None),
            ),
            (ty("int", 4, 10, 0), Mapped::Native(DataType::Int32, None)),
            (
                ty("bigint", 8, 19, 0),
                Mapped::Native(DataType::Int64, None),
            ),
            (
                ty("decimal", 9, 12, 2),
                Mapped::Native(DataType::Decimal128(12, 2), None),
            ),
            (
                ty("numeric", 17, 38, 38),
                Mapped::Native(DataType::Decimal128(38, 38), None),
            ),
            (
                ty("money", 8, 19, 4),
                Mapped::Cast("decimal(19,4)", DataType::Decimal128(19, 4)),
            ),
            (
                ty("smallmoney", 4, 10, 4),
                Mapped::Native(DataType::Decimal128(10, 4), None),
            ),
            (
                ty("real", 4, 24, 0),
                Mapped::Native(DataType::Float32, None),
            ),
            (
                ty("float", 8, 53, 0),
                Mapped::Native(DataType::Float64, None),
            ),
            (
                ty("nvarchar", -1, 0, 0),
                Mapped::Native(DataType::Utf8, None),
            ),
            (ty("char", 10, 0, 0), Mapped::Native(DataType::Utf8, None)),
            (
                ty("ntext", 16, 0, 0),
                Mapped::Cast("nvarchar(max)", DataType::Utf8),
            ),
            (
                ty("varbinary", -1, 0, 0),
                Mapped::Native(DataType::Binary, None),
            ),
            (
                ty("image", 16, 0, 0),
                Mapped::Cast("varbinary(max)", DataType::Binary),
            ),
            (ty("date", 3, 10, 0), Mapped::Native(DataType::Date32, None)),
            (
                ty("time", 5, 16, 7),
                Mapped::Native(DataType::Time64(us), None),
            ),
            (
                ty("datetime2", 8, 27, 7),
                Mapped::Native(DataType::Timestamp(us, None), None),
            ),
            (
                ty("smalldatetime", 4, 16, 0),
                Mapped::Native(DataType::Timestamp(us, None), None),
            ),
            (
                ty("datetimeoffset", 10, 34, 7),
                Mapped::Native(DataType::Timestamp(us, Some("+00:00".into())), None),
            ),
            (
                ty("uniqueidentifier", 16, 0, 0),
                Mapped::Native(DataType::Utf8, Some("uuid")),
            ),
            (
                ty("xml", -1, 0, 0),
                Mapped::Cast("nvarchar(max)", DataType::Utf8),
            ),
            (
                ty("sql_variant", 8016, 0, 0),
                Mapped::Cast("nvarchar(max)", DataType::Utf8),
            ),
            (
                ty("hierarchyid", 892, 0, 0),
                Mapped::Cast("nvarchar(4000)", DataType::Utf8),
            ),
            (
                ty("geography", -1, 0, 0),
                Mapped::Cast("nvarchar(max)", DataType::Utf8),
            ),
        ];
        for (t, expected) in cases {
            assert_eq!(map_type(&t), expected, "{t:?}");
        }
    }

    #[test]
    fn declared_types_and_typmods() {
        assert_eq!(ty("decimal", 9, 12, 2).declared(), "decimal(12,2)");
        assert_eq!(ty("nvarchar", 100, 0, 0).declared(), "nvarchar(50)");
        assert_eq!(ty("varbinary", -1, 0, 0).declared(), "varbinary(max)");
        assert_eq!(ty("datetime2", 8, 27, 3).declared(), "datetime2(3)");
        assert_eq!(ty("nvarchar", 100, 0, 0).typmod(), Some(54));
        assert_eq!(ty("decimal", 9, 12, 2).typmod(), Some((12 << 16 | 2) + 4));
        assert_eq!(ty("nvarchar", -1, 0, 0).typmod(), None);
    }

    #[test]
    fn catalog_rows_become_tables() {
        let row = |table: &str,
                   kind: &str,
                   column: &str,
                   t: &str,
                   pk: Option<i32>,
                   comment: Option<&str>| {
            Row::builder()
                .column(
                    "t",
                    Tds::NVarchar,
                    ColumnData::String(Some(table.to_string().into())),
                )
                .column(
                    "k",
                    Tds::BigChar,
                    ColumnData::String(Some(kind.to_string().into())),
                )
                .column(
                    "c",
                    Tds::NVarchar,
                    ColumnData::String(Some(column.to_string().into())),
                )
                .column(
                    "ty",
                    Tds::NVarchar,
                    ColumnData::String(Some(t.to_string().into())),
                )
                .column("len", Tds::Int4, ColumnData::I32(Some(9)))
                .column("p", Tds::Int4, ColumnData::I32(Some(12)))
                .column("s", Tds::Int4, ColumnData::I32(Some(2)))
                .column("n", Tds::Bit, ColumnData::Bit(Some(pk.is_none())))
                .column(
                    "td",
                    Tds::NVarchar,
                    ColumnData::String(Some("Tabel".into())),
                )
                .column(
                    "cd",
                    Tds::NVarchar,
                    ColumnData::String(comment.map(|c| c.to_string().into())),
                )
                .column("pk", Tds::Int4, ColumnData::I32(pk))
                .build()
        };
        let rows = vec![
            row("anggaran", "U ", "id", "int", Some(1), None),
            row("anggaran", "U ", "pagu", "decimal", None, Some("Pagu (Rp)")),
            row("ringkasan", "V ", "total", "money", None, None),
        ];
        let defs = schema_tables("keu", "dbo", &rows);
        assert_eq!(defs.len(), 2);
        let a = &defs[0];
        assert_eq!(
            (a.schema.as_str(), a.name.as_str(), a.is_view),
            ("dbo", "anggaran", false)
        );
        assert_eq!(a.comment.as_deref(), Some("Tabel"));
        let id = a.arrow_schema.field(0);
        assert!(!id.is_nullable());
        assert_eq!(
            id.metadata().get("tautan.primary_key").map(String::as_str),
            Some("1")
        );
        let pagu = a.arrow_schema.field(1);
        assert_eq!(pagu.data_type(), &DataType::Decimal128(12, 2));
        assert_eq!(
            pagu.metadata().get("tautan.comment").map(String::as_str),
            Some("Pagu (Rp)")
        );
        assert_eq!(
            pagu.metadata()
                .get("tautan.source_type")
                .map(String::as_str),
            Some("decimal(12,2)")
        );
        assert!(defs[1].is_view);
        assert_eq!(defs[1].reads, vec![ColumnRead::Cast("decimal(19,4)")]);
    }
}
