//! HyperLogLog: PFADD PFCOUNT PFMERGE PFDEBUG, byte-compatible with Redis 7.0.
//!
//! An HLL is a string value in Redis's format (the "HYLL" header, a cached cardinality, and
//! 16384 six-bit registers, sparse or dense), so GET/SET/DUMP carry it between Redis and
//! Shoal, corrupted values are detected the same way, and PFCOUNT returns the very numbers
//! Redis does (same MurmurHash64A, same sparse-to-dense promotion, same estimator).

use super::args::is;
use super::exec::{Exec, Loc, Replied};
use crate::shard::value::Value;
use shoal_proto::{reply, Request};

const P: u32 = 14;
const REGISTERS: usize = 1 << P;
const Q: u32 = 64 - P;
const HDR: usize = 16;
const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
const ENC_DENSE: u8 = 0;
const ENC_SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
/// Redis's `hll-sparse-max-bytes` default.
pub const SPARSE_MAX_BYTES: usize = 3000;
const INVALID: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// Redis's MurmurHash64A.
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4a7935bd1e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate().rev() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its run of zeroes (plus one).
fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmur64a(ele, 0xadc83b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    hash >>= P;
    hash |= 1u64 << Q;
    (index, hash.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = v as u32;
    regs[byte] &= !((63u32 << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((63u32 >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((((b0 & 0x3f) as usize) << 8) | b1 as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn val_op(v: u8, len: usize) -> u8 {
    (((v - 1) << 2) | (len as u8 - 1)) | 0x80
}
fn zero_op(len: usize) -> u8 {
    (len - 1) as u8
}
fn xzero_op(len: usize) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}

/// Walks a sparse HLL's opcodes: (first register, run length, value) per run. `None` when the
/// representation does not cover exactly the 16384 registers.
fn sparse_runs(body: &[u8]) -> Option<Vec<(usize, usize, u8)>> {
    let mut runs = Vec::new();
    let (mut i, mut idx) = (0, 0);
    while i < body.len() {
        let b = body[i];
        if is_zero(b) {
            runs.push((idx, zero_len(b), 0));
            idx += zero_len(b);
            i += 1;
        } else if is_xzero(b) {
            let len = xzero_len(b, *body.get(i + 1)?);
            runs.push((idx, len, 0));
            idx += len;
            i += 2;
        } else {
            runs.push((idx, val_len(b), val_value(b)));
            idx += val_len(b);
            i += 1;
        }
    }
    (idx == REGISTERS).then_some(runs)
}

/// A new, empty HLL: sparse, one XZERO run, a valid cached cardinality of 0.
fn new_hll() -> Vec<u8> {
    let mut v = b"HYLL".to_vec();
    v.extend_from_slice(&[ENC_SPARSE, 0, 0, 0]);
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&xzero_op(XZERO_MAX_LEN));
    v
}

/// Redis's `isHLLObjectOrReply` on the bytes of a string.
fn is_hll(b: &[u8]) -> bool {
    b.len() >= HDR && &b[..4] == b"HYLL" && b[4] <= ENC_SPARSE && (b[4] != ENC_DENSE || b.len() == DENSE_SIZE)
}

fn invalidate(b: &mut [u8]) {
    b[15] |= 0x80;
}

/// Converts to dense in place; false when the sparse form is corrupt.
fn to_dense(h: &mut Vec<u8>) -> bool {
    if h[4] == ENC_DENSE {
        return true;
    }
    let Some(runs) = sparse_runs(&h[HDR..]) else { return false };
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&h[..HDR]);
    d[4] = ENC_DENSE;
    for (first, len, v) in runs {
        if v > 0 {
            for r in first..first + len {
                dense_set(&mut d[HDR..], r, v);
            }
        }
    }
    *h = d;
    true
}

/// Redis's `hllSparseSet`: raises register `index` to `count`. Ok(true) when it changed;
/// promotes to dense when the value or the size requires it.
fn sparse_set(h: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, ()> {
    if count > VAL_MAX_VALUE {
        return promote(h, index, count);
    }
    let end = h.len();
    let mut p = HDR;
    let (mut first, mut span) = (0usize, 0usize);
    let mut prev: Option<usize> = None;
    while p < end {
        let b = h[p];
        let mut oplen = 1;
        if is_zero(b) {
            span = zero_len(b);
        } else if b & 0x80 != 0 {
            span = val_len(b);
        } else {
            span = xzero_len(b, *h.get(p + 1).ok_or(())?);
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(());
    }
    let b = h[p];
    let (zero, xzero) = (is_zero(b), is_xzero(b));
    let runlen = if zero {
        zero_len(b)
    } else if xzero {
        xzero_len(b, h[p + 1])
    } else {
        val_len(b)
    };
    let mut done = false;
    if !zero && !xzero {
        if val_value(b) >= count {
            return Ok(false);
        }
        if runlen == 1 {
            h[p] = val_op(count, 1);
            done = true;
        }
    }
    if !done && zero && runlen == 1 {
        h[p] = val_op(count, 1);
        done = true;
    }
    if !done {
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        let push_zero = |seq: &mut Vec<u8>, len: usize| {
            if len > ZERO_MAX_LEN {
                seq.extend_from_slice(&xzero_op(len));
            } else {
                seq.push(zero_op(len));
            }
        };
        if zero || xzero {
            if index != first {
                push_zero(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero(&mut seq, last - index);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xzero { 2 } else { 1 };
        if seq.len() > oldlen && h.len() + seq.len() - oldlen > max_bytes {
            return promote(h, index, count);
        }
        h.splice(p..p + oldlen, seq);
    }
    // Merge adjacent VAL runs of the same value, scanning up to 5 opcodes from `prev`.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < h.len() && scan > 0 {
        scan -= 1;
        let b = h[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < h.len() && h[p + 1] & 0x80 != 0 {
            let (v1, v2) = (val_value(b), val_value(h[p + 1]));
            let len = val_len(b) + val_len(h[p + 1]);
            if v1 == v2 && len <= VAL_MAX_LEN {
                h[p + 1] = val_op(v1, len);
                h.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate(h);
    Ok(true)
}

fn promote(h: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, ()> {
    if !to_dense(h) {
        return Err(());
    }
    let regs = &mut h[HDR..];
    if dense_get(regs, index) < count {
        dense_set(regs, index, count);
    }
    invalidate(h);
    Ok(true)
}

/// Adds an element; Ok(true) when a register changed.
fn add(h: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, ()> {
    let (index, count) = pat_len(ele);
    if h[4] == ENC_DENSE {
        let regs = &mut h[HDR..];
        if dense_get(regs, index) < count {
            dense_set(regs, index, count);
            return Ok(true);
        }
        return Ok(false);
    }
    sparse_set(h, index, count, max_bytes)
}

/// Raises `max` to this HLL's registers; false when it is corrupt.
fn merge_into(max: &mut [u8; REGISTERS], h: &[u8]) -> bool {
    if h[4] == ENC_DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&h[HDR..], i));
        }
        return true;
    }
    let Some(runs) = sparse_runs(&h[HDR..]) else { return false };
    for (first, len, v) in runs {
        for m in &mut max[first..first + len] {
            *m = (*m).max(v);
        }
    }
    true
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Redis 7's estimator (Ertl, "New cardinality estimation algorithms for HyperLogLog
/// sketches") over a register histogram.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

fn histogram(h: &[u8]) -> Option<[u32; 64]> {
    let mut histo = [0u32; 64];
    if h[4] == ENC_DENSE {
        for i in 0..REGISTERS {
            histo[dense_get(&h[HDR..], i) as usize] += 1;
        }
    } else {
        for (_, len, v) in sparse_runs(&h[HDR..])? {
            histo[v as usize] += len as u32;
        }
    }
    Some(histo)
}

/// The HLL at `key` for reading: its bytes, None when missing, Err after an error reply.
fn read_hll(ctx: &mut Exec<'_, '_>, key: &[u8]) -> Result<Option<(Loc, Vec<u8>)>, Replied> {
    let found = ctx.read(key);
    hll_at(ctx, found)
}

/// The HLL at a looked-up location (see `read_hll`).
fn hll_at(ctx: &mut Exec<'_, '_>, found: Option<Loc>) -> Result<Option<(Loc, Vec<u8>)>, Replied> {
    let Some(loc) = found else { return Ok(None) };
    let v = ctx.value(loc);
    if !v.is_string() {
        ctx.wrongtype();
        return Err(Replied);
    }
    let b = v.to_vec();
    if !is_hll(&b) {
        ctx.err(NOT_HLL);
        return Err(Replied);
    }
    Ok(Some((loc, b)))
}

fn store(ctx: &mut Exec<'_, '_>, key: &[u8], loc: Option<Loc>, h: Vec<u8>) {
    match loc {
        Some(loc) => *ctx.value_mut(loc).make_raw() = h,
        None => {
            ctx.create(key, Value::Raw(Box::new(h)));
        }
    }
}

pub fn pfadd(ctx: &mut Exec<'_, '_>, req: &Request) {
    let key = req.arg(1);
    // A write lookup, as Redis's PFADD: no keyspace hit or miss.
    let found = ctx.lookup(key);
    let Ok(found) = hll_at(ctx, found) else { return };
    let (loc, mut h, mut updated) = match found {
        Some((loc, h)) => (Some(loc), h, false),
        None => (None, new_hll(), true),
    };
    for i in 2..req.len() {
        match add(&mut h, req.arg(i), SPARSE_MAX_BYTES) {
            Ok(true) => updated = true,
            Ok(false) => {}
            Err(()) => return ctx.err(INVALID),
        }
    }
    if updated {
        invalidate(&mut h);
        store(ctx, key, loc, h);
        ctx.emit_req(key, req);
    }
    reply::integer(ctx.out, updated as i64);
}

pub fn pfcount(ctx: &mut Exec<'_, '_>, req: &Request) {
    if req.len() > 2 {
        let mut max = [0u8; REGISTERS];
        for i in 1..req.len() {
            let Ok(found) = read_hll(ctx, req.arg(i)) else { return };
            if let Some((_, h)) = found {
                if !merge_into(&mut max, &h) {
                    return ctx.err(INVALID);
                }
            }
        }
        let mut histo = [0u32; 64];
        max.iter().for_each(|&v| histo[v as usize] += 1);
        return reply::integer(ctx.out, estimate(&histo) as i64);
    }
    let key = req.arg(1);
    let Ok(found) = read_hll(ctx, key) else { return };
    let Some((loc, mut h)) = found else { return reply::integer(ctx.out, 0) };
    if h[15] & 0x80 == 0 {
        let card = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        return reply::integer(ctx.out, card as i64);
    }
    let Some(histo) = histogram(&h) else { return ctx.err(INVALID) };
    let card = estimate(&histo);
    h[8..16].copy_from_slice(&card.to_le_bytes());
    store(ctx, key, Some(loc), h);
    // Caching the cardinality changes the string: a write, as in Redis.
    ctx.emit_req(key, req);
    reply::integer(ctx.out, card as i64);
}

pub fn pfmerge(ctx: &mut Exec<'_, '_>, req: &Request) {
    let dst = req.arg(1);
    let mut max = [0u8; REGISTERS];
    let mut dense = false;
    for i in 1..req.len() {
        let Ok(found) = read_hll(ctx, req.arg(i)) else { return };
        if let Some((_, h)) = found {
            dense |= h[4] == ENC_DENSE;
            if !merge_into(&mut max, &h) {
                return ctx.err(INVALID);
            }
        }
    }
    let found = ctx.lookup(dst);
    let mut h = found.map(|loc| ctx.value(loc).to_vec()).unwrap_or_else(new_hll);
    if dense && !to_dense(&mut h) {
        return ctx.err(INVALID);
    }
    for (i, &v) in max.iter().enumerate() {
        if v == 0 {
            continue;
        }
        if h[4] == ENC_DENSE {
            dense_set(&mut h[HDR..], i, v);
        } else if sparse_set(&mut h, i, v, SPARSE_MAX_BYTES).is_err() {
            return ctx.err(INVALID);
        }
    }
    invalidate(&mut h);
    store(ctx, dst, found, h);
    ctx.emit_req(dst, req);
    reply::ok(ctx.out);
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's introspection of the representation.
pub fn pfdebug(ctx: &mut Exec<'_, '_>, req: &Request) {
    let (sub, key) = (req.arg(1), req.arg(2));
    let Some(loc) = ctx.lookup(key) else { return ctx.err("ERR The specified key does not exist") };
    if !ctx.value(loc).is_string() {
        return ctx.wrongtype();
    }
    let mut h = ctx.value(loc).to_vec();
    if !is_hll(&h) {
        return ctx.err(NOT_HLL);
    }
    if is(sub, "GETREG") {
        if req.len() != 3 {
            return ctx.err("ERR Wrong number of arguments for the 'getreg' subcommand");
        }
        let converted = h[4] == ENC_SPARSE;
        if !to_dense(&mut h) {
            return ctx.err(INVALID);
        }
        reply::array_len(ctx.out, REGISTERS);
        for i in 0..REGISTERS {
            reply::integer(ctx.out, dense_get(&h[HDR..], i) as i64);
        }
        if converted {
            store(ctx, key, Some(loc), h);
            ctx.emit_req(key, req);
        }
    } else if is(sub, "DECODE") {
        if req.len() != 3 {
            return ctx.err("ERR Wrong number of arguments for the 'decode' subcommand");
        }
        if h[4] != ENC_SPARSE {
            return ctx.err("ERR HLL encoding is not sparse");
        }
        let mut text = String::new();
        let body = &h[HDR..];
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            if is_zero(b) {
                text.push_str(&format!("z:{} ", zero_len(b)));
                i += 1;
            } else if is_xzero(b) {
                text.push_str(&format!("Z:{} ", xzero_len(b, body.get(i + 1).copied().unwrap_or(0))));
                i += 2;
            } else {
                text.push_str(&format!("v:{},{} ", val_value(b), val_len(b)));
                i += 1;
            }
        }
        let text = text.trim_end();
        reply::bulk(ctx.out, text.as_bytes());
    } else if is(sub, "ENCODING") {
        if req.len() != 3 {
            return ctx.err("ERR Wrong number of arguments for the 'encoding' subcommand");
        }
        reply::simple(ctx.out, if h[4] == ENC_DENSE { b"dense" } else { b"sparse" });
    } else if is(sub, "TODENSE") {
        if req.len() != 3 {
            return ctx.err("ERR Wrong number of arguments for the 'todense' subcommand");
        }
        let converted = h[4] == ENC_SPARSE;
        if !to_dense(&mut h) {
            return ctx.err(INVALID);
        }
        if converted {
            store(ctx, key, Some(loc), h);
            ctx.emit_req(key, req);
        }
        reply::integer(ctx.out, converted as i64);
    } else {
        ctx.err(&format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_match_redis() {
        // Read off redis-server 7.0: PFADD then PFDEBUG GETREG shows one non-zero register.
        assert_eq!(pat_len(b"foo"), (7348, 5));
        assert_eq!(pat_len(b"hello world!"), (8716, 3));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_hll();
        for i in 0..20_000 {
            add(&mut sparse, format!("e{i}").as_bytes(), usize::MAX).unwrap();
        }
        assert_eq!(sparse[4], ENC_SPARSE);
        let mut dense = sparse.clone();
        assert!(to_dense(&mut dense));
        assert_eq!(histogram(&sparse), histogram(&dense));
        let est = estimate(&histogram(&dense).unwrap()) as f64;
        assert!((est - 20_000.0).abs() / 20_000.0 < 0.05, "{est}");
    }
}

#[cfg(test)]
mod stress {
    use super::*;

    #[test]
    fn sparse_stays_valid_and_equal_to_dense_through_promotion() {
        let mut h = new_hll();
        let mut reference = [0u8; REGISTERS];
        for i in 0..5000 {
            let e = format!("x{i}");
            let (idx, count) = pat_len(e.as_bytes());
            reference[idx] = reference[idx].max(count);
            add(&mut h, e.as_bytes(), SPARSE_MAX_BYTES).unwrap_or_else(|_| panic!("corrupt after {i}"));
            if h[4] == ENC_SPARSE {
                let runs = sparse_runs(&h[HDR..]).unwrap_or_else(|| panic!("invalid after {i}"));
                for (first, len, v) in runs {
                    for (r, want) in reference.iter().enumerate().skip(first).take(len) {
                        assert_eq!(v, *want, "register {r} after {i}");
                    }
                }
            }
        }
        assert_eq!(h[4], ENC_DENSE);
        for (r, want) in reference.iter().enumerate() {
            assert_eq!(dense_get(&h[HDR..], r), *want);
        }
    }
}
