//! Inclusion proofs: one record, shown to be in the log, to someone who has
//! nothing but the proof and the custodian's public key.
//!
//! A proof holds the record as stored, its leaf index and the tree size (the
//! checkpoint's seq), the audit path (RFC 6962 §2.1.1, hex, from the leaf
//! up) and the latest checkpoint covering the record with its signature and
//! any witness countersignatures. [`check_proof`] recomputes the record's
//! hash from its canonical encoding, climbs the path to the root, and checks
//! the checkpoint's signature.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::checkpoint::{read_checkpoints, read_witnesses, Checkpoint};
use super::error::AuditError;
use super::hash::{hash_from_hex, to_hex, Hash};
use super::merkle::{path_ranges, verify_inclusion, Frontier};
use super::record::{Record, Seq};
use super::verify::walk;
use super::Result;

/// A self-contained proof that a record is in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// Format version (1).
    pub version: u32,
    /// The record, as stored.
    pub record: Record,
    /// `record.seq - 1`.
    pub leaf_index: u64,
    /// Leaves of the tree the checkpoint signs (`checkpoint.seq`).
    pub tree_size: u64,
    /// Hex node hashes from the leaf up to the root.
    pub path: Vec<String>,
    /// The checkpoint whose root the path leads to.
    pub checkpoint: Checkpoint,
}

/// Builds the proof for record `seq` against the latest checkpoint of the
/// log in `dir` (which must cover it). Reads the records up to that
/// checkpoint once, keeping O(log n) hashes.
pub fn prove(dir: &Path, seq: Seq) -> Result<Proof> {
    if seq == 0 {
        return Err(AuditError::Invalid("records are numbered from 1".into()));
    }
    let (_, cp) = read_checkpoints(dir)?
        .into_iter()
        .filter_map(|(no, c)| c.ok().map(|c| (no, c)))
        .next_back()
        .ok_or_else(|| AuditError::Invalid(format!("{}: no checkpoint yet", dir.display())))?;
    if cp.seq < seq {
        return Err(AuditError::Invalid(format!(
            "record {seq} is not covered by a checkpoint yet (latest: seq {}); try again after the next checkpoint",
            cp.seq
        )));
    }
    let m = seq - 1;
    let n = cp.seq;
    let ranges = path_ranges(m, n);
    // Each range's root is built while the leaves stream past.
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| ranges[i].0);
    let mut roots: Vec<Frontier> = vec![Frontier::new(); ranges.len()];
    let mut next = 0usize;
    let mut record = None;
    let (head, frontier) = walk(dir, n, |rec, h| {
        let i = rec.seq - 1;
        if i == m {
            record = Some(rec.clone());
        }
        while next < order.len() && ranges[order[next]].1 <= i {
            next += 1;
        }
        if let Some(&r) = order.get(next) {
            if ranges[r].0 <= i && i < ranges[r].1 {
                roots[r].push(h);
            }
        }
    })?;
    if to_hex(&head) != cp.head || to_hex(&frontier.root()) != cp.root {
        return Err(AuditError::Corrupt(format!(
            "the records do not match the checkpoint at seq {}; run `tautan audit verify`",
            cp.seq
        )));
    }
    let record = record.ok_or_else(|| AuditError::Corrupt(format!("record {seq} not found")))?;
    let mut checkpoint = cp.published();
    for (_, w) in read_witnesses(dir)? {
        if let Ok(w) = w {
            if w.seq == cp.seq
                && w.head == cp.head
                && w.root == cp.root
                && w.witness.verify(w.seq, &w.head, &w.root).is_ok()
                && !checkpoint.witnesses.contains(&w.witness)
            {
                checkpoint.witnesses.push(w.witness);
            }
        }
    }
    Ok(Proof {
        version: 1,
        record,
        leaf_index: m,
        tree_size: n,
        path: roots.iter().map(|f| to_hex(&f.root())).collect(),
        checkpoint,
    })
}

/// Checks a proof with nothing but the custodian's public key: the record
/// hashes to its `hash`, the path leads from it to the checkpoint's root,
/// the checkpoint is signed by the custodian, and every countersignature it
/// carries verifies.
pub fn check_proof(proof: &Proof, custodian: &VerifyingKey) -> Result<()> {
    let bad = |m: String| Err(AuditError::Proof(m));
    if proof.version != 1 {
        return bad(format!("unknown proof version {}", proof.version));
    }
    let rec = &proof.record;
    let Some(stored) = rec.stored_hash() else {
        return bad("the record's hash is not 64 lower-case hex characters".into());
    };
    let computed = rec.compute_hash();
    if computed != stored {
        return bad(format!(
            "record {} does not hash to its stored hash: it was altered",
            rec.seq
        ));
    }
    if rec.seq == 0 || proof.leaf_index != rec.seq - 1 {
        return bad(format!(
            "leaf index {} is not record {}'s",
            proof.leaf_index, rec.seq
        ));
    }
    let cp = &proof.checkpoint;
    if proof.tree_size != cp.seq || rec.seq > cp.seq {
        return bad(format!(
            "tree size {} / checkpoint seq {} do not cover record {}",
            proof.tree_size, cp.seq, rec.seq
        ));
    }
    let path = proof
        .path
        .iter()
        .map(|h| hash_from_hex(h))
        .collect::<Option<Vec<Hash>>>();
    let Some(path) = path else {
        return bad("a path hash is not 64 lower-case hex characters".into());
    };
    let Some(root) = hash_from_hex(&cp.root) else {
        return bad("the checkpoint root is not 64 lower-case hex characters".into());
    };
    if !verify_inclusion(proof.leaf_index, proof.tree_size, &computed, &path, &root) {
        return bad(format!(
            "the audit path does not lead from record {} to the checkpoint's root",
            rec.seq
        ));
    }
    if rec.seq == cp.seq && cp.head != rec.hash {
        return bad("the checkpoint's head is not the record".into());
    }
    cp.verify_signature(custodian)
        .map_err(|e| AuditError::Proof(format!("checkpoint at seq {}: {e}", cp.seq)))?;
    if cp.frontier.is_some() {
        return bad("a published checkpoint carries no frontier".into());
    }
    for w in &cp.witnesses {
        w.verify(cp.seq, &cp.head, &cp.root)
            .map_err(AuditError::Proof)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::keys::generate;
    use crate::audit::log::{AuditLog, AuditOptions};
    use crate::audit::record::{Entry, Kind};
    use serde_json::json;

    #[tokio::test]
    async fn audit_proof_round_trip_for_every_record() {
        let dir = std::env::temp_dir().join(format!("tautan-audit-proof-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = generate().unwrap();
        let log = AuditLog::open(&dir, AuditOptions::new(key.clone())).unwrap();
        for i in 0..23 {
            log.append(Entry::new(Kind::Intent, json!({ "i": i, "x": 0.5 })))
                .await
                .unwrap();
        }
        log.checkpoint_now().await.unwrap();
        log.append(Entry::new(Kind::Logout, json!({})))
            .await
            .unwrap();
        let vk = key.verifying_key();
        for seq in 1..=23 {
            let p = prove(&dir, seq).unwrap();
            assert_eq!(p.record.seq, seq);
            assert_eq!(p.tree_size, 23);
            check_proof(&p, &vk).unwrap();
            // Through JSON, as a third party receives it.
            let text = serde_json::to_string_pretty(&p).unwrap();
            let back: Proof = serde_json::from_str(&text).unwrap();
            check_proof(&back, &vk).unwrap();
            let mut altered = back.clone();
            altered.record.fields = json!({ "i": 99, "x": 0.5 });
            assert!(check_proof(&altered, &vk).is_err());
            let mut wrong_seq = back.clone();
            wrong_seq.leaf_index = (seq) % 23;
            assert!(check_proof(&wrong_seq, &vk).is_err());
        }
        // Not yet covered by a checkpoint.
        assert!(prove(&dir, 24).is_err());
        // Another key does not accept it.
        assert!(check_proof(
            &prove(&dir, 5).unwrap(),
            &generate().unwrap().verifying_key()
        )
        .is_err());
        log.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
