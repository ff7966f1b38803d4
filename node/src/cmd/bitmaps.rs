//! Bit operations on string values: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
//! BITFIELD_RO, ported from Redis's bitops.c so ranges, overflow handling and errors match.

use super::args::{self, is};
use super::exec::{Exec, Loc, Replied, NOT_INTEGER, SYNTAX};
use crate::argv;
use crate::shard::value::Value;
use bytes::Bytes;
use shoal_proto::{reply, Request};

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A bit offset argument (`#N` counts in units of `width` when `hash` is allowed).
fn bit_offset(ctx: &mut Exec<'_, '_>, a: &[u8], hash: bool, width: u64) -> Option<u64> {
    let (mul, digits) = match a.strip_prefix(b"#") {
        Some(rest) if hash => (width, rest),
        _ => (1, a),
    };
    let max_bytes = ctx.settings.proto_max_bulk_len as u64;
    let v = args::int(digits).filter(|v| *v >= 0).and_then(|v| (v as u64).checked_mul(mul));
    match v {
        Some(v) if (v >> 3) < max_bytes => Some(v),
        _ => {
            ctx.err(BAD_OFFSET);
            None
        }
    }
}

/// The string at `key` for reading: its bytes (empty when missing), or `Err` after WRONGTYPE.
fn read_bytes(ctx: &mut Exec<'_, '_>, key: &[u8]) -> Result<Option<Vec<u8>>, Replied> {
    match ctx.read(key) {
        None => Ok(None),
        Some(loc) if ctx.value(loc).is_string() => Ok(Some(ctx.value(loc).to_vec())),
        Some(_) => {
            ctx.wrongtype();
            Err(Replied)
        }
    }
}

/// The string at `key` as a growable buffer at least `bytes` long (created when missing).
fn string_for_write<'c>(ctx: &'c mut Exec<'_, '_>, key: &[u8], bytes: usize) -> Option<&'c mut Vec<u8>> {
    let loc: Loc = match ctx.lookup(key) {
        Some(loc) if !ctx.value(loc).is_string() => {
            ctx.wrongtype();
            return None;
        }
        Some(loc) => loc,
        None => ctx.create(key, Value::Raw(Box::default())),
    };
    let v = ctx.value_mut(loc).make_raw();
    if v.len() < bytes {
        v.resize(bytes, 0);
    }
    Some(v)
}

pub fn setbit(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let Some(off) = bit_offset(ctx, req.arg(2), false, 1) else { return };
    let bit = match req.arg(3) {
        b"0" => 0u8,
        b"1" => 1u8,
        _ => return ctx.err("ERR bit is not an integer or out of range"),
    };
    let Some(v) = string_for_write(ctx, key, (off >> 3) as usize + 1) else { return };
    let byte = (off >> 3) as usize;
    let shift = 7 - (off & 7) as u8;
    let old = (v[byte] >> shift) & 1;
    v[byte] = (v[byte] & !(1 << shift)) | (bit << shift);
    ctx.emit_req(key, req);
    reply::integer(ctx.out, old as i64);
}

pub fn getbit(ctx: &mut Exec<'_, '_>, req: &Request) {
    let Some(off) = bit_offset(ctx, req.arg(2), false, 1) else { return };
    let Ok(bytes) = read_bytes(ctx, req.arg(1)) else { return };
    let b = bytes.as_deref().unwrap_or_default();
    let byte = (off >> 3) as usize;
    let bit = b.get(byte).map_or(0, |x| (x >> (7 - (off & 7))) & 1);
    reply::integer(ctx.out, bit as i64);
}

/// Parses the `BYTE|BIT` unit argument.
fn unit(ctx: &mut Exec<'_, '_>, a: &[u8]) -> Option<bool> {
    if is(a, "BIT") {
        Some(true)
    } else if is(a, "BYTE") {
        Some(false)
    } else {
        ctx.err(SYNTAX);
        None
    }
}

/// Negative masks for the edge bytes of a bit range, and the byte range (Redis's logic).
fn bit_range(start: i64, end: i64) -> (u8, u8, i64, i64) {
    let first = !((1u32 << (8 - (start & 7))) - 1) as u8;
    let last = ((1u32 << (7 - (end & 7))) - 1) as u8;
    (first, last, start >> 3, end >> 3)
}

pub fn bitcount(ctx: &mut Exec<'_, '_>, req: &Request) {
    // Redis 7.0 looks the key up before it parses the range.
    let Ok(bytes) = read_bytes(ctx, req.arg(1)) else { return };
    let Some(p) = bytes else { return reply::integer(ctx.out, 0) };
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    let (mut start, mut end);
    match req.len() {
        4 | 5 => {
            let (Some(s), Some(e)) = (args::int(req.arg(2)), args::int(req.arg(3))) else {
                return ctx.err(NOT_INTEGER);
            };
            if s < 0 && e < 0 && s > e {
                return reply::integer(ctx.out, 0);
            }
            let isbit = if req.len() == 5 { unit(ctx, req.arg(4)) } else { Some(false) };
            let Some(isbit) = isbit else { return };
            let mut totlen = p.len() as i64;
            if isbit {
                totlen <<= 3;
            }
            start = if s < 0 { totlen + s } else { s }.max(0);
            end = if e < 0 { totlen + e } else { e }.max(0);
            if end >= totlen {
                end = totlen - 1;
            }
            if isbit && start <= end {
                let r = bit_range(start, end);
                (first_mask, last_mask, start, end) = r;
            }
        }
        2 => {
            start = 0;
            end = p.len() as i64 - 1;
        }
        _ => return ctx.err(SYNTAX),
    }
    if start > end {
        return reply::integer(ctx.out, 0);
    }
    let (s, e) = (start as usize, end as usize);
    let mut count: i64 = p[s..=e].iter().map(|b| b.count_ones() as i64).sum();
    if first_mask != 0 || last_mask != 0 {
        let a = if first_mask != 0 { p[s] & first_mask } else { 0 };
        let b = if last_mask != 0 { p[e] & last_mask } else { 0 };
        count -= (a.count_ones() + b.count_ones()) as i64;
    }
    reply::integer(ctx.out, count);
}

/// Redis's `redisBitpos`: the first bit equal to `bit` in `p`; for a clear bit not found,
/// the position just past the bytes; for a set bit not found, -1.
fn bitpos_bytes(p: &[u8], bit: bool) -> i64 {
    for (i, &b) in p.iter().enumerate() {
        let target = if bit { b } else { !b };
        if target != 0 {
            return (i as i64) * 8 + target.leading_zeros() as i64;
        }
    }
    if bit {
        -1
    } else {
        (p.len() as i64) * 8
    }
}

pub fn bitpos(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    let bit = match args::int(req.arg(2)) {
        None => return ctx.err(NOT_INTEGER),
        Some(b) if b != 0 && b != 1 => return ctx.err("ERR The bit argument must be 1 or 0."),
        Some(b) => b == 1,
    };
    let Ok(found) = read_bytes(ctx, key) else { return };
    let Some(p) = found else { return reply::integer(ctx.out, if bit { -1 } else { 0 }) };
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    let mut end_given = false;
    let (mut start, mut end);
    match req.len() {
        4..=6 => {
            let mut totlen = p.len() as i64;
            let Some(s) = args::int(req.arg(3)) else { return ctx.err(NOT_INTEGER) };
            let mut isbit = false;
            if req.len() == 6 {
                let Some(u) = unit(ctx, req.arg(5)) else { return };
                isbit = u;
            }
            let e = if req.len() >= 5 {
                let Some(e) = args::int(req.arg(4)) else { return ctx.err(NOT_INTEGER) };
                end_given = true;
                e
            } else if isbit {
                (totlen << 3) + 7
            } else {
                totlen - 1
            };
            if isbit {
                totlen <<= 3;
            }
            start = if s < 0 { totlen + s } else { s }.max(0);
            end = if e < 0 { totlen + e } else { e }.max(0);
            if end >= totlen {
                end = totlen - 1;
            }
            if isbit && start <= end {
                let r = bit_range(start, end);
                (first_mask, last_mask, start, end) = r;
            }
        }
        3 => {
            start = 0;
            end = p.len() as i64 - 1;
        }
        _ => return ctx.err(SYNTAX),
    }
    if start > end {
        return reply::integer(ctx.out, -1);
    }
    let mut bytes = end - start + 1;
    let mut pos;
    'result: {
        if first_mask != 0 {
            let mut t = if bit { p[start as usize] & !first_mask } else { p[start as usize] | first_mask };
            if last_mask != 0 && bytes == 1 {
                t = if bit { t & !last_mask } else { t | last_mask };
            }
            pos = bitpos_bytes(&[t], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'result;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - if last_mask != 0 { 1 } else { 0 };
        if cur > 0 {
            pos = bitpos_bytes(&p[start as usize..(start + cur) as usize], bit);
            if bytes == cur || (pos != -1 && pos != cur << 3) {
                break 'result;
            }
            start += cur;
            bytes -= cur;
        }
        let t = if bit { p[end as usize] & !last_mask } else { p[end as usize] | last_mask };
        pos = bitpos_bytes(&[t], bit);
    }
    if end_given && !bit && pos == bytes << 3 {
        return reply::integer(ctx.out, -1);
    }
    if pos != -1 {
        pos += start << 3;
    }
    reply::integer(ctx.out, pos);
}

pub fn bitop(ctx: &mut Exec<'_, '_>, req: &Request) {
    let op = req.arg(1);
    let dst = req.arg(2);
    let kind = if is(op, "AND") {
        0
    } else if is(op, "OR") {
        1
    } else if is(op, "XOR") {
        2
    } else if is(op, "NOT") {
        3
    } else {
        return ctx.err(SYNTAX);
    };
    if kind == 3 && req.len() != 4 {
        return ctx.err("ERR BITOP NOT must be called with a single source key.");
    }
    let mut srcs = Vec::with_capacity(req.len() - 3);
    for i in 3..req.len() {
        let Ok(b) = read_bytes(ctx, req.arg(i)) else { return };
        srcs.push(b.unwrap_or_default());
    }
    let len = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut res = vec![0u8; len];
    for (j, r) in res.iter_mut().enumerate() {
        let byte = |s: &Vec<u8>| s.get(j).copied().unwrap_or(0);
        *r = match kind {
            0 => srcs.iter().fold(0xff, |a, s| a & byte(s)),
            1 => srcs.iter().fold(0, |a, s| a | byte(s)),
            2 => srcs.iter().fold(0, |a, s| a ^ byte(s)),
            _ => !byte(&srcs[0]),
        };
    }
    let existed = ctx.lookup(dst).is_some();
    if res.is_empty() {
        if existed {
            ctx.delete(dst);
            ctx.emit(dst, || argv!["DEL", dst]);
        }
    } else {
        crate::cmd::strings::store(ctx, dst, Value::Raw(Box::new(res.clone())), crate::cmd::strings::Ttl::Clear);
        ctx.emit(dst, || vec![Bytes::from_static(b"SET"), Bytes::copy_from_slice(dst), Bytes::from(res)]);
    }
    reply::integer(ctx.out, len as i64);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

fn field_type(a: &[u8]) -> Option<(bool, u32)> {
    let signed = match a.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return None,
    };
    let bits = args::int(&a[1..])?;
    let ok = if signed { (1..=64).contains(&bits) } else { (1..=63).contains(&bits) };
    ok.then_some((signed, bits as u32))
}

fn get_bits(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        let o = offset + j;
        let byte = (o >> 3) as usize;
        let bit = p.get(byte).map_or(0, |b| (b >> (7 - (o & 7))) & 1);
        v = (v << 1) | bit as u64;
    }
    v
}

fn set_bits(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let bit = (value >> (bits as u64 - 1 - j)) & 1;
        let o = offset + j;
        let byte = (o >> 3) as usize;
        let shift = 7 - (o & 7);
        p[byte] = (p[byte] & !(1 << shift)) | ((bit as u8) << shift);
    }
}

fn signed_value(raw: u64, bits: u32) -> i64 {
    if bits == 64 {
        return raw as i64;
    }
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// Redis's `checkUnsignedBitfieldOverflow`: (overflowed, value to store when not failing).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let mask = u64::MAX << bits;
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        return (true, if ow == Overflow::Sat { max } else { wrap() });
    }
    if incr < 0 && incr < minincr {
        return (true, if ow == Overflow::Sat { 0 } else { wrap() });
    }
    (false, value.wrapping_add(incr as u64))
}

/// Redis's `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        return (true, if ow == Overflow::Sat { max } else { wrap() });
    }
    if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        return (true, if ow == Overflow::Sat { min } else { wrap() });
    }
    (false, value.wrapping_add(incr))
}

fn bitfield_generic(ctx: &mut Exec<'_, '_>, req: &Request, readonly: bool) {
    let key = req.arg(1);
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < req.len() {
        let more = req.len() - j - 1;
        let a = req.arg(j);
        let op = if is(a, "GET") && more >= 2 {
            Some(0)
        } else if is(a, "SET") && more >= 3 {
            Some(1)
        } else if is(a, "INCRBY") && more >= 3 {
            Some(2)
        } else {
            None
        };
        if is(a, "OVERFLOW") && more >= 1 {
            let v = req.arg(j + 1);
            overflow = if is(v, "WRAP") {
                Overflow::Wrap
            } else if is(v, "SAT") {
                Overflow::Sat
            } else if is(v, "FAIL") {
                Overflow::Fail
            } else {
                return ctx.err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        }
        let Some(op) = op else { return ctx.err(SYNTAX) };
        let Some((signed, bits)) = field_type(req.arg(j + 1)) else {
            return ctx.err(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            );
        };
        let Some(offset) = bit_offset(ctx, req.arg(j + 2), true, bits as u64) else { return };
        let op = match op {
            0 => FieldOp::Get,
            _ => {
                let Some(v) = args::int(req.arg(j + 3)) else { return ctx.err(NOT_INTEGER) };
                if op == 1 {
                    FieldOp::Set(v)
                } else {
                    FieldOp::Incr(v)
                }
            }
        };
        j += if matches!(op, FieldOp::Get) { 3 } else { 4 };
        ops.push(Field { op, signed, bits, offset, overflow });
    }
    let writes = ops.iter().any(|f| !matches!(f.op, FieldOp::Get));
    if readonly && writes {
        return ctx.err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let mut p: Vec<u8> = if writes {
        let highest = ops
            .iter()
            .filter(|f| !matches!(f.op, FieldOp::Get))
            .map(|f| f.offset + f.bits as u64 - 1)
            .max()
            .unwrap_or(0);
        match string_for_write(ctx, key, (highest >> 3) as usize + 1) {
            Some(v) => std::mem::take(v),
            None => return,
        }
    } else {
        match read_bytes(ctx, key) {
            Ok(b) => b.unwrap_or_default(),
            Err(Replied) => return,
        }
    };
    let proto = ctx.proto;
    let mut out = bytes::BytesMut::new();
    reply::array_len(&mut out, ops.len());
    for f in &ops {
        let raw = get_bits(&p, f.offset, f.bits);
        match f.op {
            FieldOp::Get => {
                if f.signed {
                    reply::integer(&mut out, signed_value(raw, f.bits));
                } else {
                    reply::integer(&mut out, raw as i64);
                }
            }
            FieldOp::Set(v) | FieldOp::Incr(v) => {
                let incr = matches!(f.op, FieldOp::Incr(_));
                let (over, newval, retval) = if f.signed {
                    let old = signed_value(raw, f.bits);
                    let (o, nv) = if incr {
                        signed_overflow(old, v, f.bits, f.overflow)
                    } else {
                        signed_overflow(v, 0, f.bits, f.overflow)
                    };
                    (o, nv as u64, if incr { nv } else { old })
                } else {
                    let (o, nv) = if incr {
                        unsigned_overflow(raw, v, f.bits, f.overflow)
                    } else {
                        unsigned_overflow(v as u64, 0, f.bits, f.overflow)
                    };
                    (o, nv, if incr { nv as i64 } else { raw as i64 })
                };
                if over && f.overflow == Overflow::Fail {
                    reply::null(&mut out, proto);
                } else {
                    reply::integer(&mut out, retval);
                    let mask = if f.bits == 64 { u64::MAX } else { (1u64 << f.bits) - 1 };
                    set_bits(&mut p, f.offset, f.bits, newval & mask);
                }
            }
        }
    }
    if writes {
        let Some(loc) = ctx.lookup(key) else { unreachable!("created above") };
        *ctx.value_mut(loc).make_raw() = p;
        ctx.emit_req(key, req);
    }
    ctx.out.extend_from_slice(&out);
}

pub fn bitfield(ctx: &mut Exec<'_, '_>, req: &Request) {
    bitfield_generic(ctx, req, false)
}

pub fn bitfield_ro(ctx: &mut Exec<'_, '_>, req: &Request) {
    bitfield_generic(ctx, req, true)
}
