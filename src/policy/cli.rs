//! `tautan agreement new | sign | verify | list`: the agreement's life
//! cycle on the command line.
//!
//! ```text
//! tautan agreement new --id PKS-2026-017 --producer kependudukan --user analis_kota \
//!     --table kependudukan.public.penduduk --mask nik=pseudonym \
//!     --row-filter "kecamatan_kode IN ({wilayah})" --purpose "…" \
//!     --from 2026-01-01 --until 2026-12-31 > agreements/PKS-2026-017.toml
//! tautan agreement sign agreements/PKS-2026-017.toml --as kependudukan --key dukcapil.pem
//! tautan agreement sign agreements/PKS-2026-017.toml --as custodian --key walidata.pem
//! tautan agreement verify agreements/PKS-2026-017.toml      # with the config's public keys
//! tautan agreement list                                      # every agreement of [policy] agreements_dir
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::agreement::{
    load_file, today, Agreement, AgreementFile, SignerKeys, Status, Terms, CUSTODIAN,
};

/// The terms of a new agreement, from the command line
/// (`tautan agreement new`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NewAgreement {
    /// The agreement's number, e.g. PKS-2026-017.
    #[arg(long)]
    pub id: String,
    /// The producing agency's link.
    #[arg(long)]
    pub producer: String,
    /// The data user (a login).
    #[arg(long, required_unless_present = "role", conflicts_with = "role")]
    pub user: Option<String>,
    /// Or a role whose holders are the data users.
    #[arg(long)]
    pub role: Option<String>,
    /// A table pattern under the producer's link (repeatable).
    #[arg(long = "table", required = true)]
    pub tables: Vec<String>,
    /// Only these columns (repeatable; all when none).
    #[arg(long = "column")]
    pub columns: Vec<String>,
    /// Only rows matching this SQL predicate ({name}: a user attribute).
    #[arg(long)]
    pub row_filter: Option<String>,
    /// A mask, column=mask (repeatable).
    #[arg(long = "mask")]
    pub masks: Vec<String>,
    /// Why the data is exchanged.
    #[arg(long)]
    pub purpose: String,
    /// First day (YYYY-MM-DD).
    #[arg(long = "from")]
    pub valid_from: String,
    /// Last day (YYYY-MM-DD).
    #[arg(long = "until")]
    pub valid_until: String,
}

/// Writes a new, unsigned agreement file's text to `out`.
pub fn new(args: NewAgreement, out: &mut dyn Write) -> Result<(), String> {
    let mut masks = BTreeMap::new();
    for m in &args.masks {
        let (column, mask) = m
            .split_once('=')
            .ok_or_else(|| format!("--mask {m}: write column=mask"))?;
        masks.insert(column.trim().to_string(), mask.trim().to_string());
    }
    let terms = Terms {
        id: args.id,
        producer: args.producer,
        user: args.user,
        role: args.role,
        tables: args.tables,
        columns: (!args.columns.is_empty()).then_some(args.columns),
        row_filter: args.row_filter,
        masks,
        mask_labels: BTreeMap::new(),
        purpose: args.purpose,
        valid_from: args.valid_from,
        valid_until: args.valid_until,
    };
    terms.check_shape()?;
    let file = AgreementFile {
        terms,
        signatures: Vec::new(),
    };
    out.write_all(file.to_toml()?.as_bytes())
        .map_err(|e| e.to_string())
}

/// Signs `path` in place as `by` (a producer link or `custodian`) with the
/// private key in `key`.
pub fn sign(path: &Path, by: &str, key: &Path, out: &mut dyn Write) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut file = AgreementFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if by != CUSTODIAN && by != file.terms.producer {
        return Err(format!(
            "--as {by}: an agreement is signed by its producer ({}) and by {CUSTODIAN}",
            file.terms.producer
        ));
    }
    file.terms.check_shape()?;
    let key = crate::audit::keys::read_signing_key(key).map_err(|e| e.to_string())?;
    file.sign(by, &key);
    let signed = file.to_toml()?;
    // Written whole, then renamed over the original.
    let tmp = path.with_extension("toml.signing");
    std::fs::write(&tmp, signed).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(
        out,
        "{}: signed by {by} (key {})",
        path.display(),
        crate::audit::keys::key_hex(&key.verifying_key())
    )
    .map_err(|e| e.to_string())
}

/// Checks each file against the signers' public keys (the config's);
/// true when all are in force today.
pub fn verify(
    keys: &SignerKeys,
    paths: &[std::path::PathBuf],
    out: &mut dyn Write,
) -> Result<bool, String> {
    let mut all = true;
    for path in paths {
        let a = load_file(path, keys, today());
        all &= a.status == Status::Valid;
        writeln!(out, "{}: {} — {}", path.display(), a.id(), a.status)
            .map_err(|e| e.to_string())?;
    }
    Ok(all)
}

/// Lists agreements (those of `[policy] agreements_dir`) with their
/// standing.
pub fn list(agreements: &[Agreement], out: &mut dyn Write) -> Result<(), String> {
    if agreements.is_empty() {
        writeln!(out, "no agreements ([policy] agreements_dir)").map_err(|e| e.to_string())?;
    }
    for a in agreements {
        let (producer, user, until) = match &a.file {
            Some(f) => (
                f.terms.producer.clone(),
                f.terms
                    .user
                    .clone()
                    .map(|u| format!("user {u}"))
                    .or_else(|| f.terms.role.clone().map(|r| format!("role {r}")))
                    .unwrap_or_default(),
                f.terms.valid_until.clone(),
            ),
            None => Default::default(),
        };
        writeln!(
            out,
            "{}\t{producer}\t{user}\tuntil {until}\t{}",
            a.id(),
            a.status
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}
