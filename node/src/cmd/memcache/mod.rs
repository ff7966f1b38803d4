//! Memcached's commands over the keyspace: the same strings RESP reads and writes, with the
//! client flags and CAS values `shard::item_meta` keeps. A request arrives as a `Request`
//! whose arguments are the key, the value and the encoded rest of the `McRequest`
//! (`encode`); the reply is written in the protocol the request came in.
//!
//! One module per family, as for RESP: `retrieve` (get, gat, touch, mg, me), `store` (set,
//! add, replace, append, prepend, cas, ms), `counter` (incr, decr, ma), `delete` (delete, md).

mod counter;
mod delete;
mod retrieve;
mod store;

use super::exec::{Exec, Loc};
use super::table::{c, CommandSpec, Handler};
use crate::argv;
use crate::shard::item_meta::Meta;
use crate::shard::stats::McStat;
use crate::shard::value::Value;
use bytes::BytesMut;
use shoal_proto::memcache::binary::{self, status};
use shoal_proto::memcache::{expiry_ms, reply as mc, McRequest, Op, Wire};
use shoal_proto::request::RequestBuilder;
use shoal_proto::Request;

/// The command names statistics and INFO list Memcached's commands under.
pub fn spec_name(op: Op) -> &'static str {
    match op {
        Op::Get => "mc|get",
        Op::Gets => "mc|gets",
        Op::Gat => "mc|gat",
        Op::Gats => "mc|gats",
        Op::Touch => "mc|touch",
        Op::Set => "mc|set",
        Op::Add => "mc|add",
        Op::Replace => "mc|replace",
        Op::Append => "mc|append",
        Op::Prepend => "mc|prepend",
        Op::Cas => "mc|cas",
        Op::Incr => "mc|incr",
        Op::Decr => "mc|decr",
        Op::Delete => "mc|delete",
        Op::FlushAll => "mc|flush_all",
        Op::Version => "mc|version",
        Op::Verbosity => "mc|verbosity",
        Op::Stats => "mc|stats",
        Op::Quit => "mc|quit",
        Op::Noop => "mc|noop",
        Op::MetaGet => "mc|mg",
        Op::MetaSet => "mc|ms",
        Op::MetaDelete => "mc|md",
        Op::MetaArith => "mc|ma",
        Op::MetaDebug => "mc|me",
        Op::SaslList => "mc|sasl_list_mechs",
        Op::SaslAuth => "mc|sasl_auth",
        Op::SaslStep => "mc|sasl_step",
    }
}

/// Every Memcached command's spec, in `Op` order. They are not RESP commands: the table
/// keeps them apart from its lookup, for statistics and for the shard handler.
pub fn specs() -> Vec<CommandSpec> {
    let ops = (0..=u8::MAX).map_while(Op::from_u8);
    ops.map(|op| {
        let (flags, cats) = match op {
            Op::Get | Op::Gets | Op::MetaGet | Op::MetaDebug => ("readonly fast", "@string"),
            Op::Set | Op::Add | Op::Replace | Op::Append | Op::Prepend | Op::Cas | Op::MetaSet => {
                ("write denyoom fast", "@string")
            }
            Op::Incr | Op::Decr | Op::MetaArith => ("write denyoom fast", "@string"),
            Op::Gat | Op::Gats | Op::Touch | Op::Delete | Op::MetaDelete => ("write fast", "@keyspace"),
            Op::FlushAll => ("write", "@keyspace @dangerous"),
            _ => ("fast", "@connection"),
        };
        let keys = if op.has_key() { (1, 1, 1) } else { (0, 0, 0) };
        // Commands without a key are answered by the gateway; the handler refuses them.
        c(spec_name(op), -1, flags, keys, cats, "memcache", "", "A Memcached command.", Handler::Shard(run))
    })
    .chain(std::iter::once(c(
        ITEM_RECORD,
        5,
        "write",
        (1, 1, 1),
        "@string",
        "memcache",
        "",
        "The write-ahead log's record of an item with client flags.",
        Handler::Shard(replay_item),
    )))
    .collect()
}

/// The request a shard runs for one key of `r`.
pub fn encode(spec: &CommandSpec, r: &McRequest, key: &[u8]) -> Request {
    let mut header = shoal_proto::memcache::Header::new();
    r.encode_header(&mut header);
    let mut b = RequestBuilder::with_capacity(spec.name.len() + key.len() + r.value.len() + header.len());
    b.push(spec.name.as_bytes());
    b.push(key);
    b.push(&r.value);
    b.push(&header);
    b.finish()
}

/// The shard handler of every keyed Memcached command.
pub fn run(ctx: &mut Exec<'_, '_>, req: &Request) {
    let decoded = (req.len() == 4).then(|| McRequest::decode_header(req.arg(3), req.arg_bytes(1), req.arg_bytes(2)));
    let Some(r) = decoded.flatten() else { return ctx.err("ERR not a Memcached request") };
    match r.op {
        Op::Get | Op::Gets | Op::Gat | Op::Gats | Op::Touch => retrieve::get(ctx, &r),
        Op::MetaGet => retrieve::meta_get(ctx, &r),
        Op::MetaDebug => retrieve::meta_debug(ctx, &r),
        Op::Set | Op::Add | Op::Replace | Op::Append | Op::Prepend | Op::Cas => store::store(ctx, &r),
        Op::MetaSet => store::meta_set(ctx, &r),
        Op::Incr | Op::Decr => counter::incr(ctx, &r),
        Op::MetaArith => counter::meta_arith(ctx, &r),
        Op::Delete => delete::delete(ctx, &r),
        Op::MetaDelete => delete::meta_delete(ctx, &r),
        _ => ctx.err("ERR not a keyed Memcached command"),
    }
}

/// How a write or a lookup came out, answered in each protocol's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
}

impl Outcome {
    fn text(self) -> &'static [u8] {
        match self {
            Outcome::Stored => mc::STORED,
            Outcome::NotStored => mc::NOT_STORED,
            Outcome::Exists => mc::EXISTS,
            Outcome::NotFound => mc::NOT_FOUND,
            Outcome::Deleted => mc::DELETED,
            Outcome::Touched => mc::TOUCHED,
        }
    }

    fn meta_code(self) -> &'static [u8] {
        match self {
            Outcome::Stored | Outcome::Deleted | Outcome::Touched => b"HD",
            Outcome::NotStored => b"NS",
            Outcome::Exists => b"EX",
            Outcome::NotFound => b"NF",
        }
    }

    fn binary_status(self) -> u16 {
        match self {
            Outcome::Stored | Outcome::Deleted | Outcome::Touched => status::OK,
            Outcome::NotStored => status::NOT_STORED,
            Outcome::Exists => status::KEY_EXISTS,
            Outcome::NotFound => status::KEY_NOT_FOUND,
        }
    }

    fn success(self) -> bool {
        matches!(self, Outcome::Stored | Outcome::Deleted | Outcome::Touched)
    }
}

/// Answers `r` with `outcome` (`cas`: the item's CAS value after a success, for binary
/// replies and meta's `c`).
fn answer(ctx: &mut Exec<'_, '_>, r: &McRequest, outcome: Outcome, cas: u64) {
    match r.wire {
        Wire::Text => {
            if !r.noreply {
                ctx.out.extend_from_slice(outcome.text());
            }
        }
        Wire::Meta => {
            if r.meta.quiet && outcome.success() {
                return;
            }
            ctx.out.extend_from_slice(outcome.meta_code());
            meta_returns(ctx.out, r, |out, flag| {
                if flag == b'c' {
                    mc::meta_number(out, b'c', if outcome.success() { cas } else { 0 });
                }
            });
            ctx.out.extend_from_slice(mc::CRLF);
        }
        Wire::Binary => {
            if outcome.success() {
                if !r.noreply {
                    binary::response(ctx.out, r.opcode, status::OK, r.opaque, cas, &[], &[]);
                }
            } else {
                binary::error(ctx.out, r.opcode, outcome.binary_status(), r.opaque);
            }
        }
    }
}

/// Writes the meta return flags every command shares (`b`, `k`, `O`) in request order,
/// asking `other` for the rest.
fn meta_returns(out: &mut BytesMut, r: &McRequest, mut other: impl FnMut(&mut BytesMut, u8)) {
    for &flag in r.meta.returns.iter() {
        match flag {
            // memcached marks a base64 key right after it.
            b'k' => {
                mc::meta_key(out, r.key(), r.meta.base64);
                if r.meta.base64 {
                    out.extend_from_slice(b" b");
                }
            }
            b'b' => {}
            b'O' => mc::meta_token(out, b'O', r.meta.opaque.as_deref().unwrap_or_default()),
            f => other(out, f),
        }
    }
}

/// A client error in the request's protocol (a binary request gets `bin_status`).
fn client_error(ctx: &mut Exec<'_, '_>, r: &McRequest, msg: &str, bin_status: u16) {
    error_reply(ctx, r, mc::client_error, msg, bin_status);
}

/// A server error in the request's protocol (a binary request gets `bin_status`).
fn server_error(ctx: &mut Exec<'_, '_>, r: &McRequest, msg: &str, bin_status: u16) {
    error_reply(ctx, r, mc::server_error, msg, bin_status);
}

fn error_reply(ctx: &mut Exec<'_, '_>, r: &McRequest, line: fn(&mut BytesMut, &str), msg: &str, bin_status: u16) {
    ctx.failed = true;
    match r.wire {
        Wire::Binary => binary::error(ctx.out, r.opcode, bin_status, r.opaque),
        _ => line(ctx.out, msg),
    }
}

/// A live string item: its location (other types are not Memcached items and read as
/// misses). `touch`: count the read and bump the item, as a GET does.
fn find(ctx: &mut Exec<'_, '_>, key: &[u8], touch: bool) -> Option<Loc> {
    let loc = if touch { ctx.read(key) } else { ctx.lookup(key) }?;
    ctx.value(loc).is_string().then_some(loc)
}

/// Counts one of Memcached's hit or miss statistics in the shard owning `key`.
fn count(ctx: &mut Exec<'_, '_>, key: &[u8], stat: McStat) {
    let s = ctx.shard_idx(key);
    ctx.shards[s].stats.mc[stat as usize] += 1;
}

/// Counts a compare-and-swap's outcome, when the request compared.
fn count_cas(ctx: &mut Exec<'_, '_>, key: &[u8], compared: bool, outcome: Outcome) {
    if compared {
        let stat = match outcome {
            Outcome::NotFound => McStat::CasMisses,
            Outcome::Exists => McStat::CasBadval,
            _ => McStat::CasHits,
        };
        count(ctx, key, stat);
    }
}

fn meta_of(ctx: &Exec<'_, '_>, loc: Loc) -> Meta {
    ctx.shards[loc.0].dbs[ctx.db].items.get(loc.1)
}

fn set_meta(ctx: &mut Exec<'_, '_>, loc: Loc, meta: Meta) {
    ctx.shards[loc.0].dbs[ctx.db].items.set(loc.1, meta);
}

/// A fresh CAS value from the shard's clock.
fn next_cas(ctx: &mut Exec<'_, '_>, loc: Loc) -> u64 {
    let s = &mut ctx.shards[loc.0];
    s.cas_clock += 1;
    s.cas_clock
}

/// The item's CAS value, handing one out if it has none.
fn cas_of(ctx: &mut Exec<'_, '_>, loc: Loc) -> u64 {
    let sh = &mut *ctx.shards[loc.0];
    let items = &mut sh.dbs[ctx.db].items;
    let mut m = items.get(loc.1);
    if m.cas == 0 {
        sh.cas_clock += 1;
        m.cas = sh.cas_clock;
        items.set(loc.1, m);
    }
    m.cas
}

/// Notes a write of the item at `loc` (the change is already recorded) and gives it its
/// metadata: `flags`, and a CAS value when `want_cas` (or `explicit` is given). Returns the CAS.
fn written(ctx: &mut Exec<'_, '_>, loc: Loc, flags: u32, want_cas: bool, explicit: Option<u64>) -> u64 {
    let cas = match explicit {
        Some(c) => c,
        None if want_cas => next_cas(ctx, loc),
        None => 0,
    };
    set_meta(ctx, loc, Meta { flags, cas, ..Meta::default() });
    cas
}

/// Whether the reply to `r` will carry the item's CAS value.
fn wants_cas(r: &McRequest) -> bool {
    r.wire == Wire::Binary || r.meta.returns(b'c')
}

/// The change record for a string written whole: `SET key value [PXAT at]`, or with client
/// flags, `mc|item key value flags at` (which only the log's replay knows).
fn record_set(ctx: &mut Exec<'_, '_>, key: &[u8], value: &[u8], expire_at: Option<u64>, flags: u32) {
    ctx.emit(key, || match (expire_at, flags) {
        (at, f) if f != 0 => argv![ITEM_RECORD, key, value, f.to_string(), at.unwrap_or(0).to_string()],
        (Some(at), _) => argv!["SET", key, value, "PXAT", at.to_string()],
        (None, _) => argv!["SET", key, value],
    });
}

/// The name of the change record of an item with client flags.
pub const ITEM_RECORD: &str = "mc|item";

/// Replays `mc|item key value flags expire_at` (absolute Unix ms, 0 for none).
pub fn replay_item(ctx: &mut Exec<'_, '_>, req: &Request) {
    let parsed = (req.len() == 5)
        .then(|| (shoal_proto::memcache::parse_u32(req.arg(3)), shoal_proto::memcache::parse_u64(req.arg(4))));
    let Some((Some(flags), Some(at))) = parsed else { return ctx.err("ERR malformed mc|item record") };
    let key = req.arg(1);
    let s = ctx.shard_idx(key);
    let id = ctx.shards[s].dbs[ctx.db].set(key, Value::string(req.arg(2)), Some(at));
    ctx.emit(key, || argv![ITEM_RECORD, key, req.arg(2), flags.to_string(), at.to_string()]);
    set_meta(ctx, (s, id), Meta { flags, ..Meta::default() });
}

/// The change record for a new TTL: `PEXPIREAT key at`, or `PERSIST key`.
fn record_ttl(ctx: &mut Exec<'_, '_>, key: &[u8], expire_at: Option<u64>) {
    ctx.emit(key, || match expire_at {
        Some(at) => argv!["PEXPIREAT", key, at.to_string()],
        None => argv!["PERSIST", key],
    });
}

/// Sets an item's TTL from a client's exptime and records it; false when that expires it now
/// (the caller removes it after replying). The value is the same: its CAS value and marks
/// stay, as in memcached.
fn set_ttl_of(ctx: &mut Exec<'_, '_>, key: &[u8], loc: Loc, exptime: i64) -> bool {
    let at = expiry_ms(exptime, ctx.now);
    if at == Some(0) {
        return false;
    }
    let m = meta_of(ctx, loc);
    ctx.shards[loc.0].dbs[ctx.db].set_expire(loc.1, at.unwrap_or(0));
    record_ttl(ctx, key, at);
    set_meta(ctx, loc, m);
    true
}

/// Removes an item (expired on arrival, or deleted) and records it.
fn remove(ctx: &mut Exec<'_, '_>, key: &[u8]) -> bool {
    let existed = ctx.delete(key);
    if existed {
        ctx.emit(key, || argv!["DEL", key]);
    }
    existed
}

/// The item's value as bytes (an integer-encoded string is formatted into `scratch`).
fn value_bytes<'a>(v: &'a Value, scratch: &'a mut itoa::Buffer) -> &'a [u8] {
    v.str_bytes(scratch).unwrap_or_default()
}

/// Seconds left before `expire_at` (Unix ms), -1 for none, as meta's `t` and `me` report.
fn ttl_secs(expire_at: Option<u64>, now: u64) -> i64 {
    match expire_at {
        None => -1,
        Some(at) => (at.saturating_sub(now).div_ceil(1000)) as i64,
    }
}
