//! Memcached's binary protocol: a 24-byte header (magic, opcode, key and extras lengths, body
//! length, opaque, CAS), then extras, key and value. Quiet opcodes answer only failures
//! (GetQ: only hits).

use super::{ErrorKind, McError, McLimits, McRequest, Op, Step, Wire, MAX_KEY_LEN};
use bytes::{Buf, BytesMut};

pub const REQ_MAGIC: u8 = 0x80;
pub const RES_MAGIC: u8 = 0x81;
pub const HEADER_LEN: usize = 24;

pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

pub mod status {
    pub const OK: u16 = 0x0000;
    pub const KEY_NOT_FOUND: u16 = 0x0001;
    pub const KEY_EXISTS: u16 = 0x0002;
    pub const TOO_LARGE: u16 = 0x0003;
    pub const INVALID_ARGUMENTS: u16 = 0x0004;
    pub const NOT_STORED: u16 = 0x0005;
    pub const NON_NUMERIC: u16 = 0x0006;
    pub const AUTH_ERROR: u16 = 0x0020;
    pub const AUTH_CONTINUE: u16 = 0x0021;
    pub const UNKNOWN_COMMAND: u16 = 0x0081;
    pub const OUT_OF_MEMORY: u16 = 0x0082;
}

/// Whether a get-family opcode returns the key with the value.
pub fn returns_key(op: u8) -> bool {
    matches!(op, opcode::GETK | opcode::GETKQ | opcode::GATK | opcode::GATKQ)
}

/// The shape of an opcode's request: what it is, whether it is quiet, and the extras length
/// it must carry (`None`: 0 or 4, for flush).
fn shape(op: u8) -> Option<(Op, bool, Option<usize>, Key)> {
    use opcode::*;
    use Key::*;
    Some(match op {
        GET | GETK => (Op::Get, false, Some(0), Required),
        GETQ | GETKQ => (Op::Get, true, Some(0), Required),
        SET => (Op::Set, false, Some(8), Required),
        SETQ => (Op::Set, true, Some(8), Required),
        ADD => (Op::Add, false, Some(8), Required),
        ADDQ => (Op::Add, true, Some(8), Required),
        REPLACE => (Op::Replace, false, Some(8), Required),
        REPLACEQ => (Op::Replace, true, Some(8), Required),
        DELETE => (Op::Delete, false, Some(0), Required),
        DELETEQ => (Op::Delete, true, Some(0), Required),
        INCREMENT => (Op::Incr, false, Some(20), Required),
        INCREMENTQ => (Op::Incr, true, Some(20), Required),
        DECREMENT => (Op::Decr, false, Some(20), Required),
        DECREMENTQ => (Op::Decr, true, Some(20), Required),
        QUIT => (Op::Quit, false, Some(0), Absent),
        QUITQ => (Op::Quit, true, Some(0), Absent),
        FLUSH => (Op::FlushAll, false, None, Absent),
        FLUSHQ => (Op::FlushAll, true, None, Absent),
        NOOP => (Op::Noop, false, Some(0), Absent),
        VERSION => (Op::Version, false, Some(0), Absent),
        APPEND => (Op::Append, false, Some(0), Required),
        APPENDQ => (Op::Append, true, Some(0), Required),
        PREPEND => (Op::Prepend, false, Some(0), Required),
        PREPENDQ => (Op::Prepend, true, Some(0), Required),
        STAT => (Op::Stats, false, Some(0), Optional),
        VERBOSITY => (Op::Verbosity, false, Some(4), Absent),
        TOUCH => (Op::Touch, false, Some(4), Required),
        GAT | GATK => (Op::Gat, false, Some(4), Required),
        GATQ | GATKQ => (Op::Gat, true, Some(4), Required),
        SASL_LIST_MECHS => (Op::SaslList, false, Some(0), Absent),
        SASL_AUTH => (Op::SaslAuth, false, Some(0), Required),
        SASL_STEP => (Op::SaslStep, false, Some(0), Required),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Required,
    Optional,
    Absent,
}

/// Parses the binary request at the front of `buf` (which starts with the request magic).
pub(super) fn parse(buf: &mut BytesMut, limits: &McLimits) -> Step {
    if buf.len() < HEADER_LEN {
        return Step::Incomplete(Some(HEADER_LEN));
    }
    let h = &buf[..HEADER_LEN];
    let op = h[1];
    let keylen = u16::from_be_bytes([h[2], h[3]]) as usize;
    let extlen = h[4] as usize;
    let bodylen = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    let opaque = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let cas = u64::from_be_bytes(h[16..24].try_into().expect("8 bytes"));
    let error = |kind, close| McError { wire: Wire::Binary, kind, opcode: op, opaque, close, drop_key: None };
    if keylen + extlen > bodylen {
        // The lengths contradict each other: nothing after this can be framed.
        buf.clear();
        return Step::Done(Err(error(ErrorKind::Client("invalid arguments"), true)));
    }
    // A body beyond any item plus its key and extras is refused unread.
    if bodylen > limits.max_item_size + MAX_KEY_LEN + 32 {
        buf.advance(HEADER_LEN);
        return Step::Swallow(Err(error(ErrorKind::TooLarge, false)), bodylen);
    }
    let total = HEADER_LEN + bodylen;
    if buf.len() < total {
        return Step::Incomplete(Some(total));
    }
    let frame = buf.split_to(total).freeze();
    let Some((kind, quiet, extras_len, key_rule)) = shape(op) else {
        return Step::Done(Err(error(ErrorKind::UnknownCommand, false)));
    };
    let extras = &frame[HEADER_LEN..HEADER_LEN + extlen];
    let key = frame.slice(HEADER_LEN + extlen..HEADER_LEN + extlen + keylen);
    let value = frame.slice(HEADER_LEN + extlen + keylen..);
    let takes_value =
        matches!(kind, Op::Set | Op::Add | Op::Replace | Op::Append | Op::Prepend | Op::SaslAuth | Op::SaslStep);
    let extras_ok = match extras_len {
        Some(n) => extlen == n,
        None => extlen == 0 || extlen == 4,
    };
    let key_ok = match key_rule {
        Key::Required => keylen > 0 && keylen <= MAX_KEY_LEN,
        Key::Optional => keylen <= MAX_KEY_LEN,
        Key::Absent => keylen == 0,
    };
    if !extras_ok || !key_ok || (!takes_value && !value.is_empty()) {
        return Step::Done(Err(error(ErrorKind::Client("invalid arguments"), false)));
    }
    if takes_value && value.len() > limits.max_item_size {
        let drop_key = (kind == Op::Set).then_some(key);
        return Step::Done(Err(McError { drop_key, ..error(ErrorKind::TooLarge, false) }));
    }
    let mut r = McRequest::new(kind, Wire::Binary);
    r.opcode = op;
    r.opaque = opaque;
    r.cas = cas;
    r.noreply = quiet;
    let be32 = |b: &[u8]| u32::from_be_bytes(b[..4].try_into().expect("4 bytes"));
    let be64 = |b: &[u8]| u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
    match kind {
        Op::Set | Op::Add | Op::Replace => {
            r.flags = be32(extras);
            r.exptime = be32(&extras[4..]) as i64;
        }
        Op::Incr | Op::Decr => {
            r.delta = be64(extras);
            r.initial = be64(&extras[8..]);
            r.exptime = be32(&extras[16..]) as i64;
        }
        Op::FlushAll if extlen == 4 => r.exptime = be32(extras) as i64,
        Op::Touch | Op::Gat => r.exptime = be32(extras) as i64,
        Op::Verbosity => r.flags = be32(extras),
        _ => {}
    }
    if !key.is_empty() {
        r.keys.push(key);
    }
    r.value = value;
    Step::Done(Ok(r))
}

/// Writes a response header for a body of `extras`, `key` and `value_len` bytes of value (the
/// caller appends extras, key and value after it).
#[allow(clippy::too_many_arguments)]
pub fn header(
    out: &mut BytesMut,
    op: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extlen: usize,
    keylen: usize,
    value_len: usize,
) {
    out.reserve(HEADER_LEN + extlen + keylen + value_len);
    out.extend_from_slice(&[RES_MAGIC, op]);
    out.extend_from_slice(&(keylen as u16).to_be_bytes());
    out.extend_from_slice(&[extlen as u8, 0]);
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&((extlen + keylen + value_len) as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// A whole response with no extras.
pub fn response(out: &mut BytesMut, op: u8, status: u16, opaque: u32, cas: u64, key: &[u8], value: &[u8]) {
    header(out, op, status, opaque, cas, 0, key.len(), value.len());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// The text memcached sends with an error status.
pub fn status_message(status: u16) -> &'static [u8] {
    match status {
        status::KEY_NOT_FOUND => b"Not found",
        status::KEY_EXISTS => b"Data exists for key.",
        status::TOO_LARGE => b"Too large.",
        status::INVALID_ARGUMENTS => b"Invalid arguments",
        status::NOT_STORED => b"Not stored.",
        status::NON_NUMERIC => b"Non-numeric server-side value for incr or decr",
        status::AUTH_ERROR => b"Auth failure.",
        status::UNKNOWN_COMMAND => b"Unknown command",
        status::OUT_OF_MEMORY => b"Out of memory",
        _ => b"",
    }
}

/// An error response: the status and its message as the value.
pub fn error(out: &mut BytesMut, op: u8, status: u16, opaque: u32) {
    response(out, op, status, opaque, 0, &[], status_message(status));
}

#[cfg(test)]
mod tests {
    use super::super::{McParser, Parsed};
    use super::*;

    fn request(op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
        let mut v = vec![REQ_MAGIC, op];
        v.extend_from_slice(&(key.len() as u16).to_be_bytes());
        v.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
        v.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
        v.extend_from_slice(&0xdeadbeefu32.to_be_bytes());
        v.extend_from_slice(&cas.to_be_bytes());
        v.extend_from_slice(extras);
        v.extend_from_slice(key);
        v.extend_from_slice(value);
        v
    }

    fn parse_all(input: &[u8]) -> Vec<Parsed> {
        let mut p = McParser::new(McLimits { max_item_size: 64, max_line: 128 });
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        p.parse(&mut buf, &mut out);
        out
    }

    #[test]
    fn set_and_get() {
        let mut extras = 7u32.to_be_bytes().to_vec();
        extras.extend_from_slice(&100u32.to_be_bytes());
        let mut input = request(opcode::SETQ, &extras, b"k", b"v", 5);
        input.extend(request(opcode::GETK, &[], b"k", &[], 0));
        let out = parse_all(&input);
        let set = out[0].as_ref().unwrap();
        assert_eq!(
            (set.op, set.flags, set.exptime, set.cas, set.noreply, set.opaque),
            (Op::Set, 7, 100, 5, true, 0xdeadbeef)
        );
        assert_eq!(&set.value[..], b"v");
        let get = out[1].as_ref().unwrap();
        assert_eq!((get.op, get.opcode, get.key()), (Op::Get, opcode::GETK, &b"k"[..]));
    }

    #[test]
    fn malformed_requests_get_invalid_arguments() {
        let out = parse_all(&request(opcode::GET, &[1, 2, 3, 4], b"k", &[], 0));
        assert_eq!(out[0].as_ref().unwrap_err().kind, ErrorKind::Client("invalid arguments"));
        let out = parse_all(&request(0x7f, &[], b"", &[], 0));
        assert_eq!(out[0].as_ref().unwrap_err().kind, ErrorKind::UnknownCommand);
        let mut big = request(opcode::SET, &[0; 8], b"k", &[b'x'; 500], 0);
        big.extend(request(opcode::NOOP, &[], b"", &[], 0));
        let out = parse_all(&big);
        assert_eq!(out[0].as_ref().unwrap_err().kind, ErrorKind::TooLarge);
        assert_eq!(out[1].as_ref().unwrap().op, Op::Noop);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(op in 0u8..0x30, extras in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
                        key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
                        tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let mut input = request(op, &extras, &key, &[], 0);
            input.extend(tail);
            let _ = parse_all(&input);
        }
    }
}
