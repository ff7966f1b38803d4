//! Log rewrite (BGREWRITEAOF, and automatic as the log grows) and turning the log on and off
//! while the node runs.
//!
//! A rewrite is a background snapshot whose cut is also a cut of the log: while every shard is
//! held, the writer is told to begin a new segment at the current offset, and the snapshot
//! records the dataset at exactly that offset. When the snapshot file is complete, the
//! manifest is replaced to name it, and segments and bases before the cut are deleted. A
//! crash at any moment leaves a manifest naming a complete base followed by every segment
//! after it.

use super::Wal;
use crate::node::Node;
use crate::persist::snapshot::{self, Purpose, Saved, SnapshotError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use tracing::{info, warn};

/// What INFO persistence reports about rewrites.
pub struct RewriteState {
    pub in_progress: AtomicBool,
    /// Asked for while another background save ran: starts when that one ends.
    pub scheduled: AtomicBool,
    pub started_ms: AtomicU64,
    /// Seconds the last rewrite took (-1 before any: stored as u64::MAX).
    pub last_secs: AtomicU64,
    pub last_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub consecutive_failures: AtomicU64,
}

impl Default for RewriteState {
    fn default() -> RewriteState {
        RewriteState {
            in_progress: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            started_ms: AtomicU64::new(0),
            last_secs: AtomicU64::new(u64::MAX),
            last_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
        }
    }
}

impl RewriteState {
    /// Seconds the last rewrite took, -1 before any.
    pub fn last_secs(&self) -> i64 {
        match self.last_secs.load(Relaxed) {
            u64::MAX => -1,
            s => s as i64,
        }
    }

    /// Called by the snapshot thread when a base is written (or failed): the manifest moves
    /// to the new base and what it replaces is deleted.
    pub(crate) fn finished(&self, wal: &Wal, path: &Path, result: &Result<Saved, SnapshotError>, ms: u64) {
        let base = path.file_name().and_then(|n| super::format::parse_base_name(&n.to_string_lossy()));
        let done = match (result, base) {
            (Ok(saved), Some(base)) => match super::write_manifest(&wal.dir, base) {
                Ok(()) => {
                    super::remove_older_than(&wal.dir, base);
                    wal.note_base(base, saved.bytes);
                    info!(base = %path.display(), keys = saved.keys, bytes = saved.bytes, elapsed_ms = ms, "write-ahead log rewritten");
                    true
                }
                Err(e) => {
                    warn!(error = %e, "write-ahead log rewrite failed");
                    false
                }
            },
            (Err(e), _) => {
                warn!(error = %e, "write-ahead log rewrite failed");
                false
            }
            (Ok(_), None) => false,
        };
        self.last_secs.store(ms / 1000, Relaxed);
        self.last_ok.store(done, Relaxed);
        if done {
            self.rewrites.fetch_add(1, Relaxed);
            self.consecutive_failures.store(0, Relaxed);
        } else {
            self.consecutive_failures.fetch_add(1, Relaxed);
        }
        self.in_progress.store(false, Relaxed);
    }
}

/// Why BGREWRITEAOF did not start.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("ERR Background append only file rewriting already in progress")]
    InProgress,
    #[error("ERR the write-ahead log is off (appendonly no)")]
    Off,
    #[error("ERR {0}")]
    Snapshot(#[from] SnapshotError),
}

/// What BGREWRITEAOF did.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    Now,
    /// Another background save runs: the rewrite starts when it ends.
    Scheduled,
}

/// Starts a rewrite, or schedules one behind a running background save.
pub async fn rewrite(node: &Node) -> Result<Started, RewriteError> {
    let wal = &node.wal;
    if !wal.is_on() {
        return Err(RewriteError::Off);
    }
    if wal.rewrite.in_progress.load(Relaxed) {
        return Err(RewriteError::InProgress);
    }
    if node.saves.in_progress.load(Relaxed) {
        wal.rewrite.scheduled.store(true, Relaxed);
        return Ok(Started::Scheduled);
    }
    wal.rewrite.in_progress.store(true, Relaxed);
    wal.rewrite.started_ms.store(crate::util::now_ms(), Relaxed);
    match snapshot::background(node, Purpose::WalBase).await {
        Ok(_) => {
            wal.rewrite.scheduled.store(false, Relaxed);
            Ok(Started::Now)
        }
        Err(SnapshotError::InProgress) => {
            wal.rewrite.in_progress.store(false, Relaxed);
            wal.rewrite.scheduled.store(true, Relaxed);
            Ok(Started::Scheduled)
        }
        Err(e) => {
            wal.rewrite.in_progress.store(false, Relaxed);
            Err(e.into())
        }
    }
}

/// Whether the log has grown enough since its base for an automatic rewrite (Redis's
/// auto-aof-rewrite-percentage and auto-aof-rewrite-min-size).
pub fn due(wal: &Wal, percentage: u64, min_size: u64) -> bool {
    if percentage == 0 || !wal.is_on() || wal.rewrite.in_progress.load(Relaxed) {
        return false;
    }
    let base = wal.base_size.load(Relaxed);
    let size = base + wal.log_bytes();
    size >= min_size && size.saturating_sub(base) * 100 >= base.max(1) * percentage
}

/// CONFIG SET appendonly yes: the log starts now, and becomes the source of recovery once its
/// first base is written (until then a restart loads dump.rdb, as before).
pub async fn enable(node: &Node) -> Result<(), super::WalError> {
    let wal = &node.wal;
    if wal.is_on() {
        return Ok(());
    }
    // An old manifest would pair an old base with the new segments.
    let manifest = wal.dir.join(super::format::MANIFEST);
    if manifest.exists() {
        std::fs::remove_file(&manifest).map_err(|source| super::WalError::Io { path: manifest.clone(), source })?;
    }
    let at = super::fresh_offset(&wal.dir);
    {
        let mut leases = node.lease_all().await;
        wal.start(at)?;
        for l in leases.iter_mut() {
            l.state().changes.set_wal(Some(wal.clone()));
        }
    }
    info!(offset = at, "write-ahead log on; writing its base");
    if let Err(e) = rewrite(node).await {
        warn!(error = %e, "the write-ahead log's first rewrite did not start");
    }
    Ok(())
}

/// CONFIG SET appendonly no: shards stop recording, and the writer writes and syncs what it
/// has, then stops. The files stay; the next start loads dump.rdb.
pub async fn disable(node: &Node) {
    if !node.wal.is_on() {
        return;
    }
    {
        let mut leases = node.lease_all().await;
        for l in leases.iter_mut() {
            l.state().changes.set_wal(None);
        }
    }
    let wal = node.wal.clone();
    let _ = tokio::task::spawn_blocking(move || wal.stop()).await;
    // The manifest goes, so a later start does not load a log that stopped being written.
    let _ = std::fs::remove_file(node.wal.dir.join(super::format::MANIFEST));
    info!("write-ahead log off");
}
