//! Governed access: what a user sees of a table they may read.
//!
//! A grant may carry, besides its tables and columns, a **row filter** (a
//! predicate over the table's columns, which may use the user's declared
//! attributes) and **masks** per column ([`mask`]). For each table the
//! user's catalog hands out, [`crate::grants::Access::policy`] combines the
//! grants matching it into one [`TablePolicy`], and the catalog wraps the
//! table in a [`PolicyTable`]. Every path that reads a table — the wire
//! protocol, cursors, `COPY`, `tautan query`, exports, pulls, the catalogs
//! clients read — goes through the user's catalog, so through the policy.
//!
//! The order is fixed: row filter first, masks next, the user's own
//! predicates last, except those that cannot leak ([`leak_proof`]), which
//! may go to the source with the row filter. [`table`] explains the plan
//! this makes and the barrier that keeps DataFusion's optimizer from
//! reordering it.

pub mod agreement;
pub mod cli;
pub mod federated;
pub mod labels;
pub mod leak_proof;
pub mod mask;
pub mod pattern;
pub mod table;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use mask::{Mask, PseudonymKey};
pub use table::{PolicyExec, PolicyTable};

/// The policy of one table for one user: which rows, and which values
/// masked.
#[derive(Debug, Clone)]
pub struct TablePolicy {
    /// Rows the user may see, as SQL over the table's columns with the
    /// user's attributes already written in as literals; `None`: all rows.
    pub row_filter: Option<String>,
    /// Masks, by column name.
    pub masks: BTreeMap<String, Mask>,
    /// Masks by classification label, for columns carrying it that
    /// [`TablePolicy::masks`] does not name.
    pub label_masks: BTreeMap<String, Mask>,
    /// The grants it comes from (`grant 3 (role analis_kota)`), for plans
    /// and errors.
    pub origin: String,
    /// The custodian's pseudonym key.
    pub key: Arc<PseudonymKey>,
}

impl TablePolicy {
    /// The mask a column is read through: the one naming it, else the one
    /// of the first of its labels that has a mask.
    pub fn mask_for(&self, field: &datafusion::arrow::datatypes::Field) -> Option<&Mask> {
        self.masks.get(field.name()).or_else(|| {
            let labels = labels::of_field(field);
            self.label_masks
                .iter()
                .find(|(label, _)| labels.contains(*label))
                .map(|(_, m)| m)
        })
    }
}

/// `table` as the user may read it: through `policy` when there is one.
pub fn under(
    table: Arc<dyn datafusion::catalog::TableProvider>,
    policy: Option<TablePolicy>,
) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
    Ok(match policy {
        Some(policy) => Arc::new(PolicyTable::new(table, policy)?),
        None => table,
    })
}

/// One value of a user attribute, as a row filter's `{name}` writes it:
/// a quoted SQL string literal, or a comma-separated list of them for a
/// list attribute (to be used inside `IN (...)`).
pub fn attribute_literal(values: &[String]) -> String {
    if values.is_empty() {
        // `x IN (NULL)` matches nothing, as an empty list should.
        return "NULL".into();
    }
    values
        .iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `filter` with every `{name}` replaced by the user's attribute `name`
/// ([`attribute_literal`]); an error names the first attribute the user
/// does not have.
pub fn bind_attributes(
    filter: &str,
    attributes: &BTreeMap<String, Vec<String>>,
) -> Result<String, String> {
    replace_attributes(filter, |name| {
        attributes
            .get(name)
            .map(|values| attribute_literal(values))
            .ok_or_else(|| format!("the user has no attribute `{name}`"))
    })
}

/// `filter` with every `{name}` replaced by what `value` gives for it.
pub fn replace_attributes(
    filter: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(filter.len());
    let mut rest = filter;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("an unclosed `{` in the row filter".into());
        };
        out.push_str(&value(after[..close].trim())?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a row filter (attributes bound) as one SQL expression, always
/// in PostgreSQL's dialect, the one [`attribute_literal`] quotes for
/// (whatever dialect a session plans with).
pub fn parse_row_filter(text: &str) -> Result<datafusion::sql::sqlparser::ast::Expr, String> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let mut parser = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .map_err(|e| format!("row filter: {e}"))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| format!("row filter: {e}"))?;
    if parser.peek_token().token != Token::EOF {
        return Err("row filter: one predicate expected, found more after it".into());
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_written_as_quoted_literals() {
        let attrs: BTreeMap<String, Vec<String>> = [
            (
                "wilayah".to_string(),
                vec!["31.71.01".into(), "o'brien".into()],
            ),
            ("kosong".to_string(), vec![]),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            bind_attributes("kode IN ({wilayah})", &attrs).unwrap(),
            "kode IN ('31.71.01', 'o''brien')"
        );
        assert_eq!(
            bind_attributes("kode IN ({ kosong })", &attrs).unwrap(),
            "kode IN (NULL)"
        );
        assert!(bind_attributes("kode = {instansi}", &attrs).is_err());
        assert!(bind_attributes("kode = {wilayah", &attrs).is_err());
        let mut names = Vec::new();
        let _ = replace_attributes("a = {x} OR b IN ({y})", |n| {
            names.push(n.to_string());
            Ok(String::new())
        });
        assert_eq!(names, vec!["x", "y"]);
    }
}
