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

use crate::config::FederationConfig;
use crate::policy::agreement::{Agreement, Status};
use crate::policy::{Mask, PseudonymKey, TablePolicy};

/// Masks as written (validated when the config or agreement was loaded;
/// one that does not parse is left out here and reported there).
fn parse_masks(masks: &BTreeMap<String, String>) -> BTreeMap<String, Mask> {
    masks
        .iter()
        .filter_map(|(c, m)| Mask::parse(m).ok().map(|m| (c.clone(), m)))
        .collect()
}

/// A fully qualified table name as grants see it: `[link, schema, table]`
/// for a link, `[schema, table]` (e.g. `ref.kecamatan`) for the
/// federation's own schemas.
pub type TableName = Vec<String>;

/// Shows a table name the way a user writes it.
pub fn display_name(name: &[String]) -> String {
    name.join(".")
}

pub use crate::policy::pattern::TablePattern;

/// One grant as it applies to a user.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The role the grant was given to.
    pub role: String,
    /// Which tables.
    pub pattern: TablePattern,
    /// Which columns; `None` for all.
    pub columns: Option<BTreeSet<String>>,
    /// Where the rule comes from, for plans and messages.
    pub origin: Origin,
    /// Only rows matching this predicate (SQL, attributes not yet bound).
    pub row_filter: Option<String>,
    /// Masks by column.
    pub masks: BTreeMap<String, Mask>,
    /// Masks by classification label.
    pub mask_labels: BTreeMap<String, Mask>,
}

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `[[grants]]` entry: its position in the config (from 1), its role.
    Grant {
        /// Position in the config.
        number: usize,
        /// The role it gives to.
        role: String,
    },
    /// A signed agreement in force, by id.
    Agreement(String),
    /// The readers list of a pull, by pull name.
    Pull(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Grant { number, role } => write!(f, "grant {number} (role {role})"),
            Origin::Agreement(id) => write!(f, "agreement {id}"),
            Origin::Pull(name) => write!(f, "pull {name}"),
        }
    }
}

impl Rule {
    /// A grant of the whole table: no row filter, no masks.
    fn unrestricted(&self) -> bool {
        self.row_filter.is_none() && self.masks.is_empty() && self.mask_labels.is_empty()
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
    /// Links whose producer this user works for (their audit records).
    pub producer_of: Vec<String>,
    /// The custodian's pseudonym key; `None` only for someone who can read
    /// nothing masked.
    pub key: Option<Arc<PseudonymKey>>,
    /// Agreements naming this user that grant nothing now (expired, not
    /// yet valid, unsigned, tampered): their tables and why, so a query
    /// of such a table is told which agreement and what is wrong.
    pub lapsed: Vec<(TablePattern, String)>,
    /// Every agreement with its standing (`system.agreements` shows the
    /// user those naming them; the custodian sees all).
    pub agreements: Arc<Vec<Agreement>>,
    /// The policy version this access was built from.
    pub version: Option<PolicyVersion>,
    /// `rules` indexed by exact table name (built on first use): with
    /// hundreds of agreements, finding a table's rules is a lookup, not a
    /// glob match per rule.
    index: std::sync::OnceLock<RuleIndex>,
    /// What a single sign-on token said of the user, when the login was
    /// one: a reloaded policy is applied to the same claims.
    pub claims: Option<Arc<Identity>>,
}

/// Who a single sign-on token says its bearer is ([`crate::oidc`]): the
/// user, and the roles and attributes its claims give (only those the
/// custodian mapped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user the token names.
    pub user: String,
    /// Roles its groups give.
    pub roles: Vec<String>,
    /// Attributes its claims give.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// Which rules can match a name: by exact name, plus every rule with a
/// wildcard.
#[derive(Debug, Clone, Default)]
struct RuleIndex {
    exact: std::collections::HashMap<Vec<String>, Vec<usize>>,
    globbed: Vec<usize>,
}

/// A session's access, replaced as a whole when the policy is reloaded
/// (between statements; see [`crate::engine::Session`]).
#[derive(Debug)]
pub struct AccessCell(std::sync::RwLock<Arc<Access>>);

impl AccessCell {
    /// A cell holding `access`.
    pub fn new(access: Access) -> Self {
        Self(std::sync::RwLock::new(Arc::new(access)))
    }

    /// The access now.
    pub fn get(&self) -> Arc<Access> {
        match self.0.read() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the access.
    pub fn set(&self, access: Access) {
        let access = Arc::new(access);
        match self.0.write() {
            Ok(mut a) => *a = access,
            Err(poisoned) => *poisoned.into_inner() = access,
        }
    }
}

impl Access {
    /// The rules matching `name`, in the order they were given.
    fn matching(&self, name: &[String]) -> Vec<&Rule> {
        let index = self.index.get_or_init(|| {
            let mut index = RuleIndex::default();
            for (i, rule) in self.rules.iter().enumerate() {
                match rule.pattern.literal() {
                    Some(exact) => index.exact.entry(exact).or_default().push(i),
                    None => index.globbed.push(i),
                }
            }
            index
        });
        let mut found: Vec<usize> = index
            .exact
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .chain(
                index
                    .globbed
                    .iter()
                    .copied()
                    .filter(|i| self.rules[*i].pattern.matches(name)),
            )
            .collect();
        found.sort_unstable();
        found.into_iter().map(|i| &self.rules[i]).collect()
    }

    /// Access to one table, the union of every matching grant.
    pub fn table(&self, name: &[String]) -> TableAccess {
        let mut columns: Option<BTreeSet<String>> = None;
        let mut visible = false;
        for rule in self.matching(name) {
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
        let matching: Vec<&Rule> = self.matching(name);
        // A pull's readers may see its snapshot; a grant of the snapshot
        // with a policy still applies to them (their own policy, never the
        // owner's rights).
        let is_reader = |r: &&Rule| matches!(r.origin, Origin::Pull(_));
        let policed = matching.iter().any(|r| !r.unrestricted());
        if matching.is_empty()
            || matching
                .iter()
                .any(|r| r.unrestricted() && !(policed && is_reader(r)))
        {
            return None;
        }
        let matching: Vec<&Rule> = matching.into_iter().filter(|r| !is_reader(r)).collect();
        let mut filters = Vec::new();
        let mut all_rows = false;
        let mut masks = BTreeMap::new();
        let mut label_masks = BTreeMap::new();
        for rule in &matching {
            match &rule.row_filter {
                None => all_rows = true,
                Some(f) => match crate::policy::bind_attributes(f, &self.attributes) {
                    Ok(bound) => filters.push(format!("({bound})")),
                    Err(e) => {
                        // The grant then covers no row for this user.
                        tracing::warn!(user = %self.user, origin = %rule.origin, error = %e, "row filter not applicable");
                        filters.push("(FALSE)".into());
                    }
                },
            }
            for (column, mask) in &rule.masks {
                masks.entry(column.clone()).or_insert_with(|| mask.clone());
            }
            for (label, mask) in &rule.mask_labels {
                label_masks
                    .entry(label.clone())
                    .or_insert_with(|| mask.clone());
            }
        }
        let origin = matching
            .iter()
            .map(|r| r.origin.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Some(TablePolicy {
            row_filter: (!all_rows).then(|| filters.join(" OR ")),
            masks,
            label_masks,
            origin,
            key: self
                .key
                .clone()
                .unwrap_or_else(|| Arc::new(PseudonymKey::random())),
        })
    }

    /// The agreements among the rules giving `name` (`agreement PKS-…,
    /// agreement PKS-…`), for denials that say which agreement applies.
    pub fn agreements_of(&self, name: &[String]) -> Option<String> {
        let ids: Vec<String> = self
            .matching(name)
            .into_iter()
            .filter(|r| matches!(r.origin, Origin::Agreement(_)))
            .map(|r| r.origin.to_string())
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    }

    /// Whether the user holds a grant of every table (`tables = ["*"]`):
    /// the custodian's staff.
    pub fn is_custodian(&self) -> bool {
        self.rules.iter().any(|r| r.pattern.as_str() == "*")
    }

    /// Whether `agreement` is one this user may see listed: it names the
    /// user or one of their roles, or the user is the custodian's.
    pub fn sees_agreement(&self, agreement: &Agreement) -> bool {
        if self.is_custodian() {
            return true;
        }
        agreement.file.as_ref().is_some_and(|f| {
            f.terms.user.as_deref() == Some(self.user.as_str())
                || f.terms
                    .role
                    .as_ref()
                    .is_some_and(|r| self.roles.contains(r))
        })
    }

    /// Why `name`, a table no rule lets the user read, is denied, when an
    /// agreement naming the user covers it but grants nothing now.
    pub fn lapsed(&self, name: &[String]) -> Option<&str> {
        self.lapsed
            .iter()
            .find(|(p, _)| p.matches(name))
            .map(|(_, why)| why.as_str())
    }

    /// Whether any grant could match a table under `prefix` (a link, or a
    /// link's schema): used to hide whole catalogs and schemas.
    pub fn may_see_prefix(&self, prefix: &[String]) -> bool {
        self.rules.iter().any(|r| r.pattern.may_match_under(prefix))
    }
}

/// Grants of every user, built from the config and the agreements: one
/// *policy version*. A reload builds a new one; a statement runs under the
/// version its session held when it started.
#[derive(Debug)]
pub struct Grants {
    users: BTreeMap<String, Access>,
    key: Arc<PseudonymKey>,
    agreements: Arc<Vec<Agreement>>,
    config: Arc<FederationConfig>,
    version: PolicyVersion,
}

/// Which policy a statement ran under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// 1 at start, one more at each successful reload.
    pub number: u64,
    /// When it was loaded.
    pub loaded_at: std::time::SystemTime,
}

impl Grants {
    /// Collects the rules per user; fails when the pseudonym key or the
    /// signers' public keys `[policy]` and the links name cannot be read.
    pub fn from_config(cfg: Arc<FederationConfig>, number: u64) -> Result<Self, String> {
        let key = Arc::new(cfg.pseudonym_key()?);
        let agreements = Arc::new(cfg.agreements()?);
        for a in agreements.iter() {
            match &a.status {
                Status::Valid => {
                    tracing::info!(agreement = %a.id(), "agreement in force")
                }
                other => {
                    tracing::warn!(agreement = %a.id(), path = %a.path.display(), status = %other, "agreement grants nothing")
                }
            }
        }
        let mut grants = Self {
            users: BTreeMap::new(),
            key,
            agreements,
            config: cfg.clone(),
            version: PolicyVersion {
                number,
                loaded_at: std::time::SystemTime::now(),
            },
        };
        let users = cfg
            .users
            .iter()
            .map(|(name, user)| {
                let roles = user.get_ref().roles.clone();
                (name.clone(), grants.for_roles(name, &roles))
            })
            .collect();
        grants.users = users;
        Ok(grants)
    }

    /// Whether `user` is a configured user of this policy.
    pub fn is_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// This policy's version.
    pub fn version(&self) -> &PolicyVersion {
        &self.version
    }

    /// The custodian's pseudonym key.
    pub fn key(&self) -> &Arc<PseudonymKey> {
        &self.key
    }

    /// Every agreement of `[policy] agreements_dir`, with its standing.
    pub fn agreements(&self) -> &Arc<Vec<Agreement>> {
        &self.agreements
    }

    /// The access of someone holding `roles`: the grants of those roles,
    /// the agreements in force naming the user or one of the roles, plus
    /// `mat.<pull>` for every pull they own or may read. A configured
    /// user's attributes apply; pulls and tools have none.
    pub fn for_roles(&self, user: &str, roles: &[String]) -> Access {
        let cfg = &self.config;
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
                        origin: Origin::Grant {
                            number: index + 1,
                            role: g.role.clone(),
                        },
                        row_filter: g.row_filter.clone(),
                        // Masks were validated when the config was loaded.
                        masks: parse_masks(&g.masks),
                        mask_labels: parse_masks(&g.mask_labels),
                    });
                }
            }
        }
        let mut lapsed = Vec::new();
        for agreement in self.agreements.iter() {
            let Some(file) = &agreement.file else {
                continue;
            };
            let terms = &file.terms;
            let names_user = terms.user.as_deref() == Some(user)
                || terms.role.as_ref().is_some_and(|r| roles.contains(r));
            if !names_user {
                continue;
            }
            let patterns = terms
                .tables
                .iter()
                .filter_map(|t| TablePattern::parse(t).ok());
            if agreement.status != Status::Valid {
                let why = format!("agreement {} {}", terms.id, agreement.status);
                lapsed.extend(patterns.map(|p| (p, why.clone())));
                continue;
            }
            for pattern in patterns {
                rules.push(Rule {
                    role: terms.role.clone().unwrap_or_else(|| format!("user {user}")),
                    pattern,
                    columns: terms.columns.as_ref().map(|c| c.iter().cloned().collect()),
                    origin: Origin::Agreement(terms.id.clone()),
                    row_filter: terms.row_filter.clone(),
                    masks: parse_masks(&terms.masks),
                    mask_labels: parse_masks(&terms.mask_labels),
                });
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
                    origin: Origin::Pull(name.clone()),
                    row_filter: None,
                    masks: BTreeMap::new(),
                    mask_labels: BTreeMap::new(),
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
        let producer_of = cfg
            .users
            .get(user)
            .map(|u| u.get_ref().producer_of.clone())
            .unwrap_or_default();
        Access {
            user: user.to_string(),
            roles: roles.to_vec(),
            rules,
            attributes,
            producer_of,
            key: Some(self.key.clone()),
            lapsed,
            agreements: self.agreements.clone(),
            version: Some(self.version.clone()),
            index: Default::default(),
            claims: None,
        }
    }

    /// The access of a single sign-on login: the roles and attributes of
    /// the user in `[users]` (none for a user not there), plus the roles
    /// the token's claims give, and the attributes they give that
    /// `[users]` does not set.
    pub fn for_identity(&self, identity: &Identity) -> Access {
        let configured = self.access(&identity.user);
        let mut roles = configured.roles.clone();
        for role in &identity.roles {
            if !roles.contains(role) {
                roles.push(role.clone());
            }
        }
        let mut access = self.for_roles(&identity.user, &roles);
        for (name, values) in &identity.attributes {
            access
                .attributes
                .entry(name.clone())
                .or_insert_with(|| values.clone());
        }
        access.claims = Some(Arc::new(identity.clone()));
        access
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
    fn column_grants_union_and_all_wins() {
        let rule = |p: &str, cols: Option<&[&str]>| Rule {
            role: "r".into(),
            pattern: TablePattern::parse(p).unwrap(),
            columns: cols.map(|c| c.iter().map(|s| s.to_string()).collect()),
            origin: Origin::Grant {
                number: 1,
                role: "r".into(),
            },
            row_filter: None,
            masks: BTreeMap::new(),
            mask_labels: BTreeMap::new(),
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
            origin: Origin::Grant {
                number: 7,
                role: "r".into(),
            },
            row_filter: filter.map(str::to_string),
            masks: masks
                .iter()
                .map(|(c, m)| (c.to_string(), m.clone()))
                .collect(),
            mask_labels: BTreeMap::new(),
        };
        let access = |rules: Vec<Rule>| Access {
            user: "u".into(),
            roles: vec!["r".into()],
            rules,
            attributes: [("kota".to_string(), vec!["31.71".to_string()])]
                .into_iter()
                .collect(),
            producer_of: Vec::new(),
            key: None,
            lapsed: Vec::new(),
            agreements: Arc::new(Vec::new()),
            version: None,
            index: Default::default(),
            claims: None,
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
