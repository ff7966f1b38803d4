//! Snapshots: the whole keyspace written as an RDB file (`dump.rdb` in the data directory),
//! loaded again at start-up. The format is Redis's RDB version 10, so a Shoal snapshot
//! without streams loads into redis-server as well; streams use Shoal's own type number.
//!
//! SAVE holds every shard while it writes, as Redis's SAVE blocks the server. BGSAVE does not
//! fork and does not copy the keyspace: it holds every shard for an instant to mark the point
//! in time, then each shard walks its slab of entries between commands, writing each entry
//! once, and an entry a command is about to change, delete or flush before the walk reaches
//! it is written first (copy before write, one entry at a time). Entries created after the
//! start are skipped. A writer thread puts the shards' records into the file. The file is
//! written under a temporary name, synced, renamed over the old one and the directory synced,
//! so a crash at any moment leaves either the old snapshot or the new one.

use super::crc64::crc64;
use super::dump::{put_len, put_string, put_value};
use super::rdb::{OP_AUX, OP_EOF, OP_EXPIRETIME_MS, OP_RESIZEDB, OP_SELECTDB};
use crate::node::Node;
use crate::shard::dict::{Entry, EntryId};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_points_parse_as_pairs() {
        assert_eq!(save_points("3600 1 300 100 60 10000"), vec![(3600, 1), (300, 100), (60, 10000)]);
        assert_eq!(save_points(""), vec![]);
    }
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
    /// Progress of the save under way: keys written, keys at the start, start (Unix ms).
    pub current_keys: AtomicU64,
    pub current_total: AtomicU64,
    pub current_started_ms: AtomicU64,
    /// BGSAVE SCHEDULE asked for another save when the running one ends.
    pub scheduled: AtomicBool,
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
            current_keys: AtomicU64::new(0),
            current_total: AtomicU64::new(0),
            current_started_ms: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
        }
    }
}

/// Counts of what a save wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Saved {
    pub keys: u64,
    pub bytes: u64,
}

/// A database's part in a running BGSAVE: how far its walk of the slab has come, which
/// entries are already written (or were created after the start), and records not yet handed
/// to the writer.
pub struct DbSnap {
    /// The database's index when the snapshot started (SWAPDB moves the `Db`, not this).
    pub index: usize,
    pub cursor: u32,
    /// Slab slots at the start; later slots hold only keys created since.
    pub end: u32,
    done: Vec<u64>,
    pub out: Vec<u8>,
    /// Keys that expired before this instant are left out.
    now: u64,
    pub keys: u64,
}

impl DbSnap {
    pub fn new(index: usize, end: u32, now: u64) -> DbSnap {
        DbSnap { index, cursor: 0, end, done: vec![0; end as usize / 64 + 1], out: Vec::new(), now, keys: 0 }
    }

    /// Marks slot `id` as not to be written (already written, or a key born after the start).
    #[inline]
    pub fn skip(&mut self, id: EntryId) {
        if id < self.end {
            self.done[id as usize / 64] |= 1 << (id % 64);
        }
    }

    /// Writes the entry in slot `id` (with its Memcached client flags) if the snapshot still
    /// owes it.
    #[inline]
    pub fn save(&mut self, id: EntryId, e: &Entry, flags: u32) {
        if id >= self.end || self.done[id as usize / 64] & (1 << (id % 64)) != 0 {
            return;
        }
        self.skip(id);
        if e.is_vacant() {
            return;
        }
        if let Some(at) = e.expire_at() {
            if at <= self.now {
                return;
            }
            self.out.push(OP_EXPIRETIME_MS);
            self.out.extend_from_slice(&at.to_le_bytes());
        }
        put_flags(&mut self.out, flags);
        put_value(&mut self.out, Some(e.key()), &e.value);
        self.keys += 1;
    }
}

/// What shards send the writer thread of a BGSAVE.
pub enum Chunk {
    Records {
        db: usize,
        bytes: Vec<u8>,
        keys: u64,
    },
    /// A shard has written everything it owed.
    Done,
}

/// A shard's handle on a running BGSAVE.
pub struct ShardRun {
    pub tx: std::sync::mpsc::Sender<Chunk>,
    /// Bytes sent and not yet written: shards stop walking while this is high, so a slow
    /// disk does not turn into memory.
    pub pending: std::sync::Arc<AtomicU64>,
    /// Set by the writer when the file cannot be written: shards stop and forget their part.
    pub abort: std::sync::Arc<AtomicBool>,
}

/// How many bytes may wait for the writer before shards pause their walk.
pub const MAX_PENDING: u64 = 4 << 20;

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

/// The AUX field that gives the next key's Memcached client flags. Redis skips AUX fields it
/// does not know, so the file stays a Redis RDB file.
pub const MC_FLAGS_AUX: &str = "shoal-mc-flags";

/// Writes a key's client flags ahead of it, when it has any.
#[inline]
fn put_flags(out: &mut Vec<u8>, flags: u32) {
    if flags != 0 {
        aux(out, MC_FLAGS_AUX, &flags.to_string());
    }
}

fn aux(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(OP_AUX);
    put_string(out, key.as_bytes());
    put_string(out, value.as_bytes());
}

/// The RDB magic, version and the AUX fields Redis writes, then the function libraries, where
/// Redis puts them.
fn header(buf: &mut Vec<u8>, now: u64, functions: &[Vec<u8>]) {
    buf.extend_from_slice(format!("REDIS{:04}", super::dump::RDB_VERSION).as_bytes());
    aux(buf, "redis-ver", crate::REDIS_VERSION);
    aux(buf, "redis-bits", "64");
    aux(buf, "ctime", &(now / 1000).to_string());
    aux(buf, "shoal-ver", env!("CARGO_PKG_VERSION"));
    super::dump::put_functions(buf, functions);
}

/// Writes the keys of `states` and the function libraries as one RDB file to `w`; keys
/// already expired at `now` are left out, as Redis does.
pub fn write_rdb(states: &[&ShardState], functions: &[Vec<u8>], now: u64, w: impl Write) -> std::io::Result<Saved> {
    let mut w = Checksummed { inner: w, crc: 0, written: 0 };
    let mut buf = Vec::with_capacity(64 * 1024);
    header(&mut buf, now, functions);
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
            let d = &st.dbs[db];
            for (id, e) in d.dict().iter_ids() {
                if let Some(at) = e.expire_at() {
                    if at <= now {
                        continue;
                    }
                    buf.push(OP_EXPIRETIME_MS);
                    buf.extend_from_slice(&at.to_le_bytes());
                }
                put_flags(&mut buf, d.items.get(id).flags);
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
    let functions = node.scripts.library_codes();
    let p = path.clone();
    // Writing a file is blocking work: off the runtime's threads, with the shards held.
    let result = tokio::task::spawn_blocking(move || {
        let now = crate::util::now_ms();
        let states: Vec<&ShardState> = leases.iter_mut().map(|l| &*l.state()).collect();
        let r = write_atomically(&p, |f| {
            write_rdb(&states, &functions, now, std::io::BufWriter::with_capacity(1 << 20, f))
        });
        drop(states);
        drop(leases);
        r
    })
    .await
    .unwrap_or_else(|e| Err(SnapshotError::Io { path: path.clone(), source: std::io::Error::other(e.to_string()) }));
    finish(state, &path, &result, dirty, started.elapsed().as_millis() as u64);
    result
}

/// BGSAVE: holds every shard for an instant to mark the point in time, starts the writer
/// thread, and returns; shards then write their entries between commands.
pub async fn bgsave(node: &Node) -> Result<(), SnapshotError> {
    background(node, Purpose::Save).await.map(|_| ())
}

/// What a background snapshot is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// BGSAVE: `dump.rdb`.
    Save,
    /// A write-ahead log rewrite: a new base at a cut of the log.
    WalBase,
    /// A backup: the file named.
    Backup(PathBuf),
}

/// A background snapshot under way.
pub struct Started {
    /// The write-ahead log's offset at the snapshot's point in time.
    pub log_offset: u64,
    /// The outcome, once the file is complete.
    pub done: tokio::sync::oneshot::Receiver<Result<Saved, String>>,
}

/// Starts a background snapshot (see `bgsave`). One runs at a time, whatever its purpose:
/// shards have one walk each.
pub async fn background(node: &Node, purpose: Purpose) -> Result<Started, SnapshotError> {
    let saves = node.saves.clone();
    if saves.in_progress.swap(true, Relaxed) {
        return Err(SnapshotError::InProgress);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let pending = std::sync::Arc::new(AtomicU64::new(0));
    let abort = std::sync::Arc::new(AtomicBool::new(false));
    let now = crate::util::now_ms();
    let (mut total, mut dirty) = (0u64, 0u64);
    let path = {
        let mut leases = node.lease_all().await;
        for l in leases.iter_mut() {
            let st = l.state();
            dirty += st.changes.dirty;
            for (i, db) in st.dbs.iter_mut().enumerate() {
                total += db.len() as u64;
                db.snap = Some(Box::new(DbSnap::new(i, db.dict().slots(), now)));
            }
            st.snapshot = Some(ShardRun { tx: tx.clone(), pending: pending.clone(), abort: abort.clone() });
        }
        match &purpose {
            Purpose::Save => node.config.data_dir.join(FILE_NAME),
            // The cut goes in while every shard is held: each record falls on one side of it.
            Purpose::WalBase => node.wal.dir.join(crate::persist::wal::format::base_name(node.wal.cut())),
            Purpose::Backup(path) => path.clone(),
        }
    };
    let log_offset = node.wal.appended();
    let functions = node.scripts.library_codes();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    drop(tx);
    saves.current_keys.store(0, Relaxed);
    saves.current_total.store(total, Relaxed);
    saves.current_started_ms.store(now, Relaxed);
    info!(path = %path.display(), keys = total, purpose = ?purpose, "background save started");
    let shards = node.shards.len();
    let wal = node.wal.clone();
    let p = path.clone();
    let spawned = std::thread::Builder::new().name("shoal-bgsave".into()).spawn(move || {
        let started = Instant::now();
        let result = write_atomically(&p, |f| receive(f, &rx, shards, now, &functions, &pending, &saves));
        if result.is_err() {
            // Shards still walking stop at their next step and drop their senders.
            abort.store(true, Relaxed);
        }
        while rx.recv().is_ok() {}
        let ms = started.elapsed().as_millis() as u64;
        let outcome = result.as_ref().map(|s| *s).map_err(|e| e.to_string());
        match purpose {
            Purpose::Save => finish(&saves, &p, &result, dirty, ms),
            Purpose::WalBase => {
                wal.rewrite.finished(&wal, &p, &result, ms);
                saves.in_progress.store(false, Relaxed);
            }
            Purpose::Backup(_) => saves.in_progress.store(false, Relaxed),
        }
        let _ = done_tx.send(outcome);
    });
    if let Err(e) = spawned {
        node.saves.in_progress.store(false, Relaxed);
        return Err(SnapshotError::Io { path, source: e });
    }
    for s in &node.shards {
        let _ = s.cast(crate::shard::ShardMsg::Tick);
    }
    Ok(Started { log_offset, done: done_rx })
}

/// The writer thread's part: the shards' records, in the order they come, each run preceded by
/// its database (RDB allows SELECTDB anywhere), then the footer.
fn receive(
    f: &mut std::fs::File,
    rx: &std::sync::mpsc::Receiver<Chunk>,
    shards: usize,
    now: u64,
    functions: &[Vec<u8>],
    pending: &AtomicU64,
    saves: &SaveState,
) -> std::io::Result<Saved> {
    let mut w = Checksummed { inner: std::io::BufWriter::with_capacity(1 << 20, f), crc: 0, written: 0 };
    let mut buf = Vec::new();
    header(&mut buf, now, functions);
    w.write_all(&buf)?;
    let (mut done, mut keys) = (0, 0u64);
    let mut logged = Instant::now();
    while done < shards {
        match rx.recv() {
            Ok(Chunk::Records { db, bytes, keys: n }) => {
                buf.clear();
                buf.push(OP_SELECTDB);
                put_len(&mut buf, db as u64);
                w.write_all(&buf)?;
                w.write_all(&bytes)?;
                pending.fetch_sub(bytes.len() as u64, Relaxed);
                keys += n;
                saves.current_keys.store(keys, Relaxed);
                if logged.elapsed().as_secs() >= 5 {
                    logged = Instant::now();
                    info!(keys, total = saves.current_total.load(Relaxed), "background save progress");
                }
            }
            Ok(Chunk::Done) => done += 1,
            Err(_) => return Err(std::io::Error::other("a shard stopped before finishing its part")),
        }
    }
    w.write_all(&[OP_EOF])?;
    let crc = w.crc;
    w.write_all(&crc.to_le_bytes())?;
    w.flush()?;
    Ok(Saved { keys, bytes: w.written })
}

/// Records the outcome of a save for INFO, LASTSAVE and the logs.
fn finish(saves: &SaveState, path: &Path, result: &Result<Saved, SnapshotError>, dirty: u64, ms: u64) {
    saves.last_duration_ms.store(ms, Relaxed);
    match result {
        Ok(saved) => {
            saves.dirty_at_save.store(dirty, Relaxed);
            saves.last_save.store(crate::util::now_ms() / 1000, Relaxed);
            saves.saves.fetch_add(1, Relaxed);
            saves.last_ok.store(true, Relaxed);
            info!(path = %path.display(), keys = saved.keys, bytes = saved.bytes, elapsed_ms = ms, "snapshot saved");
        }
        Err(e) => {
            saves.last_ok.store(false, Relaxed);
            warn!(error = %e, "snapshot failed");
        }
    }
    saves.in_progress.store(false, Relaxed);
}

/// Parses Redis's `save` setting: "<seconds> <changes>" pairs.
pub fn save_points(rules: &str) -> Vec<(u64, u64)> {
    let n: Vec<u64> = rules.split_whitespace().filter_map(|t| t.parse().ok()).collect();
    n.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// Starts a log rewrite that BGREWRITEAOF scheduled, or that the log's growth calls for.
async fn rewrite_if_due(node: &Node) {
    let wal = &node.wal;
    let (pct, min) = {
        let p = node.live.passive.read().expect("config lock");
        let get = |k: &str| p.get(k).and_then(|v| crate::config::parse_memory(v)).unwrap_or(0);
        (get("auto-aof-rewrite-percentage"), get("auto-aof-rewrite-min-size"))
    };
    let scheduled = wal.rewrite.scheduled.load(Relaxed) && wal.is_on();
    // A failed rewrite is retried after a pause, as Redis does.
    let since = crate::util::now_ms().saturating_sub(wal.rewrite.started_ms.load(Relaxed));
    let failing = wal.rewrite.consecutive_failures.load(Relaxed) > 0 && since < 5000;
    if scheduled || (!failing && crate::persist::wal::rewrite::due(wal, pct, min)) {
        info!(
            scheduled,
            log_bytes = wal.log_bytes(),
            base_bytes = wal.base_size.load(Relaxed),
            "starting a write-ahead log rewrite"
        );
        if let Err(e) = crate::persist::wal::rewrite::rewrite(node).await {
            warn!(error = %e, "write-ahead log rewrite did not start");
        }
    }
}

/// Runs for the node's life: starts a BGSAVE when a save point is reached (at least `changes`
/// writes and `seconds` since the last save), or when BGSAVE SCHEDULE asked for one.
pub async fn run_save_points(node: std::sync::Arc<Node>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        every.tick().await;
        if *node.shutdown.borrow() {
            return;
        }
        if node.saves.in_progress.load(Relaxed) {
            continue;
        }
        rewrite_if_due(&node).await;
        if node.saves.in_progress.load(Relaxed) {
            continue;
        }
        let rules = node.live.passive.read().expect("config lock").get("save").cloned().unwrap_or_default();
        let points = save_points(&rules);
        let scheduled = node.saves.scheduled.swap(false, Relaxed);
        if points.is_empty() && !scheduled {
            continue;
        }
        let dirty: u64 = node.broadcast(|st| st.changes.dirty).await.into_iter().sum();
        let changes = dirty.saturating_sub(node.saves.dirty_at_save.load(Relaxed));
        let since = (crate::util::now_ms() / 1000).saturating_sub(node.saves.last_save.load(Relaxed));
        let due = points.iter().any(|&(secs, n)| changes >= n && since >= secs);
        // A failed save is retried after a pause, as Redis does (CONFIG_BGSAVE_RETRY_DELAY).
        let since_attempt = crate::util::now_ms().saturating_sub(node.saves.current_started_ms.load(Relaxed));
        let failed_recently = !node.saves.last_ok.load(Relaxed) && since_attempt < 5000;
        if scheduled || (due && !failed_recently) {
            info!(changes, seconds = since, scheduled, "starting a background save");
            if let Err(e) = bgsave(&node).await {
                warn!(error = %e, "background save did not start");
            }
        }
    }
}
