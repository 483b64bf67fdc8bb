//! The tamper-evident audit log (issue 16): what the engine records about
//! every login and statement, in a form whose history the custodian alone
//! cannot rewrite unnoticed.
//!
//! | concept | module |
//! |---|---|
//! | a record, its canonical encoding and hash chain | [`record`] |
//! | hex and SHA-256 helpers | [`hash`] |
//! | the append-only JSON Lines segment files | [`segment`] |
//! | the RFC 6962 Merkle tree over record hashes (frontier, audit paths) | [`merkle`] |
//! | Ed25519 key files | [`keys`] |
//! | signed checkpoints, the external copy, witness countersignatures | [`checkpoint`] |
//! | the appender with group commit | [`log`] |
//! | checking a whole log directory | [`verify`] |
//! | inclusion proofs a third party can check | [`proof`] |
//! | what the `tautan keygen` and `tautan audit` commands do | [`cli`] |
//!
//! The format, the threat model and what [`verify::verify`] detects are
//! described in ARCHITECTURE.md, section "Audit log".

pub mod checkpoint;
pub mod cli;
pub mod error;
pub mod hash;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod proof;
pub mod record;
pub mod report;
pub mod segment;
pub mod table;
pub mod trail;
pub mod verify;

pub use checkpoint::{add_witness, Checkpoint, Witness};
pub use error::AuditError;
pub use log::{AuditLog, AuditOptions, Pending};
pub use proof::{check_proof, prove, Proof};
pub use record::{Entry, Kind, Record, Seq};
pub use trail::{Origin, PendingIntent, Recording, StatementFacts, TableRead, Trail, Who};
pub use verify::{verify, Finding, Report};

/// Result type of the audit module.
pub type Result<T> = std::result::Result<T, AuditError>;
