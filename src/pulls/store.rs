//! A pull's folder on disk, and the rules that keep it consistent.
//!
//! ```text
//! <data_dir>/<pull>/LOCK                  held (flock) while a run is going
//! <data_dir>/<pull>/current.json          which snapshot is served
//! <data_dir>/<pull>/status.json           the last run: state, times, error
//! <data_dir>/<pull>/snapshots/<id>.parquet
//! ```
//!
//! A run writes a new snapshot file (as `.partial`, renamed when complete),
//! then swaps `current.json` atomically: readers see the old snapshot or the
//! new one, never a partial one. Old snapshots beyond the retention are
//! removed, except the one just replaced and those a query of this process
//! is reading (their readers prune them when done, see
//! [`super::Pulls::table`]). [`PullDir::recover`] (run under the lock)
//! removes what a crashed run left behind.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::export::{io, write_atomic, WriteError};

/// The snapshot being served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// Snapshot number (grows by one per published snapshot).
    pub id: u64,
    /// Rows in the snapshot.
    pub rows: u64,
    /// Size of the snapshot file.
    pub bytes: u64,
    /// When it was published (Unix microseconds).
    pub created_us: i64,
    /// Highest watermark value in it (incremental pulls), as text.
    pub watermark: Option<String>,
}

/// State of the last run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Going now.
    Running,
    /// Finished and published.
    Succeeded,
    /// Gave up after its attempts; the previous snapshot is still served.
    Failed,
    /// The process died during the run (found at the next start).
    Interrupted,
}

impl RunState {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }
}

/// The last run of a pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Where it stands.
    pub state: RunState,
    /// Start (Unix microseconds).
    pub started_us: i64,
    /// End, once over.
    pub ended_us: Option<i64>,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// Rows fetched from the sources by this run.
    pub rows: u64,
    /// Bytes written by this run.
    pub bytes: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// Now, in Unix microseconds.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// One pull's folder.
#[derive(Debug, Clone)]
pub struct PullDir {
    root: PathBuf,
}

/// The held lock of a pull; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl PullDir {
    /// The folder of pull `name` under `data_dir`.
    pub fn new(data_dir: &Path, name: &str) -> Self {
        Self {
            root: data_dir.join(name),
        }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Path of snapshot `id`.
    pub fn snapshot_path(&self, id: u64) -> PathBuf {
        self.snapshots().join(format!("{id:020}.parquet"))
    }

    /// Takes the run lock, or `None` when another run (in this process or
    /// another) holds it.
    pub fn try_lock(&self) -> Result<Option<RunLock>, WriteError> {
        std::fs::create_dir_all(self.snapshots())
            .map_err(|e| io(&self.root, "cannot create", e))?;
        let path = self.root.join("LOCK");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, "cannot open", e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(&path, "cannot lock", e)),
        }
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, file: &str) -> Option<T> {
        let path = self.root.join(file);
        let text = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable pull state; ignored");
                None
            }
        }
    }

    fn write_json<T: Serialize>(&self, file: &str, value: &T) -> Result<(), WriteError> {
        let path = self.root.join(file);
        let text = serde_json::to_vec_pretty(value).map_err(|e| io(&path, "cannot encode", e))?;
        write_atomic(&path, &text)
    }

    /// The snapshot being served, if any.
    pub fn current(&self) -> Option<Current> {
        self.read_json("current.json")
    }

    /// The last run, if any.
    pub fn status(&self) -> Option<Status> {
        self.read_json("status.json")
    }

    /// Records the run's state.
    pub fn write_status(&self, status: &Status) -> Result<(), WriteError> {
        self.write_json("status.json", status)
    }

    /// Snapshot ids on disk, ascending.
    pub fn snapshot_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = std::fs::read_dir(self.snapshots())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".parquet")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The id the next snapshot gets.
    pub fn next_id(&self) -> u64 {
        let on_disk = self.snapshot_ids().last().copied().unwrap_or(0);
        let current = self.current().map(|c| c.id).unwrap_or(0);
        on_disk.max(current) + 1
    }

    /// Makes `next` the served snapshot (atomic swap of `current.json`),
    /// then removes snapshots beyond `retention` ([`PullDir::prune`]).
    pub fn publish(
        &self,
        next: &Current,
        retention: usize,
        in_use: &dyn Fn(u64) -> bool,
    ) -> Result<(), WriteError> {
        self.write_json("current.json", next)?;
        self.prune(retention, in_use);
        Ok(())
    }

    /// Removes the snapshots beyond the newest `retention`, keeping the
    /// served one, the one it replaced (a query planned a moment before the
    /// swap may still open it) and those `in_use` says a query is reading.
    pub fn prune(&self, retention: usize, in_use: &dyn Fn(u64) -> bool) {
        let Some(current) = self.current().map(|c| c.id) else {
            return;
        };
        let ids = self.snapshot_ids();
        let replaced = ids.iter().copied().filter(|id| *id < current).max();
        let keep_from = ids.len().saturating_sub(retention.max(1));
        for (i, id) in ids.iter().copied().enumerate() {
            if i >= keep_from || id == current || Some(id) == replaced || in_use(id) {
                continue;
            }
            let path = self.snapshot_path(id);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                // Another prune (a reader finishing) got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove old snapshot")
                }
            }
        }
    }

    /// Cleans up after a run that died: partial files, snapshots written
    /// but never published, a status still saying "running". Call with the
    /// lock held. Returns the files removed.
    pub fn recover(&self) -> Result<Vec<PathBuf>, WriteError> {
        let mut removed = Vec::new();
        let current = self.current().map(|c| c.id).unwrap_or(0);
        for dir in [self.root.clone(), self.snapshots()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                let orphan = name
                    .strip_suffix(".parquet")
                    .and_then(|id| id.parse::<u64>().ok())
                    .is_some_and(|id| id > current);
                let leftover = name.ends_with(".partial") || name.ends_with(".delta.parquet");
                if orphan || leftover {
                    std::fs::remove_file(&path).map_err(|e| io(&path, "cannot remove", e))?;
                    removed.push(path);
                }
            }
        }
        if let Some(mut status) = self.status() {
            if status.state == RunState::Running {
                status.state = RunState::Interrupted;
                status.error =
                    Some("the process running this pull stopped before it finished".into());
                self.write_status(&status)?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PullDir {
        let root = std::env::temp_dir().join(format!("tautan-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        PullDir::new(&root, "p")
    }

    fn snapshot(d: &PullDir, id: u64) -> Current {
        std::fs::write(d.snapshot_path(id), b"x").expect("write");
        Current {
            id,
            rows: id,
            bytes: 1,
            created_us: 0,
            watermark: None,
        }
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let d = dir("lock");
        let held = d.try_lock().expect("lock").expect("free");
        assert!(d.try_lock().expect("lock").is_none());
        drop(held);
        assert!(d.try_lock().expect("lock").is_some());
    }

    #[test]
    fn publish_keeps_retention_and_the_replaced_snapshot() {
        let d = dir("retention");
        let _l = d.try_lock().expect("lock").expect("free");
        for id in 1..=4 {
            let c = snapshot(&d, id);
            d.publish(&c, 1, &|_| false).expect("publish");
        }
        assert_eq!(d.snapshot_ids(), vec![3, 4]);
        assert_eq!(d.current().map(|c| c.id), Some(4));
        assert_eq!(d.next_id(), 5);
        // A snapshot being read stays past the retention until its reader
        // is done, then goes at the next prune.
        let reading = 4;
        for id in 5..=6 {
            let c = snapshot(&d, id);
            d.publish(&c, 1, &|id| id == reading).expect("publish");
        }
        assert_eq!(d.snapshot_ids(), vec![4, 5, 6]);
        d.prune(1, &|_| false);
        assert_eq!(d.snapshot_ids(), vec![5, 6]);
    }

    #[test]
    fn recover_removes_partials_and_unpublished_snapshots() {
        let d = dir("recover");
        let _l = d.try_lock().expect("lock").expect("free");
        let c = snapshot(&d, 1);
        d.publish(&c, 3, &|_| false).expect("publish");
        snapshot(&d, 2); // written, never published
        std::fs::write(
            d.root()
                .join("snapshots/00000000000000000003.parquet.partial"),
            b"x",
        )
        .expect("write");
        d.write_status(&Status {
            state: RunState::Running,
            started_us: 1,
            ended_us: None,
            attempts: 1,
            rows: 0,
            bytes: 0,
            error: None,
        })
        .expect("status");
        let removed = d.recover().expect("recover");
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert_eq!(d.snapshot_ids(), vec![1]);
        assert_eq!(d.status().map(|s| s.state), Some(RunState::Interrupted));
    }
}
