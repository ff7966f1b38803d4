//! Client-side caching support (CLIENT TRACKING): which clients may cache which keys, and
//! the invalidation messages sent when those keys change.
//!
//! Default mode remembers the keys each tracking client read and invalidates each once; BCAST
//! mode invalidates every key under a client's prefixes. Invalidations go to the client itself
//! as RESP3 pushes, or to its REDIRECT client as messages on `__redis__:invalidate`, through
//! the same outboxes Pub/Sub uses, so a slow client cannot hold up the writer.

use crate::pubsub::Outbox;
use bytes::{Bytes, BytesMut};
use shoal_proto::{reply, Protocol};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Most keys remembered for default-mode tracking (Redis's `tracking-table-max-keys`).
pub const MAX_KEYS: usize = 1_000_000;

/// Where a tracker's invalidations go.
#[derive(Clone)]
pub enum Target {
    /// The client itself, as RESP3 pushes.
    Own(Arc<Outbox>),
    /// Another client (REDIRECT), as `__redis__:invalidate` messages; resolved when sent.
    Redirect(u64),
}

/// How one client tracks.
#[derive(Clone)]
pub struct Tracker {
    pub client: u64,
    pub target: Target,
    pub bcast: Vec<Vec<u8>>,
    pub bcast_on: bool,
    pub noloop: bool,
}

#[derive(Default)]
struct Table {
    trackers: HashMap<u64, Tracker>,
    /// Default mode: key -> clients that may have cached it.
    keys: HashMap<Vec<u8>, HashSet<u64>>,
}

pub struct Tracking {
    /// Fast path: nobody tracks.
    active: AtomicBool,
    table: Mutex<Table>,
    pubsub: Arc<crate::pubsub::PubSub>,
}

impl Tracking {
    pub fn new(pubsub: Arc<crate::pubsub::PubSub>) -> Tracking {
        Tracking { active: AtomicBool::new(false), table: Mutex::new(Table::default()), pubsub }
    }

    fn send(&self, t: &Tracker, key: Option<&[u8]>) {
        match &t.target {
            Target::Own(o) => o.push(&invalidation(key, false, o.proto())),
            Target::Redirect(id) => {
                if let Some(o) = self.pubsub.outbox_of(*id) {
                    o.push(&invalidation(key, true, o.proto()));
                }
            }
        }
    }

    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Relaxed)
    }

    pub fn enable(&self, t: Tracker) {
        let mut tb = self.table.lock().expect("tracking lock");
        tb.trackers.insert(t.client, t);
        self.active.store(true, Relaxed);
    }

    pub fn disable(&self, client: u64) {
        let mut tb = self.table.lock().expect("tracking lock");
        if tb.trackers.remove(&client).is_some() {
            tb.keys.retain(|_, c| {
                c.remove(&client);
                !c.is_empty()
            });
        }
        self.active.store(!tb.trackers.is_empty(), Relaxed);
    }

    /// Remembers that `client` read `keys` (default mode). Past `MAX_KEYS` tracked keys,
    /// some are invalidated early to make room (Redis's `tracking-table-max-keys`).
    pub fn remember(&self, client: u64, keys: impl Iterator<Item = Vec<u8>>) {
        let mut tb = self.table.lock().expect("tracking lock");
        if tb.trackers.get(&client).is_none_or(|t| t.bcast_on) {
            return;
        }
        for k in keys {
            tb.keys.entry(k).or_default().insert(client);
        }
        if tb.keys.len() > MAX_KEYS {
            let evict: Vec<Vec<u8>> = tb.keys.keys().take(tb.keys.len() - MAX_KEYS).cloned().collect();
            drop(tb);
            for k in evict {
                self.invalidate(&k, 0);
            }
        }
    }

    /// INFO's tracking_total_keys, tracking_total_items, tracking_total_prefixes.
    pub fn totals(&self) -> (usize, usize, usize) {
        let tb = self.table.lock().expect("tracking lock");
        let items = tb.keys.values().map(|c| c.len()).sum();
        let prefixes = tb.trackers.values().filter(|t| t.bcast_on).map(|t| t.bcast.len()).sum();
        (tb.keys.len(), items, prefixes)
    }

    /// A key changed (by `writer`, 0 when not a client): invalidate it for whoever may cache it.
    pub fn invalidate(&self, key: &[u8], writer: u64) {
        let mut tb = self.table.lock().expect("tracking lock");
        let mut targets: Vec<Tracker> = Vec::new();
        if let Some(clients) = tb.keys.remove(key) {
            targets.extend(clients.iter().filter_map(|c| tb.trackers.get(c).cloned()));
        }
        for t in tb.trackers.values() {
            if t.bcast_on && t.bcast.iter().any(|p| key.starts_with(p)) {
                targets.push(t.clone());
            }
        }
        drop(tb);
        for t in targets {
            if t.noloop && t.client == writer {
                continue;
            }
            self.send(&t, Some(key));
        }
    }

    /// Every cached key is stale (FLUSHDB, FLUSHALL): a null invalidation to every tracker.
    pub fn invalidate_all(&self) {
        let mut tb = self.table.lock().expect("tracking lock");
        tb.keys.clear();
        let targets: Vec<Tracker> = tb.trackers.values().cloned().collect();
        drop(tb);
        for t in targets {
            self.send(&t, None);
        }
    }

    /// The tracker of a client, if it tracks.
    pub fn get(&self, client: u64) -> Option<Tracker> {
        self.table.lock().expect("tracking lock").trackers.get(&client).cloned()
    }
}

/// `>2 invalidate [key]` (or `*3 message __redis__:invalidate [key]` for a redirect target
/// reading Pub/Sub); a null key list means "everything".
fn invalidation(key: Option<&[u8]>, as_message: bool, proto: Protocol) -> Bytes {
    let mut b = BytesMut::new();
    if as_message {
        reply::push_len(&mut b, proto, 3);
        reply::bulk(&mut b, b"message");
        reply::bulk(&mut b, b"__redis__:invalidate");
    } else {
        reply::push_len(&mut b, Protocol::Resp3, 2);
        reply::bulk(&mut b, b"invalidate");
    }
    match key {
        Some(k) => {
            reply::array_len(&mut b, 1);
            reply::bulk(&mut b, k);
        }
        None => reply::null_array(&mut b, proto),
    }
    b.freeze()
}
