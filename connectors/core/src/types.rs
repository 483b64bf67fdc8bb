//! Conventions shared by every link's type mapping.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Field};

/// Field metadata key naming the PostgreSQL type a column should be shown as
/// when its Arrow type alone would say something less precise: `uuid`,
/// `json`, `jsonb`, `enum`, `interval`, `time`.
pub const PG_TYPE_KEY: &str = "tautan.pg_type";

/// Field metadata key holding the column's type as the source declared it
/// (`numeric(12,2)`, `tinyint(1) unsigned`, ...), for catalogs and `check`.
pub const SOURCE_TYPE_KEY: &str = "tautan.source_type";

/// Field metadata key holding the column comment from the source.
pub const COMMENT_KEY: &str = "tautan.comment";

/// Field metadata key marking a column of the source's primary key (value:
/// its 1-based position in the key).
pub const PRIMARY_KEY: &str = "tautan.primary_key";

/// Field metadata key holding PostgreSQL's type modifier of the column
/// (`atttypmod`: length of `char(n)`/`varchar(n)` + 4, precision and scale
/// of `numeric(p,s)`), for catalogs and `char(n)` padding.
pub const PG_TYPMOD_KEY: &str = "tautan.pg_typmod";

/// `field` with its PostgreSQL type modifier recorded.
pub fn with_typmod(field: Field, typmod: i32) -> Field {
    let mut md = field.metadata().clone();
    md.insert(PG_TYPMOD_KEY.to_string(), typmod.to_string());
    field.with_metadata(md)
}

/// `field` marked as the `position`-th column (1-based) of the primary key.
pub fn in_primary_key(field: Field, position: usize) -> Field {
    let mut md = field.metadata().clone();
    md.insert(PRIMARY_KEY.to_string(), position.to_string());
    field.with_metadata(md)
}

/// Builds a nullable field with the source type (and optionally the pg type
/// and comment) recorded in its metadata.
pub fn field(
    name: &str,
    data_type: DataType,
    nullable: bool,
    source_type: &str,
    pg_type: Option<&str>,
    comment: Option<&str>,
) -> Field {
    let mut md = HashMap::new();
    md.insert(SOURCE_TYPE_KEY.to_string(), source_type.to_string());
    if let Some(pg) = pg_type {
        md.insert(PG_TYPE_KEY.to_string(), pg.to_string());
    }
    if let Some(c) = comment.filter(|c| !c.is_empty()) {
        md.insert(COMMENT_KEY.to_string(), c.to_string());
    }
    Field::new(name, data_type, nullable).with_metadata(md)
}

/// A date of `infinity` (PostgreSQL): Arrow `Date32` has no such value, so
/// the largest one stands for it, as in PostgreSQL, and sorts the same.
/// The wire encoders write it back as `infinity`.
pub const DATE_INFINITY: i32 = i32::MAX;
/// `-infinity` for dates: the smallest `Date32`.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
/// A timestamp of `infinity`: the largest microsecond timestamp.
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// `-infinity` for timestamps: the smallest microsecond timestamp.
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;

/// Rows per Arrow batch produced by the row-oriented decoders.
pub const BATCH_ROWS: usize = 8192;

/// Parses a decimal string (`-123.45`, `7`, `.5`) into an unscaled i128 at
/// `scale`. Returns `None` when it is not a number, has more fractional
/// digits than `scale` (other than trailing zeros), or does not fit.
pub fn parse_decimal(s: &str, scale: i8) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = usize::try_from(scale).ok()?;
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > scale {
        return None;
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    let frac = frac_part.as_bytes();
    for i in 0..scale {
        let d = frac.get(i).map(|b| (b - b'0') as i128).unwrap_or(0);
        v = v.checked_mul(10)?.checked_add(d)?;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::parse_decimal;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("123.45", 2), Some(12345));
        assert_eq!(parse_decimal("-0.50", 1), Some(-5));
        assert_eq!(parse_decimal("7", 3), Some(7000));
        assert_eq!(parse_decimal("1.234", 2), None);
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(parse_decimal("", 2), None);
    }
}
