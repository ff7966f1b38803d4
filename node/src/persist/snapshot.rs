//! Snapshots: the whole keyspace written as an RDB file (`dump.rdb` in the data directory),
//! loaded again at start-up. The format is Redis's RDB version 10, so a Shoal snapshot
//! without streams loads into redis-server as well; streams use Shoal's own type number.
//!
//! SAVE holds every shard while it writes, as Redis's SAVE blocks the server: the file is a
//! single point in time across shards. The file is written under a temporary name, synced,
//! renamed over the old one and the directory synced, so a crash at any moment leaves either
//! the old snapshot or the new one, never half of one.

use super::crc64::crc64;
use super::dump::{put_len, put_string, put_value};
use super::rdb::{OP_AUX, OP_EOF, OP_EXPIRETIME_MS, OP_RESIZEDB, OP_SELECTDB};
use crate::node::Node;
use crate::shard::ShardState;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tracing::{info, warn};

pub const FILE_NAME: &str = "dump.rdb";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot write snapshot {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("a save is already in progress")]
    InProgress,
}

/// What INFO persistence and LASTSAVE report.
pub struct SaveState {
    /// The change counter (`dirty`) at the last successful save.
    pub dirty_at_save: AtomicU64,
    /// Unix seconds of the last successful save (start-up time before any).
    pub last_save: AtomicU64,
    pub saves: AtomicU64,
    pub last_ok: AtomicBool,
    pub in_progress: AtomicBool,
    pub last_duration_ms: AtomicU64,
    /// What the start-up load found.
    pub loaded_keys: AtomicU64,
    pub loaded_expired: AtomicU64,
}

impl SaveState {
    /// Before any save, LASTSAVE reports the start-up time, as Redis does.
    pub fn new(started_unix_secs: u64) -> SaveState {
        SaveState {
            dirty_at_save: AtomicU64::new(0),
            last_save: AtomicU64::new(started_unix_secs),
            saves: AtomicU64::new(0),
            last_ok: AtomicBool::new(true),
            in_progress: AtomicBool::new(false),
            last_duration_ms: AtomicU64::new(0),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
        }
    }
}

/// Counts of what a save wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Saved {
    pub keys: u64,
    pub bytes: u64,
}

/// A writer that keeps the running CRC-64 of everything written, as the RDB footer needs.
struct Checksummed<W: Write> {
    inner: W,
    crc: u64,
    written: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc64(self.crc, &buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn aux(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(OP_AUX);
    put_string(out, key.as_bytes());
    put_string(out, value.as_bytes());
}

/// Writes the keys of `states` as one RDB file to `w`; keys already expired at `now` are left
/// out, as Redis does.
pub fn write_rdb(states: &[&ShardState], now: u64, w: impl Write) -> std::io::Result<Saved> {
    let mut w = Checksummed { inner: w, crc: 0, written: 0 };
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(format!("REDIS{:04}", super::dump::RDB_VERSION).as_bytes());
    aux(&mut buf, "redis-ver", crate::REDIS_VERSION);
    aux(&mut buf, "redis-bits", "64");
    aux(&mut buf, "ctime", &(now / 1000).to_string());
    aux(&mut buf, "shoal-ver", env!("CARGO_PKG_VERSION"));
    let mut keys = 0u64;
    let databases = states.first().map_or(0, |s| s.dbs.len());
    for db in 0..databases {
        let (size, expires): (usize, usize) =
            states.iter().fold((0, 0), |(k, e), s| (k + s.dbs[db].len(), e + s.dbs[db].expires_len()));
        if size == 0 {
            continue;
        }
        buf.push(OP_SELECTDB);
        put_len(&mut buf, db as u64);
        buf.push(OP_RESIZEDB);
        put_len(&mut buf, size as u64);
        put_len(&mut buf, expires as u64);
        for st in states {
            for e in st.dbs[db].dict.iter() {
                if let Some(at) = e.expire_at() {
                    if at <= now {
                        continue;
                    }
                    buf.push(OP_EXPIRETIME_MS);
                    buf.extend_from_slice(&at.to_le_bytes());
                }
                put_value(&mut buf, Some(e.key()), &e.value);
                keys += 1;
                if buf.len() >= 64 * 1024 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
        }
    }
    buf.push(OP_EOF);
    w.write_all(&buf)?;
    let crc = w.crc;
    w.write_all(&crc.to_le_bytes())?;
    w.flush()?;
    Ok(Saved { keys, bytes: w.written })
}

/// Writes `path` through a temporary file: write, fsync, rename, fsync the directory.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<Saved>,
) -> Result<Saved, SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        let saved = write(&mut f)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(saved)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// SAVE: holds every shard, writes the snapshot, and records the result for INFO.
pub async fn save(node: &Node) -> Result<Saved, SnapshotError> {
    let state = &node.saves;
    if state.in_progress.swap(true, Relaxed) {
        return Err(SnapshotError::InProgress);
    }
    let started = Instant::now();
    let path = node.config.data_dir.join(FILE_NAME);
    let mut leases = node.lease_all().await;
    let dirty: u64 = leases.iter_mut().map(|l| l.state().changes.dirty).sum();
    let p = path.clone();
    // Writing a file is blocking work: off the runtime's threads, with the shards held.
    let result = tokio::task::spawn_blocking(move || {
        let now = crate::util::now_ms();
        let states: Vec<&ShardState> = leases.iter_mut().map(|l| &*l.state()).collect();
        let r = write_atomically(&p, |f| write_rdb(&states, now, std::io::BufWriter::with_capacity(1 << 20, f)));
        drop(states);
        drop(leases);
        r
    })
    .await
    .unwrap_or_else(|e| Err(SnapshotError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) }));
    let ms = started.elapsed().as_millis() as u64;
    state.in_progress.store(false, Relaxed);
    state.last_duration_ms.store(ms, Relaxed);
    match &result {
        Ok(saved) => {
            state.dirty_at_save.store(dirty, Relaxed);
            state.last_save.store(crate::util::now_ms() / 1000, Relaxed);
            state.saves.fetch_add(1, Relaxed);
            state.last_ok.store(true, Relaxed);
            info!(path = %path.display(), keys = saved.keys, bytes = saved.bytes, elapsed_ms = ms, "snapshot saved");
        }
        Err(e) => {
            state.last_ok.store(false, Relaxed);
            warn!(error = %e, "snapshot failed");
        }
    }
    result
}
