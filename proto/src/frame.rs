//! A complete RESP2/RESP3 value: every type, parsed incrementally and encoded back.
//!
//! Requests take the faster path in [`crate::request`]; frames are for replies a client
//! reads, node-to-node messages and tests.

use bytes::{BufMut, Bytes, BytesMut};

/// Deepest nesting a parsed frame may have; deeper input is rejected rather than recursed.
pub const MAX_DEPTH: usize = 128;
/// Largest element count parsed; a larger header is rejected before allocating anything.
pub const MAX_ELEMENTS: i64 = i32::MAX as i64;
/// Largest blob parsed.
pub const MAX_BLOB: i64 = 512 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// `_` in RESP3; RESP2's `$-1` and `*-1` parse to this too.
    Null,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Double(f64),
    Boolean(bool),
    BigNumber(Bytes),
    Verbatim {
        format: [u8; 3],
        data: Bytes,
    },
    BlobError(Bytes),
    Push(Vec<Frame>),
    Attribute {
        attrs: Vec<(Frame, Frame)>,
        frame: Box<Frame>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type byte {0:#04x}")]
    UnknownType(u8),
    #[error("invalid length or number")]
    InvalidNumber,
    #[error("missing CRLF after a blob")]
    MissingCrlf,
    #[error("frame nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("invalid boolean")]
    InvalidBoolean,
    #[error("invalid verbatim string")]
    InvalidVerbatim,
}

impl Frame {
    /// Parses one frame from the front of `buf`: `Ok(None)` when more bytes are needed,
    /// otherwise the frame and how many bytes it took.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let mut pos = 0;
        match parse_at(buf, &mut pos, 0)? {
            Some(f) => Ok(Some((f, pos))),
            None => Ok(None),
        }
    }

    /// Appends the RESP encoding of this frame.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            Frame::Error(s) => line(out, b'-', s),
            Frame::Integer(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
            Frame::Bulk(b) => blob(out, b'$', b),
            Frame::Null => out.put_slice(b"_\r\n"),
            Frame::Array(items) => seq(out, b'*', items),
            Frame::Set(items) => seq(out, b'~', items),
            Frame::Push(items) => seq(out, b'>', items),
            Frame::Map(pairs) => pairs_out(out, b'%', pairs),
            Frame::Double(d) => line(out, b',', crate::reply::format_double(*d).as_bytes()),
            Frame::Boolean(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::BigNumber(n) => line(out, b'(', n),
            Frame::Verbatim { format, data } => {
                let mut v = Vec::with_capacity(data.len() + 4);
                v.extend_from_slice(format);
                v.push(b':');
                v.extend_from_slice(data);
                blob(out, b'=', &v);
            }
            Frame::BlobError(b) => blob(out, b'!', b),
            Frame::Attribute { attrs, frame } => {
                pairs_out(out, b'|', attrs);
                frame.encode(out);
            }
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }
}

fn line(out: &mut BytesMut, prefix: u8, s: &[u8]) {
    out.put_u8(prefix);
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

fn blob(out: &mut BytesMut, prefix: u8, b: &[u8]) {
    line(out, prefix, itoa::Buffer::new().format(b.len()).as_bytes());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

fn seq(out: &mut BytesMut, prefix: u8, items: &[Frame]) {
    line(out, prefix, itoa::Buffer::new().format(items.len()).as_bytes());
    for i in items {
        i.encode(out);
    }
}

fn pairs_out(out: &mut BytesMut, prefix: u8, pairs: &[(Frame, Frame)]) {
    line(out, prefix, itoa::Buffer::new().format(pairs.len()).as_bytes());
    for (k, v) in pairs {
        k.encode(out);
        v.encode(out);
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn number(s: &[u8]) -> Result<i64, FrameError> {
    std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()).ok_or(FrameError::InvalidNumber)
}

fn read_blob<'a>(buf: &'a [u8], pos: &mut usize, len: i64) -> Result<Option<&'a [u8]>, FrameError> {
    if !(0..=MAX_BLOB).contains(&len) {
        return Err(FrameError::InvalidNumber);
    }
    let len = len as usize;
    if buf.len() < *pos + len + 2 {
        return Ok(None);
    }
    if &buf[*pos + len..*pos + len + 2] != b"\r\n" {
        return Err(FrameError::MissingCrlf);
    }
    let b = &buf[*pos..*pos + len];
    *pos += len + 2;
    Ok(Some(b))
}

/// One RESP item as it starts in a buffer, borrowed from it: a whole scalar, or an
/// aggregate's header, whose items (pairs of items for maps and attributes) are the tokens
/// that follow. For readers that turn a reply into something else as they go, with no
/// `Frame` in between (a script's `redis.call` reply becoming Lua values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Integer(i64),
    Bulk(&'a [u8]),
    /// `_`, `$-1` or `*-1`.
    Null,
    Array(usize),
    Map(usize),
    Set(usize),
    Double(f64),
    Boolean(bool),
    BigNumber(&'a [u8]),
    Verbatim {
        format: [u8; 3],
        data: &'a [u8],
    },
    BlobError(&'a [u8]),
    Push(usize),
    Attribute(usize),
}

impl<'a> Token<'a> {
    /// Reads the token at `*pos` and moves past it: `Ok(None)` when `buf` ends first (and
    /// `*pos` stays).
    pub fn read(buf: &'a [u8], pos: &mut usize) -> Result<Option<Token<'a>>, FrameError> {
        let Some(&kind) = buf.get(*pos) else { return Ok(None) };
        let mut p = *pos + 1;
        let Some(text) = read_line(buf, &mut p) else { return Ok(None) };
        let count = |text: &[u8]| match number(text)? {
            n if (0..=MAX_ELEMENTS).contains(&n) => Ok(n as usize),
            _ => Err(FrameError::InvalidNumber),
        };
        let token = match kind {
            b'+' => Token::Simple(text),
            b'-' => Token::Error(text),
            b':' => Token::Integer(number(text)?),
            b'_' if text.is_empty() => Token::Null,
            b'#' => match text {
                b"t" => Token::Boolean(true),
                b"f" => Token::Boolean(false),
                _ => return Err(FrameError::InvalidBoolean),
            },
            b',' => Token::Double(
                std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()).ok_or(FrameError::InvalidNumber)?,
            ),
            b'(' => {
                let digits = text.strip_prefix(b"-").unwrap_or(text);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(FrameError::InvalidNumber);
                }
                Token::BigNumber(text)
            }
            b'$' | b'*' if text == b"-1" => Token::Null,
            b'$' | b'!' | b'=' => {
                let Some(data) = read_blob(buf, &mut p, number(text)?)? else { return Ok(None) };
                match kind {
                    b'$' => Token::Bulk(data),
                    b'!' => Token::BlobError(data),
                    _ => {
                        if data.len() < 4 || data[3] != b':' {
                            return Err(FrameError::InvalidVerbatim);
                        }
                        Token::Verbatim { format: [data[0], data[1], data[2]], data: &data[4..] }
                    }
                }
            }
            b'*' => Token::Array(count(text)?),
            b'~' => Token::Set(count(text)?),
            b'>' => Token::Push(count(text)?),
            b'%' => Token::Map(count(text)?),
            b'|' => Token::Attribute(count(text)?),
            other => return Err(FrameError::UnknownType(other)),
        };
        *pos = p;
        Ok(Some(token))
    }
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Frame>, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError::TooDeep);
    }
    let mut p = *pos;
    let Some(token) = Token::read(buf, &mut p)? else { return Ok(None) };
    let bytes = Bytes::copy_from_slice;
    let frame = match token {
        Token::Simple(s) => Frame::Simple(bytes(s)),
        Token::Error(s) => Frame::Error(bytes(s)),
        Token::Integer(n) => Frame::Integer(n),
        Token::Bulk(b) => Frame::Bulk(bytes(b)),
        Token::Null => Frame::Null,
        Token::Double(d) => Frame::Double(d),
        Token::Boolean(b) => Frame::Boolean(b),
        Token::BigNumber(n) => Frame::BigNumber(bytes(n)),
        Token::Verbatim { format, data } => Frame::Verbatim { format, data: bytes(data) },
        Token::BlobError(e) => Frame::BlobError(bytes(e)),
        Token::Array(n) | Token::Set(n) | Token::Push(n) => {
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let Some(f) = parse_at(buf, &mut p, depth + 1)? else { return Ok(None) };
                items.push(f);
            }
            match token {
                Token::Array(_) => Frame::Array(items),
                Token::Set(_) => Frame::Set(items),
                _ => Frame::Push(items),
            }
        }
        Token::Map(n) | Token::Attribute(n) => {
            let mut pairs = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let Some(k) = parse_at(buf, &mut p, depth + 1)? else { return Ok(None) };
                let Some(v) = parse_at(buf, &mut p, depth + 1)? else { return Ok(None) };
                pairs.push((k, v));
            }
            if let Token::Map(_) = token {
                Frame::Map(pairs)
            } else {
                let Some(inner) = parse_at(buf, &mut p, depth + 1)? else { return Ok(None) };
                Frame::Attribute { attrs: pairs, frame: Box::new(inner) }
            }
        }
    };
    *pos = p;
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let text =
            proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..16)
                .prop_map(Bytes::from);
        let blob = proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from);
        let leaf = prop_oneof![
            text.clone().prop_map(Frame::Simple),
            text.prop_map(Frame::Error),
            any::<i64>().prop_map(Frame::Integer),
            blob.clone().prop_map(Frame::Bulk),
            Just(Frame::Null),
            any::<bool>().prop_map(Frame::Boolean),
            (-1e300f64..1e300).prop_map(Frame::Double),
            any::<i128>().prop_map(|n| Frame::BigNumber(Bytes::from(n.to_string()))),
            blob.clone().prop_map(|data| Frame::Verbatim { format: *b"txt", data }),
            blob.prop_map(Frame::BlobError),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Frame::Array),
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Frame::Set),
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Frame::Push),
                proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Frame::Map),
                (proptest::collection::vec((inner.clone(), inner.clone()), 0..3), inner)
                    .prop_map(|(attrs, f)| Frame::Attribute { attrs, frame: Box::new(f) }),
            ]
        })
    }

    proptest! {
        #[test]
        fn every_frame_round_trips(f in arb_frame()) {
            let bytes = f.to_bytes();
            let (back, used) = Frame::parse(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(back, f);
        }

        #[test]
        fn every_prefix_is_incomplete_not_an_error(f in arb_frame()) {
            let bytes = f.to_bytes();
            for cut in 0..bytes.len() {
                prop_assert_eq!(Frame::parse(&bytes[..cut]), Ok(None));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Frame::parse(&data);
        }
    }

    #[test]
    fn parses_resp2_nulls_and_rejects_deep_nesting() {
        assert_eq!(Frame::parse(b"$-1\r\n").unwrap().unwrap().0, Frame::Null);
        assert_eq!(Frame::parse(b"*-1\r\n").unwrap().unwrap().0, Frame::Null);
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(Frame::parse(deep.as_bytes()), Err(FrameError::TooDeep));
    }
}
