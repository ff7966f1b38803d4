//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Commands after MULTI are queued by the connection (`+QUEUED`); an error while queueing
//! (unknown command, wrong arity, a command not allowed in a transaction) makes EXEC answer
//! EXECABORT. EXEC leases every shard its queued commands and watched keys live in, checks
//! the watches, and runs the queue under that one lease: atomic and isolated across shards.
//! Commands that need every shard themselves (FLUSHALL, DBSIZE, KEYS, ...) run between the
//! lease's segments, the one place a transaction is not isolated (docs/compatibility.md).

use super::exec::Exec;
use super::gateway::{self, GwCtx};
use super::scripting;
use super::table::{CommandSpec, Gw, Handler};
use crate::shard::watch::WatchFlag;
use crate::shard::{run_guarded, serve_blocked, Lease, RunFn, ShardMsg, ShardState};
use crate::util::now_ms;
use shoal_proto::{reply, Request};
use std::sync::Arc;
use std::time::Instant;

pub fn multi(ctx: &mut GwCtx<'_>) {
    if ctx.session.multi.is_some() {
        return ctx.err("ERR MULTI calls can not be nested");
    }
    ctx.session.multi = Some(Vec::new());
    ctx.session.multi_failed = false;
    reply::ok(ctx.out);
}

pub fn discard(ctx: &mut GwCtx<'_>) {
    if ctx.session.multi.take().is_none() {
        return ctx.err("ERR DISCARD without MULTI");
    }
    ctx.session.multi_failed = false;
    unwatch_all(ctx);
    reply::ok(ctx.out);
}

pub async fn watch(ctx: &mut GwCtx<'_>, req: &Request) {
    if ctx.session.multi.is_some() {
        return ctx.err("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.session.db;
    for key in req.args().skip(1) {
        let shard = ctx.node.route.shard_of_key(key);
        if ctx.session.watched.iter().any(|(s, d, k)| *s == shard && *d == db && k.as_slice() == key) {
            continue;
        }
        let (flag, k) = (ctx.session.watch_flag.clone(), key.to_vec());
        ctx.node
            .broadcast_one(shard, move |st| {
                let expired = st.is_expired(db, &k, now_ms());
                st.watches.add(db, &k, flag, expired);
            })
            .await;
        ctx.session.watched.push((shard, db, key.to_vec()));
    }
    reply::ok(ctx.out);
}

pub fn unwatch(ctx: &mut GwCtx<'_>) {
    unwatch_all(ctx);
    reply::ok(ctx.out);
}

/// Drops every watch of the client and starts a clean flag.
pub fn unwatch_all(ctx: &mut GwCtx<'_>) {
    forget_watches(ctx.node, &mut ctx.session.watched, &ctx.session.watch_flag);
    ctx.session.watch_flag = Arc::new(WatchFlag::default());
}

/// Removes a client's watch entries from the shards (when it unwatches or disconnects).
pub fn forget_watches(node: &crate::node::Node, watched: &mut Vec<(usize, usize, Vec<u8>)>, flag: &Arc<WatchFlag>) {
    for (shard, db, key) in watched.drain(..) {
        let flag = flag.clone();
        let job: RunFn = Box::new(move |st| st.watches.forget(db, &key, &flag));
        let _ = node.shards[shard].cast(ShardMsg::Run(job));
    }
}

/// Gateway commands that touch no shard, so they can run while EXEC holds its lease.
pub fn runs_under_lease(g: Gw) -> bool {
    matches!(
        g,
        Gw::Ping
            | Gw::Echo
            | Gw::Select
            | Gw::Time
            | Gw::ClientId
            | Gw::ClientSetName
            | Gw::ClientGetName
            | Gw::ClientInfo
            | Gw::ClientReply
            | Gw::ConfigGet
            | Gw::ConfigSet
            | Gw::CommandCount
            | Gw::CommandInfo
            | Gw::CommandDocs
            | Gw::CommandGetKeys
            | Gw::CommandGetKeysAndFlags
            | Gw::CommandList
            | Gw::Command
            | Gw::ClusterKeySlot
            | Gw::ClusterInfo
            | Gw::ClusterMyId
            | Gw::ClusterSlots
            | Gw::ClusterShards
            | Gw::ClusterNodes
            | Gw::Help
            | Gw::LastSave
            | Gw::MemoryDoctor
            | Gw::MemoryMallocStats
            | Gw::MemoryPurge
            | Gw::PubsubChannels
            | Gw::PubsubNumSub
            | Gw::PubsubNumPat
            | Gw::PubsubShardChannels
            | Gw::PubsubShardNumSub
    )
}

pub async fn exec(ctx: &mut GwCtx<'_>) {
    let Some(queued) = ctx.session.multi.take() else { return ctx.err("ERR EXEC without MULTI") };
    if std::mem::take(&mut ctx.session.multi_failed) {
        unwatch_all(ctx);
        return ctx.err("EXECABORT Transaction discarded because of previous errors.");
    }
    if queued.iter().any(|(spec, _)| spec.has(crate::cmd::table::flags::DENYOOM)) && ctx.node.memory.refuses_writes() {
        unwatch_all(ctx);
        return ctx.err(&format!("EXECABORT Transaction discarded because of: {}", crate::memory::OOM_ERROR));
    }
    let node: &Arc<crate::node::Node> = ctx.node;
    let route = node.route.clone();
    let mut shards: Vec<usize> = ctx.session.watched.iter().map(|(s, _, _)| *s).collect();
    let script = |spec: &CommandSpec| matches!(spec.handler, Handler::Gateway(g) if scripting::runs_a_script(g));
    for (spec, req) in &queued {
        let held_gateway =
            matches!(spec.handler, Handler::Gateway(g) if gateway::runs_on_held_shards(g)) || script(spec);
        if held_gateway || matches!(spec.handler, Handler::Shard(_)) && spec.needs_all_shards(req) {
            shards.extend(0..ctx.node.shards.len());
        } else if matches!(spec.handler, Handler::Shard(_)) {
            let mut keys = spec.keys_of(req).peekable();
            if keys.peek().is_none() {
                shards.push(0);
            }
            shards.extend(keys.map(|i| route.shard_of_key(req.arg(i))));
        }
    }
    // Scripts in the transaction run inside it, holding the engine from before the shards
    // are leased to the end: in the order scripts take them, so neither waits on the other.
    let mut engine = None;
    if queued.iter().any(|(spec, _)| script(spec)) {
        match node.scripts.engine().await {
            Ok(e) => engine = Some(e),
            Err(busy) => {
                unwatch_all(ctx);
                return ctx.err(busy);
            }
        }
    }
    let mut leases = if shards.is_empty() { Default::default() } else { ctx.node.lease(&shards).await };
    if watch_failed(ctx, &mut leases) {
        drop(leases);
        drop(engine);
        unwatch_all(ctx);
        return reply::null_array(ctx.out, ctx.session.proto);
    }
    reply::array_len(ctx.out, queued.len());
    let mut settings = ctx.node.exec_settings();
    settings.client = ctx.session.handle.id;
    for (spec, req) in queued {
        let started = Instant::now();
        let failed = match spec.handler {
            Handler::Shard(f) => {
                let mut states: Vec<&mut ShardState> = leases.iter_mut().map(|l| l.state()).collect();
                let (db, proto, now) = (ctx.session.db, ctx.session.proto, now_ms());
                let mut ex = Exec::new(&mut states, &route, db, proto, ctx.out, now, settings);
                ex.no_block = true;
                run_guarded(&mut ex, f, &req, spec)
            }
            // Every shard is leased for these (above): they run over them, inside the
            // transaction.
            Handler::Gateway(g) if gateway::runs_on_held_shards(g) => {
                let mut states: Vec<&mut ShardState> = leases.iter_mut().map(|l| l.state()).collect();
                run_gateway(ctx, g, spec, &req, Some(&mut states)).await
            }
            Handler::Gateway(g) if scripting::runs_a_script(g) && engine.is_some() => {
                let mut states: Vec<&mut ShardState> = leases.iter_mut().map(|l| l.state()).collect();
                let engine = engine.as_mut().expect("checked above");
                let mut inner = GwCtx {
                    node: ctx.node,
                    session: &mut *ctx.session,
                    out: &mut *ctx.out,
                    spec,
                    failed: false,
                    held: None,
                };
                scripting::run_holding(&mut inner, g, &req, engine, &mut states);
                inner.failed
            }
            Handler::Gateway(g) => {
                let relet = !runs_under_lease(g) && !leases.is_empty();
                if relet {
                    drop(std::mem::take(&mut leases));
                    // The command may want the engine (SCRIPT, FUNCTION): the transaction is
                    // split here anyway, and its later scripts take the engine themselves.
                    engine = None;
                }
                let failed = run_gateway(ctx, g, spec, &req, None).await;
                if relet {
                    leases = ctx.node.lease(&shards).await;
                }
                failed
            }
            Handler::Container => unreachable!("containers resolve to a subcommand"),
        };
        ctx.node.record_call(spec, &req, started.elapsed().as_nanos() as u64, failed, &ctx.session.handle);
        // Shown after it ran, as Redis does; SELECT and RESET show themselves.
        if !matches!(spec.handler, Handler::Gateway(g) if super::monitor::shown_after(g)) {
            super::monitor::show(ctx.node, ctx.session, spec, &req);
        }
    }
    // Clients blocked on keys the transaction pushed to are served after it, as in Redis.
    let mut states: Vec<&mut ShardState> = leases.iter_mut().map(|l| l.state()).collect();
    serve_blocked(&mut states, &route, now_ms(), settings);
    drop(states);
    drop(leases);
    unwatch_all(ctx);
}

async fn run_gateway<'a>(
    ctx: &'a mut GwCtx<'_>,
    g: Gw,
    spec: &'static CommandSpec,
    req: &Request,
    held: Option<&'a mut (dyn gateway::HeldShards + 'a)>,
) -> bool {
    let mut inner = GwCtx { node: ctx.node, session: &mut *ctx.session, out: &mut *ctx.out, spec, failed: false, held };
    Box::pin(gateway::execute(g, &mut inner, req)).await;
    inner.failed
}

/// Whether a watched key changed, or expired, since WATCH.
fn watch_failed(ctx: &GwCtx<'_>, leases: &mut [Lease]) -> bool {
    let flag = &ctx.session.watch_flag;
    if flag.is_set() {
        return true;
    }
    let now = now_ms();
    for (shard, db, key) in &ctx.session.watched {
        let Some(l) = leases.iter_mut().find(|l| l.id() == *shard) else { continue };
        let st = l.state();
        if !st.watches.was_expired(*db, key, flag) && st.is_expired(*db, key, now) {
            return true;
        }
    }
    false
}
