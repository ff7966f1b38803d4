//! The change stream: one deterministic record per write, describing its effect as a command
//! that reproduces it on replay (`SET k v PXAT <abs>` rather than `EX 10`). The write-ahead
//! log consumes it (replicas and slot migration will); a sink may be switched on for tests.
//!
//! With the log on, each record is encoded as it is made into the shard's pending payload,
//! which the shard hands to the log after every batch, tick or task (`flush`). While a
//! multi-shard command holds the shard, records also get a node-wide sequence number, so the
//! lease's records from all its shards can go to the log as one frame in the order they were
//! made (`take_marked`).

use crate::persist::wal::format::{put_record, KEYED, NODE_WIDE};
use crate::persist::wal::Wal;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub db: usize,
    pub argv: Vec<Bytes>,
}

impl Change {
    pub fn args_str(&self) -> Vec<String> {
        self.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
    }
}

/// Orders the records of leased shards (see the module doc).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
pub struct ChangeLog {
    enabled: bool,
    records: Vec<Change>,
    /// Writes applied since start (Redis's `dirty` counter), counted even with no consumer.
    pub dirty: u64,
    /// The write-ahead log, when it is on.
    wal: Option<Arc<Wal>>,
    /// Encoded records not yet handed to the log.
    pending: Vec<u8>,
    /// While leased: (sequence, start in `pending`) of each record.
    marks: Vec<(u64, u32)>,
    leased: bool,
}

impl ChangeLog {
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Starts (or, with `None`, stops) encoding records for the write-ahead log.
    pub fn set_wal(&mut self, wal: Option<Arc<Wal>>) {
        self.wal = wal;
        self.pending.clear();
        self.marks.clear();
    }

    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.as_ref()
    }

    /// Records one write. The closure builds the record only when somebody consumes it.
    #[inline]
    pub fn emit(&mut self, db: usize, argv: impl FnOnce() -> Vec<Bytes>) {
        self.record(KEYED, db, argv);
    }

    /// Records a write to whole databases that every shard of a multi-shard command records
    /// (FLUSHALL, FLUSHDB, SWAPDB): the log keeps it once.
    pub fn emit_node_wide(&mut self, db: usize, argv: impl FnOnce() -> Vec<Bytes>) {
        self.record(NODE_WIDE, db, argv);
    }

    #[inline]
    fn record(&mut self, kind: u8, db: usize, argv: impl FnOnce() -> Vec<Bytes>) {
        self.dirty += 1;
        if !self.enabled && self.wal.is_none() {
            return;
        }
        let argv = argv();
        if self.wal.is_some() {
            if self.leased {
                self.marks.push((SEQUENCE.fetch_add(1, Relaxed), self.pending.len() as u32));
            }
            put_record(&mut self.pending, kind, db, &argv);
        }
        if self.enabled {
            self.records.push(Change { db, argv });
        }
    }

    pub fn drain(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.records)
    }

    /// Hands the pending records to the log as one frame.
    #[inline]
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(wal) = &self.wal {
            wal.append(&self.pending);
        }
        self.pending.clear();
        self.marks.clear();
    }

    /// Marks the start (or end) of a lease: records made meanwhile carry sequence numbers.
    pub fn set_leased(&mut self, leased: bool) {
        self.leased = leased;
    }

    /// The pending records as (sequence, encoded record), for merging a lease's shards into
    /// one frame; empties the pending buffer.
    pub fn take_marked(&mut self, into: &mut Vec<(u64, Vec<u8>)>) {
        if self.pending.is_empty() {
            return;
        }
        // Records made before the lease began (none in practice: shards flush after every
        // message) sort first.
        let first = self.marks.first().map_or(self.pending.len(), |m| m.1 as usize);
        if first > 0 {
            into.push((0, self.pending[..first].to_vec()));
        }
        for (i, &(seq, start)) in self.marks.iter().enumerate() {
            let end = self.marks.get(i + 1).map_or(self.pending.len(), |m| m.1 as usize);
            into.push((seq, self.pending[start as usize..end].to_vec()));
        }
        self.pending.clear();
        self.marks.clear();
    }
}

/// Builds an argv from byte-like pieces.
#[macro_export]
macro_rules! argv {
    ($($a:expr),* $(,)?) => {
        vec![$(::bytes::Bytes::copy_from_slice(AsRef::<[u8]>::as_ref(&$a))),*]
    };
}
