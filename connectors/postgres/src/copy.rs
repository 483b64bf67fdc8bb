//! Decoding `COPY ... TO STDOUT (FORMAT binary)` straight into Arrow.
//!
//! The binary COPY stream is a header followed by tuples; each tuple is a
//! field count and, per field, a length (`-1` for NULL) and the value in the
//! type's binary send format. [`CopyDecoder`] accepts the stream in chunks
//! of any size, appends each value to the Arrow builder of its column, and
//! hands out a [`RecordBatch`] every [`BATCH_ROWS`] rows.
//!
//! Which decoder a column gets follows from its Arrow field alone (type plus
//! the `tautan.pg_type` tag), which is how [`crate::introspect`] chose it.

use datafusion::arrow::array::{
    make_builder, ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder,
    Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, ListBuilder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Field, IntervalMonthDayNano, IntervalUnit, SchemaRef, TimeUnit,
};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use tautan_connector::types::{
    BATCH_ROWS, DATE_INFINITY, DATE_NEG_INFINITY, PG_TYPE_KEY, TIMESTAMP_INFINITY,
    TIMESTAMP_NEG_INFINITY,
};
use tautan_connector::{LinkError, LinkErrorKind};

/// `PGCOPY\n\xff\r\n\0`
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How one column's binary values are decoded.
#[derive(Debug, Clone)]
enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric {
        scale: i8,
    },
    Text,
    /// `char(n)`: trailing blanks are not part of the value in
    /// PostgreSQL's comparisons, `length` or concatenation; they are
    /// dropped here and written back on output (the field's typmod).
    PaddedText,
    Jsonb,
    Uuid,
    Bytea,
    Date,
    Time,
    Timestamp,
    Interval,
    Array(Box<Kind>),
}

impl Kind {
    fn for_field(f: &Field) -> Option<Kind> {
        let tag = f.metadata().get(PG_TYPE_KEY).map(String::as_str);
        Self::for_type(f.data_type(), tag)
    }

    fn for_type(dt: &DataType, tag: Option<&str>) -> Option<Kind> {
        Some(match dt {
            DataType::Boolean => Kind::Bool,
            DataType::Int16 => Kind::Int2,
            DataType::Int32 => Kind::Int4,
            DataType::Int64 => Kind::Int8,
            DataType::Float32 => Kind::Float4,
            DataType::Float64 => Kind::Float8,
            DataType::Decimal128(_, s) => Kind::Numeric { scale: *s },
            DataType::Utf8 => match tag {
                Some("uuid") => Kind::Uuid,
                Some("jsonb") => Kind::Jsonb,
                Some("bpchar") => Kind::PaddedText,
                _ => Kind::Text,
            },
            DataType::Binary => Kind::Bytea,
            DataType::Date32 => Kind::Date,
            DataType::Time64(TimeUnit::Microsecond) => Kind::Time,
            DataType::Timestamp(TimeUnit::Microsecond, _) => Kind::Timestamp,
            DataType::Interval(IntervalUnit::MonthDayNano) => Kind::Interval,
            DataType::List(inner) => {
                Kind::Array(Box::new(Self::for_type(inner.data_type(), None)?))
            }
            _ => return None,
        })
    }
}

/// Streaming decoder of one binary COPY answer.
pub struct CopyDecoder {
    link: String,
    schema: SchemaRef,
    kinds: Vec<Kind>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
    /// Bytes not yet forming a whole tuple.
    pending: Vec<u8>,
    header_done: bool,
    finished: bool,
}

impl CopyDecoder {
    /// A decoder producing batches of `schema`.
    pub fn new(link: &str, schema: SchemaRef) -> Result<Self, LinkError> {
        let mut kinds = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            kinds.push(Kind::for_field(f).ok_or_else(|| {
                LinkError::new(
                    link,
                    LinkErrorKind::Conversion,
                    format!(
                        "no binary decoder for column {} ({})",
                        f.name(),
                        f.data_type()
                    ),
                )
            })?);
        }
        let builders = schema
            .fields()
            .iter()
            .map(|f| make_builder(f.data_type(), BATCH_ROWS))
            .collect();
        Ok(Self {
            link: link.to_string(),
            schema,
            kinds,
            builders,
            rows: 0,
            pending: Vec::new(),
            header_done: false,
            finished: false,
        })
    }

    fn err(&self, msg: impl Into<String>) -> LinkError {
        LinkError::new(&self.link, LinkErrorKind::Conversion, msg)
    }

    /// Feeds one chunk of the COPY stream; returns the batches completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, LinkError> {
        let mut out = Vec::new();
        if self.pending.is_empty() {
            let used = self.consume(chunk, &mut out)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            let used = self.consume(&buf, &mut out)?;
            buf.drain(..used);
            self.pending = buf;
        }
        Ok(out)
    }

    /// Ends the stream: the last, partial batch (if any rows remain).
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, LinkError> {
        if !self.pending.is_empty() {
            return Err(self.err("COPY stream ended in the middle of a row"));
        }
        if self.rows == 0 {
            return Ok(None);
        }
        self.flush().map(Some)
    }

    /// Decodes whole tuples from `buf`; returns how many bytes were used.
    fn consume(&mut self, buf: &[u8], out: &mut Vec<RecordBatch>) -> Result<usize, LinkError> {
        let mut pos = 0;
        if !self.header_done {
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(self.err("not a binary COPY stream"));
            }
            pos = SIGNATURE.len() + 4; // signature + flags
            let ext = be_i32(&buf[pos..pos + 4]) as usize;
            pos += 4;
            if buf.len() < pos + ext {
                return Ok(0);
            }
            pos += ext;
            self.header_done = true;
        }
        loop {
            if self.finished || buf.len() < pos + 2 {
                return Ok(pos);
            }
            let nfields = be_i16(&buf[pos..pos + 2]);
            if nfields == -1 {
                self.finished = true;
                return Ok(buf.len());
            }
            // Find the end of this tuple before decoding anything of it.
            let mut end = pos + 2;
            for _ in 0..nfields {
                if buf.len() < end + 4 {
                    return Ok(pos);
                }
                let len = be_i32(&buf[end..end + 4]);
                end += 4;
                if len > 0 {
                    end += len as usize;
                }
            }
            if buf.len() < end {
                return Ok(pos);
            }
            let expected = if self.kinds.is_empty() {
                1
            } else {
                self.kinds.len()
            };
            if nfields as usize != expected {
                return Err(self.err(format!("row has {nfields} fields, expected {expected}")));
            }
            let mut p = pos + 2;
            for col in 0..self.kinds.len() {
                let len = be_i32(&buf[p..p + 4]);
                p += 4;
                let value = if len < 0 {
                    None
                } else {
                    let v = &buf[p..p + len as usize];
                    p += len as usize;
                    Some(v)
                };
                let kind = &self.kinds[col];
                append(kind, self.builders[col].as_mut(), value).map_err(|m| {
                    self.err(format!("column {}: {m}", self.schema.field(col).name()))
                })?;
            }
            pos = end;
            self.rows += 1;
            if self.rows == BATCH_ROWS {
                out.push(self.flush()?);
            }
        }
    }

    fn flush(&mut self) -> Result<RecordBatch, LinkError> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| self.err(e.to_string()))
    }
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

fn fixed<'a>(v: &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    if v.len() == n {
        Ok(v)
    } else {
        Err(format!("{what} value has {} bytes, expected {n}", v.len()))
    }
}

macro_rules! builder {
    ($b:expr, $t:ty) => {
        $b.as_any_mut()
            .downcast_mut::<$t>()
            .ok_or_else(|| format!("internal: builder is not {}", stringify!($t)))?
    };
}

/// Appends one value (or NULL) to `b`.
fn append(kind: &Kind, b: &mut dyn ArrayBuilder, v: Option<&[u8]>) -> Result<(), String> {
    match kind {
        Kind::Bool => {
            let b = builder!(b, BooleanBuilder);
            match v {
                Some(v) => b.append_value(fixed(v, 1, "bool")?[0] != 0),
                None => b.append_null(),
            }
        }
        Kind::Int2 => {
            let b = builder!(b, Int16Builder);
            match v {
                Some(v) => b.append_value(be_i16(fixed(v, 2, "int2")?)),
                None => b.append_null(),
            }
        }
        Kind::Int4 => {
            let b = builder!(b, Int32Builder);
            match v {
                Some(v) => b.append_value(be_i32(fixed(v, 4, "int4")?)),
                None => b.append_null(),
            }
        }
        Kind::Int8 => {
            let b = builder!(b, Int64Builder);
            match v {
                Some(v) => b.append_value(be_i64(fixed(v, 8, "int8")?)),
                None => b.append_null(),
            }
        }
        Kind::Float4 => {
            let b = builder!(b, Float32Builder);
            match v {
                Some(v) => b.append_value(f32::from_bits(be_i32(fixed(v, 4, "float4")?) as u32)),
                None => b.append_null(),
            }
        }
        Kind::Float8 => {
            let b = builder!(b, Float64Builder);
            match v {
                Some(v) => b.append_value(f64::from_bits(be_i64(fixed(v, 8, "float8")?) as u64)),
                None => b.append_null(),
            }
        }
        Kind::Numeric { scale } => {
            let b = builder!(b, Decimal128Builder);
            match v {
                Some(v) => b.append_value(numeric_to_i128(v, *scale)?),
                None => b.append_null(),
            }
        }
        Kind::Text => {
            let b = builder!(b, StringBuilder);
            match v {
                Some(v) => b.append_value(std::str::from_utf8(v).map_err(|e| e.to_string())?),
                None => b.append_null(),
            }
        }
        Kind::PaddedText => {
            let b = builder!(b, StringBuilder);
            match v {
                Some(v) => b.append_value(
                    std::str::from_utf8(v)
                        .map_err(|e| e.to_string())?
                        .trim_end_matches(' '),
                ),
                None => b.append_null(),
            }
        }
        Kind::Jsonb => {
            let b = builder!(b, StringBuilder);
            match v {
                Some([1, rest @ ..]) => {
                    b.append_value(std::str::from_utf8(rest).map_err(|e| e.to_string())?)
                }
                Some(_) => return Err("unknown jsonb binary version".into()),
                None => b.append_null(),
            }
        }
        Kind::Uuid => {
            let b = builder!(b, StringBuilder);
            match v {
                Some(v) => b.append_value(format_uuid(fixed(v, 16, "uuid")?)),
                None => b.append_null(),
            }
        }
        Kind::Bytea => {
            let b = builder!(b, BinaryBuilder);
            match v {
                Some(v) => b.append_value(v),
                None => b.append_null(),
            }
        }
        Kind::Date => {
            let b = builder!(b, Date32Builder);
            match v {
                Some(v) => {
                    let d = be_i32(fixed(v, 4, "date")?);
                    // ±infinity keep PostgreSQL's own sentinels, the
                    // largest and smallest values (they sort the same).
                    let days = match d {
                        i32::MAX => DATE_INFINITY,
                        i32::MIN => DATE_NEG_INFINITY,
                        d => d.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?,
                    };
                    b.append_value(days)
                }
                None => b.append_null(),
            }
        }
        Kind::Time => {
            let b = builder!(b, Time64MicrosecondBuilder);
            match v {
                Some(v) => b.append_value(be_i64(fixed(v, 8, "time")?)),
                None => b.append_null(),
            }
        }
        Kind::Timestamp => {
            let b = builder!(b, TimestampMicrosecondBuilder);
            match v {
                Some(v) => {
                    let t = be_i64(fixed(v, 8, "timestamp")?);
                    let micros = match t {
                        i64::MAX => TIMESTAMP_INFINITY,
                        i64::MIN => TIMESTAMP_NEG_INFINITY,
                        t => t
                            .checked_add(PG_EPOCH_MICROS)
                            .ok_or("timestamp out of range")?,
                    };
                    b.append_value(micros)
                }
                None => b.append_null(),
            }
        }
        Kind::Interval => {
            let b = builder!(b, IntervalMonthDayNanoBuilder);
            match v {
                Some(v) => {
                    let v = fixed(v, 16, "interval")?;
                    let micros = be_i64(&v[0..8]);
                    let days = be_i32(&v[8..12]);
                    let months = be_i32(&v[12..16]);
                    b.append_value(IntervalMonthDayNano::new(months, days, micros * 1000))
                }
                None => b.append_null(),
            }
        }
        Kind::Array(elem) => {
            let b = builder!(b, ListBuilder<Box<dyn ArrayBuilder>>);
            match v {
                Some(v) => {
                    append_array(elem, b.values().as_mut(), v)?;
                    b.append(true);
                }
                None => b.append(false),
            }
        }
    }
    Ok(())
}

/// One-dimensional array: ndim, has-null flag, element oid, (size, lower
/// bound) per dimension, then length-prefixed elements.
fn append_array(elem: &Kind, values: &mut dyn ArrayBuilder, v: &[u8]) -> Result<(), String> {
    if v.len() < 12 {
        return Err("array value too short".into());
    }
    let ndim = be_i32(&v[0..4]);
    if ndim == 0 {
        return Ok(());
    }
    if ndim != 1 {
        return Err(format!("{ndim}-dimensional arrays are not supported"));
    }
    if v.len() < 20 {
        return Err("array value too short".into());
    }
    let n = be_i32(&v[12..16]).max(0) as usize;
    let mut p = 20;
    for _ in 0..n {
        if v.len() < p + 4 {
            return Err("array value truncated".into());
        }
        let len = be_i32(&v[p..p + 4]);
        p += 4;
        if len < 0 {
            append(elem, values, None)?;
        } else {
            let end = p + len as usize;
            if v.len() < end {
                return Err("array value truncated".into());
            }
            append(elem, values, Some(&v[p..end]))?;
            p = end;
        }
    }
    Ok(())
}

fn format_uuid(b: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

/// PostgreSQL binary numeric (base-10000 digits) to an i128 at `scale`.
/// Digits beyond `scale` (only possible for unconstrained numerics) are an
/// error, never silently rounded.
pub fn numeric_to_i128(v: &[u8], scale: i8) -> Result<i128, String> {
    if v.len() < 8 {
        return Err("numeric value too short".into());
    }
    let ndigits = be_i16(&v[0..2]) as i32;
    let weight = be_i16(&v[2..4]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN has no decimal value".into()),
        _ => return Err("infinite numeric has no decimal value".into()),
    }
    if v.len() < 8 + 2 * ndigits.max(0) as usize {
        return Err("numeric value truncated".into());
    }
    let overflow = || format!("numeric value does not fit decimal(38,{scale})");
    let digit = |i: usize| be_i16(&v[8 + 2 * i..10 + 2 * i]);
    // Group i (base 10000) is worth 10^(4 * (weight - i)); at `scale`
    // that is 10^(4 * (weight - i) + scale). Adding each group at its own
    // power keeps the sum within i128 whenever the value is (a trailing
    // group's zeros never go through the accumulator).
    let mut value: i128 = 0;
    if ndigits <= 4 {
        // Up to 16 decimal digits (most values): one 64-bit accumulator,
        // then one power of ten.
        let mut small: u64 = 0;
        for i in 0..ndigits.max(0) as usize {
            let d = u64::try_from(digit(i)).map_err(|_| "numeric digit out of range")?;
            if d >= 10_000 {
                return Err("numeric digit out of range".into());
            }
            small = small * 10_000 + d;
        }
        let shift = scale as i32 - 4 * (ndigits - 1 - weight);
        value = if ndigits == 0 {
            0
        } else if shift >= 0 {
            10i128
                .checked_pow(shift as u32)
                .and_then(|m| i128::from(small).checked_mul(m))
                .ok_or_else(overflow)?
        } else {
            let div = 10i128.checked_pow((-shift) as u32).unwrap_or(i128::MAX);
            if i128::from(small) % div != 0 {
                return Err(format!(
                    "numeric value has more than {scale} decimal places"
                ));
            }
            i128::from(small) / div
        };
    }
    for i in 0..ndigits.max(0) as usize {
        if ndigits <= 4 {
            break;
        }
        let d = i128::from(digit(i));
        if !(0..10_000).contains(&d) {
            return Err("numeric digit out of range".into());
        }
        if d == 0 {
            continue;
        }
        let exponent = 4 * (weight - i as i32) + scale as i32;
        let term = if exponent >= 0 {
            10i128
                .checked_pow(exponent as u32)
                .and_then(|m| d.checked_mul(m))
                .ok_or_else(overflow)?
        } else {
            let div = 10i128.checked_pow((-exponent) as u32).unwrap_or(i128::MAX);
            if d % div != 0 {
                return Err(format!(
                    "numeric value has more than {scale} decimal places"
                ));
            }
            d / div
        };
        value = value.checked_add(term).ok_or_else(overflow)?;
    }
    if sign == 0x4000 {
        value = -value;
    }
    if value.unsigned_abs() >= 10u128.pow(38) {
        return Err(overflow());
    }
    Ok(value)
}

/// The schema fields a decoder supports, for tests and `tautan check`.
pub fn supports(dt: &DataType) -> bool {
    Kind::for_type(dt, None).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ndigits.to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_decoding() {
        // 12345.67 = [1, 2345, 6700], weight 1
        let v = numeric(3, 1, 0, 2, &[1, 2345, 6700]);
        assert_eq!(numeric_to_i128(&v, 2).unwrap(), 1_234_567);
        assert_eq!(numeric_to_i128(&v, 4).unwrap(), 123_456_700);
        assert!(numeric_to_i128(&v, 1).is_err());
        // -0.0001 = [1], weight -1
        let v = numeric(1, -1, 0x4000, 4, &[1]);
        assert_eq!(numeric_to_i128(&v, 4).unwrap(), -1);
        // 20000 = [2], weight 1 (trailing zero groups are dropped)
        let v = numeric(1, 1, 0, 0, &[2]);
        assert_eq!(numeric_to_i128(&v, 2).unwrap(), 2_000_000);
        let zero = numeric(0, 0, 0, 0, &[]);
        assert_eq!(numeric_to_i128(&zero, 3).unwrap(), 0);
        let nan = numeric(0, 0, 0xC000, 0, &[]);
        assert!(numeric_to_i128(&nan, 3).is_err());
        // 38 digits, the last group of the fraction ending in zeros:
        // 999999999999999999999999999999999999.99 at scale 2.
        let mut groups = vec![9999i16; 9];
        groups.push(9900);
        let widest = numeric(10, 8, 0x0000, 2, &groups);
        assert_eq!(
            numeric_to_i128(&widest, 2).unwrap(),
            99_999_999_999_999_999_999_999_999_999_999_999_999i128
        );
        let negative = numeric(10, 8, 0x4000, 2, &groups);
        assert_eq!(
            numeric_to_i128(&negative, 2).unwrap(),
            -99_999_999_999_999_999_999_999_999_999_999_999_999i128
        );
    }

    #[test]
    fn uuid_format() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(format_uuid(&b), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
