//! The write-ahead log of the change stream (Redis's append-only file, `appendonly yes`).
//!
//! Shards append frames of encoded records to one in-memory buffer; a writer thread moves the
//! buffer into the current segment file and syncs it as `appendfsync` says. With `always`, a
//! connection sends no reply until the log is synced past every record appended before it
//! looked (`barrier`): one fsync covers every connection waiting at that moment (group
//! commit), and no client can read a write that a crash could still take back. With
//! `everysec` the file is synced once a second and replies do not wait; with `no` the
//! operating system decides.
//!
//! On disk, in `<data dir>/wal/`: segment files named by the log offset of their first frame,
//! a base snapshot (`base-<offset>.rdb`, the whole dataset at that offset) and a manifest
//! naming it. Recovery loads the base and replays the segments from its offset on
//! (`recover`). A rewrite (BGREWRITEAOF, or automatic as the log grows) writes a new base at a
//! cut while writes go on, then drops what the new base makes unnecessary (`rewrite`).

pub mod format;
pub mod recover;
pub mod rewrite;
mod writer;

use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::Notify;

pub const DIR_NAME: &str = "wal";

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("write-ahead log {path} is corrupt at offset {offset}: {what}")]
    Corrupt { path: PathBuf, offset: u64, what: String },
    #[error("write-ahead log in {dir}: {what}")]
    Layout { dir: PathBuf, what: String },
    #[error("write-ahead log base {path}: {source}")]
    Base { path: PathBuf, source: crate::persist::rdb::RdbError },
}

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    Always = 0,
    EverySec = 1,
    No = 2,
}

impl Fsync {
    pub fn parse(s: &str) -> Option<Fsync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(Fsync::Always),
            "everysec" => Some(Fsync::EverySec),
            "no" => Some(Fsync::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }

    fn from_u8(v: u8) -> Fsync {
        match v {
            0 => Fsync::Always,
            1 => Fsync::EverySec,
            _ => Fsync::No,
        }
    }
}

/// Appended bytes not yet written beyond which replies wait for the writer (a disk slower
/// than the writes must slow the writes, not grow memory).
const MAX_UNWRITTEN: u64 = 64 << 20;

/// What shards have appended and the writer has not taken yet.
struct Pending {
    buf: Vec<u8>,
    /// Log offset just past `buf`.
    end: u64,
    /// Offsets where a new segment must begin (a rewrite's cut), in order.
    cuts: Vec<u64>,
    stop: bool,
}

pub struct Wal {
    pub dir: PathBuf,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The writer sleeps without a timeout: appenders must wake it.
    parked: AtomicBool,
    fsync: AtomicU8,
    on: AtomicBool,
    /// Log offsets: appended by shards, written to the file, synced to disk.
    appended: AtomicU64,
    written: AtomicU64,
    synced: AtomicU64,
    /// Woken whenever `written` or `synced` moves.
    progress: Notify,
    /// The last write or sync error, until a write succeeds again.
    error: Mutex<Option<String>>,
    failing: AtomicBool,
    pub segment_size: AtomicU64,
    /// Bytes in the log since its base (INFO's aof_current_size counts base + this).
    pub base_size: AtomicU64,
    pub base_offset: AtomicU64,
    pub rewrite: rewrite::RewriteState,
    /// Syncs done and the time they took (for the metrics).
    pub fsyncs: AtomicU64,
    pub fsync_nanos: AtomicU64,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Wal {
    pub fn new(data_dir: &Path, fsync: Fsync, segment_size: u64) -> Arc<Wal> {
        Arc::new(Wal {
            dir: data_dir.join(DIR_NAME),
            pending: Mutex::new(Pending { buf: Vec::new(), end: 0, cuts: Vec::new(), stop: false }),
            wake: Condvar::new(),
            parked: AtomicBool::new(false),
            fsync: AtomicU8::new(fsync as u8),
            on: AtomicBool::new(false),
            appended: AtomicU64::new(0),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            progress: Notify::new(),
            error: Mutex::new(None),
            failing: AtomicBool::new(false),
            segment_size: AtomicU64::new(segment_size),
            base_size: AtomicU64::new(0),
            base_offset: AtomicU64::new(0),
            rewrite: rewrite::RewriteState::default(),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            writer: Mutex::new(None),
        })
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Relaxed)
    }

    pub fn fsync(&self) -> Fsync {
        Fsync::from_u8(self.fsync.load(Relaxed))
    }

    pub fn set_fsync(&self, f: Fsync) {
        self.fsync.store(f as u8, Relaxed);
        self.wake.notify_one();
    }

    /// Log offset just past the last frame appended.
    pub fn appended(&self) -> u64 {
        self.appended.load(Relaxed)
    }

    pub fn synced(&self) -> u64 {
        self.synced.load(Relaxed)
    }

    /// Bytes appended and not yet in the file (INFO's aof_buffer_length).
    pub fn unwritten(&self) -> u64 {
        self.appended().saturating_sub(self.written.load(Relaxed))
    }

    /// The write error that makes the node refuse writes (Redis's MISCONF), if any.
    pub fn failure(&self) -> Option<String> {
        if !self.failing.load(Relaxed) {
            return None;
        }
        self.error.lock().clone()
    }

    /// Appends one frame holding `payload`'s records.
    pub fn append(&self, payload: &[u8]) {
        let header = format::frame_header(payload);
        {
            let mut p = self.pending.lock();
            p.buf.extend_from_slice(&header);
            p.buf.extend_from_slice(payload);
            p.end += (header.len() + payload.len()) as u64;
            self.appended.store(p.end, Relaxed);
        }
        if self.fsync() == Fsync::Always || self.parked.load(Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Merges the records of a multi-shard command's shards into one frame, in the order
    /// they were made; a node-wide record every shard made is kept once.
    pub fn append_group(&self, mut parts: Vec<(u64, Vec<u8>)>) {
        if parts.is_empty() {
            return;
        }
        parts.sort_by_key(|p| p.0);
        let mut payload = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
        let mut last_node_wide: Option<&[u8]> = None;
        for (_, rec) in &parts {
            if rec.first() == Some(&format::NODE_WIDE) {
                if last_node_wide == Some(rec.as_slice()) {
                    continue;
                }
                last_node_wide = Some(rec);
            } else {
                last_node_wide = None;
            }
            payload.extend_from_slice(rec);
        }
        self.append(&payload);
    }

    /// Marks the current offset as the start of a new segment (a rewrite's cut) and returns
    /// it. Called with every shard held, so no record can fall on the wrong side.
    pub fn cut(&self) -> u64 {
        let mut p = self.pending.lock();
        let at = p.end;
        p.cuts.push(at);
        drop(p);
        self.wake.notify_one();
        at
    }

    /// Waits until the replies a connection is about to send may go: with `always`, until
    /// everything appended so far is on disk; otherwise only while the writer lags far
    /// behind.
    #[inline]
    pub async fn barrier(&self) {
        if !self.is_on() {
            return;
        }
        let target = self.appended();
        let always = self.fsync() == Fsync::Always;
        if always && self.synced.load(Relaxed) >= target {
            return;
        }
        if !always && target.saturating_sub(self.written.load(Relaxed)) <= MAX_UNWRITTEN {
            return;
        }
        let target = if always { target } else { target - MAX_UNWRITTEN };
        loop {
            let notified = self.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let reached = if self.fsync() == Fsync::Always {
                self.synced.load(Relaxed) >= target
            } else {
                self.written.load(Relaxed) >= target
            };
            // A log that stopped (a shutdown, or CONFIG SET appendonly no) holds nobody.
            if reached || !self.is_on() {
                return;
            }
            notified.await;
        }
    }

    /// Starts the writer thread, appending from log offset `start` in a new segment.
    pub fn start(self: &Arc<Wal>, start: u64) -> Result<(), WalError> {
        let seg = writer::Segment::create(&self.dir, start)?;
        {
            let mut p = self.pending.lock();
            p.buf.clear();
            p.end = start;
            p.cuts.clear();
            p.stop = false;
        }
        self.appended.store(start, Relaxed);
        self.written.store(start, Relaxed);
        self.synced.store(start, Relaxed);
        *self.error.lock() = None;
        self.failing.store(false, Relaxed);
        self.on.store(true, Relaxed);
        let wal = self.clone();
        let handle = std::thread::Builder::new()
            .name("shoal-wal".into())
            .spawn(move || writer::run(wal, seg))
            .map_err(|source| WalError::Io { path: self.dir.clone(), source })?;
        *self.writer.lock() = Some(handle);
        Ok(())
    }

    /// Writes and syncs everything appended, then stops the writer (shutdown, or
    /// CONFIG SET appendonly no once shards no longer append).
    pub fn stop(&self) {
        let Some(handle) = self.writer.lock().take() else { return };
        self.pending.lock().stop = true;
        self.wake.notify_one();
        let _ = handle.join();
        self.on.store(false, Relaxed);
        self.progress.notify_waiters();
    }

    /// Bytes of log since the base, from the offsets (INFO's aof_current_size adds the base).
    pub fn log_bytes(&self) -> u64 {
        self.appended().saturating_sub(self.base_offset.load(Relaxed))
    }

    fn set_error(&self, e: Option<String>) {
        self.failing.store(e.is_some(), Relaxed);
        *self.error.lock() = e;
    }
}

/// Writes the manifest naming the base at offset `base`, atomically.
pub fn write_manifest(dir: &Path, base: u64) -> Result<(), WalError> {
    let path = dir.join(format::MANIFEST);
    crate::persist::snapshot::write_atomically(&path, |f| {
        use std::io::Write;
        let text = format::manifest_text(base);
        f.write_all(text.as_bytes())?;
        Ok(crate::persist::snapshot::Saved { keys: 0, bytes: text.len() as u64 })
    })
    .map(|_| ())
    .map_err(|e| WalError::Io { path, source: std::io::Error::other(e.to_string()) })
}

/// Removes segments and bases that the base at `base` makes unnecessary.
pub fn remove_older_than(dir: &Path, base: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = match (format::parse_segment_name(&name), format::parse_base_name(&name)) {
            (Some(start), _) => start < base,
            (_, Some(offset)) => offset < base,
            _ => name.contains(".tmp-"),
        };
        if old {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove an old write-ahead log file");
            }
        }
    }
}

/// A log offset past everything in `dir`, for a log that starts afresh there: its files can
/// then never be mistaken for the old log's.
pub fn fresh_offset(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let len = e.metadata().map_or(0, |m| m.len());
            match (format::parse_segment_name(&name), format::parse_base_name(&name)) {
                (Some(start), _) => Some(start + len),
                (_, Some(offset)) => Some(offset + 1),
                _ => None,
            }
        })
        .max()
        .unwrap_or(0)
}

/// Starts a new log at offset `at` from the dataset in `states` (at start-up, before clients):
/// the base first, then the manifest naming it, then the writer.
pub fn start_log_with_base(
    wal: &Arc<Wal>,
    states: &[&crate::shard::ShardState],
    functions: &[Vec<u8>],
    at: u64,
) -> Result<(), WalError> {
    let path = wal.dir.join(format::base_name(at));
    let now = crate::util::now_ms();
    let saved = crate::persist::snapshot::write_atomically(&path, |f| {
        crate::persist::snapshot::write_rdb(states, functions, now, std::io::BufWriter::with_capacity(1 << 20, f))
    })
    .map_err(|e| WalError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) })?;
    write_manifest(&wal.dir, at)?;
    remove_older_than(&wal.dir, at);
    wal.note_base(at, saved.bytes);
    tracing::info!(dir = %wal.dir.display(), keys = saved.keys, "write-ahead log started");
    wal.start(at)
}

impl Wal {
    /// Records the base the log now starts from (for sizes in INFO and automatic rewrites).
    pub fn note_base(&self, offset: u64, bytes: u64) {
        self.base_offset.store(offset, Relaxed);
        self.base_size.store(bytes, Relaxed);
    }
}
