//! Recovery from the write-ahead log at start-up: load the base snapshot the manifest names,
//! then replay every frame of the segments from the base's offset on, in order.
//!
//! A torn last frame (a crash during a write: a header or payload cut short, or a final frame
//! whose checksum fails) was never acknowledged under `always`; it is cut off with a warning.
//! Anything else that does not check out — a bad frame followed by more data, a damaged
//! segment that is not the last, a gap between segments — stops the start with the file and
//! offset, so nothing is dropped silently.

use super::format::{self, Record, FRAME_HEADER, MAX_FRAME, SEGMENT_HEADER};
use super::WalError;
use crate::cmd::exec::{Exec, ExecSettings};
use crate::cmd::table::{table, Handler};
use crate::shard::ShardState;
use crate::slots::SlotRoute;
use bytes::BytesMut;
use shoal_proto::{Protocol, Request};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    pub base: u64,
    /// Log offset just past the last frame replayed: where the log continues.
    pub end: u64,
    pub frames: u64,
    pub records: u64,
    /// Replayed records that answered with an error (logged).
    pub failed: u64,
    pub keys_from_base: u64,
    /// The function libraries' code the base held.
    pub functions: Vec<Vec<u8>>,
}

/// Whether `dir` holds a log to recover from.
pub fn exists(dir: &Path) -> bool {
    dir.join(format::MANIFEST).exists()
}

/// The base offset the manifest in `dir` names.
pub fn manifest_base(dir: &Path) -> Result<u64, WalError> {
    let path = dir.join(format::MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| WalError::Io { path: path.clone(), source })?;
    format::parse_manifest(&text).map_err(|what| WalError::Corrupt { path, offset: 0, what })
}

/// The segments in `dir` from log offset `from` on, in order: (start, path).
fn segments(dir: &Path, from: u64) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| WalError::Io { path: dir.into(), source })?;
    let mut segs: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let start = format::parse_segment_name(&e.file_name().to_string_lossy())?;
            (start >= from).then(|| (start, e.path()))
        })
        .collect();
    segs.sort();
    Ok(segs)
}

/// Loads the base and replays the log into `states`, which must be empty.
pub fn recover(
    dir: &Path,
    states: &mut [Box<ShardState>],
    route: &SlotRoute,
    settings: ExecSettings,
) -> Result<Recovered, WalError> {
    let started = std::time::Instant::now();
    let base = manifest_base(dir)?;
    let base_path = dir.join(format::base_name(base));
    let loaded = crate::persist::load::load_rdb(&base_path, states, route)
        .map_err(|e| WalError::Layout { dir: dir.into(), what: e.to_string() })?;
    let mut r =
        Recovered { base, end: base, keys_from_base: loaded.keys, functions: loaded.functions, ..Recovered::default() };
    let segs = segments(dir, base)?;
    let now = crate::util::now_ms();
    let mut out = BytesMut::new();
    for (i, (start, path)) in segs.iter().enumerate() {
        if *start != r.end {
            return Err(WalError::Layout {
                dir: dir.into(),
                what: format!(
                    "segment {} starts at offset {start}, but the log before it ends at {}",
                    path.display(),
                    r.end
                ),
            });
        }
        let last = i + 1 == segs.len();
        r.end = read_segment(path, *start, last, |offset, payload| {
            let recs = format::records(payload).map_err(|at| WalError::Corrupt {
                path: path.clone(),
                offset: offset + FRAME_HEADER as u64 + at as u64,
                what: "a record in a frame with a valid checksum does not decode".into(),
            })?;
            r.frames += 1;
            for rec in &recs {
                r.records += 1;
                match replay(states, route, rec, now, settings, &mut out) {
                    Ok(()) => {}
                    Err(Replay::Invalid(what)) => return Err(WalError::Corrupt { path: path.clone(), offset, what }),
                    Err(Replay::Failed(what)) => {
                        r.failed += 1;
                        if r.failed <= 10 {
                            warn!(segment = %path.display(), offset, error = %what, "a replayed write answered with an error");
                        }
                    }
                }
            }
            Ok(())
        })?;
    }
    info!(
        dir = %dir.display(),
        base_keys = r.keys_from_base,
        frames = r.frames,
        records = r.records,
        log_offset = r.end,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered from the write-ahead log"
    );
    Ok(r)
}

/// Reads the frames of one segment, calling `frame` with each frame's log offset and payload.
/// Returns the log offset past the last good frame; a torn tail of the last segment is cut off.
fn read_segment(
    path: &Path,
    start: u64,
    last: bool,
    mut frame: impl FnMut(u64, &[u8]) -> Result<(), WalError>,
) -> Result<u64, WalError> {
    let io = |source| WalError::Io { path: path.into(), source };
    let corrupt = |offset: u64, what: &str| WalError::Corrupt { path: path.into(), offset, what: what.into() };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    // Where the file stops making sense, when it is torn: cut there (if last) and stop.
    let torn = |pos: u64, what: &str| -> Result<u64, WalError> {
        if !last {
            return Err(corrupt(pos, &format!("{what}, in a segment that is not the last")));
        }
        let f = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
        f.set_len(pos).map_err(io)?;
        f.sync_all().map_err(io)?;
        warn!(segment = %path.display(), offset = pos, dropped_bytes = file_len - pos, reason = what, "truncated a torn write at the end of the write-ahead log");
        Ok(pos)
    };
    let mut header = [0u8; SEGMENT_HEADER];
    if file_len < SEGMENT_HEADER as u64 {
        // Created, never written: nothing in it was acknowledged.
        torn(0, "incomplete segment header")?;
        return Ok(start);
    }
    r.read_exact(&mut header).map_err(io)?;
    match format::parse_segment_header(&header) {
        Ok(s) if s == start => {}
        Ok(s) => return Err(corrupt(0, &format!("header says the segment starts at {s}, its name says {start}"))),
        Err(what) => return Err(corrupt(0, what)),
    }
    let mut pos = SEGMENT_HEADER as u64;
    let mut payload = Vec::new();
    loop {
        let left = file_len - pos;
        if left == 0 {
            return Ok(start + pos - SEGMENT_HEADER as u64);
        }
        let log_offset = start + pos - SEGMENT_HEADER as u64;
        if left < FRAME_HEADER as u64 {
            torn(pos, "incomplete frame header")?;
            return Ok(log_offset);
        }
        let mut h = [0u8; FRAME_HEADER];
        r.read_exact(&mut h).map_err(io)?;
        let (len, crc) = format::parse_frame_header(&h);
        let end = pos + FRAME_HEADER as u64 + len as u64;
        if end > file_len {
            torn(pos, "frame runs past the end of the file")?;
            return Ok(log_offset);
        }
        if len == 0 || len > MAX_FRAME {
            return Err(corrupt(pos, &format!("impossible frame length {len}")));
        }
        payload.resize(len as usize, 0);
        r.read_exact(&mut payload).map_err(io)?;
        if crc32fast::hash(&payload) != crc {
            if end == file_len {
                torn(pos, "checksum mismatch in the last frame")?;
                return Ok(log_offset);
            }
            return Err(corrupt(pos, "frame checksum mismatch"));
        }
        frame(log_offset, &payload)?;
        pos = end;
    }
}

/// Why a record did not apply.
enum Replay {
    /// Not a record this node can apply at all: the log is damaged or from elsewhere.
    Invalid(String),
    /// A command that ran and answered with an error.
    Failed(String),
}

/// Applies one record to the shard states (all of them, so a record routes by its keys
/// whatever the shard count was when it was written).
fn replay(
    states: &mut [Box<ShardState>],
    route: &SlotRoute,
    rec: &Record<'_>,
    now: u64,
    settings: ExecSettings,
    out: &mut BytesMut,
) -> Result<(), Replay> {
    if rec.db >= settings.databases {
        return Err(Replay::Invalid(format!("database {} is beyond --databases {}", rec.db, settings.databases)));
    }
    let name = String::from_utf8_lossy(rec.argv[0]).to_ascii_uppercase();
    if rec.kind == format::NODE_WIDE {
        let arg = |i: usize| -> Result<usize, Replay> {
            let n = rec.argv.get(i).and_then(|a| std::str::from_utf8(a).ok()).and_then(|a| a.parse().ok());
            n.filter(|&n| n < settings.databases)
                .ok_or_else(|| Replay::Invalid(format!("bad database in {name} record")))
        };
        match name.as_str() {
            "FLUSHALL" => states.iter_mut().flat_map(|s| s.dbs.iter_mut()).for_each(|d| drop(d.take())),
            "FLUSHDB" => states.iter_mut().for_each(|s| drop(s.dbs[rec.db].take())),
            "SWAPDB" => {
                let (a, b) = (arg(1)?, arg(2)?);
                states.iter_mut().for_each(|s| s.dbs.swap(a, b));
            }
            _ => return Err(Replay::Invalid(format!("unknown node-wide record '{name}'"))),
        }
        return Ok(());
    }
    let req = Request::from_args(rec.argv.iter().copied());
    let unknown = || Replay::Invalid(format!("unknown record '{name}'"));
    // A container whose subcommand is unknown resolves to the container: not a shard handler.
    let spec = table().resolve_record(&req).ok_or_else(unknown)?;
    let Handler::Shard(f) = spec.handler else { return Err(unknown()) };
    let mut refs: Vec<&mut ShardState> = states.iter_mut().map(|s| &mut **s).collect();
    out.clear();
    let mut ex = Exec::new(&mut refs, route, rec.db, Protocol::Resp2, out, now, settings);
    ex.no_block = true;
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut ex, &req)));
    if ran.is_err() {
        return Err(Replay::Failed(format!("replaying '{name}' panicked")));
    }
    if ex.failed {
        return Err(Replay::Failed(
            String::from_utf8_lossy(out.strip_prefix(b"-").unwrap_or(out)).trim_end().to_string(),
        ));
    }
    Ok(())
}
