//! The DUMP/RESTORE payload, byte-compatible with Redis 7.0: an RDB-encoded value, the RDB
//! version (10) and a CRC-64 of both, so keys can move between Redis and Shoal.

use super::crc64::crc64;
use super::listpack::{self, Elem};
use crate::shard::types::hash::Hash;
use crate::shard::types::set::Set;
use crate::shard::types::stream::{Group, Pending, Stream, StreamId};
use crate::shard::types::zset::ZSet;
use crate::shard::types::{Encodings, List};
use crate::shard::value::Value;

pub const RDB_VERSION: u16 = 10;
const RDB_TYPE_STRING: u8 = 0;
const RDB_TYPE_LIST: u8 = 1;
const RDB_TYPE_SET: u8 = 2;
const RDB_TYPE_HASH: u8 = 4;
const RDB_TYPE_ZSET_2: u8 = 5;
/// Streams use a Shoal-specific type (Redis's is a radix tree of listpacks): payloads move
/// between Shoal nodes, not to Redis. Outside both Redis's type numbers and its RDB opcodes
/// (0xF5–0xFF), so the same encoding serves in RDB files.
const SHOAL_TYPE_STREAM: u8 = 0xE5;
// Redis's compact encodings, which its own DUMP produces for small values.
const RDB_TYPE_SET_INTSET: u8 = 11;
const RDB_TYPE_HASH_LISTPACK: u8 = 16;
const RDB_TYPE_ZSET_LISTPACK: u8 = 17;
const RDB_TYPE_LIST_QUICKLIST_2: u8 = 18;
const RDB_TYPE_SET_LISTPACK: u8 = 20;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("Bad data format")]
    BadFormat,
}

pub(super) fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_int(out: &mut Vec<u8>, n: i64) -> bool {
    if let Ok(v) = i8::try_from(n) {
        out.extend_from_slice(&[0xC0 | ENC_INT8, v as u8]);
    } else if let Ok(v) = i16::try_from(n) {
        out.push(0xC0 | ENC_INT16);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(n) {
        out.push(0xC0 | ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Redis's `rdbSaveRawString`: short canonical integers are stored as integers.
pub(super) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(n) = shoal_proto::request::parse_i64(s) {
            if put_int(out, n) {
                return;
            }
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Serializes a value as DUMP does. Collections use the plain RDB types (every Redis
/// version loads them) rather than Redis's listpack images.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.str_len() + 16);
    put_value(&mut out, None, value);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends a value's RDB type byte and encoding, as DUMP payloads hold them; with a key, an
/// RDB file's record (type, key, encoding).
pub fn put_value(out: &mut Vec<u8>, key: Option<&[u8]>, value: &Value) {
    let tag = |out: &mut Vec<u8>, ty: u8| {
        out.push(ty);
        if let Some(k) = key {
            put_string(out, k);
        }
    };
    match value {
        Value::Hash(h) => {
            tag(out, RDB_TYPE_HASH);
            put_len(out, h.len() as u64);
            h.for_each(|f, v| {
                put_string(out, f);
                put_string(out, v);
            });
        }
        Value::List(l) => {
            tag(out, RDB_TYPE_LIST);
            put_len(out, l.len() as u64);
            l.iter().for_each(|e| put_string(out, e));
        }
        Value::Set(s) => {
            tag(out, RDB_TYPE_SET);
            put_len(out, s.len() as u64);
            s.for_each(|e| put_string(out, &e.to_vec()));
        }
        Value::ZSet(z) => {
            tag(out, RDB_TYPE_ZSET_2);
            put_len(out, z.len() as u64);
            let o = z.ordered();
            // Redis writes from the highest score down, so a load inserts at the head.
            o.visit(0, o.len(), true, |m, score| {
                put_string(out, m);
                out.extend_from_slice(&score.to_le_bytes());
            });
        }
        Value::Stream(st) => {
            tag(out, SHOAL_TYPE_STREAM);
            put_stream(out, st);
        }
        Value::Int(n) if put_int(&mut Vec::new(), *n) => {
            tag(out, RDB_TYPE_STRING);
            put_int(out, *n);
        }
        v => {
            tag(out, RDB_TYPE_STRING);
            put_string(out, &v.to_vec())
        }
    }
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_u64(out, id.ms);
    put_u64(out, id.seq);
}

fn put_stream(out: &mut Vec<u8>, s: &Stream) {
    put_id(out, s.last_id);
    put_id(out, s.max_deleted_id);
    put_u64(out, s.entries_added);
    put_len(out, s.len() as u64);
    for (id, fields) in &s.entries {
        put_id(out, *id);
        put_len(out, fields.len() as u64);
        for (f, v) in fields.iter() {
            put_string(out, f);
            put_string(out, v);
        }
    }
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name);
        put_id(out, g.last_id);
        put_u64(out, g.entries_read.unwrap_or(u64::MAX));
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            put_id(out, *id);
            put_string(out, &p.consumer);
            put_u64(out, p.delivery_time);
            put_u64(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (name, c) in &g.consumers {
            put_string(out, name);
            put_u64(out, c.seen_time);
        }
    }
}

fn read_stream(r: &mut Reader<'_>) -> Result<Stream, DumpError> {
    let mut s = Stream::default();
    let (last, max_del, added) = (r.id()?, r.id()?, r.u64()?);
    for _ in 0..r.count()? {
        let id = r.id()?;
        let n = r.count()?;
        let mut fields = Vec::with_capacity(n as usize);
        for _ in 0..n {
            fields.push((r.string()?.into_boxed_slice(), r.string()?.into_boxed_slice()));
        }
        if s.last_id >= id && !s.is_empty() {
            return Err(DumpError::BadFormat);
        }
        s.append(id, fields.into_boxed_slice(), crate::cmd::streams::NODE_MAX_ENTRIES);
    }
    s.last_id = last;
    s.max_deleted_id = max_del;
    s.entries_added = added;
    for _ in 0..r.count()? {
        let name = r.string()?.into_boxed_slice();
        let mut g = Group { last_id: r.id()?, ..Group::default() };
        let read = r.u64()?;
        g.entries_read = (read != u64::MAX).then_some(read);
        for _ in 0..r.count()? {
            let id = r.id()?;
            let consumer = r.string()?.into_boxed_slice();
            let p = Pending { consumer: consumer.clone(), delivery_time: r.u64()?, delivery_count: r.u64()? };
            g.consumers.entry(consumer).or_default().pending.insert(id, ());
            g.pel.insert(id, p);
        }
        for _ in 0..r.count()? {
            let name = r.string()?.into_boxed_slice();
            g.consumers.entry(name).or_default().seen_time = r.u64()?;
        }
        s.groups.insert(name, g);
    }
    Ok(s)
}

pub(super) struct Reader<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn byte(&mut self) -> Result<u8, DumpError> {
        let b = *self.data.get(self.pos).ok_or(DumpError::BadFormat)?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DumpError> {
        let end = self.pos.checked_add(n).ok_or(DumpError::BadFormat)?;
        let s = self.data.get(self.pos..end).ok_or(DumpError::BadFormat)?;
        self.pos = end;
        Ok(s)
    }

    /// A length, or `Err(Ok(enc))` for a special encoding.
    pub(super) fn len(&mut self) -> Result<Result<u64, u8>, DumpError> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Ok((b & 0x3f) as u64),
            1 => Ok((((b & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if b == 0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as u64),
            2 if b == 0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            3 => Err(b & 0x3f),
            _ => return Err(DumpError::BadFormat),
        })
    }

    pub(super) fn u64(&mut self) -> Result<u64, DumpError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn id(&mut self) -> Result<StreamId, DumpError> {
        Ok(StreamId::new(self.u64()?, self.u64()?))
    }

    /// An element count, bounded by what the remaining bytes could hold.
    pub(super) fn count(&mut self) -> Result<u64, DumpError> {
        let n = self.len()?.map_err(|_| DumpError::BadFormat)?;
        if n > (self.data.len() - self.pos) as u64 {
            return Err(DumpError::BadFormat);
        }
        Ok(n)
    }

    pub(super) fn string(&mut self) -> Result<Vec<u8>, DumpError> {
        match self.len()? {
            Ok(n) => Ok(self.take(usize::try_from(n).map_err(|_| DumpError::BadFormat)?)?.to_vec()),
            Err(ENC_INT8) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Err(ENC_INT16) => Ok(i16::from_le_bytes(self.take(2)?.try_into().expect("2")).to_string().into_bytes()),
            Err(ENC_INT32) => Ok(i32::from_le_bytes(self.take(4)?.try_into().expect("4")).to_string().into_bytes()),
            Err(ENC_LZF) => {
                let clen = self.len()?.map_err(|_| DumpError::BadFormat)? as usize;
                let ulen = self.len()?.map_err(|_| DumpError::BadFormat)? as usize;
                lzf_decompress(self.take(clen)?, ulen)
            }
            Err(_) => Err(DumpError::BadFormat),
        }
    }
}

/// A hash from a flat field, value, field, value... sequence.
pub(super) fn pairs_to_hash(elems: Vec<Elem>, enc: &Encodings) -> Result<Value, DumpError> {
    if !elems.len().is_multiple_of(2) {
        return Err(DumpError::BadFormat);
    }
    let mut h = Hash::default();
    let mut it = elems.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        if !h.set(&f.into_bytes(), &v.into_bytes(), enc) {
            return Err(DumpError::BadFormat);
        }
    }
    Ok(Value::Hash(h))
}

/// A sorted set from a flat member, score, member, score... sequence.
pub(super) fn pairs_to_zset(elems: Vec<Elem>, enc: &Encodings) -> Result<Value, DumpError> {
    if !elems.len().is_multiple_of(2) {
        return Err(DumpError::BadFormat);
    }
    let mut z = ZSet::default();
    let mut it = elems.into_iter();
    while let (Some(m), Some(sc)) = (it.next(), it.next()) {
        let score = match sc {
            Elem::Int(n) => n as f64,
            Elem::Bytes(b) => crate::util::float::string2d(&b).ok_or(DumpError::BadFormat)?,
        };
        let m = m.into_bytes();
        if z.score(&m).is_some() {
            return Err(DumpError::BadFormat);
        }
        z.insert(&m, score, enc);
    }
    Ok(Value::ZSet(z))
}

/// LZF decompression (Redis compresses strings over 20 bytes in DUMP payloads).
fn lzf_decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, DumpError> {
    // Refuse absurd sizes before allocating: output can be at most ~264x the input.
    if out_len > input.len().saturating_mul(264) + 64 {
        return Err(DumpError::BadFormat);
    }
    let mut out = Vec::with_capacity(out_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(i..i + n).ok_or(DumpError::BadFormat)?;
            out.extend_from_slice(lit);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i).ok_or(DumpError::BadFormat)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i).ok_or(DumpError::BadFormat)? as usize + 1;
            i += 1;
            if back > out.len() {
                return Err(DumpError::BadFormat);
            }
            let start = out.len() - back;
            for k in 0..len + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > out_len {
            return Err(DumpError::BadFormat);
        }
    }
    if out.len() != out_len {
        return Err(DumpError::BadFormat);
    }
    Ok(out)
}

/// Redis's RDB opcode for a function library (its code).
const RDB_OPCODE_FUNCTION2: u8 = 0xF5;

/// FUNCTION DUMP's payload, as Redis 7 writes it: each library's code after its opcode, then
/// the RDB version and a CRC-64, so libraries move between Redis and Shoal.
pub fn dump_functions(codes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    put_functions(&mut out, codes);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Each library's code after its opcode: a FUNCTION DUMP payload's body, and what an RDB file
/// holds ahead of its databases.
pub fn put_functions(out: &mut Vec<u8>, codes: &[Vec<u8>]) {
    for code in codes {
        out.push(RDB_OPCODE_FUNCTION2);
        put_len(out, code.len() as u64);
        out.extend_from_slice(code);
    }
}

/// The libraries' code in a FUNCTION DUMP payload (Redis's, compressed or not, or ours).
pub fn restore_functions(payload: &[u8]) -> Result<Vec<Vec<u8>>, DumpError> {
    let body = checked_body(payload)?;
    let mut r = Reader { data: body, pos: 0 };
    let mut codes = Vec::new();
    while r.pos < body.len() {
        if r.byte()? != RDB_OPCODE_FUNCTION2 {
            return Err(DumpError::BadFormat);
        }
        codes.push(r.string()?);
    }
    Ok(codes)
}

/// A DUMP payload without its footer, once the footer's version and checksum are right.
fn checked_body(payload: &[u8]) -> Result<&[u8], DumpError> {
    if payload.len() < 10 {
        return Err(DumpError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    if version > RDB_VERSION || crc64(0, &payload[..payload.len() - 8]) != crc {
        return Err(DumpError::VersionOrChecksum);
    }
    Ok(body)
}

/// Checks the footer and parses a DUMP payload back into a value.
pub fn restore(payload: &[u8], enc: &Encodings) -> Result<Value, DumpError> {
    let body = checked_body(payload)?;
    let mut r = Reader { data: body, pos: 0 };
    let ty = r.byte()?;
    let value = read_value(&mut r, ty, enc)?;
    if r.pos != body.len() {
        return Err(DumpError::BadFormat);
    }
    Ok(value)
}

/// Reads a value of RDB type `ty`: the part DUMP payloads and RDB files share.
pub(super) fn read_value(r: &mut Reader<'_>, ty: u8, enc: &Encodings) -> Result<Value, DumpError> {
    let value = match ty {
        RDB_TYPE_STRING => Value::string_from_vec(r.string()?),
        RDB_TYPE_LIST => {
            let n = r.count()?;
            let mut l = List::new();
            for _ in 0..n {
                l.push_back(crate::shard::bytes::SmallBytes::from_vec(r.string()?));
            }
            Value::List(Box::new(l))
        }
        RDB_TYPE_SET => {
            let n = r.count()?;
            let mut s: Option<Set> = None;
            for _ in 0..n {
                let m = r.string()?;
                let set = s.get_or_insert_with(|| Set::for_member(&m));
                if !set.add(&m, enc) {
                    return Err(DumpError::BadFormat);
                }
            }
            Value::Set(s.ok_or(DumpError::BadFormat)?)
        }
        RDB_TYPE_HASH => {
            let n = r.count()?;
            let mut h = Hash::default();
            for _ in 0..n {
                let (f, v) = (r.string()?, r.string()?);
                if !h.set(&f, &v, enc) {
                    return Err(DumpError::BadFormat);
                }
            }
            Value::Hash(h)
        }
        RDB_TYPE_ZSET_2 => {
            let n = r.count()?;
            let mut z = ZSet::default();
            for _ in 0..n {
                let m = r.string()?;
                let score = f64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
                if score.is_nan() || z.score(&m).is_some() {
                    return Err(DumpError::BadFormat);
                }
                z.insert(&m, score, enc);
            }
            Value::ZSet(z)
        }
        SHOAL_TYPE_STREAM => Value::Stream(Box::new(read_stream(r)?)),
        RDB_TYPE_SET_INTSET => {
            let ints = listpack::intset(&r.string()?).ok_or(DumpError::BadFormat)?;
            let mut s: Option<Set> = None;
            for n in ints {
                let m = n.to_string();
                if !s.get_or_insert_with(|| Set::for_member(m.as_bytes())).add(m.as_bytes(), enc) {
                    return Err(DumpError::BadFormat);
                }
            }
            Value::Set(s.ok_or(DumpError::BadFormat)?)
        }
        RDB_TYPE_SET_LISTPACK => {
            let elems = listpack::listpack(&r.string()?).ok_or(DumpError::BadFormat)?;
            let mut s: Option<Set> = None;
            for e in elems {
                let m = e.into_bytes();
                if !s.get_or_insert_with(|| Set::for_member(&m)).add(&m, enc) {
                    return Err(DumpError::BadFormat);
                }
            }
            Value::Set(s.ok_or(DumpError::BadFormat)?)
        }
        RDB_TYPE_HASH_LISTPACK => pairs_to_hash(listpack::listpack(&r.string()?).ok_or(DumpError::BadFormat)?, enc)?,
        RDB_TYPE_ZSET_LISTPACK => pairs_to_zset(listpack::listpack(&r.string()?).ok_or(DumpError::BadFormat)?, enc)?,
        RDB_TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.count()?;
            let mut l = List::new();
            for _ in 0..nodes {
                let container = r.len()?.map_err(|_| DumpError::BadFormat)?;
                let blob = r.string()?;
                match container {
                    // A plain node holds one large element as is.
                    1 => l.push_back(crate::shard::bytes::SmallBytes::from_vec(blob)),
                    2 => {
                        for e in listpack::listpack(&blob).ok_or(DumpError::BadFormat)? {
                            l.push_back(crate::shard::bytes::SmallBytes::from_vec(e.into_bytes()));
                        }
                    }
                    _ => return Err(DumpError::BadFormat),
                }
            }
            Value::List(Box::new(l))
        }
        ty => return super::rdb::read_legacy_value(r, ty, enc),
    };
    if value.element_count() == 0 {
        return Err(DumpError::BadFormat);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_strings_and_integers() {
        for v in [
            Value::string(b"hello"),
            Value::Int(5),
            Value::Int(-70000),
            Value::Int(i64::MAX),
            Value::string(&[7u8; 20000]),
        ] {
            let back = restore(&dump(&v), &Encodings::default()).unwrap();
            assert_eq!(back.to_vec(), v.to_vec());
        }
    }

    #[test]
    fn matches_redis_bytes() {
        // redis-cli DUMP of SET k hello on Redis 7.0.
        let want = b"\x00\x05hello\x0a\x00";
        assert_eq!(&dump(&Value::string(b"hello"))[..want.len()], want);
        assert_eq!(&dump(&Value::Int(1))[..3], b"\x00\xc0\x01");
    }

    #[test]
    fn rejects_corruption() {
        let mut d = dump(&Value::string(b"hello"));
        d[3] ^= 1;
        assert_eq!(restore(&d, &Encodings::default()).unwrap_err(), DumpError::VersionOrChecksum);
        assert_eq!(restore(b"short", &Encodings::default()).unwrap_err(), DumpError::VersionOrChecksum);
    }
}
