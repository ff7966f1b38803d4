//! Stream commands: XADD and trimming, ranges, XREAD, consumer groups (XGROUP, XREADGROUP,
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO and XSETID, with Redis 7.0's argument order,
//! errors and reply shapes. The blocking forms of XREAD/XREADGROUP register with the same
//! waiter machinery as BLPOP (`blocking.rs`).

use super::args::{self, is};
use super::exec::{Exec, Loc, NOT_INTEGER, SYNTAX};
use crate::argv;
use crate::shard::types::stream::{Consumer, Fields, Group, Pending, Stream, StreamId, Trim};
use crate::shard::value::{Kind, Value};
use bytes::BytesMut;
use shoal_proto::{reply, Protocol, Request};

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
/// Redis's `stream-node-max-entries`: entries per node, the unit of approximate trimming.
pub const NODE_MAX_ENTRIES: u64 = 100;

fn stream<'c>(ctx: &'c Exec<'_, '_>, loc: Loc) -> &'c Stream {
    match ctx.value(loc) {
        Value::Stream(s) => s,
        _ => unreachable!("type checked"),
    }
}

fn stream_mut<'c>(ctx: &'c mut Exec<'_, '_>, loc: Loc) -> &'c mut Stream {
    match ctx.value_mut(loc) {
        Value::Stream(s) => s,
        _ => unreachable!("type checked"),
    }
}

/// C's `strtoull` on a whole string, as Redis's `string2ull` falls back to.
fn parse_u64(a: &[u8]) -> Option<u64> {
    if let Some(n) = args::int(a) {
        return (n >= 0).then_some(n as u64);
    }
    let s = std::str::from_utf8(a).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// How an ID argument was written.
struct ParsedId {
    id: StreamId,
    /// False for XADD's `<ms>-*`.
    seq_given: bool,
}

/// Redis's `streamGenericParseIDOrReply`. `strict` refuses `-` and `+`; `auto_seq` accepts
/// `<ms>-*`.
fn parse_id_full(a: &[u8], missing_seq: u64, strict: bool, auto_seq: bool) -> Option<ParsedId> {
    if a.len() > 127 {
        return None;
    }
    if !strict && a == b"-" {
        return Some(ParsedId { id: StreamId::MIN, seq_given: true });
    }
    if !strict && a == b"+" {
        return Some(ParsedId { id: StreamId::MAX, seq_given: true });
    }
    let (ms_part, seq_part) = match a.iter().position(|&b| b == b'-') {
        Some(i) => (&a[..i], Some(&a[i + 1..])),
        None => (a, None),
    };
    let ms = parse_u64(ms_part)?;
    match seq_part {
        None => Some(ParsedId { id: StreamId::new(ms, missing_seq), seq_given: true }),
        Some(b"*") if auto_seq => Some(ParsedId { id: StreamId::new(ms, 0), seq_given: false }),
        Some(s) => Some(ParsedId { id: StreamId::new(ms, parse_u64(s)?), seq_given: true }),
    }
}

/// A strict ID (no `-`/`+`), or an error reply.
fn strict_id(ctx: &mut Exec<'_, '_>, a: &[u8]) -> Option<StreamId> {
    match parse_id_full(a, 0, true, false) {
        Some(p) => Some(p.id),
        None => {
            ctx.err(INVALID_ID);
            None
        }
    }
}

/// An ID where `-` and `+` are allowed (XGROUP SETID's; CREATE's is strict).
fn loose_id(ctx: &mut Exec<'_, '_>, a: &[u8]) -> Option<StreamId> {
    match parse_id_full(a, 0, false, false) {
        Some(p) => Some(p.id),
        None => {
            ctx.err(INVALID_ID);
            None
        }
    }
}

/// An interval bound (`(` makes it exclusive), as XRANGE, XPENDING and XAUTOCLAIM take.
fn interval_id(ctx: &mut Exec<'_, '_>, a: &[u8], missing_seq: u64, start: bool) -> Option<StreamId> {
    let (exclusive, body) = match a.strip_prefix(b"(") {
        Some(rest) if a.len() > 1 => (true, rest),
        _ => (false, a),
    };
    let Some(p) = parse_id_full(body, missing_seq, exclusive, false) else {
        ctx.err(INVALID_ID);
        return None;
    };
    if !exclusive {
        return Some(p.id);
    }
    let moved = if start { p.id.incr() } else { p.id.decr() };
    if moved.is_none() {
        ctx.err(if start { "ERR invalid start ID for the interval" } else { "ERR invalid end ID for the interval" });
    }
    moved
}

fn write_id(out: &mut BytesMut, id: StreamId) {
    reply::bulk(out, id.to_string().as_bytes());
}

/// `[id, [field, value, ...]]`.
fn write_entry(out: &mut BytesMut, id: StreamId, fields: &Fields) {
    reply::array_len(out, 2);
    write_id(out, id);
    reply::array_len(out, fields.len() * 2);
    for (f, v) in fields.iter() {
        reply::bulk(out, f);
        reply::bulk(out, v);
    }
}

fn write_entries(out: &mut BytesMut, entries: &[(StreamId, &Fields)]) {
    reply::array_len(out, entries.len());
    for (id, f) in entries {
        write_entry(out, *id, f);
    }
}

// ---------------------------------------------------------------------------------------
// XADD, XTRIM

struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// XADD's explicit ID (None for `*`).
    id: Option<ParsedId>,
}

/// Redis's `streamParseAddOrTrimArgsOrReply`: the options from argument 2 on; for XADD, the
/// position of the ID argument.
fn parse_trim_args(ctx: &mut Exec<'_, '_>, req: &Request, xadd: bool) -> Option<(TrimArgs, usize)> {
    let mut t = TrimArgs { how: None, approx: false, limit: 0, nomkstream: false, id: None };
    let mut limit_given = None;
    let mut i = 2;
    while i < req.len() {
        let more = req.len() - 1 - i;
        let a = req.arg(i);
        let trim_kind = if is(a, "MAXLEN") {
            Some(true)
        } else if is(a, "MINID") {
            Some(false)
        } else {
            None
        };
        if xadd && a == b"*" {
            break;
        } else if let (Some(maxlen), true) = (trim_kind, more > 0) {
            if t.how.is_some() {
                ctx.err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            t.approx = false;
            let next = req.arg(i + 1);
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let v = req.arg(i + 1);
            if maxlen {
                match args::int(v) {
                    None => {
                        ctx.err(NOT_INTEGER);
                        return None;
                    }
                    Some(n) if n < 0 => {
                        ctx.err("ERR The MAXLEN argument must be >= 0.");
                        return None;
                    }
                    Some(n) => t.how = Some(Trim::MaxLen(n as u64)),
                }
            } else {
                t.how = Some(Trim::MinId(strict_id(ctx, v)?));
            }
            i += 1;
        } else if is(a, "LIMIT") && more > 0 {
            match args::int(req.arg(i + 1)) {
                None => {
                    ctx.err(NOT_INTEGER);
                    return None;
                }
                Some(n) if n < 0 => {
                    ctx.err("ERR The LIMIT argument must be >= 0.");
                    return None;
                }
                Some(n) => limit_given = Some(n as u64),
            }
            i += 1;
        } else if xadd && is(a, "NOMKSTREAM") {
            t.nomkstream = true;
        } else if xadd {
            // The ID, parsed here so its error comes before the options' consistency checks.
            match parse_id_full(a, 0, true, true) {
                Some(p) => t.id = Some(p),
                None => {
                    ctx.err(INVALID_ID);
                    return None;
                }
            }
            break;
        } else {
            ctx.err(SYNTAX);
            return None;
        }
        i += 1;
    }
    if limit_given.is_some_and(|l| l > 0) && t.how.is_none() {
        ctx.err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && t.how.is_none() {
        ctx.err("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    match limit_given {
        Some(_) if !t.approx => {
            ctx.err("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
        Some(l) => t.limit = l,
        None => t.limit = if t.approx { 100 * NODE_MAX_ENTRIES } else { 0 },
    }
    Some((t, i))
}

pub fn xadd(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some((mut t, id_pos)) = parse_trim_args(ctx, req, true) else { return };
    if id_pos >= req.len() {
        return ctx.err("ERR wrong number of arguments for 'xadd' command");
    }
    let given = t.id.take();
    let fields_at = id_pos + 1;
    let nfields = req.len() - fields_at;
    if nfields < 2 || !nfields.is_multiple_of(2) {
        return ctx.err("ERR wrong number of arguments for 'xadd' command");
    }
    if given.as_ref().is_some_and(|p| p.seq_given && p.id.is_zero()) {
        return ctx.err("ERR The ID specified in XADD must be greater than 0-0");
    }
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let created = found.is_none();
    let loc = match found {
        Some(loc) => loc,
        None if t.nomkstream => return reply::null(ctx.out, ctx.proto),
        None => ctx.create(key, Value::Stream(Box::default())),
    };
    let now = ctx.now;
    let s = stream_mut(ctx, loc);
    if s.last_id == StreamId::MAX {
        return ctx.err("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match given {
        None => {
            if now > s.last_id.ms {
                StreamId::new(now, 0)
            } else {
                s.last_id.incr().expect("not exhausted")
            }
        }
        Some(p) if !p.seq_given && p.id.ms == s.last_id.ms => match s.last_id.seq.checked_add(1) {
            Some(seq) => StreamId::new(p.id.ms, seq),
            // Redis 7.0 answers this case with the "too large" error (its errno is not set).
            None => return abandon(ctx, key, created, "ERR Elements are too large to be stored"),
        },
        Some(p) => p.id,
    };
    if id <= s.last_id {
        return abandon(
            ctx,
            key,
            created,
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        );
    }
    let fields: Fields =
        (fields_at..req.len()).step_by(2).map(|i| (req.arg(i).into(), req.arg(i + 1).into())).collect();
    s.append(id, fields, NODE_MAX_ENTRIES);
    if let Some(how) = t.how {
        s.trim(how, t.approx, t.limit);
    }
    let id_text = id.to_string();
    ctx.emit(key, || {
        let mut v = argv!["XADD", key, id_text];
        v.extend((fields_at..req.len()).map(|i| req.arg_bytes(i)));
        v
    });
    reply::bulk(ctx.out, id_text.as_bytes());
}

/// An XADD error after the stream was looked up. Redis creates the key before checking the
/// ID and keeps it; a new key here cannot fail that check, but an empty one is dropped
/// rather than left behind should that ever change.
fn abandon(ctx: &mut Exec<'_, '_>, key: &[u8], created: bool, msg: &str) {
    if created {
        ctx.delete(key);
    }
    ctx.err(msg);
}

pub fn xtrim(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some((t, _)) = parse_trim_args(ctx, req, false) else { return };
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let how = t.how.expect("XTRIM requires a strategy");
    let n = stream_mut(ctx, loc).trim(how, t.approx, t.limit);
    if n > 0 {
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, n as i64);
}

pub fn xlen(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::Stream) else { return };
    let n = found.map_or(0, |loc| stream(ctx, loc).len());
    reply::integer(ctx.out, n as i64);
}

pub fn xdel(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found else { return reply::integer(ctx.out, 0) };
    let mut ids = Vec::with_capacity(req.len() - 2);
    for i in 2..req.len() {
        let Some(id) = strict_id(ctx, req.arg(i)) else { return };
        ids.push(id);
    }
    let n = stream_mut(ctx, loc).delete(&ids);
    if n > 0 {
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, n as i64);
}

// ---------------------------------------------------------------------------------------
// XRANGE, XREVRANGE

fn range_generic(ctx: &mut Exec<'_, '_>, req: &Request, rev: bool) {
    let (start_arg, end_arg) = if rev { (req.arg(3), req.arg(2)) } else { (req.arg(2), req.arg(3)) };
    let Some(start) = interval_id(ctx, start_arg, 0, true) else { return };
    let Some(end) = interval_id(ctx, end_arg, u64::MAX, false) else { return };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < req.len() {
        if is(req.arg(j), "COUNT") && j + 1 < req.len() {
            match args::int(req.arg(j + 1)) {
                None => return ctx.err(NOT_INTEGER),
                Some(c) => count = c.max(0),
            }
            j += 2;
        } else {
            return ctx.err(SYNTAX);
        }
    }
    let Ok(found) = ctx.read_typed(req.arg(1), Kind::Stream) else { return };
    let Some(loc) = found else { return reply::array_len(ctx.out, 0) };
    if count == 0 {
        return reply::null_array(ctx.out, ctx.proto);
    }
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    let entries = s.range(start, end, rev, count.max(0) as usize);
    write_entries(out, &entries);
}

pub fn xrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_generic(ctx, req, false)
}

pub fn xrevrange(ctx: &mut Exec<'_, '_>, req: &Request) {
    range_generic(ctx, req, true)
}

// ---------------------------------------------------------------------------------------
// XREAD, XREADGROUP

/// A read's group context.
#[derive(Clone, Debug)]
pub struct GroupRead {
    pub group: Vec<u8>,
    pub consumer: Vec<u8>,
    pub noack: bool,
}

/// A parsed XREAD/XREADGROUP.
pub struct ReadArgs {
    pub count: usize,
    /// Milliseconds to block for (0: for ever), when BLOCK was given.
    pub block: Option<u64>,
    pub group: Option<GroupRead>,
    /// Argument positions of the keys; each key's ID follows `keys.len()` arguments later.
    pub keys: std::ops::Range<usize>,
}

/// Where the keys of an XREAD/XREADGROUP are, for routing: after STREAMS, half of the rest.
pub fn read_keys(req: &Request) -> Vec<usize> {
    let mut i = 1;
    while i < req.len() {
        let a = req.arg(i);
        if is(a, "STREAMS") {
            let rest = req.len() - i - 1;
            if rest == 0 || !rest.is_multiple_of(2) {
                return Vec::new();
            }
            return (i + 1..i + 1 + rest / 2).collect();
        }
        if (is(a, "BLOCK") || is(a, "COUNT")) && i + 1 < req.len() {
            i += 2;
        } else if is(a, "GROUP") && i + 2 < req.len() {
            i += 3;
        } else {
            i += 1;
        }
    }
    Vec::new()
}

fn parse_read(ctx: &mut Exec<'_, '_>, req: &Request, xreadgroup: bool) -> Option<ReadArgs> {
    let name = if xreadgroup { "XREADGROUP" } else { "XREAD" };
    let mut r = ReadArgs { count: 0, block: None, group: None, keys: 0..0 };
    let mut noack = false;
    let mut streams_at = None;
    let mut i = 1;
    while i < req.len() {
        let more = req.len() - i - 1;
        let a = req.arg(i);
        if is(a, "BLOCK") && more > 0 {
            if ctx.in_script {
                // Redis's words, with the command's name as the script wrote it.
                let cmd = String::from_utf8_lossy(req.arg(0));
                ctx.err(&format!("ERR {cmd} command is not allowed with BLOCK option from scripts"));
                return None;
            }
            i += 1;
            match args::int(req.arg(i)) {
                None => {
                    ctx.err("ERR timeout is not an integer or out of range");
                    return None;
                }
                Some(t) if t < 0 => {
                    ctx.err("ERR timeout is negative");
                    return None;
                }
                Some(t) => r.block = Some(t as u64),
            }
        } else if is(a, "COUNT") && more > 0 {
            i += 1;
            match args::int(req.arg(i)) {
                None => {
                    ctx.err(NOT_INTEGER);
                    return None;
                }
                Some(c) => r.count = c.max(0) as usize,
            }
        } else if is(a, "STREAMS") && more > 0 {
            if !more.is_multiple_of(2) {
                let symbol = if xreadgroup { '>' } else { '$' };
                ctx.err(&format!(
                    "ERR Unbalanced {name} list of streams: for each stream key an ID or '{symbol}' must be specified."
                ));
                return None;
            }
            streams_at = Some(i + 1);
            break;
        } else if is(a, "GROUP") && more >= 2 {
            if !xreadgroup {
                ctx.err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
                return None;
            }
            r.group =
                Some(GroupRead { group: req.arg(i + 1).to_vec(), consumer: req.arg(i + 2).to_vec(), noack: false });
            i += 2;
        } else if is(a, "NOACK") {
            if !xreadgroup {
                ctx.err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
                return None;
            }
            noack = true;
        } else {
            ctx.err(SYNTAX);
            return None;
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        ctx.err(SYNTAX);
        return None;
    };
    if xreadgroup && r.group.is_none() {
        ctx.err("ERR Missing GROUP option for XREADGROUP");
        return None;
    }
    if let Some(g) = r.group.as_mut() {
        g.noack = noack;
    }
    let n = (req.len() - at) / 2;
    r.keys = at..at + n;
    Some(r)
}

/// What a stream read starts after: an ID, or `>` (new entries of the group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    Id(StreamId),
    New,
}

/// Resolves each key's ID (`$`, `>`, or an ID), checking types and groups in Redis's order.
fn resolve_ids(ctx: &mut Exec<'_, '_>, req: &Request, r: &ReadArgs) -> Option<Vec<After>> {
    let n = r.keys.len();
    let mut out = Vec::with_capacity(n);
    for i in r.keys.clone() {
        let key = req.arg(i);
        let id_arg = req.arg(i + n);
        let found = ctx.read_typed(key, Kind::Stream).ok()?;
        if let Some(g) = &r.group {
            let has = found.is_some_and(|loc| stream(ctx, loc).groups.contains_key(g.group.as_slice()));
            if !has {
                ctx.err(&format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(&g.group)
                ));
                return None;
            }
        }
        if id_arg == b"$" {
            if r.group.is_some() {
                ctx.err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
                return None;
            }
            out.push(After::Id(found.map_or(StreamId::MIN, |loc| stream(ctx, loc).last_id)));
        } else if id_arg == b">" {
            if r.group.is_none() {
                ctx.err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
                return None;
            }
            out.push(After::New);
        } else {
            let id = strict_id(ctx, id_arg)?;
            // Redis encodes `>` as the largest ID, so that ID given explicitly means `>`.
            if r.group.is_some() && id == StreamId::MAX {
                out.push(After::New);
            } else {
                out.push(After::Id(id));
            }
        }
    }
    Some(out)
}

/// Reads one stream for a reader: new entries after `after`, or a consumer's history. The
/// reply element (`[key, entries]`, or `key => entries` in RESP3) is written when there is
/// something to serve; returns whether it was.
pub fn serve_stream(ctx: &mut Exec<'_, '_>, key: &[u8], after: After, count: usize, group: Option<&GroupRead>) -> bool {
    let Ok(Some(loc)) = ctx.write_typed(key, Kind::Stream) else { return false };
    let now = ctx.now;
    let resp3 = ctx.proto.is_resp3();
    let s = stream(ctx, loc);
    let Some(g) = group else {
        let After::Id(gt) = after else { return false };
        // Served when an entry (not merely the recorded last ID) is after `gt`.
        if s.last_entry_id().is_none_or(|top| top <= gt) {
            return false;
        }
        let Some(start) = gt.incr() else { return false };
        let (v, out) = ctx.value_and_out(loc);
        let Value::Stream(s) = v else { unreachable!("type checked") };
        let entries = s.range(start, StreamId::MAX, false, count);
        if !resp3 {
            reply::array_len(out, 2);
        }
        reply::bulk(out, key);
        write_entries(out, &entries);
        return true;
    };
    let gname = g.group.as_slice();
    let Some(grp) = s.groups.get(gname) else { return false };
    match after {
        After::Id(from) => {
            // History: the consumer's pending entries after `from`, deleted ones as nil.
            // Strictly after `from`, as for new entries.
            let pending: Vec<StreamId> = match (from.incr(), grp.consumers.get(g.consumer.as_slice())) {
                (Some(start), Some(c)) => c.pending.range(start..).map(|(id, _)| *id).collect(),
                _ => Vec::new(),
            };
            let limit = if count == 0 { usize::MAX } else { count };
            let ids: Vec<StreamId> = pending.into_iter().take(limit).collect();
            let s = stream_mut(ctx, loc);
            let present: Vec<bool> = ids.iter().map(|id| s.entries.contains_key(id)).collect();
            let grp = s.groups.get_mut(gname).expect("checked");
            grp.consumers.entry(g.consumer.clone().into()).or_default().seen_time = now;
            // Re-reading history counts as a delivery, as in Redis.
            for (id, present) in ids.iter().zip(present) {
                if let (Some(p), true) = (grp.pel.get_mut(id), present) {
                    p.delivery_time = now;
                    p.delivery_count += 1;
                }
            }
            let (v, out) = ctx.value_and_out(loc);
            let Value::Stream(s) = v else { unreachable!("type checked") };
            if !resp3 {
                reply::array_len(out, 2);
            }
            reply::bulk(out, key);
            reply::array_len(out, ids.len());
            for id in ids {
                match s.entries.get(&id) {
                    Some(f) => write_entry(out, id, f),
                    None => {
                        reply::array_len(out, 2);
                        write_id(out, id);
                        reply::null_array(out, if resp3 { Protocol::Resp3 } else { Protocol::Resp2 });
                    }
                }
            }
            ctx.emit(key, || argv!["XGROUP", "CREATECONSUMER", key, gname, &g.consumer]);
            true
        }
        After::New => {
            let last = grp.last_id;
            if s.last_entry_id().is_none_or(|top| top <= last) {
                return false;
            }
            let start = last.incr().expect("below the stream's last ID");
            let ids: Vec<StreamId> =
                s.range(start, StreamId::MAX, false, count).into_iter().map(|(id, _)| id).collect();
            let s = stream_mut(ctx, loc);
            for id in &ids {
                s.advance_group(gname, *id);
            }
            let grp = s.groups.get_mut(gname).expect("checked");
            let cname: Box<[u8]> = g.consumer.clone().into();
            grp.consumers.entry(cname.clone()).or_default().seen_time = now;
            if !g.noack {
                for id in &ids {
                    if let Some(old) = grp.pel.get(id).map(|p| p.consumer.clone()) {
                        if let Some(c) = grp.consumers.get_mut(&old) {
                            c.pending.remove(id);
                        }
                    }
                    grp.pel.insert(*id, Pending { consumer: cname.clone(), delivery_time: now, delivery_count: 1 });
                    grp.consumers.get_mut(&cname).expect("created above").pending.insert(*id, ());
                }
            }
            let (v, out) = ctx.value_and_out(loc);
            let Value::Stream(s) = v else { unreachable!("type checked") };
            if !resp3 {
                reply::array_len(out, 2);
            }
            reply::bulk(out, key);
            reply::array_len(out, ids.len());
            for id in &ids {
                write_entry(out, *id, s.entries.get(id).expect("just read"));
            }
            // The effect, as Redis propagates it: each delivery as a forced XCLAIM, then the
            // group's new position.
            if !g.noack {
                for id in &ids {
                    let (id_text, now_text) = (id.to_string(), now.to_string());
                    ctx.emit(key, || {
                        argv![
                            "XCLAIM",
                            key,
                            gname,
                            &g.consumer,
                            "0",
                            id_text,
                            "TIME",
                            now_text,
                            "RETRYCOUNT",
                            "1",
                            "FORCE",
                            "JUSTID",
                            "LASTID",
                            id_text
                        ]
                    });
                }
            }
            let (last, read) = {
                let grp = &stream(ctx, loc).groups[gname];
                (grp.last_id.to_string(), grp.entries_read.map_or(-1, |n| n as i64).to_string())
            };
            ctx.emit(key, || argv!["XGROUP", "SETID", key, gname, last, "ENTRIESREAD", read]);
            true
        }
    }
}

fn read_generic(ctx: &mut Exec<'_, '_>, req: &Request, xreadgroup: bool) {
    let Some(r) = parse_read(ctx, req, xreadgroup) else { return };
    let Some(ids) = resolve_ids(ctx, req, &r) else { return };
    let mark = ctx.out.len();
    let mut served = 0;
    // The reply's length is known only afterwards: write into a scratch buffer first.
    let mut body = BytesMut::new();
    std::mem::swap(ctx.out, &mut body);
    for (k, i) in r.keys.clone().enumerate() {
        let after = match (ids[k], &r.group) {
            // History reads are always served, even when empty.
            (After::Id(id), Some(_)) => After::Id(id),
            (a, _) => a,
        };
        // Redis looks every key up a second time here, a read that counts (and announces)
        // a miss again; keyspace statistics match it.
        if ctx.read(req.arg(i)).is_some() && serve_stream(ctx, req.arg(i), after, r.count, r.group.as_ref()) {
            served += 1;
        }
    }
    std::mem::swap(ctx.out, &mut body);
    debug_assert_eq!(ctx.out.len(), mark);
    if served > 0 {
        if ctx.proto.is_resp3() {
            reply::map_len(ctx.out, ctx.proto, served);
        } else {
            reply::array_len(ctx.out, served);
        }
        ctx.out.extend_from_slice(&body);
        return;
    }
    match r.block {
        Some(ms) if !ctx.no_block => {
            let keys: Vec<(Vec<u8>, After)> = r.keys.clone().map(|i| req.arg(i).to_vec()).zip(ids).collect();
            super::blocking::block_on_streams(ctx, req, r.keys.clone(), keys, r.count, r.group.clone(), ms);
        }
        _ => reply::null_array(ctx.out, ctx.proto),
    }
}

pub fn xread(ctx: &mut Exec<'_, '_>, req: &Request) {
    read_generic(ctx, req, false)
}

pub fn xreadgroup(ctx: &mut Exec<'_, '_>, req: &Request) {
    read_generic(ctx, req, true)
}

// ---------------------------------------------------------------------------------------
// XGROUP

fn nogroup_for_key(ctx: &mut Exec<'_, '_>, group: &[u8], key: &[u8]) {
    ctx.err(&format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ));
}

const XGROUP_NEEDS_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

/// Parses `[MKSTREAM] [ENTRIESREAD n]` from argument 5 (MKSTREAM only for CREATE).
fn group_options(ctx: &mut Exec<'_, '_>, req: &Request, create: bool) -> Option<(bool, Option<u64>)> {
    let (mut mk, mut read) = (false, None);
    let mut j = 5;
    while j < req.len() {
        if create && is(req.arg(j), "MKSTREAM") {
            mk = true;
            j += 1;
        } else if is(req.arg(j), "ENTRIESREAD") && j + 1 < req.len() {
            match args::int(req.arg(j + 1)) {
                None => {
                    ctx.err(NOT_INTEGER);
                    return None;
                }
                Some(n) if n < -1 => {
                    ctx.err("ERR value for ENTRIESREAD must be positive or -1");
                    return None;
                }
                Some(n) => read = (n >= 0).then_some(n as u64),
            }
            j += 2;
        } else {
            ctx.err(&super::args::subcommand_syntax_error("XGROUP", req));
            return None;
        }
    }
    Some((mk, read))
}

pub fn xgroup_create(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname) = (req.arg(2), req.arg(3));
    let Some((mkstream, entries_read)) = group_options(ctx, req, true) else { return };
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    if found.is_none() && !mkstream {
        return ctx.err(XGROUP_NEEDS_KEY);
    }
    let last = found.map_or(StreamId::MIN, |loc| stream(ctx, loc).last_id);
    let id = if req.arg(4) == b"$" {
        last
    } else {
        match strict_id(ctx, req.arg(4)) {
            Some(id) => id,
            None => return,
        }
    };
    if found.is_some_and(|loc| stream(ctx, loc).groups.contains_key(gname)) {
        return ctx.err("BUSYGROUP Consumer Group name already exists");
    }
    let loc = match found {
        Some(loc) => loc,
        None => ctx.create(key, Value::Stream(Box::default())),
    };
    let g = Group { last_id: id, entries_read, ..Group::default() };
    stream_mut(ctx, loc).groups.insert(gname.into(), g);
    let (id_text, read_text) = (id.to_string(), entries_read.map_or(-1, |n| n as i64).to_string());
    ctx.emit(key, || argv!["XGROUP", "CREATE", key, gname, id_text, "MKSTREAM", "ENTRIESREAD", read_text]);
    reply::ok(ctx.out);
}

/// The stream and group of an XGROUP subcommand that needs both; `None` after an error.
fn group_target(ctx: &mut Exec<'_, '_>, req: &Request) -> Option<Loc> {
    let (key, gname) = (req.arg(2), req.arg(3));
    let found = ctx.write_typed(key, Kind::Stream).ok()?;
    let Some(loc) = found else {
        ctx.err(XGROUP_NEEDS_KEY);
        return None;
    };
    if !stream(ctx, loc).groups.contains_key(gname) {
        nogroup_for_key(ctx, gname, key);
        return None;
    }
    Some(loc)
}

pub fn xgroup_setid(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some((_, entries_read)) = group_options(ctx, req, false) else { return };
    let Some(loc) = group_target(ctx, req) else { return };
    let (key, gname) = (req.arg(2), req.arg(3));
    let id = if req.arg(4) == b"$" {
        stream(ctx, loc).last_id
    } else {
        match loose_id(ctx, req.arg(4)) {
            Some(id) => id,
            None => return,
        }
    };
    let g = stream_mut(ctx, loc).groups.get_mut(gname).expect("checked");
    g.last_id = id;
    g.entries_read = entries_read;
    ctx.emit_req(key, req);
    reply::ok(ctx.out);
}

pub fn xgroup_destroy(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname) = (req.arg(2), req.arg(3));
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found else { return ctx.err(XGROUP_NEEDS_KEY) };
    let gone = stream_mut(ctx, loc).groups.remove(gname).is_some();
    if gone {
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, gone as i64);
}

pub fn xgroup_createconsumer(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(loc) = group_target(ctx, req) else { return };
    let (key, gname, cname) = (req.arg(2), req.arg(3), req.arg(4));
    let now = ctx.now;
    let g = stream_mut(ctx, loc).groups.get_mut(gname).expect("checked");
    let created = !g.consumers.contains_key(cname);
    if created {
        g.consumers.insert(cname.into(), Consumer { seen_time: now, ..Consumer::default() });
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, created as i64);
}

pub fn xgroup_delconsumer(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(loc) = group_target(ctx, req) else { return };
    let (key, gname, cname) = (req.arg(2), req.arg(3), req.arg(4));
    let g = stream_mut(ctx, loc).groups.get_mut(gname).expect("checked");
    let pending = match g.consumers.remove(cname) {
        Some(c) => {
            for id in c.pending.keys() {
                g.pel.remove(id);
            }
            ctx.emit_req(key, req);
            c.pending.len()
        }
        None => 0,
    };
    reply::integer(ctx.out, pending as i64);
}

// ---------------------------------------------------------------------------------------
// XACK, XPENDING, XCLAIM, XAUTOCLAIM

pub fn xack(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname) = (req.arg(1), req.arg(2));
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found.filter(|loc| stream(ctx, *loc).groups.contains_key(gname)) else {
        return reply::integer(ctx.out, 0);
    };
    let mut ids = Vec::with_capacity(req.len() - 3);
    for i in 3..req.len() {
        let Some(id) = strict_id(ctx, req.arg(i)) else { return };
        ids.push(id);
    }
    let g = stream_mut(ctx, loc).groups.get_mut(gname).expect("checked");
    let mut acked = 0;
    for id in &ids {
        if let Some(p) = g.pel.remove(id) {
            if let Some(c) = g.consumers.get_mut(&p.consumer) {
                c.pending.remove(id);
            }
            acked += 1;
        }
    }
    if acked > 0 {
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, acked);
}

fn nogroup(ctx: &mut Exec<'_, '_>, key: &[u8], group: &[u8]) {
    ctx.err(&format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ));
}

pub fn xpending(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname) = (req.arg(1), req.arg(2));
    let argc = req.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.err(SYNTAX);
    }
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if is(req.arg(3), "IDLE") {
            let Some(v) = args::int(req.arg(4)) else { return ctx.err(NOT_INTEGER) };
            min_idle = v;
            if argc < 8 {
                return ctx.err(SYNTAX);
            }
            at += 2;
        }
        let Some(count) = req.args().nth(at + 2).and_then(args::int) else { return ctx.err(NOT_INTEGER) };
        let Some(start) = interval_id(ctx, req.arg(at), 0, true) else { return };
        let Some(end) = interval_id(ctx, req.arg(at + 1), u64::MAX, false) else { return };
        let consumer = (at + 3 < argc).then(|| req.arg(at + 3).to_vec());
        extended = Some((min_idle, start, end, count.max(0) as usize, consumer));
    }
    let Ok(found) = ctx.read_typed(key, Kind::Stream) else { return };
    let Some(loc) = found.filter(|loc| stream(ctx, *loc).groups.contains_key(gname)) else {
        return nogroup(ctx, key, gname);
    };
    let now = ctx.now;
    let proto = ctx.proto;
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    let g = s.groups.get(gname).expect("checked");
    let Some((min_idle, start, end, count, consumer)) = extended else {
        reply::array_len(out, 4);
        reply::integer(out, g.pel.len() as i64);
        if g.pel.is_empty() {
            reply::null(out, proto);
            reply::null(out, proto);
            reply::null_array(out, proto);
            return;
        }
        write_id(out, *g.pel.keys().next().expect("non-empty"));
        write_id(out, *g.pel.keys().next_back().expect("non-empty"));
        let with: Vec<(&Box<[u8]>, usize)> =
            g.consumers.iter().filter(|(_, c)| !c.pending.is_empty()).map(|(n, c)| (n, c.pending.len())).collect();
        reply::array_len(out, with.len());
        for (name, n) in with {
            reply::array_len(out, 2);
            reply::bulk(out, name);
            reply::bulk_integer(out, n as i64);
        }
        return;
    };
    let mut rows = Vec::new();
    if start <= end {
        let ids: Box<dyn Iterator<Item = &StreamId>> = match &consumer {
            Some(c) => match g.consumers.get(c.as_slice()) {
                Some(c) => Box::new(c.pending.range(start..=end).map(|(id, _)| id)),
                None => Box::new(std::iter::empty()),
            },
            None => Box::new(g.pel.range(start..=end).map(|(id, _)| id)),
        };
        for id in ids {
            if rows.len() >= count {
                break;
            }
            let p = &g.pel[id];
            let idle = now.saturating_sub(p.delivery_time) as i64;
            if min_idle > 0 && idle < min_idle {
                continue;
            }
            rows.push((*id, p.consumer.clone(), idle, p.delivery_count));
        }
    }
    reply::array_len(out, rows.len());
    for (id, c, idle, n) in rows {
        reply::array_len(out, 4);
        write_id(out, id);
        reply::bulk(out, &c);
        reply::integer(out, idle);
        reply::integer(out, n as i64);
    }
}

/// Moves a pending entry to `consumer` (creating it), updating its delivery.
fn transfer(g: &mut Group, id: StreamId, consumer: &[u8], delivery_time: u64, count: Option<u64>, bump: bool) {
    let cname: Box<[u8]> = consumer.into();
    let p = g.pel.entry(id).or_insert_with(|| Pending { consumer: Box::default(), delivery_time, delivery_count: 0 });
    let old = std::mem::replace(&mut p.consumer, cname.clone());
    p.delivery_time = delivery_time;
    match count {
        Some(n) => p.delivery_count = n,
        None if bump => p.delivery_count += 1,
        None => {}
    }
    if old != cname {
        if let Some(c) = g.consumers.get_mut(&old) {
            c.pending.remove(&id);
        }
    }
    g.consumers.entry(cname).or_default().pending.insert(id, ());
}

/// Drops a pending entry whose stream entry no longer exists.
fn drop_pending(g: &mut Group, id: StreamId) {
    if let Some(p) = g.pel.remove(&id) {
        if let Some(c) = g.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
    }
}

pub fn xclaim(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname, cname) = (req.arg(1), req.arg(2), req.arg(3));
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found.filter(|loc| stream(ctx, *loc).groups.contains_key(gname)) else {
        return nogroup(ctx, key, gname);
    };
    let Some(min_idle) = args::int(req.arg(4)) else { return ctx.err("ERR Invalid min-idle-time argument for XCLAIM") };
    let min_idle = min_idle.max(0) as u64;
    let mut ids = Vec::new();
    let mut j = 5;
    while j < req.len() {
        match parse_id_full(req.arg(j), 0, true, false) {
            Some(p) => ids.push(p.id),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now;
    let (mut force, mut justid, mut retry, mut delivery, mut last_id) = (false, false, None, None::<i64>, None);
    while j < req.len() {
        let more = req.len() - 1 - j;
        let a = req.arg(j);
        if is(a, "FORCE") {
            force = true;
        } else if is(a, "JUSTID") {
            justid = true;
        } else if is(a, "IDLE") && more > 0 {
            j += 1;
            let Some(v) = args::int(req.arg(j)) else { return ctx.err("ERR Invalid IDLE option argument for XCLAIM") };
            delivery = Some(now as i64 - v);
        } else if is(a, "TIME") && more > 0 {
            j += 1;
            let Some(v) = args::int(req.arg(j)) else { return ctx.err("ERR Invalid TIME option argument for XCLAIM") };
            delivery = Some(v);
        } else if is(a, "RETRYCOUNT") && more > 0 {
            j += 1;
            let Some(v) = args::int(req.arg(j)) else {
                return ctx.err("ERR Invalid RETRYCOUNT option argument for XCLAIM");
            };
            retry = Some(v);
        } else if is(a, "LASTID") && more > 0 {
            j += 1;
            let Some(id) = strict_id(ctx, req.arg(j)) else { return };
            last_id = Some(id);
        } else {
            return ctx.err(&format!("ERR Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(a)));
        }
        j += 1;
    }
    let delivery = match delivery {
        Some(t) if t >= 0 && t as u64 <= now => t as u64,
        _ => now,
    };
    let s = stream_mut(ctx, loc);
    let exists: Vec<bool> = ids.iter().map(|id| s.entries.contains_key(id)).collect();
    let g = s.groups.get_mut(gname).expect("checked");
    if let Some(l) = last_id {
        if l > g.last_id {
            g.last_id = l;
        }
    }
    let mut claimed = Vec::new();
    for (id, present) in ids.iter().zip(exists) {
        if !present {
            drop_pending(g, *id);
            continue;
        }
        let pending = g.pel.get(id);
        if pending.is_none() && !force {
            continue;
        }
        if let Some(p) = pending {
            if !p.consumer.is_empty() && min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
                continue;
            }
        }
        let count = retry.filter(|n| *n >= 0).map(|n| n as u64);
        transfer(g, *id, cname, delivery, count, !justid);
        claimed.push(*id);
    }
    if let Some(c) = g.consumers.get_mut(cname) {
        c.seen_time = now;
    }
    ctx.emit_req(key, req);
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    reply::array_len(out, claimed.len());
    for id in claimed {
        if justid {
            write_id(out, id);
        } else {
            write_entry(out, id, s.entries.get(&id).expect("exists"));
        }
    }
}

pub fn xautoclaim(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname, cname) = (req.arg(1), req.arg(2), req.arg(3));
    let Some(min_idle) = args::int(req.arg(4)) else {
        return ctx.err("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let min_idle = min_idle.max(0) as u64;
    let Some(start) = interval_id(ctx, req.arg(5), 0, true) else { return };
    let (mut count, mut justid) = (100u64, false);
    let mut j = 6;
    while j < req.len() {
        let a = req.arg(j);
        if is(a, "COUNT") && j + 1 < req.len() {
            match args::int(req.arg(j + 1)) {
                Some(c) if (1..=i64::MAX / 16).contains(&c) => count = c as u64,
                _ => return ctx.err("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if is(a, "JUSTID") {
            justid = true;
        } else {
            return ctx.err(SYNTAX);
        }
        j += 1;
    }
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found.filter(|loc| stream(ctx, *loc).groups.contains_key(gname)) else {
        return nogroup(ctx, key, gname);
    };
    let now = ctx.now;
    let s = stream_mut(ctx, loc);
    let ids: Vec<StreamId> = s.groups[gname].pel.range(start..).map(|(id, _)| *id).collect();
    let exists: Vec<bool> = ids.iter().map(|id| s.entries.contains_key(id)).collect();
    let g = s.groups.get_mut(gname).expect("checked");
    let mut attempts = count * 10;
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut next = StreamId::MIN;
    let mut i = 0;
    while i < ids.len() {
        if attempts == 0 || count == 0 {
            next = ids[i];
            break;
        }
        attempts -= 1;
        let id = ids[i];
        i += 1;
        if !exists[i - 1] {
            drop_pending(g, id);
            deleted.push(id);
            count -= 1;
            continue;
        }
        let p = &g.pel[&id];
        if min_idle > 0 && now.saturating_sub(p.delivery_time) < min_idle {
            continue;
        }
        transfer(g, id, cname, now, None, !justid);
        claimed.push(id);
        count -= 1;
    }
    ctx.emit_req(key, req);
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    reply::array_len(out, 3);
    write_id(out, next);
    reply::array_len(out, claimed.len());
    for id in claimed {
        if justid {
            write_id(out, id);
        } else {
            write_entry(out, id, s.entries.get(&id).expect("exists"));
        }
    }
    reply::array_len(out, deleted.len());
    for id in deleted {
        write_id(out, id);
    }
}

// ---------------------------------------------------------------------------------------
// XINFO, XSETID

fn info_target(ctx: &mut Exec<'_, '_>, key: &[u8]) -> Option<Loc> {
    match ctx.read_typed(key, Kind::Stream) {
        Err(_) => None,
        Ok(None) => {
            ctx.err(super::exec::NO_SUCH_KEY);
            None
        }
        Ok(found) => found,
    }
}

fn entry_or_nil(out: &mut BytesMut, proto: Protocol, e: Option<(&StreamId, &Fields)>) {
    match e {
        Some((id, f)) => write_entry(out, *id, f),
        None => reply::null(out, proto),
    }
}

pub fn xinfo_stream(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(2);
    let mut full = false;
    let mut count = 10usize;
    let mut j = 3;
    while j < req.len() {
        if is(req.arg(j), "FULL") && !full {
            full = true;
            j += 1;
        } else if full && is(req.arg(j), "COUNT") && j + 1 < req.len() {
            let Some(c) = args::int(req.arg(j + 1)) else { return ctx.err(NOT_INTEGER) };
            count = if c <= 0 { usize::MAX } else { c as usize };
            j += 2;
        } else {
            return ctx.err(SYNTAX);
        }
    }
    let Some(loc) = info_target(ctx, key) else { return };
    let proto = ctx.proto;
    let now = ctx.now;
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    let first = s.first_id().unwrap_or(StreamId::MIN);
    let nodes = s.node_count();
    reply::map_len(out, proto, if full { 9 } else { 10 });
    let field = |out: &mut BytesMut, name: &str| reply::bulk(out, name.as_bytes());
    field(out, "length");
    reply::integer(out, s.len() as i64);
    field(out, "radix-tree-keys");
    reply::integer(out, nodes as i64);
    field(out, "radix-tree-nodes");
    reply::integer(out, (nodes + 1) as i64);
    field(out, "last-generated-id");
    write_id(out, s.last_id);
    field(out, "max-deleted-entry-id");
    write_id(out, s.max_deleted_id);
    field(out, "entries-added");
    reply::integer(out, s.entries_added as i64);
    field(out, "recorded-first-entry-id");
    write_id(out, first);
    if !full {
        field(out, "groups");
        reply::integer(out, s.groups.len() as i64);
        field(out, "first-entry");
        entry_or_nil(out, proto, s.entries.iter().next());
        field(out, "last-entry");
        entry_or_nil(out, proto, s.entries.iter().next_back());
        return;
    }
    field(out, "entries");
    let entries: Vec<(StreamId, &Fields)> = s.entries.iter().take(count).map(|(k, v)| (*k, v)).collect();
    write_entries(out, &entries);
    field(out, "groups");
    reply::array_len(out, s.groups.len());
    for (name, g) in &s.groups {
        reply::map_len(out, proto, 7);
        field(out, "name");
        reply::bulk(out, name);
        field(out, "last-delivered-id");
        write_id(out, g.last_id);
        field(out, "entries-read");
        write_opt(out, proto, g.entries_read);
        field(out, "lag");
        write_opt(out, proto, s.lag(g));
        field(out, "pel-count");
        reply::integer(out, g.pel.len() as i64);
        field(out, "pending");
        let pel: Vec<_> = g.pel.iter().take(count).collect();
        reply::array_len(out, pel.len());
        for (id, p) in pel {
            reply::array_len(out, 4);
            write_id(out, *id);
            reply::bulk(out, &p.consumer);
            reply::integer(out, p.delivery_time as i64);
            reply::integer(out, p.delivery_count as i64);
        }
        field(out, "consumers");
        reply::array_len(out, g.consumers.len());
        for (cname, c) in &g.consumers {
            reply::map_len(out, proto, 4);
            field(out, "name");
            reply::bulk(out, cname);
            field(out, "seen-time");
            reply::integer(out, c.seen_time as i64);
            field(out, "pel-count");
            reply::integer(out, c.pending.len() as i64);
            field(out, "pending");
            let pel: Vec<_> = c.pending.keys().take(count).collect();
            reply::array_len(out, pel.len());
            for id in pel {
                let p = &g.pel[id];
                reply::array_len(out, 3);
                write_id(out, *id);
                reply::integer(out, p.delivery_time as i64);
                reply::integer(out, p.delivery_count as i64);
            }
        }
    }
    let _ = now;
}

fn write_opt(out: &mut BytesMut, proto: Protocol, v: Option<u64>) {
    match v {
        Some(n) => reply::integer(out, n as i64),
        None => reply::null(out, proto),
    }
}

pub fn xinfo_groups(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(loc) = info_target(ctx, req.arg(2)) else { return };
    let proto = ctx.proto;
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    reply::array_len(out, s.groups.len());
    for (name, g) in &s.groups {
        reply::map_len(out, proto, 6);
        reply::bulk(out, b"name");
        reply::bulk(out, name);
        reply::bulk(out, b"consumers");
        reply::integer(out, g.consumers.len() as i64);
        reply::bulk(out, b"pending");
        reply::integer(out, g.pel.len() as i64);
        reply::bulk(out, b"last-delivered-id");
        write_id(out, g.last_id);
        reply::bulk(out, b"entries-read");
        write_opt(out, proto, g.entries_read);
        reply::bulk(out, b"lag");
        write_opt(out, proto, s.lag(g));
    }
}

pub fn xinfo_consumers(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (key, gname) = (req.arg(2), req.arg(3));
    let Some(loc) = info_target(ctx, key) else { return };
    if !stream(ctx, loc).groups.contains_key(gname) {
        return nogroup_for_key(ctx, gname, key);
    }
    let (proto, now) = (ctx.proto, ctx.now);
    let (v, out) = ctx.value_and_out(loc);
    let Value::Stream(s) = v else { unreachable!("type checked") };
    let g = &s.groups[gname];
    reply::array_len(out, g.consumers.len());
    for (name, c) in &g.consumers {
        reply::map_len(out, proto, 3);
        reply::bulk(out, b"name");
        reply::bulk(out, name);
        reply::bulk(out, b"pending");
        reply::integer(out, c.pending.len() as i64);
        reply::bulk(out, b"idle");
        reply::integer(out, now.saturating_sub(c.seen_time) as i64);
    }
}

pub fn xsetid(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some(id) = strict_id(ctx, req.arg(2)) else { return };
    let (mut added, mut max_del) = (None, StreamId::MIN);
    let mut i = 3;
    while i < req.len() {
        let more = req.len() - 1 - i;
        let a = req.arg(i);
        if is(a, "ENTRIESADDED") && more > 0 {
            match args::int(req.arg(i + 1)) {
                None => return ctx.err(NOT_INTEGER),
                Some(n) if n < 0 => return ctx.err("ERR entries_added must be positive"),
                Some(n) => added = Some(n as u64),
            }
            i += 2;
        } else if is(a, "MAXDELETEDID") && more > 0 {
            let Some(m) = strict_id(ctx, req.arg(i + 1)) else { return };
            if id < m {
                return ctx.err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            max_del = m;
            i += 2;
        } else {
            return ctx.err(SYNTAX);
        }
    }
    let Ok(found) = ctx.write_typed(key, Kind::Stream) else { return };
    let Some(loc) = found else { return ctx.err(super::exec::NO_SUCH_KEY) };
    let s = stream_mut(ctx, loc);
    if let Some(top) = s.entries.keys().next_back() {
        if id < *top {
            return ctx.err("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if added.is_some_and(|n| (s.len() as u64) > n) {
            return ctx.err("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
        if id < s.max_deleted_id {
            return ctx.err("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
        }
    }
    s.last_id = id;
    if let Some(n) = added {
        s.entries_added = n;
    }
    if !max_del.is_zero() {
        s.max_deleted_id = max_del;
    }
    ctx.emit_req(key, req);
    reply::ok(ctx.out);
}
