//! Object identifiers of what `pg_catalog` lists: the same for a given
//! object in every session, whoever asks and whichever catalog table a
//! session reads first.
//!
//! Clients cache OIDs across connections (DBeaver's separate metadata
//! connection, connection pools), so an OID is derived from the object's
//! kind and names (a 64-bit FNV-1a hash folded into the user OID range,
//! 16384 and up), not from the order objects happen to be listed in. One
//! process-wide registry remembers what it handed out: two names that hash
//! alike get distinct OIDs (the later one probes upwards), and an OID can be
//! mapped back to the object it names ([`lookup`]). Across restarts the
//! OIDs stay the same unless such a collision happened.
//!
//! PostgreSQL's own catalog objects keep PostgreSQL's OIDs (`pg_catalog` is
//! namespace 11, `pg_class` is relation 1259, ...), as clients hard-code
//! some of them.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// The first OID PostgreSQL gives user objects.
pub const FIRST_USER_OID: i32 = 16384;

/// What an OID names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Object {
    /// A database (`pg_database`).
    Database(String),
    /// A schema (`pg_namespace`).
    Namespace(String),
    /// A table or view (`pg_class`), by schema and name.
    Relation(String, String),
    /// The primary-key index of a table (`pg_class`, `pg_index`).
    PrimaryKeyIndex(String, String),
    /// The primary-key constraint of a table (`pg_constraint`).
    PrimaryKeyConstraint(String, String),
}

impl Object {
    fn key(&self) -> String {
        let (kind, names): (&str, Vec<&str>) = match self {
            Object::Database(d) => ("database", vec![d]),
            Object::Namespace(s) => ("namespace", vec![s]),
            Object::Relation(s, t) => ("relation", vec![s, t]),
            Object::PrimaryKeyIndex(s, t) => ("index", vec![s, t]),
            Object::PrimaryKeyConstraint(s, t) => ("constraint", vec![s, t]),
        };
        format!("{kind}\u{0}{}", names.join("\u{0}"))
    }

    /// PostgreSQL's own OID for this object, if it is one of PostgreSQL's.
    fn builtin(&self) -> Option<i32> {
        match self {
            Object::Namespace(s) => match s.as_str() {
                "pg_catalog" => Some(11),
                "public" => Some(2200),
                "information_schema" => Some(13_000),
                _ => None,
            },
            Object::Relation(s, t) if s == "pg_catalog" => BUILTIN_RELATIONS
                .iter()
                .find(|(name, _)| name == t)
                .map(|(_, oid)| *oid),
            _ => None,
        }
    }
}

/// PostgreSQL's OIDs of the catalog tables clients name
/// (`'pg_class'::regclass`, `classoid` of `pg_description` rows).
const BUILTIN_RELATIONS: &[(&str, i32)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_database", 1262),
    ("pg_constraint", 2606),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_namespace", 2615),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_trigger", 2620),
    ("pg_rewrite", 2618),
    ("pg_inherits", 2611),
    ("pg_depend", 2608),
    ("pg_operator", 2617),
    ("pg_collation", 3456),
    ("pg_enum", 3501),
    ("pg_extension", 3079),
    ("pg_roles", 12001),
    ("pg_settings", 12002),
];

#[derive(Default)]
struct Registry {
    by_object: HashMap<Object, i32>,
    by_oid: HashMap<i32, Object>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The OID of `object`.
pub fn oid(object: &Object) -> i32 {
    if let Some(oid) = object.builtin() {
        return oid;
    }
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(oid) = registry.by_object.get(object) {
        return *oid;
    }
    let span = u64::from(i32::MAX.unsigned_abs() - FIRST_USER_OID.unsigned_abs());
    let offset = i32::try_from(fnv1a(&object.key()) % span).unwrap_or(0);
    let mut candidate = FIRST_USER_OID + offset;
    while registry.by_oid.contains_key(&candidate) {
        candidate = if candidate == i32::MAX {
            FIRST_USER_OID
        } else {
            candidate + 1
        };
    }
    registry.by_object.insert(object.clone(), candidate);
    registry.by_oid.insert(candidate, object.clone());
    candidate
}

/// The object `oid` was handed out for (by [`oid`]), if any. Callers check
/// that the user may see it.
pub fn lookup(oid: i64) -> Option<Object> {
    let oid = i32::try_from(oid).ok()?;
    let registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    registry.by_oid.get(&oid).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_are_stable_distinct_and_map_back() {
        let a = Object::Relation("s.x".into(), "t".into());
        let b = Object::PrimaryKeyIndex("s.x".into(), "t".into());
        let first = oid(&a);
        assert_eq!(oid(&a), first);
        assert_ne!(oid(&b), first);
        assert!(first >= FIRST_USER_OID);
        assert_eq!(lookup(i64::from(first)), Some(a));
        assert_eq!(oid(&Object::Namespace("pg_catalog".into())), 11);
        assert_eq!(
            oid(&Object::Relation("pg_catalog".into(), "pg_class".into())),
            1259
        );
    }
}
