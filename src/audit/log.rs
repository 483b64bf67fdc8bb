//! The appender: one writer thread, group commit.
//!
//! [`AuditLog::append`] hands the entry (its fields already in canonical
//! form, encoded on the caller's task) to the writer thread through a
//! channel and waits. The writer takes every entry waiting (up to
//! `max_batch`), seals each (seq, ts, prev, hash; Merkle frontier), writes
//! the batch to the current segment in one `write`, calls `sync_data`, and
//! only then acknowledges every waiter of the batch: an acknowledged record
//! is on disk. While one batch is being synced the next one gathers, so
//! concurrent appenders share each fsync.
//!
//! If a write or sync fails, the waiters of that batch get the error and the
//! log refuses every later append ([`AuditError::Failed`]): what follows the
//! last acknowledged record on disk is unknown, and the engine must refuse
//! statements rather than run them unaudited. Reopening the folder
//! ([`AuditLog::open`]) recovers: a line cut short is removed, the chain is
//! checked from the last checkpoint on.
//!
//! Checkpoints ([`super::checkpoint`]) are made every
//! `checkpoint_every_records` records, every `checkpoint_every` (when
//! records were added since the last), on [`AuditLog::checkpoint_now`], and
//! on [`AuditLog::close`] (or when the last handle is dropped).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

use super::checkpoint::{
    read_checkpoint_file, read_checkpoints, write_checkpoint_file, Checkpoint,
};
use super::error::AuditError;
use super::hash::{hash_from_hex, to_hex, Hash, ZERO_HASH};
use super::merkle::Frontier;
use super::record::{canonical, check_line, seal, Entry, Kind, Seq};
use super::segment::{list_segments, segment_name, sync_dir, Line, LineReader, CHECKPOINTS, LOCK};
use super::Result;

/// Now, as records and checkpoints write it: RFC 3339 UTC, microseconds.
pub fn now_ts() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// How the log rotates segments and makes checkpoints.
#[derive(Clone)]
pub struct AuditOptions {
    /// The custodian's key, signing every checkpoint.
    pub signing_key: SigningKey,
    /// A segment is closed before it would grow beyond this (default 64 MiB).
    pub segment_max_bytes: u64,
    /// A checkpoint every this many records (0: never by count; default 10,000).
    pub checkpoint_every_records: u64,
    /// A checkpoint this long after the last one, if records were added
    /// (zero: never by time; default 60 s).
    pub checkpoint_every: Duration,
    /// Where the latest checkpoint is also written (outside the log folder).
    pub external_checkpoint: Option<PathBuf>,
    /// Most records written per fsync (default 4096).
    pub max_batch: usize,
    /// Test hook: writes of records beyond this seq fail as a full disk would.
    #[doc(hidden)]
    pub fail_writes_after: Option<Seq>,
    /// Test hook: the time stamps of records (for day rotation tests).
    #[doc(hidden)]
    pub clock: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

impl AuditOptions {
    /// The defaults, signing with `signing_key`.
    pub fn new(signing_key: SigningKey) -> Self {
        AuditOptions {
            signing_key,
            segment_max_bytes: 64 * 1024 * 1024,
            checkpoint_every_records: 10_000,
            checkpoint_every: Duration::from_secs(60),
            external_checkpoint: None,
            max_batch: 4096,
            fail_writes_after: None,
            clock: None,
        }
    }
}

/// What [`AuditLog::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The last record on disk (0: empty log).
    pub last_seq: Seq,
    /// Bytes of a line cut short by a crash, removed from the last segment.
    pub torn_bytes: u64,
    /// The checkpoint the state was resumed from.
    pub resumed_from_checkpoint: Option<Seq>,
    /// Records read to recover.
    pub records_read: u64,
}

enum Msg {
    Append {
        kind: Kind,
        fields: String,
        ack: oneshot::Sender<Result<Seq>>,
    },
    Checkpoint {
        ack: oneshot::Sender<Result<Option<Checkpoint>>>,
    },
    Close {
        ack: oneshot::Sender<Result<Option<Checkpoint>>>,
    },
}

#[derive(Debug)]
struct Shared {
    failed: OnceLock<String>,
    closed: AtomicBool,
    durable: AtomicU64,
    /// When the latest signed checkpoint was made (its `ts`), published by
    /// the writer so readers need not reread `checkpoints.jsonl`.
    checkpoint_ts: std::sync::Mutex<Option<String>>,
}

/// A record handed to the writer ([`AuditLog::submit`]).
#[derive(Debug)]
pub struct Pending {
    rx: oneshot::Receiver<Result<Seq>>,
    shared: Arc<Shared>,
}

impl Pending {
    /// Resolves with the record's seq once it is on disk (synced), or with
    /// why it never will be.
    pub async fn durable(self) -> Result<Seq> {
        let shared = self.shared;
        self.rx.await.map_err(|_| gone(&shared))?
    }
}

fn gone(shared: &Shared) -> AuditError {
    match shared.failed.get() {
        Some(e) => AuditError::Failed(e.clone()),
        None if shared.closed.load(Ordering::Acquire) => AuditError::Closed,
        None => AuditError::Failed("the audit writer stopped".into()),
    }
}

/// The audit log of one folder, open for appending (one process at a time:
/// the folder's `audit.lock` is held while open).
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    writer: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    dir: PathBuf,
    recovery: Recovery,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("durable", &self.durable_seq())
            .finish()
    }
}

impl Drop for AuditLog {
    /// The last handle is gone: the writer seals and syncs what it was
    /// handed (records enqueued without waiting too), makes a last
    /// checkpoint, and this returns once it has, so a process that exits
    /// next loses nothing.
    fn drop(&mut self) {
        // Dropping the only sender ends the writer's loop.
        drop(std::mem::replace(&mut self.tx, mpsc::channel().0));
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("the audit writer panicked");
            }
        }
    }
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`: takes the folder's lock,
    /// recovers the last seq, hash and Merkle frontier (from the last
    /// checkpoint on, checking the chain), removes a line cut short by a
    /// crash, and starts the writer thread. Refuses a folder whose records
    /// do not chain, whose latest checkpoint is not signed by
    /// `options.signing_key`, or that is behind the external checkpoint
    /// (rolled back).
    pub fn open(dir: &Path, options: AuditOptions) -> Result<AuditLog> {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| AuditError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Invalid(format!(
                    "{} is open in another process",
                    dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(AuditError::io(&lock_path, e)),
        }
        let state = recover(dir, &options)?;
        let ckpt_path = dir.join(CHECKPOINTS);
        let ckpt_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&ckpt_path)
            .map_err(|e| AuditError::io(&ckpt_path, e))?;
        let recovery = state.recovery.clone();
        let shared = Arc::new(Shared {
            failed: OnceLock::new(),
            closed: AtomicBool::new(false),
            durable: AtomicU64::new(recovery.last_seq),
            checkpoint_ts: std::sync::Mutex::new(state.last_ckpt.as_ref().map(|c| c.ts.clone())),
        });
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            opts: options,
            seg: state.segment,
            next_seq: state.last_seq + 1,
            last_hash: state.last_hash,
            frontier: state.frontier,
            last_ckpt: state.last_ckpt,
            last_ckpt_at: Instant::now(),
            ckpt_file,
            buf: String::with_capacity(1 << 20),
            shared: shared.clone(),
            _lock: lock,
        };
        let writer = std::thread::Builder::new()
            .name("tautan-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::io(dir, e))?;
        Ok(AuditLog {
            tx,
            writer: Some(writer),
            shared,
            dir: dir.to_path_buf(),
            recovery,
        })
    }

    /// What opening found.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why the log refuses appends (a write or sync failed), if it does.
    pub fn failure(&self) -> Option<String> {
        self.shared.failed.get().cloned()
    }

    /// When the latest signed checkpoint was made (RFC 3339 UTC), if any.
    pub fn last_checkpoint_ts(&self) -> Option<String> {
        self.shared
            .checkpoint_ts
            .lock()
            .map(|ts| ts.clone())
            .unwrap_or_default()
    }

    /// The last acknowledged (durable) seq.
    pub fn durable_seq(&self) -> Seq {
        self.shared.durable.load(Ordering::Acquire)
    }

    fn check_usable(&self) -> Result<()> {
        if let Some(e) = self.shared.failed.get() {
            return Err(AuditError::Failed(e.clone()));
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(AuditError::Closed);
        }
        Ok(())
    }

    fn gone(&self) -> AuditError {
        gone(&self.shared)
    }

    /// Appends a record; resolves with its seq once it is on disk (synced).
    pub async fn append(&self, entry: Entry) -> Result<Seq> {
        self.submit(entry)?.durable().await
    }

    /// Hands a record to the writer and returns at once: [`Pending::durable`]
    /// resolves when it is on disk. Lets a caller do work that contacts
    /// nobody (planning) while the group commit's fsync runs.
    pub fn submit(&self, entry: Entry) -> Result<Pending> {
        self.check_usable()?;
        let fields = canonical(&entry.fields);
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Msg::Append {
                kind: entry.kind,
                fields,
                ack,
            })
            .map_err(|_| self.gone())?;
        Ok(Pending {
            rx,
            shared: self.shared.clone(),
        })
    }

    /// Hands a record to the writer without waiting for it to reach the
    /// disk: it is sealed after every record handed over before it and made
    /// durable by the next group commit (at the latest by [`AuditLog::close`],
    /// or when the last handle is dropped). For records whose loss in a crash
    /// verification reports anyway (a completion: its intent is then open).
    /// Fails only when the log already refuses appends.
    pub fn enqueue(&self, entry: Entry) -> Result<()> {
        self.check_usable()?;
        let fields = canonical(&entry.fields);
        // Nobody waits for the acknowledgement: a write that fails marks
        // the log failed, and the next statement is refused.
        let (ack, _) = oneshot::channel();
        self.tx
            .send(Msg::Append {
                kind: entry.kind,
                fields,
                ack,
            })
            .map_err(|_| self.gone())
    }

    /// Makes a checkpoint now (if records were added since the last one)
    /// and returns the latest checkpoint.
    pub async fn checkpoint_now(&self) -> Result<Option<Checkpoint>> {
        self.check_usable()?;
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Msg::Checkpoint { ack })
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Writes a final checkpoint, stops the writer and releases the folder.
    /// Later appends fail with [`AuditError::Closed`].
    pub async fn close(&self) -> Result<Option<Checkpoint>> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(AuditError::Closed);
        }
        let (ack, rx) = oneshot::channel();
        self.tx.send(Msg::Close { ack }).map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }
}

struct OpenSegment {
    file: File,
    path: PathBuf,
    size: u64,
    /// UTC day (`YYYY-MM-DD`) of its first record; None while empty.
    day: Option<String>,
}

struct Recovered {
    last_seq: Seq,
    last_hash: Hash,
    frontier: Frontier,
    last_ckpt: Option<Checkpoint>,
    segment: Option<OpenSegment>,
    recovery: Recovery,
}

fn corrupt(msg: String) -> AuditError {
    AuditError::Corrupt(format!("{msg}; run `tautan audit verify`"))
}

/// Rebuilds the appender's state from the folder.
fn recover(dir: &Path, opts: &AuditOptions) -> Result<Recovered> {
    let key = opts.signing_key.verifying_key();
    let segments = list_segments(dir)?;
    // The last checkpoint that parses; it must be ours.
    let last_ckpt = read_checkpoints(dir)?
        .into_iter()
        .filter_map(|(_, c)| c.ok())
        .next_back();
    if let Some(cp) = &last_ckpt {
        cp.verify_signature(&key).map_err(|e| {
            corrupt(format!(
                "{}: latest checkpoint (seq {}): {e} — is this the custodian key that wrote the log?",
                dir.join(CHECKPOINTS).display(),
                cp.seq
            ))
        })?;
    }
    // Resume from the checkpoint's stored frontier when it is consistent.
    let resume = last_ckpt.as_ref().and_then(|cp| {
        let f = Frontier::from_saved(cp.frontier.as_ref()?)?;
        let head = hash_from_hex(&cp.head)?;
        (f.size() == cp.seq && to_hex(&f.root()) == cp.root).then_some((cp.seq, head, f))
    });
    let (skip_until, mut last_hash, mut frontier) = match &resume {
        Some((seq, head, f)) => (*seq, *head, f.clone()),
        None => (0, ZERO_HASH, Frontier::new()),
    };
    let mut last_seq = skip_until;
    // First segment to read: the one holding record `skip_until` (to check
    // its hash), or the first.
    let start = if skip_until == 0 {
        0
    } else {
        segments
            .iter()
            .rposition(|s| s.first <= skip_until)
            .unwrap_or(0)
    };
    let mut recovery = Recovery {
        resumed_from_checkpoint: resume.as_ref().map(|r| r.0),
        ..Default::default()
    };
    let mut last_day = None;
    let n = segments.len();
    for (i, seg) in segments.iter().enumerate().skip(start) {
        let mut r = LineReader::open(&seg.path)?;
        let mut first_in_file = true;
        let mut torn_at = None;
        while let Some(line) = r.next_line()? {
            match line {
                Line::Torn { no, offset, len } => {
                    if i + 1 != n {
                        return Err(corrupt(format!(
                            "{} line {no}: incomplete line in a segment that is not the last",
                            seg.name
                        )));
                    }
                    torn_at = Some((offset, len as u64));
                }
                Line::Full { no, bytes, .. } => {
                    let (rec, h) = check_line(bytes)
                        .map_err(|f| corrupt(format!("{} line {no}: {f}", seg.name)))?;
                    recovery.records_read += 1;
                    if first_in_file && rec.seq != seg.first {
                        return Err(corrupt(format!("{} begins with seq {}", seg.name, rec.seq)));
                    }
                    first_in_file = false;
                    if i + 1 == n && last_day.is_none() {
                        last_day = Some(rec.ts.get(..10).unwrap_or_default().to_string());
                    }
                    if rec.seq <= skip_until {
                        if rec.seq == skip_until && h != last_hash {
                            return Err(corrupt(format!(
                                "{} line {no}: record {} is not the one the latest checkpoint names",
                                seg.name, rec.seq
                            )));
                        }
                        continue;
                    }
                    if rec.seq != last_seq + 1 {
                        return Err(corrupt(format!(
                            "{} line {no}: seq {} where {} was expected",
                            seg.name,
                            rec.seq,
                            last_seq + 1
                        )));
                    }
                    if hash_from_hex(&rec.prev) != Some(last_hash) {
                        return Err(corrupt(format!(
                            "{} line {no}: prev does not match record {}",
                            seg.name, last_seq
                        )));
                    }
                    last_seq = rec.seq;
                    last_hash = h;
                    frontier.push(&h);
                }
            }
        }
        if let Some((offset, len)) = torn_at {
            // Never acknowledged (acks follow a complete write and sync).
            let f = OpenOptions::new()
                .write(true)
                .open(&seg.path)
                .map_err(|e| AuditError::io(&seg.path, e))?;
            f.set_len(offset)
                .and_then(|_| f.sync_all())
                .map_err(|e| AuditError::io(&seg.path, e))?;
            recovery.torn_bytes = len;
            tracing::warn!(segment = %seg.name, bytes = len, "audit: removed a line cut short by a crash");
        }
    }
    if let Some(cp) = &last_ckpt {
        if cp.seq > last_seq {
            return Err(corrupt(format!(
                "the latest checkpoint covers seq {} but the records end at {last_seq}",
                cp.seq
            )));
        }
    }
    if let Some(ext) = &opts.external_checkpoint {
        if ext.exists() {
            let e = read_checkpoint_file(ext)?;
            if e.seq > last_seq {
                return Err(corrupt(format!(
                    "the external checkpoint {} covers seq {} but the log ends at {last_seq}: the folder was rolled back or truncated",
                    ext.display(),
                    e.seq
                )));
            }
        }
    }
    let segment = match segments.last() {
        Some(s) => {
            let file = OpenOptions::new()
                .append(true)
                .open(&s.path)
                .map_err(|e| AuditError::io(&s.path, e))?;
            let size = file
                .metadata()
                .map_err(|e| AuditError::io(&s.path, e))?
                .len();
            if size == 0 && s.first != last_seq + 1 {
                return Err(corrupt(format!(
                    "{} is empty but the next record is {}",
                    s.name,
                    last_seq + 1
                )));
            }
            Some(OpenSegment {
                file,
                path: s.path.clone(),
                size,
                day: last_day,
            })
        }
        None => None,
    };
    recovery.last_seq = last_seq;
    Ok(Recovered {
        last_seq,
        last_hash,
        frontier,
        last_ckpt,
        segment,
        recovery,
    })
}

struct Writer {
    dir: PathBuf,
    opts: AuditOptions,
    seg: Option<OpenSegment>,
    next_seq: Seq,
    last_hash: Hash,
    frontier: Frontier,
    last_ckpt: Option<Checkpoint>,
    last_ckpt_at: Instant,
    ckpt_file: File,
    /// Lines sealed but not yet written.
    buf: String,
    shared: Arc<Shared>,
    _lock: File,
}

type Unacked = Vec<(Seq, oneshot::Sender<Result<Seq>>)>;

impl Writer {
    fn failed(&self) -> Option<String> {
        self.shared.failed.get().cloned()
    }

    fn fail(&self, e: String) -> String {
        tracing::error!(error = %e, "audit log failed; refusing appends");
        let _ = self.shared.failed.set(e);
        self.failed().unwrap_or_default()
    }

    fn last_seq(&self) -> Seq {
        self.next_seq - 1
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut batch = Vec::with_capacity(self.opts.max_batch.max(1));
        let mut close_ack = None;
        loop {
            let wait = self.until_time_checkpoint();
            let first = match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.timed_checkpoint();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle dropped: a clean shutdown.
                    let _ = self.checkpoint();
                    break;
                }
            };
            batch.push(first);
            while batch.len() < self.opts.max_batch.max(1) {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut pending: Unacked = Vec::new();
            for msg in batch.drain(..) {
                match msg {
                    Msg::Append { kind, fields, ack } => {
                        if let Some(e) = self.failed() {
                            let _ = ack.send(Err(AuditError::Failed(e)));
                            continue;
                        }
                        self.add(kind, &fields, ack, &mut pending);
                    }
                    Msg::Checkpoint { ack } => {
                        self.flush(&mut pending);
                        let _ = ack.send(self.checkpoint());
                    }
                    Msg::Close { ack } => {
                        self.flush(&mut pending);
                        let r = self.checkpoint();
                        close_ack = Some((ack, r));
                    }
                }
            }
            self.flush(&mut pending);
            if self.opts.checkpoint_every_records > 0
                && self.failed().is_none()
                && self.last_seq() - self.last_ckpt.as_ref().map_or(0, |c| c.seq)
                    >= self.opts.checkpoint_every_records
            {
                let _ = self.checkpoint();
            }
            if close_ack.is_some() {
                break;
            }
        }
        // Release the folder (lock, files) before saying it is closed.
        let shared = self.shared.clone();
        drop(self);
        // Anything still queued is refused.
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Append { ack, .. } => {
                    let _ = ack.send(Err(AuditError::Closed));
                }
                Msg::Checkpoint { ack } | Msg::Close { ack } => {
                    let _ = ack.send(Err(AuditError::Closed));
                }
            }
        }
        shared.closed.store(true, Ordering::Release);
        if let Some((ack, r)) = close_ack {
            let _ = ack.send(r);
        }
    }

    fn until_time_checkpoint(&self) -> Duration {
        let every = self.opts.checkpoint_every;
        if every.is_zero() || self.last_seq() == self.last_ckpt.as_ref().map_or(0, |c| c.seq) {
            return Duration::from_secs(3600);
        }
        every.saturating_sub(self.last_ckpt_at.elapsed())
    }

    fn timed_checkpoint(&mut self) {
        if self.failed().is_none()
            && !self.opts.checkpoint_every.is_zero()
            && self.last_ckpt_at.elapsed() >= self.opts.checkpoint_every
        {
            let _ = self.checkpoint();
        }
    }

    /// Seals one record into the buffer (rotating first if needed).
    fn add(
        &mut self,
        kind: Kind,
        fields: &str,
        ack: oneshot::Sender<Result<Seq>>,
        pending: &mut Unacked,
    ) {
        let seq = self.next_seq;
        let ts = match &self.opts.clock {
            Some(clock) => clock(),
            None => now_ts(),
        };
        let (hash, line) = seal(seq, &ts, kind, fields, &self.last_hash);
        let day = &ts[..10];
        let needs_new = match &self.seg {
            None => true,
            Some(s) => {
                let used = s.size + self.buf.len() as u64;
                (used > 0 && used + line.len() as u64 + 1 > self.opts.segment_max_bytes)
                    || s.day.as_deref().is_some_and(|d| d != day)
            }
        };
        if needs_new {
            self.flush(pending);
            if let Some(e) = self.failed() {
                let _ = ack.send(Err(AuditError::Failed(e)));
                return;
            }
            if let Err(e) = self.new_segment(seq) {
                let e = self.fail(e.to_string());
                let _ = ack.send(Err(AuditError::Failed(e)));
                return;
            }
        }
        if let Some(s) = &mut self.seg {
            if s.day.is_none() {
                s.day = Some(day.to_string());
            }
        }
        self.buf.push_str(&line);
        self.buf.push('\n');
        self.next_seq += 1;
        self.last_hash = hash;
        self.frontier.push(&hash);
        pending.push((seq, ack));
    }

    fn new_segment(&mut self, first: Seq) -> Result<()> {
        let path = self.dir.join(segment_name(first));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| AuditError::io(&path, e))?;
        sync_dir(&self.dir)?;
        self.seg = Some(OpenSegment {
            file,
            path,
            size: 0,
            day: None,
        });
        Ok(())
    }

    /// Writes and syncs the buffer, then acknowledges its records.
    fn flush(&mut self, pending: &mut Unacked) {
        if pending.is_empty() {
            return;
        }
        let injected = self
            .opts
            .fail_writes_after
            .is_some_and(|n| pending.last().is_some_and(|(seq, _)| *seq > n));
        let result = match (self.failed(), &mut self.seg) {
            (Some(e), _) => Err(e),
            (None, None) => Err("no segment open".to_string()),
            (None, Some(s)) => {
                let r = if injected {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        "injected write failure",
                    ))
                } else {
                    s.file
                        .write_all(self.buf.as_bytes())
                        .and_then(|_| s.file.sync_data())
                };
                match r {
                    Ok(()) => {
                        s.size += self.buf.len() as u64;
                        Ok(())
                    }
                    Err(e) => Err(format!("{}: {e}", s.path.display())),
                }
            }
        };
        let result = result.map_err(|e| {
            if self.failed().is_some() {
                e
            } else {
                self.fail(e)
            }
        });
        self.buf.clear();
        match result {
            Ok(()) => {
                if let Some((last, _)) = pending.last() {
                    self.shared.durable.store(*last, Ordering::Release);
                }
                for (seq, ack) in pending.drain(..) {
                    let _ = ack.send(Ok(seq));
                }
            }
            Err(e) => {
                for (_, ack) in pending.drain(..) {
                    let _ = ack.send(Err(AuditError::Failed(e.clone())));
                }
            }
        }
    }

    /// Signs and stores a checkpoint of everything durable, if anything new.
    fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        if let Some(e) = self.failed() {
            return Err(AuditError::Failed(e));
        }
        let seq = self.last_seq();
        if seq == 0 || self.last_ckpt.as_ref().is_some_and(|c| c.seq == seq) {
            self.last_ckpt_at = Instant::now();
            return Ok(self.last_ckpt.as_ref().map(Checkpoint::published));
        }
        let mut cp = Checkpoint::sign(
            seq,
            &self.last_hash,
            &self.frontier.root(),
            now_ts(),
            &self.opts.signing_key,
        );
        cp.frontier = Some(self.frontier.to_saved());
        let stored = (|| -> Result<()> {
            let mut line = serde_json::to_string(&cp)
                .map_err(|e| AuditError::Invalid(format!("encoding a checkpoint: {e}")))?;
            line.push('\n');
            let path = self.dir.join(CHECKPOINTS);
            self.ckpt_file
                .write_all(line.as_bytes())
                .and_then(|_| self.ckpt_file.sync_data())
                .map_err(|e| AuditError::io(&path, e))?;
            // The log's own copy first: an external copy is never ahead of it.
            if let Some(ext) = &self.opts.external_checkpoint {
                write_checkpoint_file(ext, &cp)?;
            }
            Ok(())
        })();
        if let Err(e) = stored {
            let e = self.fail(e.to_string());
            return Err(AuditError::Failed(e));
        }
        self.last_ckpt_at = Instant::now();
        let published = cp.published();
        if let Ok(mut ts) = self.shared.checkpoint_ts.lock() {
            *ts = Some(cp.ts.clone());
        }
        self.last_ckpt = Some(cp);
        Ok(Some(published))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::keys::generate;
    use serde_json::json;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tautan-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn audit_log_appends_checkpoints_and_reopens() {
        let dir = tmp("reopen");
        let key = generate().unwrap();
        let mut opts = AuditOptions::new(key.clone());
        opts.checkpoint_every_records = 10;
        opts.external_checkpoint = Some(dir.with_extension("ext.json"));
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        for i in 1..=25u64 {
            let s = log
                .append(Entry::new(Kind::Login, json!({ "user": format!("u{i}") })))
                .await
                .unwrap();
            assert_eq!(s, i);
        }
        let cp = log.close().await.unwrap().unwrap();
        assert_eq!(cp.seq, 25);
        assert!(matches!(
            log.append(Entry::new(Kind::Login, json!({}))).await,
            Err(AuditError::Closed)
        ));
        // Reopen resumes from the checkpoint.
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        assert_eq!(log.recovery().last_seq, 25);
        assert_eq!(log.recovery().resumed_from_checkpoint, Some(25));
        assert_eq!(
            log.append(Entry::new(Kind::Logout, json!({})))
                .await
                .unwrap(),
            26
        );
        // The lock keeps a second writer out.
        assert!(AuditLog::open(&dir, opts.clone()).is_err());
        log.close().await.unwrap();
        let report = crate::audit::verify(
            &dir,
            &key.verifying_key(),
            opts.external_checkpoint.as_deref(),
            &[],
        )
        .unwrap();
        assert!(report.first_bad.is_none(), "{report:?}");
        assert_eq!(report.last_seq, 26);
        // Another key cannot reopen it.
        assert!(AuditLog::open(&dir, AuditOptions::new(generate().unwrap())).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(dir.with_extension("ext.json"));
    }

    #[tokio::test]
    async fn records_handed_over_without_waiting_are_kept_in_order_when_the_log_is_dropped() {
        let dir = tmp("enqueue");
        let key = generate().unwrap();
        let opts = AuditOptions::new(key.clone());
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        let first = log
            .append(Entry::new(Kind::Intent, json!({ "sql": "SELECT 1" })))
            .await
            .unwrap();
        for i in 0..500 {
            log.enqueue(Entry::completion(first, json!({ "i": i })))
                .unwrap();
        }
        // No close, no wait: dropping the last handle must still leave
        // every record on disk, in the order handed over, and a checkpoint.
        drop(log);
        let report = crate::audit::verify(&dir, &key.verifying_key(), None, &[]).unwrap();
        assert!(report.first_bad.is_none(), "{report:?}");
        assert_eq!(report.last_seq, 501);
        let log = AuditLog::open(&dir, opts).unwrap();
        assert_eq!(log.recovery().resumed_from_checkpoint, Some(501));
        drop(log);
        let mut order = Vec::new();
        for seg in list_segments(&dir).unwrap() {
            let text = std::fs::read_to_string(dir.join(&seg.name)).unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(i) = v.pointer("/fields/i").and_then(|i| i.as_u64()) {
                    order.push(i);
                }
            }
        }
        assert_eq!(order, (0..500).collect::<Vec<u64>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn audit_log_rotates_by_size() {
        let dir = tmp("rotate");
        let key = generate().unwrap();
        let mut opts = AuditOptions::new(key.clone());
        opts.segment_max_bytes = 2000;
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        for _ in 0..40 {
            log.append(Entry::new(
                Kind::Intent,
                json!({ "sql": "SELECT 1 FROM somewhere" }),
            ))
            .await
            .unwrap();
        }
        log.close().await.unwrap();
        let segs = list_segments(&dir).unwrap();
        assert!(segs.len() > 5, "{segs:?}");
        for s in &segs {
            let len = std::fs::metadata(&s.path).unwrap().len();
            assert!(len <= 2000, "{} is {len} bytes", s.name);
        }
        assert_eq!(segs[0].first, 1);
        let report = crate::audit::verify(&dir, &key.verifying_key(), None, &[]).unwrap();
        assert!(report.first_bad.is_none(), "{report:?}");
        assert_eq!(report.segments, segs.len());
        // Records after the segments' reopen go on rotating and chaining.
        let log = AuditLog::open(&dir, opts).unwrap();
        assert_eq!(
            log.append(Entry::new(Kind::Logout, json!({})))
                .await
                .unwrap(),
            41
        );
        log.close().await.unwrap();
        assert!(crate::audit::verify(&dir, &key.verifying_key(), None, &[])
            .unwrap()
            .first_bad
            .is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn audit_log_rotates_by_utc_day() {
        use std::sync::atomic::AtomicUsize;
        let dir = tmp("day");
        let key = generate().unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let days = Arc::new(std::sync::Mutex::new("2025-01-01"));
        let mut opts = AuditOptions::new(key.clone());
        let (n2, d2) = (n.clone(), days.clone());
        opts.clock = Some(Arc::new(move || {
            let i = n2.fetch_add(1, Ordering::SeqCst);
            format!("{}T00:00:00.{i:06}Z", d2.lock().unwrap())
        }));
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        for i in 1..=6u64 {
            if i == 4 {
                *days.lock().unwrap() = "2025-01-02";
            }
            log.append(Entry::new(Kind::Login, json!({})))
                .await
                .unwrap();
        }
        log.close().await.unwrap();
        let firsts: Vec<Seq> = list_segments(&dir)
            .unwrap()
            .iter()
            .map(|s| s.first)
            .collect();
        assert_eq!(firsts, vec![1, 4]);
        // Reopened on the same day: the last segment goes on.
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        log.append(Entry::new(Kind::Login, json!({})))
            .await
            .unwrap();
        log.close().await.unwrap();
        let firsts: Vec<Seq> = list_segments(&dir)
            .unwrap()
            .iter()
            .map(|s| s.first)
            .collect();
        assert_eq!(firsts, vec![1, 4]);
        // ... and on the next day a new one starts.
        *days.lock().unwrap() = "2025-01-03";
        let log = AuditLog::open(&dir, opts).unwrap();
        log.append(Entry::new(Kind::Login, json!({})))
            .await
            .unwrap();
        log.close().await.unwrap();
        let firsts: Vec<Seq> = list_segments(&dir)
            .unwrap()
            .iter()
            .map(|s| s.first)
            .collect();
        assert_eq!(firsts, vec![1, 4, 8]);
        let report = crate::audit::verify(&dir, &key.verifying_key(), None, &[]).unwrap();
        assert!(report.is_clean(), "{report:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn audit_log_refuses_appends_after_a_failed_write() {
        let dir = tmp("fail");
        let mut opts = AuditOptions::new(generate().unwrap());
        opts.fail_writes_after = Some(3);
        let log = AuditLog::open(&dir, opts).unwrap();
        for i in 1..=3 {
            assert_eq!(
                log.append(Entry::new(Kind::Login, json!({})))
                    .await
                    .unwrap(),
                i
            );
        }
        let e = log
            .append(Entry::new(Kind::Login, json!({})))
            .await
            .unwrap_err();
        assert!(matches!(e, AuditError::Failed(_)), "{e}");
        assert!(e.to_string().contains("injected write failure"), "{e}");
        let e = log
            .append(Entry::new(Kind::Login, json!({})))
            .await
            .unwrap_err();
        assert!(matches!(e, AuditError::Failed(_)), "{e}");
        assert!(log.checkpoint_now().await.is_err());
        assert_eq!(log.durable_seq(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn audit_log_recovers_a_torn_tail() {
        let dir = tmp("torn");
        let key = generate().unwrap();
        let opts = AuditOptions::new(key.clone());
        let log = AuditLog::open(&dir, opts.clone()).unwrap();
        for _ in 0..5 {
            log.append(Entry::new(Kind::Login, json!({})))
                .await
                .unwrap();
        }
        drop(log);
        // Let the writer finish its shutdown checkpoint.
        for _ in 0..100 {
            if read_checkpoints(&dir).unwrap().len() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let seg = &list_segments(&dir).unwrap()[0];
        let mut f = OpenOptions::new().append(true).open(&seg.path).unwrap();
        f.write_all(b"{\"fields\":{},\"ha").unwrap();
        drop(f);
        let log = AuditLog::open(&dir, opts).unwrap();
        assert_eq!(log.recovery().torn_bytes, 16);
        assert_eq!(
            log.append(Entry::new(Kind::Login, json!({})))
                .await
                .unwrap(),
            6
        );
        log.close().await.unwrap();
        let report = crate::audit::verify(&dir, &key.verifying_key(), None, &[]).unwrap();
        assert!(report.first_bad.is_none(), "{report:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
