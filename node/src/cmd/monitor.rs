//! MONITOR: turns a connection into a stream of every command the node runs, and `show`,
//! which every command path calls to feed that stream.

use super::gateway::GwCtx;
use super::table::{flags, CommandSpec, Gw, Handler};
use crate::gateway::session::Session;
use crate::node::Node;
use crate::pubsub::Outbox;
use shoal_proto::{reply, Request};

pub fn monitor(ctx: &mut GwCtx<'_>) {
    // As in Redis, a second MONITOR on a monitoring connection is ignored, without a reply.
    if ctx.session.monitor {
        return;
    }
    if ctx.session.pubsub.is_none() {
        let (outbox, rx) = Outbox::new(ctx.session.handle.clone(), ctx.node.output_limits.clone());
        ctx.session.pubsub = Some((outbox, rx));
    }
    let outbox = ctx.session.pubsub.as_ref().expect("created above").0.clone();
    ctx.session.monitor = true;
    ctx.node.monitors.add(outbox);
    reply::ok(ctx.out);
}

/// Leaves MONITOR mode (RESET, or the connection closing).
pub fn stop(node: &Node, session: &mut Session) {
    if std::mem::take(&mut session.monitor) {
        node.monitors.remove(session.handle.id);
    }
}

/// Shows a command that is about to run to the MONITOR clients. Redis keeps admin commands
/// (CONFIG, ACL, SLOWLOG, ...) and QUIT from them.
#[inline]
pub fn show(node: &Node, session: &Session, spec: &CommandSpec, req: &Request) {
    show_from(node, session.db, || session.handle.addr.to_string(), spec, req);
}

/// `show` for a command from `source` (a client's address, or `lua` for a script's calls).
#[inline]
pub fn show_from(node: &Node, db: usize, source: impl FnOnce() -> String, spec: &CommandSpec, req: &Request) {
    if !node.monitors.active()
        || spec.has(flags::ADMIN | flags::SKIP_MONITOR)
        || matches!(spec.handler, Handler::Gateway(Gw::Quit))
    {
        return;
    }
    node.monitors.feed(db, &source(), spec, req);
}

/// Whether a command is shown after it runs rather than before: EXEC after the commands it
/// ran, SELECT and RESET with the database they leave the client in, as Redis shows them.
pub fn shown_after(g: Gw) -> bool {
    matches!(g, Gw::Exec | Gw::Select | Gw::Reset)
}

/// Why a monitoring connection may not run `spec`: it may not touch the keyspace, as a Redis
/// monitor (a replica to Redis) may not.
pub fn refused(session: &Session, spec: &CommandSpec) -> Option<&'static str> {
    (session.monitor && spec.has(flags::WRITE | flags::READONLY | flags::MAY_REPLICATE))
        .then_some("ERR Replica can't interact with the keyspace")
}
