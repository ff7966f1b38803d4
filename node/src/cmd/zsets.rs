//! Sorted-set commands: ZADD and its options, score and rank queries, every ZRANGE form,
//! removals by range, pops, random members, and the algebra (ZUNION, ZINTER, ZDIFF with
//! weights and aggregation, their STORE forms, ZINTERCARD).

use super::args::{self, is};
use super::exec::{Exec, Loc, Replied, NOT_FLOAT, NOT_INTEGER, SYNTAX};
use super::hashes::random_count_with_option;
use crate::argv;
use crate::shard::types::set::Set;
use crate::shard::types::zset::{cmp, Ordered, ZSet};
use crate::shard::value::{Kind, Value};
use bytes::{Bytes, BytesMut};
use shoal_proto::reply::format_double;
use shoal_proto::{reply, Protocol, Request};

/// Members with their scores, owned (replies and stores are built from these).
type Scored = Vec<(Vec<u8>, f64)>;

fn zset<'c>(ctx: &'c Exec<'_, '_>, loc: Loc) -> &'c ZSet {
    match ctx.value(loc) {
        Value::ZSet(z) => z,
        _ => unreachable!("type checked"),
    }
}

fn zset_mut<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> &'c mut ZSet {
    match ctx.value_mut(loc) {
        Value::ZSet(z) => z,
        _ => unreachable!("type checked"),
    }
}

fn zset_and_out<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> (&'c ZSet, &'c mut BytesMut) {
    match ctx.value_and_out(loc) {
        (Value::ZSet(z), out) => (z, out),
        _ => unreachable!("type checked"),
    }
}

/// A score argument: what `strtod` accepts, NaN refused.
fn score_arg(a: &[u8]) -> Option<f64> {
    args::double(a)
}

/// Writes `member [score]`: RESP3 pairs are nested arrays when `nested`.
fn write_member(out: &mut BytesMut, proto: Protocol, m: &[u8], score: Option<f64>, nested: bool) {
    if nested && score.is_some() && proto.is_resp3() {
        reply::array_len(out, 2);
    }
    reply::bulk(out, m);
    if let Some(s) = score {
        reply::double(out, proto, s);
    }
}

/// Writes a list of members, with scores when asked (Redis's ZRANGE WITHSCORES shape).
fn write_members(out: &mut BytesMut, proto: Protocol, items: &[(Vec<u8>, f64)], withscores: bool) {
    let n = if withscores && !proto.is_resp3() { items.len() * 2 } else { items.len() };
    reply::array_len(out, n);
    for (m, s) in items {
        write_member(out, proto, m, withscores.then_some(*s), true);
    }
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY

pub fn zadd(ctx: &mut Exec<'_, '_>, req: &Request) {
    zadd_generic(ctx, req, false)
}

pub fn zincrby(ctx: &mut Exec<'_, '_>, req: &Request) {
    zadd_generic(ctx, req, true)
}

fn zadd_generic(ctx: &mut Exec<'_, '_>, req: &Request, zincrby: bool) {
    let key = req.arg(1);
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, zincrby);
    let mut j = 2;
    if !zincrby {
        while j < req.len() {
            let a = req.arg(j);
            if is(a, "NX") {
                nx = true;
            } else if is(a, "XX") {
                xx = true;
            } else if is(a, "GT") {
                gt = true;
            } else if is(a, "LT") {
                lt = true;
            } else if is(a, "CH") {
                ch = true;
            } else if is(a, "INCR") {
                incr = true;
            } else {
                break;
            }
            j += 1;
        }
    }
    let elements = req.len() - j;
    if !elements.is_multiple_of(2) || elements == 0 {
        return ctx.err(SYNTAX);
    }
    let pairs = elements / 2;
    if xx && nx {
        return ctx.err("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return ctx.err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && pairs > 1 {
        return ctx.err("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs);
    for p in 0..pairs {
        match score_arg(req.arg(j + 2 * p)) {
            Some(s) => scores.push(s),
            None => return ctx.err(NOT_FLOAT),
        }
    }
    let Ok(found) = ctx.write_typed(key, Kind::ZSet) else { return };
    let loc = match found {
        Some(loc) => loc,
        None if xx => {
            return if incr { reply::null(ctx.out, ctx.proto) } else { reply::integer(ctx.out, 0) };
        }
        None => {
            let enc = ctx.settings.enc;
            // Redis 7.0 sizes a new set by its first member only; later ones convert it.
            ctx.create(key, Value::ZSet(ZSet::with_hint(1, req.arg(j + 1).len(), &enc)))
        }
    };
    let enc = ctx.settings.enc;
    let (mut added, mut updated, mut processed) = (0, 0, 0);
    let mut last_score = 0.0;
    let mut changes: Vec<(usize, f64)> = Vec::new();
    let z = zset_mut(ctx, loc);
    let mut nan = false;
    for (p, &given) in scores.iter().enumerate() {
        let member = req.arg(j + 2 * p + 1);
        z.upsert(member, &enc, |cur| {
            let mut score = given;
            match cur {
                Some(cur) => {
                    if nx {
                        return None;
                    }
                    if incr {
                        score += cur;
                        if score.is_nan() {
                            nan = true;
                            return None;
                        }
                    }
                    if (gt && score <= cur) || (lt && score >= cur) {
                        return None;
                    }
                    last_score = score;
                    processed += 1;
                    if score == cur {
                        return None;
                    }
                    updated += 1;
                }
                None => {
                    if xx {
                        return None;
                    }
                    last_score = score;
                    added += 1;
                    processed += 1;
                }
            }
            changes.push((p, score));
            Some(score)
        });
        if nan {
            ctx.drop_if_empty(key, loc);
            return ctx.err("ERR resulting score is not a number (NaN)");
        }
    }
    ctx.drop_if_empty(key, loc);
    if !changes.is_empty() {
        ctx.emit(key, || {
            let mut v = argv!["ZADD", key];
            for (p, s) in &changes {
                v.push(Bytes::from(format_double(*s)));
                v.push(req.arg_bytes(j + 2 * p + 1));
            }
            v
        });
    }
    if incr {
        if processed > 0 {
            reply::double(ctx.out, ctx.proto, last_score);
        } else {
            reply::null(ctx.out, ctx.proto);
        }
    } else {
        reply::integer(ctx.out, if ch { added + updated } else { added });
    }
}

// ---------------------------------------------------------------------------------------
// Single-member queries

pub fn zrem(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Ok(found) = ctx.write_typed(key, Kind::ZSet) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let z = zset_mut(ctx, loc);
    let removed = (2..req.len()).filter(|&i| z.remove(req.arg(i))).count();
    if removed > 0 {
        ctx.drop_if_empty(key, loc);
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, removed as i64);
}

pub fn zcard(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::ZSet) else { return };
    let n = found.map_or(0, |loc| zset(ctx, loc).len());
    reply::integer(ctx.out, n as i64);
}

pub fn zscore(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::ZSet) else { return };
    match found.and_then(|loc| zset(ctx, loc).score(req.arg(2))) {
        Some(s) => reply::double(ctx.out, ctx.proto, s),
        None => reply::null(ctx.out, ctx.proto),
    }
}

pub fn zmscore(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::ZSet) else { return };
    reply::array_len(ctx.out, req.len() - 2);
    for i in 2..req.len() {
        match found.and_then(|loc| zset(ctx, loc).score(req.arg(i))) {
            Some(s) => reply::double(ctx.out, ctx.proto, s),
            None => reply::null(ctx.out, ctx.proto),
        }
    }
}

fn rank_generic(ctx: &mut Exec<'_, '_>, req: &Request, rev: bool) {
    let withscore = match req.len() {
        3 => false,
        4 if is(req.arg(3), "WITHSCORE") => true,
        4 => return ctx.err(SYNTAX),
        _ => {
            let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
            return ctx.err(&format!("ERR wrong number of arguments for '{name}' command"));
        }
    };
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::ZSet) else { return };
    let proto = ctx.proto;
    let Some(loc) = found else {
        return if withscore { reply::null_array(ctx.out, proto) } else { reply::null(ctx.out, proto) };
    };
    let (z, out) = zset_and_out(ctx, loc);
    match z.rank(req.arg(2)) {
        None if withscore => reply::null_array(out, proto),
        None => reply::null(out, proto),
        Some(r) => {
            let r = if rev { z.len() - 1 - r } else { r };
            if withscore {
                reply::array_len(out, 2);
                reply::integer(out, r as i64);
                reply::double(out, proto, z.score(req.arg(2)).expect("ranked"));
            } else {
                reply::integer(out, r as i64);
            }
        }
    }
}

pub fn zrank(ctx: &mut Exec<'_, '_>, req: &Request) {
    rank_generic(ctx, req, false)
}

pub fn zrevrank(ctx: &mut Exec<'_, '_>, req: &Request) {
    rank_generic(ctx, req, true)
}

// ---------------------------------------------------------------------------------------
// Ranges

/// A score bound: value and whether it is exclusive.
#[derive(Clone, Copy, Debug)]
struct ScoreBound(f64, bool);

/// Redis's `zslParseRange` for one bound.
fn parse_score_bound(a: &[u8]) -> Option<ScoreBound> {
    if let Some(rest) = a.strip_prefix(b"(") {
        let v = score_arg(rest)?;
        Some(ScoreBound(v, true))
    } else {
        Some(ScoreBound(score_arg(a)?, false))
    }
}

#[derive(Clone, Debug)]
enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

/// Redis's `zslParseLexRangeItem`.
fn parse_lex_bound(a: &[u8]) -> Option<LexBound> {
    match a.first() {
        Some(b'+') if a.len() == 1 => Some(LexBound::Max),
        Some(b'-') if a.len() == 1 => Some(LexBound::Min),
        Some(b'[') => Some(LexBound::Incl(a[1..].to_vec())),
        Some(b'(') => Some(LexBound::Excl(a[1..].to_vec())),
        _ => None,
    }
}

/// Rank range `[lo, hi)` of members whose score is within `min..max`.
fn score_span(o: &Ordered<'_>, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
    let lo = o.partition_point(|s, _| if min.1 { s <= min.0 } else { s < min.0 });
    let hi = o.partition_point(|s, _| if max.1 { s < max.0 } else { s <= max.0 });
    (lo, hi.max(lo))
}

/// Rank range `[lo, hi)` of members within a lex range (meaningful when scores are equal).
fn lex_span(o: &Ordered<'_>, min: &LexBound, max: &LexBound) -> (usize, usize) {
    let below_min = |m: &[u8]| match min {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(b) => m < b.as_slice(),
        LexBound::Excl(b) => m <= b.as_slice(),
    };
    let within_max = |m: &[u8]| match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Incl(b) => m <= b.as_slice(),
        LexBound::Excl(b) => m < b.as_slice(),
    };
    // Lex ranges assume equal scores. On other data Redis answers by how it walks: a small
    // set scans from the head, a large one descends its skiplist; we do the same.
    let lo = match o {
        Ordered::Small(v) => v.iter().position(|(m, _)| !below_min(m)).unwrap_or(v.len()),
        Ordered::Tree(_) => o.partition_point(|_, m| below_min(m)),
    };
    let mut end = lo;
    while end < o.len() && within_max(o.get(end).0) {
        end += 1;
    }
    (lo, end)
}

/// Clamps a rank range (negative ranks count from the end); `None` when empty.
fn rank_span(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize + 1))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Everything a ZRANGE-family command asked for.
struct RangeSpec {
    kind: RangeType,
    rev: bool,
    offset: i64,
    limit: i64,
    withscores: bool,
    min: usize,
    max: usize,
}

/// Redis's `zrangeGenericCommand` argument handling. `src` is the source key's position;
/// `kind`/`rev` are fixed by the legacy commands. `Err` after an error reply.
fn parse_range(
    ctx: &mut Exec<'_, '_>,
    req: &Request,
    src: usize,
    kind: RangeType,
    rev: Option<bool>,
    store: bool,
) -> Result<RangeSpec, Replied> {
    let mut spec = RangeSpec { kind, rev: false, offset: 0, limit: -1, withscores: false, min: src + 1, max: src + 2 };
    let mut direction = rev;
    let mut limit_given = false;
    let mut j = src + 3;
    while j < req.len() {
        let a = req.arg(j);
        let left = req.len() - j - 1;
        if !store && is(a, "WITHSCORES") {
            spec.withscores = true;
        } else if is(a, "LIMIT") && left >= 2 {
            match (args::int(req.arg(j + 1)), args::int(req.arg(j + 2))) {
                (Some(o), Some(l)) => {
                    spec.offset = o;
                    spec.limit = l;
                    limit_given = true;
                }
                _ => {
                    ctx.err(NOT_INTEGER);
                    return Err(Replied);
                }
            }
            j += 2;
        } else if direction.is_none() && is(a, "REV") {
            direction = Some(true);
        } else if spec.kind == RangeType::Auto && is(a, "BYLEX") {
            spec.kind = RangeType::Lex;
        } else if spec.kind == RangeType::Auto && is(a, "BYSCORE") {
            spec.kind = RangeType::Score;
        } else {
            ctx.err(SYNTAX);
            return Err(Replied);
        }
        j += 1;
    }
    spec.rev = direction.unwrap_or(false);
    if spec.kind == RangeType::Auto {
        spec.kind = RangeType::Rank;
    }
    if limit_given && spec.kind == RangeType::Rank {
        ctx.err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
        return Err(Replied);
    }
    if spec.withscores && spec.kind == RangeType::Lex {
        ctx.err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return Err(Replied);
    }
    if spec.rev && spec.kind != RangeType::Rank {
        std::mem::swap(&mut spec.min, &mut spec.max);
    }
    Ok(spec)
}

/// The selected rank range of a parsed range request, or `Err` after an error reply
/// (bounds are validated before the key is looked up, as Redis does).
enum Bounds {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

fn parse_bounds(ctx: &mut Exec<'_, '_>, req: &Request, spec: &RangeSpec) -> Result<Bounds, Replied> {
    let (a, b) = (req.arg(spec.min), req.arg(spec.max));
    match spec.kind {
        RangeType::Score => match (parse_score_bound(a), parse_score_bound(b)) {
            (Some(x), Some(y)) => Ok(Bounds::Score(x, y)),
            _ => {
                ctx.err("ERR min or max is not a float");
                Err(Replied)
            }
        },
        RangeType::Lex => match (parse_lex_bound(a), parse_lex_bound(b)) {
            (Some(x), Some(y)) => Ok(Bounds::Lex(x, y)),
            _ => {
                ctx.err("ERR min or max not valid string range item");
                Err(Replied)
            }
        },
        _ => match (args::int(a), args::int(b)) {
            (Some(x), Some(y)) => Ok(Bounds::Rank(x, y)),
            _ => {
                ctx.err(NOT_INTEGER);
                Err(Replied)
            }
        },
    }
}

/// Selects the members of a range, in reply order.
fn select(z: &ZSet, spec: &RangeSpec, bounds: &Bounds) -> Scored {
    let o = match bounds {
        // Ascending by score, nothing past `max` is selected (the length is not needed).
        Bounds::Score(_, max) if !spec.rev => z.ordered_while(|s| if max.1 { s < max.0 } else { s <= max.0 }),
        _ => z.ordered(),
    };
    let len = o.len();
    let (lo, hi) = match bounds {
        Bounds::Rank(start, end) => {
            let Some((a, b)) = rank_span(len, *start, *end) else { return Vec::new() };
            if spec.rev {
                (len - b, len - a)
            } else {
                (a, b)
            }
        }
        Bounds::Score(min, max) => score_span(&o, *min, *max),
        Bounds::Lex(min, max) => lex_span(&o, min, max),
    };
    let (mut lo, mut hi) = (lo, hi);
    if !matches!(bounds, Bounds::Rank(..)) {
        // LIMIT: a negative offset selects nothing, a negative count means all.
        if spec.offset < 0 {
            return Vec::new();
        }
        let off = (spec.offset as u64).min((hi - lo) as u64) as usize;
        if spec.rev {
            hi -= off;
        } else {
            lo += off;
        }
        if spec.limit >= 0 && ((hi - lo) as u64) > spec.limit as u64 {
            let l = spec.limit as usize;
            if spec.rev {
                lo = hi - l;
            } else {
                hi = lo + l;
            }
        }
    }
    let mut items = Vec::with_capacity(hi.saturating_sub(lo));
    o.visit(lo, hi, spec.rev, |m, s| items.push((m.to_vec(), s)));
    items
}

fn range_command(ctx: &mut Exec<'_, '_>, req: &Request, kind: RangeType, rev: Option<bool>) {
    let Ok(spec) = parse_range(ctx, req, 1, kind, rev, false) else { return };
    let Ok(bounds) = parse_bounds(ctx, req, &spec) else { return };
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::ZSet) else { return };
    let Some(loc) = found else { return reply::array_len(ctx.out, 0) };
    let proto = ctx.proto;
    let (z, out) = zset_and_out(ctx, loc);
    let items = select(z, &spec, &bounds);
    write_members(out, proto, &items, spec.withscores);
}

pub fn zrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_command(ctx, req, RangeType::Auto, None)
}
pub fn zrevrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_command(ctx, req, RangeType::Rank, Some(true))
}
pub fn zrangebyscore(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_command(ctx, req, RangeType::Score, Some(false))
}
pub fn zrevrangebyscore(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_command(ctx, req, RangeType::Score, Some(true))
}
pub fn zrangebylex(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_command(ctx, req, RangeType::Lex, Some(false))
}
pub fn zrevrangebylex(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_command(ctx, req, RangeType::Lex, Some(true))
}

pub fn zrangestore(ctx: &mut Exec<'_, '_>, req: &Request) {
    let dst = req.arg(1);
    let Ok(spec) = parse_range(ctx, req, 2, RangeType::Auto, None, true) else { return };
    let Ok(bounds) = parse_bounds(ctx, req, &spec) else { return };
    let Ok(found) = ctx.read_typed(req.arg(2), Kind::ZSet) else { return };
    let items = found.map(|loc| select(zset(ctx, loc), &spec, &bounds)).unwrap_or_default();
    // Redis sizes the destination by the rank range's length; score and lex ranges grow it.
    let hint = if spec.kind == RangeType::Rank { items.len() } else { 0 };
    store(ctx, dst, &items, (hint, 0));
    reply::integer(ctx.out, items.len() as i64);
}

/// Replaces `dst` with a sorted set of `items`, in the small form when they fit (as Redis's
/// `zsetConvertToListpackIfNeeded` leaves a stored result).
pub fn store_scored(ctx: &mut Exec<'_, '_>, dst: &[u8], items: &[(Vec<u8>, f64)]) {
    let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    store(ctx, dst, items, (items.len(), maxlen));
}

/// Replaces `dst` with a sorted set of `items` (deleting it when there are none), created in
/// the form Redis picks for `hint` (members, longest member).
fn store(ctx: &mut Exec<'_, '_>, dst: &[u8], items: &[(Vec<u8>, f64)], hint: (usize, usize)) {
    let existed = ctx.lookup(dst).is_some();
    if existed {
        ctx.delete(dst);
    }
    if items.is_empty() {
        if existed {
            ctx.emit(dst, || argv!["DEL", dst]);
        }
        return;
    }
    let enc = ctx.settings.enc;
    let mut z = ZSet::with_hint(hint.0, hint.1, &enc);
    for (m, s) in items {
        z.insert(m, *s, &enc);
    }
    ctx.create(dst, Value::ZSet(z));
    ctx.emit(dst, || argv!["DEL", dst]);
    ctx.emit(dst, || {
        let mut v = argv!["ZADD", dst];
        for (m, s) in items {
            v.push(Bytes::from(format_double(*s)));
            v.push(Bytes::copy_from_slice(m));
        }
        v
    });
}

fn count_generic(ctx: &mut Exec<'_, '_>, req: &Request, lex: bool) {
    let spec = RangeSpec {
        kind: if lex { RangeType::Lex } else { RangeType::Score },
        rev: false,
        offset: 0,
        limit: -1,
        withscores: false,
        min: 2,
        max: 3,
    };
    let Ok(bounds) = parse_bounds(ctx, req, &spec) else { return };
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::ZSet) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let o = zset(ctx, loc).ordered();
    let (lo, hi) = match &bounds {
        Bounds::Score(a, b) => score_span(&o, *a, *b),
        Bounds::Lex(a, b) => lex_span(&o, a, b),
        Bounds::Rank(..) => unreachable!("count commands take score or lex bounds"),
    };
    reply::integer(ctx.out, (hi - lo) as i64);
}

pub fn zcount(ctx: &mut Exec<'_, '_>, req: &Request) {
    count_generic(ctx, req, false)
}
pub fn zlexcount(ctx: &mut Exec<'_, '_>, req: &Request) {
    count_generic(ctx, req, true)
}

fn remrange(ctx: &mut Exec<'_, '_>, req: &Request, kind: RangeType) {
    let key = req.arg(1);
    let spec = RangeSpec { kind, rev: false, offset: 0, limit: -1, withscores: false, min: 2, max: 3 };
    let Ok(bounds) = parse_bounds(ctx, req, &spec) else { return };
    let Ok(found) = ctx.write_typed(key, Kind::ZSet) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let victims: Vec<Vec<u8>> = select(zset(ctx, loc), &spec, &bounds).into_iter().map(|(m, _)| m).collect();
    let z = zset_mut(ctx, loc);
    for m in &victims {
        z.remove(m);
    }
    if !victims.is_empty() {
        ctx.drop_if_empty(key, loc);
        ctx.emit(key, || {
            let mut v = argv!["ZREM", key];
            v.extend(victims.iter().map(|m| Bytes::copy_from_slice(m)));
            v
        });
    }
    reply::integer(ctx.out, victims.len() as i64);
}

pub fn zremrangebyrank(ctx: &mut Exec<'_, '_>, req: &Request) {
    remrange(ctx, req, RangeType::Rank)
}
pub fn zremrangebyscore(ctx: &mut Exec<'_, '_>, req: &Request) {
    remrange(ctx, req, RangeType::Score)
}
pub fn zremrangebylex(ctx: &mut Exec<'_, '_>, req: &Request) {
    remrange(ctx, req, RangeType::Lex)
}

// ---------------------------------------------------------------------------------------
// Pops

/// Pops up to `count` members from the low (`max` false) or high end of the set at `key`,
/// deleting it when emptied, and records the removal.
pub fn pop_from(ctx: &mut Exec<'_, '_>, key: &[u8], loc: Loc, max: bool, count: usize) -> Scored {
    let z = zset_mut(ctx, loc);
    let len = z.len();
    let n = count.min(len);
    let mut items = Vec::with_capacity(n);
    let o = z.ordered();
    if max {
        o.visit(len - n, len, true, |m, s| items.push((m.to_vec(), s)));
    } else {
        o.visit(0, n, false, |m, s| items.push((m.to_vec(), s)));
    }
    drop(o);
    for (m, _) in &items {
        z.remove(m);
    }
    if !items.is_empty() {
        ctx.drop_if_empty(key, loc);
        ctx.emit(key, || {
            let mut v = argv!["ZREM", key];
            v.extend(items.iter().map(|(m, _)| Bytes::copy_from_slice(m)));
            v
        });
    }
    items
}

fn zpop(ctx: &mut Exec<'_, '_>, req: &Request, max: bool) {
    let key = req.arg(1);
    if req.len() > 3 {
        return ctx.syntax();
    }
    let count = if req.len() == 3 {
        match args::int(req.arg(2)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return ctx.err("ERR value is out of range, must be positive"),
        }
    } else {
        None
    };
    let Ok(found) = ctx.write_typed(key, Kind::ZSet) else { return };
    let items = match found {
        Some(loc) if count != Some(0) => pop_from(ctx, key, loc, max, count.unwrap_or(1)),
        _ => Vec::new(),
    };
    let proto = ctx.proto;
    match count {
        // One member without a count: a flat [member, score].
        None => {
            reply::array_len(ctx.out, items.len() * 2);
            for (m, s) in &items {
                write_member(ctx.out, proto, m, Some(*s), false);
            }
        }
        Some(_) => write_members(ctx.out, proto, &items, true),
    }
}

pub fn zpopmin(ctx: &mut Exec<'_, '_>, req: &Request) {
    zpop(ctx, req, false)
}
pub fn zpopmax(ctx: &mut Exec<'_, '_>, req: &Request) {
    zpop(ctx, req, true)
}

fn min_max(a: &[u8]) -> Option<super::lists::End> {
    if is(a, "MIN") {
        Some(super::lists::End::Left)
    } else if is(a, "MAX") {
        Some(super::lists::End::Right)
    } else {
        None
    }
}

/// Parses `numkeys key... MIN|MAX [COUNT n]` with `numkeys` at `at`.
pub fn parse_zmpop(ctx: &mut Exec<'_, '_>, req: &Request, at: usize) -> Option<super::lists::MpopArgs> {
    super::lists::parse_mpop(ctx, req, at, min_max)
}

/// `[key, [[member, score], ...]]`, the reply of ZMPOP and BZMPOP.
pub fn reply_keyed(ctx: &mut Exec<'_, '_>, key: &[u8], items: &[(Vec<u8>, f64)]) {
    let proto = ctx.proto;
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, key);
    reply::array_len(ctx.out, items.len());
    for (m, s) in items {
        reply::array_len(ctx.out, 2);
        write_member(ctx.out, proto, m, Some(*s), false);
    }
}

/// `[key, member, score]`, the reply of BZPOPMIN and BZPOPMAX.
pub fn reply_popped_one(ctx: &mut Exec<'_, '_>, key: &[u8], item: &(Vec<u8>, f64)) {
    let proto = ctx.proto;
    reply::array_len(ctx.out, 3);
    reply::bulk(ctx.out, key);
    write_member(ctx.out, proto, &item.0, Some(item.1), false);
}

/// Pops from the first non-empty sorted set among the keys; replies
/// `[key, [[member, score], ...]]` or the null array. Returns whether anything was popped.
pub fn mpop_zsets(ctx: &mut Exec<'_, '_>, req: &Request, a: &super::lists::MpopArgs) -> bool {
    for i in a.keys.clone() {
        let key = req.arg(i);
        let Ok(found) = ctx.write_typed(key, Kind::ZSet) else { return false };
        if let Some(loc) = found {
            let items = pop_from(ctx, key, loc, a.end == super::lists::End::Right, a.count);
            reply_keyed(ctx, key, &items);
            return true;
        }
    }
    reply::null_array(ctx.out, ctx.proto);
    false
}

pub fn zmpop(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(a) = parse_zmpop(ctx, req, 1) else { return };
    mpop_zsets(ctx, req, &a);
}

pub fn zrandmember(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let mut rng = rand::thread_rng();
    if req.len() == 2 {
        let Ok(found) = ctx.read_typed(key, Kind::ZSet) else { return };
        let pick = found.and_then(|loc| {
            let z = zset(ctx, loc);
            let o = z.ordered();
            (!o.is_empty()).then(|| o.get(rand::Rng::gen_range(&mut rng, 0..o.len())).0.to_vec())
        });
        return match pick {
            Some(m) => reply::bulk(ctx.out, &m),
            None => reply::null(ctx.out, ctx.proto),
        };
    }
    let Some((count, unique)) = random_count_with_option(ctx, req, "WITHSCORES") else { return };
    let withscores = req.len() == 4;
    let Ok(found) = ctx.read_typed(key, Kind::ZSet) else { return };
    let Some(loc) = found else { return reply::array_len(ctx.out, 0) };
    let o = zset(ctx, loc).ordered();
    let len = o.len();
    let items: Scored = if !unique || count == 1 {
        (0..count)
            .map(|_| {
                let (m, s) = o.get(rand::Rng::gen_range(&mut rng, 0..len));
                (m.to_vec(), s)
            })
            .collect()
    } else {
        let mut idx: Vec<usize> = (0..len).collect();
        if (count as usize) < len {
            use rand::seq::SliceRandom;
            idx.partial_shuffle(&mut rng, count as usize);
            idx.truncate(count as usize);
        }
        idx.into_iter()
            .map(|i| {
                let (m, s) = o.get(i);
                (m.to_vec(), s)
            })
            .collect()
    };
    drop(o);
    write_members(ctx.out, ctx.proto, &items, withscores);
}

// ---------------------------------------------------------------------------------------
// Algebra

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let s = acc + v;
                // inf + -inf: Redis settles on 0.
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

/// A source of the algebra: a sorted set, or a plain set whose members score 1.
enum Source<'a> {
    Z(&'a ZSet),
    S(&'a Set),
    Missing,
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
            Source::Missing => 0,
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Source::Z(z) => z.score(m),
            Source::S(s) => s.contains(m).then_some(1.0),
            Source::Missing => None,
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Source::Z(z) => {
                let o = z.ordered();
                o.visit(0, o.len(), false, f);
            }
            Source::S(s) => s.for_each(|e| f(&e.to_vec(), 1.0)),
            Source::Missing => {}
        }
    }
}

/// Parses and runs ZUNION/ZINTER/ZDIFF (and STORE/CARD forms) with `numkeys` at `at`.
/// Returns the result sorted by (score, member), or `None` after an error reply.
fn algebra(
    ctx: &mut Exec<'_, '_>,
    req: &Request,
    at: usize,
    op: SetOp,
    store: bool,
    limit: &mut usize,
    card: bool,
) -> Option<(Scored, bool)> {
    let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
    let n = {
        match args::int(req.arg(at)) {
            None => {
                ctx.err(NOT_INTEGER);
                return None;
            }
            Some(n) if n < 1 => {
                ctx.err(&format!("ERR at least 1 input key is needed for '{name}' command"));
                return None;
            }
            Some(n) if n as u64 > (req.len() - at - 1) as u64 => {
                ctx.err(SYNTAX);
                return None;
            }
            Some(n) => n as usize,
        }
    };
    let keys = at + 1..at + 1 + n;
    // Every key is looked up (read lookups, STORE too, as in Redis 7) and type-checked
    // before the options are parsed, as Redis does.
    let mut locs = Vec::with_capacity(n);
    for i in keys.clone() {
        let key = req.arg(i);
        let found = ctx.read(key);
        if let Some(loc) = found {
            if !matches!(ctx.value(loc).kind(), Kind::ZSet | Kind::Set) {
                ctx.wrongtype();
                return None;
            }
        }
        locs.push(found);
    }
    let mut weights = vec![1.0f64; n];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut j = keys.end;
    while j < req.len() {
        let left = req.len() - j;
        let a = req.arg(j);
        if card && is(a, "LIMIT") && left >= 2 {
            match args::int(req.arg(j + 1)) {
                Some(l) if l < 0 => {
                    ctx.err("ERR LIMIT can't be negative");
                    return None;
                }
                None => {
                    ctx.err("ERR LIMIT can't be negative");
                    return None;
                }
                Some(l) => *limit = if l == 0 { usize::MAX } else { l as usize },
            }
            j += 2;
        } else if !card && op != SetOp::Diff && left > n && is(a, "WEIGHTS") {
            for (w, i) in weights.iter_mut().zip(j + 1..) {
                match score_arg(req.arg(i)) {
                    Some(v) => *w = v,
                    None => {
                        ctx.err("ERR weight value is not a float");
                        return None;
                    }
                }
            }
            j += n + 1;
        } else if !card && op != SetOp::Diff && left >= 2 && is(a, "AGGREGATE") {
            let v = req.arg(j + 1);
            agg = if is(v, "SUM") {
                Aggregate::Sum
            } else if is(v, "MIN") {
                Aggregate::Min
            } else if is(v, "MAX") {
                Aggregate::Max
            } else {
                ctx.err(SYNTAX);
                return None;
            };
            j += 2;
        } else if !card && !store && is(a, "WITHSCORES") {
            withscores = true;
            j += 1;
        } else {
            ctx.err(SYNTAX);
            return None;
        }
    }
    let sources: Vec<Source<'_>> = locs
        .iter()
        .map(|l| match l.map(|loc| ctx.value(loc)) {
            Some(Value::ZSet(z)) => Source::Z(z),
            Some(Value::Set(s)) => Source::S(s),
            _ => Source::Missing,
        })
        .collect();
    let weigh = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut out: Scored = Vec::new();
    match op {
        SetOp::Inter => {
            if sources.iter().all(|s| s.len() > 0) {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by_key(|&i| sources[i].len());
                let first = order[0];
                sources[first].for_each(|m, s| {
                    if out.len() >= *limit {
                        return;
                    }
                    let mut acc = weigh(s, weights[first]);
                    for &i in &order[1..] {
                        match sources[i].score(m) {
                            Some(v) => acc = agg.apply(acc, weigh(v, weights[i])),
                            None => return,
                        }
                    }
                    out.push((m.to_vec(), acc));
                });
            }
        }
        SetOp::Union => {
            let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
            for (i, src) in sources.iter().enumerate() {
                src.for_each(|m, s| {
                    let v = weigh(s, weights[i]);
                    match index.get(m) {
                        Some(&k) => out[k].1 = agg.apply(out[k].1, v),
                        None => {
                            index.insert(m.to_vec(), out.len());
                            out.push((m.to_vec(), v));
                        }
                    }
                });
            }
        }
        SetOp::Diff => {
            sources[0].for_each(|m, s| {
                if !sources[1..].iter().any(|o| o.score(m).is_some()) {
                    out.push((m.to_vec(), s));
                }
            });
        }
    }
    drop(sources);
    out.sort_by(|a, b| cmp((a.1, &a.0), (b.1, &b.0)));
    Some((out, withscores))
}

fn algebra_reply(ctx: &mut Exec<'_, '_>, req: &Request, op: SetOp) {
    let mut limit = usize::MAX;
    let Some((items, withscores)) = algebra(ctx, req, 1, op, false, &mut limit, false) else { return };
    write_members(ctx.out, ctx.proto, &items, withscores);
}

fn algebra_store(ctx: &mut Exec<'_, '_>, req: &Request, op: SetOp) {
    let mut limit = usize::MAX;
    let Some((items, _)) = algebra(ctx, req, 2, op, true, &mut limit, false) else { return };
    // Redis converts the result to the small form when it fits.
    let maxlen = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    store(ctx, req.arg(1), &items, (items.len(), maxlen));
    reply::integer(ctx.out, items.len() as i64);
}

pub fn zunion(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_reply(ctx, req, SetOp::Union)
}
pub fn zinter(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_reply(ctx, req, SetOp::Inter)
}
pub fn zdiff(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_reply(ctx, req, SetOp::Diff)
}
pub fn zunionstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_store(ctx, req, SetOp::Union)
}
pub fn zinterstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_store(ctx, req, SetOp::Inter)
}
pub fn zdiffstore(ctx: &mut Exec<'_, '_>, req: &Request) {
    algebra_store(ctx, req, SetOp::Diff)
}

pub fn zintercard(ctx: &mut Exec<'_, '_>, req: &Request) {
    let mut limit = usize::MAX;
    let Some((items, _)) = algebra(ctx, req, 1, SetOp::Inter, false, &mut limit, true) else { return };
    reply::integer(ctx.out, items.len().min(limit) as i64);
}

pub fn zscan(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some((loc, o)) = super::scan::start(ctx, req, Kind::ZSet, false) else { return };
    let z = zset(ctx, loc);
    let (cursor, items) =
        super::scan::collect(&o, |c, visit| z.scan(c, |m, s| visit(m, Some(format_double(s).as_bytes()))));
    super::scan::write(ctx, &o, true, cursor, &items);
}
