//! Signed producer–user agreements (Pergub 6/2020 art. 12: access is given
//! according to an agreement between the producing agency and the data
//! user, reviewed and approved by the producer before the custodian grants
//! it).
//!
//! One TOML file per agreement, e.g. `agreements/PKS-2026-017.toml`:
//!
//! ```toml
//! id = "PKS-2026-017"
//! producer = "kependudukan"                 # the producing agency's link
//! user = "analis_kota"                      # or: role = "..."
//! tables = ["kependudukan.public.penduduk"]
//! row_filter = "kecamatan_kode IN ({wilayah})"
//! masks = { nik = "pseudonym" }
//! purpose = "Analisis kunjungan puskesmas per kecamatan"
//! valid_from = "2026-01-01"
//! valid_until = "2026-12-31"
//!
//! [[signatures]]
//! by = "kependudukan"                       # the producer's link name, or "custodian"
//! signature = "…128 hex…"
//! ```
//!
//! A signature is Ed25519 over `tautan-agreement-v1\n` followed by the
//! agreement's content (everything but `signatures`) as canonical JSON —
//! fields in a fixed order, maps sorted — so reformatting the TOML does not
//! break it and changing any value does. The producer's public key is
//! declared on its link (`public_key`), the custodian's in `[policy]`
//! (`custodian_public_key`). An agreement grants something only with both
//! signatures valid and today (UTC) within its dates; otherwise it grants
//! nothing and its [`Status`] says why (`system.agreements`, `tautan check`,
//! `tautan agreement verify`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ed25519_dalek::{Signature as EdSignature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::audit::hash::{from_hex, to_hex};

/// The signer name of the custodian.
pub const CUSTODIAN: &str = "custodian";

/// What is signed: the agreement without its signatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// The agreement's number, e.g. `PKS-2026-017`.
    pub id: String,
    /// The producing agency: a link name.
    pub producer: String,
    /// The data user (a login), or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// a role whose holders are the data users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Table patterns, all under the producer's link.
    pub tables: Vec<String>,
    /// Only these columns (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Only rows matching this predicate (`{name}`: the user's attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Masks by column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, String>,
    /// Masks by classification label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mask_labels: BTreeMap<String, String>,
    /// Why the data is exchanged.
    pub purpose: String,
    /// First day it applies (`YYYY-MM-DD`).
    pub valid_from: String,
    /// Last day it applies (`YYYY-MM-DD`).
    pub valid_until: String,
}

/// One signature of an agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    /// Who signed: the producer's link name, or `custodian`.
    pub by: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

/// An agreement file: its terms and signatures.
#[derive(Debug, Clone, PartialEq)]
pub struct AgreementFile {
    /// What was agreed.
    pub terms: Terms,
    /// Signatures over [`Terms::signed_bytes`].
    pub signatures: Vec<SignatureEntry>,
}

impl Terms {
    /// The bytes a signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = b"tautan-agreement-v1\n".to_vec();
        // Serializing a struct of strings, vectors and sorted maps cannot
        // fail; an empty body would only make every signature invalid.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// The first and last day, parsed.
    pub fn dates(&self) -> Result<(NaiveDate, NaiveDate), String> {
        let parse = |field: &str, v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| format!("{field} `{v}` is not a date (YYYY-MM-DD)"))
        };
        let from = parse("valid_from", &self.valid_from)?;
        let until = parse("valid_until", &self.valid_until)?;
        if until < from {
            return Err("valid_until is before valid_from".into());
        }
        Ok((from, until))
    }

    /// Checks what does not need keys: the user or role, the tables under
    /// the producer's link, masks, the row filter's shape is left to the
    /// config's check.
    pub fn check_shape(&self) -> Result<(), String> {
        if self.id.trim().is_empty() {
            return Err("id is empty".into());
        }
        match (&self.user, &self.role) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err("give exactly one of `user` or `role`".into()),
        }
        if self.tables.is_empty() {
            return Err("no tables".into());
        }
        for t in &self.tables {
            let first = t.split('.').next().unwrap_or_default();
            if first != self.producer {
                return Err(format!(
                    "table `{t}` is not under the producer's link `{}`",
                    self.producer
                ));
            }
            super::pattern::TablePattern::parse(t).map_err(|e| format!("table `{t}`: {e}"))?;
        }
        for (column, mask) in &self.masks {
            super::Mask::parse(mask).map_err(|e| format!("mask of {column}: {e}"))?;
        }
        for (label, mask) in &self.mask_labels {
            super::Mask::parse(mask).map_err(|e| format!("mask of label {label}: {e}"))?;
        }
        self.dates()?;
        Ok(())
    }
}

impl AgreementFile {
    /// Parses an agreement file's text: the terms (unknown keys refused)
    /// and an array `signatures`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let signatures = match table.remove("signatures") {
            Some(v) => v
                .try_into::<Vec<SignatureEntry>>()
                .map_err(|e| format!("signatures: {}", e.message()))?,
            None => Vec::new(),
        };
        let terms = toml::Value::Table(table)
            .try_into::<Terms>()
            .map_err(|e| e.message().to_string())?;
        Ok(Self { terms, signatures })
    }

    /// The file's text (TOML): the terms, then the signatures.
    pub fn to_toml(&self) -> Result<String, String> {
        #[derive(Serialize)]
        struct Signatures<'a> {
            signatures: &'a [SignatureEntry],
        }
        let mut text = toml::to_string(&self.terms).map_err(|e| e.to_string())?;
        if !self.signatures.is_empty() {
            text.push('\n');
            text.push_str(
                &toml::to_string(&Signatures {
                    signatures: &self.signatures,
                })
                .map_err(|e| e.to_string())?,
            );
        }
        Ok(text)
    }

    /// Adds (or replaces) the signature of `by`.
    pub fn sign(&mut self, by: &str, key: &SigningKey) {
        let signature = key.sign(&self.terms.signed_bytes());
        self.signatures.retain(|s| s.by != by);
        self.signatures.push(SignatureEntry {
            by: by.to_string(),
            signature: to_hex(&signature.to_bytes()),
        });
    }

    /// Whether `by`'s signature is present and valid under `key`.
    fn signed_by(&self, by: &str, key: &VerifyingKey) -> Result<(), Status> {
        let Some(entry) = self.signatures.iter().find(|s| s.by == by) else {
            return Err(Status::Unsigned(format!("no signature of {by}")));
        };
        let Some(bytes) = from_hex::<64>(&entry.signature) else {
            return Err(Status::Tampered(format!(
                "the signature of {by} is not 128 hex characters"
            )));
        };
        key.verify(&self.terms.signed_bytes(), &EdSignature::from_bytes(&bytes))
            .map_err(|_| {
                Status::Tampered(format!(
                    "the signature of {by} does not match the agreement's content"
                ))
            })
    }

    /// The agreement's standing on `today`, given the producer's and the
    /// custodian's public keys.
    pub fn status(&self, keys: &SignerKeys, today: NaiveDate) -> Status {
        if let Err(e) = self.terms.check_shape() {
            return Status::Invalid(e);
        }
        let Some(producer_key) = keys.producers.get(&self.terms.producer) else {
            return Status::Unsigned(format!(
                "link `{}` declares no public_key to check its signature",
                self.terms.producer
            ));
        };
        let Some(custodian_key) = &keys.custodian else {
            return Status::Unsigned(
                "[policy] custodian_public_key is not set; no agreement can be checked".into(),
            );
        };
        // Tampering is reported before a missing signature.
        let producer = self.signed_by(&self.terms.producer, producer_key);
        let custodian = self.signed_by(CUSTODIAN, custodian_key);
        for r in [&producer, &custodian] {
            if let Err(s @ Status::Tampered(_)) = r {
                return s.clone();
            }
        }
        if let Err(s) = producer.and(custodian) {
            return s;
        }
        match self.terms.dates() {
            Ok((from, _)) if today < from => Status::NotYetValid(from),
            Ok((_, until)) if today > until => Status::Expired(until),
            Ok(_) => Status::Valid,
            Err(e) => Status::Invalid(e),
        }
    }
}

/// The public keys agreements are checked with.
#[derive(Debug, Clone, Default)]
pub struct SignerKeys {
    /// Each producer link's key.
    pub producers: BTreeMap<String, VerifyingKey>,
    /// The custodian's key.
    pub custodian: Option<VerifyingKey>,
}

/// Where an agreement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Both signatures valid, today within its dates: it grants.
    Valid,
    /// Not in force yet (from this day).
    NotYetValid(NaiveDate),
    /// No longer in force (since the day after this one).
    Expired(NaiveDate),
    /// A signature is missing.
    Unsigned(String),
    /// A signature does not match the content: the file was changed after
    /// signing, or signed with another key.
    Tampered(String),
    /// The file does not describe a usable agreement.
    Invalid(String),
}

impl Status {
    /// A one-word name (`system.agreements.status`).
    pub fn name(&self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::NotYetValid(_) => "not yet valid",
            Status::Expired(_) => "expired",
            Status::Unsigned(_) => "unsigned",
            Status::Tampered(_) => "tampered",
            Status::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Valid => f.write_str("valid"),
            Status::NotYetValid(d) => write!(f, "not valid before {d}"),
            Status::Expired(d) => write!(f, "expired on {d}"),
            Status::Unsigned(why) => write!(f, "unsigned: {why}"),
            Status::Tampered(why) => write!(f, "tampered: {why}"),
            Status::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

/// One agreement file as loaded, with its standing.
#[derive(Debug, Clone)]
pub struct Agreement {
    /// The file it came from.
    pub path: PathBuf,
    /// Its content; `None` when the file could not be read as an agreement.
    pub file: Option<AgreementFile>,
    /// Where it stands today.
    pub status: Status,
}

impl Agreement {
    /// The agreement's id, or the file name when it has none.
    pub fn id(&self) -> String {
        match &self.file {
            Some(f) => f.terms.id.clone(),
            None => self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// Reads one agreement file and judges it.
pub fn load_file(path: &Path, keys: &SignerKeys, today: NaiveDate) -> Agreement {
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| AgreementFile::parse(&text));
    match parsed {
        Ok(file) => Agreement {
            path: path.to_path_buf(),
            status: file.status(keys, today),
            file: Some(file),
        },
        Err(e) => Agreement {
            path: path.to_path_buf(),
            file: None,
            status: Status::Invalid(e),
        },
    }
}

/// Every `*.toml` file of `dir`, in name order; a missing folder holds no
/// agreement.
pub fn load_dir(dir: &Path, keys: &SignerKeys, today: NaiveDate) -> Vec<Agreement> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_file(p, keys, today)).collect()
}

/// Today's date in UTC, as agreements are judged.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn sample() -> AgreementFile {
        AgreementFile::parse(
            r#"
id = "PKS-2026-017"
producer = "kependudukan"
user = "analis_kota"
tables = ["kependudukan.public.penduduk"]
row_filter = "kecamatan_kode IN ({wilayah})"
masks = { nik = "pseudonym" }
purpose = "uji"
valid_from = "2026-01-01"
valid_until = "2026-12-31"
"#,
        )
        .unwrap()
    }

    fn keys() -> SignerKeys {
        SignerKeys {
            producers: [("kependudukan".to_string(), key(1).verifying_key())]
                .into_iter()
                .collect(),
            custodian: Some(key(2).verifying_key()),
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn both_signatures_and_the_dates_decide() {
        let mut a = sample();
        assert!(matches!(
            a.status(&keys(), day("2026-06-01")),
            Status::Unsigned(_)
        ));
        a.sign("kependudukan", &key(1));
        assert!(matches!(
            a.status(&keys(), day("2026-06-01")),
            Status::Unsigned(_)
        ));
        a.sign(CUSTODIAN, &key(2));
        assert_eq!(a.status(&keys(), day("2026-06-01")), Status::Valid);
        assert_eq!(
            a.status(&keys(), day("2027-01-01")),
            Status::Expired(day("2026-12-31"))
        );
        assert_eq!(
            a.status(&keys(), day("2025-12-31")),
            Status::NotYetValid(day("2026-01-01"))
        );
        // Reformatted, still valid; any changed value, tampered.
        let text = a.to_toml().unwrap();
        let again = AgreementFile::parse(&text).unwrap();
        assert_eq!(again.status(&keys(), day("2026-06-01")), Status::Valid);
        for edit in [
            ("kecamatan_kode IN", "kecamatan_kode NOT IN"),
            ("pseudonym", "null"),
            ("2026-12-31", "2027-12-31"),
            ("analis_kota", "analis_kotb"),
        ] {
            let changed = AgreementFile::parse(&text.replacen(edit.0, edit.1, 1)).unwrap();
            assert!(
                matches!(
                    changed.status(&keys(), day("2026-06-01")),
                    Status::Tampered(_)
                ),
                "{edit:?}"
            );
        }
        // Signed by the wrong key.
        let mut wrong = sample();
        wrong.sign("kependudukan", &key(9));
        wrong.sign(CUSTODIAN, &key(2));
        assert!(matches!(
            wrong.status(&keys(), day("2026-06-01")),
            Status::Tampered(_)
        ));
    }

    #[test]
    fn shape_errors_are_invalid() {
        let mut a = sample();
        a.terms.tables = vec!["kesehatan.kesehatan.kunjungan".into()];
        assert!(matches!(
            a.status(&keys(), day("2026-06-01")),
            Status::Invalid(_)
        ));
        let mut b = sample();
        b.terms.role = Some("r".into());
        assert!(matches!(
            b.status(&keys(), day("2026-06-01")),
            Status::Invalid(_)
        ));
        let mut c = sample();
        c.terms.valid_until = "2025-01-01".into();
        assert!(matches!(
            c.status(&keys(), day("2026-06-01")),
            Status::Invalid(_)
        ));
        assert!(AgreementFile::parse("id = 1").is_err());
    }
}
