//! Keyspace commands: DEL, EXISTS, TYPE, the EXPIRE and TTL families, RENAME, COPY, MOVE,
//! OBJECT, DUMP and RESTORE.

use super::args::{self, expire_at, is, TimeUnit};
use super::exec::{Exec, DB_OUT_OF_RANGE, NOT_INTEGER, NO_SUCH_KEY, SAME_OBJECT};
use crate::argv;
use crate::persist::dump;
use crate::shard::dict::Removed;
use crate::shard::value::Value;
use shoal_proto::{reply, Request};

pub fn del(ctx: &mut Exec<'_, '_>, req: &Request) {
    let mut n = 0;
    for i in 1..req.len() {
        let key = req.arg(i);
        if ctx.lookup(key).is_some() && ctx.delete(key) {
            n += 1;
            ctx.emit(key, || argv!["DEL", key]);
        }
    }
    reply::integer(ctx.out, n);
}

pub fn exists(ctx: &mut Exec<'_, '_>, req: &Request) {
    let n = (1..req.len()).filter(|&i| ctx.read_notouch(req.arg(i)).is_some()).count();
    reply::integer(ctx.out, n as i64);
}

pub fn touch(ctx: &mut Exec<'_, '_>, req: &Request) {
    let n = (1..req.len()).filter(|&i| ctx.read(req.arg(i)).is_some()).count();
    reply::integer(ctx.out, n as i64);
}

pub fn type_(ctx: &mut Exec<'_, '_>, req: &Request) {
    let name = match ctx.read_notouch(req.arg(1)) {
        None => "none",
        Some((s, id)) => ctx.shards[s].dbs[ctx.db].dict().entry(id).value.kind().name(),
    };
    reply::simple(ctx.out, name.as_bytes());
}

fn expire_generic(ctx: &mut Exec<'_, '_>, req: &Request, unit: TimeUnit, absolute: bool, cmd: &str) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for i in 3..req.len() {
        let opt = req.arg(i);
        if is(opt, "NX") {
            nx = true;
        } else if is(opt, "XX") {
            xx = true;
        } else if is(opt, "GT") {
            gt = true;
        } else if is(opt, "LT") {
            lt = true;
        } else {
            return ctx.err(&format!("ERR Unsupported option {}", String::from_utf8_lossy(opt)));
        }
    }
    if nx && (xx || gt || lt) {
        return ctx.err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return ctx.err("ERR GT and LT options at the same time are not compatible");
    }
    let Some(value) = args::int(req.arg(2)) else { return ctx.err(NOT_INTEGER) };
    let Some(when) = expire_at(value, unit, absolute, ctx.now) else {
        return ctx.err(&format!("ERR invalid expire time in '{cmd}' command"));
    };
    let key = req.arg(1);
    let Some((s, id)) = ctx.lookup(key) else { return reply::integer(ctx.out, 0) };
    let current = ctx.shards[s].dbs[ctx.db].dict().entry(id).expire_at().map(|t| t as i64);
    let refuse = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refuse {
        return reply::integer(ctx.out, 0);
    }
    if when <= ctx.now as i64 {
        ctx.delete(key);
        ctx.emit(key, || argv!["DEL", key]);
    } else {
        ctx.shards[s].dbs[ctx.db].set_expire(id, when as u64);
        ctx.emit(key, || argv!["PEXPIREAT", key, when.to_string()]);
    }
    reply::integer(ctx.out, 1);
}

pub fn expire(ctx: &mut Exec<'_, '_>, req: &Request) {
    expire_generic(ctx, req, TimeUnit::Seconds, false, "expire");
}
pub fn pexpire(ctx: &mut Exec<'_, '_>, req: &Request) {
    expire_generic(ctx, req, TimeUnit::Millis, false, "pexpire");
}
pub fn expireat(ctx: &mut Exec<'_, '_>, req: &Request) {
    expire_generic(ctx, req, TimeUnit::Seconds, true, "expireat");
}
pub fn pexpireat(ctx: &mut Exec<'_, '_>, req: &Request) {
    expire_generic(ctx, req, TimeUnit::Millis, true, "pexpireat");
}

fn ttl_generic(ctx: &mut Exec<'_, '_>, req: &Request, ms: bool, absolute: bool) {
    let Some((s, id)) = ctx.read_notouch(req.arg(1)) else { return reply::integer(ctx.out, -2) };
    let Some(at) = ctx.shards[s].dbs[ctx.db].dict().entry(id).expire_at() else {
        return reply::integer(ctx.out, -1);
    };
    let ttl = if absolute { at as i64 } else { (at as i64 - ctx.now as i64).max(0) };
    reply::integer(ctx.out, if ms { ttl } else { (ttl + 500) / 1000 });
}

pub fn ttl(ctx: &mut Exec<'_, '_>, req: &Request) {
    ttl_generic(ctx, req, false, false);
}
pub fn pttl(ctx: &mut Exec<'_, '_>, req: &Request) {
    ttl_generic(ctx, req, true, false);
}
pub fn expiretime(ctx: &mut Exec<'_, '_>, req: &Request) {
    ttl_generic(ctx, req, false, true);
}
pub fn pexpiretime(ctx: &mut Exec<'_, '_>, req: &Request) {
    ttl_generic(ctx, req, true, true);
}

pub fn persist(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some((s, id)) = ctx.lookup(key) else { return reply::integer(ctx.out, 0) };
    if ctx.shards[s].dbs[ctx.db].dict().entry(id).expire_at().is_none() {
        return reply::integer(ctx.out, 0);
    }
    ctx.shards[s].dbs[ctx.db].set_expire(id, 0);
    ctx.emit(key, || argv!["PERSIST", key]);
    reply::integer(ctx.out, 1);
}

/// Takes a live key out of its database, for moving it elsewhere.
fn take(ctx: &mut Exec<'_, '_>, db: usize, key: &[u8]) -> Option<Removed> {
    let s = ctx.shard_idx(key);
    ctx.lookup_in(s, db, key)?;
    ctx.shards[s].dbs[db].remove(key)
}

fn rename_generic(ctx: &mut Exec<'_, '_>, req: &Request, nx: bool) {
    let (src, dst) = (req.arg(1), req.arg(2));
    if ctx.lookup(src).is_none() {
        return ctx.err(NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { reply::integer(ctx.out, 0) } else { reply::ok(ctx.out) };
    }
    if ctx.lookup(dst).is_some() {
        if nx {
            return reply::integer(ctx.out, 0);
        }
        ctx.delete(dst);
    }
    let r = take(ctx, ctx.db, src).expect("looked up above");
    let d = ctx.shard_idx(dst);
    ctx.shards[d].dbs[ctx.db].insert(crate::shard::bytes::SmallBytes::new(dst), r.value, r.expire_at);
    let db = ctx.db;
    ctx.note_new_key(db, dst);
    ctx.emit(src, || argv![if nx { "RENAMENX" } else { "RENAME" }, src, dst]);
    let db = ctx.db;
    ctx.announce_key_in(db, dst);
    if nx {
        reply::integer(ctx.out, 1)
    } else {
        reply::ok(ctx.out)
    }
}

pub fn rename(ctx: &mut Exec<'_, '_>, req: &Request) {
    rename_generic(ctx, req, false);
}
pub fn renamenx(ctx: &mut Exec<'_, '_>, req: &Request) {
    rename_generic(ctx, req, true);
}

/// A database index argument: integer in range.
fn db_index(ctx: &mut Exec<'_, '_>, arg: &[u8]) -> Option<usize> {
    match args::int32(arg) {
        Ok(n) if n < 0 || n as usize >= ctx.settings.databases => {
            ctx.err(DB_OUT_OF_RANGE);
            None
        }
        Ok(n) => Some(n as usize),
        Err(e) => {
            ctx.err(e);
            None
        }
    }
}

pub fn copy(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (src, dst) = (req.arg(1), req.arg(2));
    let mut replace = false;
    let mut dst_db = ctx.db;
    let mut j = 3;
    while j < req.len() {
        if is(req.arg(j), "REPLACE") {
            replace = true;
        } else if is(req.arg(j), "DB") && j + 1 < req.len() {
            let Some(d) = db_index(ctx, req.arg(j + 1)) else { return };
            dst_db = d;
            j += 1;
        } else {
            return ctx.syntax();
        }
        j += 1;
    }
    if dst_db == ctx.db && src == dst {
        return ctx.err(SAME_OBJECT);
    }
    let Some((s, id)) = ctx.read(src) else { return reply::integer(ctx.out, 0) };
    let e = ctx.shards[s].dbs[ctx.db].dict().entry(id);
    let (value, expire) = (e.value.clone(), e.expire_at().unwrap_or(0));
    let d = ctx.shard_idx(dst);
    if ctx.lookup_in(d, dst_db, dst).is_some() {
        if !replace {
            return reply::integer(ctx.out, 0);
        }
        ctx.shards[d].dbs[dst_db].remove(dst);
    }
    ctx.shards[d].dbs[dst_db].insert(crate::shard::bytes::SmallBytes::new(dst), value, expire);
    ctx.note_new_key(dst_db, dst);
    let db_arg = dst_db.to_string();
    ctx.emit(src, || argv!["COPY", src, dst, "DB", db_arg, "REPLACE"]);
    ctx.announce_key_in(dst_db, dst);
    ctx.shards[d].touched(dst_db, dst);
    reply::integer(ctx.out, 1);
}

pub fn move_(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some(dst_db) = db_index(ctx, req.arg(2)) else { return };
    if dst_db == ctx.db {
        return ctx.err(SAME_OBJECT);
    }
    if ctx.lookup(key).is_none() {
        return reply::integer(ctx.out, 0);
    }
    let s = ctx.shard_idx(key);
    if ctx.lookup_in(s, dst_db, key).is_some() {
        return reply::integer(ctx.out, 0);
    }
    let r = take(ctx, ctx.db, key).expect("looked up above");
    ctx.shards[s].dbs[dst_db].insert(r.key, r.value, r.expire_at);
    ctx.note_new_key(dst_db, key);
    let db_arg = dst_db.to_string();
    ctx.emit(key, || argv!["MOVE", key, db_arg]);
    ctx.announce_key_in(dst_db, key);
    ctx.shards[s].touched(dst_db, key);
    reply::integer(ctx.out, 1);
}

fn object_lookup(ctx: &mut Exec<'_, '_>, req: &Request) -> Option<(usize, crate::shard::dict::EntryId)> {
    let found = ctx.lookup(req.arg(2));
    if found.is_none() {
        reply::null(ctx.out, ctx.proto);
    }
    found
}

pub fn object_encoding(ctx: &mut Exec<'_, '_>, req: &Request) {
    if let Some((s, id)) = object_lookup(ctx, req) {
        let enc = ctx.shards[s].dbs[ctx.db].dict().entry(id).value.encoding();
        reply::bulk(ctx.out, enc.as_bytes());
    }
}

pub fn object_refcount(ctx: &mut Exec<'_, '_>, req: &Request) {
    if let Some((s, id)) = object_lookup(ctx, req) {
        // Redis shares the integers 0..9999 and reports them with INT_MAX references.
        let shared = matches!(ctx.shards[s].dbs[ctx.db].dict().entry(id).value, Value::Int(0..=9999));
        reply::integer(ctx.out, if shared { i32::MAX as i64 } else { 1 });
    }
}

pub fn object_idletime(ctx: &mut Exec<'_, '_>, req: &Request) {
    if let Some((s, id)) = object_lookup(ctx, req) {
        if ctx.settings.policy.lfu() {
            return ctx.err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
        }
        let sh = &ctx.shards[s];
        let idle = sh.clock.wrapping_sub(sh.dbs[ctx.db].dict().entry(id).access);
        reply::integer(ctx.out, idle as i64);
    }
}

pub fn object_freq(ctx: &mut Exec<'_, '_>, req: &Request) {
    if let Some((s, id)) = object_lookup(ctx, req) {
        let sh = &ctx.shards[s];
        let freq = match ctx.settings.policy {
            p if p.lfu() => crate::shard::evict::lfu_decayed(sh.dbs[ctx.db].dict().entry(id).access, sh.clock / 60),
            // The cache policy's sketch counts reads (saturating at 15, halved as it ages).
            crate::memory::Policy::Cache => sh.evict.sketch.frequency(sh.evict.sketch.hash(req.arg(2))),
            _ => return ctx.err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."),
        };
        reply::integer(ctx.out, freq as i64);
    }
}

pub fn dump(ctx: &mut Exec<'_, '_>, req: &Request) {
    match ctx.read(req.arg(1)) {
        None => reply::null(ctx.out, ctx.proto),
        Some((s, id)) => {
            let payload = dump::dump(&ctx.shards[s].dbs[ctx.db].dict().entry(id).value);
            reply::bulk(ctx.out, &payload);
        }
    }
}

pub fn restore(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, None::<i64>, None::<i64>);
    let mut j = 4;
    while j < req.len() {
        let opt = req.arg(j);
        let more = j + 1 < req.len();
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "ABSTTL") {
            absttl = true;
        } else if is(opt, "IDLETIME") && more && freq.is_none() {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err(NOT_INTEGER),
                Some(n) if n < 0 => return ctx.err("ERR Invalid IDLETIME value, must be >= 0"),
                Some(n) => idle = Some(n),
            }
            j += 1;
        } else if is(opt, "FREQ") && more && idle.is_none() {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err(NOT_INTEGER),
                Some(n) if !(0..=255).contains(&n) => {
                    return ctx.err("ERR Invalid FREQ value, must be >= 0 and <= 255")
                }
                Some(n) => freq = Some(n),
            }
            j += 1;
        } else {
            return ctx.syntax();
        }
        j += 1;
    }
    if !replace && ctx.lookup(key).is_some() {
        return ctx.err("BUSYKEY Target key name already exists.");
    }
    let ttl = match args::int(req.arg(2)) {
        None => return ctx.err(NOT_INTEGER),
        Some(t) if t < 0 => return ctx.err("ERR Invalid TTL value, must be >= 0"),
        Some(t) => t,
    };
    let value = match dump::restore(req.arg(3), &ctx.settings.enc) {
        Ok(v) => v,
        Err(e) => return ctx.err(&format!("ERR {e}")),
    };
    let deleted = replace && ctx.lookup(key).is_some() && ctx.delete(key);
    let at = if ttl != 0 && !absttl { ttl.saturating_add(ctx.now as i64) } else { ttl };
    if at != 0 && at <= ctx.now as i64 {
        if deleted {
            ctx.emit(key, || argv!["DEL", key]);
        }
        return reply::ok(ctx.out);
    }
    let s = ctx.shard_idx(key);
    let clock = ctx.shards[s].clock;
    let id = ctx.shards[s].dbs[ctx.db].insert(crate::shard::bytes::SmallBytes::new(key), value, at as u64);
    let db = ctx.db;
    ctx.note_new_key(db, key);
    if let Some(idle) = idle {
        ctx.shards[s].dbs[ctx.db].entry_mut(id).access = clock.wrapping_sub(idle.min(u32::MAX as i64) as u32);
    } else {
        ctx.shards[s].dbs[ctx.db].entry_mut(id).access = clock;
    }
    let (payload, abs) = (req.arg_bytes(3), at.to_string());
    ctx.emit(key, || argv!["RESTORE", key, abs, payload, "REPLACE", "ABSTTL"]);
    reply::ok(ctx.out);
}
