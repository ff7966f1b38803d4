//! Keys watched by clients (WATCH), per shard. Any write to a watched key, its expiry or a
//! flush of its database marks the watching clients dirty, so their EXEC fails. As in Redis,
//! a key that was already logically expired when watched does not dirty the client when its
//! deletion finally happens: logically nothing changed.

use super::bytes::SmallBytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One client's "a watched key changed" flag, shared by all its watch entries.
#[derive(Default, Debug)]
pub struct WatchFlag(AtomicBool);

impl WatchFlag {
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

struct Entry {
    flag: Arc<WatchFlag>,
    /// The key was logically expired when watched.
    expired: bool,
}

#[derive(Default)]
pub struct Watches {
    keys: HashMap<(usize, SmallBytes), Vec<Entry>>,
}

impl Watches {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn add(&mut self, db: usize, key: &[u8], flag: Arc<WatchFlag>, expired: bool) {
        let v = self.keys.entry((db, SmallBytes::new(key))).or_default();
        if !v.iter().any(|e| Arc::ptr_eq(&e.flag, &flag)) {
            v.push(Entry { flag, expired });
        }
    }

    pub fn forget(&mut self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) {
        let k = (db, SmallBytes::new(key));
        if let Some(v) = self.keys.get_mut(&k) {
            v.retain(|e| !Arc::ptr_eq(&e.flag, flag));
            if v.is_empty() {
                self.keys.remove(&k);
            }
        }
    }

    /// A write to `key`; `exists` tells whether the key is still there afterwards.
    pub fn touched(&mut self, db: usize, key: &[u8], exists: bool) {
        self.decide(db, key, |expired| {
            if *expired && !exists {
                // The stale key was deleted: no logical change.
                *expired = false;
                return false;
            }
            true
        });
    }

    /// Runs `dirty(&mut expired)` on every entry of `key`; entries it answers true for get
    /// their client's flag set.
    pub fn decide(&mut self, db: usize, key: &[u8], mut dirty: impl FnMut(&mut bool) -> bool) {
        let Some(v) = self.keys.get_mut(&(db, SmallBytes::new(key))) else { return };
        for e in v.iter_mut() {
            if dirty(&mut e.expired) {
                e.flag.set();
            }
        }
    }

    /// The watched keys of database `db` (for flushes and SWAPDB).
    pub fn keys_in(&self, db: usize) -> Vec<SmallBytes> {
        self.keys.keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect()
    }

    /// Whether `flag`'s entry for `key` was made on an already expired key.
    pub fn was_expired(&self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) -> bool {
        self.keys
            .get(&(db, SmallBytes::new(key)))
            .and_then(|v| v.iter().find(|e| Arc::ptr_eq(&e.flag, flag)))
            .is_some_and(|e| e.expired)
    }
}
