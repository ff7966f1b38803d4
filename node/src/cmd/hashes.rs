//! Hash commands: HSET and friends, counters, random fields, HSCAN.

use super::args::{self, is};
use super::exec::{Exec, Loc, Replied, NOT_INTEGER, SYNTAX};
use crate::argv;
use crate::shard::types::hash::Hash;
use crate::shard::value::{Kind, Value};
use crate::util::float::{incr_by_float, IncrFloatError};
use shoal_proto::{reply, Request};

/// Largest count HRANDFIELD/SRANDMEMBER/ZRANDMEMBER will produce with repetitions: the
/// reply is built in memory, and Redis would buffer it without bound.
pub const MAX_RANDOM_COUNT: u64 = 100_000_000;

fn hash<'c>(ctx: &'c Exec<'_, '_>, loc: Loc) -> &'c Hash {
    match ctx.value(loc) {
        Value::Hash(h) => h,
        _ => unreachable!("type checked"),
    }
}

fn hash_mut<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> &'c mut Hash {
    match ctx.value_mut(loc) {
        Value::Hash(h) => h,
        _ => unreachable!("type checked"),
    }
}

/// Finds the hash at `key` (`write` for a write lookup), first removing fields whose TTL has
/// passed; a hash left empty is deleted. `Err` after WRONGTYPE.
fn find_hash(ctx: &mut Exec<'_, '_>, key: &[u8], write: bool) -> Result<Option<Loc>, Replied> {
    let found = if write { ctx.write_typed(key, Kind::Hash)? } else { ctx.read_typed(key, Kind::Hash)? };
    let Some(loc) = found else { return Ok(None) };
    if hash(ctx, loc).has_ttls() {
        let now = ctx.now;
        let gone = hash_mut(ctx, loc).purge_expired(now);
        if !gone.is_empty() {
            ctx.emit(key, || {
                let mut v = argv!["HDEL", key];
                v.extend(gone.iter().map(|f| bytes::Bytes::copy_from_slice(f)));
                v
            });
            if ctx.drop_if_empty(key, loc) {
                return Ok(None);
            }
        }
    }
    Ok(Some(loc))
}

/// The hash at `key` for a write, created empty when missing.
fn hash_for_write(ctx: &mut Exec<'_, '_>, key: &[u8]) -> Option<Loc> {
    match find_hash(ctx, key, true) {
        Err(Replied) => None,
        Ok(Some(loc)) => Some(loc),
        Ok(None) => Some(ctx.create(key, Value::Hash(Hash::default()))),
    }
}

fn set_pairs(ctx: &mut Exec<'_, '_>, req: &Request) -> Option<i64> {
    if !req.len().is_multiple_of(2) {
        let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
        ctx.err(&format!("ERR wrong number of arguments for '{name}' command"));
        return None;
    }
    let key = req.arg(1);
    let loc = hash_for_write(ctx, key)?;
    let enc = ctx.settings.enc;
    let h = hash_mut(ctx, loc);
    let mut added = 0;
    for i in (2..req.len()).step_by(2) {
        added += h.set(req.arg(i), req.arg(i + 1), &enc) as i64;
    }
    ctx.emit(key, || {
        let mut v = argv!["HSET"];
        v.extend((1..req.len()).map(|i| req.arg_bytes(i)));
        v
    });
    Some(added)
}

pub fn hset(ctx: &mut Exec<'_, '_>, req: &Request) {
    if let Some(n) = set_pairs(ctx, req) {
        reply::integer(ctx.out, n);
    }
}

pub fn hmset(ctx: &mut Exec<'_, '_>, req: &Request) {
    if set_pairs(ctx, req).is_some() {
        reply::ok(ctx.out);
    }
}

pub fn hsetnx(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, field) = (req.arg(1), req.arg(2));
    let Some(loc) = hash_for_write(ctx, key) else { return };
    let enc = ctx.settings.enc;
    let h = hash_mut(ctx, loc);
    if h.get(field).is_some() {
        return reply::integer(ctx.out, 0);
    }
    h.set(field, req.arg(3), &enc);
    ctx.emit(key, || argv!["HSET", key, field, req.arg(3)]);
    reply::integer(ctx.out, 1);
}

/// The hash at a found location with the reply buffer.
fn hash_and_out<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> (&'c Hash, &'c mut bytes::BytesMut) {
    match ctx.value_and_out(loc) {
        (Value::Hash(h), out) => (h, out),
        _ => unreachable!("type checked"),
    }
}

/// Replies with the values of fields `from..` of `req`, nil for missing ones.
fn reply_fields(ctx: &mut Exec<'_, '_>, req: &Request, from: usize, array: bool) {
    let Ok(found) = find_hash(ctx, req.arg(1), false) else { return };
    let proto = ctx.proto;
    if array {
        reply::array_len(ctx.out, req.len() - from);
    }
    let Some(loc) = found else {
        (from..req.len()).for_each(|_| reply::null(ctx.out, proto));
        return;
    };
    let (h, out) = hash_and_out(ctx, loc);
    for i in from..req.len() {
        match h.get(req.arg(i)) {
            Some(v) => reply::bulk(out, v),
            None => reply::null(out, proto),
        }
    }
}

pub fn hget(ctx: &mut Exec<'_, '_>, req: &Request) {
    reply_fields(ctx, req, 2, false)
}

pub fn hmget(ctx: &mut Exec<'_, '_>, req: &Request) {
    reply_fields(ctx, req, 2, true)
}

pub fn hdel(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Ok(found) = find_hash(ctx, key, true) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let h = hash_mut(ctx, loc);
    let mut removed = Vec::new();
    for i in 2..req.len() {
        if h.remove(req.arg(i)) {
            removed.push(i);
        }
    }
    if !removed.is_empty() {
        ctx.drop_if_empty(key, loc);
        ctx.emit(key, || {
            let mut v = argv!["HDEL", key];
            v.extend(removed.iter().map(|&i| req.arg_bytes(i)));
            v
        });
    }
    reply::integer(ctx.out, removed.len() as i64);
}

pub fn hlen(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = find_hash(ctx, req.arg(1), false) else { return };
    let n = found.map_or(0, |loc| hash(ctx, loc).len());
    reply::integer(ctx.out, n as i64);
}

pub fn hstrlen(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = find_hash(ctx, req.arg(1), false) else { return };
    let n = found.and_then(|loc| hash(ctx, loc).get(req.arg(2))).map_or(0, |v| v.len());
    reply::integer(ctx.out, n as i64);
}

pub fn hexists(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = find_hash(ctx, req.arg(1), false) else { return };
    let n = found.is_some_and(|loc| hash(ctx, loc).get(req.arg(2)).is_some());
    reply::integer(ctx.out, n as i64);
}

/// HKEYS, HVALS, HGETALL: which parts of each pair to send.
fn getall(ctx: &mut Exec<'_, '_>, req: &Request, keys: bool, vals: bool) {
    let Ok(found) = find_hash(ctx, req.arg(1), false) else { return };
    let Some(loc) = found else {
        if keys && vals {
            return reply::map_len(ctx.out, ctx.proto, 0);
        }
        return reply::array_len(ctx.out, 0);
    };
    let n = hash(ctx, loc).len();
    if keys && vals {
        reply::map_len(ctx.out, ctx.proto, n);
    } else {
        reply::array_len(ctx.out, n);
    }
    let (h, out) = hash_and_out(ctx, loc);
    h.for_each(|f, v| {
        if keys {
            reply::bulk(out, f);
        }
        if vals {
            reply::bulk(out, v);
        }
    });
}

pub fn hkeys(ctx: &mut Exec<'_, '_>, req: &Request) {
    getall(ctx, req, true, false)
}

pub fn hvals(ctx: &mut Exec<'_, '_>, req: &Request) {
    getall(ctx, req, false, true)
}

pub fn hgetall(ctx: &mut Exec<'_, '_>, req: &Request) {
    getall(ctx, req, true, true)
}

pub fn hincrby(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, field) = (req.arg(1), req.arg(2));
    let Some(incr) = args::int(req.arg(3)) else { return ctx.err(NOT_INTEGER) };
    let Some(loc) = hash_for_write(ctx, key) else { return };
    let current = match hash(ctx, loc).get(field) {
        None => 0,
        Some(v) => match args::int(v) {
            Some(n) => n,
            None => return abandon(ctx, key, loc, "ERR hash value is not an integer"),
        },
    };
    let Some(new) = current.checked_add(incr) else {
        return abandon(ctx, key, loc, "ERR increment or decrement would overflow");
    };
    let enc = ctx.settings.enc;
    let mut buf = itoa::Buffer::new();
    let text = buf.format(new);
    hash_mut(ctx, loc).set(field, text.as_bytes(), &enc);
    ctx.emit(key, || argv!["HSET", key, field, text]);
    reply::integer(ctx.out, new);
}

/// Replies with an error, removing the empty hash a failed write may have created.
fn abandon(ctx: &mut Exec<'_, '_>, key: &[u8], loc: Loc, msg: &str) {
    ctx.drop_if_empty(key, loc);
    ctx.err(msg);
}

pub fn hincrbyfloat(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, field, incr) = (req.arg(1), req.arg(2), req.arg(3));
    // The increment is checked before the key, as Redis does.
    match incr_by_float(Some(b"0"), incr) {
        Err(IncrFloatError::IncrNotFloat) => return ctx.err(super::exec::NOT_FLOAT),
        Err(_) => return ctx.err("ERR value is NaN or Infinity"),
        Ok(_) => {}
    }
    let Some(loc) = hash_for_write(ctx, key) else { return };
    let result = incr_by_float(hash(ctx, loc).get(field).or(Some(b"0")), incr);
    match result {
        Ok(text) => {
            let enc = ctx.settings.enc;
            hash_mut(ctx, loc).set(field, &text, &enc);
            ctx.emit(key, || argv!["HSET", key, field, text]);
            reply::bulk(ctx.out, &text);
        }
        Err(IncrFloatError::ValueNotFloat) => abandon(ctx, key, loc, "ERR hash value is not a float"),
        Err(_) => abandon(ctx, key, loc, "ERR increment would produce NaN or Infinity"),
    }
}

/// Parses `count [option]` of HRANDFIELD and ZRANDMEMBER (`option` is WITHVALUES or
/// WITHSCORES) in Redis's order: the count, then the option, then the count's range.
pub fn random_count_with_option(ctx: &mut Exec<'_, '_>, req: &Request, option: &str) -> Option<(u64, bool)> {
    parse_count(ctx, req.arg(2))?;
    let paired = req.len() == 4 && is(req.arg(3), option);
    if req.len() > 4 || (req.len() == 4 && !paired) {
        ctx.err(SYNTAX);
        return None;
    }
    random_count(ctx, req.arg(2), paired)
}

/// A count in Redis's `-LONG_MAX..=LONG_MAX`.
fn parse_count(ctx: &mut Exec<'_, '_>, arg: &[u8]) -> Option<i64> {
    match args::int(arg) {
        None => {
            ctx.err(NOT_INTEGER);
            None
        }
        Some(i64::MIN) => {
            ctx.err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
            None
        }
        Some(l) => Some(l),
    }
}

/// Parses the count of HRANDFIELD, SRANDMEMBER, ZRANDMEMBER: (count, unique), or an error
/// already sent. `with_pairs` halves the range, as Redis does for WITHVALUES/WITHSCORES.
pub fn random_count(ctx: &mut Exec<'_, '_>, arg: &[u8], with_pairs: bool) -> Option<(u64, bool)> {
    let l = parse_count(ctx, arg)?;
    if with_pairs && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        ctx.err("ERR value is out of range");
        return None;
    }
    if l < 0 && l.unsigned_abs() > MAX_RANDOM_COUNT {
        ctx.err("ERR value is out of range");
        return None;
    }
    Some((l.unsigned_abs(), l >= 0))
}

pub fn hrandfield(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    if req.len() == 2 {
        let Ok(found) = find_hash(ctx, key, false) else { return };
        let mut rng = rand::thread_rng();
        match found.and_then(|loc| hash(ctx, loc).random(&mut rng)) {
            Some((f, _)) => {
                let f = f.to_vec();
                reply::bulk(ctx.out, &f)
            }
            None => reply::null(ctx.out, ctx.proto),
        }
        return;
    }
    let Some((count, unique)) = random_count_with_option(ctx, req, "WITHVALUES") else { return };
    let withvalues = req.len() == 4;
    let Ok(found) = find_hash(ctx, key, false) else { return };
    let Some(loc) = found else { return reply::array_len(ctx.out, 0) };
    let pairs = random_pairs(hash(ctx, loc), count, unique);
    let resp3 = ctx.proto.is_resp3();
    reply::array_len(ctx.out, if withvalues && !resp3 { pairs.len() * 2 } else { pairs.len() });
    for (f, v) in pairs {
        if withvalues && resp3 {
            reply::array_len(ctx.out, 2);
        }
        reply::bulk(ctx.out, &f);
        if withvalues {
            reply::bulk(ctx.out, &v);
        }
    }
}

type Pair = (Vec<u8>, Vec<u8>);

/// `count` random pairs: with repetitions unless `unique`, where a count at least the size
/// returns the whole hash.
fn random_pairs(h: &Hash, count: u64, unique: bool) -> Vec<Pair> {
    let mut rng = rand::thread_rng();
    let size = h.len() as u64;
    let mut out = Vec::new();
    if !unique || count == 1 {
        for _ in 0..count {
            if let Some((f, v)) = h.random(&mut rng) {
                out.push((f.to_vec(), v.to_vec()));
            }
        }
        return out;
    }
    let mut all = Vec::with_capacity(size as usize);
    h.for_each(|f, v| all.push((f.to_vec(), v.to_vec())));
    if count < size {
        use rand::seq::SliceRandom;
        all.partial_shuffle(&mut rng, count as usize);
        all.truncate(count as usize);
    }
    all
}

pub fn hscan(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some((loc, o)) = super::scan::start(ctx, req, Kind::Hash, true) else { return };
    let h = hash(ctx, loc);
    let (cursor, items) = super::scan::collect(&o, |c, visit| h.scan(c, |f, v| visit(f, Some(v))));
    super::scan::write(ctx, &o, true, cursor, &items);
}

// ---------------------------------------------------------------------------------------
// Field expiry (Redis 7.4)

/// Latest expiry a field may have, as Redis 7.4 bounds it (`HFE_MAX_ABS_TIME_MSEC`).
const MAX_FIELD_EXPIRE_MS: i64 = ((1i64 << 48) - 1) >> 2;

/// Parses `FIELDS numfields field...` with `FIELDS` at `at`; the range of field arguments.
fn fields_arg(ctx: &mut Exec<'_, '_>, req: &Request, at: usize) -> Option<std::ops::Range<usize>> {
    if at >= req.len() || !is(req.arg(at), "FIELDS") {
        ctx.err("ERR Mandatory argument FIELDS is missing or not at the right position");
        return None;
    }
    let n = match req.args().nth(at + 1).and_then(args::int) {
        Some(n) if n >= 1 => n as usize,
        _ => {
            ctx.err("ERR Number of fields must be a positive integer");
            return None;
        }
    };
    if n != req.len() - at - 2 {
        ctx.err("ERR The `numfields` parameter must match the number of arguments");
        return None;
    }
    Some(at + 2..req.len())
}

/// HEXPIRE/HPEXPIRE/HEXPIREAT/HPEXPIREAT key time [NX|XX|GT|LT] FIELDS n field...
fn hexpire_generic(ctx: &mut Exec<'_, '_>, req: &Request, millis: bool, absolute: bool) {
    let key = req.arg(1);
    let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
    let Some(mut t) = args::int(req.arg(2)) else { return ctx.err(NOT_INTEGER) };
    if t < 0 {
        return ctx.err("ERR invalid expire time, must be >= 0");
    }
    let bad_time = format!("ERR invalid expire time in '{name}' command");
    if !millis {
        if t > MAX_FIELD_EXPIRE_MS / 1000 {
            return ctx.err(&bad_time);
        }
        t *= 1000;
    }
    let base = if absolute { 0 } else { ctx.now as i64 };
    if t > MAX_FIELD_EXPIRE_MS - base {
        return ctx.err(&bad_time);
    }
    let at = (t + base) as u64;
    let mut fields_at = 3;
    let cond = req.args().nth(3).and_then(|a| ["NX", "XX", "GT", "LT"].into_iter().find(|c| is(a, c)));
    if cond.is_some() {
        fields_at = 4;
    }
    let Some(fields) = fields_arg(ctx, req, fields_at) else { return };
    let Ok(found) = find_hash(ctx, key, true) else { return };
    let Some(loc) = found else {
        reply::array_len(ctx.out, fields.len());
        fields.for_each(|_| reply::integer(ctx.out, -2));
        return;
    };
    let now = ctx.now;
    let mut results = Vec::with_capacity(fields.len());
    let mut deleted = Vec::new();
    let mut set = Vec::new();
    let h = hash_mut(ctx, loc);
    for i in fields {
        let f = req.arg(i);
        let Some(cur) = h.field_expire(f) else {
            results.push(-2);
            continue;
        };
        // A time already past deletes the field at once.
        if at <= now {
            h.remove(f);
            deleted.push(i);
            results.push(2);
            continue;
        }
        let ok = match cond {
            Some("NX") => cur == 0,
            Some("XX") => cur != 0,
            Some("GT") => cur != 0 && at > cur,
            Some("LT") => cur == 0 || at < cur,
            _ => true,
        };
        if !ok {
            results.push(0);
            continue;
        }
        h.set_field_expire(f, at);
        set.push(i);
        results.push(1);
    }
    let has_ttls = h.has_ttls();
    if !deleted.is_empty() {
        ctx.emit(key, || {
            let mut v = argv!["HDEL", key];
            v.extend(deleted.iter().map(|&i| req.arg_bytes(i)));
            v
        });
    }
    if !set.is_empty() {
        let at_text = at.to_string();
        ctx.emit(key, || {
            let mut v = argv!["HPEXPIREAT", key, at_text, "FIELDS", set.len().to_string()];
            v.extend(set.iter().map(|&i| req.arg_bytes(i)));
            v
        });
    }
    if has_ttls {
        ctx.db_of(key).hash_ttl_keys.insert(crate::shard::bytes::SmallBytes::new(key));
    }
    ctx.drop_if_empty(key, loc);
    reply::array_len(ctx.out, results.len());
    for r in results {
        reply::integer(ctx.out, r);
    }
}

pub fn hexpire(ctx: &mut Exec<'_, '_>, req: &Request) {
    hexpire_generic(ctx, req, false, false)
}
pub fn hpexpire(ctx: &mut Exec<'_, '_>, req: &Request) {
    hexpire_generic(ctx, req, true, false)
}
pub fn hexpireat(ctx: &mut Exec<'_, '_>, req: &Request) {
    hexpire_generic(ctx, req, false, true)
}
pub fn hpexpireat(ctx: &mut Exec<'_, '_>, req: &Request) {
    hexpire_generic(ctx, req, true, true)
}

/// What HTTL and friends report for a field's expiry.
#[derive(Clone, Copy)]
enum TtlForm {
    Ttl,
    PTtl,
    ExpireTime,
    PExpireTime,
}

fn httl_generic(ctx: &mut Exec<'_, '_>, req: &Request, form: TtlForm) {
    let Some(fields) = fields_arg(ctx, req, 2) else { return };
    let Ok(found) = find_hash(ctx, req.arg(1), false) else { return };
    let now = ctx.now;
    let values: Vec<i64> = fields
        .map(|i| match found.and_then(|loc| hash(ctx, loc).field_expire(req.arg(i))) {
            None => -2,
            Some(0) => -1,
            Some(at) => match form {
                TtlForm::Ttl => (at.saturating_sub(now) as i64 + 999) / 1000,
                TtlForm::PTtl => at.saturating_sub(now) as i64,
                TtlForm::ExpireTime => (at / 1000) as i64,
                TtlForm::PExpireTime => at as i64,
            },
        })
        .collect();
    reply::array_len(ctx.out, values.len());
    for v in values {
        reply::integer(ctx.out, v);
    }
}

pub fn httl(ctx: &mut Exec<'_, '_>, req: &Request) {
    httl_generic(ctx, req, TtlForm::Ttl)
}
pub fn hpttl(ctx: &mut Exec<'_, '_>, req: &Request) {
    httl_generic(ctx, req, TtlForm::PTtl)
}
pub fn hexpiretime(ctx: &mut Exec<'_, '_>, req: &Request) {
    httl_generic(ctx, req, TtlForm::ExpireTime)
}
pub fn hpexpiretime(ctx: &mut Exec<'_, '_>, req: &Request) {
    httl_generic(ctx, req, TtlForm::PExpireTime)
}

pub fn hpersist(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some(fields) = fields_arg(ctx, req, 2) else { return };
    let Ok(found) = find_hash(ctx, key, true) else { return };
    let mut results = Vec::with_capacity(fields.len());
    let mut persisted = Vec::new();
    for i in fields {
        let r = match found {
            None => -2,
            Some(loc) => match hash(ctx, loc).field_expire(req.arg(i)) {
                None => -2,
                Some(0) => -1,
                Some(_) => {
                    hash_mut(ctx, loc).set_field_expire(req.arg(i), 0);
                    persisted.push(i);
                    1
                }
            },
        };
        results.push(r);
    }
    if !persisted.is_empty() {
        ctx.emit(key, || {
            let mut v = argv!["HPERSIST", key, "FIELDS", persisted.len().to_string()];
            v.extend(persisted.iter().map(|&i| req.arg_bytes(i)));
            v
        });
    }
    reply::array_len(ctx.out, results.len());
    for r in results {
        reply::integer(ctx.out, r);
    }
}
