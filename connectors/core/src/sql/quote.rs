//! Dialect-exact quoting of identifiers and string literals.
//!
//! tautan writes every name and every string value it sends to a source
//! itself, for the exact lexical rules the source's session runs under:
//!
//! | source | identifier | string literal | session guarantees |
//! |---|---|---|---|
//! | PostgreSQL | `"…"`, `"` doubled | `'…'`, `'` doubled, `\` literal | `standard_conforming_strings=on` in the startup options |
//! | MySQL/MariaDB | `` `…` ``, `` ` `` doubled | `'…'`, `'` doubled, `\` literal | `NO_BACKSLASH_ESCAPES` set on every checkout from the pool |
//! | SQL Server | `[…]`, `]` doubled | `'…'`, or `N'…'` when the text holds anything outside ASCII; `'` doubled, `\` literal | none needed: T-SQL has no escape character in either |
//!
//! Neither form has an escape character, so the only way out of a quoted
//! token is the quote itself, and every quote inside is doubled. Values a
//! source cannot hold in its text (the NUL character) are refused: the
//! operation that needed them stays in DataFusion.

use std::fmt;

use crate::SourceDialect;

/// Why a value or name cannot be written for a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unquotable {
    /// Text with a NUL character: neither source's text types hold one, and
    /// neither protocol carries it inside a statement.
    Nul,
    /// A bare (unquoted) word that is not a plain SQL word.
    BareWord(String),
}

impl fmt::Display for Unquotable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unquotable::Nul => write!(f, "text with a NUL character"),
            Unquotable::BareWord(w) => write!(f, "unquoted word {w:?}"),
        }
    }
}

fn no_nul(text: &str) -> Result<(), Unquotable> {
    if text.contains('\0') {
        Err(Unquotable::Nul)
    } else {
        Ok(())
    }
}

fn doubled(text: &str, quote: char) -> String {
    enclosed(text, quote, quote)
}

/// `text` between `open` and `close`, with every `close` inside doubled.
fn enclosed(text: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(open);
    for c in text.chars() {
        out.push(c);
        if c == close {
            out.push(close);
        }
    }
    out.push(close);
    out
}

impl SourceDialect {
    /// `ident` as a quoted identifier of this source.
    pub fn quote_identifier(&self, ident: &str) -> Result<String, Unquotable> {
        no_nul(ident)?;
        Ok(match self {
            SourceDialect::Postgres => doubled(ident, '"'),
            SourceDialect::MySql => doubled(ident, '`'),
            SourceDialect::SqlServer => bracketed(ident),
        })
    }

    /// `text` as a string literal of this source (see the module docs for
    /// the session settings this relies on).
    pub fn quote_literal(&self, text: &str) -> Result<String, Unquotable> {
        no_nul(text)?;
        Ok(match self {
            // A plain '…' literal is read in the database's code page:
            // anything outside ASCII could become '?'. N'…' is Unicode.
            SourceDialect::SqlServer if !text.is_ascii() => {
                format!("N{}", doubled(text, '\''))
            }
            _ => doubled(text, '\''),
        })
    }
}

/// `[ident]` with every `]` doubled (T-SQL's delimited identifier; `[`
/// inside needs nothing).
fn bracketed(ident: &str) -> String {
    enclosed(ident, '[', ']')
}

/// Whether `word` may be written without quotes: a plain ASCII word (a
/// function or type name the unparser writes bare).
pub fn is_bare_word(word: &str) -> bool {
    let mut chars = word.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_and_backslashes_kept() {
        let pg = SourceDialect::Postgres;
        let my = SourceDialect::MySql;
        assert_eq!(pg.quote_literal(r"\'").unwrap(), r"'\'''");
        assert_eq!(my.quote_literal("''").unwrap(), "''''''");
        assert_eq!(pg.quote_identifier(r#"a\""#).unwrap(), r#""a\""""#);
        assert_eq!(my.quote_identifier("r\\`").unwrap(), "`r\\```");
        assert_eq!(pg.quote_literal("a\0b"), Err(Unquotable::Nul));
        assert_eq!(my.quote_identifier("\0"), Err(Unquotable::Nul));
        assert!(is_bare_word("count") && is_bare_word("_x1"));
        assert!(!is_bare_word("1x") && !is_bare_word("a b") && !is_bare_word(""));
        let ms = SourceDialect::SqlServer;
        assert_eq!(ms.quote_identifier("a]b[c").unwrap(), "[a]]b[c]");
        assert_eq!(ms.quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(ms.quote_literal("Śląsk'").unwrap(), "N'Śląsk'''");
        assert_eq!(ms.quote_literal("\0"), Err(Unquotable::Nul));
    }
}
