//! The Memcached wire formats: the text protocol, the meta commands and the binary protocol,
//! parsed into one request type (`McRequest`) so the node runs every protocol's commands
//! with the same code, and the reply encoders each protocol answers with.
//!
//! A connection may mix text and meta commands (memcached allows it); the binary protocol
//! is chosen per request by its magic byte, as memcached decides per connection on the first
//! byte (a text command never starts with 0x80).

pub mod binary;
pub mod meta;
pub mod reply;
pub mod text;

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

pub use meta::MetaFlags;

/// Longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;
/// Relative expiry times above this many seconds are absolute Unix times (memcached's rule).
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// Which protocol a request came in, and so how it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Wire {
    Text = 0,
    Meta = 1,
    Binary = 2,
}

/// What a request asks for, across the three protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Get = 0,
    Gets,
    Gat,
    Gats,
    Touch,
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
    Incr,
    Decr,
    Delete,
    FlushAll,
    Version,
    Verbosity,
    Stats,
    Quit,
    Noop,
    MetaGet,
    MetaSet,
    MetaDelete,
    MetaArith,
    MetaDebug,
    SaslList,
    SaslAuth,
    SaslStep,
}

impl Op {
    const ALL: [Op; 28] = [
        Op::Get,
        Op::Gets,
        Op::Gat,
        Op::Gats,
        Op::Touch,
        Op::Set,
        Op::Add,
        Op::Replace,
        Op::Append,
        Op::Prepend,
        Op::Cas,
        Op::Incr,
        Op::Decr,
        Op::Delete,
        Op::FlushAll,
        Op::Version,
        Op::Verbosity,
        Op::Stats,
        Op::Quit,
        Op::Noop,
        Op::MetaGet,
        Op::MetaSet,
        Op::MetaDelete,
        Op::MetaArith,
        Op::MetaDebug,
        Op::SaslList,
        Op::SaslAuth,
        Op::SaslStep,
    ];

    pub fn from_u8(b: u8) -> Option<Op> {
        Op::ALL.get(b as usize).copied()
    }

    /// The command's name, as memcached's text protocol spells it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Gets => "gets",
            Op::Gat => "gat",
            Op::Gats => "gats",
            Op::Touch => "touch",
            Op::Set => "set",
            Op::Add => "add",
            Op::Replace => "replace",
            Op::Append => "append",
            Op::Prepend => "prepend",
            Op::Cas => "cas",
            Op::Incr => "incr",
            Op::Decr => "decr",
            Op::Delete => "delete",
            Op::FlushAll => "flush_all",
            Op::Version => "version",
            Op::Verbosity => "verbosity",
            Op::Stats => "stats",
            Op::Quit => "quit",
            Op::Noop => "noop",
            Op::MetaGet => "mg",
            Op::MetaSet => "ms",
            Op::MetaDelete => "md",
            Op::MetaArith => "ma",
            Op::MetaDebug => "me",
            Op::SaslList => "sasl_list_mechs",
            Op::SaslAuth => "sasl_auth",
            Op::SaslStep => "sasl_step",
        }
    }

    /// Whether the request names keys and runs against the keyspace (rather than against the
    /// server or the connection).
    pub fn has_key(self) -> bool {
        !matches!(
            self,
            Op::FlushAll
                | Op::Version
                | Op::Verbosity
                | Op::Stats
                | Op::Quit
                | Op::Noop
                | Op::SaslList
                | Op::SaslAuth
                | Op::SaslStep
        )
    }
}

/// One parsed request of any of the three protocols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McRequest {
    pub op: Op,
    pub wire: Wire,
    /// The keys (several only for the text protocol's retrievals), already base64-decoded
    /// for meta commands with the `b` flag.
    pub keys: SmallVec<[Bytes; 1]>,
    /// The data block of a storage command; the argument of `stats` and of SASL steps.
    pub value: Bytes,
    /// Client flags stored with the item.
    pub flags: u32,
    /// Expiry as the client sent it (see [`expiry_ms`]); for `flush_all`, its delay.
    pub exptime: i64,
    /// The compare-and-swap value (`cas`, binary requests); 0 for none.
    pub cas: u64,
    /// incr/decr amount; for the binary protocol's counters also `initial`.
    pub delta: u64,
    pub initial: u64,
    /// No reply on success: text `noreply`, a binary quiet opcode.
    pub noreply: bool,
    /// Binary protocol: the opcode and opaque to echo.
    pub opcode: u8,
    pub opaque: u32,
    /// Meta commands' flags.
    pub meta: MetaFlags,
}

impl McRequest {
    pub fn new(op: Op, wire: Wire) -> McRequest {
        McRequest {
            op,
            wire,
            keys: SmallVec::new(),
            value: Bytes::new(),
            flags: 0,
            exptime: 0,
            cas: 0,
            delta: 0,
            initial: 0,
            noreply: false,
            opcode: 0,
            opaque: 0,
            meta: MetaFlags::default(),
        }
    }

    /// The first (for most commands, the only) key.
    pub fn key(&self) -> &[u8] {
        self.keys.first().map(|k| &k[..]).unwrap_or(&[])
    }

    /// Encodes the request's fields other than keys and value into a compact header, so it
    /// can travel to a shard as one argument and be decoded there (`decode_header`).
    pub fn encode_header(&self, out: &mut Header) {
        out.push(self.op as u8);
        out.push(self.wire as u8);
        out.push(self.opcode);
        out.push(self.noreply as u8);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.exptime.to_le_bytes());
        out.extend_from_slice(&self.cas.to_le_bytes());
        out.extend_from_slice(&self.delta.to_le_bytes());
        out.extend_from_slice(&self.initial.to_le_bytes());
        out.extend_from_slice(&self.opaque.to_le_bytes());
        self.meta.encode(out);
    }

    /// The inverse of `encode_header`, with the keys and value given back; `None` if `h` was
    /// not made by `encode_header`.
    pub fn decode_header(mut h: &[u8], key: Bytes, value: Bytes) -> Option<McRequest> {
        if h.len() < 46 {
            return None;
        }
        let op = Op::from_u8(h.get_u8())?;
        let wire = match h.get_u8() {
            0 => Wire::Text,
            1 => Wire::Meta,
            2 => Wire::Binary,
            _ => return None,
        };
        let opcode = h.get_u8();
        let noreply = h.get_u8() != 0;
        let flags = h.get_u32_le();
        let exptime = h.get_i64_le();
        let cas = h.get_u64_le();
        let delta = h.get_u64_le();
        let initial = h.get_u64_le();
        let opaque = h.get_u32_le();
        let meta = MetaFlags::decode(h)?;
        let mut keys = SmallVec::new();
        keys.push(key);
        Some(McRequest { op, wire, keys, value, flags, exptime, cas, delta, initial, noreply, opcode, opaque, meta })
    }
}

/// An encoded request header (`encode_header`): on the stack unless meta flags run long.
pub type Header = SmallVec<[u8; 96]>;

/// When an item with expiry `exptime` (as a client sends it) expires: `None` for never,
/// `Some(0)` for already, else Unix milliseconds. `now_ms` is the server's clock.
pub fn expiry_ms(exptime: i64, now_ms: u64) -> Option<u64> {
    if exptime == 0 {
        return None;
    }
    if exptime < 0 {
        return Some(0);
    }
    let at = if exptime > REALTIME_MAXDELTA {
        (exptime as u64).saturating_mul(1000)
    } else {
        now_ms.saturating_add(exptime as u64 * 1000)
    };
    Some(if at <= now_ms { 0 } else { at })
}

/// What a parser found that is not a request: an error to answer in the request's place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McError {
    pub wire: Wire,
    pub kind: ErrorKind,
    /// Binary protocol: the opcode and opaque of the failed request.
    pub opcode: u8,
    pub opaque: u32,
    /// Whether the connection must close after the reply (the stream cannot be resynced).
    pub close: bool,
    /// The key of a `set` refused as too large: memcached drops the item it would have
    /// replaced, so a reader does not go on seeing a value its writer meant to replace.
    pub drop_key: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Text: `ERROR` (a command memcached does not know); binary: unknown command.
    UnknownCommand,
    /// `CLIENT_ERROR <msg>`; binary: invalid arguments.
    Client(&'static str),
    /// `SERVER_ERROR object too large for cache`; binary: value too large.
    TooLarge,
}

impl McError {
    fn text(kind: ErrorKind) -> McError {
        McError { wire: Wire::Text, kind, opcode: 0, opaque: 0, close: false, drop_key: None }
    }
}

/// One thing the parser found: a request or the error that takes its place.
pub type Parsed = Result<McRequest, McError>;

/// Limits on what a client may send.
#[derive(Clone, Debug)]
pub struct McLimits {
    /// Largest value (memcached's `-I`, 1 MiB by default).
    pub max_item_size: usize,
    /// Longest command line; a longer one closes the connection, as in memcached.
    pub max_line: usize,
}

impl Default for McLimits {
    fn default() -> McLimits {
        McLimits { max_item_size: 1 << 20, max_line: 64 << 10 }
    }
}

/// An incremental parser over a connection's input: call `parse` whenever bytes arrive.
pub struct McParser {
    limits: McLimits,
    /// Bytes of a too-large data block still to throw away.
    swallow: usize,
    /// Bytes the request at the front of the buffer needs in all, when known.
    needed: Option<usize>,
}

impl McParser {
    pub fn new(limits: McLimits) -> McParser {
        McParser { limits, swallow: 0, needed: None }
    }

    pub fn limits(&self) -> &McLimits {
        &self.limits
    }

    pub fn set_limits(&mut self, limits: McLimits) {
        self.limits = limits;
    }

    /// How many bytes the buffer must hold for the next request to complete, when known (so
    /// the connection can reserve room for a large value at once).
    pub fn bytes_needed(&self) -> Option<usize> {
        self.needed
    }

    /// Parses every complete request at the front of `buf`, consuming them. Stops after an
    /// error that closes the connection.
    pub fn parse(&mut self, buf: &mut BytesMut, out: &mut Vec<Parsed>) {
        self.needed = None;
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(buf.len());
                buf.advance(n);
                self.swallow -= n;
                if self.swallow > 0 {
                    return;
                }
            }
            if buf.is_empty() {
                return;
            }
            let step = if buf[0] == binary::REQ_MAGIC {
                binary::parse(buf, &self.limits)
            } else {
                text::parse(buf, &self.limits)
            };
            match step {
                Step::Incomplete(need) => {
                    self.needed = need;
                    return;
                }
                Step::Done(p) => {
                    let close = matches!(&p, Err(e) if e.close);
                    out.push(p);
                    if close {
                        return;
                    }
                }
                Step::Swallow(p, n) => {
                    out.push(p);
                    self.swallow = n;
                }
            }
        }
    }
}

/// What one parse step at the front of the buffer came to.
enum Step {
    /// More bytes are needed (how many in all, when known).
    Incomplete(Option<usize>),
    /// A request or an error, consumed from the buffer.
    Done(Parsed),
    /// An error for a request whose data block (`n` more bytes) must be skipped.
    Swallow(Parsed, usize),
}

/// Whether `key` is one memcached's text protocol accepts: 1..=250 bytes with no space.
/// protocol.txt asks clients for no control characters either, but memcached takes any
/// byte its tokenizer does not split on, and load generators (memaslap) rely on that.
pub fn key_ok(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && !key.contains(&b' ')
}

/// A decimal number with no sign, no spaces and nothing after it.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(n)
}

pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

/// A decimal number that may be negative (expiry times).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        Some((b'-', rest)) => {
            parse_u64(rest).and_then(|n| if n <= i64::MAX as u64 + 1 { Some((n as i64).wrapping_neg()) } else { None })
        }
        _ => parse_u64(s).and_then(|n| i64::try_from(n).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_memcached_rules() {
        let now = 1_700_000_000_000;
        assert_eq!(expiry_ms(0, now), None);
        assert_eq!(expiry_ms(-1, now), Some(0));
        assert_eq!(expiry_ms(10, now), Some(now + 10_000));
        assert_eq!(expiry_ms(REALTIME_MAXDELTA, now), Some(now + REALTIME_MAXDELTA as u64 * 1000));
        // Beyond 30 days it is a Unix time: in the past means expired.
        assert_eq!(expiry_ms(REALTIME_MAXDELTA + 1, now), Some(0));
        assert_eq!(expiry_ms(1_800_000_000, now), Some(1_800_000_000_000));
    }

    #[test]
    fn header_round_trips() {
        let mut r = McRequest::new(Op::MetaSet, Wire::Meta);
        r.keys.push(Bytes::from_static(b"k"));
        r.flags = 7;
        r.exptime = -3;
        r.cas = u64::MAX;
        r.delta = 5;
        r.opaque = 9;
        r.meta = MetaFlags::parse(&[b"c".as_slice(), b"Oabc", b"T10", b"MA", b"F3"]).unwrap();
        let mut h = Header::new();
        r.encode_header(&mut h);
        let back = McRequest::decode_header(&h, Bytes::from_static(b"k"), Bytes::new()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert!(key_ok(b"a"));
        assert!(!key_ok(&[b'a'; 251]));
        assert!(!key_ok(b"a b"));
        assert!(key_ok(b"\x10\x10k"), "control characters pass, as in memcached");
    }
}
