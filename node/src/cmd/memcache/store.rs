//! Storage: set, add, replace, append, prepend and cas (text and binary), and meta set
//! (`ms`) with its modes, CAS comparison and invalidation.

use super::{
    answer, client_error, count_cas, find, meta_of, record_set, remove, set_meta, wants_cas, written, Outcome,
};
use crate::argv;
use crate::cmd::exec::{Exec, Replied};
use crate::shard::value::Value;
use shoal_proto::memcache::binary::status;
use shoal_proto::memcache::{expiry_ms, McRequest, Op, Wire};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

/// One storage request, whichever protocol it came in.
struct Write {
    mode: Mode,
    /// The CAS value the item must have.
    compare: Option<u64>,
    flags: u32,
    exptime: i64,
    /// Meta `I`: a CAS older than the item's still stores, marking the item stale.
    invalidate: bool,
    /// Meta `E`: the CAS value the item gets.
    new_cas: Option<u64>,
}

pub(super) fn store(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let mode = match r.op {
        Op::Add => Mode::Add,
        Op::Replace => Mode::Replace,
        Op::Append => Mode::Append,
        Op::Prepend => Mode::Prepend,
        _ => Mode::Set,
    };
    // The binary protocol compares whenever a CAS value is given; text has its own command.
    let compare = (r.op == Op::Cas || (r.wire == Wire::Binary && r.cas != 0)).then_some(r.cas);
    let w = Write { mode, compare, flags: r.flags, exptime: r.exptime, invalidate: false, new_cas: None };
    let Ok((mut outcome, cas)) = write(ctx, r, &w) else { return };
    count_cas(ctx, r.key(), compare.is_some(), outcome);
    // The binary protocol tells add and replace failures apart from other refusals.
    if r.wire == Wire::Binary && outcome == Outcome::NotStored {
        outcome = match mode {
            Mode::Add => Outcome::Exists,
            Mode::Replace => Outcome::NotFound,
            _ => outcome,
        };
    }
    answer(ctx, r, outcome, cas);
}

/// `ms <key> <datalen> <flags>*`.
pub(super) fn meta_set(ctx: &mut Exec<'_, '_>, r: &McRequest) {
    let f = &r.meta;
    let mode = match f.mode.unwrap_or(b'S') {
        b'S' | b's' => Mode::Set,
        b'E' | b'e' => Mode::Add,
        b'R' | b'r' => Mode::Replace,
        b'A' | b'a' => Mode::Append,
        b'P' | b'p' => Mode::Prepend,
        _ => return client_error(ctx, r, "invalid mode for ms STORE", status::INVALID_ARGUMENTS),
    };
    let w = Write {
        mode,
        compare: f.compare_cas,
        flags: f.client_flags.unwrap_or(0),
        exptime: f.ttl.unwrap_or(0),
        invalidate: f.invalidate,
        new_cas: f.new_cas,
    };
    if let Ok((outcome, cas)) = write(ctx, r, &w) {
        count_cas(ctx, r.key(), w.compare.is_some(), outcome);
        answer(ctx, r, outcome, cas);
    }
}

/// Stores `r`'s value as `w` says; the outcome and the item's CAS value after a success
/// (`Err` when an error has been answered).
fn write(ctx: &mut Exec<'_, '_>, r: &McRequest, w: &Write) -> Result<(Outcome, u64), Replied> {
    let key = r.key();
    let found = find(ctx, key, false);
    let mut stale = false;
    if let Some(c) = w.compare {
        let Some(loc) = found else { return Ok((Outcome::NotFound, 0)) };
        let current = meta_of(ctx, loc).cas;
        if current == 0 || c != current {
            // With I, an older CAS still stores, and the item is marked stale.
            if !(w.invalidate && current != 0 && c < current) {
                return Ok((Outcome::Exists, 0));
            }
            stale = true;
        }
    }
    match w.mode {
        // Any key counts for add, whatever its type: add never overwrites.
        Mode::Add if ctx.lookup(key).is_some() => return Ok((Outcome::NotStored, 0)),
        Mode::Replace | Mode::Append | Mode::Prepend if found.is_none() => return Ok((Outcome::NotStored, 0)),
        _ => {}
    }
    let want_cas = wants_cas(r);
    let loc = match (w.mode, found) {
        (Mode::Append | Mode::Prepend, Some(loc)) => {
            let flags = meta_of(ctx, loc).flags;
            // As memcached: an append that would outgrow the item size limit is refused.
            if ctx.value(loc).str_len().saturating_add(r.value.len()) > ctx.settings.mc_max_item_size {
                super::server_error(ctx, r, "out of memory storing object", status::TOO_LARGE);
                return Err(Replied);
            }
            let buf = ctx.value_mut(loc).make_raw();
            if w.mode == Mode::Append {
                buf.extend_from_slice(&r.value);
                ctx.emit(key, || argv!["APPEND", key, &r.value]);
            } else {
                buf.splice(0..0, r.value.iter().copied());
                let whole = buf.clone();
                ctx.emit(key, || argv!["SET", key, whole, "KEEPTTL"]);
            }
            let cas = written(ctx, loc, flags, want_cas || stale, w.new_cas);
            mark_stale(ctx, loc, stale);
            return Ok((Outcome::Stored, cas));
        }
        _ => {
            let at = expiry_ms(w.exptime, ctx.now);
            if at == Some(0) {
                // Stored already expired: the item is simply gone.
                remove(ctx, key);
                return Ok((Outcome::Stored, 0));
            }
            let s = ctx.shard_idx(key);
            let new = ctx.notifying() && found.is_none() && ctx.lookup(key).is_none();
            let (value, at_or_none) = (Value::string(&r.value), Some(at.unwrap_or(0)));
            let db = &mut ctx.shards[s].dbs[ctx.db];
            // The item found above is replaced where it is: no second lookup.
            let id = match found {
                Some((_, id)) => {
                    db.replace(id, value, at_or_none);
                    id
                }
                None => db.set(key, value, at_or_none),
            };
            if new {
                let db = ctx.db;
                ctx.note_new_key(db, key);
            }
            record_set(ctx, key, &r.value, at, w.flags);
            (s, id)
        }
    };
    let cas = written(ctx, loc, w.flags, want_cas || stale, w.new_cas);
    mark_stale(ctx, loc, stale);
    Ok((Outcome::Stored, cas))
}

fn mark_stale(ctx: &mut Exec<'_, '_>, loc: crate::cmd::exec::Loc, stale: bool) {
    if stale {
        let mut m = meta_of(ctx, loc);
        m.stale = true;
        set_meta(ctx, loc, m);
    }
}
