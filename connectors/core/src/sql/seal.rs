//! Sealing: a syntax tree rewritten so that printing it gives exactly the
//! text tautan means, whatever its names and values contain.
//!
//! sqlparser prints quoted identifiers and string literals through
//! `EscapeQuotedString`, which does not double a quote that follows a
//! backslash nor one that is already doubled: `\'` and `''` come out as
//! they went in, and a source that reads backslashes literally sees the
//! literal end there. Sealing takes printing out of its hands: every
//! identifier the tree holds becomes a bare identifier whose text is
//! already quoted by [`SourceDialect::quote_identifier`], and every string
//! literal a placeholder whose text is [`SourceDialect::quote_literal`]'s —
//! both of which sqlparser prints verbatim.
//!
//! *Every* identifier and value is reached, not only those in the places a
//! visitor knows about: the tree is walked through its serde form, where
//! an identifier is any object with exactly the fields `value`,
//! `quote_style` and `span`, and a value any object tagged with one of the
//! value kinds. Values of kinds tautan never writes (dollar-quoted, escape
//! strings, byte strings, placeholders, ...) refuse the whole statement.

use datafusion::sql::sqlparser::ast::Statement;
use serde_json::{Map, Value as Json};

use super::quote::is_bare_word;
use super::SourceSqlError;
use crate::SourceDialect;

/// A sealed statement: its tree, its text and the string values it
/// carries.
#[derive(Debug)]
pub(crate) struct Sealed {
    /// The sealed tree: printing it gives [`Self::text`].
    pub statement: Statement,
    /// The text to send.
    pub text: String,
    /// Every string literal of the statement, as its value (not its
    /// quoted form), sorted.
    pub strings: Vec<String>,
}

/// Seals `statement` for `dialect`.
pub(crate) fn seal(
    statement: &Statement,
    dialect: SourceDialect,
) -> Result<Sealed, SourceSqlError> {
    let mut json = serde_json::to_value(statement)
        .map_err(|e| SourceSqlError::unsendable(format!("statement not serializable: {e}")))?;
    let mut sealer = Sealer {
        dialect,
        strings: Vec::new(),
    };
    sealer.walk(&mut json)?;
    let sealed: Statement = serde_json::from_value(json)
        .map_err(|e| SourceSqlError::unsendable(format!("sealed statement not readable: {e}")))?;
    let mut strings = sealer.strings;
    strings.sort();
    Ok(Sealed {
        text: sealed.to_string(),
        statement: sealed,
        strings,
    })
}

/// Value kinds that hold text and that tautan never writes.
const FOREIGN_VALUE_KINDS: &[&str] = &[
    "DollarQuotedString",
    "TripleSingleQuotedString",
    "TripleDoubleQuotedString",
    "EscapedStringLiteral",
    "UnicodeStringLiteral",
    "SingleQuotedByteStringLiteral",
    "DoubleQuotedByteStringLiteral",
    "TripleSingleQuotedByteStringLiteral",
    "TripleDoubleQuotedByteStringLiteral",
    "SingleQuotedRawStringLiteral",
    "DoubleQuotedRawStringLiteral",
    "TripleSingleQuotedRawStringLiteral",
    "TripleDoubleQuotedRawStringLiteral",
    "NationalStringLiteral",
    "QuoteDelimitedStringLiteral",
    "NationalQuoteDelimitedStringLiteral",
    "HexStringLiteral",
    "DoubleQuotedString",
    "Placeholder",
];

struct Sealer {
    dialect: SourceDialect,
    strings: Vec<String>,
}

impl Sealer {
    fn walk(&mut self, node: &mut Json) -> Result<(), SourceSqlError> {
        match node {
            Json::Array(items) => items.iter_mut().try_for_each(|item| self.walk(item)),
            Json::Object(map) => {
                if is_ident(map) {
                    return self.ident(map);
                }
                if map.len() == 1 {
                    if let Some((kind, payload)) = map.iter_mut().next() {
                        match kind.as_str() {
                            // T-SQL's `N'…'` (written by the quoting for
                            // text outside ASCII) is the same value.
                            "SingleQuotedString" | "NationalStringLiteral"
                                if kind == "SingleQuotedString"
                                    || self.dialect == SourceDialect::SqlServer =>
                            {
                                let Json::String(text) = payload else {
                                    return Err(SourceSqlError::unsendable(
                                        "malformed string literal",
                                    ));
                                };
                                let quoted = self
                                    .dialect
                                    .quote_literal(text)
                                    .map_err(|e| SourceSqlError::unsendable(e.to_string()))?;
                                self.strings.push(std::mem::take(text));
                                *map = Map::from_iter([(
                                    "Placeholder".to_string(),
                                    Json::String(quoted),
                                )]);
                                return Ok(());
                            }
                            "Number" => return number(payload),
                            k if FOREIGN_VALUE_KINDS.contains(&k) => {
                                return Err(SourceSqlError::unsendable(format!(
                                    "a value of kind {k}"
                                )))
                            }
                            _ => {}
                        }
                    }
                }
                map.values_mut().try_for_each(|v| self.walk(v))
            }
            _ => Ok(()),
        }
    }

    fn ident(&mut self, map: &mut Map<String, Json>) -> Result<(), SourceSqlError> {
        let value = map.get("value").and_then(Json::as_str).unwrap_or_default();
        let quoted = match map.get("quote_style") {
            Some(Json::Null) | None => {
                // A word the unparser writes bare (function, type,
                // keyword-like names): only plain words are allowed.
                if !is_bare_word(value) {
                    return Err(SourceSqlError::unsendable(format!(
                        "unquoted word {value:?}"
                    )));
                }
                return Ok(());
            }
            Some(_) => self
                .dialect
                .quote_identifier(value)
                .map_err(|e| SourceSqlError::unsendable(e.to_string()))?,
        };
        map.insert("value".into(), Json::String(quoted));
        map.insert("quote_style".into(), Json::Null);
        Ok(())
    }
}

/// An identifier in serde form: exactly `value`, `quote_style`, `span`.
fn is_ident(map: &Map<String, Json>) -> bool {
    map.len() == 3
        && map.get("value").is_some_and(Json::is_string)
        && map.contains_key("quote_style")
        && map.contains_key("span")
}

/// A number literal is printed as its text: it must be a plain decimal.
fn number(payload: &Json) -> Result<(), SourceSqlError> {
    let text = match payload {
        Json::Array(parts) => parts.first().and_then(Json::as_str),
        _ => None,
    };
    let long = match payload {
        Json::Array(parts) => parts.get(1).and_then(Json::as_bool).unwrap_or(false),
        _ => false,
    };
    match text {
        Some(t) if !long && is_plain_number(t) => Ok(()),
        _ => Err(SourceSqlError::unsendable(format!(
            "number literal {payload}"
        ))),
    }
}

/// `-?digits[.digits][e[+-]digits]`
fn is_plain_number(text: &str) -> bool {
    let t = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn numbers() {
        for ok in ["1", "-1", "1.5", "0.000", "1e10", "1.5E-3"] {
            assert!(is_plain_number(ok), "{ok}");
        }
        for bad in ["NaN", "inf", "-inf", "1.", ".5", "1e", "1;", "", "1 OR 1"] {
            assert!(!is_plain_number(bad), "{bad}");
        }
    }

    #[test]
    fn sealed_text_quotes_every_name_and_value() {
        let stmt = Parser::parse_sql(
            &PostgreSqlDialect {},
            r#"SELECT "a""b" AS "x", count(*) FROM "s"."t" AS "u" WHERE "c" = 'it''s' GROUP BY 1"#,
        )
        .unwrap()
        .remove(0);
        let sealed = seal(&stmt, SourceDialect::Postgres).unwrap();
        assert_eq!(
            sealed.text,
            r#"SELECT "a""b" AS "x", count(*) FROM "s"."t" AS "u" WHERE "c" = 'it''s' GROUP BY 1"#
        );
        assert_eq!(sealed.strings, vec!["it's".to_string()]);
        let sealed = seal(&stmt, SourceDialect::MySql).unwrap();
        assert_eq!(
            sealed.text,
            "SELECT `a\"b` AS `x`, count(*) FROM `s`.`t` AS `u` WHERE `c` = 'it''s' GROUP BY 1"
        );
    }
}
