//! One run of a pull, and the scheduler that starts runs.
//!
//! A run takes the pull's lock (so runs of one pull never overlap, across
//! processes too), waits for a slot (`materialize.max_concurrent`), cleans
//! up after any crashed run, then runs the query **under the grants of the
//! owner role** and writes a new snapshot:
//!
//! * `full`: the whole result becomes the snapshot;
//! * `incremental`: the query is filtered on `watermark > last value`, a
//!   filter DataFusion pushes into the source scan, so only new rows cross
//!   the wire; the new rows are merged with the previous snapshot (rows
//!   with the same `key` replaced, or appended when there is no key).
//!
//! A failure that may pass (a source down, a connection cut) is retried
//! with exponential backoff; the previous snapshot is served meanwhile.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::Array;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::max;
use datafusion::logical_expr::JoinType;
use datafusion::prelude::{ident, lit, DataFrame, ParquetReadOptions, SessionContext};

use super::store::{now_us, Current, PullDir, RunState, Status};
use super::PullDef;
use crate::config::PullMode;
use crate::engine::Engine;
use crate::error::QueryError;
use crate::export::{write_file, FileFormat, Progress, WriteError, Written};

/// Why a run did not publish a snapshot.
#[derive(Debug)]
pub enum PullError {
    /// No pull of that name.
    Unknown(String),
    /// A run of this pull is going on (here or in another process).
    AlreadyRunning(String),
    /// The query failed, after `attempts` attempts.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: QueryError,
    },
    /// The data folder could not be written.
    Storage(String),
}

impl std::fmt::Display for PullError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PullError::Unknown(n) => write!(f, "no pull named `{n}`"),
            PullError::AlreadyRunning(n) => write!(f, "pull `{n}` is already running"),
            PullError::Failed { attempts, error } => {
                write!(f, "failed after {attempts} attempt(s): {error}")
            }
            PullError::Storage(e) => write!(f, "storage: {e}"),
        }
    }
}

impl std::error::Error for PullError {}

impl From<WriteError> for PullError {
    fn from(e: WriteError) -> Self {
        PullError::Storage(e.to_string())
    }
}

/// What a successful run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Rows fetched from the sources.
    pub fetched: u64,
    /// The snapshot served now.
    pub current: Option<Current>,
    /// Attempts it took.
    pub attempts: u32,
    /// Wall time.
    pub elapsed: Duration,
}

/// A failure of one attempt.
enum AttemptError {
    Query(QueryError),
    Storage(String),
}

impl From<QueryError> for AttemptError {
    fn from(e: QueryError) -> Self {
        AttemptError::Query(e)
    }
}

impl From<datafusion::error::DataFusionError> for AttemptError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        AttemptError::Query(e.into())
    }
}

impl From<WriteError> for AttemptError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Query(q) => AttemptError::Query(q),
            WriteError::Io(s) => AttemptError::Storage(s),
        }
    }
}

/// Errors worth another attempt: connections, resources, internal hiccups;
/// not grants, syntax or data errors, which the next attempt repeats.
fn retryable(e: &QueryError) -> bool {
    ["08", "53", "57", "58", "40", "XX"]
        .iter()
        .any(|class| e.code.starts_with(class))
}

/// Tries at taking a pull's run lock, 20 ms apart, before it counts as held.
const LOCK_ATTEMPTS: u32 = 10;

/// Runs pull `name` now. Fails with [`PullError::AlreadyRunning`] (within
/// 200 ms) if a run of it is going on.
pub async fn run_pull(
    engine: &Arc<Engine>,
    name: &str,
    progress: &dyn Progress,
) -> Result<RunReport, PullError> {
    let pulls = engine.registry.pulls.clone();
    let def = pulls
        .get(name)
        .cloned()
        .ok_or_else(|| PullError::Unknown(name.to_string()))?;
    let dir = pulls.dir(name);
    // A lock just released can still be held for a moment by a child
    // process this process is starting (between fork and exec the child
    // shares the open file); a run that really holds it holds it for
    // seconds. So a refusal is only believed after a short while.
    let mut lock = dir.try_lock()?;
    for _ in 1..LOCK_ATTEMPTS {
        if lock.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        lock = dir.try_lock()?;
    }
    let _lock = lock.ok_or_else(|| PullError::AlreadyRunning(name.to_string()))?;
    let _permit = pulls
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| PullError::Storage(e.to_string()))?;
    dir.recover()?;
    let start = Instant::now();
    let mut status = Status {
        state: RunState::Running,
        started_us: now_us(),
        ended_us: None,
        attempts: 0,
        rows: 0,
        bytes: 0,
        error: None,
    };
    dir.write_status(&status)?;
    tracing::info!(pull = %name, mode = def.config.mode.as_str(), "pull started");

    let mut backoff = Duration::from_millis(def.config.retry_backoff_ms);
    let result = loop {
        status.attempts += 1;
        match attempt(engine, &def, &dir, progress).await {
            Ok(done) => break Ok(done),
            Err(AttemptError::Query(e))
                if retryable(&e) && status.attempts <= def.config.retries =>
            {
                tracing::warn!(pull = %name, attempt = status.attempts, error = %e, retry_in = ?backoff, "pull attempt failed; retrying");
                status.error = Some(e.to_string());
                let _ = dir.write_status(&status);
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            Err(e) => break Err(e),
        }
    };
    status.ended_us = Some(now_us());
    match result {
        Ok((fetched, written)) => {
            status.state = RunState::Succeeded;
            status.rows = fetched;
            status.bytes = written.map(|w| w.bytes).unwrap_or(0);
            status.error = None;
            dir.write_status(&status)?;
            let current = dir.current();
            tracing::info!(pull = %name, fetched, snapshot = ?current.as_ref().map(|c| c.id), elapsed = ?start.elapsed(), "pull finished");
            Ok(RunReport {
                fetched,
                current,
                attempts: status.attempts,
                elapsed: start.elapsed(),
            })
        }
        Err(e) => {
            let (message, err) = match e {
                AttemptError::Query(q) => (
                    q.to_string(),
                    PullError::Failed {
                        attempts: status.attempts,
                        error: q,
                    },
                ),
                AttemptError::Storage(s) => (s.clone(), PullError::Storage(s)),
            };
            status.state = RunState::Failed;
            status.error = Some(message.clone());
            dir.write_status(&status)?;
            tracing::error!(pull = %name, attempts = status.attempts, error = %message, "pull failed; the previous snapshot stays in use");
            Err(err)
        }
    }
}

/// One attempt: fetch, write, merge, publish. Returns rows fetched and
/// the new snapshot's file (None when nothing new arrived).
async fn attempt(
    engine: &Arc<Engine>,
    def: &PullDef,
    dir: &PullDir,
    progress: &dyn Progress,
) -> Result<(u64, Option<Written>), AttemptError> {
    let session = engine.pull_session(def);
    let query = session.prepare_query(&def.config.sql).await?;
    let previous = dir.current();
    let id = dir.next_id();
    let target = dir.snapshot_path(id);
    // Recorded in the audit log as the owner's statement: the intent
    // before the sources are read, the completion as the fetch ends.
    let recording = session.begin(&query, None).await?;
    let mut df = DataFrame::new(session.state_recording(&recording), query.plan);

    if def.config.mode == PullMode::Full {
        let (state, plan) = df.into_parts();
        let written = write_file(
            recording.watch(crate::budget::execute_spilling_joins(state, plan).await?),
            &target,
            FileFormat::Parquet,
            progress,
        )
        .await?;
        publish(engine, dir, def, id, written, None)?;
        return Ok((written.rows, Some(written)));
    }

    // Incremental: only rows above the watermark, then merge.
    let watermark = def.config.watermark.clone().unwrap_or_default();
    if let Some(last) = previous.as_ref().and_then(|c| c.watermark.clone()) {
        let ty = df
            .schema()
            .field_with_unqualified_name(&watermark)
            .map_err(QueryError::from)?
            .data_type()
            .clone();
        let value = ScalarValue::try_from_string(last, &ty)?;
        df = df.filter(ident(&watermark).gt(lit(value)))?;
    }
    let delta_path = dir.root().join(format!("{id:020}.delta.parquet"));
    let (state, plan) = df.into_parts();
    let delta = write_file(
        recording.watch(crate::budget::execute_spilling_joins(state, plan).await?),
        &delta_path,
        FileFormat::Parquet,
        progress,
    )
    .await?;
    if delta.rows == 0 && previous.is_some() {
        let _ = std::fs::remove_file(&delta_path);
        return Ok((0, None));
    }
    let local = SessionContext::new();
    let path_text = |p: &std::path::Path| p.to_string_lossy().to_string();
    local
        .register_parquet(
            "delta",
            &path_text(&delta_path),
            ParquetReadOptions::default(),
        )
        .await?;
    let new_rows = local.table("delta").await?;
    let merged: DataFrame = match &previous {
        None => new_rows,
        Some(c) => {
            local
                .register_parquet(
                    "old",
                    &path_text(&dir.snapshot_path(c.id)),
                    ParquetReadOptions::default(),
                )
                .await?;
            let old = local.table("old").await?;
            let kept = if def.config.key.is_empty() {
                old
            } else {
                let keys: Vec<&str> = def.config.key.iter().map(String::as_str).collect();
                old.join(new_rows.clone(), JoinType::LeftAnti, &keys, &keys, None)?
            };
            kept.union(new_rows)?
        }
    };
    let written = write_file(
        merged.execute_stream().await?,
        &target,
        FileFormat::Parquet,
        progress,
    )
    .await?;
    let _ = std::fs::remove_file(&delta_path);
    let highest = highest(&local, &target, &watermark).await?;
    publish(engine, dir, def, id, written, highest)?;
    Ok((delta.rows, Some(written)))
}

/// The largest watermark value in a snapshot file, as text.
async fn highest(
    ctx: &SessionContext,
    path: &std::path::Path,
    column: &str,
) -> Result<Option<String>, AttemptError> {
    let df = ctx
        .read_parquet(
            path.to_string_lossy().to_string(),
            ParquetReadOptions::default(),
        )
        .await?
        .aggregate(vec![], vec![max(ident(column))])?;
    for batch in df.collect().await? {
        if batch.num_rows() > 0 {
            // Arrow's display form (ISO 8601 for timestamps) casts back
            // to the column's type with `ScalarValue::try_from_string`.
            if batch.column(0).is_valid(0) {
                let text =
                    datafusion::arrow::util::display::array_value_to_string(batch.column(0), 0)
                        .map_err(datafusion::error::DataFusionError::from)?;
                return Ok(Some(text));
            }
        }
    }
    Ok(None)
}

fn publish(
    engine: &Engine,
    dir: &PullDir,
    def: &PullDef,
    id: u64,
    written: Written,
    watermark: Option<String>,
) -> Result<(), AttemptError> {
    dir.publish(
        &Current {
            id,
            rows: written.rows,
            bytes: written.bytes,
            created_us: now_us(),
            watermark,
        },
        def.config.retention,
        &|old| engine.registry.pulls.reading(&def.name, old),
    )?;
    Ok(())
}

/// Progress as log lines every few seconds (when not on a terminal, and
/// for scheduled runs).
#[derive(Debug)]
pub struct LogProgress {
    name: String,
    start: Instant,
    last: Mutex<Instant>,
}

impl LogProgress {
    /// Progress of pull or export `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            start: Instant::now(),
            last: Mutex::new(Instant::now()),
        }
    }
}

impl Progress for LogProgress {
    fn advance(&self, rows: u64, bytes: u64) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_secs(2) {
            *last = Instant::now();
            let secs = self.start.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                pull = %self.name,
                rows,
                bytes,
                rows_per_s = (rows as f64 / secs) as u64,
                elapsed_s = secs as u64,
                "progress"
            );
        }
    }
}

/// Starts one task per scheduled pull. Each sleeps until its next firing
/// and starts a run; a firing while the previous run still goes on is
/// skipped (logged), never run twice.
pub fn spawn_scheduler(engine: &Arc<Engine>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for def in engine.registry.pulls.defs() {
        let Some(schedule) = def.schedule.clone() else {
            continue;
        };
        let name = def.name.clone();
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let now = chrono::Utc::now();
                let Some(next) = schedule.next_after(now) else {
                    tracing::warn!(pull = %name, "schedule has no future firing");
                    return;
                };
                let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait).await;
                let engine = engine.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let progress = LogProgress::new(&name);
                    match run_pull(&engine, &name, &progress).await {
                        Ok(_) => {}
                        Err(PullError::AlreadyRunning(_)) => {
                            tracing::info!(pull = %name, "previous run still going; this firing skipped")
                        }
                        Err(e) => tracing::warn!(pull = %name, error = %e, "scheduled run failed"),
                    }
                });
            }
        }));
    }
    tasks
}
