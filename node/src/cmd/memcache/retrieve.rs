//! Retrievals: get, gets, gat, gats and touch (text and binary), meta get (`mg`) with its
//! stale-while-revalidate flags, and meta debug (`me`).

use super::{
    answer, cas_of, count, find, meta_of, meta_returns, remove, set_meta, set_ttl_of, ttl_secs, value_bytes, Outcome,
};
use crate::cmd::exec::{Exec, Loc};
use crate::shard::item_meta::Meta;
use crate::shard::stats::McStat;
use crate::shard::value::Value;
use shoal_proto::memcache::binary::{self, status};
use shoal_proto::memcache::{expiry_ms, reply as mc, McRequest, Op, Wire};

/// get/gets/gat/gats/touch of one key (the gateway ends a text retrieval with END).
pub(super) fn get(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let key = r.key();
    let touching = matches!(r.op, Op::Gat | Op::Gats | Op::Touch);
    let found = find(ctx, key, r.op != Op::Touch);
    let hit = found.is_some();
    if r.op != Op::Touch {
        count(ctx, key, if hit { McStat::GetHits } else { McStat::GetMisses });
    }
    if touching {
        count(ctx, key, if hit { McStat::TouchHits } else { McStat::TouchMisses });
    }
    let Some(loc) = found else {
        return miss(ctx, r);
    };
    let mut gone = false;
    if touching {
        gone = !set_ttl_of(ctx, key, loc, r.exptime);
    }
    if r.op == Op::Touch {
        return answer(ctx, r, Outcome::Touched, 0);
    }
    write_value(ctx, r, loc);
    if gone {
        remove(ctx, key);
    }
}

fn miss(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    match (r.wire, r.op) {
        (Wire::Text, Op::Touch) => answer(ctx, r, Outcome::NotFound, 0),
        (Wire::Text, _) => {}
        (Wire::Binary, _) if r.noreply => {}
        (Wire::Binary, _) => {
            let key = if binary::returns_key(r.opcode) { r.key() } else { &[] };
            binary::response(ctx.out, r.opcode, status::KEY_NOT_FOUND, r.opaque, 0, key, b"Not found");
        }
        (Wire::Meta, _) => {}
    }
}

/// A hit's reply: `VALUE` for text, a response with the flags as extras for binary.
fn write_value(ctx: &mut Exec<'_, '_>, r: &McRequest, loc: Loc) {
    let with_cas = matches!(r.op, Op::Gets | Op::Gats) || r.wire == Wire::Binary;
    let sh = &mut *ctx.shards[loc.0];
    let m = sh.dbs[ctx.db].items.read(loc.1, with_cas.then_some(&mut sh.cas_clock));
    let cas = m.cas;
    let (v, out) = ctx.value_and_out(loc);
    let mut scratch = itoa::Buffer::new();
    let data = value_bytes(v, &mut scratch);
    match r.wire {
        Wire::Binary => {
            let key = if binary::returns_key(r.opcode) { r.key() } else { &[] };
            binary::header(out, r.opcode, status::OK, r.opaque, cas, 4, key.len(), data.len());
            out.extend_from_slice(&m.flags.to_be_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(data);
        }
        _ => {
            mc::value_line(out, r.key(), m.flags, data.len(), with_cas.then_some(cas));
            out.extend_from_slice(data);
            out.extend_from_slice(mc::CRLF);
        }
    }
}

/// `mg <key> <flags>*`.
pub(super) fn meta_get(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let key = r.key();
    let f = &r.meta;
    let mut won = false;
    let found = find(ctx, key, !f.no_bump);
    count(ctx, key, if found.is_some() { McStat::GetHits } else { McStat::GetMisses });
    let loc = match found {
        Some(loc) => loc,
        None => match f.vivify {
            // A miss with N creates an empty item and tells this client it won the recache.
            Some(ttl) => {
                let at = expiry_ms(ttl, ctx.now);
                let loc = ctx.create(key, Value::string(b""));
                if let Some(at) = at.filter(|&t| t > 0) {
                    ctx.shards[loc.0].dbs[ctx.db].set_expire(loc.1, at);
                }
                super::record_set(ctx, key, b"", at.filter(|&t| t > 0), 0);
                set_meta(ctx, loc, Meta { won: true, ..Meta::default() });
                won = true;
                loc
            }
            None => {
                if !f.quiet {
                    ctx.out.extend_from_slice(b"EN\r\n");
                }
                return;
            }
        },
    };
    let before = meta_of(ctx, loc);
    let expire_at = ctx.shards[loc.0].dbs[ctx.db].dict().entry(loc.1).expire_at();
    let idle = idle_secs(ctx, loc);
    let mut m = before;
    // Stale items and items close to expiry (R) go to one client to recache: W to the first,
    // Z to the others.
    let mut lost = false;
    let due = f.recache.is_some_and(|r| expire_at.is_some() && ttl_secs(expire_at, ctx.now) < r);
    if !won && (m.stale || due) {
        if m.won {
            lost = true;
        } else {
            m.won = true;
            won = true;
        }
    }
    // Reads mark items fetched only where a record exists anyway (see `Meta::fetched`).
    if !f.no_bump && m != Meta::default() {
        m.fetched = true;
    }
    if m != before {
        set_meta(ctx, loc, m);
    }
    let mut gone = false;
    if let Some(t) = f.ttl {
        gone = !set_ttl_of(ctx, key, loc, t);
    }
    let expire_now = ctx.shards[loc.0].dbs[ctx.db].dict().entry(loc.1).expire_at();
    let cas = if f.returns(b'c') { cas_of(ctx, loc) } else { 0 };
    let now = ctx.now;
    let (v, out) = ctx.value_and_out(loc);
    let mut scratch = itoa::Buffer::new();
    let data = value_bytes(v, &mut scratch);
    mc::meta_head(out, f.value.then_some(data.len()));
    meta_returns(out, r, |out, flag| match flag {
        b'c' => mc::meta_number(out, b'c', cas),
        b'f' => mc::meta_number(out, b'f', m.flags),
        b'h' => mc::meta_number(out, b'h', before.fetched as u8),
        b'l' => mc::meta_number(out, b'l', idle),
        b's' => mc::meta_number(out, b's', data.len()),
        b't' => mc::meta_number(out, b't', ttl_secs(expire_now, now)),
        _ => {}
    });
    // In memcached's order: X before W, Z before X.
    match (won, lost, m.stale) {
        (true, _, true) => out.extend_from_slice(b" X W"),
        (true, _, false) => out.extend_from_slice(b" W"),
        (_, true, true) => out.extend_from_slice(b" Z X"),
        (_, true, false) => out.extend_from_slice(b" Z"),
        (_, _, true) => out.extend_from_slice(b" X"),
        _ => {}
    }
    out.extend_from_slice(mc::CRLF);
    if f.value {
        out.extend_from_slice(data);
        out.extend_from_slice(mc::CRLF);
    }
    if gone {
        remove(ctx, key);
    }
}

/// Seconds since the item was last read or written (under LRU-style policies; the access
/// field holds a frequency counter under LFU, which says nothing of time).
fn idle_secs(ctx: &Exec<'_, '_>, loc: Loc) -> u32 {
    let s = &ctx.shards[loc.0];
    if ctx.settings.policy.lfu() {
        return 0;
    }
    s.clock.wrapping_sub(s.dbs[ctx.db].dict().entry(loc.1).access)
}

/// `me <key>`: the item's metadata in memcached's words.
pub(super) fn meta_debug(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let key = r.key();
    let Some(loc) = find(ctx, key, false) else {
        ctx.out.extend_from_slice(b"EN\r\n");
        return;
    };
    let m = meta_of(ctx, loc);
    let cas = cas_of(ctx, loc);
    let idle = idle_secs(ctx, loc);
    let entry = ctx.shards[loc.0].dbs[ctx.db].dict().entry(loc.1);
    let exp = ttl_secs(entry.expire_at(), ctx.now);
    let size = entry.value.str_len() + key.len();
    ctx.out.extend_from_slice(b"ME ");
    mc::key(ctx.out, key, r.meta.base64);
    let fetch = if m.fetched { "yes" } else { "no" };
    let line = format!(" exp={exp} la={idle} cas={cas} fetch={fetch} cls=1 size={size}\r\n");
    ctx.out.extend_from_slice(line.as_bytes());
}
