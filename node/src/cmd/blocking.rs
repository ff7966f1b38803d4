//! Blocking commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP.
//!
//! Each first tries its non-blocking form. When there is nothing to pop it registers a waiter
//! on its keys (see `shard::blocked`) and hands the connection a `BlockReq` to wait on. Inside
//! MULTI (and scripts) it answers at once with the timeout reply, as Redis does. Shards serve
//! waiters with `serve_ready` after every command that wrote a key someone waits on.

use super::args;
use super::exec::{Exec, ExecSettings, Loc, Replied};
use super::lists::{self, End};
use super::streams::{self, After, GroupRead};
use super::zsets;
use crate::shard::blocked::{BlockOp, Waiter, Wake};
use crate::shard::bytes::SmallBytes;
use crate::shard::value::Kind;
use crate::shard::value::Value;
use crate::shard::ShardState;
use crate::slots::SlotRoute;
use bytes::BytesMut;
use shoal_proto::{reply, Request};
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::oneshot;
use tracing::warn;

/// A registered wait the connection must see through. However long it waited, a wait that
/// ends unserved (its timeout, CLIENT UNBLOCK) answers a null array, BLMOVE's included, as
/// Redis's `replyToBlockedClientTimedOut` does.
pub struct BlockReq {
    pub waiter: Arc<Waiter>,
    pub rx: oneshot::Receiver<Wake>,
    /// 0 waits forever.
    pub timeout_ms: u64,
    /// (shard id, key) of every registration, to remove them when the wait ends.
    pub keys: Vec<(usize, Vec<u8>)>,
}

/// Redis's `getTimeoutFromObjectOrReply` for seconds: ms to wait, 0 for ever.
fn timeout(ctx: &mut Exec<'_, '_>, arg: &[u8]) -> Option<u64> {
    let Some(secs) = args::double(arg) else {
        ctx.err("ERR timeout is not a float or out of range");
        return None;
    };
    if secs < 0.0 {
        ctx.err("ERR timeout is negative");
        return None;
    }
    let ms = secs * 1000.0;
    if ms > i64::MAX as f64 {
        ctx.err("ERR timeout is out of range");
        return None;
    }
    // A positive timeout below a millisecond still waits (Redis rounds such a deadline up).
    Some(if ms > 0.0 && ms < 1.0 { 1 } else { ms as u64 })
}

/// Registers a wait on `keys` of `req`, or answers with the timeout reply when blocking is
/// not allowed here.
fn block(ctx: &mut Exec<'_, '_>, req: &Request, keys: Range<usize>, op: BlockOp, timeout_ms: u64) {
    if ctx.no_block {
        // Redis's non-blocking answer: BLMOVE and BRPOPLPUSH a null bulk, the others a null
        // array.
        return if matches!(op, BlockOp::Move { .. }) {
            reply::null(ctx.out, ctx.proto)
        } else {
            reply::null_array(ctx.out, ctx.proto)
        };
    }
    let (waiter, rx) = Waiter::new(ctx.db, ctx.proto, op);
    let mut regs = Vec::with_capacity(keys.len());
    for i in keys {
        let key = req.arg(i);
        let s = ctx.shard_idx(key);
        let db = ctx.db;
        ctx.shards[s].blocked.register(db, key, waiter.clone());
        regs.push((ctx.shards[s].id, key.to_vec()));
    }
    ctx.block = Some(BlockReq { waiter, rx, timeout_ms, keys: regs });
}

/// The first key among `keys` holding a non-empty value of `kind`; `Err` after WRONGTYPE.
fn first_ready(
    ctx: &mut Exec<'_, '_>,
    req: &Request,
    keys: Range<usize>,
    kind: Kind,
) -> Result<Option<(usize, Loc)>, Replied> {
    for i in keys {
        match ctx.write_typed(req.arg(i), kind) {
            Err(_) => return Err(Replied),
            Ok(Some(loc)) => return Ok(Some((i, loc))),
            Ok(None) => {}
        }
    }
    Ok(None)
}

fn bpop(ctx: &mut Exec<'_, '_>, req: &Request, end: End) {
    let Some(t) = timeout(ctx, req.arg(req.len() - 1)) else { return };
    let keys = 1..req.len() - 1;
    match first_ready(ctx, req, keys.clone(), Kind::List) {
        Err(Replied) => {}
        Ok(Some((i, loc))) => serve_pop(ctx, req.arg(i), loc, end),
        Ok(None) => block(ctx, req, keys, BlockOp::Pop(end), t),
    }
}

fn serve_pop(ctx: &mut Exec<'_, '_>, key: &[u8], loc: Loc, end: End) {
    let popped = lists::pop_from(ctx, key, loc, end, 1);
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, key);
    reply::bulk(ctx.out, &popped[0]);
}

pub fn blpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    bpop(ctx, req, End::Left)
}

pub fn brpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    bpop(ctx, req, End::Right)
}

fn bmove(ctx: &mut Exec<'_, '_>, req: &Request, from: End, to: End, timeout_at: usize) {
    let Some(t) = timeout(ctx, req.arg(timeout_at)) else { return };
    let (src, dst) = (req.arg(1), req.arg(2));
    match ctx.write_typed(src, Kind::List) {
        Err(_) => {}
        Ok(Some(_)) => {
            lists::lmove_parsed(ctx, src, dst, from, to);
        }
        Ok(None) => block(ctx, req, 1..2, BlockOp::Move { dst: dst.to_vec(), from, to }, t),
    }
}

pub fn blmove(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (Some(from), Some(to)) = (End::parse(req.arg(3)), End::parse(req.arg(4))) else {
        return ctx.syntax();
    };
    bmove(ctx, req, from, to, 5)
}

pub fn brpoplpush(ctx: &mut Exec<'_, '_>, req: &Request) {
    bmove(ctx, req, End::Right, End::Left, 3)
}

pub fn blmpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(t) = timeout(ctx, req.arg(1)) else { return };
    let Some(a) = lists::parse_mpop(ctx, req, 2, End::parse) else { return };
    match first_ready(ctx, req, a.keys.clone(), Kind::List) {
        Err(Replied) => {}
        Ok(Some((i, loc))) => {
            let popped = lists::pop_from(ctx, req.arg(i), loc, a.end, a.count);
            lists::reply_keyed(ctx, req.arg(i), &popped);
        }
        Ok(None) => block(ctx, req, a.keys, BlockOp::MPop { end: a.end, count: a.count, zset: false }, t),
    }
}

fn bzpop(ctx: &mut Exec<'_, '_>, req: &Request, max: bool) {
    let Some(t) = timeout(ctx, req.arg(req.len() - 1)) else { return };
    let keys = 1..req.len() - 1;
    match first_ready(ctx, req, keys.clone(), Kind::ZSet) {
        Err(Replied) => {}
        Ok(Some((i, loc))) => {
            let popped = zsets::pop_from(ctx, req.arg(i), loc, max, 1);
            zsets::reply_popped_one(ctx, req.arg(i), &popped[0]);
        }
        Ok(None) => block(ctx, req, keys, BlockOp::ZPop { max }, t),
    }
}

pub fn bzpopmin(ctx: &mut Exec<'_, '_>, req: &Request) {
    bzpop(ctx, req, false)
}

pub fn bzpopmax(ctx: &mut Exec<'_, '_>, req: &Request) {
    bzpop(ctx, req, true)
}

pub fn bzmpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(t) = timeout(ctx, req.arg(1)) else { return };
    let Some(a) = zsets::parse_zmpop(ctx, req, 2) else { return };
    match first_ready(ctx, req, a.keys.clone(), Kind::ZSet) {
        Err(Replied) => {}
        Ok(Some((i, loc))) => {
            let items = zsets::pop_from(ctx, req.arg(i), loc, a.end == End::Right, a.count);
            zsets::reply_keyed(ctx, req.arg(i), &items);
        }
        Ok(None) => block(ctx, req, a.keys, BlockOp::MPop { end: a.end, count: a.count, zset: true }, t),
    }
}

/// XREAD/XREADGROUP with BLOCK found nothing: waits on every stream key it reads.
pub fn block_on_streams(
    ctx: &mut Exec<'_, '_>,
    req: &Request,
    key_args: Range<usize>,
    keys: Vec<(Vec<u8>, After)>,
    count: usize,
    group: Option<GroupRead>,
    timeout_ms: u64,
) {
    block(ctx, req, key_args, BlockOp::XRead { keys, count, group }, timeout_ms)
}

/// Serves the waiters of every key written since the last call, in FIFO order per key, as
/// long as the key has data for them. Runs inside the shard, right after a command.
pub fn serve_ready(state: &mut ShardState, route: &SlotRoute, now: u64, settings: ExecSettings) {
    while state.blocked.has_ready() {
        for (db, key) in state.blocked.take_ready() {
            if value_kind(state, db, &key, now) == Some(Kind::Stream) {
                serve_stream_waiters(state, route, db, &key, now, settings);
                continue;
            }
            while let Some(w) = state.blocked.front(db, &key) {
                if value_kind(state, db, &key, now) != Some(w.op.kind()) {
                    break;
                }
                state.blocked.pop_front(db, &key);
                if w.is_abandoned() || !w.claim() {
                    continue;
                }
                if let BlockOp::Move { dst, .. } = &w.op {
                    if route.shard_of_key(dst) != state.id {
                        // The destination lives elsewhere: the client moves it under a lease.
                        w.send(Wake::Retry);
                        continue;
                    }
                }
                serve_waiter(state, route, &w, &key, now, settings);
            }
        }
    }
}

/// Runs a claimed waiter's op on `key` and sends it the reply.
fn serve_waiter(state: &mut ShardState, route: &SlotRoute, w: &Waiter, key: &[u8], now: u64, settings: ExecSettings) {
    let mut out = BytesMut::new();
    {
        let mut shards = [&mut *state];
        let mut ex = Exec::new(&mut shards, route, w.db, w.proto, &mut out, now, settings);
        serve_one(&mut ex, &w.op, key);
    }
    if !w.send(Wake::Reply(out)) {
        // The client left between the check and now; Redis loses the reply the same way
        // when a served client's socket is already gone.
        warn!(shard = state.id, "blocked client left while being served");
    }
}

/// Stream readers wait for different IDs: each one whose read now has data is served, in
/// the order they blocked.
fn serve_stream_waiters(
    state: &mut ShardState,
    route: &SlotRoute,
    db: usize,
    key: &SmallBytes,
    now: u64,
    settings: ExecSettings,
) {
    for w in state.blocked.waiters(db, key) {
        if !stream_has_data(state, db, key, &w.op) {
            continue;
        }
        state.blocked.forget(db, key, &w);
        if w.is_abandoned() || !w.claim() {
            continue;
        }
        serve_waiter(state, route, &w, key, now, settings);
    }
}

/// Whether a stream reader blocked on `key` would get entries now.
fn stream_has_data(state: &ShardState, db: usize, key: &[u8], op: &BlockOp) -> bool {
    let BlockOp::XRead { keys, group, .. } = op else { return false };
    let Some((_, after)) = keys.iter().find(|(k, _)| k.as_slice() == key) else { return false };
    let d = &state.dbs[db].dict();
    let Some(id) = d.find_no_step(key) else { return false };
    let Value::Stream(s) = &d.entry(id).value else { return false };
    if s.is_empty() {
        return false;
    }
    let Some(top) = s.last_entry_id() else { return false };
    match (after, group) {
        (After::Id(gt), _) => top > *gt,
        (After::New, Some(g)) => s.groups.get(g.group.as_slice()).is_some_and(|grp| top > grp.last_id),
        (After::New, None) => false,
    }
}

/// The type of the live value at `key`, if any.
fn value_kind(state: &ShardState, db: usize, key: &[u8], now: u64) -> Option<Kind> {
    let d = &state.dbs[db];
    let id = d.dict().find_no_step(key)?;
    let e = d.dict().entry(id);
    if e.expire_at().is_some_and(|t| t <= now) {
        return None;
    }
    Some(e.value.kind())
}

/// Runs a waiter's pop on `key` (known to hold data) and writes its reply.
fn serve_one(ctx: &mut Exec<'_, '_>, op: &BlockOp, key: &[u8]) {
    if let BlockOp::XRead { keys, count, group } = op {
        let after = keys.iter().find(|(k, _)| k.as_slice() == key).map(|(_, a)| *a).expect("registered key");
        if ctx.proto.is_resp3() {
            reply::map_len(ctx.out, ctx.proto, 1);
        } else {
            reply::array_len(ctx.out, 1);
        }
        streams::serve_stream(ctx, key, after, *count, group.as_ref());
        return;
    }
    let Ok(Some(loc)) = ctx.write_typed(key, op.kind()) else { return };
    match op {
        BlockOp::Pop(end) => serve_pop(ctx, key, loc, *end),
        BlockOp::Move { dst, from, to } => {
            lists::lmove_parsed(ctx, key, dst, *from, *to);
        }
        BlockOp::MPop { end, count, zset: false } => {
            let popped = lists::pop_from(ctx, key, loc, *end, *count);
            lists::reply_keyed(ctx, key, &popped);
        }
        BlockOp::MPop { end, count, zset: true } => {
            let items = zsets::pop_from(ctx, key, loc, *end == End::Right, *count);
            zsets::reply_keyed(ctx, key, &items);
        }
        BlockOp::ZPop { max } => {
            let popped = zsets::pop_from(ctx, key, loc, *max, 1);
            zsets::reply_popped_one(ctx, key, &popped[0]);
        }
        BlockOp::XRead { .. } => unreachable!("handled above"),
    }
}
