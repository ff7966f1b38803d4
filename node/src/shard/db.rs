//! One logical database inside a shard: the key table plus an index of keys by expiry time,
//! so active expiry removes exactly the keys that are due instead of sampling for them.
//!
//! The index names entries by slab id, not by key: an EXPIRE then moves two integers in the
//! tree instead of cloning the key and comparing key bytes at every node.

use super::bytes::SmallBytes;
use super::dict::{Dict, Entry, EntryId, Removed};
use super::item_meta::ItemMeta;
use super::value::Value;
use crate::persist::snapshot::DbSnap;
use std::collections::BTreeSet;

pub struct Db {
    /// The key table. Mutable access goes through `Db` so a running snapshot can copy an entry
    /// before it changes.
    table: Dict,
    /// (expiry, entry) for every entry with an expiry; ids are stable until the entry goes.
    expires: BTreeSet<(u64, EntryId)>,
    /// Sum of the expiry times in `expires`, for INFO's avg_ttl.
    expire_sum: u128,
    /// The shard's access clock, stamped on keys as they are created.
    pub clock: u32,
    /// Hashes with fields that have a TTL, swept by the shard's tick.
    pub hash_ttl_keys: BTreeSet<SmallBytes>,
    /// Where the last sweep of `hash_ttl_keys` stopped.
    pub hash_ttl_cursor: Option<SmallBytes>,
    /// This database's part of a running snapshot (BGSAVE).
    pub snap: Option<Box<DbSnap>>,
    /// Memcached's flags and CAS values of the items that have them.
    pub items: ItemMeta,
}

impl Db {
    pub fn new(seed: u64) -> Db {
        Db {
            table: Dict::new(seed),
            expires: BTreeSet::new(),
            expire_sum: 0,
            clock: 0,
            hash_ttl_keys: BTreeSet::new(),
            hash_ttl_cursor: None,
            snap: None,
            items: ItemMeta::default(),
        }
    }

    #[inline]
    pub fn dict(&self) -> &Dict {
        &self.table
    }

    /// An entry to change. A running snapshot that has not written it yet writes it first, so
    /// the snapshot keeps the value of the moment it started.
    #[inline]
    pub fn entry_mut(&mut self, id: EntryId) -> &mut Entry {
        if let Some(s) = self.snap.as_deref_mut() {
            s.save(id, self.table.entry(id), self.items.get(id).flags);
        }
        self.table.entry_mut(id)
    }

    /// A key created now is not part of a running snapshot.
    #[inline]
    fn born(&mut self, id: EntryId) -> EntryId {
        if let Some(s) = self.snap.as_deref_mut() {
            s.skip(id);
        }
        id
    }

    /// Advances a running snapshot by up to `n` slab slots; true when this database is done.
    pub fn snapshot_step(&mut self, n: u32) -> bool {
        let Some(s) = self.snap.as_deref_mut() else { return true };
        for _ in 0..n {
            if s.cursor >= s.end {
                break;
            }
            let id = s.cursor;
            s.cursor += 1;
            s.save(id, self.table.entry(id), self.items.get(id).flags);
        }
        s.cursor >= s.end
    }

    /// Writes whatever a running snapshot has not written yet (before the table is emptied),
    /// and ends this database's part: nothing in the emptied table belongs to it.
    fn snapshot_rest(&mut self) {
        self.snapshot_step(u32::MAX);
        if let Some(s) = self.snap.as_deref_mut() {
            s.end = 0;
        }
    }

    pub fn rehash(&mut self, n: usize) -> bool {
        self.table.rehash(n)
    }

    pub fn shrink_if_needed(&mut self) {
        self.table.shrink_if_needed()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Average remaining TTL of keys with an expiry, in ms (INFO keyspace's avg_ttl).
    pub fn avg_ttl(&self, now: u64) -> u64 {
        if self.expires.is_empty() {
            return 0;
        }
        let avg = (self.expire_sum / self.expires.len() as u128) as u64;
        avg.saturating_sub(now)
    }

    pub fn find(&mut self, key: &[u8]) -> Option<EntryId> {
        self.table.find(key)
    }

    /// Sets `key` to `value`. `expire_at`: `Some(0)` clears the TTL, `Some(t)` sets it, `None`
    /// keeps the current one (KEEPTTL).
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) -> EntryId {
        match self.table.find(key) {
            Some(id) => {
                self.replace(id, value, expire_at);
                id
            }
            None => {
                let at = expire_at.unwrap_or(0);
                let id = self.table.insert_new(SmallBytes::new(key), value, at, self.clock);
                self.index_add(at, id);
                self.born(id)
            }
        }
    }

    /// Gives an existing entry a new value (and with `Some`, a new expiry), as `set` does
    /// for a key already found.
    pub fn replace(&mut self, id: EntryId, value: Value, expire_at: Option<u64>) {
        self.items.forget(id);
        self.entry_mut(id).value = value;
        if let Some(at) = expire_at {
            self.set_expire(id, at);
        }
    }

    /// Inserts a key known to be absent, keeping an owned key without copying it again.
    pub fn insert(&mut self, key: SmallBytes, value: Value, expire_at: u64) -> EntryId {
        let id = self.table.insert_new(key, value, expire_at, self.clock);
        self.index_add(expire_at, id);
        self.born(id)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Removed> {
        if self.snap.is_some() || !self.items.is_empty() {
            if let Some(id) = self.table.find_no_step(key) {
                if let Some(s) = self.snap.as_deref_mut() {
                    s.save(id, self.table.entry(id), self.items.get(id).flags);
                }
                self.items.forget(id);
            }
        }
        let (id, e) = self.table.remove_with_id(key)?;
        let r = e.into_removed();
        if self.table.is_empty() {
            // An emptied table starts its slab afresh: nothing below the old end is the
            // snapshot's any more, and everything it needed was written before removal.
            if let Some(s) = self.snap.as_deref_mut() {
                s.end = 0;
            }
        }
        self.index_remove(r.expire_at, id);
        Some(r)
    }

    /// Sets (or with 0, clears) the expiry of an entry.
    pub fn set_expire(&mut self, id: EntryId, at: u64) {
        let old = self.table.entry(id).expire_at;
        if old == at {
            return;
        }
        self.index_remove(old, id);
        self.index_add(at, id);
        self.entry_mut(id).expire_at = at;
    }

    /// Indexes entry `id` as expiring at `at` (0: no expiry, nothing to index).
    fn index_add(&mut self, at: u64, id: EntryId) {
        if at != 0 {
            self.expire_sum += at as u128;
            self.expires.insert((at, id));
        }
    }

    fn index_remove(&mut self, at: u64, id: EntryId) {
        if at != 0 && self.expires.remove(&(at, id)) {
            self.expire_sum -= at as u128;
        }
    }

    fn key_of(&self, id: EntryId) -> SmallBytes {
        self.table.entry(id).key_owned().clone()
    }

    /// The earliest-expiring key if it is due at `now`.
    pub fn next_due(&self, now: u64) -> Option<SmallBytes> {
        self.expires.first().filter(|(at, _)| *at <= now).map(|&(_, id)| self.key_of(id))
    }

    /// The key that expires first, and when.
    pub fn first_expiring(&self) -> Option<(u64, SmallBytes)> {
        self.expires.first().map(|&(at, id)| (at, self.key_of(id)))
    }

    /// A random key with a TTL, for the volatile eviction policies. Picks a random instant
    /// between the first and last expiry and takes the next key due after it: not uniform when
    /// expiries bunch, but O(log n) and never misses a key for long.
    pub fn random_volatile(&self, rng: &mut impl rand::Rng) -> Option<SmallBytes> {
        let (first, last) = (self.expires.first()?.0, self.expires.last()?.0);
        let t = rng.gen_range(first..=last);
        self.expires.range((t, 0)..).next().map(|&(_, id)| self.key_of(id))
    }

    pub fn clear(&mut self) {
        self.snapshot_rest();
        self.hash_ttl_keys.clear();
        self.items.clear();
        self.table.clear();
        self.expires.clear();
        self.expire_sum = 0;
    }

    /// Empties the database and returns its contents, to be dropped off the shard's thread.
    pub fn take(&mut self) -> Db {
        self.snapshot_rest();
        let seed_dict = self.table.take();
        let expires = std::mem::take(&mut self.expires);
        let sum = std::mem::take(&mut self.expire_sum);
        let hash_ttl_keys = std::mem::take(&mut self.hash_ttl_keys);
        let items = std::mem::take(&mut self.items);
        Db {
            table: seed_dict,
            expires,
            expire_sum: sum,
            clock: self.clock,
            hash_ttl_keys,
            hash_ttl_cursor: None,
            snap: None,
            items,
        }
    }

    /// Approximate structural overhead in bytes (table, slab and expiry index).
    pub fn overhead_bytes(&self) -> usize {
        self.table.overhead_bytes() + self.expires.len() * 24 + self.items.overhead_bytes()
    }
}
