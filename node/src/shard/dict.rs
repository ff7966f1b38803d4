//! The keyspace hash table: chained buckets like Redis's `dict`, so SCAN can use Redis's
//! reverse-binary cursor (every key present for the whole scan is returned, across resizes)
//! and resizing is incremental (one bucket moved per operation, never a pause).
//!
//! Entries live in a slab of fixed-size chunks and are linked by `u32` index, not by pointer:
//! a key costs its 64-byte entry plus 4 bytes of bucket, with no allocation per key.
//!
//! The table is generic over its entry (`Slot`): the keyspace stores `Entry`, and the large
//! forms of hashes, sets and sorted sets store their fields and members the same way, so
//! HSCAN/SSCAN/ZSCAN get the same cursor guarantees as SCAN.

use super::bytes::SmallBytes;
use super::value::Value;
use std::hash::BuildHasher;

const NIL: u32 = u32::MAX;

/// Asks the CPU to bring `p`'s cache line in, without waiting for it.
#[inline(always)]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and faults on nothing.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const T as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
const CHUNK_SHIFT: u32 = 10;
const CHUNK: usize = 1 << CHUNK_SHIFT;
const INITIAL_SIZE: usize = 4;
/// Below this fill percentage a table is shrunk (Redis's HASHTABLE_MIN_FILL).
const MIN_FILL_PERCENT: usize = 10;

/// Index of an entry in the slab; stable until the entry is removed.
pub type EntryId = u32;

/// What a table entry must provide: its key and the link to the next entry of its chain.
pub trait Slot {
    fn key(&self) -> &[u8];
    fn next(&self) -> u32;
    fn set_next(&mut self, next: u32);
    /// A free-list placeholder pointing at `next`.
    fn vacant(next: u32) -> Self;
}

/// The `expire_at` of a free slab slot. No key can have it: expiries are at most i64::MAX.
const VACANT: u64 = u64::MAX;

/// A key with its value and metadata. 64 bytes.
pub struct Entry {
    next: u32,
    /// Access clock for OBJECT IDLETIME and eviction (seconds, wrapping).
    pub access: u32,
    /// Absolute expiry in Unix milliseconds, 0 for none. Change it through `Db`, which keeps
    /// the expiry index in step.
    pub(super) expire_at: u64,
    key: SmallBytes,
    pub value: Value,
}

impl Entry {
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.key.as_slice()
    }

    pub fn key_owned(&self) -> &SmallBytes {
        &self.key
    }

    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }

    /// Whether this slab slot is free (a snapshot walking the slab skips it).
    pub fn is_vacant(&self) -> bool {
        self.expire_at == VACANT
    }

    pub fn into_removed(self) -> Removed {
        Removed { key: self.key, value: self.value, expire_at: self.expire_at }
    }
}

impl Slot for Entry {
    #[inline]
    fn key(&self) -> &[u8] {
        self.key.as_slice()
    }
    #[inline]
    fn next(&self) -> u32 {
        self.next
    }
    #[inline]
    fn set_next(&mut self, next: u32) {
        self.next = next;
    }
    fn vacant(next: u32) -> Entry {
        Entry { next, access: 0, expire_at: VACANT, key: SmallBytes::EMPTY, value: Value::Int(0) }
    }
}

/// A removed key's contents.
pub struct Removed {
    pub key: SmallBytes,
    pub value: Value,
    pub expire_at: u64,
}

#[derive(Default)]
struct Table {
    buckets: Vec<u32>,
    used: usize,
}

impl Table {
    fn with_size(n: usize) -> Table {
        Table { buckets: vec![NIL; n], used: 0 }
    }
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }
}

pub struct Dict<E: Slot = Entry> {
    ht: [Table; 2],
    /// Next bucket of `ht[0]` to move into `ht[1]`, while a rehash is under way.
    rehash_idx: Option<usize>,
    chunks: Vec<Vec<E>>,
    free_head: u32,
    hasher: foldhash::fast::FixedState,
}

impl Dict<Entry> {
    /// Inserts a key known to be absent, last accessed at `access`.
    pub fn insert_new(&mut self, key: SmallBytes, value: Value, expire_at: u64, access: u32) -> EntryId {
        self.insert(Entry { next: NIL, access, expire_at, key, value })
    }
}

impl<E: Slot> Dict<E> {
    pub fn new(seed: u64) -> Dict<E> {
        Dict {
            ht: [Table::default(), Table::default()],
            rehash_idx: None,
            chunks: Vec::new(),
            free_head: NIL,
            hasher: foldhash::fast::FixedState::with_seed(seed),
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.ht[0].used + self.ht[1].used
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buckets in both tables (for memory accounting and tests).
    pub fn bucket_count(&self) -> usize {
        self.ht[0].buckets.len() + self.ht[1].buckets.len()
    }

    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// Slab slots in use or free: every entry id is below this.
    pub fn slots(&self) -> u32 {
        self.chunks.iter().map(|c| c.len() as u32).sum()
    }

    /// Bytes this table holds for its structure: buckets and slab slots.
    pub fn overhead_bytes(&self) -> usize {
        self.bucket_count() * 4 + self.chunks.iter().map(|c| c.capacity()).sum::<usize>() * std::mem::size_of::<E>()
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    pub fn entry(&self, id: EntryId) -> &E {
        &self.chunks[(id >> CHUNK_SHIFT) as usize][id as usize & (CHUNK - 1)]
    }

    #[inline]
    pub fn entry_mut(&mut self, id: EntryId) -> &mut E {
        &mut self.chunks[(id >> CHUNK_SHIFT) as usize][id as usize & (CHUNK - 1)]
    }

    pub fn find(&mut self, key: &[u8]) -> Option<EntryId> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        self.find_no_step(key)
    }

    /// Starts loading the bucket `key` falls in into the cache, and returns its hash for
    /// `prefetch_entry`. Lookups of a pipeline's keys are cache misses one after another;
    /// asking for all their buckets, then all their entries, first lets the misses overlap.
    #[inline]
    pub fn prefetch_bucket(&self, key: &[u8]) -> u64 {
        let h = self.hash(key);
        let t = &self.ht[0];
        if !t.buckets.is_empty() {
            prefetch(&t.buckets[h as usize & t.mask()]);
        }
        h
    }

    /// Starts loading the first entry of the bucket of hash `h` (see `prefetch_bucket`).
    #[inline]
    pub fn prefetch_entry(&self, h: u64) {
        let t = &self.ht[0];
        if t.buckets.is_empty() {
            return;
        }
        let id = t.buckets[h as usize & t.mask()];
        if id != NIL {
            prefetch(self.entry(id));
        }
    }

    /// Looks a key up without advancing a rehash (for read-only callers).
    pub fn find_no_step(&self, key: &[u8]) -> Option<EntryId> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key) as usize;
        for t in 0..2 {
            let table = &self.ht[t];
            if table.buckets.is_empty() {
                break;
            }
            let mut id = table.buckets[h & table.mask()];
            while id != NIL {
                let e = self.entry(id);
                if e.key() == key {
                    return Some(id);
                }
                id = e.next();
            }
            if self.rehash_idx.is_none() {
                break;
            }
        }
        None
    }

    /// Inserts an entry whose key is known to be absent.
    pub fn insert(&mut self, mut e: E) -> EntryId {
        self.rehash_step();
        self.expand_if_needed();
        let h = self.hash(e.key()) as usize;
        let t = if self.rehash_idx.is_some() { 1 } else { 0 };
        let bucket = h & self.ht[t].mask();
        e.set_next(self.ht[t].buckets[bucket]);
        let id = self.alloc(e);
        self.ht[t].buckets[bucket] = id;
        self.ht[t].used += 1;
        id
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        self.remove_with_id(key).map(|(_, e)| e)
    }

    /// `remove`, also telling which slab id the entry had.
    pub fn remove_with_id(&mut self, key: &[u8]) -> Option<(EntryId, E)> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let h = self.hash(key) as usize;
        for t in 0..2 {
            if self.ht[t].buckets.is_empty() {
                break;
            }
            let bucket = h & self.ht[t].mask();
            let mut prev = NIL;
            let mut id = self.ht[t].buckets[bucket];
            while id != NIL {
                let next = self.entry(id).next();
                if self.entry(id).key() == key {
                    if prev == NIL {
                        self.ht[t].buckets[bucket] = next;
                    } else {
                        self.entry_mut(prev).set_next(next);
                    }
                    self.ht[t].used -= 1;
                    let removed = self.release(id);
                    if self.is_empty() {
                        self.reset_storage();
                    }
                    return Some((id, removed));
                }
                prev = id;
                id = next;
            }
            if self.rehash_idx.is_none() {
                break;
            }
        }
        None
    }

    pub fn clear(&mut self) {
        *self = Dict { hasher: self.hasher, ..Dict::new(0) };
    }

    /// Takes every entry out, leaving the table empty (FLUSHDB ASYNC frees the result elsewhere).
    pub fn take(&mut self) -> Dict<E> {
        std::mem::replace(self, Dict { hasher: self.hasher, ..Dict::new(0) })
    }

    fn reset_storage(&mut self) {
        // An emptied table gives its memory back rather than keeping a large free list.
        if self.chunks.len() > 1 || self.chunks.first().is_some_and(|c| c.capacity() > 64) {
            self.clear();
        }
    }

    fn alloc(&mut self, e: E) -> EntryId {
        if self.free_head != NIL {
            let id = self.free_head;
            let slot = self.entry_mut(id);
            let next_free = slot.next();
            *slot = e;
            self.free_head = next_free;
            return id;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            assert!(self.chunks.len() < (NIL as usize >> CHUNK_SHIFT), "keyspace shard full");
            self.chunks.push(Vec::with_capacity(if self.chunks.is_empty() { 4 } else { CHUNK }));
        }
        let ci = self.chunks.len() - 1;
        let chunk = &mut self.chunks[ci];
        chunk.push(e);
        ((ci as u32) << CHUNK_SHIFT) | (chunk.len() as u32 - 1)
    }

    fn release(&mut self, id: EntryId) -> E {
        let free_head = self.free_head;
        let e = std::mem::replace(self.entry_mut(id), E::vacant(free_head));
        self.free_head = id;
        e
    }

    fn expand_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        if self.ht[0].buckets.is_empty() {
            self.ht[0] = Table::with_size(INITIAL_SIZE);
            return;
        }
        if self.ht[0].used >= self.ht[0].buckets.len() {
            self.start_resize((self.ht[0].used + 1).next_power_of_two());
        }
    }

    /// Shrinks a sparse table (called from the shard's periodic tick, as Redis's cron does).
    pub fn shrink_if_needed(&mut self) {
        let size = self.ht[0].buckets.len();
        if self.rehash_idx.is_none() && size > INITIAL_SIZE && self.ht[0].used * 100 / size < MIN_FILL_PERCENT {
            self.start_resize(self.ht[0].used.max(INITIAL_SIZE).next_power_of_two());
        }
    }

    fn start_resize(&mut self, size: usize) {
        if size == self.ht[0].buckets.len() {
            return;
        }
        self.ht[1] = Table::with_size(size);
        self.rehash_idx = Some(0);
    }

    #[inline]
    fn rehash_step(&mut self) {
        if self.rehash_idx.is_some() {
            self.rehash(1);
        }
    }

    /// Moves up to `n` buckets from the old table to the new one; true when done.
    pub fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else { return true };
        let mut empty_visits = n * 10;
        let mut n = n;
        while n > 0 && self.ht[0].used > 0 {
            while self.ht[0].buckets[idx] == NIL {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return false;
                }
            }
            let mut id = std::mem::replace(&mut self.ht[0].buckets[idx], NIL);
            let mask1 = self.ht[1].mask();
            while id != NIL {
                let next = self.entry(id).next();
                let h = self.hash(self.entry(id).key()) as usize & mask1;
                let head = self.ht[1].buckets[h];
                self.entry_mut(id).set_next(head);
                self.ht[1].buckets[h] = id;
                self.ht[0].used -= 1;
                self.ht[1].used += 1;
                id = next;
            }
            idx += 1;
            n -= 1;
        }
        if self.ht[0].used == 0 {
            self.ht[0] = std::mem::take(&mut self.ht[1]);
            self.rehash_idx = None;
            return true;
        }
        self.rehash_idx = Some(idx);
        false
    }

    /// Redis's `dictScan`: visits the bucket(s) at `cursor` and returns the next cursor, 0 when
    /// the scan is complete.
    pub fn scan(&self, cursor: u64, mut visit: impl FnMut(&E)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut v = cursor;
        let walk = |t: &Table, b: usize, visit: &mut dyn FnMut(&E)| {
            let mut id = t.buckets[b];
            while id != NIL {
                let e = self.entry(id);
                visit(e);
                id = e.next();
            }
        };
        if self.rehash_idx.is_none() {
            let t0 = &self.ht[0];
            let m0 = t0.mask() as u64;
            walk(t0, (v & m0) as usize, &mut visit);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, big) = if self.ht[0].buckets.len() <= self.ht[1].buckets.len() { (0, 1) } else { (1, 0) };
            let (t0, t1) = (&self.ht[small], &self.ht[big]);
            let (m0, m1) = (t0.mask() as u64, t1.mask() as u64);
            walk(t0, (v & m0) as usize, &mut visit);
            loop {
                walk(t1, (v & m1) as usize, &mut visit);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    /// Every entry, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        self.iter_ids().map(|(_, e)| e)
    }

    /// Every entry with its id.
    pub fn iter_ids(&self) -> impl Iterator<Item = (EntryId, &E)> + '_ {
        let tables = if self.rehash_idx.is_some() { 2 } else { 1 };
        self.ht[..tables].iter().flat_map(move |t| {
            t.buckets.iter().flat_map(move |&head| {
                let mut id = head;
                std::iter::from_fn(move || {
                    if id == NIL {
                        return None;
                    }
                    let e = self.entry(id);
                    let this = id;
                    id = e.next();
                    Some((this, e))
                })
            })
        })
    }

    /// A uniformly chosen bucket's random entry (Redis's dictGetFairRandomKey is close enough:
    /// chains are short at load factor <= 1).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<EntryId> {
        if self.is_empty() {
            return None;
        }
        loop {
            let t = if self.rehash_idx.is_some() && rng.gen_bool(0.5) { 1 } else { 0 };
            let table = &self.ht[t];
            if table.used == 0 {
                continue;
            }
            let b = rng.gen_range(0..table.buckets.len());
            let mut chain = Vec::new();
            let mut id = table.buckets[b];
            while id != NIL {
                chain.push(id);
                id = self.entry(id).next();
            }
            if !chain.is_empty() {
                return Some(chain[rng.gen_range(0..chain.len())]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(i: usize) -> SmallBytes {
        SmallBytes::new(format!("key:{i}").as_bytes())
    }

    #[test]
    fn entry_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 64);
    }

    #[test]
    fn insert_find_remove_through_resizes() {
        let mut d: Dict = Dict::new(7);
        for i in 0..10_000 {
            d.insert_new(key(i), Value::Int(i as i64), 0, 0);
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000 {
            let id = d.find(&key(i)).expect("present");
            assert!(matches!(d.entry(id).value, Value::Int(n) if n == i as i64));
        }
        for i in (0..10_000).step_by(2) {
            assert!(d.remove(&key(i)).is_some());
        }
        assert!(d.remove(&key(0)).is_none());
        assert_eq!(d.len(), 5_000);
        d.shrink_if_needed();
        while !d.rehash(100) {}
        for i in 0..10_000 {
            assert_eq!(d.find(&key(i)).is_some(), i % 2 == 1);
        }
    }

    #[test]
    fn scan_returns_every_stable_key_across_a_resize() {
        let mut d: Dict = Dict::new(1);
        for i in 0..1000 {
            d.insert_new(key(i), Value::Int(0), 0, 0);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = d.scan(cursor, |e| {
                seen.insert(e.key().to_vec());
            });
            steps += 1;
            // Grow the table in the middle of the scan.
            if steps == 50 {
                for i in 1000..5000 {
                    d.insert_new(key(i), Value::Int(0), 0, 0);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(key(i).as_slice()), "missing key {i}");
        }
    }

    #[test]
    fn emptied_table_releases_its_slab() {
        let mut d: Dict = Dict::new(3);
        for i in 0..5000 {
            d.insert_new(key(i), Value::Int(0), 0, 0);
        }
        for i in 0..5000 {
            d.remove(&key(i));
        }
        assert_eq!(d.overhead_bytes(), 0);
    }
}
