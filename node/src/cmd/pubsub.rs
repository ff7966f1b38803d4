//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB's
//! introspection. Delivery lives in `crate::pubsub`.

use super::gateway::GwCtx;
use crate::pubsub::{Outbox, Space};
use shoal_proto::{reply, Request};

/// The client's subscriptions, by space.
#[derive(Default)]
pub struct Subscriptions {
    pub channels: std::collections::BTreeSet<Vec<u8>>,
    pub patterns: std::collections::BTreeSet<Vec<u8>>,
    pub shard: std::collections::BTreeSet<Vec<u8>>,
}

impl Subscriptions {
    fn set(&mut self, space: Space) -> &mut std::collections::BTreeSet<Vec<u8>> {
        match space {
            Space::Channel => &mut self.channels,
            Space::Pattern => &mut self.patterns,
            Space::Shard => &mut self.shard,
        }
    }

    /// The count subscribe replies carry: channels and patterns, or shard channels.
    fn count(&self, space: Space) -> usize {
        match space {
            Space::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    pub fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard.len()
    }

    /// Publishes the counts CLIENT LIST shows.
    fn publish_counts(&self, h: &crate::node::ClientHandle) {
        use std::sync::atomic::Ordering::Relaxed;
        h.subs[0].store(self.channels.len(), Relaxed);
        h.subs[1].store(self.patterns.len(), Relaxed);
        h.subs[2].store(self.shard.len(), Relaxed);
    }
}

fn kind_names(space: Space) -> (&'static [u8], &'static [u8]) {
    match space {
        Space::Channel => (b"subscribe", b"unsubscribe"),
        Space::Pattern => (b"psubscribe", b"punsubscribe"),
        Space::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

fn confirm(ctx: &mut GwCtx<'_>, kind: &[u8], name: Option<&[u8]>, count: usize) {
    reply::push_len(ctx.out, ctx.session.proto, 3);
    reply::bulk(ctx.out, kind);
    match name {
        Some(n) => reply::bulk(ctx.out, n),
        None => reply::null(ctx.out, ctx.session.proto),
    }
    reply::integer(ctx.out, count as i64);
}

pub fn subscribe(ctx: &mut GwCtx<'_>, req: &Request, space: Space) {
    ensure_outbox(ctx);
    let outbox = ctx.session.pubsub.as_ref().expect("created above").0.clone();
    for name in req.args().skip(1) {
        if ctx.session.subs.set(space).insert(name.to_vec()) {
            ctx.node.pubsub.subscribe(space, name, &outbox);
        }
        let count = ctx.session.subs.count(space);
        confirm(ctx, kind_names(space).0, Some(name), count);
    }
    ctx.session.subs.publish_counts(&ctx.session.handle);
}

/// The client's outbox for messages and pushes, created on first use.
pub fn ensure_outbox(ctx: &mut GwCtx<'_>) -> std::sync::Arc<Outbox> {
    if ctx.session.pubsub.is_none() {
        let (outbox, rx) = Outbox::new(ctx.session.handle.clone(), ctx.node.output_limits.clone());
        ctx.node.pubsub.register_outbox(&outbox);
        ctx.session.pubsub = Some((outbox, rx));
    }
    ctx.session.pubsub.as_ref().expect("created above").0.clone()
}

pub fn unsubscribe(ctx: &mut GwCtx<'_>, req: &Request, space: Space) {
    let id = ctx.session.handle.id;
    let names: Vec<Vec<u8>> = if req.len() > 1 {
        req.args().skip(1).map(|a| a.to_vec()).collect()
    } else {
        ctx.session.subs.set(space).iter().cloned().collect()
    };
    if names.is_empty() {
        let count = ctx.session.subs.count(space);
        return confirm(ctx, kind_names(space).1, None, count);
    }
    for name in names {
        if ctx.session.subs.set(space).remove(&name) {
            ctx.node.pubsub.unsubscribe(space, &name, id);
        }
        let count = ctx.session.subs.count(space);
        confirm(ctx, kind_names(space).1, Some(&name), count);
    }
    ctx.session.subs.publish_counts(&ctx.session.handle);
}

/// Drops every subscription of a departing (or RESET) client.
pub fn forget_all(node: &crate::node::Node, subs: &mut Subscriptions, client: u64) {
    for space in [Space::Channel, Space::Pattern, Space::Shard] {
        for name in std::mem::take(subs.set(space)) {
            node.pubsub.unsubscribe(space, &name, client);
        }
    }
    if let Some(h) = node.clients.get(client) {
        subs.publish_counts(&h);
    }
}

pub fn publish(ctx: &mut GwCtx<'_>, req: &Request) {
    let n = ctx.node.pubsub.publish(req.arg(1), req.arg(2));
    reply::integer(ctx.out, n as i64);
}

pub fn spublish(ctx: &mut GwCtx<'_>, req: &Request) {
    let n = ctx.node.pubsub.spublish(req.arg(1), req.arg(2));
    reply::integer(ctx.out, n as i64);
}

pub fn channels(ctx: &mut GwCtx<'_>, req: &Request, space: Space) {
    let pattern = (req.len() > 2).then(|| req.arg(2));
    let list = ctx.node.pubsub.channels(space, pattern);
    reply::array_len(ctx.out, list.len());
    for c in list {
        reply::bulk(ctx.out, &c);
    }
}

pub fn numsub(ctx: &mut GwCtx<'_>, req: &Request, space: Space) {
    // A flat array even in RESP3, as Redis 7.0 answers.
    reply::array_len(ctx.out, (req.len() - 2) * 2);
    for c in req.args().skip(2) {
        reply::bulk(ctx.out, c);
        reply::integer(ctx.out, ctx.node.pubsub.numsub(space, c) as i64);
    }
}

pub fn numpat(ctx: &mut GwCtx<'_>) {
    reply::integer(ctx.out, ctx.node.pubsub.numpat() as i64);
}
