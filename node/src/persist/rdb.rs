//! Loading RDB files written by Redis (`dump.rdb`), so users can move their data to Shoal:
//! every type in every encoding Redis 2.x–7.2 writes (plain, ziplist, listpack, intset,
//! quicklist, streams as listpacks), expiries, databases. Values share their decoders with
//! RESTORE (`dump::read_value`); this module adds the file's framing and the encodings DUMP
//! payloads of Redis 7.0 never carry.

use super::crc64::crc64;
use super::dump::{pairs_to_hash, pairs_to_zset, read_value, DumpError, Reader};
use super::listpack::{listpack, ziplist, Elem};
use crate::shard::bytes::SmallBytes;
use crate::shard::types::stream::{Consumer, Group, Pending, Stream, StreamId};
use crate::shard::types::zset::ZSet;
use crate::shard::types::{Encodings, List};
use crate::shard::value::Value;
use std::path::{Path, PathBuf};

const OP_FUNCTION2: u8 = 0xF5;
const OP_FUNCTION: u8 = 0xF6;
const OP_MODULE_AUX: u8 = 0xF7;
const OP_IDLE: u8 = 0xF8;
const OP_FREQ: u8 = 0xF9;
pub(super) const OP_AUX: u8 = 0xFA;
pub(super) const OP_RESIZEDB: u8 = 0xFB;
pub(super) const OP_EXPIRETIME_MS: u8 = 0xFC;
const OP_EXPIRETIME: u8 = 0xFD;
pub(super) const OP_SELECTDB: u8 = 0xFE;
pub(super) const OP_EOF: u8 = 0xFF;

const TYPE_ZSET: u8 = 3;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_STREAM_LISTPACKS: u8 = 15;
const TYPE_STREAM_LISTPACKS_2: u8 = 19;
const TYPE_STREAM_LISTPACKS_3: u8 = 21;
/// Newest RDB version understood (Redis 7.2 writes 11).
const MAX_VERSION: u32 = 11;

#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an RDB file (no REDIS header)")]
    NotRdb { path: PathBuf },
    #[error("{path} is RDB version {version}; versions up to {MAX_VERSION} (Redis 7.2) are supported")]
    Version { path: PathBuf, version: u32 },
    #[error("{path}: corrupt or unsupported data at offset {offset}: {what}")]
    Corrupt { path: PathBuf, offset: usize, what: String },
    #[error("{path}: checksum mismatch (file says {stored:016x}, contents give {computed:016x})")]
    Checksum { path: PathBuf, stored: u64, computed: u64 },
}

/// One key read from the file.
pub struct RdbKey {
    pub db: usize,
    pub key: Vec<u8>,
    pub value: Value,
    /// Absolute Unix ms, 0 for none.
    pub expire_at: u64,
    /// Memcached client flags (a Shoal AUX field ahead of the key), 0 for none.
    pub mc_flags: u32,
}

/// What a load found besides keys.
#[derive(Debug, Default)]
pub struct RdbSummary {
    pub version: u32,
    pub keys: u64,
    /// The function libraries' code.
    pub functions: Vec<Vec<u8>>,
}

/// Reads the RDB file at `path`, handing every key to `sink`.
pub fn load(path: &Path, enc: &Encodings, sink: impl FnMut(RdbKey)) -> Result<RdbSummary, RdbError> {
    let data = std::fs::read(path).map_err(|source| RdbError::Io { path: path.into(), source })?;
    parse(&data, enc, sink).map_err(|e| e.at(path))
}

/// A parse failure before the file name is known.
#[derive(Debug)]
enum Fail {
    NotRdb,
    Version(u32),
    Corrupt(usize, String),
    Checksum(u64, u64),
}

impl Fail {
    fn at(self, path: &Path) -> RdbError {
        let path = path.to_path_buf();
        match self {
            Fail::NotRdb => RdbError::NotRdb { path },
            Fail::Version(version) => RdbError::Version { path, version },
            Fail::Corrupt(offset, what) => RdbError::Corrupt { path, offset, what },
            Fail::Checksum(stored, computed) => RdbError::Checksum { path, stored, computed },
        }
    }
}

fn parse(data: &[u8], enc: &Encodings, mut sink: impl FnMut(RdbKey)) -> Result<RdbSummary, Fail> {
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return Err(Fail::NotRdb);
    }
    let version: u32 = std::str::from_utf8(&data[5..9]).ok().and_then(|v| v.parse().ok()).ok_or(Fail::NotRdb)?;
    if version > MAX_VERSION {
        return Err(Fail::Version(version));
    }
    let mut r = Reader { data, pos: 9 };
    let mut summary = RdbSummary { version, ..RdbSummary::default() };
    let (mut db, mut expire_at, mut mc_flags) = (0usize, 0u64, 0u32);
    loop {
        let at = r.pos;
        let bad = |what: &str| Fail::Corrupt(at, what.to_string());
        let op = r.byte().map_err(|_| bad("file ends before its EOF marker"))?;
        match op {
            OP_EOF => break,
            OP_SELECTDB => db = r.len().ok().and_then(|l| l.ok()).ok_or_else(|| bad("bad SELECTDB"))? as usize,
            OP_RESIZEDB => {
                r.len().ok().and_then(|l| l.ok()).ok_or_else(|| bad("bad RESIZEDB"))?;
                r.len().ok().and_then(|l| l.ok()).ok_or_else(|| bad("bad RESIZEDB"))?;
            }
            OP_AUX => {
                let name = r.string().map_err(|_| bad("bad AUX field"))?;
                let value = r.string().map_err(|_| bad("bad AUX field"))?;
                if name == crate::persist::snapshot::MC_FLAGS_AUX.as_bytes() {
                    mc_flags = shoal_proto::memcache::parse_u32(&value).ok_or_else(|| bad("bad client flags"))?;
                }
            }
            OP_EXPIRETIME_MS => expire_at = r.u64().map_err(|_| bad("bad expiry"))?,
            OP_EXPIRETIME => {
                let secs = r.take(4).map_err(|_| bad("bad expiry"))?;
                expire_at = u32::from_le_bytes(secs.try_into().expect("4 bytes")) as u64 * 1000;
            }
            OP_FREQ => {
                r.byte().map_err(|_| bad("bad FREQ"))?;
            }
            OP_IDLE => {
                r.len().ok().and_then(|l| l.ok()).ok_or_else(|| bad("bad IDLE"))?;
            }
            OP_FUNCTION2 => summary.functions.push(r.string().map_err(|_| bad("bad function library"))?),
            OP_FUNCTION | OP_MODULE_AUX => return Err(bad("modules and pre-7.0 functions are not supported")),
            ty => {
                let key = r.string().map_err(|_| bad("bad key"))?;
                let value = read_value(&mut r, ty, enc).map_err(|_| bad(&format!("bad value of type {ty}")))?;
                sink(RdbKey { db, key, value, expire_at, mc_flags });
                summary.keys += 1;
                expire_at = 0;
                mc_flags = 0;
            }
        }
    }
    if version >= 5 {
        let end = r.pos;
        let stored = r.u64().map_err(|_| Fail::Corrupt(end, "missing checksum".into()))?;
        // Redis writes 0 when rdbchecksum is off.
        let computed = crc64(0, &data[..end]);
        if stored != 0 && stored != computed {
            return Err(Fail::Checksum(stored, computed));
        }
    }
    Ok(summary)
}

/// The RDB value types that DUMP payloads of Redis 7.0 do not carry: older encodings and
/// Redis's own stream format.
pub(super) fn read_legacy_value(r: &mut Reader<'_>, ty: u8, enc: &Encodings) -> Result<Value, DumpError> {
    let elems =
        |r: &mut Reader<'_>| -> Result<Vec<Elem>, DumpError> { ziplist(&r.string()?).ok_or(DumpError::BadFormat) };
    let value = match ty {
        TYPE_ZSET => {
            let mut z = ZSet::default();
            for _ in 0..r.count()? {
                let m = r.string()?;
                let score = read_text_double(r)?;
                z.insert(&m, score, enc);
            }
            Value::ZSet(z)
        }
        TYPE_LIST_ZIPLIST => {
            Value::List(Box::new(elems(r)?.into_iter().map(|e| SmallBytes::from_vec(e.into_bytes())).collect()))
        }
        TYPE_HASH_ZIPLIST => pairs_to_hash(elems(r)?, enc)?,
        TYPE_ZSET_ZIPLIST => pairs_to_zset(elems(r)?, enc)?,
        TYPE_LIST_QUICKLIST => {
            let mut l = List::new();
            for _ in 0..r.count()? {
                l.extend(elems(r)?.into_iter().map(|e| SmallBytes::from_vec(e.into_bytes())));
            }
            Value::List(Box::new(l))
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            Value::Stream(Box::new(read_redis_stream(r, ty)?))
        }
        // Zipmap hashes (type 9, Redis before 2.6) and module types are not read.
        _ => return Err(DumpError::BadFormat),
    };
    if value.element_count() == 0 && !matches!(value, Value::Stream(_)) {
        return Err(DumpError::BadFormat);
    }
    Ok(value)
}

/// RDB_TYPE_ZSET's scores: a length byte then the number as text (253 NaN, 254 +inf, 255 -inf).
fn read_text_double(r: &mut Reader<'_>) -> Result<f64, DumpError> {
    match r.byte()? {
        253 => Err(DumpError::BadFormat),
        254 => Ok(f64::INFINITY),
        255 => Ok(f64::NEG_INFINITY),
        n => {
            let text = r.take(n as usize)?;
            crate::util::float::string2d(text).ok_or(DumpError::BadFormat)
        }
    }
}

fn int_of(e: Option<&Elem>) -> Result<i64, DumpError> {
    match e {
        Some(Elem::Int(n)) => Ok(*n),
        Some(Elem::Bytes(b)) => shoal_proto::request::parse_i64(b).ok_or(DumpError::BadFormat),
        None => Err(DumpError::BadFormat),
    }
}

fn len_of(r: &mut Reader<'_>) -> Result<u64, DumpError> {
    r.len()?.map_err(|_| DumpError::BadFormat)
}

/// A 128-bit stream ID as Redis stores it raw: two big-endian u64s.
fn raw_id(b: &[u8]) -> Result<StreamId, DumpError> {
    if b.len() != 16 {
        return Err(DumpError::BadFormat);
    }
    let ms = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
    let seq = u64::from_be_bytes(b[8..].try_into().expect("8 bytes"));
    Ok(StreamId::new(ms, seq))
}

/// Redis's stream format: a radix tree of listpacks (each a master entry, then entries as
/// deltas from the node's master ID), then metadata and consumer groups.
fn read_redis_stream(r: &mut Reader<'_>, ty: u8) -> Result<Stream, DumpError> {
    const FLAG_DELETED: i64 = 1;
    const FLAG_SAMEFIELDS: i64 = 2;
    let mut s = Stream::default();
    for _ in 0..r.count()? {
        let master = raw_id(&r.string()?)?;
        let lp = listpack(&r.string()?).ok_or(DumpError::BadFormat)?;
        let mut it = lp.iter();
        let count = int_of(it.next())?;
        let deleted = int_of(it.next())?;
        let nfields = int_of(it.next())?;
        if count < 0 || deleted < 0 || !(0..=lp.len() as i64).contains(&nfields) {
            return Err(DumpError::BadFormat);
        }
        let master_fields: Vec<Vec<u8>> =
            (0..nfields).map(|_| it.next().map(elem_bytes)).collect::<Option<_>>().ok_or(DumpError::BadFormat)?;
        int_of(it.next())?; // the master entry's terminator
        for _ in 0..count + deleted {
            let flags = int_of(it.next())?;
            let ms = master.ms.checked_add_signed(int_of(it.next())?).ok_or(DumpError::BadFormat)?;
            let seq = master.seq.checked_add_signed(int_of(it.next())?).ok_or(DumpError::BadFormat)?;
            let mut fields = Vec::new();
            if flags & FLAG_SAMEFIELDS != 0 {
                for f in &master_fields {
                    let v = it.next().ok_or(DumpError::BadFormat)?;
                    fields.push((f.clone().into_boxed_slice(), elem_bytes(v).into_boxed_slice()));
                }
            } else {
                let n = int_of(it.next())?;
                for _ in 0..n {
                    let f = it.next().ok_or(DumpError::BadFormat)?;
                    let v = it.next().ok_or(DumpError::BadFormat)?;
                    fields.push((elem_bytes(f).into_boxed_slice(), elem_bytes(v).into_boxed_slice()));
                }
            }
            int_of(it.next())?; // lp-count, for walking backwards
            if flags & FLAG_DELETED == 0 {
                let id = StreamId::new(ms, seq);
                if !s.is_empty() && s.last_id >= id {
                    return Err(DumpError::BadFormat);
                }
                s.append(id, fields.into_boxed_slice(), crate::cmd::streams::NODE_MAX_ENTRIES);
            }
        }
    }
    let _length = len_of(r)?;
    s.last_id = StreamId::new(len_of(r)?, len_of(r)?);
    s.entries_added = s.len() as u64;
    if ty >= TYPE_STREAM_LISTPACKS_2 {
        let _first = StreamId::new(len_of(r)?, len_of(r)?);
        s.max_deleted_id = StreamId::new(len_of(r)?, len_of(r)?);
        s.entries_added = len_of(r)?;
    }
    for _ in 0..r.count()? {
        let name = r.string()?.into_boxed_slice();
        let mut g = Group { last_id: StreamId::new(len_of(r)?, len_of(r)?), ..Group::default() };
        if ty >= TYPE_STREAM_LISTPACKS_2 {
            let read = len_of(r)?;
            // Redis writes SCG_INVALID_ENTRIES_READ (-1 as u64) when it does not know.
            g.entries_read = (read != u64::MAX).then_some(read);
        }
        for _ in 0..r.count()? {
            let id = raw_id(r.take(16)?)?;
            let delivery_time = r.u64()?;
            let delivery_count = len_of(r)?;
            g.pel.insert(id, Pending { consumer: Box::default(), delivery_time, delivery_count });
        }
        for _ in 0..r.count()? {
            let cname = r.string()?.into_boxed_slice();
            let seen_time = r.u64()?;
            if ty >= TYPE_STREAM_LISTPACKS_3 {
                let _active_time = r.u64()?;
            }
            let mut c = Consumer { seen_time, ..Consumer::default() };
            for _ in 0..r.count()? {
                let id = raw_id(r.take(16)?)?;
                let p = g.pel.get_mut(&id).ok_or(DumpError::BadFormat)?;
                p.consumer = cname.clone();
                c.pending.insert(id, ());
            }
            g.consumers.insert(cname, c);
        }
        s.groups.insert(name, g);
    }
    Ok(s)
}

fn elem_bytes(e: &Elem) -> Vec<u8> {
    match e {
        Elem::Bytes(b) => b.clone(),
        Elem::Int(n) => n.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_rdb_file() {
        let enc = Encodings::default();
        assert!(matches!(parse(b"hello world", &enc, |_| {}), Err(Fail::NotRdb)));
        assert!(matches!(parse(b"REDIS0099\xff", &enc, |_| {}), Err(Fail::Version(99))));
        assert!(matches!(parse(b"REDIS0010", &enc, |_| {}), Err(Fail::Corrupt(9, _))));
    }

    #[test]
    fn reads_keys_expiries_and_checks_the_checksum() {
        // REDIS0010, SELECTDB 2, EXPIRETIME_MS, string "k" = "v", EOF, checksum.
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&[OP_SELECTDB, 2, OP_EXPIRETIME_MS]);
        f.extend_from_slice(&4102444800000u64.to_le_bytes());
        f.extend_from_slice(&[0, 1, b'k', 1, b'v', OP_EOF]);
        let crc = crc64(0, &f);
        f.extend_from_slice(&crc.to_le_bytes());
        let mut got = Vec::new();
        let summary = parse(&f, &Encodings::default(), |k| got.push(k)).unwrap();
        assert_eq!(summary.keys, 1);
        assert_eq!((got[0].db, got[0].key.as_slice(), got[0].expire_at), (2, b"k".as_slice(), 4102444800000));
        let last = f.len() - 1;
        f[last] ^= 1;
        assert!(matches!(parse(&f, &Encodings::default(), |_| {}), Err(Fail::Checksum(..))));
    }
}
