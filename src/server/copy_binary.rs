//! `COPY ... TO STDOUT (FORMAT binary)` rows written straight from Arrow
//! arrays.
//!
//! The general row path ([`super::encode`]) goes through arrow-pg one value
//! at a time: a field-metadata lookup per string, a `rust_decimal` per
//! numeric, a `chrono` date per date, and pgwire copies every row once
//! more to put its field count in front. A full-table COPY spends most of
//! its time there (profiled: `perf record` on the release server during
//! W1). This writer handles the common column types itself — integers,
//! floats, booleans, text, bytea, numeric from `Decimal128`, dates — and
//! writes a whole batch into one buffer, cut into one CopyData per row
//! without copying (pgwire counts CopyData messages as the rows of the
//! `COPY n` tag). Any other column goes through arrow-pg as before.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, LargeStringArray, StringArray,
    StringViewArray,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::FieldInfo;
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use postgres_types::{IsNull, ToSql};

use super::encode::{encode_field, is_special};

/// The binary COPY signature, flags and header extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xFF\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00";

/// Writes binary COPY rows for one result; the header goes in front of the
/// first row.
#[derive(Debug)]
pub struct BinaryCopyWriter {
    fields: Arc<Vec<FieldInfo>>,
    header_written: bool,
}

/// One column of a batch, resolved once per batch.
enum Column<'a> {
    Int2(&'a Int16Array),
    Int4(&'a Int32Array),
    Int8(&'a Int64Array),
    Float4(&'a Float32Array),
    Float8(&'a Float64Array),
    Bool(&'a BooleanArray),
    Text(&'a StringArray),
    LargeText(&'a LargeStringArray),
    TextView(&'a StringViewArray),
    Bytea(&'a BinaryArray),
    Numeric(&'a Decimal128Array, u16),
    /// Through arrow-pg (and tautan's own uuid/json encodings).
    Other(&'a ArrayRef),
}

impl<'a> Column<'a> {
    fn resolve(array: &'a ArrayRef, pg: &Type, special: bool) -> Self {
        if special {
            return Column::Other(array);
        }
        let text = matches!(*pg, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME);
        match (array.data_type(), pg) {
            (DataType::Int16, &Type::INT2) => Column::Int2(array.as_primitive::<Int16Type>()),
            (DataType::Int32, &Type::INT4) => Column::Int4(array.as_primitive::<Int32Type>()),
            (DataType::Int64, &Type::INT8) => Column::Int8(array.as_primitive::<Int64Type>()),
            (DataType::Float32, &Type::FLOAT4) => {
                Column::Float4(array.as_primitive::<Float32Type>())
            }
            (DataType::Float64, &Type::FLOAT8) => {
                Column::Float8(array.as_primitive::<Float64Type>())
            }
            (DataType::Boolean, &Type::BOOL) => Column::Bool(array.as_boolean()),
            // char(n) is padded back to n characters (values.rs).
            (DataType::Utf8, &Type::BPCHAR) => Column::Other(array),
            (DataType::Utf8, _) if text => Column::Text(array.as_string::<i32>()),
            (DataType::LargeUtf8, _) if text => Column::LargeText(array.as_string::<i64>()),
            (DataType::Utf8View, _) if text => Column::TextView(array.as_string_view()),
            (DataType::Binary, &Type::BYTEA) => Column::Bytea(array.as_binary::<i32>()),
            (DataType::Decimal128(_, scale), &Type::NUMERIC) if *scale >= 0 => Column::Numeric(
                array.as_primitive::<Decimal128Type>(),
                u16::from(scale.unsigned_abs()),
            ),
            // ±infinity dates are PostgreSQL's own sentinels (values.rs).
            (DataType::Date32, &Type::DATE) => Column::Other(array),
            _ => Column::Other(array),
        }
    }
}

impl BinaryCopyWriter {
    /// A writer for rows described by `fields` (binary format).
    pub fn new(fields: Arc<Vec<FieldInfo>>) -> Self {
        Self {
            fields,
            header_written: false,
        }
    }

    /// One CopyData per row of `batch` (the first row of the result also
    /// carries the header).
    pub fn rows(&mut self, batch: &RecordBatch) -> PgWireResult<Vec<CopyData>> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(Vec::new());
        }
        let schema = batch.schema();
        let columns: Vec<Column<'_>> = batch
            .columns()
            .iter()
            .zip(self.fields.iter())
            .zip(schema.fields().iter())
            .map(|((a, pg), f)| Column::resolve(a, pg.datatype(), is_special(f)))
            .collect();
        let mut buf = BytesMut::with_capacity(n * (2 + 8 * columns.len()) + HEADER.len());
        let mut ends = Vec::with_capacity(n);
        if !self.header_written {
            buf.put_slice(HEADER);
            self.header_written = true;
        }
        let count = i16::try_from(columns.len()).unwrap_or(i16::MAX);
        for row in 0..n {
            buf.put_i16(count);
            for (col, column) in columns.iter().enumerate() {
                write_value(&mut buf, column, row, schema.field(col), &self.fields[col])?;
            }
            ends.push(buf.len());
        }
        let mut all = buf.freeze();
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        for end in ends {
            out.push(CopyData::new(all.split_to(end - start)));
            start = end;
        }
        Ok(out)
    }
}

/// Writes one value (length and bytes, or -1 for NULL); `field` and
/// `pg_field` describe the column for arrow-pg.
fn write_value(
    buf: &mut BytesMut,
    column: &Column<'_>,
    row: usize,
    field: &Field,
    pg_field: &FieldInfo,
) -> PgWireResult<()> {
    macro_rules! fixed {
        ($a:expr, $len:expr, $put:ident) => {{
            if $a.is_null(row) {
                buf.put_i32(-1);
            } else {
                buf.put_i32($len);
                buf.$put($a.value(row));
            }
        }};
    }
    macro_rules! bytes {
        ($a:expr) => {{
            if $a.is_null(row) {
                buf.put_i32(-1);
            } else {
                let v: &[u8] = $a.value(row).as_ref();
                buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
                buf.put_slice(v);
            }
        }};
    }
    match column {
        Column::Int2(a) => fixed!(a, 2, put_i16),
        Column::Int4(a) => fixed!(a, 4, put_i32),
        Column::Int8(a) => fixed!(a, 8, put_i64),
        Column::Float4(a) => fixed!(a, 4, put_f32),
        Column::Float8(a) => fixed!(a, 8, put_f64),
        Column::Bool(a) => {
            if a.is_null(row) {
                buf.put_i32(-1);
            } else {
                buf.put_i32(1);
                buf.put_u8(u8::from(a.value(row)));
            }
        }
        Column::Text(a) => bytes!(a),
        Column::LargeText(a) => bytes!(a),
        Column::TextView(a) => bytes!(a),
        Column::Bytea(a) => bytes!(a),
        Column::Numeric(a, scale) => {
            if a.is_null(row) {
                buf.put_i32(-1);
            } else {
                put_numeric(buf, a.value(row), *scale);
            }
        }
        Column::Other(array) => {
            encode_field(&mut FieldSink { buf }, array, row, field, pg_field)?;
        }
    }
    Ok(())
}

/// Writes `value / 10^scale` as PostgreSQL's binary `numeric` (length
/// included): base-10000 digits around the decimal point, leading and
/// trailing zero digits stripped as PostgreSQL stores them.
pub fn put_numeric(buf: &mut BytesMut, value: i128, scale: u16) {
    let negative = value < 0;
    let mut magnitude = value.unsigned_abs();
    // Align the fraction to whole base-10000 digits.
    let pad = (4 - scale % 4) % 4;
    let fraction_digits = i32::from((scale + pad) / 4);
    // Least significant first; at most 11 for Decimal128 (no allocation).
    let mut groups = [0i16; 12];
    let mut len = 0;
    let mut push = |d: i16| {
        if len < groups.len() {
            groups[len] = d;
            len += 1;
        }
    };
    if pad > 0 {
        // At most 38 digits plus 3 of padding: fits u128 (39 digits).
        match magnitude.checked_mul(10u128.pow(u32::from(pad))) {
            Some(m) => magnitude = m,
            None => {
                // Cannot happen for Decimal128's 38 digits; keep the value
                // exact by splitting off the last digit group first.
                let low = (magnitude % 10u128.pow(u32::from(4 - pad))) as i16;
                push(low * 10i16.pow(u32::from(pad)));
                magnitude /= 10u128.pow(u32::from(4 - pad));
            }
        }
    }
    match u64::try_from(magnitude) {
        // Most values: 64-bit divisions.
        Ok(mut small) => {
            while small > 0 {
                push((small % 10_000) as i16);
                small /= 10_000;
            }
        }
        Err(_) => {
            while magnitude > 0 {
                push((magnitude % 10_000) as i16);
                magnitude /= 10_000;
            }
        }
    }
    let digits = &groups[..len];
    // Weight is the power of 10000 of the most significant digit.
    let weight = digits.len() as i32 - fraction_digits - 1;
    let trailing = digits.iter().take_while(|d| **d == 0).count();
    let significant = &digits[trailing..];
    let (ndigits, weight) = if significant.is_empty() {
        (0, 0)
    } else {
        (significant.len(), weight)
    };
    buf.put_i32((8 + 2 * ndigits) as i32);
    buf.put_i16(ndigits as i16);
    buf.put_i16(weight as i16);
    buf.put_u16(if negative && ndigits > 0 { 0x4000 } else { 0 });
    buf.put_u16(scale);
    for d in significant.iter().rev() {
        buf.put_i16(*d);
    }
}

/// arrow-pg's per-value encoder writing one binary COPY field into the
/// batch buffer.
struct FieldSink<'a> {
    buf: &'a mut BytesMut,
}

impl arrow_pg::encoder::Encoder for FieldSink<'_> {
    type Item = ();

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + pgwire::types::ToSqlText + Sized,
    {
        let at = self.buf.len();
        self.buf.put_i32(-1);
        if let IsNull::No = value.to_sql(pg_field.datatype(), self.buf)? {
            let len = self.buf.len() - at - 4;
            let len = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
            self.buf[at..at + 4].copy_from_slice(&len);
        }
        Ok(())
    }

    fn take_row(&mut self) -> Self::Item {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(value: i128, scale: u16) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_numeric(&mut b, value, scale);
        b.to_vec()
    }

    fn expected(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i32(8 + 2 * i32::from(ndigits));
        b.put_i16(ndigits);
        b.put_i16(weight);
        b.put_u16(sign);
        b.put_u16(dscale);
        for d in digits {
            b.put_i16(*d);
        }
        b.to_vec()
    }

    #[test]
    fn numerics_as_postgresql_sends_them() {
        // 1234567890.12 as numeric(12,2): 12|3456|7890 . 1200
        assert_eq!(
            numeric(123_456_789_012, 2),
            expected(4, 2, 0, 2, &[12, 3456, 7890, 1200])
        );
        // -0.01
        assert_eq!(numeric(-1, 2), expected(1, -1, 0x4000, 2, &[100]));
        // 12.00: trailing zero digits stripped, dscale kept
        assert_eq!(numeric(1200, 2), expected(1, 0, 0, 2, &[12]));
        // 0 at scale 3
        assert_eq!(numeric(0, 3), expected(0, 0, 0, 3, &[]));
        // 10000 at scale 0: one digit of weight 1
        assert_eq!(numeric(10_000, 0), expected(1, 1, 0, 0, &[1]));
        // 3.14159 at scale 10 (unconstrained numeric in tautan)
        assert_eq!(
            numeric(31_415_900_000, 10),
            expected(3, 0, 0, 10, &[3, 1415, 9000])
        );
        // the largest Decimal128(38, 1)
        let max = 10i128.pow(38) - 1;
        let mut b = BytesMut::new();
        put_numeric(&mut b, max, 1);
        assert_eq!(b.len(), 4 + 8 + 2 * 11);
    }
}
