//! Errors as a PostgreSQL client sees them: a SQLSTATE and a message.

use std::fmt;

use datafusion::error::DataFusionError;
use tautan_connector::error::find_link_error;

/// A failed statement, with the SQLSTATE clients display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// Five-character SQLSTATE.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// What the user could do about it (PostgreSQL's HINT field).
    pub hint: Option<String>,
}

impl QueryError {
    /// An error with `code`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// 54001, PostgreSQL's answer to a statement nested too deeply for its
    /// stack: tautan refuses it before planning (see [`crate::limits`]).
    pub fn stack_depth_exceeded() -> Self {
        Self::new("54001", "stack depth limit exceeded").with_hint(format!(
            "Simplify the statement: tautan accepts expressions, subqueries and joins nested at most {} deep.",
            crate::limits::MAX_DEPTH
        ))
    }

    /// 42P01, worded like PostgreSQL, for tables that do not exist *or* that
    /// the user may not see.
    pub fn undefined_table(name: &str) -> Self {
        Self::new("42P01", format!("relation \"{name}\" does not exist"))
    }

    /// 42501 for a column outside the user's grants.
    pub fn column_denied(column: &str, table: &str) -> Self {
        Self::new(
            "42501",
            format!("permission denied for column \"{column}\" of relation \"{table}\""),
        )
    }

    /// 57014: the client cancelled the statement.
    pub fn cancelled() -> Self {
        Self::new("57014", "canceling statement due to user request")
    }

    /// 34000: no cursor by that name.
    pub fn no_cursor(name: &str) -> Self {
        Self::new("34000", format!("cursor \"{name}\" does not exist"))
    }

    /// 25P02: a statement inside a transaction that already failed.
    pub fn in_failed_transaction() -> Self {
        Self::new(
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    }

    /// 25006 for anything that would write.
    pub fn read_only(what: &str) -> Self {
        Self::new(
            "25006",
            format!("cannot execute {what}: tautan is a read-only federation"),
        )
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for QueryError {}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        QueryError::from(&e)
    }
}

impl From<&DataFusionError> for QueryError {
    /// The SQLSTATE and message a client is told for `e` (the error itself
    /// stays with the caller, e.g. to pass it on in a stream).
    fn from(e: &DataFusionError) -> Self {
        if let DataFusionError::External(inner) = e.find_root() {
            if let Some(q) = inner.downcast_ref::<QueryError>() {
                return q.clone();
            }
        }
        if let Some(link) = find_link_error(e) {
            return QueryError::new(link.client_sqlstate(), link.to_string());
        }
        let root = e.find_root();
        let text = root.to_string();
        let code = match root {
            DataFusionError::SQL(..) => "42601",
            DataFusionError::NotImplemented(_) => "0A000",
            DataFusionError::SchemaError(se, _) => {
                use datafusion::common::SchemaError;
                match se.as_ref() {
                    SchemaError::FieldNotFound { .. } => "42703",
                    SchemaError::AmbiguousReference { .. } => "42702",
                    SchemaError::DuplicateQualifiedField { .. }
                    | SchemaError::DuplicateUnqualifiedField { .. } => "42701",
                }
            }
            DataFusionError::Plan(m) if m.contains("not found") && m.contains("table") => "42P01",
            DataFusionError::Plan(m)
                if m.contains("No function matches") || m.contains("Invalid function") =>
            {
                "42883"
            }
            DataFusionError::Plan(_) => "42000",
            DataFusionError::ArrowError(a, _) => {
                use datafusion::arrow::error::ArrowError;
                match a.as_ref() {
                    ArrowError::DivideByZero => "22012",
                    ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
                    ArrowError::ArithmeticOverflow(_) => "22003",
                    ArrowError::ComputeError(m) => computed(m),
                    _ => "XX000",
                }
            }
            DataFusionError::Execution(m) => computed(m),
            DataFusionError::ResourcesExhausted(_) => "53200",
            _ => "XX000",
        };
        // DataFusion's "table 'x' not found" becomes PostgreSQL's wording.
        if code == "42P01" {
            if let Some(start) = text.find('\'') {
                if let Some(len) = text[start + 1..].find('\'') {
                    return QueryError::undefined_table(&text[start + 1..start + 1 + len]);
                }
            }
        }
        // PostgreSQL's wording for a column that is not there. DataFusion's
        // lists every column in scope ("Valid fields are …"), which named
        // columns a user may not read (and PostgreSQL never lists them).
        if let DataFusionError::SchemaError(se, _) = root {
            if let datafusion::common::SchemaError::FieldNotFound { field, .. } = se.as_ref() {
                let message = match &field.relation {
                    Some(relation) => format!("column {relation}.{} does not exist", field.name),
                    None => format!("column \"{}\" does not exist", field.name),
                };
                return QueryError::new("42703", message);
            }
        }
        // PostgreSQL's wording, without the operands Arrow's message names
        // (values of rows, in an error text).
        if let DataFusionError::ArrowError(a, _) = root {
            if let datafusion::arrow::error::ArrowError::ArithmeticOverflow(_) = a.as_ref() {
                return QueryError::new("22003", "value out of range: overflow");
            }
        }
        // A value outside the type it is cast to: PostgreSQL's 22003 and
        // wording, not Arrow's 22P02 naming the value.
        if let DataFusionError::ArrowError(a, _) = root {
            if let datafusion::arrow::error::ArrowError::CastError(m) = a.as_ref() {
                if let Some(message) = cast_out_of_range(m) {
                    return QueryError::new("22003", message);
                }
            }
        }
        // Arrow's wording around a message that says what PostgreSQL's does.
        if let DataFusionError::ArrowError(a, _) = root {
            if let datafusion::arrow::error::ArrowError::ComputeError(m) = a.as_ref() {
                if code != "XX000" {
                    return QueryError::new(code, m.clone());
                }
            }
        }
        let mut message = text
            .strip_prefix("Error during planning: ")
            .or_else(|| text.strip_prefix("SQL error: "))
            .unwrap_or(&text)
            .to_string();
        // Wherever else DataFusion appends the columns in scope.
        if let Some(at) = message.find("Valid fields are") {
            message.truncate(at);
            message = message.trim_end().to_string();
        }
        QueryError::new(code, message)
    }
}

/// PostgreSQL's message for Arrow's cast error `m` when it says a value
/// does not fit its target type (`Can't cast value 10000000000 to type
/// Int32`, `Cannot cast to Decimal128(38, 7). Overflowing on …`).
fn cast_out_of_range(m: &str) -> Option<&'static str> {
    if m.starts_with("Can't cast value") {
        return Some(if m.ends_with("Int16") || m.ends_with("Int8") {
            "smallint out of range"
        } else if m.ends_with("Int32") {
            "integer out of range"
        } else if m.ends_with("Int64") {
            "bigint out of range"
        } else {
            "value out of range"
        });
    }
    (m.starts_with("Cannot cast to Decimal") && m.contains("Overflowing"))
        .then_some("numeric field overflow")
}

/// The SQLSTATE PostgreSQL gives for a value a function or operator could
/// not compute (Arrow's compute errors and DataFusion's execution errors
/// say it in words); XX000 when the words say nothing of the input.
fn computed(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if (m.contains("timestamp") || m.contains("date") || m.contains("interval"))
        && (m.contains("out of range") || m.contains("overflow"))
        || ["month value", "day value", "year value"]
            .iter()
            .any(|field| m.contains(field) && m.contains("out of range"))
    {
        "22008"
    } else if m.contains("overflow") {
        "22003"
    } else if m.contains("square root of a negative")
        || m.contains("raised to a negative power")
        || m.contains("raised to a non-integer power")
    {
        "2201F"
    } else if m.contains("logarithm of") {
        "2201E"
    } else if m.contains("negative count not allowed") {
        "22011"
    } else if m.contains("out of range") || m.contains("invalid unicode scalar value") {
        "22023"
    } else {
        "XX000"
    }
}

/// A link's `(message, sqlstate)` from [`crate::catalog::LinkEntry::ensure_up`].
impl From<(String, String)> for QueryError {
    fn from((message, code): (String, String)) -> Self {
        QueryError::new(&code, message)
    }
}
