//! SORT and SORT_RO: sorting lists, sets and sorted sets numerically or by bytes, by their own
//! values or by keys a pattern names (BY), fetching other keys' values (GET), with LIMIT and
//! STORE, as Redis 7.0's sortCommandGeneric does. A request with BY or GET patterns may read
//! any key, so the connection runs it with every shard leased (`needs_all_shards`).

use super::args::{self, is};
use super::exec::{Exec, NOT_INTEGER, SYNTAX};
use crate::argv;
use crate::shard::bytes::SmallBytes;
use crate::shard::types::List;
use crate::shard::value::{Kind, Value};
use bytes::Bytes;
use shoal_proto::{reply, Request};
use std::cmp::Ordering;

/// Whether a SORT request reads keys named by patterns (BY with `*`, GET other than `#`).
pub fn needs_all_shards(req: &Request) -> bool {
    let mut j = 2;
    while j < req.len() {
        let a = req.arg(j);
        if (is(a, "BY") || is(a, "GET")) && j + 1 < req.len() {
            let p = req.arg(j + 1);
            if p != b"#" && p.contains(&b'*') {
                return true;
            }
            j += 2;
        } else {
            j += 1;
        }
    }
    false
}

/// The STORE destination's position, for routing.
pub fn keys(req: &Request) -> Vec<usize> {
    let mut k = vec![1];
    let mut j = 2;
    while j < req.len() {
        if is(req.arg(j), "STORE") && j + 1 < req.len() {
            k.push(j + 1);
            j += 2;
        } else if is(req.arg(j), "LIMIT") {
            j += 3;
        } else if is(req.arg(j), "BY") || is(req.arg(j), "GET") {
            j += 2;
        } else {
            j += 1;
        }
    }
    k
}

/// Redis's `lookupKeyByPattern`: the value `pattern` names for element `subst`.
fn by_pattern(ctx: &mut Exec<'_, '_>, pattern: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(subst.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let (mut key_end, mut field) = (pattern.len(), None);
    if let Some(arrow) = pattern[star + 1..].windows(2).position(|w| w == b"->") {
        let at = star + 1 + arrow;
        if at + 2 < pattern.len() {
            key_end = at;
            field = Some(&pattern[at + 2..]);
        }
    }
    let mut key = pattern[..star].to_vec();
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let loc = ctx.read(&key)?;
    match (ctx.value(loc), field) {
        (Value::Hash(h), Some(f)) => h.get(f).map(|v| v.to_vec()),
        (v, None) if v.is_string() => Some(v.to_vec()),
        _ => None,
    }
}

/// `strtod` as SORT uses it: leading spaces allowed, the whole rest consumed, no NaN, an
/// empty string is 0.
fn sort_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let t = s.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &s[i..])?;
    args::double(t)
}

struct Item {
    elem: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

pub fn sort(ctx: &mut Exec<'_, '_>, req: &Request) {
    sort_generic(ctx, req, false)
}

pub fn sort_ro(ctx: &mut Exec<'_, '_>, req: &Request) {
    sort_generic(ctx, req, true)
}

fn sort_generic(ctx: &mut Exec<'_, '_>, req: &Request, readonly: bool) {
    let key = req.arg(1);
    let (mut desc, mut alpha, mut limit) = (false, false, None::<(i64, i64)>);
    let (mut store, mut by, mut gets) = (None, None, Vec::new());
    let mut dontsort = false;
    let mut j = 2;
    while j < req.len() {
        let left = req.len() - j - 1;
        let a = req.arg(j);
        if is(a, "ASC") {
            desc = false;
        } else if is(a, "DESC") {
            desc = true;
        } else if is(a, "ALPHA") {
            alpha = true;
        } else if is(a, "LIMIT") && left >= 2 {
            let (Some(s), Some(c)) = (args::int(req.arg(j + 1)), args::int(req.arg(j + 2))) else {
                return ctx.err(NOT_INTEGER);
            };
            limit = Some((s, c));
            j += 2;
        } else if is(a, "STORE") && left >= 1 && !readonly {
            store = Some(req.arg(j + 1));
            j += 1;
        } else if is(a, "BY") && left >= 1 {
            let p = req.arg(j + 1);
            // A pattern without `*` means "do not sort".
            if !p.contains(&b'*') {
                dontsort = true;
            }
            by = Some(p);
            j += 1;
        } else if is(a, "GET") && left >= 1 {
            gets.push(req.arg(j + 1));
            j += 1;
        } else {
            return ctx.err(SYNTAX);
        }
        j += 1;
    }
    let found = ctx.read(key);
    let kind = found.map(|loc| ctx.value(loc).kind());
    if kind.is_some_and(|k| !matches!(k, Kind::List | Kind::Set | Kind::ZSet)) {
        return ctx.wrongtype();
    }
    // A set has no order of its own: when it is stored, sort it by bytes for determinism.
    if dontsort && kind == Some(Kind::Set) && store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let mut elems: Vec<Vec<u8>> = match found.map(|loc| ctx.value(loc)) {
        Some(Value::List(l)) => l.iter().map(|e| e.to_vec()).collect(),
        Some(Value::Set(s)) => s.members(),
        Some(Value::ZSet(z)) => {
            let o = z.ordered();
            let mut v = Vec::with_capacity(o.len());
            o.visit(0, o.len(), false, |m, _| v.push(m.to_vec()));
            v
        }
        _ => Vec::new(),
    };
    // Unsorted lists and sorted sets keep their own order, reversed by DESC.
    if dontsort && matches!(kind, Some(Kind::ZSet | Kind::List)) && desc {
        elems.reverse();
    }
    let len = elems.len() as i64;
    let (mut start, mut end) = match limit {
        Some((s, c)) => (s.max(0), if c < 0 { len - 1 } else { s.max(0).saturating_add(c) - 1 }),
        None => (0, len - 1),
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let mut items: Vec<Item> = Vec::with_capacity(elems.len());
    for e in elems {
        let mut it = Item { elem: e, score: 0.0, cmp: None };
        if !dontsort {
            let byval = match by {
                Some(p) => by_pattern(ctx, p, &it.elem),
                None => Some(it.elem.clone()),
            };
            if alpha {
                if by.is_some() {
                    it.cmp = byval;
                }
            } else if let Some(v) = byval {
                match sort_score(&v) {
                    Some(s) => it.score = s,
                    None => return ctx.err("ERR One or more scores can't be converted into double"),
                }
            }
        }
        items.push(it);
    }
    if !dontsort {
        let by_pattern = by.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (None, None) => Ordering::Equal,
                    (None, _) => Ordering::Less,
                    (_, None) => Ordering::Greater,
                }
            } else {
                a.elem.cmp(&b.elem)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }
    let picked: Vec<&Item> =
        if start <= end && start >= 0 { items[start as usize..=end as usize].iter().collect() } else { Vec::new() };
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for it in picked {
        if gets.is_empty() {
            out.push(Some(it.elem.clone()));
        }
        for g in &gets {
            out.push(by_pattern(ctx, g, &it.elem));
        }
    }
    let Some(dst) = store else {
        reply::array_len(ctx.out, out.len());
        for v in &out {
            match v {
                Some(v) => reply::bulk(ctx.out, v),
                None => reply::null(ctx.out, ctx.proto),
            }
        }
        return;
    };
    let existed = ctx.lookup(dst).is_some();
    if existed {
        ctx.delete(dst);
    }
    if out.is_empty() {
        if existed {
            ctx.emit(dst, || argv!["DEL", dst]);
        }
    } else {
        let list: List = out.iter().map(|v| SmallBytes::new(v.as_deref().unwrap_or_default())).collect();
        ctx.create(dst, Value::List(Box::new(list)));
        ctx.emit(dst, || argv!["DEL", dst]);
        ctx.emit(dst, || {
            let mut v = argv!["RPUSH", dst];
            v.extend(out.iter().map(|e| Bytes::copy_from_slice(e.as_deref().unwrap_or_default())));
            v
        });
    }
    reply::integer(ctx.out, out.len() as i64);
}
