//! Checking a log folder: `tautan audit verify`.
//!
//! One pass over the segments in order, one line in memory at a time (plus
//! one line of look-ahead), keeping only the Merkle frontier, the hash of
//! the last record, the checkpoints and the statements still open. Checked:
//!
//! - every line parses, hashes to its `hash`, and is in canonical form;
//! - `seq` is contiguous from 1 across segments, and each segment's name
//!   announces its first seq;
//! - every `prev` is the previous record's hash;
//! - every checkpoint of `checkpoints.jsonl` is signed by the custodian's
//!   key, in increasing seq order, and its `head` and `root` are those of
//!   the records;
//! - the external checkpoint (if given) is signed by the custodian, is one
//!   of the log's checkpoints, and is not ahead of the records (rollback);
//! - every witness countersignature verifies, and the witnessed head and
//!   root are the records' (history rewritten after a producer signed);
//! - checkpoints, external or witnessed, covering records the log no longer
//!   has (the tail truncated, the folder rolled back).
//!
//! The *first bad record* is reported with its seq, file and line: for a
//! record that is altered, deleted, swapped, inserted or comes from another
//! log, the position where the chain first goes wrong; for a checkpoint,
//! its line in `checkpoints.jsonl`. A line cut short at the very end of the
//! last segment is a crash during a write (never acknowledged): noted, not
//! tampering. Intents without a completion are listed (statements that were
//! running when the process stopped), not counted as tampering either.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::checkpoint::{read_checkpoint_file, read_checkpoints, read_witnesses};
use super::error::AuditError;
use super::hash::{hash_from_hex, push_hex, to_hex, Hash, ZERO_HASH};
use super::keys::key_hex;
use super::merkle::Frontier;
use super::record::{check_line, Kind, Record, Seq};
use super::segment::{list_segments, Line, LineReader, SegmentFile, CHECKPOINTS, WITNESSES};
use super::Result;

/// Something wrong in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The record concerned (for a checkpoint: the seq it covers).
    pub seq: Option<Seq>,
    /// The file (a segment, `checkpoints.jsonl`, `witnesses.jsonl`, or the
    /// external checkpoint's path).
    pub file: String,
    /// 1-based line in that file.
    pub line: Option<u64>,
    /// What is wrong.
    pub problem: String,
    /// Records sort before checkpoints at the same seq.
    #[serde(skip)]
    rank: u8,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(s) => write!(f, "seq {s}")?,
            None => write!(f, "-")?,
        }
        write!(f, " ({}", self.file)?;
        if let Some(l) = self.line {
            write!(f, " line {l}")?;
        }
        write!(f, "): {}", self.problem)
    }
}

/// An intent without its completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenIntent {
    /// The intent's seq.
    pub seq: Seq,
    /// Its segment.
    pub segment: String,
    /// Its line.
    pub line: u64,
    /// When it was written.
    pub ts: String,
    /// `fields.user`, if any.
    pub user: Option<String>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The folder.
    pub dir: PathBuf,
    /// Segment files.
    pub segments: usize,
    /// Records checked in order (up to the first bad one).
    pub records: u64,
    /// The last good record's seq.
    pub last_seq: Seq,
    /// Checkpoints in `checkpoints.jsonl`.
    pub checkpoints: usize,
    /// The highest checkpoint seq.
    pub latest_checkpoint: Option<Seq>,
    /// The external checkpoint's seq, when one was given.
    pub external_checkpoint: Option<Seq>,
    /// Countersignatures that verified (`name (key) at seq n`).
    pub witnessed: Vec<String>,
    /// The first bad record (or checkpoint); None when the log is intact.
    pub first_bad: Option<Finding>,
    /// Every finding, first bad first.
    pub findings: Vec<Finding>,
    /// Statements whose intent has no completion.
    pub open_intents: Vec<OpenIntent>,
    /// Things worth knowing that are not tampering.
    pub notes: Vec<String>,
}

impl Report {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// A statement of `(seq, head, root)` the records must match.
struct Claim {
    seq: Seq,
    head: String,
    root: String,
    file: String,
    line: Option<u64>,
    what: String,
}

/// One line of the segments, in log order.
struct Item {
    seg: usize,
    line: u64,
    /// None: a line cut short (no newline).
    bytes: Option<Vec<u8>>,
    first_in_segment: bool,
}

struct Items {
    segments: Vec<SegmentFile>,
    next_seg: usize,
    reader: Option<(usize, LineReader, bool)>,
    peeked: Option<Item>,
}

impl Items {
    fn new(segments: Vec<SegmentFile>) -> Items {
        Items {
            segments,
            next_seg: 0,
            reader: None,
            peeked: None,
        }
    }

    fn read(&mut self) -> Result<Option<Item>> {
        loop {
            if self.reader.is_none() {
                if self.next_seg >= self.segments.len() {
                    return Ok(None);
                }
                let r = LineReader::open(&self.segments[self.next_seg].path)?;
                self.reader = Some((self.next_seg, r, true));
                self.next_seg += 1;
            }
            let Some((seg, r, first)) = self.reader.as_mut() else {
                continue;
            };
            let seg = *seg;
            match r.next_line()? {
                Some(Line::Full { no, bytes, .. }) => {
                    let item = Item {
                        seg,
                        line: no,
                        bytes: Some(bytes.to_vec()),
                        first_in_segment: *first,
                    };
                    *first = false;
                    return Ok(Some(item));
                }
                Some(Line::Torn { no, .. }) => {
                    let item = Item {
                        seg,
                        line: no,
                        bytes: None,
                        first_in_segment: *first,
                    };
                    *first = false;
                    return Ok(Some(item));
                }
                None => {
                    self.reader = None;
                }
            }
        }
    }

    fn next(&mut self) -> Result<Option<Item>> {
        match self.peeked.take() {
            Some(i) => Ok(Some(i)),
            None => self.read(),
        }
    }

    fn peek(&mut self) -> Result<Option<&Item>> {
        if self.peeked.is_none() {
            self.peeked = self.read()?;
        }
        Ok(self.peeked.as_ref())
    }

    fn name(&self, seg: usize) -> String {
        self.segments
            .get(seg)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}

/// The last record accepted.
struct Last {
    seq: Seq,
    hash: Hash,
    prev: String,
    seg: usize,
    line: u64,
}

fn finding(seq: Option<Seq>, file: &str, line: Option<u64>, problem: String, rank: u8) -> Finding {
    Finding {
        seq,
        file: file.to_string(),
        line,
        problem,
        rank,
    }
}

/// Verifies the log in `dir` with the custodian's public key, the external
/// checkpoint (if kept), and the keys of trusted witnesses (when empty,
/// every countersignature that verifies against the key it names counts).
pub fn verify(
    dir: &Path,
    custodian: &VerifyingKey,
    external: Option<&Path>,
    witness_keys: &[VerifyingKey],
) -> Result<Report> {
    if !dir.is_dir() {
        return Err(AuditError::Invalid(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let mut report = Report {
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let mut findings: Vec<Finding> = Vec::new();
    let mut claims: Vec<Claim> = Vec::new();

    // Checkpoints.
    let mut ckpts = Vec::new();
    let mut prev_seq = 0;
    for (no, cp) in read_checkpoints(dir)? {
        report.checkpoints += 1;
        let cp = match cp {
            Ok(c) => c,
            Err(e) => {
                findings.push(finding(
                    None,
                    CHECKPOINTS,
                    Some(no),
                    format!("unreadable checkpoint: {e}"),
                    1,
                ));
                continue;
            }
        };
        if let Err(e) = cp.verify_signature(custodian) {
            findings.push(finding(
                Some(cp.seq),
                CHECKPOINTS,
                Some(no),
                format!("checkpoint at seq {} is forged or altered: {e}", cp.seq),
                1,
            ));
        }
        if cp.seq <= prev_seq {
            findings.push(finding(
                Some(cp.seq),
                CHECKPOINTS,
                Some(no),
                format!(
                    "checkpoint at seq {} follows one at seq {prev_seq}: checkpoints only move forward",
                    cp.seq
                ),
                1,
            ));
        }
        prev_seq = prev_seq.max(cp.seq);
        claims.push(Claim {
            seq: cp.seq,
            head: cp.head.clone(),
            root: cp.root.clone(),
            file: CHECKPOINTS.into(),
            line: Some(no),
            what: format!("checkpoint at seq {}", cp.seq),
        });
        ckpts.push(cp);
    }
    report.latest_checkpoint = ckpts.iter().map(|c| c.seq).max();

    // The external checkpoint.
    if let Some(ext_path) = external {
        let file = ext_path.display().to_string();
        if !ext_path.exists() {
            if ckpts.is_empty() {
                report
                    .notes
                    .push(format!("no external checkpoint at {file} yet"));
            } else {
                findings.push(finding(
                    None,
                    &file,
                    None,
                    "the external checkpoint file is missing".into(),
                    1,
                ));
            }
        } else {
            match read_checkpoint_file(ext_path) {
                Err(e) => findings.push(finding(None, &file, None, e.to_string(), 1)),
                Ok(ext) => {
                    report.external_checkpoint = Some(ext.seq);
                    if let Err(e) = ext.verify_signature(custodian) {
                        findings.push(finding(
                            Some(ext.seq),
                            &file,
                            None,
                            format!("external checkpoint: {e}"),
                            1,
                        ));
                    }
                    if !ckpts.iter().any(|c| c.same_statement(&ext)) {
                        let latest = report.latest_checkpoint.unwrap_or(0);
                        let problem = if ext.seq > latest {
                            format!(
                                "the external checkpoint (seq {}, {}) is newer than every checkpoint in {CHECKPOINTS} (latest seq {latest}): the folder was rolled back",
                                ext.seq, ext.ts
                            )
                        } else {
                            format!(
                                "the external checkpoint (seq {}, {}) is not among the log's checkpoints: {CHECKPOINTS} was rewritten",
                                ext.seq, ext.ts
                            )
                        };
                        findings.push(finding(Some(ext.seq), &file, None, problem, 1));
                    }
                    claims.push(Claim {
                        seq: ext.seq,
                        head: ext.head.clone(),
                        root: ext.root.clone(),
                        file: file.clone(),
                        line: None,
                        what: format!("the external checkpoint (seq {}, {})", ext.seq, ext.ts),
                    });
                }
            }
        }
    }

    // Witness countersignatures.
    let trusted: HashSet<String> = witness_keys.iter().map(key_hex).collect();
    for (no, w) in read_witnesses(dir)? {
        let w = match w {
            Ok(w) => w,
            Err(e) => {
                findings.push(finding(
                    None,
                    WITNESSES,
                    Some(no),
                    format!("unreadable countersignature: {e}"),
                    1,
                ));
                continue;
            }
        };
        if let Err(e) = w.witness.verify(w.seq, &w.head, &w.root) {
            findings.push(finding(Some(w.seq), WITNESSES, Some(no), e, 1));
            continue;
        }
        if !trusted.is_empty() && !trusted.contains(&w.witness.key) {
            report.notes.push(format!(
                "{WITNESSES} line {no}: witness {} signs with key {}, not among the trusted witness keys (not counted)",
                w.witness.name, w.witness.key
            ));
            continue;
        }
        report.witnessed.push(format!(
            "{} ({}) at seq {}",
            w.witness.name, w.witness.key, w.seq
        ));
        claims.push(Claim {
            seq: w.seq,
            head: w.head,
            root: w.root,
            file: WITNESSES.into(),
            line: Some(no),
            what: format!(
                "witness {}'s countersignature at seq {}",
                w.witness.name, w.seq
            ),
        });
    }
    claims.sort_by_key(|c| c.seq);
    for c in claims.iter().filter(|c| c.seq == 0) {
        findings.push(finding(
            Some(0),
            &c.file,
            c.line,
            format!("{} covers no record", c.what),
            1,
        ));
    }

    // The records.
    let segments = list_segments(dir)?;
    report.segments = segments.len();
    let n_segments = segments.len();
    let mut items = Items::new(segments);
    let mut frontier = Frontier::new();
    let mut last = Last {
        seq: 0,
        hash: ZERO_HASH,
        prev: String::new(),
        seg: 0,
        line: 0,
    };
    let mut open: BTreeMap<Seq, OpenIntent> = BTreeMap::new();
    let mut ci = claims
        .iter()
        .position(|c| c.seq > 0)
        .unwrap_or(claims.len());
    let mut broken = false;
    let mut hex = String::with_capacity(64);
    // The last seq whose claims all matched (for the range of a rewrite).
    let mut last_good_claim: Seq = 0;
    while let Some(item) = items.next()? {
        let file = items.name(item.seg);
        let expected = last.seq + 1;
        let Some(bytes) = item.bytes else {
            let at_end = item.seg + 1 == n_segments && items.peek()?.is_none();
            if at_end {
                report.notes.push(format!(
                    "{file} line {}: an incomplete last line (a crash during a write; never acknowledged) is ignored",
                    item.line
                ));
                break;
            }
            findings.push(finding(
                Some(expected),
                &file,
                Some(item.line),
                "incomplete line in the middle of the log".into(),
                0,
            ));
            broken = true;
            break;
        };
        let (rec, h) = match check_line(&bytes) {
            Ok(x) => x,
            Err(fault) => {
                findings.push(finding(
                    Some(expected),
                    &file,
                    Some(item.line),
                    format!("record {expected}: {fault}"),
                    0,
                ));
                broken = true;
                break;
            }
        };
        if rec.seq != expected {
            // Two records claiming the same place after the same record:
            // one was inserted; the one the next record chains to is genuine.
            if last.seq > 0 && rec.seq == last.seq && rec.prev == last.prev {
                let next_prev = match items.peek()? {
                    Some(Item { bytes: Some(b), .. }) => Record::parse(b).ok().map(|r| r.prev),
                    _ => None,
                };
                let (seg, line) = if next_prev.as_deref() == Some(to_hex(&h).as_str()) {
                    (last.seg, last.line)
                } else {
                    (item.seg, item.line)
                };
                let (other_line, this_line) = if line == item.line && seg == item.seg {
                    (last.line, item.line)
                } else {
                    (item.line, last.line)
                };
                findings.push(finding(
                    Some(rec.seq),
                    &items.name(seg),
                    Some(line),
                    format!(
                        "record inserted: line {this_line} claims seq {} after record {}, as line {other_line} does, and the log goes on from line {other_line}",
                        rec.seq,
                        rec.seq - 1
                    ),
                    0,
                ));
            } else {
                // The next line tells a move from a deletion: the record
                // that belongs here comes right after.
                let next_seq = match items.peek()? {
                    Some(Item { bytes: Some(b), .. }) => Record::parse(b).ok().map(|r| r.seq),
                    _ => None,
                };
                let problem = if rec.seq > expected && next_seq == Some(expected) {
                    format!(
                        "found seq {} where {expected} belongs, and {expected} right after it: records swapped",
                        rec.seq
                    )
                } else if rec.seq > expected {
                    if rec.seq == expected + 1 {
                        format!("record {expected} is missing (found seq {} where {expected} belongs): deleted", rec.seq)
                    } else {
                        format!(
                            "records {expected}..{} are missing (found seq {} where {expected} belongs): deleted",
                            rec.seq - 1,
                            rec.seq
                        )
                    }
                } else {
                    format!(
                        "found seq {} where {expected} belongs: records reordered, duplicated or inserted",
                        rec.seq
                    )
                };
                findings.push(finding(Some(expected), &file, Some(item.line), problem, 0));
            }
            broken = true;
            break;
        }
        hex.clear();
        push_hex(&mut hex, &last.hash);
        if rec.prev != hex {
            let problem = if item.first_in_segment && last.seq > 0 {
                format!(
                    "prev is not the hash of record {} (the last of {}): this segment does not continue the log (replaced, or from another log)",
                    last.seq,
                    items.name(last.seg)
                )
            } else {
                format!(
                    "prev is not the hash of record {}: a record was replaced, inserted or reordered",
                    last.seq
                )
            };
            findings.push(finding(Some(expected), &file, Some(item.line), problem, 0));
            broken = true;
            break;
        }
        if item.first_in_segment {
            if let Some(s) = items.segments.get(item.seg) {
                if s.first != rec.seq {
                    findings.push(finding(
                        Some(rec.seq),
                        &file,
                        Some(item.line),
                        format!("segment {file} begins with seq {}: renamed", rec.seq),
                        0,
                    ));
                    broken = true;
                    break;
                }
            }
        }
        // Accepted.
        frontier.push(&h);
        report.records += 1;
        match rec.kind {
            Kind::Intent => {
                open.insert(
                    rec.seq,
                    OpenIntent {
                        seq: rec.seq,
                        segment: file.clone(),
                        line: item.line,
                        ts: rec.ts.clone(),
                        user: rec
                            .fields
                            .get("user")
                            .and_then(|u| u.as_str())
                            .map(str::to_string),
                    },
                );
            }
            Kind::Completion => match rec.intent_ref() {
                Some(i) if open.remove(&i).is_some() => {}
                Some(i) => report.notes.push(format!(
                    "{file} line {}: completion {} names intent {i}, which is not open",
                    item.line, rec.seq
                )),
                None => report.notes.push(format!(
                    "{file} line {}: completion {} names no intent",
                    item.line, rec.seq
                )),
            },
            _ => {}
        }
        let (mut claims_here, mut claims_matched) = (0, 0);
        while ci < claims.len() && claims[ci].seq == rec.seq {
            let c = &claims[ci];
            claims_here += 1;
            hex.clear();
            push_hex(&mut hex, &h);
            if c.head != hex {
                findings.push(finding(
                    Some(rec.seq),
                    &c.file,
                    c.line,
                    format!(
                        "{}: head {} is not record {}'s hash {hex}: records {}..={} were rewritten",
                        c.what,
                        c.head,
                        rec.seq,
                        last_good_claim + 1,
                        rec.seq
                    ),
                    1,
                ));
            } else if c.root != to_hex(&frontier.root()) {
                findings.push(finding(
                    Some(rec.seq),
                    &c.file,
                    c.line,
                    format!(
                        "{}: root differs from the Merkle root of records 1..={}: records {}..={} were rewritten",
                        c.what,
                        rec.seq,
                        last_good_claim + 1,
                        rec.seq
                    ),
                    1,
                ));
            } else {
                claims_matched += 1;
            }
            ci += 1;
        }
        if claims_here > 0 && claims_matched == claims_here {
            last_good_claim = rec.seq;
        }
        last = Last {
            seq: rec.seq,
            hash: h,
            prev: rec.prev,
            seg: item.seg,
            line: item.line,
        };
    }
    report.last_seq = last.seq;
    if let (false, true, Some(far)) = (broken, ci < claims.len(), claims.last()) {
        let others = claims.len() - ci - 1;
        let (file, line) = if n_segments == 0 {
            ("(no segment)".to_string(), None)
        } else {
            (
                items.name(n_segments - 1),
                Some(if last.seg + 1 == n_segments {
                    last.line + 1
                } else {
                    1
                }),
            )
        };
        findings.push(finding(
            Some(last.seq + 1),
            &file,
            line,
            format!(
                "record {} is missing: the log ends at seq {} but {} in {}{} covers records up to {}{}: the tail was truncated or the folder rolled back",
                last.seq + 1,
                last.seq,
                far.what,
                far.file,
                far.line.map(|l| format!(" line {l}")).unwrap_or_default(),
                far.seq,
                if others > 0 { format!(", as do {others} other checkpoint(s)") } else { String::new() }
            ),
            0,
        ));
    }
    findings.sort_by_key(|f| (f.seq.unwrap_or(Seq::MAX), f.rank));
    report.first_bad = findings.first().cloned();
    report.findings = findings;
    report.open_intents = open.into_values().collect();
    Ok(report)
}

/// Reads records `1..=upto`, insisting on a clean chain, and returns the
/// hash of record `upto` and the Merkle frontier at it; `visit` sees every
/// record with its hash. Used by witnesses and proofs, which refuse a log
/// that does not verify.
pub fn walk(
    dir: &Path,
    upto: Seq,
    mut visit: impl FnMut(&Record, &Hash),
) -> Result<(Hash, Frontier)> {
    let mut frontier = Frontier::new();
    let mut last = ZERO_HASH;
    let mut seq = 0;
    'outer: for seg in list_segments(dir)? {
        let mut r = LineReader::open(&seg.path)?;
        while let Some(line) = r.next_line()? {
            if seq == upto {
                break 'outer;
            }
            let Line::Full { no, bytes, .. } = line else {
                break 'outer;
            };
            let bad = |what: String| {
                AuditError::Corrupt(format!(
                    "{} line {no}: {what}; run `tautan audit verify`",
                    seg.name
                ))
            };
            let (rec, h) = check_line(bytes).map_err(|f| bad(f.to_string()))?;
            if rec.seq != seq + 1 {
                return Err(bad(format!("seq {} where {} belongs", rec.seq, seq + 1)));
            }
            if hash_from_hex(&rec.prev) != Some(last) {
                return Err(bad(format!("prev is not record {seq}'s hash")));
            }
            visit(&rec, &h);
            frontier.push(&h);
            last = h;
            seq = rec.seq;
        }
    }
    if seq < upto {
        return Err(AuditError::Corrupt(format!(
            "the records end at seq {seq}, before {upto}; run `tautan audit verify`"
        )));
    }
    Ok((last, frontier))
}

/// The hash of record `upto` and the Merkle root over records `1..=upto`.
pub fn recompute(dir: &Path, upto: Seq) -> Result<(Hash, Hash)> {
    let (head, frontier) = walk(dir, upto, |_, _| {})?;
    Ok((head, frontier.root()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::keys::generate;
    use crate::audit::log::{AuditLog, AuditOptions};
    use crate::audit::record::Entry;
    use serde_json::json;

    async fn small_log(name: &str) -> (PathBuf, VerifyingKey) {
        let dir =
            std::env::temp_dir().join(format!("tautan-audit-v-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = generate().unwrap();
        let mut opts = AuditOptions::new(key.clone());
        opts.checkpoint_every_records = 10;
        let log = AuditLog::open(&dir, opts).unwrap();
        for i in 0..15 {
            let s = log
                .append(Entry::new(Kind::Intent, json!({ "user": "ani", "i": i })))
                .await
                .unwrap();
            if i % 3 != 0 {
                log.append(Entry::completion(s, json!({ "rows": i })))
                    .await
                    .unwrap();
            }
        }
        log.close().await.unwrap();
        (dir, key.verifying_key())
    }

    fn segment(dir: &Path) -> PathBuf {
        list_segments(dir).unwrap()[0].path.clone()
    }

    fn edit_lines(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let p = segment(dir);
        let mut lines: Vec<String> = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        f(&mut lines);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    }

    #[tokio::test]
    async fn audit_verify_clean_log_lists_open_intents() {
        let (dir, key) = small_log("clean").await;
        let r = verify(&dir, &key, None, &[]).unwrap();
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.last_seq, 25);
        // i = 0, 3, 6, 9, 12 were never completed.
        let open: Vec<Seq> = r.open_intents.iter().map(|o| o.seq).collect();
        assert_eq!(open.len(), 5, "{open:?}");
        assert!(r
            .open_intents
            .iter()
            .all(|o| o.user.as_deref() == Some("ani")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn audit_verify_names_deleted_swapped_and_torn() {
        let (dir, key) = small_log("cases").await;
        edit_lines(&dir, |l| {
            l.remove(4);
        });
        let r = verify(&dir, &key, None, &[]).unwrap();
        let bad = r.first_bad.unwrap();
        assert_eq!((bad.seq, bad.line), (Some(5), Some(5)), "{bad}");
        assert!(bad.problem.contains("deleted"), "{bad}");

        let (dir, key) = small_log("swap").await;
        edit_lines(&dir, |l| l.swap(6, 7));
        let bad = verify(&dir, &key, None, &[]).unwrap().first_bad.unwrap();
        assert_eq!((bad.seq, bad.line), (Some(7), Some(7)), "{bad}");
        assert!(bad.problem.contains("swapped"), "{bad}");

        // A torn last line is a crash, not tampering ...
        let (dir, key) = small_log("torn").await;
        let mut text = std::fs::read_to_string(segment(&dir)).unwrap();
        text.push_str("{\"fields\":{\"us");
        std::fs::write(segment(&dir), &text).unwrap();
        let r = verify(&dir, &key, None, &[]).unwrap();
        assert!(r.is_clean(), "{r:?}");
        assert!(
            r.notes.iter().any(|n| n.contains("incomplete last line")),
            "{r:?}"
        );
        // ... but a torn line in the middle is.
        edit_lines(&dir, |l| l[3].truncate(20));
        let bad = verify(&dir, &key, None, &[]).unwrap().first_bad.unwrap();
        assert_eq!(bad.seq, Some(4), "{bad}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
