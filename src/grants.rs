//! Who may read what: users, roles and table grants from the config.
//!
//! A grant gives a role SELECT on every table matching a pattern, optionally
//! only on some columns. The check runs on table *names*, before planning:
//!
//! * a table no grant of the user matches is **invisible**: it is reported
//!   exactly like a table that does not exist (SQLSTATE 42P01), and catalog
//!   listings leave it out;
//! * a visible table read through a column the grants leave out is
//!   **denied** with SQLSTATE 42501.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use globset::{Glob, GlobMatcher};

use crate::config::FederationConfig;
use crate::policy::{Mask, PseudonymKey, TablePolicy};

/// A fully qualified table name as grants see it: `[link, schema, table]`
/// for a link, `[schema, table]` (e.g. `ref.kecamatan`) for the
/// federation's own schemas.
pub type TableName = Vec<String>;

/// Shows a table name the way a user writes it.
pub fn display_name(name: &[String]) -> String {
    name.join(".")
}

/// One table pattern: a glob per dot-separated part.
#[derive(Debug, Clone)]
pub struct TablePattern {
    text: String,
    parts: Vec<GlobMatcher>,
    /// The last part is a lone `*`: it matches any number of deeper parts.
    open_ended: bool,
}

impl TablePattern {
    /// Parses `link.schema.table`, `ref.*`, `kesehatan.*`, ...
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("empty pattern".into());
        }
        let raw: Vec<&str> = text.split('.').collect();
        if raw.len() > 3 {
            return Err("at most three parts: link.schema.table".into());
        }
        let mut parts = Vec::with_capacity(raw.len());
        for p in &raw {
            if p.is_empty() {
                return Err("empty part".into());
            }
            let glob = Glob::new(p).map_err(|e| e.to_string())?;
            parts.push(glob.compile_matcher());
        }
        Ok(Self {
            text: text.to_string(),
            open_ended: raw.last() == Some(&"*"),
            parts,
        })
    }

    /// Whether the pattern covers `name`.
    pub fn matches(&self, name: &[String]) -> bool {
        let n = self.parts.len();
        if name.len() == n {
            return self.parts.iter().zip(name).all(|(g, s)| g.is_match(s));
        }
        if self.open_ended && name.len() > n {
            return self.parts[..n - 1]
                .iter()
                .zip(name)
                .all(|(g, s)| g.is_match(s));
        }
        false
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// One grant as it applies to a user.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The role the grant was given to.
    pub role: String,
    /// Which tables.
    pub pattern: TablePattern,
    /// Which columns; `None` for all.
    pub columns: Option<BTreeSet<String>>,
    /// The grant's position in the config (1-based), for messages.
    pub grant: usize,
    /// Only rows matching this predicate (SQL, attributes not yet bound).
    pub row_filter: Option<String>,
    /// Masks by column.
    pub masks: BTreeMap<String, Mask>,
}

impl Rule {
    /// A grant of the whole table: no row filter, no masks.
    fn unrestricted(&self) -> bool {
        self.row_filter.is_none() && self.masks.is_empty()
    }
}

/// What a user may do with one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableAccess {
    /// The table does not exist for this user.
    Invisible,
    /// Every column.
    All,
    /// Only these columns.
    Columns(BTreeSet<String>),
}

impl TableAccess {
    /// Whether `column` may be read.
    pub fn allows_column(&self, column: &str) -> bool {
        match self {
            TableAccess::Invisible => false,
            TableAccess::All => true,
            TableAccess::Columns(c) => c.contains(column),
        }
    }
}

/// Everything one user may read.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The user's login.
    pub user: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// Grants of those roles.
    pub rules: Vec<Rule>,
    /// The user's attributes, for row filters.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The custodian's pseudonym key; `None` only for someone who can read
    /// nothing masked.
    pub key: Option<Arc<PseudonymKey>>,
}

impl Access {
    /// Access to one table, the union of every matching grant.
    pub fn table(&self, name: &[String]) -> TableAccess {
        let mut columns: Option<BTreeSet<String>> = None;
        let mut visible = false;
        for rule in self.rules.iter().filter(|r| r.pattern.matches(name)) {
            visible = true;
            match &rule.columns {
                None => return TableAccess::All,
                Some(c) => columns
                    .get_or_insert_with(BTreeSet::new)
                    .extend(c.iter().cloned()),
            }
        }
        match (visible, columns) {
            (false, _) => TableAccess::Invisible,
            (true, Some(c)) => TableAccess::Columns(c),
            (true, None) => TableAccess::All,
        }
    }

    /// The row filter and masks the user reads `name` under, or `None`
    /// when some grant gives the whole table.
    ///
    /// Several grants of one table combine as a union: rows matching any
    /// of their row filters; a column masked by any of them stays masked
    /// (by the first grant's mask when they differ). A cell is shown
    /// unmasked only if every matching grant leaves its column unmasked
    /// and one of them covers its row.
    pub fn policy(&self, name: &[String]) -> Option<TablePolicy> {
        let matching: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.pattern.matches(name))
            .collect();
        if matching.is_empty() || matching.iter().any(|r| r.unrestricted()) {
            return None;
        }
        let mut filters = Vec::new();
        let mut all_rows = false;
        let mut masks = BTreeMap::new();
        for rule in &matching {
            match &rule.row_filter {
                None => all_rows = true,
                Some(f) => match crate::policy::bind_attributes(f, &self.attributes) {
                    Ok(bound) => filters.push(format!("({bound})")),
                    Err(e) => {
                        // The grant then covers no row for this user.
                        tracing::warn!(user = %self.user, grant = rule.grant, error = %e, "row filter not applicable");
                        filters.push("(FALSE)".into());
                    }
                },
            }
            for (column, mask) in &rule.masks {
                masks.entry(column.clone()).or_insert_with(|| mask.clone());
            }
        }
        let origin = matching
            .iter()
            .map(|r| format!("grant {} (role {})", r.grant, r.role))
            .collect::<Vec<_>>()
            .join(", ");
        Some(TablePolicy {
            row_filter: (!all_rows).then(|| filters.join(" OR ")),
            masks,
            origin,
            key: self
                .key
                .clone()
                .unwrap_or_else(|| Arc::new(PseudonymKey::random())),
        })
    }

    /// Whether any grant could match a table under `prefix` (a link, or a
    /// link's schema): used to hide whole catalogs and schemas.
    pub fn may_see_prefix(&self, prefix: &[String]) -> bool {
        self.rules.iter().any(|r| {
            let n = r.pattern.parts.len();
            let k = prefix.len().min(n);
            let head_ok = r.pattern.parts[..k]
                .iter()
                .zip(prefix)
                .all(|(g, s)| g.is_match(s));
            // A shorter pattern only reaches deeper through an open end.
            head_ok && (n > prefix.len() || r.pattern.open_ended)
        })
    }
}

/// Grants of every user, built from the config.
#[derive(Debug)]
pub struct Grants {
    users: BTreeMap<String, Access>,
    key: Arc<PseudonymKey>,
}

impl Grants {
    /// Collects the rules per user; fails when the pseudonym key `[policy]`
    /// names cannot be read.
    pub fn from_config(cfg: &FederationConfig) -> Result<Self, String> {
        let key = Arc::new(cfg.pseudonym_key()?);
        let users = cfg
            .users
            .iter()
            .map(|(name, user)| {
                let roles = user.get_ref().roles.clone();
                (name.clone(), Self::for_roles(cfg, name, &roles, &key))
            })
            .collect();
        Ok(Self { users, key })
    }

    /// The custodian's pseudonym key.
    pub fn key(&self) -> &Arc<PseudonymKey> {
        &self.key
    }

    /// The access of someone holding `roles`: the grants of those roles,
    /// plus `mat.<pull>` for every pull they own or may read. A configured
    /// user's attributes apply; pulls and tools have none.
    pub fn for_roles(
        cfg: &FederationConfig,
        user: &str,
        roles: &[String],
        key: &Arc<PseudonymKey>,
    ) -> Access {
        let mut rules = Vec::new();
        for (index, grant) in cfg.grants.iter().enumerate() {
            let g = grant.get_ref();
            if !roles.contains(&g.role) {
                continue;
            }
            for t in &g.tables {
                // Patterns were validated when the config was loaded.
                if let Ok(pattern) = TablePattern::parse(t) {
                    rules.push(Rule {
                        role: g.role.clone(),
                        pattern,
                        columns: g.columns.as_ref().map(|c| c.iter().cloned().collect()),
                        grant: index + 1,
                        row_filter: g.row_filter.clone(),
                        // Masks were validated when the config was loaded.
                        masks: g
                            .masks
                            .iter()
                            .filter_map(|(c, m)| Mask::parse(m).ok().map(|m| (c.clone(), m)))
                            .collect(),
                    });
                }
            }
        }
        for (name, pull) in &cfg.pulls {
            let p = pull.get_ref();
            let role = std::iter::once(&p.owner)
                .chain(&p.readers)
                .find(|r| roles.contains(r));
            if let (Some(role), Ok(pattern)) = (role, TablePattern::parse(&format!("mat.{name}"))) {
                rules.push(Rule {
                    role: role.clone(),
                    pattern,
                    columns: None,
                    grant: 0,
                    row_filter: None,
                    masks: BTreeMap::new(),
                });
            }
        }
        let attributes = cfg
            .users
            .get(user)
            .map(|u| {
                u.get_ref()
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.values()))
                    .collect()
            })
            .unwrap_or_default();
        Access {
            user: user.to_string(),
            roles: roles.to_vec(),
            rules,
            attributes,
            key: Some(key.clone()),
        }
    }

    /// The access of `user`; an unknown user sees nothing.
    pub fn access(&self, user: &str) -> Access {
        self.users.get(user).cloned().unwrap_or_else(|| Access {
            user: user.to_string(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> TableName {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn patterns() {
        let p = TablePattern::parse("kesehatan.*").unwrap();
        assert!(p.matches(&n("kesehatan.kesehatan.kunjungan")));
        assert!(!p.matches(&n("kependudukan.public.penduduk")));
        let p = TablePattern::parse("ref.*").unwrap();
        assert!(p.matches(&n("ref.kecamatan")));
        let p = TablePattern::parse("kependudukan.public.penduduk_*").unwrap();
        assert!(p.matches(&n("kependudukan.public.penduduk_agregat")));
        assert!(!p.matches(&n("kependudukan.public.penduduk")));
        assert!(!p.matches(&n("kependudukan.other.penduduk_x")));
    }

    #[test]
    fn column_grants_union_and_all_wins() {
        let rule = |p: &str, cols: Option<&[&str]>| Rule {
            role: "r".into(),
            pattern: TablePattern::parse(p).unwrap(),
            columns: cols.map(|c| c.iter().map(|s| s.to_string()).collect()),
            grant: 1,
            row_filter: None,
            masks: BTreeMap::new(),
        };
        let a = Access {
            user: "u".into(),
            roles: vec!["r".into()],
            rules: vec![
                rule("pg.public.t", Some(&["a"])),
                rule("pg.public.t", Some(&["b"])),
            ],
            ..Default::default()
        };
        let t = a.table(&n("pg.public.t"));
        assert!(t.allows_column("a") && t.allows_column("b") && !t.allows_column("nik"));
        assert_eq!(a.table(&n("pg.public.u")), TableAccess::Invisible);
        assert!(a.may_see_prefix(&n("pg")));
        assert!(a.may_see_prefix(&n("pg.public")));
        assert!(!a.may_see_prefix(&n("my")));
    }

    #[test]
    fn policies_of_several_grants_combine_as_a_union() {
        let rule = |filter: Option<&str>, masks: &[(&str, Mask)]| Rule {
            role: "r".into(),
            pattern: TablePattern::parse("pg.public.t").unwrap(),
            columns: None,
            grant: 7,
            row_filter: filter.map(str::to_string),
            masks: masks
                .iter()
                .map(|(c, m)| (c.to_string(), m.clone()))
                .collect(),
        };
        let access = |rules: Vec<Rule>| Access {
            user: "u".into(),
            roles: vec!["r".into()],
            rules,
            attributes: [("kota".to_string(), vec!["31.71".to_string()])]
                .into_iter()
                .collect(),
            key: None,
        };
        let t = n("pg.public.t");
        // One grant: its filter (attributes bound) and masks.
        let one = access(vec![rule(
            Some("kode LIKE {kota}"),
            &[("nik", Mask::Pseudonym)],
        )]);
        let p = one.policy(&t).unwrap();
        assert_eq!(p.row_filter.as_deref(), Some("(kode LIKE '31.71')"));
        assert_eq!(p.masks.get("nik"), Some(&Mask::Pseudonym));
        assert!(p.origin.contains("grant 7"));
        // Two grants: rows of either filter, masks of both.
        let two = access(vec![
            rule(Some("a = 1"), &[("nik", Mask::Null)]),
            rule(
                Some("b = 2"),
                &[("nama", Mask::Pseudonym), ("nik", Mask::Year)],
            ),
        ]);
        let p = two.policy(&t).unwrap();
        assert_eq!(p.row_filter.as_deref(), Some("(a = 1) OR (b = 2)"));
        assert_eq!(p.masks.get("nik"), Some(&Mask::Null));
        assert_eq!(p.masks.get("nama"), Some(&Mask::Pseudonym));
        // A grant of all rows lifts the row filter, not the masks.
        let rows = access(vec![
            rule(Some("a = 1"), &[]),
            rule(None, &[("nik", Mask::Null)]),
        ]);
        let p = rows.policy(&t).unwrap();
        assert_eq!(p.row_filter, None);
        assert_eq!(p.masks.len(), 1);
        // An unrestricted grant lifts the policy.
        let all = access(vec![rule(Some("a = 1"), &[]), rule(None, &[])]);
        assert!(all.policy(&t).is_none());
        // A filter naming an attribute the user lacks covers no row.
        let lacking = access(vec![rule(Some("kode = {instansi}"), &[])]);
        assert_eq!(
            lacking.policy(&t).unwrap().row_filter.as_deref(),
            Some("(FALSE)")
        );
    }
}
