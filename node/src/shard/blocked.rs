//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, BLMPOP, ...), per shard.
//!
//! A blocking command that finds nothing registers one `Waiter` on every key it waits for,
//! in the shards that own them, in the same atomic step as its failed attempt, so no push
//! can slip in between. A write to a key with waiters marks it ready; after each command the
//! shard serves the ready keys' waiters in FIFO order, running the pop on the waiter's behalf
//! and sending it the encoded reply. A waiter registered on several keys is served once: the
//! first server claims it (`claimed`), later entries are stale and skipped. When serving needs
//! another shard (BLMOVE to a key elsewhere) the waiter is told to retry under a lease.

use super::bytes::SmallBytes;
use crate::cmd::lists::End;
use crate::cmd::streams::{After, GroupRead};
use crate::shard::value::Kind;
use bytes::BytesMut;
use shoal_proto::Protocol;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What a waiter does when its key has data.
#[derive(Clone, Debug)]
pub enum BlockOp {
    /// BLPOP/BRPOP: `[key, element]`.
    Pop(End),
    /// BLMOVE/BRPOPLPUSH: the element, moved to `dst`.
    Move { dst: Vec<u8>, from: End, to: End },
    /// BLMPOP (`zset` false) or BZMPOP: `[key, [...]]`.
    MPop { end: End, count: usize, zset: bool },
    /// BZPOPMIN/BZPOPMAX (`max`): `[key, member, score]`.
    ZPop { max: bool },
    /// XREAD/XREADGROUP: what each stream key is read after.
    XRead { keys: Vec<(Vec<u8>, After)>, count: usize, group: Option<GroupRead> },
}

impl BlockOp {
    /// The type of value the op takes from.
    pub fn kind(&self) -> Kind {
        match self {
            BlockOp::ZPop { .. } | BlockOp::MPop { zset: true, .. } => Kind::ZSet,
            BlockOp::XRead { .. } => Kind::Stream,
            _ => Kind::List,
        }
    }
}

/// How a blocked client is woken.
pub enum Wake {
    /// Served: the reply to send.
    Reply(BytesMut),
    /// Data arrived but serving needs shards this one cannot reach: run the command again.
    Retry,
}

pub struct Waiter {
    pub db: usize,
    pub proto: Protocol,
    pub op: BlockOp,
    /// Set by whoever ends the wait: a shard serving it, or the client timing out or leaving.
    claimed: AtomicBool,
    tx: Mutex<Option<oneshot::Sender<Wake>>>,
}

impl Waiter {
    pub fn new(db: usize, proto: Protocol, op: BlockOp) -> (Arc<Waiter>, oneshot::Receiver<Wake>) {
        let (tx, rx) = oneshot::channel();
        let w = Waiter { db, proto, op, claimed: AtomicBool::new(false), tx: Mutex::new(Some(tx)) };
        (Arc::new(w), rx)
    }

    /// Takes the right to end this wait; false if someone else already has.
    pub fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Whether the client stopped waiting without claiming (its task ended).
    pub fn is_abandoned(&self) -> bool {
        self.tx.lock().expect("waiter lock").as_ref().is_none_or(|tx| tx.is_closed())
    }

    /// Delivers the wake; false when the client is gone.
    pub fn send(&self, wake: Wake) -> bool {
        let tx = self.tx.lock().expect("waiter lock").take();
        tx.is_some_and(|tx| tx.send(wake).is_ok())
    }
}

#[derive(Default)]
pub struct Blocked {
    waiting: HashMap<(usize, SmallBytes), VecDeque<Arc<Waiter>>>,
    ready: Vec<(usize, SmallBytes)>,
}

impl Blocked {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn register(&mut self, db: usize, key: &[u8], w: Arc<Waiter>) {
        self.waiting.entry((db, SmallBytes::new(key))).or_default().push_back(w);
    }

    /// Notes a write to `key`; it is served after the command if someone waits on it.
    #[inline]
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        if self.waiting.is_empty() {
            return;
        }
        let k = (db, SmallBytes::new(key));
        if self.waiting.contains_key(&k) && !self.ready.contains(&k) {
            self.ready.push(k);
        }
    }

    pub fn take_ready(&mut self) -> Vec<(usize, SmallBytes)> {
        std::mem::take(&mut self.ready)
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The first live waiter on a key, dropping stale (claimed) ones on the way.
    pub fn front(&mut self, db: usize, key: &SmallBytes) -> Option<Arc<Waiter>> {
        let k = (db, key.clone());
        let q = self.waiting.get_mut(&k)?;
        while q.front().is_some_and(|w| w.is_claimed()) {
            q.pop_front();
        }
        let w = q.front().cloned();
        if q.is_empty() {
            self.waiting.remove(&k);
        }
        w
    }

    pub fn pop_front(&mut self, db: usize, key: &SmallBytes) {
        let k = (db, key.clone());
        if let Some(q) = self.waiting.get_mut(&k) {
            q.pop_front();
            if q.is_empty() {
                self.waiting.remove(&k);
            }
        }
    }

    /// The live waiters on a key, in order (streams serve every waiter whose read has data).
    pub fn waiters(&mut self, db: usize, key: &SmallBytes) -> Vec<Arc<Waiter>> {
        let k = (db, key.clone());
        let Some(q) = self.waiting.get_mut(&k) else { return Vec::new() };
        q.retain(|w| !w.is_claimed());
        let v: Vec<Arc<Waiter>> = q.iter().cloned().collect();
        if q.is_empty() {
            self.waiting.remove(&k);
        }
        v
    }

    /// Removes a finished wait's entry for `key`.
    pub fn forget(&mut self, db: usize, key: &[u8], waiter: &Arc<Waiter>) {
        let k = (db, SmallBytes::new(key));
        if let Some(q) = self.waiting.get_mut(&k) {
            q.retain(|w| !Arc::ptr_eq(w, waiter));
            if q.is_empty() {
                self.waiting.remove(&k);
            }
        }
    }

    /// Number of keys with waiters (INFO's `blocking_keys`).
    pub fn keys(&self) -> usize {
        self.waiting.len()
    }
}
