//! String commands: GET, SET and its variants, counters, ranges, APPEND, LCS.

use super::args::{self, expire_at, is, TimeUnit};
use super::exec::{Exec, Replied, NOT_INTEGER, STRING_TOO_LONG};
use crate::argv;
use crate::shard::bytes::SmallBytes;
use crate::shard::dict::EntryId;
use crate::shard::value::Value;
use crate::util::float::{incr_by_float, IncrFloatError};
use shoal_proto::{reply, Request};

/// What a write does to the key's TTL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ttl {
    Keep,
    Clear,
    At(u64),
}

impl Ttl {
    fn as_option(self) -> Option<u64> {
        match self {
            Ttl::Keep => None,
            Ttl::Clear => Some(0),
            Ttl::At(t) => Some(t),
        }
    }
}

/// Stores a string value under `key`.
pub fn store(ctx: &mut Exec<'_, '_>, key: &[u8], value: Value, ttl: Ttl) {
    let new = ctx.notifying() && ctx.db_of(key).dict().find_no_step(key).is_none();
    ctx.db_of(key).set(key, value, ttl.as_option());
    if new {
        let db = ctx.db;
        ctx.note_new_key(db, key);
    }
}

/// Looks a key up for reading; `Err` when it holds a non-string (WRONGTYPE already sent).
fn read_string(ctx: &mut Exec<'_, '_>, key: &[u8]) -> Result<Option<(usize, EntryId)>, Replied> {
    match ctx.read(key) {
        None => Ok(None),
        Some((s, id)) if ctx.shards[s].dbs[ctx.db].dict().entry(id).value.is_string() => Ok(Some((s, id))),
        Some(_) => {
            ctx.wrongtype();
            Err(Replied)
        }
    }
}

/// The value of a found entry.
macro_rules! value {
    ($ctx:expr, $s:expr, $id:expr) => {
        $ctx.shards[$s].dbs[$ctx.db].dict().entry($id).value
    };
}

pub fn get(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    match ctx.read(key) {
        None => reply::null(ctx.out, ctx.proto),
        Some((s, id)) => {
            let v = &ctx.shards[s].dbs[ctx.db].dict().entry(id).value;
            if v.is_string() {
                v.write_bulk(ctx.out);
            } else {
                ctx.wrongtype();
            }
        }
    }
}

#[derive(Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// (argument index, unit, absolute)
    expire: Option<(usize, TimeUnit, bool)>,
}

/// Redis's `parseExtendedStringArgumentsOrReply` for SET (`for_set`) and GETEX.
fn parse_set_options(req: &Request, from: usize, for_set: bool) -> Option<SetOptions> {
    let mut o = SetOptions::default();
    let mut j = from;
    while j < req.len() {
        let a = req.arg(j);
        let has_next = j + 1 < req.len();
        let exp_kind = o.expire.map(|(_, u, abs)| (u, abs));
        if for_set && is(a, "NX") && !o.xx {
            o.nx = true;
        } else if for_set && is(a, "XX") && !o.nx {
            o.xx = true;
        } else if for_set && is(a, "GET") {
            o.get = true;
        } else if for_set && is(a, "KEEPTTL") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !for_set && is(a, "PERSIST") && o.expire.is_none() && !o.keepttl {
            o.persist = true;
        } else if let Some((unit, abs)) = expire_option(a) {
            // The same option may repeat (the last wins); two different ones conflict.
            if o.keepttl || o.persist || !has_next || exp_kind.is_some_and(|k| k != (unit, abs)) {
                return None;
            }
            o.expire = Some((j + 1, unit, abs));
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some(o)
}

fn expire_option(a: &[u8]) -> Option<(TimeUnit, bool)> {
    if is(a, "EX") {
        Some((TimeUnit::Seconds, false))
    } else if is(a, "PX") {
        Some((TimeUnit::Millis, false))
    } else if is(a, "EXAT") {
        Some((TimeUnit::Seconds, true))
    } else if is(a, "PXAT") {
        Some((TimeUnit::Millis, true))
    } else {
        None
    }
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry, or an error reply.
fn expire_arg(ctx: &mut Exec<'_, '_>, arg: &[u8], unit: TimeUnit, absolute: bool, cmd: &str) -> Option<u64> {
    let Some(v) = args::int(arg) else {
        ctx.err(NOT_INTEGER);
        return None;
    };
    let at = if v <= 0 { None } else { expire_at(v, unit, absolute, ctx.now) };
    match at {
        Some(at) if at > 0 => Some(at as u64),
        _ => {
            ctx.err(&format!("ERR invalid expire time in '{cmd}' command"));
            None
        }
    }
}

/// Writes `value` to `key`, then expires it at once if its expiry has already passed.
fn set_with_ttl(ctx: &mut Exec<'_, '_>, key: &[u8], value: &[u8], ttl: Ttl) {
    store(ctx, key, Value::string(value), ttl);
    if let Ttl::At(at) = ttl {
        if at <= ctx.now {
            ctx.delete(key);
        }
    }
    ctx.emit(key, || match ttl {
        Ttl::At(at) => argv!["SET", key, value, "PXAT", at.to_string()],
        Ttl::Keep => argv!["SET", key, value, "KEEPTTL"],
        Ttl::Clear => argv!["SET", key, value],
    });
}

pub fn set(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(o) = parse_set_options(req, 3, true) else { return ctx.syntax() };
    let (key, value) = (req.arg(1), req.arg(2));
    let mut ttl = if o.keepttl { Ttl::Keep } else { Ttl::Clear };
    if let Some((i, unit, abs)) = o.expire {
        match expire_arg(ctx, req.arg(i), unit, abs, "set") {
            Some(at) => ttl = Ttl::At(at),
            None => return,
        }
    }
    let found = if o.get {
        match read_string(ctx, key) {
            Err(Replied) => return,
            Ok(None) => {
                reply::null(ctx.out, ctx.proto);
                false
            }
            Ok(Some((s, id))) => {
                value!(ctx, s, id).write_bulk(ctx.out);
                true
            }
        }
    } else {
        ctx.lookup(key).is_some()
    };
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            reply::null(ctx.out, ctx.proto);
        }
        return;
    }
    set_with_ttl(ctx, key, value, ttl);
    if !o.get {
        reply::ok(ctx.out);
    }
}

pub fn setnx(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    if ctx.lookup(key).is_some() {
        return reply::integer(ctx.out, 0);
    }
    set_with_ttl(ctx, key, req.arg(2), Ttl::Clear);
    reply::integer(ctx.out, 1);
}

fn setex_generic(ctx: &mut Exec<'_, '_>, req: &Request, unit: TimeUnit, cmd: &str) {
    let Some(at) = expire_arg(ctx, req.arg(2), unit, false, cmd) else { return };
    set_with_ttl(ctx, req.arg(1), req.arg(3), Ttl::At(at));
    reply::ok(ctx.out);
}

pub fn setex(ctx: &mut Exec<'_, '_>, req: &Request) {
    setex_generic(ctx, req, TimeUnit::Seconds, "setex");
}

pub fn psetex(ctx: &mut Exec<'_, '_>, req: &Request) {
    setex_generic(ctx, req, TimeUnit::Millis, "psetex");
}

pub fn mget(ctx: &mut Exec<'_, '_>, req: &Request) {
    reply::array_len(ctx.out, req.len() - 1);
    for i in 1..req.len() {
        let key = req.arg(i);
        match ctx.read(key) {
            Some((s, id)) if ctx.shards[s].dbs[ctx.db].dict().entry(id).value.is_string() => {
                ctx.shards[s].dbs[ctx.db].dict().entry(id).value.write_bulk(ctx.out)
            }
            _ => reply::null(ctx.out, ctx.proto),
        }
    }
}

pub fn mset(ctx: &mut Exec<'_, '_>, req: &Request) {
    if req.len().is_multiple_of(2) {
        return ctx.err("ERR wrong number of arguments for 'mset' command");
    }
    for i in (1..req.len()).step_by(2) {
        set_with_ttl(ctx, req.arg(i), req.arg(i + 1), Ttl::Clear);
    }
    reply::ok(ctx.out);
}

pub fn msetnx(ctx: &mut Exec<'_, '_>, req: &Request) {
    if req.len().is_multiple_of(2) {
        return ctx.err("ERR wrong number of arguments for 'msetnx' command");
    }
    for i in (1..req.len()).step_by(2) {
        if ctx.lookup(req.arg(i)).is_some() {
            return reply::integer(ctx.out, 0);
        }
    }
    for i in (1..req.len()).step_by(2) {
        set_with_ttl(ctx, req.arg(i), req.arg(i + 1), Ttl::Clear);
    }
    reply::integer(ctx.out, 1);
}

pub fn getset(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    match read_string(ctx, key) {
        Err(Replied) => return,
        Ok(None) => reply::null(ctx.out, ctx.proto),
        Ok(Some((s, id))) => value!(ctx, s, id).write_bulk(ctx.out),
    }
    set_with_ttl(ctx, key, req.arg(2), Ttl::Clear);
}

pub fn getdel(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    match read_string(ctx, key) {
        Err(Replied) => {}
        Ok(None) => reply::null(ctx.out, ctx.proto),
        Ok(Some((s, id))) => {
            value!(ctx, s, id).write_bulk(ctx.out);
            ctx.delete(key);
            ctx.emit(key, || argv!["DEL", key]);
        }
    }
}

pub fn getex(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(o) = parse_set_options(req, 2, false) else { return ctx.syntax() };
    let key = req.arg(1);
    let Some((s, id)) = ctx.read(key) else {
        return reply::null(ctx.out, ctx.proto);
    };
    if !ctx.shards[s].dbs[ctx.db].dict().entry(id).value.is_string() {
        return ctx.wrongtype();
    }
    let mut at = None;
    if let Some((i, unit, abs)) = o.expire {
        match expire_arg(ctx, req.arg(i), unit, abs, "getex") {
            Some(t) => at = Some((t, abs)),
            None => return,
        }
    }
    let db = ctx.db;
    ctx.shards[s].dbs[db].dict().entry(id).value.write_bulk(ctx.out);
    match at {
        Some((t, true)) if t <= ctx.now => {
            ctx.delete(key);
            ctx.emit(key, || argv!["DEL", key]);
        }
        Some((t, _)) => {
            ctx.shards[s].dbs[db].set_expire(id, t);
            ctx.emit(key, || argv!["PEXPIREAT", key, t.to_string()]);
        }
        None if o.persist && ctx.shards[s].dbs[db].dict().entry(id).expire_at().is_some() => {
            ctx.shards[s].dbs[db].set_expire(id, 0);
            ctx.emit(key, || argv!["PERSIST", key]);
        }
        None => {}
    }
}

pub fn append(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, extra) = (req.arg(1), req.arg(2));
    let len = match ctx.lookup(key) {
        None => {
            store(ctx, key, Value::string(extra), Ttl::Clear);
            extra.len()
        }
        Some((s, id)) => {
            let max = ctx.settings.proto_max_bulk_len;
            let v = &mut ctx.shards[s].dbs[ctx.db].entry_mut(id).value;
            if !v.is_string() {
                return ctx.wrongtype();
            }
            if v.str_len() + extra.len() > max {
                return ctx.err(STRING_TOO_LONG);
            }
            let buf = v.make_raw();
            buf.extend_from_slice(extra);
            buf.len()
        }
    };
    ctx.emit(key, || argv!["APPEND", key, extra]);
    reply::integer(ctx.out, len as i64);
}

pub fn strlen(ctx: &mut Exec<'_, '_>, req: &Request) {
    match read_string(ctx, req.arg(1)) {
        Err(Replied) => {}
        Ok(None) => reply::integer(ctx.out, 0),
        Ok(Some((s, id))) => {
            let n = value!(ctx, s, id).str_len() as i64;
            reply::integer(ctx.out, n)
        }
    }
}

pub fn getrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (Some(mut start), Some(mut end)) = (args::int(req.arg(2)), args::int(req.arg(3))) else {
        return ctx.err(NOT_INTEGER);
    };
    let (s, id) = match read_string(ctx, req.arg(1)) {
        Err(Replied) => return,
        Ok(None) => return reply::bulk(ctx.out, b""),
        Ok(Some(found)) => found,
    };
    let v = &value!(ctx, s, id);
    let mut scratch = itoa::Buffer::new();
    let s = v.str_bytes(&mut scratch).unwrap_or_default();
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return reply::bulk(ctx.out, b"");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return reply::bulk(ctx.out, b"");
    }
    let piece = &s[start as usize..=end as usize];
    reply::bulk(ctx.out, piece);
}

pub fn setrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, value) = (req.arg(1), req.arg(3));
    let Some(offset) = args::int(req.arg(2)) else { return ctx.err(NOT_INTEGER) };
    if offset < 0 {
        return ctx.err("ERR offset is out of range");
    }
    let offset = offset as usize;
    let max = ctx.settings.proto_max_bulk_len;
    let len = match ctx.lookup(key) {
        None => {
            if value.is_empty() {
                return reply::integer(ctx.out, 0);
            }
            if offset.saturating_add(value.len()) > max {
                return ctx.err(STRING_TOO_LONG);
            }
            let mut buf = vec![0u8; offset + value.len()];
            buf[offset..].copy_from_slice(value);
            let n = buf.len();
            store(ctx, key, Value::Raw(Box::new(buf)), Ttl::Clear);
            n
        }
        Some((s, id)) => {
            let v = &mut ctx.shards[s].dbs[ctx.db].entry_mut(id).value;
            if !v.is_string() {
                return ctx.wrongtype();
            }
            if value.is_empty() {
                let n = v.str_len() as i64;
                return reply::integer(ctx.out, n);
            }
            if offset.saturating_add(value.len()) > max {
                return ctx.err(STRING_TOO_LONG);
            }
            let buf = v.make_raw();
            if buf.len() < offset + value.len() {
                buf.resize(offset + value.len(), 0);
            }
            buf[offset..offset + value.len()].copy_from_slice(value);
            buf.len()
        }
    };
    ctx.emit(key, || argv!["SETRANGE", key, offset.to_string(), value]);
    reply::integer(ctx.out, len as i64);
}

fn incr_generic(ctx: &mut Exec<'_, '_>, key: &[u8], by: i64) {
    let found = ctx.lookup(key);
    let current = match found {
        None => 0,
        Some((s, id)) => match &ctx.shards[s].dbs[ctx.db].dict().entry(id).value {
            Value::Int(n) => *n,
            v if v.is_string() => match args::int(&v.to_vec()) {
                Some(n) => n,
                None => return ctx.err(NOT_INTEGER),
            },
            _ => return ctx.wrongtype(),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return ctx.err("ERR increment or decrement would overflow");
    };
    match found {
        Some((s, id)) => ctx.shards[s].dbs[ctx.db].entry_mut(id).value = Value::Int(new),
        None => store(ctx, key, Value::Int(new), Ttl::Clear),
    }
    ctx.emit(key, || argv!["SET", key, new.to_string(), "KEEPTTL"]);
    reply::integer(ctx.out, new);
}

pub fn incr(ctx: &mut Exec<'_, '_>, req: &Request) {
    incr_generic(ctx, req.arg(1), 1);
}

pub fn decr(ctx: &mut Exec<'_, '_>, req: &Request) {
    incr_generic(ctx, req.arg(1), -1);
}

pub fn incrby(ctx: &mut Exec<'_, '_>, req: &Request) {
    match args::int(req.arg(2)) {
        Some(by) => incr_generic(ctx, req.arg(1), by),
        None => ctx.err(NOT_INTEGER),
    }
}

pub fn decrby(ctx: &mut Exec<'_, '_>, req: &Request) {
    match args::int(req.arg(2)) {
        Some(i64::MIN) => ctx.err("ERR decrement would overflow"),
        Some(by) => incr_generic(ctx, req.arg(1), -by),
        None => ctx.err(NOT_INTEGER),
    }
}

pub fn incrbyfloat(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let found = ctx.lookup(key);
    let current = match found {
        None => None,
        Some((s, id)) => {
            let v = &ctx.shards[s].dbs[ctx.db].dict().entry(id).value;
            if !v.is_string() {
                return ctx.wrongtype();
            }
            Some(v.to_vec())
        }
    };
    let result = match incr_by_float(current.as_deref(), req.arg(2)) {
        Ok(r) => r,
        Err(IncrFloatError::NanOrInfinity) => return ctx.err("ERR increment would produce NaN or Infinity"),
        Err(_) => return ctx.err(super::exec::NOT_FLOAT),
    };
    // Redis keeps the result as a string even when it reads as an integer ("3"): it reports
    // embstr, and INCR on it parses it again.
    let value = Value::Str(SmallBytes::new(&result));
    match found {
        Some((s, id)) => ctx.shards[s].dbs[ctx.db].entry_mut(id).value = value,
        None => store(ctx, key, value, Ttl::Clear),
    }
    reply::bulk(ctx.out, &result);
    ctx.emit(key, || argv!["SET", key, result, "KEEPTTL"]);
}

pub fn lcs(ctx: &mut Exec<'_, '_>, req: &Request) {
    let mut strs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (i, slot) in strs.iter_mut().enumerate() {
        if let Some((s, id)) = ctx.read(req.arg(1 + i)) {
            let v = &ctx.shards[s].dbs[ctx.db].dict().entry(id).value;
            if !v.is_string() {
                return ctx.err("ERR The specified keys must contain string values");
            }
            *slot = v.to_vec();
        }
    }
    let (mut getidx, mut getlen, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < req.len() {
        let opt = req.arg(j);
        if is(opt, "IDX") {
            getidx = true;
        } else if is(opt, "LEN") {
            getlen = true;
        } else if is(opt, "WITHMATCHLEN") {
            withmatchlen = true;
        } else if is(opt, "MINMATCHLEN") && j + 1 < req.len() {
            match args::int(req.arg(j + 1)) {
                Some(n) => minmatchlen = n.max(0),
                None => return ctx.err(NOT_INTEGER),
            }
            j += 1;
        } else {
            return ctx.syntax();
        }
        j += 1;
    }
    if getidx && getlen {
        return ctx.err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (a, b) = (&strs[0], &strs[1]);
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > ctx.settings.proto_max_bulk_len as u64 {
        return ctx.err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for jj in 1..=blen {
            t[i * w + jj] = if a[i - 1] == b[jj - 1] {
                t[(i - 1) * w + jj - 1] + 1
            } else {
                t[(i - 1) * w + jj].max(t[i * w + jj - 1])
            };
        }
    }
    let total = t[alen * w + blen] as usize;
    let mut idx = total;
    let mut result = vec![0u8; total];
    let mut matches: Vec<[usize; 5]> = Vec::new();
    let (mut ars, mut are, mut brs, mut bre) = (alen, 0usize, 0usize, 0usize);
    let (mut i, mut jj) = (alen, blen);
    let compute = getidx || !getlen;
    while compute && i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if ars == alen {
                (ars, are, brs, bre) = (i - 1, i - 1, jj - 1, jj - 1);
            } else if ars == i && brs == jj {
                ars -= 1;
                brs -= 1;
            } else {
                emit = true;
            }
            if ars == 0 || brs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if t[(i - 1) * w + jj] > t[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if ars != alen {
                emit = true;
            }
        }
        let match_len = are.wrapping_sub(ars).wrapping_add(1);
        if emit {
            if minmatchlen == 0 || match_len as i64 >= minmatchlen {
                matches.push([ars, are, brs, bre, match_len]);
            }
            ars = alen;
        }
    }
    if getidx {
        reply::map_len(ctx.out, ctx.proto, 2);
        reply::bulk(ctx.out, b"matches");
        reply::array_len(ctx.out, matches.len());
        for m in &matches {
            reply::array_len(ctx.out, 2 + withmatchlen as usize);
            reply::array_len(ctx.out, 2);
            reply::integer(ctx.out, m[0] as i64);
            reply::integer(ctx.out, m[1] as i64);
            reply::array_len(ctx.out, 2);
            reply::integer(ctx.out, m[2] as i64);
            reply::integer(ctx.out, m[3] as i64);
            if withmatchlen {
                reply::integer(ctx.out, m[4] as i64);
            }
        }
        reply::bulk(ctx.out, b"len");
        reply::integer(ctx.out, total as i64);
    } else if getlen {
        reply::integer(ctx.out, total as i64);
    } else {
        reply::bulk(ctx.out, &result);
    }
}
