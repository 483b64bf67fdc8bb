//! Casts to text, written as PostgreSQL's output functions write values.
//!
//! DataFusion casts a value to text its own way: floats as `0.0`, `1e20`,
//! `1e-7`; timestamps with a `T`; times and timestamps with `.500`;
//! intervals as `14 mons 3 days 4 hours 5 mins 6.789000000 secs`; bytea
//! as its raw bytes (an error when they are not UTF-8). PostgreSQL writes
//! `0`, `1e+20`, `1e-07`, `2000-02-29 12:34:56.5`, `1 year 2 mons 3 days
//! 04:05:06.789` and `\x0aff` — the same text its wire answers carry. An
//! explicit `x::text` and the implicit cast of `'a' || x` are both casts
//! after type coercion, so [`TextCasts`], an analyzer rule run after it,
//! turns each cast to text of such a value into [`TextOut`], which writes
//! it as the wire's encoder does ([`crate::server::values`]), in the
//! session's `TimeZone` for a `timestamptz`; the expression keeps its
//! name. (Such a cast is then done in tautan, not at a source: MySQL writes
//! values its own way, and casts to text were never sent.)

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

/// A float as PostgreSQL writes it (`extra_float_digits` 1, the default):
/// the shortest digits that read back as the same value, in positional
/// notation unless the exponent is below -4 or at least `precision` (6
/// for float4, 15 for float8), then `d.ddde+XX`.
pub fn float_text(v: f64, precision: i32, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is the shortest round-trip form: "3.4028235e38".
    let sci = if single {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if exponent < -4 || exponent >= precision {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let point = exponent as usize + 1;
    if digits.len() <= point {
        format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

/// Whether a cast of `data_type` to text is written by [`TextOut`]:
/// every type whose text DataFusion writes otherwise than PostgreSQL.
/// (Integers, booleans and strings are written alike; a `char(n)` cast to
/// text loses its padding in both.)
fn written_here(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Date32
            | DataType::Time64(_)
            | DataType::Timestamp(..)
            | DataType::Interval(IntervalUnit::MonthDayNano)
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// `textout(x)`: `x` as PostgreSQL's output function for its type writes
/// it, `timestamptz` in `zone` (the session's `TimeZone` when the
/// statement was planned).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TextOut {
    zone: String,
    /// `bpcharout`: a `char(n)` value with its blanks back to `n`
    /// characters (a cast to text drops them).
    padded: bool,
    signature: Signature,
}

impl TextOut {
    /// The function writing `timestamptz` values in `zone`.
    pub fn udf(zone: &str) -> ScalarUDF {
        ScalarUDF::new_from_impl(TextOut {
            zone: zone.to_string(),
            padded: false,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }

    /// `bpcharout(x)`: a `char(n)` column's value as PostgreSQL's output
    /// function writes it, padded to `n` characters (what `concat` and
    /// `concat_ws` take; `||` takes the cast to text, unpadded).
    pub fn padded() -> ScalarUDF {
        ScalarUDF::new_from_impl(TextOut {
            zone: String::new(),
            padded: true,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

/// `\x` and the bytes in lowercase hex (`bytea_output = hex`).
fn bytea_text(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl ScalarUDFImpl for TextOut {
    fn name(&self) -> &str {
        if self.padded {
            "bpcharout"
        } else {
            "textout"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use crate::server::values::{Kind, Value};
        let rows = args.number_rows;
        let ([arg], [field]) = (args.args.as_slice(), args.arg_fields.as_slice()) else {
            return datafusion::common::exec_err!("textout takes one argument");
        };
        let scalar = matches!(arg, ColumnarValue::Scalar(_));
        let values = arg.to_array(rows)?;
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 16);
        let binary = |i: usize| -> Option<&[u8]> {
            match values.data_type() {
                DataType::Binary => Some(values.as_binary::<i32>().value(i)),
                DataType::LargeBinary => Some(values.as_binary::<i64>().value(i)),
                DataType::BinaryView => Some(values.as_binary_view().value(i)),
                _ => None,
            }
        };
        let kind = Kind::of(field).filter(|k| self.padded || !matches!(k, Kind::Padded(_)));
        for i in 0..values.len() {
            if values.is_null(i) {
                out.append_null();
            } else if let Some(bytes) = binary(i) {
                out.append_value(bytea_text(bytes));
            } else if let Some(kind) = kind {
                let value = Value {
                    array: &values,
                    row: i,
                    kind,
                };
                let text = value.text(&self.zone).map_err(|e| {
                    datafusion::error::DataFusionError::External(
                        e as Box<dyn std::error::Error + Send + Sync>,
                    )
                })?;
                out.append_value(text);
            } else {
                return datafusion::common::exec_err!(
                    "textout: no text form for {}",
                    values.data_type()
                );
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        crate::math::columnar(out, scalar)
    }
}

/// `concat`/`concat_ws` of a `char(n)` column: the column padded to `n`
/// characters, as PostgreSQL's output function writes it for them.
/// `None` for any other call, or one without such a column.
fn padded_arguments(
    f: &ScalarFunction,
    scope: &datafusion::common::DFSchema,
    bpcharout: &Arc<ScalarUDF>,
) -> Option<Expr> {
    if !matches!(f.name(), "concat" | "concat_ws") {
        return None;
    }
    let bpchar = |a: &Expr| {
        // The column itself, or the column under a cast to a string type
        // that type coercion added.
        let column = match a {
            Expr::Cast(Cast { expr, .. }) if matches!(**expr, Expr::Column(_)) => expr.as_ref(),
            other => other,
        };
        matches!(column, Expr::Column(_))
            && column.to_field(scope).is_ok_and(|(_, field)| {
                field
                    .metadata()
                    .get(tautan_connector::types::PG_TYPE_KEY)
                    .is_some_and(|t| t == "bpchar")
            })
    };
    if !f.args.iter().any(bpchar) {
        return None;
    }
    let args = f
        .args
        .iter()
        .map(|a| {
            if bpchar(a) {
                let column = match a {
                    Expr::Cast(Cast { expr, .. }) => expr.as_ref().clone(),
                    other => other.clone(),
                };
                Expr::ScalarFunction(ScalarFunction::new_udf(bpcharout.clone(), vec![column]))
            } else {
                a.clone()
            }
        })
        .collect();
    Some(Expr::ScalarFunction(ScalarFunction {
        func: f.func.clone(),
        args,
    }))
}

/// The analyzer rule; see the module docs.
#[derive(Debug)]
pub struct TextCasts {
    settings: crate::pg_catalog::Settings,
}

impl TextCasts {
    /// The rule for a session with `settings` (its `TimeZone`).
    pub fn new(settings: crate::pg_catalog::Settings) -> Self {
        TextCasts { settings }
    }
}

impl AnalyzerRule for TextCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let zone = self
            .settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get("timezone")
            .cloned()
            .unwrap_or_else(|| "UTC".to_string());
        let textout = Arc::new(TextOut::udf(&zone));
        let bpcharout = Arc::new(TextOut::padded());
        crate::rewrite::expressions_bottom_up(plan, |e, scope| {
            if let Expr::ScalarFunction(f) = &e {
                return match padded_arguments(f, scope, &bpcharout) {
                    Some(padded) => Ok(Transformed::yes(padded)),
                    None => Ok(Transformed::no(e)),
                };
            }
            let Expr::Cast(Cast { expr, field }) = &e else {
                return Ok(Transformed::no(e));
            };
            let to = field.data_type();
            if !matches!(
                to,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
                return Ok(Transformed::no(e));
            }
            match expr.get_type(scope) {
                Ok(from) if written_here(&from) => {}
                _ => return Ok(Transformed::no(e)),
            }
            let text = Expr::ScalarFunction(ScalarFunction::new_udf(
                textout.clone(),
                vec![expr.as_ref().clone()],
            ));
            Ok(Transformed::yes(if *to == DataType::Utf8 {
                text
            } else {
                datafusion::logical_expr::cast(text, to.clone())
            }))
        })
    }

    fn name(&self) -> &str {
        "tautan_text_casts"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytea_is_written_in_hex_with_its_prefix() {
        assert_eq!(bytea_text(b""), "\\x");
        assert_eq!(bytea_text(&[0x0a, 0xff, 0x00]), "\\x0aff00");
    }
}
