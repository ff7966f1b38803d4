//! Counters: incr and decr (text and binary, whose misses may create the item) and meta
//! arithmetic (`ma`). Values are unsigned 64-bit decimals: incr wraps, decr stops at 0.

use super::{
    answer, client_error, count, find, meta_of, meta_returns, record_set, set_ttl_of, ttl_secs, wants_cas, written,
    Outcome,
};
use crate::argv;
use crate::cmd::exec::{Exec, Loc};
use crate::shard::stats::McStat;
use crate::shard::value::Value;
use shoal_proto::memcache::binary::{self, status};
use shoal_proto::memcache::{expiry_ms, parse_u64, reply as mc, McRequest, Op, Wire};

const NON_NUMERIC: &str = "cannot increment or decrement non-numeric value";

/// The binary protocol's exptime that forbids creating the item on a miss.
const NO_CREATE: i64 = 0xffff_ffff;

/// How a counter request came out.
enum Count {
    /// The new value and the item's CAS value.
    Done(u64, u64),
    Missing,
    Mismatch,
    NotNumeric,
}

/// Applies `delta` to the item at `loc`.
fn apply(ctx: &mut Exec<'_, '_>, r: &McRequest, loc: Loc, decr: bool, delta: u64, compare: Option<u64>) -> Count {
    let key = r.key();
    let m = meta_of(ctx, loc);
    if compare.is_some_and(|c| m.cas == 0 || c != m.cas) {
        return Count::Mismatch;
    }
    let current = match ctx.value(loc) {
        Value::Int(n) if *n >= 0 => *n as u64,
        v => {
            let mut scratch = itoa::Buffer::new();
            let bytes = v.str_bytes(&mut scratch).unwrap_or_default();
            // memcached pads a shrunken number with spaces; they are not part of it.
            let digits = bytes.strip_suffix(b" ").map_or(bytes, |b| b.trim_ascii_end());
            match parse_u64(digits) {
                Some(n) => n,
                None => return Count::NotNumeric,
            }
        }
    };
    let new = if decr { current.saturating_sub(delta) } else { current.wrapping_add(delta) };
    let text = itoa::Buffer::new().format(new).to_owned();
    *ctx.value_mut(loc) = Value::string(text.as_bytes());
    ctx.emit(key, || argv!["SET", key, text, "KEEPTTL"]);
    let cas = written(ctx, loc, m.flags, wants_cas(r), r.meta.new_cas);
    Count::Done(new, cas)
}

/// Creates the item with `initial` and the client's exptime (a miss that may create it).
fn create(ctx: &mut Exec<'_, '_>, r: &McRequest, initial: u64, exptime: i64) -> Count {
    let key = r.key();
    let at = expiry_ms(exptime, ctx.now);
    let text = itoa::Buffer::new().format(initial).to_owned();
    if at != Some(0) {
        let s = ctx.shard_idx(key);
        let id = ctx.shards[s].dbs[ctx.db].set(key, Value::string(text.as_bytes()), Some(at.unwrap_or(0)));
        record_set(ctx, key, text.as_bytes(), at, 0);
        let cas = written(ctx, (s, id), 0, wants_cas(r), r.meta.new_cas);
        return Count::Done(initial, cas);
    }
    Count::Done(initial, 0)
}

/// Counts an incr or decr's hit or miss.
fn count_counter(ctx: &mut Exec<'_, '_>, key: &[u8], decr: bool, hit: bool) {
    let stat = match (decr, hit) {
        (false, true) => McStat::IncrHits,
        (false, false) => McStat::IncrMisses,
        (true, true) => McStat::DecrHits,
        (true, false) => McStat::DecrMisses,
    };
    count(ctx, key, stat);
}

/// incr/decr.
pub(super) fn incr(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let decr = r.op == Op::Decr;
    let compare = (r.wire == Wire::Binary && r.cas != 0).then_some(r.cas);
    let found = find(ctx, r.key(), true);
    count_counter(ctx, r.key(), decr, found.is_some());
    let count = match found {
        Some(loc) => apply(ctx, r, loc, decr, r.delta, compare),
        None if r.wire == Wire::Binary && r.exptime != NO_CREATE && compare.is_none() => {
            create(ctx, r, r.initial, r.exptime)
        }
        None => Count::Missing,
    };
    match count {
        Count::Done(n, cas) => match r.wire {
            Wire::Binary if r.noreply => {}
            Wire::Binary => {
                binary::header(ctx.out, r.opcode, status::OK, r.opaque, cas, 0, 0, 8);
                ctx.out.extend_from_slice(&n.to_be_bytes());
            }
            _ if r.noreply => {}
            _ => mc::number(ctx.out, n),
        },
        Count::Missing => answer(ctx, r, Outcome::NotFound, 0),
        Count::Mismatch => answer(ctx, r, Outcome::Exists, 0),
        Count::NotNumeric => client_error(ctx, r, NON_NUMERIC, status::NON_NUMERIC),
    }
}

/// `ma <key> <flags>*`.
pub(super) fn meta_arith(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let f = &r.meta;
    let decr = match f.mode.unwrap_or(b'I') {
        b'I' | b'i' | b'+' => false,
        b'D' | b'd' | b'-' => true,
        _ => return client_error(ctx, r, "invalid mode for ma", status::INVALID_ARGUMENTS),
    };
    let key = r.key();
    let found = find(ctx, key, true);
    count_counter(ctx, key, decr, found.is_some());
    let count = match found {
        Some(loc) => {
            let c = apply(ctx, r, loc, decr, f.delta.unwrap_or(1), f.compare_cas);
            if let (Count::Done(..), Some(t)) = (&c, f.ttl) {
                set_ttl_of(ctx, key, loc, t);
            }
            c
        }
        None => match f.vivify {
            Some(ttl) => create(ctx, r, f.initial.unwrap_or(0), ttl),
            None => Count::Missing,
        },
    };
    let (n, cas) = match count {
        Count::Done(n, cas) => (n, cas),
        Count::Missing => return answer(ctx, r, Outcome::NotFound, 0),
        Count::Mismatch => return answer(ctx, r, Outcome::Exists, 0),
        Count::NotNumeric => return client_error(ctx, r, NON_NUMERIC, status::NON_NUMERIC),
    };
    if f.quiet && !f.value {
        return;
    }
    // The item is looked up again only when its TTL is asked for.
    let ttl = match f.returns(b't').then(|| ctx.lookup(key)).flatten() {
        Some(loc) => ttl_secs(ctx.shards[loc.0].dbs[ctx.db].dict().entry(loc.1).expire_at(), ctx.now),
        None => -1,
    };
    let digits = itoa::Buffer::new().format(n).to_owned();
    let out = &mut *ctx.out;
    mc::meta_head(out, f.value.then_some(digits.len()));
    meta_returns(out, r, |out, flag| match flag {
        b'c' => mc::meta_number(out, b'c', cas),
        b't' => mc::meta_number(out, b't', ttl),
        _ => {}
    });
    out.extend_from_slice(mc::CRLF);
    if f.value {
        out.extend_from_slice(digits.as_bytes());
        out.extend_from_slice(mc::CRLF);
    }
}
