//! Exact column types for CSV files.
//!
//! DataFusion infers a CSV column's type the way arrow-csv does, and that
//! reading loses the file's text: `31.10` becomes the float `31.1`, a code
//! `0123` becomes the integer `123`. A file link must answer what the file
//! says, so tautan refines the inferred types after reading every value:
//!
//! * a column of integers stays `bigint` only when no value has a leading
//!   zero (`0123`, `-07`); otherwise it is text;
//! * a column of numbers with a point is an exact `numeric(p, s)` (as a
//!   number with a point is in SQL), `s` the most decimals any value has;
//!   a number with a leading zero (`007.5`) makes it text, and one with an
//!   exponent, `NaN` or `inf` keeps it a float (the file itself then holds
//!   floats). More than 38 digits do not fit a numeric: text;
//! * a timestamp column where a value carries a zone (`+07:00`, `Z`) is a
//!   `timestamptz`: DataFusion read `10:00:00+07:00` as the naive
//!   `03:00:00`, dropping the zone the file wrote (values without one are
//!   read as UTC);
//! * every other type is DataFusion's.
//!
//! Two habits of spreadsheet exports are understood as well: a byte-order
//! mark before the header (Excel's "CSV UTF-8") is not part of the first
//! column's name, and a file whose header has no comma but semicolons (the
//! list separator where the decimal mark is a comma, as in Indonesian
//! locales) is read with `;` as its delimiter (likewise a tab or `|`).
//!
//! Values are read as text with arrow's own CSV reader, so quoting,
//! delimiters and empty fields (NULL) are understood exactly as when the
//! table is queried.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::{DataFusionError, Result};

/// The widest exact numeric Arrow holds in 128 bits.
const MAX_PRECISION: usize = 38;

/// What the values of one numeric column need, learned value by value.
#[derive(Debug, Default, Clone)]
struct Needs {
    /// Some value would lose text as a number (leading zero, too long).
    text: bool,
    /// Some value is only a float (exponent, NaN, infinity).
    float: bool,
    /// Most significant digits left of the point.
    whole_digits: usize,
    /// Most digits right of the point.
    scale: usize,
    /// Some timestamp carries a zone.
    zone: bool,
}

impl Needs {
    fn see_integer(&mut self, value: &str) {
        let digits = value.strip_prefix('-').unwrap_or(value);
        if digits.len() > 1 && digits.starts_with('0') {
            self.text = true;
        }
    }

    fn see_number(&mut self, value: &str) {
        let unsigned = value.strip_prefix('-').unwrap_or(value);
        if unsigned.contains(['e', 'E'])
            || !unsigned.starts_with(|c: char| c == '.' || c.is_ascii_digit())
        {
            // 1e3, NaN, nan, inf: a float in the file.
            self.float = true;
            return;
        }
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if whole.len() > 1 && whole.starts_with('0') {
            self.text = true;
        }
        self.whole_digits = self.whole_digits.max(whole.trim_start_matches('0').len());
        self.scale = self.scale.max(fraction.len());
    }

    fn see_timestamp(&mut self, value: &str) {
        // `YYYY-MM-DD HH:MM:SS[.fff]`, then the zone if any.
        let rest = value.get(11..).unwrap_or_default();
        let zone = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == '.');
        if !zone.trim().is_empty() {
            self.zone = true;
        }
    }

    /// The type that gives back every value seen, for a column DataFusion
    /// read as `inferred`.
    fn exact_type(&self, inferred: &DataType) -> DataType {
        if self.text {
            return DataType::Utf8;
        }
        match inferred {
            DataType::Timestamp(unit, None) if self.zone => {
                DataType::Timestamp(*unit, Some("UTC".into()))
            }
            DataType::Float64 if self.float => DataType::Float64,
            DataType::Float64 => {
                let precision = (self.whole_digits + self.scale).max(1);
                match (u8::try_from(precision), i8::try_from(self.scale)) {
                    (Ok(p), Ok(s)) if precision <= MAX_PRECISION => DataType::Decimal128(p, s),
                    _ => DataType::Utf8,
                }
            }
            other => other.clone(),
        }
    }
}

/// Every file of a table: the file itself, or the files under a folder with
/// the same extension (as the listing table reads them).
pub(crate) fn files_of(path: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut folders = vec![path.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            DataFusionError::Execution(format!("cannot read {}: {e}", folder.display()))
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                folders.push(p);
            } else if p.to_string_lossy().ends_with(extension) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The byte-order mark a spreadsheet may write before the header.
const BOM: char = '\u{feff}';

/// The delimiter of the CSV file at `path`, read off its header line: a
/// comma if it has one, else the first of `;`, tab and `|` it has (outside
/// quotes), else a comma.
pub(crate) fn delimiter(path: &Path) -> Result<u8> {
    let file = File::open(path)
        .map_err(|e| DataFusionError::Execution(format!("cannot open {}: {e}", path.display())))?;
    let mut header = Vec::new();
    // The header line, at most 64 KiB of it.
    BufReader::new(file)
        .take(64 * 1024)
        .read_until(b'\n', &mut header)
        .map_err(|e| DataFusionError::Execution(format!("cannot read {}: {e}", path.display())))?;
    let mut quoted = false;
    let mut seen = [false; 4];
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    for &b in &header {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                seen[i] = true;
            }
        }
    }
    Ok(CANDIDATES
        .iter()
        .zip(seen)
        .find(|(_, seen)| *seen)
        .map(|(&c, _)| c)
        .unwrap_or(b','))
}

/// Refines DataFusion's inferred `schema` of the CSV `files` (with a header
/// row, fields separated by `delimiter`) so that no value loses its text
/// and no name starts with a byte-order mark (see the module docs).
pub(crate) fn exact_schema(schema: &Schema, files: &[PathBuf], delimiter: u8) -> Result<Schema> {
    let schema = &without_bom(schema);
    let numeric: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            matches!(
                f.data_type(),
                DataType::Int64 | DataType::Float64 | DataType::Timestamp(_, None)
            )
        })
        .map(|(i, _)| i)
        .collect();
    if numeric.is_empty() {
        return Ok(schema.clone());
    }
    let as_text = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut needs = vec![Needs::default(); schema.fields().len()];
    for path in files {
        let file = File::open(path).map_err(|e| {
            DataFusionError::Execution(format!("cannot open {}: {e}", path.display()))
        })?;
        let reader = ReaderBuilder::new(Arc::clone(&as_text))
            .with_header(true)
            .with_delimiter(delimiter)
            .build(file)?;
        for batch in reader {
            let batch = batch?;
            for &i in &numeric {
                let Some(values) = batch.column(i).as_any().downcast_ref::<StringArray>() else {
                    continue;
                };
                let kind = schema.field(i).data_type();
                for value in values.iter().flatten() {
                    match kind {
                        DataType::Int64 => needs[i].see_integer(value),
                        DataType::Float64 => needs[i].see_number(value),
                        _ => needs[i].see_timestamp(value),
                    }
                }
            }
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&needs)
        .map(|(f, n)| {
            f.as_ref()
                .clone()
                .with_data_type(n.exact_type(f.data_type()))
        })
        .collect();
    Ok(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `schema` with a byte-order mark taken off its first field's name.
fn without_bom(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match f.name().strip_prefix(BOM) {
            Some(name) if i == 0 => f.as_ref().clone().with_name(name),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(kind: DataType, values: &[&str]) -> DataType {
        let mut n = Needs::default();
        for v in values {
            match kind {
                DataType::Int64 => n.see_integer(v),
                DataType::Float64 => n.see_number(v),
                _ => n.see_timestamp(v),
            }
        }
        n.exact_type(&kind)
    }

    #[test]
    fn timestamps_with_a_zone_are_timestamptz() {
        use datafusion::arrow::datatypes::TimeUnit::Second;
        let naive = DataType::Timestamp(Second, None);
        let zoned = DataType::Timestamp(Second, Some("UTC".into()));
        assert_eq!(read(naive.clone(), &["2024-01-01 10:00:00"]), naive);
        assert_eq!(read(naive.clone(), &["2024-01-01T10:00:00.5"]), naive);
        for v in [
            "2024-01-01 10:00:00+07:00",
            "2024-01-01T03:00:00Z",
            "2024-01-01 10:00:00.25-03",
        ] {
            assert_eq!(
                read(naive.clone(), &["2024-01-01 10:00:00", v]),
                zoned,
                "{v}"
            );
        }
    }

    #[test]
    fn numbers_keep_their_text() {
        assert_eq!(read(DataType::Int64, &["1", "-20", "0"]), DataType::Int64);
        assert_eq!(read(DataType::Int64, &["1", "0123"]), DataType::Utf8);
        assert_eq!(read(DataType::Int64, &["-07"]), DataType::Utf8);
        assert_eq!(
            read(DataType::Float64, &["31.71", "31.10"]),
            DataType::Decimal128(4, 2)
        );
        assert_eq!(
            read(DataType::Float64, &["0.5", "-12", ".25", "3."]),
            DataType::Decimal128(4, 2)
        );
        assert_eq!(read(DataType::Float64, &["1.5", "2e3"]), DataType::Float64);
        assert_eq!(read(DataType::Float64, &["1.5", "NaN"]), DataType::Float64);
        assert_eq!(read(DataType::Float64, &["1.5", "-inf"]), DataType::Float64);
        assert_eq!(read(DataType::Float64, &["007.5"]), DataType::Utf8);
        let long = format!("{}.5", "9".repeat(38));
        assert_eq!(read(DataType::Float64, &[long.as_str()]), DataType::Utf8);
        assert_eq!(
            read(DataType::Float64, &["0.0"]),
            DataType::Decimal128(1, 1)
        );
    }
}
