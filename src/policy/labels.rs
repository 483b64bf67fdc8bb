//! Classification: labels the producing agency gives its tables and
//! columns (Pergub 6/2020 art. 5(1)d: the producer classifies its data).
//!
//! Labels come from two places, and are the union of both:
//!
//! - the link's config: `labels = { "public.penduduk.nik" = "pribadi",
//!   "public.penduduk" = "terbatas" }` (`schema.table.column` for a column,
//!   `schema.table` for a table; one label or a list; a file link's tables
//!   are in schema `public`);
//! - the source's own column comments, by convention: a comment holding
//!   `[label: pribadi]` (or `[label: pribadi, rahasia]`).
//!
//! Label names are the custodian's to define (`[policy] labels`); tautan
//! ships [`DEFAULT_LABELS`]. A label is kept in the column's Arrow field
//! metadata ([`LABELS_KEY`]) and added to the column's description, so
//! `system.columns`, `pg_description` (psql's `\d+`, DBeaver's comments)
//! and grants all see it; a grant or agreement can mask by label
//! (`mask_labels = { pribadi = "pseudonym" }`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use tautan_connector::types::COMMENT_KEY;
use tautan_connector::RemoteTableDef;

/// Field (and schema) metadata key holding a column's (table's) labels,
/// comma-separated.
pub const LABELS_KEY: &str = "tautan.labels";

/// The labels tautan knows when `[policy] labels` is not set: public,
/// limited, secret, and personal data (NIK, names, ...).
pub const DEFAULT_LABELS: &[&str] = &["publik", "terbatas", "rahasia", "pribadi"];

/// Labels of one link, from its config: by `schema.table` and by
/// `schema.table.column`.
#[derive(Debug, Clone, Default)]
pub struct Classification {
    tables: BTreeMap<(String, String), BTreeSet<String>>,
    columns: BTreeMap<(String, String, String), BTreeSet<String>>,
}

impl Classification {
    /// Reads a link's `labels` table; keys must be `schema.table` or
    /// `schema.table.column`.
    pub fn from_config(labels: &BTreeMap<String, Vec<String>>) -> Result<Self, String> {
        let mut out = Self::default();
        for (key, values) in labels {
            let parts: Vec<&str> = key.split('.').collect();
            let set: BTreeSet<String> = values.iter().map(|v| v.trim().to_string()).collect();
            match parts.as_slice() {
                [s, t] => {
                    out.tables
                        .entry((s.to_string(), t.to_string()))
                        .or_default()
                        .extend(set);
                }
                [s, t, c] => {
                    out.columns
                        .entry((s.to_string(), t.to_string(), c.to_string()))
                        .or_default()
                        .extend(set);
                }
                _ => {
                    return Err(format!(
                        "labels key `{key}`: write schema.table or schema.table.column"
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Writes the labels of `def`'s table and columns (the config's and
    /// those its column comments carry) into its schema's metadata.
    pub fn apply(&self, def: &mut RemoteTableDef) {
        def.arrow_schema = self.labeled(&def.schema, &def.name, &def.arrow_schema);
    }

    /// `arrow` (the schema of table `schema.table`) with the labels of the
    /// table and its columns in its metadata: the config's, and those the
    /// columns' comments carry.
    pub fn labeled(&self, schema: &str, table: &str, arrow: &Schema) -> SchemaRef {
        let key = |c: &str| (schema.to_string(), table.to_string(), c.to_string());
        let fields: Vec<Arc<Field>> = arrow
            .fields()
            .iter()
            .map(|f| {
                let mut labels: BTreeSet<String> = f
                    .metadata()
                    .get(COMMENT_KEY)
                    .map(|c| from_comment(c))
                    .unwrap_or_default();
                let configured = self.columns.get(&key(f.name()));
                labels.extend(configured.into_iter().flatten().cloned());
                if labels.is_empty() {
                    return f.clone();
                }
                let mut md = f.metadata().clone();
                md.insert(LABELS_KEY.to_string(), join(&labels));
                // Shown with the description clients read.
                let comment = md.get(COMMENT_KEY).cloned().unwrap_or_default();
                if !comment.contains("[label:") {
                    let shown = format!("[label: {}]", join(&labels));
                    md.insert(
                        COMMENT_KEY.to_string(),
                        if comment.is_empty() {
                            shown
                        } else {
                            format!("{comment} {shown}")
                        },
                    );
                }
                Arc::new(f.as_ref().clone().with_metadata(md))
            })
            .collect();
        let mut metadata = arrow.metadata().clone();
        if let Some(t) = self.tables.get(&(schema.to_string(), table.to_string())) {
            metadata.insert(LABELS_KEY.to_string(), join(t));
        }
        Arc::new(Schema::new_with_metadata(fields, metadata))
    }

    /// Whether the config labels anything (file links skip relabeling
    /// when not).
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.columns.is_empty()
    }

    /// Every label the config names.
    pub fn names(&self) -> BTreeSet<String> {
        self.tables
            .values()
            .chain(self.columns.values())
            .flatten()
            .cloned()
            .collect()
    }
}

fn join(labels: &BTreeSet<String>) -> String {
    labels.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The labels a comment carries: `[label: a, b]`.
pub fn from_comment(comment: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = comment;
    while let Some(start) = rest.find("[label:") {
        let after = &rest[start + "[label:".len()..];
        let Some(end) = after.find(']') else { break };
        out.extend(
            after[..end]
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        rest = &after[end + 1..];
    }
    out
}

/// The labels of a field, from its metadata.
pub fn of_field(field: &Field) -> BTreeSet<String> {
    field
        .metadata()
        .get(LABELS_KEY)
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn labels_come_from_the_config_and_from_comments() {
        let config: BTreeMap<String, Vec<String>> = [
            (
                "public.penduduk.nik".to_string(),
                vec!["pribadi".to_string()],
            ),
            ("public.penduduk".to_string(), vec!["terbatas".to_string()]),
        ]
        .into_iter()
        .collect();
        let c = Classification::from_config(&config).unwrap();
        let commented = Field::new("nama", DataType::Utf8, true).with_metadata(
            [(
                COMMENT_KEY.to_string(),
                "Nama lengkap [label: pribadi, rahasia]".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        let mut def = RemoteTableDef {
            schema: "public".into(),
            name: "penduduk".into(),
            arrow_schema: Arc::new(Schema::new(vec![
                Field::new("nik", DataType::Utf8, false),
                commented,
                Field::new("kode", DataType::Utf8, true),
            ])),
            reads: vec![],
            is_view: false,
            comment: None,
            pages: None,
            estimates: Default::default(),
        };
        c.apply(&mut def);
        let s = &def.arrow_schema;
        assert_eq!(of_field(s.field(0)), ["pribadi".to_string()].into());
        assert_eq!(
            s.field(0).metadata().get(COMMENT_KEY).map(String::as_str),
            Some("[label: pribadi]")
        );
        assert_eq!(
            of_field(s.field(1)),
            ["pribadi".to_string(), "rahasia".to_string()].into()
        );
        assert!(of_field(s.field(2)).is_empty());
        assert_eq!(
            s.metadata().get(LABELS_KEY).map(String::as_str),
            Some("terbatas")
        );
        assert!(Classification::from_config(
            &[("penduduk".to_string(), vec![])].into_iter().collect()
        )
        .is_err());
        assert_eq!(from_comment("no labels here"), BTreeSet::new());
    }
}
