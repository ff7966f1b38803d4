//! Set commands: membership, random members, moves, and the algebra (SINTER, SUNION, SDIFF
//! with their STORE and CARD forms), whose keys may live in several shards.

use super::args::{self, is};
use super::exec::{Exec, Loc, Replied, SYNTAX};
use super::hashes::random_count;
use crate::argv;
use crate::shard::types::set::{Elem, Set};
use crate::shard::value::{Kind, Value};
use bytes::Bytes;
use shoal_proto::{reply, Request};
use std::collections::HashSet;

fn set<'c>(ctx: &'c Exec<'_, '_>, loc: Loc) -> &'c Set {
    match ctx.value(loc) {
        Value::Set(s) => s,
        _ => unreachable!("type checked"),
    }
}

fn set_mut<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> &'c mut Set {
    match ctx.value_mut(loc) {
        Value::Set(s) => s,
        _ => unreachable!("type checked"),
    }
}

pub fn sadd(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let loc = match ctx.write_typed(key, Kind::Set) {
        Err(Replied) => return,
        Ok(Some(loc)) => loc,
        Ok(None) => ctx.create(key, Value::Set(Set::for_member(req.arg(2)))),
    };
    let enc = ctx.settings.enc;
    let s = set_mut(ctx, loc);
    let added = (2..req.len()).filter(|&i| s.add(req.arg(i), &enc)).count();
    if added > 0 {
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, added as i64);
}

pub fn srem(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Ok(found) = ctx.write_typed(key, Kind::Set) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let s = set_mut(ctx, loc);
    let removed = (2..req.len()).filter(|&i| s.remove(req.arg(i))).count();
    if removed > 0 {
        ctx.drop_if_empty(key, loc);
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, removed as i64);
}

pub fn scard(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::Set) else { return };
    let n = found.map_or(0, |loc| set(ctx, loc).len());
    reply::integer(ctx.out, n as i64);
}

pub fn sismember(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::Set) else { return };
    let is_member = found.is_some_and(|loc| set(ctx, loc).contains(req.arg(2)));
    reply::integer(ctx.out, is_member as i64);
}

pub fn smismember(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::Set) else { return };
    reply::array_len(ctx.out, req.len() - 2);
    for i in 2..req.len() {
        let is_member = found.is_some_and(|loc| set(ctx, loc).contains(req.arg(i)));
        reply::integer(ctx.out, is_member as i64);
    }
}

/// Writes members as a set reply.
fn reply_members(ctx: &mut Exec<'_, '_>, members: &[Vec<u8>]) {
    reply::set_len(ctx.out, ctx.proto, members.len());
    for m in members {
        reply::bulk(ctx.out, m);
    }
}

pub fn smembers(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::Set) else { return };
    let Some(loc) = found else { return reply::set_len(ctx.out, ctx.proto, 0) };
    let proto = ctx.proto;
    let (Value::Set(s), out) = ctx.value_and_out(loc) else { unreachable!("type checked") };
    reply::set_len(out, proto, s.len());
    s.for_each(|e| e.write_bulk(out));
}

pub fn spop(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    if req.len() > 3 {
        return ctx.syntax();
    }
    let count = if req.len() == 3 {
        match args::int(req.arg(2)) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return ctx.err("ERR value is out of range, must be positive"),
        }
    } else {
        None
    };
    let Ok(found) = ctx.write_typed(key, Kind::Set) else { return };
    let Some(loc) = found else {
        return match count {
            None => reply::null(ctx.out, ctx.proto),
            Some(_) => reply::set_len(ctx.out, ctx.proto, 0),
        };
    };
    let want = count.unwrap_or(1);
    let s = set_mut(ctx, loc);
    let mut rng = rand::thread_rng();
    let popped: Vec<Vec<u8>> = if want >= s.len() as u64 {
        let all = s.members();
        // The whole set goes: one deletion, not one removal per member.
        *s = Set::for_member(b"");
        all
    } else {
        let mut v = Vec::with_capacity(want as usize);
        for _ in 0..want {
            let m = s.random(&mut rng).expect("non-empty").to_vec();
            s.remove(&m);
            v.push(m);
        }
        v
    };
    if !popped.is_empty() {
        ctx.drop_if_empty(key, loc);
        ctx.emit(key, || {
            let mut v = argv!["SREM", key];
            v.extend(popped.iter().map(|m| Bytes::copy_from_slice(m)));
            v
        });
    }
    match count {
        None => reply::bulk(ctx.out, &popped[0]),
        Some(_) => reply_members(ctx, &popped),
    }
}

pub fn srandmember(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    if req.len() > 3 {
        return ctx.syntax();
    }
    if req.len() == 2 {
        let Ok(found) = ctx.read_typed(key, Kind::Set) else { return };
        let mut rng = rand::thread_rng();
        let m = found.and_then(|loc| set(ctx, loc).random(&mut rng).map(|e| e.to_vec()));
        return match m {
            Some(m) => reply::bulk(ctx.out, &m),
            None => reply::null(ctx.out, ctx.proto),
        };
    }
    let Some((count, unique)) = random_count(ctx, req.arg(2), false) else { return };
    let Ok(found) = ctx.read_typed(key, Kind::Set) else { return };
    let Some(loc) = found else { return reply::array_len(ctx.out, 0) };
    let s = set(ctx, loc);
    let mut rng = rand::thread_rng();
    let picked: Vec<Vec<u8>> = if !unique || count == 1 {
        (0..count).filter_map(|_| s.random(&mut rng).map(|e| e.to_vec())).collect()
    } else {
        let mut all = s.members();
        if count < all.len() as u64 {
            use rand::seq::SliceRandom;
            all.partial_shuffle(&mut rng, count as usize);
            all.truncate(count as usize);
        }
        all
    };
    reply::array_len(ctx.out, picked.len());
    for m in &picked {
        reply::bulk(ctx.out, m);
    }
}

pub fn smove(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (src, dst, member) = (req.arg(1), req.arg(2), req.arg(3));
    let src_found = ctx.lookup(src);
    let dst_found = ctx.lookup(dst);
    let Some(sloc) = src_found else { return reply::integer(ctx.out, 0) };
    if ctx.value(sloc).kind() != Kind::Set || dst_found.is_some_and(|d| ctx.value(d).kind() != Kind::Set) {
        return ctx.wrongtype();
    }
    if src == dst {
        let is_member = set(ctx, sloc).contains(member);
        return reply::integer(ctx.out, is_member as i64);
    }
    if !set_mut(ctx, sloc).remove(member) {
        return reply::integer(ctx.out, 0);
    }
    ctx.drop_if_empty(src, sloc);
    ctx.emit(src, || argv!["SREM", src, member]);
    // Looked up again: removing from the source may have moved entries of the same shard.
    let dloc = match dst_found.and_then(|_| ctx.lookup(dst)) {
        Some(d) => d,
        None => ctx.create(dst, Value::Set(Set::for_member(member))),
    };
    let enc = ctx.settings.enc;
    set_mut(ctx, dloc).add(member, &enc);
    ctx.emit(dst, || argv!["SADD", dst, member]);
    reply::integer(ctx.out, 1);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Reads the sets at `keys` (missing keys are `None`); `Err` after WRONGTYPE. The STORE
/// forms read their sources this way too, as Redis 7 does.
fn load(ctx: &mut Exec<'_, '_>, req: &Request, keys: std::ops::Range<usize>) -> Result<Vec<Option<Loc>>, Replied> {
    let mut locs = Vec::with_capacity(keys.len());
    for i in keys {
        locs.push(ctx.read_typed(req.arg(i), Kind::Set)?);
    }
    Ok(locs)
}

/// Computes an intersection, union or difference. For intersections, stops at `limit`.
fn compute(ctx: &Exec<'_, '_>, locs: &[Option<Loc>], op: Op, limit: usize) -> Vec<Vec<u8>> {
    let sets: Vec<Option<&Set>> = locs.iter().map(|l| l.map(|loc| set(ctx, loc))).collect();
    match op {
        Op::Inter => {
            if sets.iter().any(|s| s.is_none()) {
                return Vec::new();
            }
            let mut order: Vec<&Set> = sets.iter().map(|s| s.expect("checked")).collect();
            order.sort_by_key(|s| s.len());
            let mut out = Vec::new();
            order[0].for_each(|e| {
                if out.len() >= limit {
                    return;
                }
                let m = e.to_vec();
                if order[1..].iter().all(|s| s.contains(&m)) {
                    out.push(m);
                }
            });
            out
        }
        Op::Union => {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for s in sets.iter().flatten() {
                s.for_each(|e| {
                    let m = e.to_vec();
                    if seen.insert(m.clone()) {
                        out.push(m);
                    }
                });
            }
            out
        }
        Op::Diff => {
            let Some(first) = sets[0] else { return Vec::new() };
            let mut out = Vec::new();
            first.for_each(|e: Elem<'_>| {
                let m = e.to_vec();
                if !sets[1..].iter().flatten().any(|s| s.contains(&m)) {
                    out.push(m);
                }
            });
            out
        }
    }
}

fn algebra(ctx: &mut Exec<'_, '_>, req: &Request, op: Op) {
    let Ok(locs) = load(ctx, req, 1..req.len()) else { return };
    let members = compute(ctx, &locs, op, usize::MAX);
    reply_members(ctx, &members);
}

fn algebra_store(ctx: &mut Exec<'_, '_>, req: &Request, op: Op) {
    let dst = req.arg(1);
    let Ok(locs) = load(ctx, req, 2..req.len()) else { return };
    let members = compute(ctx, &locs, op, usize::MAX);
    store(ctx, dst, &members);
    reply::integer(ctx.out, members.len() as i64);
}

/// Replaces `dst` with a set of `members` (or deletes it when there are none).
fn store(ctx: &mut Exec<'_, '_>, dst: &[u8], members: &[Vec<u8>]) {
    let existed = ctx.lookup(dst).is_some();
    if existed {
        ctx.delete(dst);
    }
    if members.is_empty() {
        if existed {
            ctx.emit(dst, || argv!["DEL", dst]);
        }
        return;
    }
    let enc = ctx.settings.enc;
    let mut s = Set::for_member(&members[0]);
    for m in members {
        s.add(m, &enc);
    }
    ctx.create(dst, Value::Set(s));
    ctx.emit(dst, || argv!["DEL", dst]);
    ctx.emit(dst, || {
        let mut v = argv!["SADD", dst];
        v.extend(members.iter().map(|m| Bytes::copy_from_slice(m)));
        v
    });
}

pub fn sinter(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra(ctx, req, Op::Inter)
}
pub fn sunion(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra(ctx, req, Op::Union)
}
pub fn sdiff(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra(ctx, req, Op::Diff)
}
pub fn sinterstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_store(ctx, req, Op::Inter)
}
pub fn sunionstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_store(ctx, req, Op::Union)
}
pub fn sdiffstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_store(ctx, req, Op::Diff)
}

/// Parses the `numkeys` of SINTERCARD, LMPOP, ZMPOP (argument `at`) with Redis's errors;
/// the number of keys when valid.
/// `too_many` is the error when fewer keys follow than it claims.
pub fn numkeys(ctx: &mut Exec<'_, '_>, req: &Request, at: usize, too_many: &str) -> Option<usize> {
    match args::int(req.arg(at)) {
        Some(n) if n <= 0 => ctx.err("ERR numkeys should be greater than 0"),
        None => ctx.err("ERR numkeys should be greater than 0"),
        Some(n) if n as u64 > (req.len() - at - 1) as u64 => ctx.err(too_many),
        Some(n) => return Some(n as usize),
    }
    None
}

pub fn sintercard(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(n) = numkeys(ctx, req, 1, "ERR Number of keys can't be greater than number of args") else { return };
    let mut limit = usize::MAX;
    let mut j = 2 + n;
    while j < req.len() {
        if is(req.arg(j), "LIMIT") && j + 1 < req.len() {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err("ERR LIMIT can't be negative"),
                Some(l) if l < 0 => return ctx.err("ERR LIMIT can't be negative"),
                Some(0) => limit = usize::MAX,
                Some(l) => limit = l as usize,
            }
            j += 2;
        } else {
            return ctx.err(SYNTAX);
        }
    }
    let Ok(locs) = load(ctx, req, 2..2 + n) else { return };
    let members = compute(ctx, &locs, Op::Inter, limit);
    reply::integer(ctx.out, members.len() as i64);
}

pub fn sscan(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some((loc, o)) = super::scan::start(ctx, req, Kind::Set, false) else { return };
    let s = set(ctx, loc);
    let (cursor, items) = super::scan::collect(&o, |c, visit| s.scan(c, |e| visit(&e.to_vec(), None)));
    super::scan::write(ctx, &o, false, cursor, &items);
}
