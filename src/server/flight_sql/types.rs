//! `GetXdbcTypeInfo`: the SQL types tautan's answers come in, as the
//! Flight SQL JDBC driver's `DatabaseMetaData.getTypeInfo` (and ODBC's
//! `SQLGetTypeInfo`) ask for them. The names are the PostgreSQL ones the
//! other doors announce (`src/server/values.rs` writes values of exactly
//! these types), since a Flight client may well go on to the wire.

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

/// One row of the listing.
struct Row {
    name: &'static str,
    kind: XdbcDataType,
    size: Option<i32>,
    quoted: bool,
    params: Option<&'static [&'static str]>,
    case_sensitive: bool,
    searchable: Searchable,
    unsigned: Option<bool>,
    scale: Option<(i32, i32)>,
    subcode: Option<XdbcDatetimeSubcode>,
    radix: Option<i32>,
}

const fn row(name: &'static str, kind: XdbcDataType) -> Row {
    Row {
        name,
        kind,
        size: None,
        quoted: false,
        params: None,
        case_sensitive: false,
        searchable: Searchable::Basic,
        unsigned: None,
        scale: None,
        subcode: None,
        radix: None,
    }
}

/// The types, in the order JDBC lists them (by data type, then by how
/// closely the type matches it).
fn rows() -> Vec<Row> {
    use XdbcDataType::*;
    let number = |name, kind, size, radix| Row {
        size: Some(size),
        unsigned: Some(false),
        radix: Some(radix),
        ..row(name, kind)
    };
    let text = |name, kind, params| Row {
        size: Some(i32::MAX),
        quoted: true,
        params,
        case_sensitive: true,
        searchable: Searchable::Full,
        ..row(name, kind)
    };
    let temporal = |name, kind, size, subcode| Row {
        size: Some(size),
        quoted: true,
        subcode: Some(subcode),
        ..row(name, kind)
    };
    vec![
        Row {
            size: Some(1),
            ..row("boolean", XdbcBit)
        },
        number("bigint", XdbcBigint, 19, 10),
        Row {
            size: Some(i32::MAX),
            quoted: true,
            ..row("bytea", XdbcLongvarbinary)
        },
        text("text", XdbcLongvarchar, None),
        text("character", XdbcChar, Some(&["length"])),
        Row {
            params: Some(&["precision", "scale"]),
            scale: Some((0, 1000)),
            ..number("numeric", XdbcNumeric, 1000, 10)
        },
        number("integer", XdbcInteger, 10, 10),
        number("smallint", XdbcSmallint, 5, 10),
        number("real", XdbcReal, 24, 2),
        number("double precision", XdbcDouble, 53, 2),
        text("character varying", XdbcVarchar, Some(&["length"])),
        text("uuid", XdbcVarchar, None),
        text("json", XdbcVarchar, None),
        text("jsonb", XdbcVarchar, None),
        Row {
            size: Some(49),
            quoted: true,
            ..row("interval", XdbcInterval)
        },
        temporal(
            "date",
            XdbcDate,
            13,
            XdbcDatetimeSubcode::XdbcSubcodeUnknown,
        ),
        temporal("time", XdbcTime, 15, XdbcDatetimeSubcode::XdbcSubcodeTime),
        temporal(
            "timestamp",
            XdbcTimestamp,
            29,
            XdbcDatetimeSubcode::XdbcSubcodeTimestamp,
        ),
        temporal(
            "timestamp with time zone",
            XdbcTimestamp,
            35,
            XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone,
        ),
    ]
}

/// The listing, built once per service.
pub fn listing() -> Result<XdbcTypeInfoData, arrow_flight::error::FlightError> {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    for r in rows() {
        let (min_scale, max_scale) = match r.scale {
            Some((lo, hi)) => (Some(lo), Some(hi)),
            None => (None, None),
        };
        builder.append(XdbcTypeInfo {
            type_name: r.name.to_string(),
            data_type: r.kind,
            column_size: r.size,
            literal_prefix: r.quoted.then(|| "'".to_string()),
            literal_suffix: r.quoted.then(|| "'".to_string()),
            create_params: r.params.map(|p| p.iter().map(|s| s.to_string()).collect()),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: r.case_sensitive,
            searchable: r.searchable,
            unsigned_attribute: r.unsigned,
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(r.name.to_string()),
            minimum_scale: min_scale,
            maximum_scale: max_scale,
            sql_data_type: r.kind,
            datetime_subcode: r.subcode,
            num_prec_radix: r.radix,
            interval_precision: None,
        });
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_names_each_type_once_and_filters_by_data_type() {
        let data = listing().expect("listing");
        let all = data.record_batch(None).expect("all");
        assert_eq!(all.num_rows(), rows().len());
        let names: std::collections::BTreeSet<&str> = rows().iter().map(|r| r.name).collect();
        assert_eq!(names.len(), rows().len());
        let ints = data
            .record_batch(XdbcDataType::XdbcInteger as i32)
            .expect("integers");
        assert_eq!(ints.num_rows(), 1);
    }
}
