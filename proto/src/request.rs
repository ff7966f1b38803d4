//! Incremental parser for client requests: RESP multibulk arrays and inline commands.
//!
//! Arguments are not copied: every request parsed from one read shares a single frozen
//! `Bytes` chunk and names its arguments by offset, so a pipeline of thousands of commands
//! costs one reference count per request. A request split across reads is resumed where the
//! previous call stopped, so a 512 MB argument arriving in small pieces is scanned once.

use bytes::{Bytes, BytesMut};
use std::fmt;

/// Size limits a client cannot exceed. Defaults are Redis's.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest bulk string (`proto-max-bulk-len`, 512 MB).
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk request.
    pub max_multibulk_len: usize,
    /// Longest inline command line, and longest `*`/`$` header line (64 KB).
    pub max_inline_len: usize,
    /// Most bytes one pending request may hold (`client-query-buffer-limit`, 1 GB).
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
            max_request_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// A malformed request. The connection answers `-ERR <Display>` and closes, as Redis does;
/// `QueryBufferLimit` closes without a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: expected '$', got '{}'", printable(*.0))]
    ExpectedDollar(u8),
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("query buffer limit reached")]
    QueryBufferLimit,
}

fn printable(b: u8) -> char {
    // Error lines must not break the protocol: Redis maps CR and LF to spaces.
    match b {
        b'\r' | b'\n' => ' ',
        _ => b as char,
    }
}

/// Argument spans (offset, length) within a request's buffer.
type Spans = smallvec::SmallVec<[(u32, u32); 6]>;

/// One parsed command: its arguments (the command name first) as spans of a shared buffer.
#[derive(Clone)]
pub struct Request {
    data: Bytes,
    spans: Spans,
    /// Bytes this request occupied on the wire, for network accounting.
    wire_len: usize,
}

impl Request {
    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i` as a slice.
    #[inline]
    pub fn arg(&self, i: usize) -> &[u8] {
        let (off, len) = self.spans[i];
        &self.data[off as usize..(off + len) as usize]
    }

    /// Argument `i` as a `Bytes` sharing the request's buffer.
    pub fn arg_bytes(&self, i: usize) -> Bytes {
        let (off, len) = self.spans[i];
        self.data.slice(off as usize..(off + len) as usize)
    }

    /// All arguments, in order.
    pub fn args(&self) -> impl ExactSizeIterator<Item = &[u8]> + Clone + '_ {
        self.spans.iter().map(|&(off, len)| &self.data[off as usize..(off + len) as usize])
    }

    pub fn wire_len(&self) -> usize {
        self.wire_len
    }

    /// Builds a request from owned arguments (used for replays, scripts and tests).
    pub fn from_args<I, A>(args: I) -> Request
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut b = RequestBuilder::default();
        for a in args {
            b.push(a.as_ref());
        }
        b.finish()
    }
}

/// Builds a request argument by argument, for commands that do not come off the wire (a
/// script's `redis.call`), with one buffer for all of them.
#[derive(Default)]
pub struct RequestBuilder {
    data: BytesMut,
    spans: Spans,
}

impl RequestBuilder {
    /// A builder with room for `bytes` bytes of arguments, so pushing them never reallocates.
    pub fn with_capacity(bytes: usize) -> RequestBuilder {
        RequestBuilder { data: BytesMut::with_capacity(bytes), spans: Spans::new() }
    }

    #[inline]
    pub fn push(&mut self, arg: &[u8]) {
        self.spans.push((self.data.len() as u32, arg.len() as u32));
        self.data.extend_from_slice(arg);
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn finish(self) -> Request {
        let wire_len = self.data.len();
        Request { data: self.data.freeze(), spans: self.spans, wire_len }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.args().map(|a| String::from_utf8_lossy(a).into_owned())).finish()
    }
}

/// Progress through a multibulk request that has not fully arrived.
#[derive(Default)]
struct Partial {
    /// Arguments still expected.
    remaining: usize,
    /// Where parsing resumes, relative to the start of the request.
    pos: usize,
    /// Buffer length needed before parsing can make progress, when a bulk is pending.
    need: usize,
    spans: Spans,
}

/// Parses requests out of a connection's read buffer. Keep one per connection.
pub struct RequestParser {
    limits: Limits,
    partial: Option<Partial>,
    /// For an inline line still missing its newline: how far it was already searched.
    inline_scanned: usize,
}

enum Step {
    Done { end: usize, spans: Spans },
    Inline { end: usize, args: Vec<Vec<u8>> },
    Empty { end: usize },
    Incomplete,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser { limits, partial: None, inline_scanned: 0 }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// How many bytes the buffer must hold before the pending request can complete, when that
    /// is known (a large bulk argument): lets the reader reserve it in one allocation.
    pub fn bytes_needed(&self) -> Option<usize> {
        self.partial.as_ref().map(|p| p.need).filter(|&n| n > 0)
    }

    /// Parses every complete request at the front of `buf` into `out`, removing their bytes.
    /// On a protocol error the requests before the bad one are still in `out` (Redis runs
    /// them before it replies with the error), and the error is returned.
    pub fn parse(&mut self, buf: &mut BytesMut, out: &mut Vec<Request>) -> Result<(), ProtocolError> {
        let start_len = out.len();
        let mut consumed = 0usize;
        // Spans are relative to the buffer start; rebased to the frozen chunk below.
        let mut pending: smallvec::SmallVec<[(usize, usize, Spans); 16]> = smallvec::SmallVec::new();
        let mut inline_reqs: Vec<(usize, Request)> = Vec::new();
        let mut result = Ok(());
        loop {
            if consumed == buf.len() {
                break;
            }
            match self.step(&buf[..], consumed) {
                Ok(Step::Done { end, spans }) => {
                    pending.push((consumed, end, spans));
                    consumed = end;
                }
                Ok(Step::Inline { end, args }) => {
                    let mut req = Request::from_args(args);
                    req.wire_len = end - consumed;
                    inline_reqs.push((pending.len(), req));
                    pending.push((consumed, end, smallvec::SmallVec::new()));
                    consumed = end;
                }
                Ok(Step::Empty { end }) => consumed = end,
                Ok(Step::Incomplete) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if consumed > 0 {
            let chunk = buf.split_to(consumed).freeze();
            let mut inline_iter = inline_reqs.into_iter().peekable();
            // Drained in place: moving the SmallVec into an iterator would copy all of it.
            for (i, (start, end, spans)) in pending.drain(..).enumerate() {
                if inline_iter.peek().is_some_and(|(idx, _)| *idx == i) {
                    out.push(inline_iter.next().expect("peeked").1);
                    continue;
                }
                out.push(Request { data: chunk.slice(start..end), spans, wire_len: end - start });
            }
            self.inline_scanned = self.inline_scanned.saturating_sub(consumed);
        }
        debug_assert!(out.len() >= start_len);
        result
    }

    /// Parses one request starting at `at`. Multibulk spans are made relative to `at`.
    fn step(&mut self, buf: &[u8], at: usize) -> Result<Step, ProtocolError> {
        if self.partial.is_none() && buf[at] != b'*' {
            return self.step_inline(buf, at);
        }
        let mut p = match self.partial.take() {
            Some(p) => p,
            None => {
                let Some(nl) = find_crlf(&buf[at..]) else {
                    if buf.len() - at > self.limits.max_inline_len {
                        return Err(ProtocolError::MultibulkCountTooBig);
                    }
                    return Ok(Step::Incomplete);
                };
                let count = parse_i64(&buf[at + 1..at + nl]);
                let count = match count {
                    Some(n) if n <= self.limits.max_multibulk_len as i64 && n <= i32::MAX as i64 => n,
                    _ => return Err(ProtocolError::InvalidMultibulkLength),
                };
                if count <= 0 {
                    return Ok(Step::Empty { end: at + nl + 2 });
                }
                let count = count as usize;
                let mut spans = smallvec::SmallVec::new();
                // Never trust a client's count for an allocation.
                spans.reserve(count.min(1024));
                Partial { remaining: count, pos: nl + 2, need: 0, spans }
            }
        };
        // A partial request always sits at the front of the buffer once the complete
        // requests before it are split off, so `at` is 0 whenever one is resumed.
        while p.remaining > 0 {
            let pos = at + p.pos;
            if pos >= buf.len() {
                return self.suspend(p, at, buf.len(), 0);
            }
            if buf[pos] != b'$' {
                return Err(ProtocolError::ExpectedDollar(buf[pos]));
            }
            let Some(nl) = find_crlf(&buf[pos..]) else {
                if buf.len() - pos > self.limits.max_inline_len {
                    return Err(ProtocolError::BulkCountTooBig);
                }
                return self.suspend(p, at, buf.len(), 0);
            };
            let len = match parse_i64(&buf[pos + 1..pos + nl]) {
                Some(n) if n >= 0 && n as u64 <= self.limits.max_bulk_len as u64 => n as usize,
                _ => return Err(ProtocolError::InvalidBulkLength),
            };
            let data_start = pos + nl + 2;
            // Like Redis, the two bytes after the payload are skipped, not checked.
            let end = data_start + len + 2;
            if buf.len() < end {
                return self.suspend(p, at, buf.len(), end - at);
            }
            p.spans.push(((data_start - at) as u32, len as u32));
            p.pos = end - at;
            p.remaining -= 1;
        }
        Ok(Step::Done { end: at + p.pos, spans: p.spans })
    }

    fn suspend(&mut self, mut p: Partial, at: usize, buffered: usize, need: usize) -> Result<Step, ProtocolError> {
        if (buffered - at).max(need) > self.limits.max_request_bytes {
            return Err(ProtocolError::QueryBufferLimit);
        }
        p.need = need;
        self.partial = Some(p);
        Ok(Step::Incomplete)
    }

    fn step_inline(&mut self, buf: &[u8], at: usize) -> Result<Step, ProtocolError> {
        let from = at.max(self.inline_scanned);
        let Some(off) = buf[from..].iter().position(|&b| b == b'\n') else {
            if buf.len() - at > self.limits.max_inline_len {
                return Err(ProtocolError::InlineTooBig);
            }
            self.inline_scanned = buf.len();
            return Ok(Step::Incomplete);
        };
        self.inline_scanned = 0;
        let nl = from + off;
        let mut line = &buf[at..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
        if args.is_empty() {
            return Ok(Step::Empty { end: nl + 1 });
        }
        Ok(Step::Inline { end: nl + 1, args })
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    // Redis looks for '\r' and then requires the '\n' to be present.
    let r = memchr_cr(buf)?;
    if r + 1 < buf.len() {
        Some(r)
    } else {
        None
    }
}

#[inline]
fn memchr_cr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\r')
}

/// Parses a signed 64-bit decimal with Redis's `string2ll` rules: no sign but `-`, no
/// leading zeros, no spaces, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Splits an inline command line like Redis's `sdssplitargs`: whitespace separates
/// arguments; double quotes take `\n \r \t \b \a \xHH` escapes; single quotes take `\'`.
/// Returns `None` on unbalanced quotes or a closing quote not followed by a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis splits a C string: a NUL byte ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<(), ProtocolError>, usize) {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        let r = p.parse(&mut buf, &mut out);
        (out.iter().map(|r| r.args().map(|a| a.to_vec()).collect()).collect(), r, buf.len())
    }

    fn args(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn parses_a_pipeline_of_multibulk_requests() {
        let (reqs, r, left) = parse_all(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n");
        assert_eq!(r, Ok(()));
        assert_eq!(left, 0);
        assert_eq!(reqs, vec![args(&["PING"]), args(&["SET", "a", "1"])]);
    }

    #[test]
    fn parses_inline_commands_with_quotes() {
        let (reqs, r, _) = parse_all(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\nPING\n\r\n");
        assert_eq!(r, Ok(()));
        assert_eq!(reqs, vec![args(&["set", "a b", "c'd", "A\n"]), args(&["PING"])]);
        let (reqs, _, _) = parse_all(b"ECHO a\0b c\r\n");
        assert_eq!(reqs, vec![args(&["ECHO", "a"])]);
    }

    #[test]
    fn resumes_a_request_split_at_every_byte() {
        let wire = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n*1\r\n$4\r\nPING\r\nECHO x\r\n";
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in wire.iter() {
            buf.extend_from_slice(&[b]);
            p.parse(&mut buf, &mut out).unwrap();
        }
        let got: Vec<Vec<Vec<u8>>> = out.iter().map(|r| r.args().map(|a| a.to_vec()).collect()).collect();
        assert_eq!(got, vec![args(&["SET", "hello", "world"]), args(&["PING"]), args(&["ECHO", "x"])]);
        assert!(buf.is_empty());
    }

    #[test]
    fn resumes_after_complete_requests_in_the_same_read() {
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nab"[..]);
        let mut out = Vec::new();
        p.parse(&mut buf, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        buf.extend_from_slice(b"c\r\n");
        p.parse(&mut buf, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].arg(1), b"abc");
    }

    #[test]
    fn reports_redis_protocol_errors() {
        assert_eq!(parse_all(b"*1\r\n+PING\r\n").1, Err(ProtocolError::ExpectedDollar(b'+')));
        assert_eq!(parse_all(b"*abc\r\n").1, Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse_all(b"*1\r\n$-1\r\n").1, Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse_all(b"*1\r\n$536870913\r\n").1, Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse_all(b"set \"a\r\n").1, Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(parse_all(b"set \"a\"b\r\n").1, Err(ProtocolError::UnbalancedQuotes));
        let long = vec![b'a'; 70 * 1024];
        assert_eq!(parse_all(&long).1, Err(ProtocolError::InlineTooBig));
        assert_eq!(ProtocolError::ExpectedDollar(b'x').to_string(), "Protocol error: expected '$', got 'x'");
    }

    #[test]
    fn keeps_requests_before_an_error() {
        let (reqs, r, _) = parse_all(b"*1\r\n$4\r\nPING\r\n*1\r\n!");
        assert_eq!(reqs, vec![args(&["PING"])]);
        assert_eq!(r, Err(ProtocolError::ExpectedDollar(b'!')));
    }

    #[test]
    fn skips_empty_requests() {
        let (reqs, r, left) = parse_all(b"*0\r\n*-1\r\n\r\n   \r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(r, Ok(()));
        assert_eq!(left, 0);
        assert_eq!(reqs, vec![args(&["PING"])]);
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"-"), None);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn encode(reqs: &[Vec<Vec<u8>>]) -> Vec<u8> {
            let mut w = Vec::new();
            for r in reqs {
                w.extend_from_slice(format!("*{}\r\n", r.len()).as_bytes());
                for a in r {
                    w.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                    w.extend_from_slice(a);
                    w.extend_from_slice(b"\r\n");
                }
            }
            w
        }

        proptest! {
            #[test]
            fn any_split_gives_the_same_requests(
                reqs in proptest::collection::vec(
                    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), 1..10),
                cuts in proptest::collection::vec(any::<usize>(), 0..8),
            ) {
                let wire = encode(&reqs);
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
                cuts.sort();
                cuts.push(wire.len());
                let mut p = RequestParser::new(Limits::default());
                let mut buf = BytesMut::new();
                let mut out = Vec::new();
                let mut prev = 0;
                for c in cuts {
                    buf.extend_from_slice(&wire[prev..c]);
                    prev = c;
                    p.parse(&mut buf, &mut out).unwrap();
                }
                let got: Vec<Vec<Vec<u8>>> = out.iter().map(|r| r.args().map(|a| a.to_vec()).collect()).collect();
                prop_assert_eq!(got, reqs);
                prop_assert!(buf.is_empty());
            }

            #[test]
            fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
                let mut p = RequestParser::new(Limits { max_inline_len: 64, ..Limits::default() });
                let mut buf = BytesMut::from(&data[..]);
                let mut out = Vec::new();
                let _ = p.parse(&mut buf, &mut out);
            }
        }
    }
}
