//! Pub/Sub delivery: who is subscribed to which channel, pattern or shard channel, and each
//! subscriber's outbox.
//!
//! A publisher encodes a message once per protocol, pushes it into every receiver's outbox
//! and moves on: it never waits for a subscriber. An outbox counts the bytes not yet written
//! to its socket; a subscriber that lets them pass the pubsub output-buffer limit (Redis's
//! `client-output-buffer-limit pubsub`, by default 32 MB, or 8 MB for 60 seconds) is
//! disconnected, as Redis does, instead of slowing the publisher down or growing without bound.

use crate::node::ClientHandle;
use crate::util::glob::glob_match;
use bytes::{Bytes, BytesMut};
use shoal_proto::{reply, Protocol};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::warn;

/// A subscriber's queue of encoded messages.
pub struct Outbox {
    tx: mpsc::UnboundedSender<Bytes>,
    pending: AtomicUsize,
    /// Milliseconds since `epoch` at which `pending` first went over the soft limit; 0 if not.
    over_soft_since: AtomicU64,
    epoch: Instant,
    pub client: Arc<ClientHandle>,
    limits: Arc<crate::gateway::output_limit::OutputLimits>,
}

impl Outbox {
    pub fn new(
        client: Arc<ClientHandle>,
        limits: Arc<crate::gateway::output_limit::OutputLimits>,
    ) -> (Arc<Outbox>, mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let o = Outbox {
            tx,
            pending: AtomicUsize::new(0),
            over_soft_since: AtomicU64::new(0),
            epoch: Instant::now(),
            client,
            limits,
        };
        (Arc::new(o), rx)
    }

    pub fn proto(&self) -> Protocol {
        if self.client.resp.load(Relaxed) == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// Queues a message, or disconnects the subscriber when it is over its limit.
    pub fn push(&self, msg: &Bytes) {
        if self.client.killed.load(Relaxed) {
            return;
        }
        let pending = self.pending.fetch_add(msg.len(), Relaxed) + msg.len();
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        if self.limits.pubsub.exceeded(pending as u64, now, &self.over_soft_since) {
            warn!(client = self.client.id, pending, "pubsub client over its output buffer limit, disconnecting");
            self.client.kill();
            return;
        }
        let _ = self.tx.send(msg.clone());
    }

    /// The connection wrote `n` bytes of queued messages.
    pub fn written(&self, n: usize) {
        self.pending.fetch_sub(n, Relaxed);
    }
}

/// Which namespace a subscription lives in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Space {
    Channel,
    Pattern,
    Shard,
}

type Subscribers = HashMap<u64, Arc<Outbox>>;

#[derive(Default)]
struct Registry {
    channels: HashMap<Vec<u8>, Subscribers>,
    patterns: HashMap<Vec<u8>, Subscribers>,
    shard: HashMap<Vec<u8>, Subscribers>,
}

impl Registry {
    fn space(&mut self, s: Space) -> &mut HashMap<Vec<u8>, Subscribers> {
        match s {
            Space::Channel => &mut self.channels,
            Space::Pattern => &mut self.patterns,
            Space::Shard => &mut self.shard,
        }
    }

    fn space_ref(&self, s: Space) -> &HashMap<Vec<u8>, Subscribers> {
        match s {
            Space::Channel => &self.channels,
            Space::Pattern => &self.patterns,
            Space::Shard => &self.shard,
        }
    }
}

#[derive(Default)]
pub struct PubSub {
    reg: RwLock<Registry>,
    /// Every client's outbox by client id, for CLIENT TRACKING's REDIRECT.
    outboxes: RwLock<HashMap<u64, std::sync::Weak<Outbox>>>,
}

/// A message encoded for both protocols, built on first use.
struct Encoded {
    parts: Vec<Bytes>,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl Encoded {
    fn new(parts: Vec<Bytes>) -> Encoded {
        Encoded { parts, resp2: None, resp3: None }
    }

    fn get(&mut self, proto: Protocol) -> &Bytes {
        let parts = &self.parts;
        let slot = if proto.is_resp3() { &mut self.resp3 } else { &mut self.resp2 };
        slot.get_or_insert_with(|| {
            let mut b = BytesMut::new();
            reply::push_len(&mut b, proto, parts.len());
            for p in parts {
                reply::bulk(&mut b, p);
            }
            b.freeze()
        })
    }
}

impl PubSub {
    /// Makes a client's outbox findable by id.
    pub fn register_outbox(&self, outbox: &Arc<Outbox>) {
        let mut m = self.outboxes.write().expect("outbox lock");
        m.retain(|_, w| w.strong_count() > 0);
        m.insert(outbox.client.id, Arc::downgrade(outbox));
    }

    pub fn outbox_of(&self, client: u64) -> Option<Arc<Outbox>> {
        self.outboxes.read().expect("outbox lock").get(&client).and_then(|w| w.upgrade())
    }

    pub fn subscribe(&self, space: Space, name: &[u8], outbox: &Arc<Outbox>) {
        let mut reg = self.reg.write().expect("pubsub lock");
        reg.space(space).entry(name.to_vec()).or_default().insert(outbox.client.id, outbox.clone());
    }

    pub fn unsubscribe(&self, space: Space, name: &[u8], client: u64) {
        let mut reg = self.reg.write().expect("pubsub lock");
        let map = reg.space(space);
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&client);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers a message; the number of receivers.
    pub fn publish(&self, channel: &[u8], message: &[u8]) -> usize {
        let reg = self.reg.read().expect("pubsub lock");
        let (ch, msg) = (Bytes::copy_from_slice(channel), Bytes::copy_from_slice(message));
        let mut n = 0;
        if let Some(subs) = reg.channels.get(channel) {
            let mut enc = Encoded::new(vec![Bytes::from_static(b"message"), ch.clone(), msg.clone()]);
            for o in subs.values() {
                o.push(enc.get(o.proto()));
                n += 1;
            }
        }
        for (pattern, subs) in reg.patterns.iter() {
            if glob_match(pattern, channel, false) {
                let mut enc = Encoded::new(vec![
                    Bytes::from_static(b"pmessage"),
                    Bytes::copy_from_slice(pattern),
                    ch.clone(),
                    msg.clone(),
                ]);
                for o in subs.values() {
                    o.push(enc.get(o.proto()));
                    n += 1;
                }
            }
        }
        n
    }

    /// SPUBLISH: delivers to the shard channel's subscribers only.
    pub fn spublish(&self, channel: &[u8], message: &[u8]) -> usize {
        let reg = self.reg.read().expect("pubsub lock");
        let Some(subs) = reg.shard.get(channel) else { return 0 };
        let parts =
            vec![Bytes::from_static(b"smessage"), Bytes::copy_from_slice(channel), Bytes::copy_from_slice(message)];
        let mut enc = Encoded::new(parts);
        for o in subs.values() {
            o.push(enc.get(o.proto()));
        }
        subs.len()
    }

    /// Active channels (or shard channels) matching an optional pattern.
    pub fn channels(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let reg = self.reg.read().expect("pubsub lock");
        reg.space_ref(space).keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    pub fn numsub(&self, space: Space, channel: &[u8]) -> usize {
        let reg = self.reg.read().expect("pubsub lock");
        reg.space_ref(space).get(channel).map_or(0, |s| s.len())
    }

    /// Number of distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.reg.read().expect("pubsub lock").patterns.len()
    }
}
