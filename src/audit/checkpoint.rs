//! Signed checkpoints and witness countersignatures.
//!
//! A checkpoint states, under the custodian's Ed25519 signature, that the
//! log held `count` = `seq` records, that record `seq` hashes to `head`, and
//! that the Merkle root over records `1..=seq` is `root`
//! ([`super::merkle`]). The signed bytes are the UTF-8 text
//!
//! ```text
//! tautan-audit-checkpoint-v1\nseq=<seq>\ncount=<count>\nhead=<hex>\nroot=<hex>\nts=<ts>\n
//! ```
//!
//! Every checkpoint is appended (and synced) to `checkpoints.jsonl` in the
//! audit folder; the latest is also written, atomically, to the *external*
//! path (outside the folder), so that a copy of the whole folder put back
//! later (a rollback) shows as a log behind its own latest checkpoint.
//!
//! A producer agency *witnesses* a checkpoint by signing
//!
//! ```text
//! tautan-audit-witness-v1\nseq=<seq>\nhead=<hex>\nroot=<hex>\nname=<name>\nts=<ts>\n
//! ```
//!
//! with its own key ([`add_witness`]); the countersignature is appended to
//! `witnesses.jsonl` and returned with the checkpoint, for the producer to
//! keep. Once witnessed, no history up to `seq` can be rewritten without
//! the root changing, which every verify checks.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::error::AuditError;
use super::hash::{from_hex, to_hex, Hash};
use super::keys::key_hex;
use super::merkle::SavedFrontier;
use super::record::Seq;
use super::segment::{sync_dir, Line, LineReader, CHECKPOINTS, WITNESSES};
use super::Result;

/// A signed statement of the log's state at record `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last record covered.
    pub seq: Seq,
    /// Records covered (`seq`: the log is contiguous from 1).
    pub count: u64,
    /// Hex hash of record `seq`.
    pub head: String,
    /// Hex Merkle root over records `1..=seq`.
    pub root: String,
    /// When it was made (RFC 3339 UTC, microseconds).
    pub ts: String,
    /// The signer's public key, hex (informative: verification uses the
    /// key the verifier trusts, never this one).
    pub key: String,
    /// Hex Ed25519 signature over [`Checkpoint::message`].
    pub sig: String,
    /// Countersignatures by producers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<Witness>,
    /// The Merkle frontier at `seq` (only in `checkpoints.jsonl`, unsigned:
    /// it lets the appender reopen without re-reading every record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontier: Option<SavedFrontier>,
}

/// A producer's countersignature of a checkpoint's `(seq, head, root)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Witness {
    /// Who signed (free text, e.g. the agency).
    pub name: String,
    /// The witness's public key, hex.
    pub key: String,
    /// Hex Ed25519 signature over [`witness_message`].
    pub sig: String,
    /// When it was signed.
    pub ts: String,
}

/// One line of `witnesses.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessLine {
    /// The checkpoint's seq.
    pub seq: Seq,
    /// The checkpoint's head.
    pub head: String,
    /// The checkpoint's root.
    pub root: String,
    /// The countersignature.
    #[serde(flatten)]
    pub witness: Witness,
}

/// The bytes a witness signs: the checkpoint's `(seq, head, root)`, and
/// the witness's own name and time (so neither can be changed either).
pub fn witness_message(seq: Seq, head: &str, root: &str, name: &str, ts: &str) -> String {
    format!("tautan-audit-witness-v1\nseq={seq}\nhead={head}\nroot={root}\nname={name}\nts={ts}\n")
}

fn signature_from_hex(sig: &str) -> std::result::Result<Signature, String> {
    from_hex::<64>(sig)
        .map(|b| Signature::from_bytes(&b))
        .ok_or_else(|| "signature is not 128 lower-case hex characters".to_string())
}

impl Checkpoint {
    /// Makes and signs a checkpoint.
    pub fn sign(seq: Seq, head: &Hash, root: &Hash, ts: String, key: &SigningKey) -> Checkpoint {
        let mut cp = Checkpoint {
            seq,
            count: seq,
            head: to_hex(head),
            root: to_hex(root),
            ts,
            key: key_hex(&key.verifying_key()),
            sig: String::new(),
            witnesses: Vec::new(),
            frontier: None,
        };
        cp.sig = to_hex(&key.sign(cp.message().as_bytes()).to_bytes());
        cp
    }

    /// The bytes the custodian signs.
    pub fn message(&self) -> String {
        format!(
            "tautan-audit-checkpoint-v1\nseq={}\ncount={}\nhead={}\nroot={}\nts={}\n",
            self.seq, self.count, self.head, self.root, self.ts
        )
    }

    /// Checks the custodian's signature with the key the caller trusts.
    pub fn verify_signature(&self, key: &VerifyingKey) -> std::result::Result<(), String> {
        if self.key != key_hex(key) {
            return Err(format!(
                "signed by key {}, not the custodian key {}",
                self.key,
                key_hex(key)
            ));
        }
        let sig = signature_from_hex(&self.sig)?;
        key.verify_strict(self.message().as_bytes(), &sig)
            .map_err(|_| "signature does not verify with the custodian key".to_string())?;
        if self.count != self.seq {
            return Err(format!(
                "count {} differs from seq {} in a contiguous log",
                self.count, self.seq
            ));
        }
        Ok(())
    }

    /// The checkpoint without its stored frontier (what is published).
    pub fn published(&self) -> Checkpoint {
        Checkpoint {
            frontier: None,
            ..self.clone()
        }
    }

    /// Whether two checkpoints state the same thing (signature included),
    /// whatever witnesses or frontier they carry.
    pub fn same_statement(&self, other: &Checkpoint) -> bool {
        self.seq == other.seq
            && self.count == other.count
            && self.head == other.head
            && self.root == other.root
            && self.ts == other.ts
            && self.sig == other.sig
    }
}

impl Witness {
    /// Countersigns `(seq, head, root)` (with its name and the time).
    pub fn sign(seq: Seq, head: &str, root: &str, name: &str, key: &SigningKey) -> Witness {
        // One line per field in the signed text: no line breaks in a name.
        let name: String = name.chars().filter(|c| !c.is_control()).collect();
        let ts = super::log::now_ts();
        let sig = key.sign(witness_message(seq, head, root, &name, &ts).as_bytes());
        Witness {
            name,
            key: key_hex(&key.verifying_key()),
            sig: to_hex(&sig.to_bytes()),
            ts,
        }
    }

    /// Checks the countersignature against the key it names; returns that key.
    pub fn verify(
        &self,
        seq: Seq,
        head: &str,
        root: &str,
    ) -> std::result::Result<VerifyingKey, String> {
        let raw = from_hex::<32>(&self.key)
            .ok_or_else(|| "witness key is not 64 lower-case hex characters".to_string())?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|e| format!("witness key: {e}"))?;
        let sig = signature_from_hex(&self.sig)?;
        if self.name.chars().any(char::is_control) || self.ts.chars().any(char::is_control) {
            return Err(format!(
                "witness {:?}: control characters in name or time",
                self.name
            ));
        }
        key.verify_strict(
            witness_message(seq, head, root, &self.name, &self.ts).as_bytes(),
            &sig,
        )
        .map_err(|_| {
            format!(
                "witness {} ({}): signature does not verify",
                self.name, self.key
            )
        })?;
        Ok(key)
    }
}

/// A parsed line of a JSON Lines file, with its line number; a line that
/// does not parse carries the reason.
pub type NumberedLine<T> = (u64, std::result::Result<T, String>);

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<NumberedLine<T>>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut r = LineReader::open(path)?;
    let mut out = Vec::new();
    while let Some(line) = r.next_line()? {
        match line {
            Line::Full { no, bytes, .. } => {
                out.push((no, serde_json::from_slice(bytes).map_err(|e| e.to_string())))
            }
            // A line cut short by a crash was never in force.
            Line::Torn { .. } => {}
        }
    }
    Ok(out)
}

/// Every line of `checkpoints.jsonl`.
pub fn read_checkpoints(dir: &Path) -> Result<Vec<NumberedLine<Checkpoint>>> {
    read_jsonl(&dir.join(CHECKPOINTS))
}

/// Every line of `witnesses.jsonl`.
pub fn read_witnesses(dir: &Path) -> Result<Vec<NumberedLine<WitnessLine>>> {
    read_jsonl(&dir.join(WITNESSES))
}

/// The last checkpoint of `checkpoints.jsonl` that parses, with its line.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<(u64, Checkpoint)>> {
    Ok(read_checkpoints(dir)?
        .into_iter()
        .filter_map(|(no, r)| r.ok().map(|c| (no, c)))
        .next_back())
}

/// Reads a checkpoint file (the external copy, or a witness's copy).
pub fn read_checkpoint_file(path: &Path) -> Result<Checkpoint> {
    let text = std::fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
    serde_json::from_str(text.trim())
        .map_err(|e| AuditError::Invalid(format!("{}: not a checkpoint: {e}", path.display())))
}

/// Writes a checkpoint to `path` atomically: a temporary file next to it,
/// synced, renamed over it, and the folder synced.
pub fn write_checkpoint_file(path: &Path, cp: &Checkpoint) -> Result<()> {
    let mut text = serde_json::to_string(&cp.published())
        .map_err(|e| AuditError::Invalid(format!("encoding a checkpoint: {e}")))?;
    text.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| AuditError::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| AuditError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| AuditError::io(path, e))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    sync_dir(parent)
}

/// A producer countersigns the latest checkpoint of the log in `dir` with
/// `key`, after recomputing its head and root from the records (and, given
/// the custodian's key, checking its signature). The countersignature is
/// appended to `witnesses.jsonl`; the checkpoint is returned with it, for
/// the producer to keep (it can later be given to `audit verify
/// --external`).
pub fn add_witness(
    dir: &Path,
    key: &SigningKey,
    name: &str,
    custodian: Option<&VerifyingKey>,
) -> Result<Checkpoint> {
    let (_, cp) = latest_checkpoint(dir)?.ok_or_else(|| {
        AuditError::Invalid(format!("{}: no checkpoint to witness", dir.display()))
    })?;
    if let Some(k) = custodian {
        cp.verify_signature(k)
            .map_err(|e| AuditError::Invalid(format!("checkpoint at seq {}: {e}", cp.seq)))?;
    }
    let (head, root) = super::verify::recompute(dir, cp.seq)?;
    if to_hex(&head) != cp.head || to_hex(&root) != cp.root {
        return Err(AuditError::Invalid(format!(
            "the latest checkpoint (seq {}) does not match the records: refusing to witness it; run `tautan audit verify`",
            cp.seq
        )));
    }
    let w = Witness::sign(cp.seq, &cp.head, &cp.root, name, key);
    let line = WitnessLine {
        seq: cp.seq,
        head: cp.head.clone(),
        root: cp.root.clone(),
        witness: w.clone(),
    };
    let mut text = serde_json::to_string(&line)
        .map_err(|e| AuditError::Invalid(format!("encoding a witness: {e}")))?;
    text.push('\n');
    let path = dir.join(WITNESSES);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| AuditError::io(&path, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| AuditError::io(&path, e))?;
    let mut out = cp.published();
    for (_, wl) in read_witnesses(dir)? {
        if let Ok(wl) = wl {
            if wl.seq == cp.seq
                && wl.head == cp.head
                && wl.root == cp.root
                && !out.witnesses.contains(&wl.witness)
            {
                out.witnesses.push(wl.witness);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::hash::sha256;

    #[test]
    fn audit_checkpoint_signature_and_witness() {
        let k = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let cp = Checkpoint::sign(
            5,
            &sha256(b"h"),
            &sha256(b"r"),
            "2025-01-01T00:00:00.000000Z".into(),
            &k,
        );
        assert!(cp.verify_signature(&k.verifying_key()).is_ok());
        let e = cp.verify_signature(&other.verifying_key()).unwrap_err();
        assert!(e.contains("not the custodian key"), "{e}");
        let mut renamed = cp.clone();
        renamed.key = key_hex(&other.verifying_key());
        let e = renamed
            .verify_signature(&other.verifying_key())
            .unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let mut bad = cp.clone();
        bad.seq = 6;
        bad.count = 6;
        assert!(bad.verify_signature(&k.verifying_key()).is_err());
        let json = serde_json::to_string(&cp).unwrap();
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cp);
        let w = Witness::sign(cp.seq, &cp.head, &cp.root, "dukcapil", &other);
        assert_eq!(
            w.verify(cp.seq, &cp.head, &cp.root).unwrap(),
            other.verifying_key()
        );
        assert!(w.verify(cp.seq, &cp.head, &cp.head).is_err());
        let mut renamed = w.clone();
        renamed.name = "someone else".into();
        assert!(renamed.verify(cp.seq, &cp.head, &cp.root).is_err());
    }
}
