//! Masks: what a user sees instead of a column's value.
//!
//! A mask is a function from the column's value to what the user may see,
//! applied where the table is read ([`super::PolicyTable`]), before any of
//! the user's own expressions: results, filters, joins, GROUP BY, ORDER BY,
//! aggregates, `COPY`, exports and pulls all see the masked value.
//!
//! | mask          | yields                                   | type   |
//! |---------------|------------------------------------------|--------|
//! | `null`        | NULL                                     | kept   |
//! | `redact`      | `'***'` (or `redact:TEXT`)               | text   |
//! | `partial:N`   | the last N characters, the rest `*`      | text   |
//! | `year`        | the year of a date or timestamp          | int4   |
//! | `pseudonym`   | hex HMAC-SHA-256 of the value's text     | text   |
//!
//! NULL stays NULL under every mask. The pseudonym's key is the custodian's
//! ([`PseudonymKey`]); with the same key on every link, the pseudonym of a
//! NIK from the population registry equals the pseudonym of the same NIK
//! from the health agency, so the two still join. The key never appears in
//! a plan, an error, a log line or a `system.*` table: the function shows
//! itself as `mask_pseudonym(column)`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::compute::kernels::temporal::{date_part, DatePart};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// One mask, as a grant names it for a column.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Mask {
    /// NULL, of the column's own type.
    Null,
    /// A constant text.
    Redact(String),
    /// The last `n` characters kept, every other one replaced by `*`.
    Partial(usize),
    /// The year of a date or timestamp.
    Year,
    /// A keyed pseudonym (HMAC-SHA-256, hex).
    Pseudonym,
}

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mask::Null => f.write_str("null"),
            Mask::Redact(text) if text == DEFAULT_REDACTION => f.write_str("redact"),
            Mask::Redact(text) => write!(f, "redact:{text}"),
            Mask::Partial(n) => write!(f, "partial:{n}"),
            Mask::Year => f.write_str("year"),
            Mask::Pseudonym => f.write_str("pseudonym"),
        }
    }
}

const DEFAULT_REDACTION: &str = "***";

impl Mask {
    /// Reads a mask as written in a grant: `null`, `redact`,
    /// `redact:TEXT`, `partial:N`, `year`, `pseudonym`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (text.trim(), None),
        };
        match (name, arg) {
            ("null", None) => Ok(Mask::Null),
            ("redact", None) => Ok(Mask::Redact(DEFAULT_REDACTION.into())),
            ("redact", Some(t)) => Ok(Mask::Redact(t.to_string())),
            ("partial", Some(n)) => n
                .trim()
                .parse()
                .map(Mask::Partial)
                .map_err(|_| format!("partial:N needs a number of characters, not `{n}`")),
            ("year", None) => Ok(Mask::Year),
            ("pseudonym", None) => Ok(Mask::Pseudonym),
            _ => Err(format!(
                "unknown mask `{text}` (null, redact, redact:TEXT, partial:N, year, pseudonym)"
            )),
        }
    }

    /// The type a column of `input` type has under the mask.
    pub fn output_type(&self, input: &DataType) -> Result<DataType> {
        match self {
            Mask::Null => Ok(input.clone()),
            Mask::Redact(_) | Mask::Partial(_) | Mask::Pseudonym => Ok(DataType::Utf8),
            Mask::Year => match input {
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
                    Ok(DataType::Int32)
                }
                other => plan_err!("the year mask needs a date or timestamp column, not {other}"),
            },
        }
    }

    /// The name of the function applying the mask, as plans show it.
    fn function_name(&self) -> String {
        match self {
            Mask::Null => "mask_null".into(),
            Mask::Redact(_) => "mask_redact".into(),
            Mask::Partial(n) => format!("mask_partial_{n}"),
            Mask::Year => "mask_year".into(),
            Mask::Pseudonym => "mask_pseudonym".into(),
        }
    }

    /// The mask as a scalar function of one argument.
    pub fn function(&self, key: &Arc<PseudonymKey>) -> ScalarUDF {
        ScalarUDF::new_from_impl(MaskFunction {
            name: self.function_name(),
            mask: self.clone(),
            key: key.clone(),
            signature: Signature::any(1, Volatility::Immutable),
        })
    }

    /// Applies the mask to one array. A failure names the mask and the
    /// column's type only: an error from Arrow could quote a value the
    /// mask is there to hide.
    pub fn apply(&self, values: &ArrayRef, key: &PseudonymKey) -> Result<ArrayRef> {
        self.apply_unchecked(values, key).map_err(|_| {
            datafusion::error::DataFusionError::Execution(format!(
                "the {self} mask cannot be applied to a column of type {}",
                values.data_type()
            ))
        })
    }

    fn apply_unchecked(&self, values: &ArrayRef, key: &PseudonymKey) -> Result<ArrayRef> {
        match self {
            Mask::Null => Ok(datafusion::arrow::array::new_null_array(
                values.data_type(),
                values.len(),
            )),
            Mask::Redact(text) => map_text(values, |_| text.clone()),
            Mask::Partial(keep) => map_text(values, |s| {
                let chars = s.chars().count();
                let hidden = chars.saturating_sub(*keep);
                let mut out = "*".repeat(hidden);
                out.extend(s.chars().skip(hidden));
                out
            }),
            Mask::Year => Ok(date_part(values.as_ref(), DatePart::Year)?),
            Mask::Pseudonym => map_text(values, |s| key.pseudonym(s)),
        }
    }
}

/// `f` of every value's text form; NULL stays NULL.
fn map_text(values: &ArrayRef, f: impl Fn(&str) -> String) -> Result<ArrayRef> {
    let text = cast(values.as_ref(), &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    let mut out = StringBuilder::with_capacity(text.len(), text.len() * 16);
    for value in text.iter() {
        match value {
            Some(v) => out.append_value(f(v)),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// The custodian's secret for pseudonyms.
pub struct PseudonymKey {
    key: Vec<u8>,
    /// Where it came from, for the log (never the key itself).
    origin: String,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PseudonymKey({})", self.origin)
    }
}

impl PseudonymKey {
    /// A key of the given bytes.
    pub fn new(key: Vec<u8>, origin: impl Into<String>) -> Self {
        Self {
            key,
            origin: origin.into(),
        }
    }

    /// The key named by the config: the value of environment variable
    /// `env`, else the contents of `file`; a random key for this process
    /// (pseudonyms then change at every start) when neither is set.
    pub fn load(env: Option<&str>, file: Option<&std::path::Path>) -> Result<Self, String> {
        if let Some(var) = env {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    return Ok(Self::new(
                        v.trim().as_bytes().to_vec(),
                        format!("environment variable {var}"),
                    ))
                }
                _ if file.is_none() => {
                    tracing::warn!(
                        variable = var,
                        "the pseudonym key's environment variable is not set: pseudonyms \
                         are made with a random key and change at every start"
                    );
                    return Ok(Self::random());
                }
                _ => {}
            }
        }
        if let Some(path) = file {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("pseudonym key file {}: {e}", path.display()))?;
            let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
            if trimmed.len() < 16 {
                return Err(format!(
                    "pseudonym key file {} holds fewer than 16 bytes",
                    path.display()
                ));
            }
            return Ok(Self::new(trimmed, format!("file {}", path.display())));
        }
        Ok(Self::random())
    }

    /// A key for this process only.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(key, "random, this process only")
    }

    /// The pseudonym of `value`: lowercase hex of HMAC-SHA-256.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC takes keys of any length.
            Err(_) => return String::new(),
        };
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// A mask as a DataFusion scalar function of one column.
struct MaskFunction {
    name: String,
    mask: Mask,
    key: Arc<PseudonymKey>,
    signature: Signature,
}

impl fmt::Debug for MaskFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        write!(f, "{}", self.name)
    }
}

impl PartialEq for MaskFunction {
    fn eq(&self, other: &Self) -> bool {
        self.mask == other.mask && Arc::ptr_eq(&self.key, &other.key)
    }
}

impl Eq for MaskFunction {}

impl Hash for MaskFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.mask.hash(state);
    }
}

impl ScalarUDFImpl for MaskFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [input] => self.mask.output_type(input),
            _ => plan_err!("{} takes one argument", self.name),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [value] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        let array = value.to_array(rows)?;
        Ok(ColumnarValue::Array(self.mask.apply(&array, &self.key)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Int32Array, StringArray};

    fn texts(a: &ArrayRef) -> Vec<Option<String>> {
        a.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn masks_parse_and_print_back() {
        for text in [
            "null",
            "redact",
            "redact:XXX",
            "partial:4",
            "year",
            "pseudonym",
        ] {
            assert_eq!(Mask::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "hash", "partial", "partial:x", "year:2"] {
            assert!(Mask::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partial_keeps_the_last_characters_and_nulls_stay_null() {
        let key = PseudonymKey::new(b"k".to_vec(), "test");
        let values: ArrayRef = Arc::new(StringArray::from(vec![
            Some("3171014501900001"),
            None,
            Some("ab"),
            Some("ŝŝŝŝŝ"),
        ]));
        let out = Mask::Partial(4).apply(&values, &key).unwrap();
        assert_eq!(
            texts(&out),
            vec![
                Some("************0001".into()),
                None,
                Some("ab".into()),
                Some("*ŝŝŝŝ".into())
            ]
        );
    }

    #[test]
    fn pseudonyms_are_keyed_hmac_of_the_text_and_join_across_types() {
        let key = PseudonymKey::new(b"custodian secret".to_vec(), "test");
        let other = PseudonymKey::new(b"another secret".to_vec(), "test");
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("1234"), None]));
        let number: ArrayRef = Arc::new(Int32Array::from(vec![Some(1234), None]));
        let a = texts(&Mask::Pseudonym.apply(&text, &key).unwrap());
        let b = texts(&Mask::Pseudonym.apply(&number, &key).unwrap());
        let c = texts(&Mask::Pseudonym.apply(&text, &other).unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[1], None);
        let p = a[0].clone().unwrap();
        assert_eq!(p.len(), 64);
        assert!(!p.contains("1234"));
        // RFC 4231-style check against an independent HMAC computation.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"custodian secret").unwrap();
        mac.update(b"1234");
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(p, want);
    }

    #[test]
    fn year_of_dates_and_debug_never_shows_the_key() {
        let key = Arc::new(PseudonymKey::new(b"sekret-kunci".to_vec(), "test"));
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![Some(0), Some(19000), None]));
        let out = Mask::Year.apply(&dates, &key).unwrap();
        let years: Vec<Option<i32>> = out
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .iter()
            .collect();
        assert_eq!(years, vec![Some(1970), Some(2022), None]);
        assert!(Mask::Year.output_type(&DataType::Utf8).is_err());
        let udf = Mask::Pseudonym.function(&key);
        assert!(!format!("{udf:?}").contains("sekret"));
        assert!(!format!("{key:?}").contains("sekret"));
    }
}
