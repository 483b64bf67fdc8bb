//! The audit log end to end: a log written through the real appender by
//! concurrent tasks, then tampered with in every way the threat model
//! names, each copy checked with the `tautan audit verify` binary; a writer
//! process killed with SIGKILL mid-append; inclusion proofs checked by a
//! third party. No database needed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use tautan::audit::checkpoint::Checkpoint;
use tautan::audit::hash::hash_from_hex;
use tautan::audit::keys::{generate, read_signing_key, read_verifying_key, write_keypair};
use tautan::audit::record::{canonical, check_line, seal, Record};
use tautan::audit::segment::list_segments;
use tautan::audit::{check_proof, AuditLog, AuditOptions, Entry, Kind, Proof};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tautan"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tautan-audit-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn keygen(path: &Path) {
    let out = Command::new(bin())
        .args(["keygen", "--out"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `tautan audit verify --json`: (exit code, report).
fn verify_bin(dir: &Path, key: &Path, external: Option<&Path>) -> (i32, Value) {
    let mut cmd = Command::new(bin());
    cmd.args(["audit", "verify", "--json", "--dir"])
        .arg(dir)
        .arg("--key")
        .arg(key);
    if let Some(e) = external {
        cmd.arg("--external").arg(e);
    }
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, report)
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<Record>(line).unwrap().seq
}

/// Writes `statements` statements (intent + completion) from `tasks`
/// concurrent tasks.
async fn write_statements(log: &Arc<AuditLog>, tasks: usize, statements: usize) {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..statements {
                let intent = log
                    .append(Entry::new(
                        Kind::Intent,
                        json!({
                            "user": format!("analis_{t}"),
                            "roles": ["dinkes"],
                            "purpose": "uji",
                            "sql": format!("SELECT * FROM kesehatan.public.balita WHERE id = {i}"),
                            "tables": ["kesehatan.public.balita"],
                            "policy_version": 3,
                            "decision": "allow",
                        }),
                    ))
                    .await
                    .unwrap();
                log.append(Entry::completion(
                    intent,
                    json!({ "rows": 512, "bytes": 20480, "duration_ms": 1.25, "sqlstate": "00000" }),
                ))
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}

struct Fixture {
    root: PathBuf,
    base: PathBuf,
    old: PathBuf,
    external: PathBuf,
    public: PathBuf,
}

/// A log of 4,000 records in several segments, checkpoints every 500
/// records, an external checkpoint, and a copy of the folder taken at 2,000.
async fn fixture(name: &str) -> Fixture {
    let root = scratch(name);
    let key = root.join("custodian.pem");
    keygen(&key);
    let public = root.join("custodian.pem.pub");
    let base = root.join("log");
    let external = root.join("external-latest.json");
    let mut opts = AuditOptions::new(read_signing_key(&key).unwrap());
    opts.checkpoint_every_records = 500;
    opts.segment_max_bytes = 256 * 1024;
    opts.external_checkpoint = Some(external.clone());
    let log = Arc::new(AuditLog::open(&base, opts).unwrap());
    write_statements(&log, 8, 125).await;
    assert_eq!(log.checkpoint_now().await.unwrap().unwrap().seq, 2000);
    let old = root.join("old-copy");
    copy_dir(&base, &old);
    write_statements(&log, 8, 125).await;
    assert_eq!(log.close().await.unwrap().unwrap().seq, 4000);
    Fixture {
        root,
        base,
        old,
        external,
        public,
    }
}

/// The segment holding `seq`, and the 1-based line.
fn locate(dir: &Path, seq: u64) -> (PathBuf, usize) {
    for s in list_segments(dir).unwrap() {
        for (i, l) in lines_of(&s.path).iter().enumerate() {
            if seq_of(l) == seq {
                return (s.path.clone(), i + 1);
            }
        }
    }
    panic!("no record {seq}");
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[tokio::test]
async fn audit_tampering_is_detected_and_located() {
    let f = fixture("tamper").await;
    let segs = list_segments(&f.base).unwrap();
    assert!(segs.len() >= 4, "want several segments, got {}", segs.len());
    let (code, report) = verify_bin(&f.base, &f.public, Some(&f.external));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["last_seq"], 4000);
    assert!(report["first_bad"].is_null());
    // A checkpoint at the end of the batch that reaches 500 records since
    // the last, at 2,000 (checkpoint_now) and at 4,000 (close).
    let cps: Vec<u64> = lines_of(&f.base.join("checkpoints.jsonl"))
        .iter()
        .map(|l| serde_json::from_str::<Checkpoint>(l).unwrap().seq)
        .collect();
    assert!(cps.len() >= 8, "{cps:?}");
    assert_eq!(report["checkpoints"], cps.len());
    let third_cp = cps[2];
    let (first_after_1234, first_after_line) = cps
        .iter()
        .enumerate()
        .find(|(_, s)| **s >= 1234)
        .map(|(i, s)| (*s, i as u64 + 1))
        .unwrap();

    let seg2 = segs[1].clone();
    let seg2_lines = lines_of(&seg2.path);
    let mut detected = Vec::new();
    let mut case = |name: &str,
                    tamper: &dyn Fn(&Path),
                    dir_from: &Path,
                    want_seq: u64,
                    want_file: &str,
                    want_line: Option<u64>,
                    want_text: &str| {
        let dir = f.root.join(format!("case-{name}"));
        copy_dir(dir_from, &dir);
        tamper(&dir);
        let (code, report) = verify_bin(&dir, &f.public, Some(&f.external));
        assert_eq!(code, 1, "{name}: verify should fail: {report:#}");
        let bad = &report["first_bad"];
        assert_eq!(bad["seq"], want_seq, "{name}: {bad:#}");
        assert_eq!(bad["file"], want_file, "{name}: {bad:#}");
        if let Some(l) = want_line {
            assert_eq!(bad["line"], l, "{name}: {bad:#}");
        }
        let problem = bad["problem"].as_str().unwrap_or_default();
        assert!(problem.contains(want_text), "{name}: {problem}");
        eprintln!("audit tamper case {name}: detected: {bad}");
        detected.push(name.to_string());
    };

    // 1. An edited value.
    let l10 = seq_of(&seg2_lines[9]);
    case(
        "edit",
        &|d| {
            let p = d.join(&seg2.name);
            let mut lines = lines_of(&p);
            lines[9] = lines[9].replacen("analis_", "analis_9", 1).replacen(
                "\"rows\":512",
                "\"rows\":5",
                1,
            );
            write_lines(&p, &lines);
        },
        &f.base,
        l10,
        &seg2.name,
        Some(10),
        "content altered",
    );

    // 2. A deleted record.
    let l20 = seq_of(&seg2_lines[19]);
    case(
        "delete",
        &|d| {
            let p = d.join(&seg2.name);
            let mut lines = lines_of(&p);
            lines.remove(19);
            write_lines(&p, &lines);
        },
        &f.base,
        l20,
        &seg2.name,
        Some(20),
        "missing",
    );

    // 3. Two records swapped.
    let l30 = seq_of(&seg2_lines[29]);
    case(
        "swap",
        &|d| {
            let p = d.join(&seg2.name);
            let mut lines = lines_of(&p);
            lines.swap(29, 30);
            write_lines(&p, &lines);
        },
        &f.base,
        l30,
        &seg2.name,
        Some(30),
        "swapped",
    );

    // 4. A record inserted: well formed, correctly chained to its
    // predecessor and correctly hashed (all an attacker without the key can
    // do), placed before line 40.
    let l40 = seq_of(&seg2_lines[39]);
    case(
        "insert",
        &|d| {
            let p = d.join(&seg2.name);
            let mut lines = lines_of(&p);
            let (prev, prev_hash) = check_line(lines[38].as_bytes()).unwrap();
            let fields =
                canonical(&json!({ "user": "mallory", "sql": "SELECT 1", "decision": "allow" }));
            let (_, forged) = seal(prev.seq + 1, &prev.ts, Kind::Intent, &fields, &prev_hash);
            lines.insert(39, forged);
            write_lines(&p, &lines);
        },
        &f.base,
        l40,
        &seg2.name,
        Some(40),
        "inserted",
    );

    // 5. The tail truncated after a checkpoint: records 3701.. removed
    // (the checkpoints beyond 3700 stay).
    let (seg_3700, line_3700) = locate(&f.base, 3700);
    case(
        "truncate",
        &|d| {
            for s in list_segments(d).unwrap() {
                if s.first > 3700 {
                    std::fs::remove_file(&s.path).unwrap();
                }
            }
            let p = d.join(file_name(&seg_3700));
            let lines = lines_of(&p);
            write_lines(&p, &lines[..line_3700]);
        },
        &f.base,
        3701,
        &file_name(&seg_3700),
        Some(line_3700 as u64 + 1),
        "truncated",
    );

    // 6. A segment replaced by the same-named segment of another log.
    let other = f.root.join("other-log");
    {
        let mut opts = AuditOptions::new(generate().unwrap());
        opts.segment_max_bytes = 256 * 1024;
        let log = Arc::new(AuditLog::open(&other, opts).unwrap());
        write_statements(&log, 8, 125).await;
        log.close().await.unwrap();
    }
    let other_seg = list_segments(&other).unwrap()[1].clone();
    case(
        "replace-segment",
        &|d| {
            std::fs::copy(&other_seg.path, d.join(&seg2.name)).unwrap();
        },
        &f.base,
        seg2.first,
        &seg2.name,
        Some(1),
        "",
    );

    // 7. The whole folder rolled back to the copy taken at 2,000 while the
    // external checkpoint (at 4,000) was kept elsewhere.
    let old_last = list_segments(&f.old).unwrap().last().unwrap().clone();
    let old_lines = lines_of(&old_last.path).len() as u64;
    case(
        "rollback",
        &|_| {},
        &f.old,
        2001,
        &old_last.name,
        Some(old_lines + 1),
        "rolled back",
    );

    // 8. A checkpoint forged with another key (same statement, re-signed),
    // and one naming the custodian's key but signed by another.
    let intruder = generate().unwrap();
    case(
        "forged-checkpoint",
        &|d| {
            let p = d.join("checkpoints.jsonl");
            let mut lines = lines_of(&p);
            let cp: Checkpoint = serde_json::from_str(&lines[2]).unwrap();
            let mut forged = Checkpoint::sign(
                cp.seq,
                &hash_from_hex(&cp.head).unwrap(),
                &hash_from_hex(&cp.root).unwrap(),
                cp.ts.clone(),
                &intruder,
            );
            forged.frontier = cp.frontier.clone();
            lines[2] = serde_json::to_string(&forged).unwrap();
            write_lines(&p, &lines);
        },
        &f.base,
        third_cp,
        "checkpoints.jsonl",
        Some(3),
        "not the custodian key",
    );
    case(
        "forged-checkpoint-same-key-name",
        &|d| {
            let p = d.join("checkpoints.jsonl");
            let mut lines = lines_of(&p);
            let cp: Checkpoint = serde_json::from_str(&lines[2]).unwrap();
            let mut forged = Checkpoint::sign(
                cp.seq,
                &hash_from_hex(&cp.head).unwrap(),
                &hash_from_hex(&cp.root).unwrap(),
                cp.ts.clone(),
                &intruder,
            );
            forged.key = cp.key.clone();
            lines[2] = serde_json::to_string(&forged).unwrap();
            write_lines(&p, &lines);
        },
        &f.base,
        third_cp,
        "checkpoints.jsonl",
        Some(3),
        "does not verify",
    );

    // 9. An edit with the whole chain after it re-hashed (no key, so the
    // checkpoints cannot follow): the first checkpoint after the edit.
    case(
        "rehashed-chain",
        &|d| {
            let mut prev_hash = None;
            for s in list_segments(d).unwrap() {
                let mut lines = lines_of(&s.path);
                let mut changed = false;
                for (i, l) in lines.clone().iter().enumerate() {
                    let r: Record = serde_json::from_str(l).unwrap();
                    if r.seq < 1234 {
                        continue;
                    }
                    let mut fields = r.fields.clone();
                    if r.seq == 1234 {
                        fields["user"] = json!("someone_else");
                    }
                    let prev = prev_hash.unwrap_or_else(|| hash_from_hex(&r.prev).unwrap());
                    let (h, line) = seal(r.seq, &r.ts, r.kind, &canonical(&fields), &prev);
                    prev_hash = Some(h);
                    lines[i] = line;
                    changed = true;
                }
                if changed {
                    write_lines(&s.path, &lines);
                }
            }
        },
        &f.base,
        first_after_1234,
        "checkpoints.jsonl",
        Some(first_after_line),
        "rewritten",
    );

    println!(
        "audit: {} of 10 tampering cases detected and located: {}",
        detected.len(),
        detected.join(", ")
    );
    assert_eq!(detected.len(), 10);
    let _ = std::fs::remove_dir_all(&f.root);
}

#[tokio::test]
async fn audit_proof_checked_by_a_third_party() {
    let f = fixture("proof").await;
    let proof_path = f.root.join("proof.json");
    let out = Command::new(bin())
        .args(["audit", "prove", "1234", "--dir"])
        .arg(&f.base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&proof_path, &out.stdout).unwrap();
    // The third party: only the proof and the public key, in another folder.
    let third = f.root.join("third-party");
    std::fs::create_dir_all(&third).unwrap();
    std::fs::copy(&proof_path, third.join("proof.json")).unwrap();
    std::fs::copy(&f.public, third.join("custodian.pub")).unwrap();
    let check = |file: &Path| {
        Command::new(bin())
            .current_dir(&third)
            .args(["audit", "check-proof"])
            .arg(file)
            .args(["--key", "custodian.pub"])
            .output()
            .unwrap()
    };
    let ok = check(Path::new("proof.json"));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("proof OK: record 1234"), "{text}");

    // Every single-byte change (low bit flipped) anywhere in the proof is
    // rejected.
    let bytes = std::fs::read(&proof_path).unwrap();
    let key = read_verifying_key(&f.public).unwrap();
    let mut rejected = 0;
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 1;
        let accepted = match serde_json::from_slice::<Proof>(&b) {
            Ok(p) => check_proof(&p, &key).is_ok(),
            Err(_) => false,
        };
        assert!(
            !accepted,
            "a proof with byte {i} changed ({:?} → {:?}) was accepted",
            bytes[i] as char, b[i] as char
        );
        rejected += 1;
    }
    // ... and through the binary, one change in the path and one in the record.
    let text = String::from_utf8(bytes).unwrap();
    let proof: Proof = serde_json::from_str(&text).unwrap();
    let p0 = &proof.path[0];
    let mut flipped_path = p0.clone().into_bytes();
    flipped_path[10] = if flipped_path[10] == b'0' { b'1' } else { b'0' };
    let bad1 = text.replacen(p0, std::str::from_utf8(&flipped_path).unwrap(), 1);
    let bad2 = text.replacen("\"rows\": 512", "\"rows\": 513", 1);
    let bad2 = if bad2 == text {
        text.replacen("analis_", "analis-", 1)
    } else {
        bad2
    };
    for (i, bad) in [bad1, bad2].iter().enumerate() {
        assert_ne!(bad, &text);
        let p = third.join(format!("bad{i}.json"));
        std::fs::write(&p, bad).unwrap();
        let out = check(&p);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(shown.contains("REJECTED"), "{shown}");
    }
    println!("audit: proof of record 1234 accepted; all {rejected} one-byte changes rejected");

    // A witness countersigns; the proof then carries it and still checks.
    let producer = f.root.join("producer.pem");
    keygen(&producer);
    let saved = f.root.join("producer-copy.json");
    let out = Command::new(bin())
        .args(["audit", "witness", "--name", "dukcapil", "--key"])
        .arg(&producer)
        .arg("--dir")
        .arg(&f.base)
        .arg("--custodian-key")
        .arg(&f.public)
        .arg("--save")
        .arg(&saved)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = tautan::audit::prove(&f.base, 99).unwrap();
    assert_eq!(p.checkpoint.witnesses.len(), 1);
    assert_eq!(p.checkpoint.witnesses[0].name, "dukcapil");
    check_proof(&p, &key).unwrap();
    // The producer's copy works as an external checkpoint.
    let (code, report) = verify_bin(&f.base, &f.public, Some(&saved));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["witnessed"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&f.root);
}

#[tokio::test]
async fn audit_survives_kill_9_mid_append() {
    let root = scratch("crash");
    let key = root.join("custodian.pem");
    keygen(&key);
    let public = root.join("custodian.pem.pub");
    let dir = root.join("log");
    let external = root.join("external.json");
    let mut child = Command::new(bin())
        .args([
            "audit",
            "load",
            "--count",
            "100000000",
            "--concurrency",
            "8",
        ])
        .args([
            "--hold-open",
            "3",
            "--checkpoint-every",
            "700",
            "--segment-max-mb",
            "1",
        ])
        .arg("--print-acks")
        .arg("--dir")
        .arg(&dir)
        .arg("--key")
        .arg(&key)
        .arg("--external")
        .arg(&external)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut acked: Vec<(u64, String, Option<u64>)> = Vec::new();
    let mut line = String::new();
    while acked.len() < 6000 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.first() == Some(&"ack") {
            acked.push((
                parts[1].parse().unwrap(),
                parts[2].to_string(),
                parts.get(3).map(|s| s.parse().unwrap()),
            ));
        }
    }
    // SIGKILL, mid-append.
    child.kill().unwrap();
    // Acknowledgements already printed are still in the pipe.
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.first() == Some(&"ack") && parts.len() >= 3 {
            acked.push((
                parts[1].parse().unwrap(),
                parts[2].to_string(),
                parts.get(3).and_then(|s| s.parse().ok()),
            ));
        }
    }
    child.wait().unwrap();
    let max_acked = acked.iter().map(|a| a.0).max().unwrap();
    assert!(max_acked >= 6000);

    let (code, report) = verify_bin(&dir, &public, Some(&external));
    assert_eq!(code, 0, "a crash is not tampering: {report:#}");
    let last = report["last_seq"].as_u64().unwrap();
    assert!(
        last >= max_acked,
        "acknowledged record lost: last {last} < {max_acked}"
    );
    assert!(
        last <= max_acked + 8,
        "more than one batch beyond the last acknowledgement: {last} vs {max_acked}"
    );
    let open: Vec<u64> = report["open_intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    for held in 1..=3 {
        assert!(
            open.contains(&held),
            "held-open intent {held} not listed: {open:?}"
        );
    }
    let completed: std::collections::HashSet<u64> = acked.iter().filter_map(|a| a.2).collect();
    for o in &open {
        assert!(
            !completed.contains(o),
            "intent {o} has an acknowledged completion"
        );
    }
    assert!(open.len() <= 3 + 8, "{open:?}");
    println!(
        "audit: killed after {} acknowledged appends (max seq {max_acked}); log holds {last}; {} open intents listed",
        acked.len(),
        open.len()
    );

    // The log reopens where it stopped and goes on.
    let mut opts = AuditOptions::new(read_signing_key(&key).unwrap());
    opts.external_checkpoint = Some(external.clone());
    let log = AuditLog::open(&dir, opts).unwrap();
    assert_eq!(log.recovery().last_seq, last);
    let next = log
        .append(Entry::new(Kind::Startup, json!({ "after": "crash" })))
        .await
        .unwrap();
    assert_eq!(next, last + 1);
    log.close().await.unwrap();
    let (code, report) = verify_bin(&dir, &public, Some(&external));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["last_seq"], last + 1);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn audit_keygen_refuses_to_overwrite() {
    let root = scratch("keygen");
    let k = root.join("k.pem");
    write_keypair(&k, &generate().unwrap()).unwrap();
    let out = Command::new(bin())
        .args(["keygen", "--out"])
        .arg(&k)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&root);
}
