//! What Memcached keeps with an item beyond its value: the client flags, the CAS value and
//! the meta protocol's stale and win marks. Kept beside the key table, by entry, only for
//! items that have any of it: a key written through RESP, or through Memcached with flags 0
//! and no CAS handed out, costs nothing here.
//!
//! CAS values are handed out lazily: an item gets one when a client first asks for it
//! (`gets`, `mg c`) or a Memcached write stores one, and loses it on any write from either
//! protocol (`ShardState::touched`). A `cas` against an item without one therefore fails
//! with EXISTS, which is right: the item changed since any CAS value the client could hold.

use super::dict::EntryId;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Client flags, stored with the value and returned with it.
    pub flags: u32,
    /// 0: none handed out since the last write.
    pub cas: u64,
    /// Marked stale by `md <key> I` (or an `ms I` with an older CAS).
    pub stale: bool,
    /// A client has been told it won the right to recache the item (meta `W`).
    pub won: bool,
    /// The item has been read since it was stored (meta `h`). Kept only for items that have a
    /// record for other reasons: marking every read item would cost a record per key.
    pub fetched: bool,
}

impl Meta {
    fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

#[derive(Default)]
pub struct ItemMeta {
    map: HashMap<EntryId, Meta, foldhash::fast::RandomState>,
}

impl ItemMeta {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    pub fn get(&self, id: EntryId) -> Meta {
        if self.map.is_empty() {
            return Meta::default();
        }
        self.map.get(&id).copied().unwrap_or_default()
    }

    /// A read of the entry: marks it fetched (only if it has a record already: a plain read
    /// never makes one) and, with `cas_clock`, gives it a CAS value from that clock if it has
    /// none. One lookup, for the hot path of get. Returns the metadata after the read.
    #[inline]
    pub fn read(&mut self, id: EntryId, cas_clock: Option<&mut u64>) -> Meta {
        match cas_clock {
            Some(clock) => {
                let m = self.map.entry(id).or_default();
                if m.cas == 0 {
                    *clock += 1;
                    m.cas = *clock;
                }
                m.fetched = true;
                *m
            }
            None if self.map.is_empty() => Meta::default(),
            None => match self.map.get_mut(&id) {
                Some(m) => {
                    m.fetched = true;
                    *m
                }
                None => Meta::default(),
            },
        }
    }

    /// Stores `meta` for the entry (dropping the record when it holds nothing).
    pub fn set(&mut self, id: EntryId, meta: Meta) {
        if meta.is_empty() {
            self.map.remove(&id);
        } else {
            self.map.insert(id, meta);
        }
    }

    /// The entry was written: its CAS value is void (and so are the meta marks); its flags
    /// stay, as they describe the value an APPEND or INCR changed in place.
    #[inline]
    pub fn written(&mut self, id: EntryId) {
        if let Some(m) = self.map.get_mut(&id) {
            *m = Meta { flags: m.flags, ..Meta::default() };
            if m.is_empty() {
                self.map.remove(&id);
            }
        }
    }

    /// The entry is gone or holds a new value.
    #[inline]
    pub fn forget(&mut self, id: EntryId) {
        if !self.map.is_empty() {
            self.map.remove(&id);
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Approximate bytes used.
    pub fn overhead_bytes(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<(EntryId, Meta)>() + 1)
    }
}
