//! Scheduled materialized pulls: a query run on a schedule, its result
//! kept as Parquet snapshots and served as `mat.<name>`.
//!
//! * [`schedule`]: when a pull runs (cron + time zone);
//! * [`store`]: the pull's folder, the atomic swap, crash recovery;
//! * [`run`]: one run (grants of the owner role, incremental filter,
//!   retries) and the scheduler.
//!
//! This module holds the definitions and serves the current snapshots to
//! the catalog.

pub mod run;
pub mod schedule;
pub mod store;

mod lease;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::catalog::TableProvider;
use datafusion::error::Result;

use lease::{LeasedSnapshot, Readers};

use crate::config::{FederationConfig, PullConfig};
use schedule::Schedule;
use store::{Current, PullDir, Status};

/// One pull as declared.
#[derive(Debug, Clone)]
pub struct PullDef {
    /// Name (the table `mat.<name>`).
    pub name: String,
    /// The declaration.
    pub config: PullConfig,
    /// Parsed schedule; `None` for on-demand pulls.
    pub schedule: Option<Schedule>,
}

/// Everything known of a pull now, for `system.pulls` and `tautan pulls`.
#[derive(Debug, Clone)]
pub struct PullInfo {
    /// The declaration.
    pub def: PullDef,
    /// The snapshot being served.
    pub current: Option<Current>,
    /// The last run.
    pub status: Option<Status>,
    /// Next scheduled run (Unix microseconds).
    pub next_run_us: Option<i64>,
}

/// The pulls of a federation.
#[derive(Debug)]
pub struct Pulls {
    defs: BTreeMap<String, PullDef>,
    data_dir: PathBuf,
    /// Bounds how many pulls run at once in this process.
    pub(crate) permits: Arc<tokio::sync::Semaphore>,
    /// Table providers per (pull, snapshot id), so a snapshot's schema is
    /// read once.
    tables: Mutex<SnapshotTables>,
    /// Snapshots queries are reading now (kept past the retention).
    readers: Arc<Readers>,
}

/// Each pull's table provider, with the snapshot id it reads.
type SnapshotTables = BTreeMap<String, (u64, Arc<dyn TableProvider>)>;

impl Pulls {
    /// The pulls declared in `cfg` (already validated).
    pub fn from_config(cfg: &FederationConfig) -> Self {
        let defs = cfg
            .pulls
            .iter()
            .map(|(name, p)| {
                let config = p.get_ref().clone();
                let schedule = config
                    .schedule
                    .as_deref()
                    .and_then(|s| Schedule::parse(s, &config.timezone).ok());
                (
                    name.clone(),
                    PullDef {
                        name: name.clone(),
                        config,
                        schedule,
                    },
                )
            })
            .collect();
        Self {
            defs,
            data_dir: cfg.resolve_path(&cfg.materialize.data_dir),
            permits: Arc::new(tokio::sync::Semaphore::new(cfg.materialize.max_concurrent)),
            tables: Mutex::new(BTreeMap::new()),
            readers: Arc::default(),
        }
    }

    /// Pull names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.defs.keys().cloned().collect()
    }

    /// The pull `name`.
    pub fn get(&self, name: &str) -> Option<&PullDef> {
        self.defs.get(name)
    }

    /// Every pull.
    pub fn defs(&self) -> impl Iterator<Item = &PullDef> {
        self.defs.values()
    }

    /// Where snapshots live.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The folder of pull `name`.
    pub fn dir(&self, name: &str) -> PullDir {
        PullDir::new(&self.data_dir, name)
    }

    /// What is known of pull `name` now.
    pub fn info(&self, name: &str) -> Option<PullInfo> {
        let def = self.defs.get(name)?.clone();
        let dir = self.dir(name);
        let next_run_us = def
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(chrono::Utc::now()))
            .map(|t| t.timestamp_micros());
        Some(PullInfo {
            def,
            current: dir.current(),
            status: dir.status(),
            next_run_us,
        })
    }

    /// Cleans up every pull whose run is not going on (at server start):
    /// partial files removed, interrupted runs marked as such.
    pub fn recover_all(&self) {
        for name in self.defs.keys() {
            let dir = self.dir(name);
            match dir.try_lock() {
                Ok(Some(_lock)) => match dir.recover() {
                    Ok(removed) if !removed.is_empty() => {
                        tracing::info!(pull = %name, removed = removed.len(), "removed what an interrupted run left")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(pull = %name, error = %e, "cannot clean up"),
                },
                Ok(None) => {} // a run is going on in another process
                Err(e) => tracing::warn!(pull = %name, error = %e, "cannot open pull folder"),
            }
        }
    }

    /// The current snapshot of `name` as a table, or `None` when the pull
    /// has none yet. Reads `current.json` each time, so a snapshot published
    /// by another process (`tautan pull`) is served at once.
    pub async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !self.defs.contains_key(name) {
            return Ok(None);
        }
        let dir = self.dir(name);
        let Some(current) = dir.current() else {
            return Ok(None);
        };
        if let Some((id, table)) = self.lock_tables().get(name) {
            if *id == current.id {
                return Ok(Some(table.clone()));
            }
        }
        // A new snapshot: its schema is read once, then the provider cached.
        let path = dir.snapshot_path(current.id);
        let state = datafusion::prelude::SessionContext::new().state();
        let file = tautan_files::open_table(&state, &path, tautan_files::FileKind::Parquet).await?;
        let retention = self.defs.get(name).map_or(1, |d| d.config.retention);
        let table: Arc<dyn TableProvider> = Arc::new(LeasedSnapshot::new(
            file,
            self.readers.clone(),
            dir,
            name,
            current.id,
            retention,
        ));
        self.lock_tables()
            .insert(name.to_string(), (current.id, table.clone()));
        Ok(Some(table))
    }

    /// Whether a query of this process is reading snapshot `id` of pull
    /// `name` now.
    pub fn reading(&self, name: &str, id: u64) -> bool {
        self.readers.reading(name, id)
    }

    fn lock_tables(&self) -> std::sync::MutexGuard<'_, SnapshotTables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}
