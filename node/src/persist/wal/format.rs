//! The write-ahead log's bytes: records, frames, segment headers and file names.
//!
//! A segment file starts with a 24-byte header (magic, version, the log offset of its first
//! frame, a CRC-32 of those) and holds frames back to back. A frame is a little-endian u32
//! payload length, a CRC-32 of the payload, and the payload: one or more records that must
//! be applied together (one pipeline's writes on one shard, or all the writes a multi-shard
//! command made). Log offsets count frame bytes only, so they continue across segments.
//!
//! A record is a kind byte, the database, and the command that reproduces the write, as
//! LEB128 varints and length-prefixed arguments.

use bytes::Bytes;

pub const SEGMENT_MAGIC: &[u8; 8] = b"SHOALWAL";
pub const VERSION: u32 = 1;
pub const SEGMENT_HEADER: usize = 24;
pub const FRAME_HEADER: usize = 8;
/// Largest frame payload a reader accepts; a larger length is damage.
pub const MAX_FRAME: u32 = 1 << 31;

/// A write to keys: replayed through the command table, routed by its keys.
pub const KEYED: u8 = 0;
/// A write to whole databases that every shard records (FLUSHALL, FLUSHDB, SWAPDB): replayed
/// once for the node, however many shards recorded it.
pub const NODE_WIDE: u8 = 1;

pub const MANIFEST: &str = "manifest";

pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// Appends one record to a frame payload under construction.
pub fn put_record(out: &mut Vec<u8>, kind: u8, db: usize, argv: &[Bytes]) {
    out.push(kind);
    put_varint(out, db as u64);
    put_varint(out, argv.len() as u64);
    for a in argv {
        put_varint(out, a.len() as u64);
        out.extend_from_slice(a);
    }
}

/// One decoded record, borrowing its arguments from the payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: u8,
    pub db: usize,
    pub argv: Vec<&'a [u8]>,
}

/// The records of a frame payload, or the payload offset where they stop making sense.
pub fn records(payload: &[u8]) -> Result<Vec<Record<'_>>, usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        let at = pos;
        let kind = payload[pos];
        pos += 1;
        let rec = (|| {
            if kind != KEYED && kind != NODE_WIDE {
                return None;
            }
            let db = get_varint(payload, &mut pos)? as usize;
            let argc = get_varint(payload, &mut pos)?;
            if argc == 0 || argc > (payload.len() - pos) as u64 {
                return None;
            }
            let mut argv = Vec::with_capacity(argc as usize);
            for _ in 0..argc {
                let len = get_varint(payload, &mut pos)?;
                if len > (payload.len() - pos) as u64 {
                    return None;
                }
                argv.push(&payload[pos..pos + len as usize]);
                pos += len as usize;
            }
            Some(Record { kind, db, argv })
        })();
        out.push(rec.ok_or(at)?);
    }
    Ok(out)
}

/// The header that precedes `payload` in a segment.
pub fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER] {
    let mut h = [0u8; FRAME_HEADER];
    h[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// (payload length, payload CRC) of a frame header.
pub fn parse_frame_header(h: &[u8; FRAME_HEADER]) -> (u32, u32) {
    let len = u32::from_le_bytes(h[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(h[4..].try_into().expect("4 bytes"));
    (len, crc)
}

pub fn segment_header(start: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&start.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The start offset a segment header names, or what is wrong with it.
pub fn parse_segment_header(h: &[u8; SEGMENT_HEADER]) -> Result<u64, &'static str> {
    if &h[..8] != SEGMENT_MAGIC {
        return Err("not a write-ahead log segment (bad magic)");
    }
    if u32::from_le_bytes(h[20..].try_into().expect("4 bytes")) != crc32fast::hash(&h[..20]) {
        return Err("segment header checksum mismatch");
    }
    if u32::from_le_bytes(h[8..12].try_into().expect("4 bytes")) != VERSION {
        return Err("unsupported segment version");
    }
    Ok(u64::from_le_bytes(h[12..20].try_into().expect("8 bytes")))
}

/// Segments are named by the log offset of their first frame, zero-padded so names sort.
pub fn segment_name(start: u64) -> String {
    format!("{start:020}.wal")
}

pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// A base snapshot is named by the log offset it is the state at.
pub fn base_name(offset: u64) -> String {
    format!("base-{offset:020}.rdb")
}

pub fn parse_base_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("base-")?.strip_suffix(".rdb")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The manifest: which base snapshot the log starts from. Replaced atomically when a rewrite
/// finishes, so it always names a complete base.
pub fn manifest_text(base: u64) -> String {
    format!("shoal-wal {VERSION}\nbase {} {base}\n", base_name(base))
}

/// The base offset a manifest names.
pub fn parse_manifest(text: &str) -> Result<u64, String> {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(&format!("shoal-wal {VERSION}")) {
        return Err("unknown manifest version".into());
    }
    let base = lines.next().ok_or("no base line")?;
    let parts: Vec<&str> = base.split_whitespace().collect();
    match parts.as_slice() {
        ["base", name, offset] => {
            let offset: u64 = offset.parse().map_err(|_| format!("bad base offset '{offset}'"))?;
            if parse_base_name(name) != Some(offset) {
                return Err(format!("base file '{name}' does not match offset {offset}"));
            }
            Ok(offset)
        }
        _ => Err(format!("bad base line '{base}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_located() {
        let mut p = Vec::new();
        put_record(
            &mut p,
            KEYED,
            3,
            &[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from(vec![7u8; 300])],
        );
        put_record(&mut p, NODE_WIDE, 0, &[Bytes::from_static(b"FLUSHALL")]);
        let recs = records(&p).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].db, 3);
        assert_eq!(recs[0].argv[2].len(), 300);
        assert_eq!(recs[1], Record { kind: NODE_WIDE, db: 0, argv: vec![b"FLUSHALL"] });
        let second = p.len() - 12;
        p[second] = 9;
        assert_eq!(records(&p).unwrap_err(), second);
        assert!(records(&p[..p.len() - 3]).is_err());
    }

    #[test]
    fn headers_and_names_check_themselves() {
        let h = segment_header(12345);
        assert_eq!(parse_segment_header(&h), Ok(12345));
        let mut bad = h;
        bad[14] ^= 1;
        assert!(parse_segment_header(&bad).is_err());
        assert_eq!(parse_segment_name(&segment_name(77)), Some(77));
        assert_eq!(parse_base_name(&base_name(77)), Some(77));
        assert_eq!(parse_manifest(&manifest_text(42)), Ok(42));
        assert!(parse_manifest("shoal-wal 1\nbase base-x.rdb 4\n").is_err());
        let (len, crc) = parse_frame_header(&frame_header(b"abc"));
        assert_eq!((len, crc), (3, crc32fast::hash(b"abc")));
    }
}
