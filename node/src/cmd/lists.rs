//! List commands: pushes and pops at both ends, ranges, positional edits, LPOS, LMOVE and
//! LMPOP. The blocking forms live in `blocking.rs` and reuse the pops defined here.

use super::args::{self, is};
use super::exec::{Exec, Loc, Replied, NOT_INTEGER, NO_SUCH_KEY, SYNTAX};
use crate::argv;
use crate::shard::bytes::SmallBytes;
use crate::shard::types::List;
use crate::shard::value::{Kind, Value};
use bytes::Bytes;
use shoal_proto::{reply, Request};

/// Which end of a list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    Left,
    Right,
}

impl End {
    pub fn parse(arg: &[u8]) -> Option<End> {
        if is(arg, "LEFT") {
            Some(End::Left)
        } else if is(arg, "RIGHT") {
            Some(End::Right)
        } else {
            None
        }
    }

    fn pop_name(self) -> &'static str {
        match self {
            End::Left => "LPOP",
            End::Right => "RPOP",
        }
    }

    fn push_name(self) -> &'static str {
        match self {
            End::Left => "LPUSH",
            End::Right => "RPUSH",
        }
    }
}

pub fn list<'c>(ctx: &'c Exec<'_, '_>, loc: Loc) -> &'c List {
    match ctx.value(loc) {
        Value::List(l) => l,
        _ => unreachable!("type checked"),
    }
}

pub fn list_mut<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> &'c mut List {
    match ctx.value_mut(loc) {
        Value::List(l) => l,
        _ => unreachable!("type checked"),
    }
}

/// Pushes `items` at one end of the list at `key` (created unless `only_existing`); the new
/// length, or `None` after an error. Records the push.
pub fn push<'r>(
    ctx: &mut Exec<'_, '_>,
    key: &[u8],
    items: impl Iterator<Item = &'r [u8]> + Clone,
    end: End,
    only_existing: bool,
) -> Option<usize> {
    let loc = match ctx.write_typed(key, Kind::List) {
        Err(Replied) => return None,
        Ok(Some(loc)) => loc,
        Ok(None) if only_existing => return Some(0),
        Ok(None) => ctx.create(key, Value::List(Box::default())),
    };
    let l = list_mut(ctx, loc);
    for it in items.clone() {
        match end {
            End::Left => l.push_front(SmallBytes::new(it)),
            End::Right => l.push_back(SmallBytes::new(it)),
        }
    }
    let len = l.len();
    ctx.emit(key, || {
        let mut v = argv![end.push_name(), key];
        v.extend(items.map(Bytes::copy_from_slice));
        v
    });
    Some(len)
}

fn push_cmd(ctx: &mut Exec<'_, '_>, req: &Request, end: End, only_existing: bool) {
    if let Some(n) = push(ctx, req.arg(1), req.args().skip(2), end, only_existing) {
        reply::integer(ctx.out, n as i64);
    }
}

pub fn lpush(ctx: &mut Exec<'_, '_>, req: &Request) {
    push_cmd(ctx, req, End::Left, false)
}
pub fn rpush(ctx: &mut Exec<'_, '_>, req: &Request) {
    push_cmd(ctx, req, End::Right, false)
}
pub fn lpushx(ctx: &mut Exec<'_, '_>, req: &Request) {
    push_cmd(ctx, req, End::Left, true)
}
pub fn rpushx(ctx: &mut Exec<'_, '_>, req: &Request) {
    push_cmd(ctx, req, End::Right, true)
}

/// Pops up to `count` elements from a list known to exist, deleting it when emptied, and
/// records the pop.
pub fn pop_from(ctx: &mut Exec<'_, '_>, key: &[u8], loc: Loc, end: End, count: usize) -> Vec<SmallBytes> {
    let l = list_mut(ctx, loc);
    let n = count.min(l.len());
    let popped: Vec<SmallBytes> = match end {
        End::Left => l.drain(..n).collect(),
        End::Right => (0..n).filter_map(|_| l.pop_back()).collect(),
    };
    if !popped.is_empty() {
        ctx.drop_if_empty(key, loc);
        ctx.emit(key, || argv![end.pop_name(), key, n.to_string()]);
    }
    popped
}

/// `[key, [elements]]`, the reply of LMPOP and BLMPOP.
pub fn reply_keyed(ctx: &mut Exec<'_, '_>, key: &[u8], items: &[SmallBytes]) {
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, key);
    reply_elements(ctx, items);
}

fn reply_elements(ctx: &mut Exec<'_, '_>, items: &[SmallBytes]) {
    reply::array_len(ctx.out, items.len());
    for i in items {
        reply::bulk(ctx.out, i);
    }
}

fn pop_cmd(ctx: &mut Exec<'_, '_>, req: &Request, end: End) {
    let key = req.arg(1);
    if req.len() > 3 {
        let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
        return ctx.err(&format!("ERR wrong number of arguments for '{name}' command"));
    }
    let count = if req.len() == 3 {
        match args::int(req.arg(2)) {
            None => return ctx.err("ERR value is out of range, must be positive"),
            Some(n) if n < 0 => return ctx.err("ERR value is out of range, must be positive"),
            Some(n) => Some(n as usize),
        }
    } else {
        None
    };
    let Ok(found) = ctx.write_typed(key, Kind::List) else { return };
    let Some(loc) = found else {
        return match count {
            Some(_) => reply::null_array(ctx.out, ctx.proto),
            None => reply::null(ctx.out, ctx.proto),
        };
    };
    let popped = pop_from(ctx, key, loc, end, count.unwrap_or(1));
    match count {
        None => reply::bulk(ctx.out, &popped[0]),
        Some(_) => reply_elements(ctx, &popped),
    }
}

pub fn lpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    pop_cmd(ctx, req, End::Left)
}
pub fn rpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    pop_cmd(ctx, req, End::Right)
}

pub fn llen(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::List) else { return };
    let n = found.map_or(0, |loc| list(ctx, loc).len());
    reply::integer(ctx.out, n as i64);
}

/// A list index from the head (negative counts from the tail), if in range.
fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

pub fn lindex(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::List) else { return };
    let Some(loc) = found else { return reply::null(ctx.out, ctx.proto) };
    let Some(i) = args::int(req.arg(2)) else { return ctx.err(NOT_INTEGER) };
    let l = list(ctx, loc);
    match index(l.len(), i).map(|i| l[i].clone()) {
        Some(e) => reply::bulk(ctx.out, &e),
        None => reply::null(ctx.out, ctx.proto),
    }
}

pub fn lset(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Ok(found) = ctx.write_typed(key, Kind::List) else { return };
    let Some(loc) = found else { return ctx.err(NO_SUCH_KEY) };
    let Some(i) = args::int(req.arg(2)) else { return ctx.err(NOT_INTEGER) };
    let l = list_mut(ctx, loc);
    let Some(i) = index(l.len(), i) else { return ctx.err("ERR index out of range") };
    l[i] = SmallBytes::new(req.arg(3));
    ctx.emit(key, || argv!["LSET", key, i.to_string(), req.arg(3)]);
    reply::ok(ctx.out);
}

/// Clamps a start/stop pair as LRANGE and LTRIM do; `None` for an empty range.
fn clamp(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

pub fn lrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (Some(start), Some(stop)) = (args::int(req.arg(2)), args::int(req.arg(3))) else {
        return ctx.err(NOT_INTEGER);
    };
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::List) else { return };
    let Some(loc) = found else { return reply::array_len(ctx.out, 0) };
    let (Value::List(l), out) = ctx.value_and_out(loc) else { unreachable!("type checked") };
    match clamp(l.len(), start, stop) {
        None => reply::array_len(out, 0),
        Some((a, b)) => {
            reply::array_len(out, b - a + 1);
            l.range(a..=b).for_each(|e| reply::bulk(out, e));
        }
    }
}

pub fn ltrim(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let (Some(start), Some(stop)) = (args::int(req.arg(2)), args::int(req.arg(3))) else {
        return ctx.err(NOT_INTEGER);
    };
    let Ok(found) = ctx.write_typed(key, Kind::List) else { return };
    let Some(loc) = found else { return reply::ok(ctx.out) };
    let l = list_mut(ctx, loc);
    match clamp(l.len(), start, stop) {
        None => l.clear(),
        Some((a, b)) => {
            l.truncate(b + 1);
            l.drain(..a);
        }
    }
    ctx.drop_if_empty(key, loc);
    ctx.emit_req(key, req);
    reply::ok(ctx.out);
}

pub fn linsert(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let after = if is(req.arg(2), "AFTER") {
        true
    } else if is(req.arg(2), "BEFORE") {
        false
    } else {
        return ctx.err(SYNTAX);
    };
    let Ok(found) = ctx.write_typed(key, Kind::List) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let l = list_mut(ctx, loc);
    let Some(pos) = l.iter().position(|e| e.as_slice() == req.arg(3)) else {
        return reply::integer(ctx.out, -1);
    };
    l.insert(pos + after as usize, SmallBytes::new(req.arg(4)));
    let len = l.len();
    ctx.emit_req(key, req);
    reply::integer(ctx.out, len as i64);
}

pub fn lrem(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some(count) = args::int(req.arg(2)) else { return ctx.err(NOT_INTEGER) };
    let Ok(found) = ctx.write_typed(key, Kind::List) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let elem = req.arg(3);
    let l = list_mut(ctx, loc);
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let mut removed = 0;
    if count >= 0 {
        let mut i = 0;
        while i < l.len() && removed < limit {
            if l[i].as_slice() == elem {
                l.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = l.len();
        while i > 0 && removed < limit {
            i -= 1;
            if l[i].as_slice() == elem {
                l.remove(i);
                removed += 1;
            }
        }
    }
    if removed > 0 {
        ctx.drop_if_empty(key, loc);
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, removed as i64);
}

pub fn lpos(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<usize>, 0usize);
    let mut j = 3;
    while j < req.len() {
        let more = j + 1 < req.len();
        let a = req.arg(j);
        if is(a, "RANK") && more {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err(NOT_INTEGER),
                Some(0) => return ctx.err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"),
                Some(r) => rank = r,
            }
        } else if is(a, "COUNT") && more {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err("ERR COUNT can't be negative"),
                Some(c) if c < 0 => return ctx.err("ERR COUNT can't be negative"),
                Some(c) => count = Some(c as usize),
            }
        } else if is(a, "MAXLEN") && more {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err("ERR MAXLEN can't be negative"),
                Some(m) if m < 0 => return ctx.err("ERR MAXLEN can't be negative"),
                Some(m) => maxlen = m as usize,
            }
        } else {
            return ctx.err(SYNTAX);
        }
        j += 2;
    }
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::List) else { return };
    let Some(loc) = found else {
        return match count {
            Some(_) => reply::array_len(ctx.out, 0),
            None => reply::null(ctx.out, ctx.proto),
        };
    };
    let l = list(ctx, loc);
    let elem = req.arg(2);
    let want = match count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    let scan_len = if maxlen == 0 { l.len() } else { maxlen.min(l.len()) };
    // Redis negates the rank in C: i64::MIN stays negative and then matches from the first.
    let mut skip = if rank == i64::MIN { 0 } else { rank.unsigned_abs() - 1 };
    let mut hits = Vec::new();
    let mut check = |i: usize, e: &SmallBytes| -> bool {
        if e.as_slice() == elem {
            if skip > 0 {
                skip -= 1;
            } else {
                hits.push(i);
                return hits.len() >= want;
            }
        }
        false
    };
    if rank > 0 {
        for (i, e) in l.iter().enumerate().take(scan_len) {
            if check(i, e) {
                break;
            }
        }
    } else {
        for (i, e) in l.iter().enumerate().rev().take(scan_len) {
            if check(i, e) {
                break;
            }
        }
    }
    match count {
        Some(_) => {
            reply::array_len(ctx.out, hits.len());
            hits.iter().for_each(|&i| reply::integer(ctx.out, i as i64));
        }
        None => match hits.first() {
            Some(&i) => reply::integer(ctx.out, i as i64),
            None => reply::null(ctx.out, ctx.proto),
        },
    }
}

/// LMOVE's work once arguments are parsed: pops from `src`, pushes to `dst`, replies with
/// the element (nil when `src` is missing). Returns whether an element moved.
pub fn lmove_parsed(ctx: &mut Exec<'_, '_>, src: &[u8], dst: &[u8], from: End, to: End) -> bool {
    let Ok(found) = ctx.write_typed(src, Kind::List) else { return false };
    let Some(sloc) = found else {
        reply::null(ctx.out, ctx.proto);
        return false;
    };
    if ctx.write_typed(dst, Kind::List).is_err() {
        return false;
    }
    // Redis pushes before it pops (and announces in that order): take the element, push it,
    // then record the pop and drop an emptied source.
    let l = list_mut(ctx, sloc);
    let e = match from {
        End::Left => l.pop_front(),
        End::Right => l.pop_back(),
    }
    .expect("lists are never empty");
    push(ctx, dst, std::iter::once(e.as_slice()), to, false);
    // The source may have moved if it was the destination too: look it up again.
    if let Some(loc) = ctx.lookup(src) {
        ctx.drop_if_empty(src, loc);
        ctx.emit(src, || argv![from.pop_name(), src, "1"]);
    }
    reply::bulk(ctx.out, &e);
    true
}

pub fn lmove(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (Some(from), Some(to)) = (End::parse(req.arg(3)), End::parse(req.arg(4))) else { return ctx.err(SYNTAX) };
    lmove_parsed(ctx, req.arg(1), req.arg(2), from, to);
}

pub fn rpoplpush(ctx: &mut Exec<'_, '_>, req: &Request) {
    lmove_parsed(ctx, req.arg(1), req.arg(2), End::Right, End::Left);
}

/// The parsed arguments of LMPOP/BLMPOP after `numkeys`: keys, end, count.
pub struct MpopArgs {
    pub keys: std::ops::Range<usize>,
    pub end: End,
    pub count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` with `numkeys` at `at`.
pub fn parse_mpop(
    ctx: &mut Exec<'_, '_>,
    req: &Request,
    at: usize,
    ends: fn(&[u8]) -> Option<End>,
) -> Option<MpopArgs> {
    let n = super::sets::numkeys(ctx, req, at, SYNTAX)?;
    let keys = at + 1..at + 1 + n;
    let Some(end) = req.args().nth(keys.end).and_then(ends) else {
        ctx.err(SYNTAX);
        return None;
    };
    let mut count = None;
    let mut j = keys.end + 1;
    while j < req.len() {
        if is(req.arg(j), "COUNT") && j + 1 < req.len() && count.is_none() {
            match args::int(req.arg(j + 1)) {
                Some(c) if c > 0 => count = Some(c as usize),
                _ => {
                    ctx.err("ERR count should be greater than 0");
                    return None;
                }
            }
            j += 2;
        } else {
            ctx.err(SYNTAX);
            return None;
        }
    }
    Some(MpopArgs { keys, end, count: count.unwrap_or(1) })
}

/// Pops from the first non-empty list among the keys; replies `[key, [elements]]`, or the
/// null array when every list is empty. Returns whether anything was popped.
pub fn mpop_lists(ctx: &mut Exec<'_, '_>, req: &Request, a: &MpopArgs) -> bool {
    for i in a.keys.clone() {
        let key = req.arg(i);
        let Ok(found) = ctx.write_typed(key, Kind::List) else { return false };
        if let Some(loc) = found {
            let popped = pop_from(ctx, key, loc, a.end, a.count);
            reply_keyed(ctx, key, &popped);
            return true;
        }
    }
    reply::null_array(ctx.out, ctx.proto);
    false
}

pub fn lmpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(a) = parse_mpop(ctx, req, 1, End::parse) else { return };
    mpop_lists(ctx, req, &a);
}
