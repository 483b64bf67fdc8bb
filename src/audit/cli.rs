//! What the `tautan keygen` and `tautan audit …` commands do; `main.rs`
//! only parses arguments and calls these.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use serde_json::json;

use super::checkpoint::{add_witness, write_checkpoint_file};
use super::error::AuditError;
use super::keys::{self, public_path, read_signing_key, read_verifying_key};
use super::log::{AuditLog, AuditOptions};
use super::proof::{check_proof, prove, Proof};
use super::record::{Entry, Kind};
use super::verify::{verify, Report};
use super::Result;
use crate::config::{AuditConfig, FederationConfig};

/// `[audit]` of the config with its paths resolved, or nothing.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// The section, paths resolved against the config's folder.
    pub audit: Option<AuditConfig>,
}

impl Defaults {
    /// Reads `[audit]` from `config` when the file exists (a missing file
    /// means no defaults; a broken one is an error).
    pub fn load(config: &Path) -> std::result::Result<Defaults, String> {
        if !config.exists() {
            return Ok(Defaults::default());
        }
        let cfg = FederationConfig::load(config).map_err(|e| e.to_string())?;
        Ok(Defaults::of(&cfg))
    }

    /// `[audit]` of a loaded config, its paths resolved.
    pub fn of(cfg: &FederationConfig) -> Defaults {
        let audit = cfg.audit.clone().map(|mut a| {
            a.dir = cfg.resolve_path(&a.dir);
            a.key = a.key.map(|k| cfg.resolve_path(&k));
            a.external_checkpoint = a.external_checkpoint.map(|k| cfg.resolve_path(&k));
            a
        });
        Defaults { audit }
    }

    /// `--dir`, else `[audit] dir`.
    pub fn dir(&self, flag: Option<PathBuf>) -> Result<PathBuf> {
        flag.or_else(|| self.audit.as_ref().map(|a| a.dir.clone()))
            .ok_or_else(|| AuditError::Invalid("no --dir and no [audit] dir in the config".into()))
    }

    /// `--key` (a public key), else `<[audit] key>.pub`.
    pub fn public_key(&self, flag: Option<PathBuf>) -> Result<PathBuf> {
        flag.or_else(|| {
            self.audit
                .as_ref()
                .and_then(|a| a.key.as_deref().map(public_path))
        })
        .ok_or_else(|| {
            AuditError::Invalid(
                "no --key (the custodian's public key) and no [audit] key in the config".into(),
            )
        })
    }

    /// `--external`, else `[audit] external_checkpoint`.
    pub fn external(&self, flag: Option<PathBuf>) -> Option<PathBuf> {
        flag.or_else(|| {
            self.audit
                .as_ref()
                .and_then(|a| a.external_checkpoint.clone())
        })
    }

    /// The appender's options from the section (the private key read from
    /// `[audit] key`, or `key` when given).
    pub fn options(&self, key: Option<PathBuf>) -> Result<AuditOptions> {
        let key_path = key
            .or_else(|| self.audit.as_ref().and_then(|a| a.key.clone()))
            .ok_or_else(|| {
                AuditError::Invalid("no --key and no [audit] key in the config".into())
            })?;
        let mut o = AuditOptions::new(read_signing_key(&key_path)?);
        if let Some(a) = &self.audit {
            o.checkpoint_every_records = a.checkpoint_every_records;
            o.checkpoint_every = Duration::from_secs(a.checkpoint_every_secs);
            o.segment_max_bytes = a.segment_max_mb.saturating_mul(1024 * 1024);
            o.external_checkpoint = a.external_checkpoint.clone();
        }
        Ok(o)
    }
}

/// `tautan keygen --out F`.
pub fn keygen(out_path: &Path, out: &mut dyn Write) -> Result<()> {
    let key = keys::generate()?;
    let public = keys::write_keypair(out_path, &key)?;
    let _ = writeln!(
        out,
        "private key: {} (keep it secret)\npublic key:  {} ({})",
        out_path.display(),
        public.display(),
        keys::key_hex(&key.verifying_key())
    );
    Ok(())
}

/// Prints a verify report for a person.
pub fn print_report(r: &Report, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "audit log {}: {} segment(s), {} record(s) in order (last seq {}), {} checkpoint(s){}{}",
        r.dir.display(),
        r.segments,
        r.records,
        r.last_seq,
        r.checkpoints,
        r.latest_checkpoint
            .map(|s| format!(" (latest at seq {s})"))
            .unwrap_or_default(),
        r.external_checkpoint
            .map(|s| format!(", external checkpoint at seq {s}"))
            .unwrap_or_default()
    );
    for w in &r.witnessed {
        let _ = writeln!(out, "witnessed: {w}");
    }
    match &r.first_bad {
        None => {
            let _ = writeln!(out, "OK: no tampering found");
        }
        Some(f) => {
            let _ = writeln!(out, "TAMPERED: first bad record: {f}");
            if r.findings.len() > 1 {
                let _ = writeln!(out, "{} more finding(s):", r.findings.len() - 1);
                for f in r.findings.iter().skip(1).take(20) {
                    let _ = writeln!(out, "  {f}");
                }
            }
        }
    }
    if !r.open_intents.is_empty() {
        let _ = writeln!(
            out,
            "open intents (statements without a completion, e.g. running when the server stopped): {}",
            r.open_intents.len()
        );
        for i in r.open_intents.iter().take(100) {
            let _ = writeln!(
                out,
                "  seq {} ({} line {}) at {}{}",
                i.seq,
                i.segment,
                i.line,
                i.ts,
                i.user
                    .as_ref()
                    .map(|u| format!(" by {u}"))
                    .unwrap_or_default()
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
}

/// `tautan audit verify`: returns whether the log is intact.
pub fn run_verify(
    dir: &Path,
    key: &Path,
    external: Option<&Path>,
    witness_keys: &[PathBuf],
    as_json: bool,
    out: &mut dyn Write,
) -> Result<bool> {
    let custodian = read_verifying_key(key)?;
    let witnesses = witness_keys
        .iter()
        .map(|p| read_verifying_key(p))
        .collect::<Result<Vec<VerifyingKey>>>()?;
    let started = Instant::now();
    let report = verify(dir, &custodian, external, &witnesses)?;
    if as_json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| AuditError::Invalid(e.to_string()))?;
        let _ = writeln!(out, "{text}");
    } else {
        print_report(&report, out);
        let _ = writeln!(out, "verified in {:.2}s", started.elapsed().as_secs_f64());
    }
    Ok(report.is_clean())
}

/// `tautan audit prove <seq>`: the proof as JSON.
pub fn run_prove(dir: &Path, seq: u64, out: &mut dyn Write) -> Result<()> {
    let proof = prove(dir, seq)?;
    let text =
        serde_json::to_string_pretty(&proof).map_err(|e| AuditError::Invalid(e.to_string()))?;
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// `tautan audit check-proof <file> --key PUB`: whether the proof holds.
pub fn run_check_proof(proof_path: &Path, key: &Path, out: &mut dyn Write) -> Result<bool> {
    let custodian = read_verifying_key(key)?;
    let text = std::fs::read_to_string(proof_path).map_err(|e| AuditError::io(proof_path, e))?;
    let proof: Proof = match serde_json::from_str(&text) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "proof REJECTED: not a proof: {e}");
            return Ok(false);
        }
    };
    match check_proof(&proof, &custodian) {
        Ok(()) => {
            let _ = writeln!(
                out,
                "proof OK: record {} ({}, {}) is in the log under the checkpoint at seq {} ({}) signed by the custodian key",
                proof.record.seq, proof.record.kind, proof.record.ts, proof.checkpoint.seq, proof.checkpoint.ts
            );
            for w in &proof.checkpoint.witnesses {
                let _ = writeln!(out, "countersigned by {} ({})", w.name, w.key);
            }
            Ok(true)
        }
        Err(e) => {
            let _ = writeln!(out, "proof REJECTED: {e}");
            Ok(false)
        }
    }
}

/// `tautan audit witness --key PRIV`: countersigns the latest checkpoint,
/// prints it (and writes it to `save`, for the producer to keep).
pub fn run_witness(
    dir: &Path,
    key: &Path,
    name: &str,
    custodian: Option<&Path>,
    save: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let signing = read_signing_key(key)?;
    let custodian = custodian.map(read_verifying_key).transpose()?;
    let cp = add_witness(dir, &signing, name, custodian.as_ref())?;
    if let Some(path) = save {
        write_checkpoint_file(path, &cp)?;
    }
    let text = serde_json::to_string_pretty(&cp).map_err(|e| AuditError::Invalid(e.to_string()))?;
    let _ = writeln!(out, "{text}");
    Ok(())
}

/// Synthetic load through the real appender (benches, crash tests).
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Appends in all (intents and completions alternate per task).
    pub count: u64,
    /// Concurrent appending tasks.
    pub concurrency: usize,
    /// Intents written first and never completed (statements in flight).
    pub hold_open: usize,
    /// Print `ack <seq> intent` / `ack <seq> completion <intent seq>` after
    /// each acknowledged append.
    pub print_acks: bool,
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadStats {
    /// Appends acknowledged.
    pub appends: u64,
    /// Concurrent appenders.
    pub concurrency: usize,
    /// Wall time, seconds.
    pub secs: f64,
    /// Appends per second.
    pub per_sec: f64,
}

/// An intent shaped as the engine writes one ([`super::trail`]).
fn sample_intent(task: usize, i: u64) -> Entry {
    Entry::new(
        Kind::Intent,
        json!({
            "user": format!("analis_{}", task % 16),
            "roles": ["dinkes", "statistik"],
            "door": "postgres",
            "purpose": "monitoring stunting per kecamatan",
            "application": "psql",
            "client": "10.1.2.3:51234",
            "sql": format!("SELECT kecamatan, count(*) FROM kesehatan.public.balita WHERE tahun = {} GROUP BY 1", 2000 + i % 25),
            "reads": [{
                "table": format!("kesehatan.public.balita_{}", i % 40),
                "columns": ["kecamatan", "tahun"],
                "agreements": "PKS-2024-017",
            }],
            "agreements": ["PKS-2024-017"],
            "policy_version": 42,
            "decision": "allowed",
        }),
    )
}

/// A completion shaped as the engine writes one.
fn sample_completion(intent: u64) -> Entry {
    Entry::completion(
        intent,
        json!({
            "links": [{"link": "kesehatan", "sql": "SELECT \"kecamatan\", \"tahun\" FROM \"public\".\"balita\""}],
            "link_reads": [{"link": "kesehatan", "rows": 512, "bytes": 20480, "ms": 11.9, "ended": "ok"}],
            "rows": 512,
            "bytes": 20480,
            "duration_ms": 12.5,
            "sqlstate": "00000",
            "ended": "finished",
        }),
    )
}

/// Runs synthetic statements (intent, then completion) from `concurrency`
/// tasks until `count` appends are acknowledged, then closes the log.
pub async fn run_load(log: Arc<AuditLog>, spec: LoadSpec) -> Result<LoadStats> {
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let ack = |out: &std::sync::Mutex<std::io::Stdout>, seq: u64, kind: Kind| {
        if let Ok(mut o) = out.lock() {
            let _ = writeln!(o, "ack {seq} {kind}");
        }
    };
    for t in 0..spec.hold_open {
        let seq = log.append(sample_intent(1000 + t, 0)).await?;
        if spec.print_acks {
            ack(&out, seq, Kind::Intent);
        }
    }
    let started = Instant::now();
    let per_task = spec.count / spec.concurrency.max(1) as u64;
    let mut tasks = Vec::new();
    for t in 0..spec.concurrency.max(1) {
        let log = log.clone();
        let out = out.clone();
        let print = spec.print_acks;
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut i = 0u64;
            while done < per_task {
                let intent = log.append(sample_intent(t, i)).await?;
                if print {
                    ack(&out, intent, Kind::Intent);
                }
                done += 1;
                if done >= per_task {
                    break;
                }
                let c = log.append(sample_completion(intent)).await?;
                if print {
                    if let Ok(mut o) = out.lock() {
                        let _ = writeln!(o, "ack {c} completion {intent}");
                    }
                }
                done += 1;
                i += 1;
            }
            Ok::<u64, AuditError>(done)
        }));
    }
    let mut appends = 0;
    for t in tasks {
        appends += t
            .await
            .map_err(|e| AuditError::Invalid(format!("load task: {e}")))??;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(LoadStats {
        appends,
        concurrency: spec.concurrency,
        secs,
        per_sec: appends as f64 / secs.max(1e-9),
    })
}

/// `tautan report`: the period's report as HTML at `html`, and (when `pdf`)
/// a PDF beside it when a Chromium is installed (its path, or why not).
pub fn run_report(
    dir: &Path,
    from: &str,
    to: &str,
    lang: super::report::Lang,
    html: &Path,
    agreements: &[super::report::AgreementRow],
    pdf: bool,
) -> Result<std::result::Result<PathBuf, String>> {
    let (from, to) = (
        super::report::parse_day(from)?,
        super::report::parse_day(to)?,
    );
    if to < from {
        return Err(AuditError::Invalid(format!(
            "--to {to} is before --from {from}"
        )));
    }
    let summary = super::report::summarize(dir, from, to)?;
    let page = super::report::render_html(&summary, lang, &super::log::now_ts(), agreements);
    std::fs::write(html, page).map_err(|e| AuditError::io(html, e))?;
    if !pdf {
        return Ok(Err("no PDF asked for (--no-pdf)".into()));
    }
    Ok(print_pdf(html))
}

/// Prints `html` to a PDF beside it with headless Chromium.
fn print_pdf(html: &Path) -> std::result::Result<PathBuf, String> {
    let browser = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .into_iter()
    .find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .ok_or("no Chromium found (apt install chromium), so no PDF")?;
    let pdf = html.with_extension("pdf");
    let absolute = std::fs::canonicalize(html).map_err(|e| format!("{}: {e}", html.display()))?;
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", absolute.display()))
        .output()
        .map_err(|e| format!("{browser}: {e}"))?;
    if out.status.success() && pdf.exists() {
        Ok(pdf)
    } else {
        Err(format!(
            "{browser} did not print the PDF: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_cli_defaults_come_from_the_config() {
        let dir = std::env::temp_dir().join(format!("tautan-audit-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("federation.toml");
        std::fs::write(
            &cfg,
            "[audit]\ndir = \"log\"\nkey = \"keys/c.pem\"\nexternal_checkpoint = \"/elsewhere/cp.json\"\ncheckpoint_every_records = 7\n",
        )
        .unwrap();
        let d = Defaults::load(&cfg).unwrap();
        assert_eq!(d.dir(None).unwrap(), dir.join("log"));
        assert_eq!(d.dir(Some("x".into())).unwrap(), PathBuf::from("x"));
        assert_eq!(d.public_key(None).unwrap(), dir.join("keys/c.pem.pub"));
        assert_eq!(d.external(None), Some(PathBuf::from("/elsewhere/cp.json")));
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        keys::write_keypair(&dir.join("keys/c.pem"), &keys::generate().unwrap()).unwrap();
        let o = d.options(None).unwrap();
        assert_eq!(o.checkpoint_every_records, 7);
        assert_eq!(o.segment_max_bytes, 64 * 1024 * 1024);
        // No config file: no defaults, and a clear error.
        let none = Defaults::load(&dir.join("missing.toml")).unwrap();
        assert!(none.dir(None).unwrap_err().to_string().contains("--dir"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
