//! The write-ahead log's writer thread: takes what shards appended, writes it to the current
//! segment, starts new segments at cuts and when one grows past the segment size, and syncs
//! as `appendfsync` says. Disk work never runs on the runtime's threads.

use super::format::{segment_header, segment_name};
use super::{Fsync, Wal, WalError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// A segment file open for appending.
pub(super) struct Segment {
    file: File,
    start: u64,
    path: PathBuf,
    /// Bytes in the file, header included: where a failed write is cut back to.
    len: u64,
}

impl Segment {
    /// Creates the segment whose first frame is at log offset `start`, header synced and the
    /// directory entry too, so the file exists after a crash. An existing file of that name
    /// can only be an empty segment (one with frames would end past `start`): it is replaced.
    pub(super) fn create(dir: &Path, start: u64) -> Result<Segment, WalError> {
        let path = dir.join(segment_name(start));
        let io = |source| WalError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(&path).map_err(io)?;
        file.write_all(&segment_header(start)).map_err(io)?;
        file.sync_all().map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        let len = super::format::SEGMENT_HEADER as u64;
        Ok(Segment { file, start, path, len })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.file.write_all(data) {
            // A partial frame must not stay in the file: the next write would follow it.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += data.len() as u64;
        Ok(())
    }
}

/// What one round took from the shards' buffer.
struct Taken {
    data: Vec<u8>,
    /// Log offset of `data[0]`.
    start: u64,
    cuts: Vec<u64>,
    stop: bool,
}

pub(super) fn run(wal: Arc<Wal>, mut seg: Segment) {
    let dir = wal.dir.clone();
    let mut last_sync = Instant::now();
    let mut busy = false;
    // Data a failed write left behind, written again before anything newer.
    let mut retry: Option<Taken> = None;
    let mut spare = Vec::new();
    loop {
        let mut t = take(&wal, busy, retry.is_some(), &mut spare);
        if let Some(mut r) = retry.take() {
            r.data.extend_from_slice(&t.data);
            r.cuts.append(&mut t.cuts);
            r.stop |= t.stop;
            t = r;
        }
        busy = !t.data.is_empty();
        let end = t.start + t.data.len() as u64;
        match write_taken(&dir, &mut seg, &mut t, wal.segment_size.load(Relaxed)) {
            Ok(()) => {
                if wal.failure().is_some() {
                    info!(segment = %seg.path.display(), "write-ahead log writes succeed again");
                    wal.set_error(None);
                }
                wal.written.store(end, Relaxed);
            }
            Err(e) => {
                let msg = e.to_string();
                if wal.fsync() == Fsync::Always {
                    // Redis's rule: a reply promised on a durable write cannot be given.
                    error!(segment = %seg.path.display(), error = %msg, "cannot write the write-ahead log with appendfsync always; exiting");
                    std::process::exit(1);
                }
                if wal.failure().is_none() {
                    warn!(segment = %seg.path.display(), error = %msg, "cannot write the write-ahead log; refusing writes until it works again");
                }
                wal.set_error(Some(msg));
                spare = Vec::new();
                retry = Some(t);
                continue;
            }
        }
        let synced = wal.synced.load(Relaxed);
        let written = wal.written.load(Relaxed);
        let due = match wal.fsync() {
            Fsync::Always => written > synced,
            Fsync::EverySec => written > synced && last_sync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        if due || (t.stop && written > synced) {
            let sync_started = Instant::now();
            let r = seg.file.sync_data();
            wal.fsyncs.fetch_add(1, Relaxed);
            wal.fsync_nanos.fetch_add(sync_started.elapsed().as_nanos() as u64, Relaxed);
            if let Err(e) = r {
                if wal.fsync() == Fsync::Always {
                    error!(segment = %seg.path.display(), error = %e, "cannot sync the write-ahead log with appendfsync always; exiting");
                    std::process::exit(1);
                }
                warn!(segment = %seg.path.display(), error = %e, "cannot sync the write-ahead log");
                wal.set_error(Some(e.to_string()));
            } else {
                wal.synced.store(written, Relaxed);
            }
            last_sync = Instant::now();
        }
        wal.progress.notify_waiters();
        spare = t.data;
        spare.clear();
        if t.stop {
            return;
        }
    }
}

/// Waits for work and takes it. A busy writer polls every 2 ms, so appenders need not wake
/// it (a futex call per write) except under `always`, where the wait is a client's.
fn take(wal: &Wal, busy: bool, failing: bool, spare: &mut Vec<u8>) -> Taken {
    let mut p = wal.pending.lock();
    if p.buf.is_empty() && p.cuts.is_empty() && !p.stop {
        let timeout = if failing {
            Duration::from_secs(1)
        } else if busy && wal.fsync() != Fsync::Always {
            Duration::from_millis(2)
        } else {
            wal.parked.store(true, Relaxed);
            Duration::from_secs(1)
        };
        wal.wake.wait_for(&mut p, timeout);
        wal.parked.store(false, Relaxed);
    }
    let data = std::mem::replace(&mut p.buf, std::mem::take(spare));
    Taken { start: p.end - data.len() as u64, data, cuts: std::mem::take(&mut p.cuts), stop: p.stop }
}

/// Writes one round's data, starting a new segment at each cut that falls in it (or at its
/// end) and once the segment has grown past `segment_size`. What is written is removed from
/// `t` as it goes, so after an error `t` holds exactly what is left to do.
fn write_taken(dir: &Path, seg: &mut Segment, t: &mut Taken, segment_size: u64) -> std::io::Result<()> {
    while let Some(&cut) = t.cuts.first() {
        let upto = (cut - t.start) as usize;
        seg.write(&t.data[..upto])?;
        t.data.drain(..upto);
        t.start = cut;
        if cut != seg.start || seg.len > super::format::SEGMENT_HEADER as u64 {
            rotate(dir, seg, cut)?;
        }
        t.cuts.remove(0);
    }
    seg.write(&t.data)?;
    t.start += t.data.len() as u64;
    t.data.clear();
    if seg.len >= segment_size.max(1 << 20) {
        rotate(dir, seg, t.start)?;
    }
    Ok(())
}

/// Ends the current segment (synced first: a later segment must never outlive an earlier
/// one's tail) and opens the next at `start`.
fn rotate(dir: &Path, seg: &mut Segment, start: u64) -> std::io::Result<()> {
    seg.file.sync_data()?;
    *seg = Segment::create(dir, start).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}
