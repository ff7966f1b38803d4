//! The stream type: entries ordered by ID, consumer groups with their pending entries lists.
//!
//! Entries live in a B-tree keyed by ID (Redis uses a radix tree of listpacks; the ordered
//! map gives the same range scans). Approximate trimming (`MAXLEN ~`) removes whole groups
//! of `stream-node-max-entries` entries from the head, as Redis removes whole radix nodes,
//! so `~` keeps at least the asked-for length and trims in the same steps Redis does.

use std::collections::BTreeMap;
use std::fmt;

/// A stream entry ID: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, if there is one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, if there is one.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Field, value pairs of one entry.
pub type Fields = Box<[(Box<[u8]>, Box<[u8]>)]>;

/// An entry of a group's pending entries list.
#[derive(Clone, Debug)]
pub struct Pending {
    pub consumer: Box<[u8]>,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last attempted interaction.
    pub seen_time: u64,
    /// IDs pending for this consumer (the group's PEL says the details).
    pub pending: BTreeMap<StreamId, ()>,
}

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read (Redis 7.0's lag tracking); `None` when unknown.
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, Pending>,
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

/// One of Redis's radix-tree nodes, as far as trimming can tell: entries up to `last` since
/// the previous node, how many were ever put in it and how many are still there.
#[derive(Clone, Copy, Debug)]
struct Node {
    last: StreamId,
    inserted: u64,
    valid: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub entries: BTreeMap<StreamId, Fields>,
    nodes: std::collections::VecDeque<Node>,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

/// How XADD/XTRIM trim.
#[derive(Clone, Copy, Debug)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ID of the newest entry still present (Redis's `streamLastValidID`).
    pub fn last_entry_id(&self) -> Option<StreamId> {
        self.entries.keys().next_back().copied()
    }

    pub fn first_id(&self) -> Option<StreamId> {
        self.entries.keys().next().copied()
    }

    /// Appends an entry whose ID was validated by the caller; `node_max` is
    /// `stream-node-max-entries`.
    pub fn append(&mut self, id: StreamId, fields: Fields, node_max: u64) {
        self.entries.insert(id, fields);
        self.last_id = id;
        self.entries_added += 1;
        match self.nodes.back_mut() {
            Some(n) if node_max == 0 || n.inserted < node_max => {
                n.last = id;
                n.inserted += 1;
                n.valid += 1;
            }
            _ => self.nodes.push_back(Node { last: id, inserted: 1, valid: 1 }),
        }
    }

    /// Removes one entry known to exist, keeping the node bookkeeping; `tombstone` records
    /// it as deleted (XDEL), not trimmed.
    fn remove_entry(&mut self, id: StreamId, tombstone: bool) {
        self.entries.remove(&id);
        if tombstone && id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        let i = self.nodes.partition_point(|n| n.last < id);
        if let Some(n) = self.nodes.get_mut(i) {
            n.valid -= 1;
            if n.valid == 0 {
                self.nodes.remove(i);
            }
        }
    }

    /// Deletes entries by ID; how many existed.
    pub fn delete(&mut self, ids: &[StreamId]) -> usize {
        let mut n = 0;
        for id in ids {
            if self.entries.contains_key(id) {
                self.remove_entry(*id, true);
                n += 1;
            }
        }
        n
    }

    /// Radix-tree nodes Redis would have (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Trims from the head. `approx` removes only whole nodes (as Redis removes radix-tree
    /// nodes) and at most `limit` entries (0: no limit). Returns how many entries went.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        if let Trim::MaxLen(max) = how {
            if self.entries.len() as u64 <= max {
                return 0;
            }
        }
        let mut removed = 0u64;
        while let Some(&node) = self.nodes.front() {
            if approx && limit > 0 && removed + node.valid > limit {
                break;
            }
            let len = self.entries.len() as u64;
            let whole = match how {
                Trim::MaxLen(max) => len - node.valid >= max,
                Trim::MinId(min) => node.last < min,
            };
            if whole {
                // Trimming is not deletion: max_deleted_id is XDEL's alone, as in Redis.
                let ids: Vec<StreamId> = self.entries.range(..=node.last).map(|(k, _)| *k).collect();
                for id in ids {
                    self.entries.remove(&id);
                }
                removed += node.valid;
                self.nodes.pop_front();
                continue;
            }
            if approx {
                break;
            }
            // Exact trimming goes into the node, entry by entry.
            while let Some(first) = self.first_id() {
                let goes = match how {
                    Trim::MaxLen(max) => (self.entries.len() as u64) > max,
                    Trim::MinId(min) => first < min,
                };
                if !goes {
                    break;
                }
                self.remove_entry(first, false);
                removed += 1;
            }
            break;
        }
        removed
    }

    /// Entries with IDs in `from..=to`, in order (or reverse), at most `count` (0: all).
    pub fn range(&self, from: StreamId, to: StreamId, rev: bool, count: usize) -> Vec<(StreamId, &Fields)> {
        if from > to {
            return Vec::new();
        }
        let it = self.entries.range(from..=to).map(|(k, v)| (*k, v));
        let limit = if count == 0 { usize::MAX } else { count };
        if rev {
            it.rev().take(limit).collect()
        } else {
            it.take(limit).collect()
        }
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: how many entries were added up to
    /// `id`, when that can be known.
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        let first = self.first_id().unwrap_or(StreamId::MIN);
        if self.max_deleted_id.is_zero() || self.max_deleted_id < first {
            if id < first {
                return Some(self.entries_added - self.len() as u64);
            }
            if id == first {
                return Some(self.entries_added - self.len() as u64 + 1);
            }
        }
        None
    }

    /// Redis's `streamRangeHasTombstones` from `start` to the end.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        !self.is_empty() && !self.max_deleted_id.is_zero() && start <= self.max_deleted_id
    }

    /// A group's lag: entries not yet delivered to it, when known.
    pub fn lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read {
            if !self.has_tombstones_from(g.last_id) {
                return Some(self.entries_added - read);
            }
        }
        self.entries_read_at(g.last_id).map(|read| self.entries_added - read)
    }

    /// Moves a group past `id` after delivering it, keeping its read counter as Redis does.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) {
        let known = self.groups.get(group).and_then(|g| g.entries_read);
        let tombstones = self.has_tombstones_from(id);
        let estimate = self.entries_read_at(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(group) else { return };
        if id <= g.last_id {
            return;
        }
        if let (Some(read), false) = (known, tombstones) {
            g.entries_read = Some(read + 1);
        } else if added > 0 {
            g.entries_read = estimate;
        }
        g.last_id = id;
    }

    pub fn heap_size(&self) -> usize {
        let mut n = std::mem::size_of::<Stream>();
        for f in self.entries.values() {
            n += 48 + f.iter().map(|(a, b)| a.len() + b.len() + 32).sum::<usize>();
        }
        for g in self.groups.values() {
            n += 64 + g.pel.len() * 64 + g.consumers.len() * 64;
        }
        n
    }
}
