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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// 0: none handed out since the last write.
    pub cas: u64,
    /// Client flags, stored with the value and returned with it.
    pub flags: u32,
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

/// Records are kept in blocks parallel to the key table's slab (entry ids are slab indexes),
/// allocated when a first item of theirs gets a record and freed when the last one loses it:
/// an array index rather than a hash lookup on the get path, 16 bytes an item.
const BLOCK_SHIFT: u32 = 10;
const BLOCK: usize = 1 << BLOCK_SHIFT;

struct Block {
    /// Records in this block that are not empty.
    used: u32,
    metas: [Meta; BLOCK],
}

#[derive(Default)]
pub struct ItemMeta {
    blocks: Vec<Option<Box<Block>>>,
    /// Records that are not empty, in all blocks.
    used: usize,
}

impl ItemMeta {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub fn len(&self) -> usize {
        self.used
    }

    #[inline]
    fn slot(&self, id: EntryId) -> Option<&Meta> {
        let b = self.blocks.get((id >> BLOCK_SHIFT) as usize)?.as_deref()?;
        Some(&b.metas[id as usize & (BLOCK - 1)])
    }

    #[inline]
    pub fn get(&self, id: EntryId) -> Meta {
        if self.used == 0 {
            return Meta::default();
        }
        self.slot(id).copied().unwrap_or_default()
    }

    /// Stores `meta` for the entry (dropping the record when it holds nothing).
    pub fn set(&mut self, id: EntryId, meta: Meta) {
        let (bi, i) = ((id >> BLOCK_SHIFT) as usize, id as usize & (BLOCK - 1));
        if meta.is_empty() {
            let Some(Some(b)) = self.blocks.get_mut(bi) else { return };
            if !b.metas[i].is_empty() {
                b.metas[i] = meta;
                b.used -= 1;
                self.used -= 1;
                if b.used == 0 {
                    self.blocks[bi] = None;
                }
            }
            return;
        }
        if self.blocks.len() <= bi {
            self.blocks.resize_with(bi + 1, || None);
        }
        let b = self.blocks[bi].get_or_insert_with(|| Box::new(Block { used: 0, metas: [Meta::default(); BLOCK] }));
        if b.metas[i].is_empty() {
            b.used += 1;
            self.used += 1;
        }
        b.metas[i] = meta;
    }

    /// A read of the entry: marks it fetched (only if it has a record already: a plain read
    /// never makes one) and, with `cas_clock`, gives it a CAS value from that clock if it has
    /// none. Returns the metadata after the read.
    #[inline]
    pub fn read(&mut self, id: EntryId, cas_clock: Option<&mut u64>) -> Meta {
        let mut m = self.get(id);
        let before = m;
        if let Some(clock) = cas_clock {
            if m.cas == 0 {
                *clock += 1;
                m.cas = *clock;
            }
        }
        if !m.is_empty() {
            m.fetched = true;
        }
        if m != before {
            self.set(id, m);
        }
        m
    }

    /// The entry was written: its CAS value is void (and so are the meta marks); its flags
    /// stay, as they describe the value an APPEND or INCR changed in place.
    #[inline]
    pub fn written(&mut self, id: EntryId) {
        let m = self.get(id);
        if !m.is_empty() {
            self.set(id, Meta { flags: m.flags, ..Meta::default() });
        }
    }

    /// The entry is gone or holds a new value.
    #[inline]
    pub fn forget(&mut self, id: EntryId) {
        if self.used != 0 {
            self.set(id, Meta::default());
        }
    }

    pub fn clear(&mut self) {
        self.blocks.clear();
        self.used = 0;
    }

    /// Approximate bytes used.
    pub fn overhead_bytes(&self) -> usize {
        self.blocks.capacity() * 8 + self.blocks.iter().flatten().count() * std::mem::size_of::<Block>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_and_go_with_their_blocks() {
        let mut m = ItemMeta::default();
        assert_eq!(m.get(5), Meta::default());
        m.set(5, Meta { flags: 3, ..Meta::default() });
        m.set(5000, Meta { cas: 9, ..Meta::default() });
        assert_eq!((m.len(), m.get(5).flags, m.get(5000).cas), (2, 3, 9));
        m.written(5000);
        assert_eq!((m.len(), m.get(5000)), (1, Meta::default()), "a write voids the CAS value");
        m.written(5);
        assert_eq!(m.get(5).flags, 3, "and keeps the flags");
        let mut clock = 10;
        assert_eq!(m.read(7, Some(&mut clock)).cas, 11);
        assert!(m.get(7).fetched && m.get(5).flags == 3);
        assert!(!m.read(8, None).fetched, "a plain read makes no record");
        m.forget(5);
        m.forget(7);
        assert!(m.is_empty() && m.blocks.iter().all(|b| b.is_none()));
    }
}
