//! Reply encoding straight into a `BytesMut`, for RESP2 or RESP3 as the client chose with HELLO.
//!
//! Shards write replies with these functions into the buffer the connection will send, so a
//! value read from the keyspace is copied once, onto the wire.

use bytes::{BufMut, BytesMut};

/// The protocol a connection speaks (HELLO 2 / HELLO 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }

    pub fn is_resp3(self) -> bool {
        self == Protocol::Resp3
    }
}

#[inline]
fn put_len_line(buf: &mut BytesMut, prefix: u8, n: i64) {
    let mut b = itoa::Buffer::new();
    let s = b.format(n);
    buf.reserve(s.len() + 3);
    buf.put_u8(prefix);
    buf.put_slice(s.as_bytes());
    buf.put_slice(b"\r\n");
}

/// `+OK`-style status line. The text must not contain CR or LF.
#[inline]
pub fn simple(buf: &mut BytesMut, s: &[u8]) {
    buf.reserve(s.len() + 3);
    buf.put_u8(b'+');
    buf.put_slice(s);
    buf.put_slice(b"\r\n");
}

#[inline]
pub fn ok(buf: &mut BytesMut) {
    buf.put_slice(b"+OK\r\n");
}

/// An error line. `msg` carries its code (`ERR ...`, `WRONGTYPE ...`); a leading `-` is
/// accepted and CR/LF are replaced with spaces so a reply can never break the framing.
pub fn error(buf: &mut BytesMut, msg: &[u8]) {
    error_as_is(buf, msg.strip_prefix(b"-").unwrap_or(msg));
}

/// An error reply of `msg` whatever it starts with (a script's `{err="-X"}` replies `--X`, as
/// in Redis); line breaks become spaces.
pub fn error_as_is(buf: &mut BytesMut, msg: &[u8]) {
    buf.reserve(msg.len() + 3);
    buf.put_u8(b'-');
    for &c in msg {
        buf.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
    }
    buf.put_slice(b"\r\n");
}

#[inline]
pub fn integer(buf: &mut BytesMut, n: i64) {
    put_len_line(buf, b':', n);
}

#[inline]
pub fn bulk(buf: &mut BytesMut, data: &[u8]) {
    put_len_line(buf, b'$', data.len() as i64);
    buf.reserve(data.len() + 2);
    buf.put_slice(data);
    buf.put_slice(b"\r\n");
}

/// A bulk string holding the decimal form of `n` (what GET returns for an integer value).
#[inline]
pub fn bulk_integer(buf: &mut BytesMut, n: i64) {
    let mut b = itoa::Buffer::new();
    bulk(buf, b.format(n).as_bytes());
}

/// The null bulk string: `$-1` in RESP2, `_` in RESP3.
#[inline]
pub fn null(buf: &mut BytesMut, proto: Protocol) {
    buf.put_slice(match proto {
        Protocol::Resp2 => b"$-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}

/// The null array: `*-1` in RESP2, `_` in RESP3.
#[inline]
pub fn null_array(buf: &mut BytesMut, proto: Protocol) {
    buf.put_slice(match proto {
        Protocol::Resp2 => b"*-1\r\n",
        Protocol::Resp3 => b"_\r\n",
    });
}

#[inline]
pub fn array_len(buf: &mut BytesMut, n: usize) {
    put_len_line(buf, b'*', n as i64);
}

/// A map of `n` pairs: `%n` in RESP3, a flat array of `2n` items in RESP2.
pub fn map_len(buf: &mut BytesMut, proto: Protocol, n: usize) {
    match proto {
        Protocol::Resp2 => put_len_line(buf, b'*', 2 * n as i64),
        Protocol::Resp3 => put_len_line(buf, b'%', n as i64),
    }
}

/// A set of `n` items: `~n` in RESP3, an array in RESP2.
pub fn set_len(buf: &mut BytesMut, proto: Protocol, n: usize) {
    match proto {
        Protocol::Resp2 => put_len_line(buf, b'*', n as i64),
        Protocol::Resp3 => put_len_line(buf, b'~', n as i64),
    }
}

/// An out-of-band push of `n` items: `>n` in RESP3, an array in RESP2.
pub fn push_len(buf: &mut BytesMut, proto: Protocol, n: usize) {
    match proto {
        Protocol::Resp2 => put_len_line(buf, b'*', n as i64),
        Protocol::Resp3 => put_len_line(buf, b'>', n as i64),
    }
}

/// A double: `,<g17>` in RESP3, a bulk string in RESP2 (Redis 7.0's `%.17g`).
pub fn double(buf: &mut BytesMut, proto: Protocol, d: f64) {
    let s = format_double(d);
    match proto {
        Protocol::Resp2 => bulk(buf, s.as_bytes()),
        Protocol::Resp3 => {
            buf.put_u8(b',');
            buf.put_slice(s.as_bytes());
            buf.put_slice(b"\r\n");
        }
    }
}

/// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
pub fn boolean(buf: &mut BytesMut, proto: Protocol, b: bool) {
    match proto {
        Protocol::Resp2 => integer(buf, b as i64),
        Protocol::Resp3 => buf.put_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
    }
}

/// A verbatim string (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2.
pub fn verbatim(buf: &mut BytesMut, proto: Protocol, format: &[u8; 3], data: &[u8]) {
    match proto {
        Protocol::Resp2 => bulk(buf, data),
        Protocol::Resp3 => {
            put_len_line(buf, b'=', data.len() as i64 + 4);
            buf.put_slice(format);
            buf.put_u8(b':');
            buf.put_slice(data);
            buf.put_slice(b"\r\n");
        }
    }
}

/// A big number: `(digits` in RESP3, a bulk string in RESP2.
pub fn big_number(buf: &mut BytesMut, proto: Protocol, digits: &[u8]) {
    match proto {
        Protocol::Resp2 => bulk(buf, digits),
        Protocol::Resp3 => {
            buf.put_u8(b'(');
            buf.put_slice(digits);
            buf.put_slice(b"\r\n");
        }
    }
}

/// Formats a double like C's `printf("%.17g")`, which Redis 7.0 uses for double replies;
/// infinities are `inf`/`-inf` and NaN is `nan` (`-nan` with its sign bit, as 0/0 has it).
pub fn format_double(d: f64) -> String {
    format_g(d, 17)
}

/// C's `%.<precision>g`, as glibc writes it.
pub fn format_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = precision.max(1);
    // Scientific form with p significant digits gives the decimal exponent after rounding.
    let sci = format!("{:.*e}", p - 1, d);
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if exp < -4 || exp >= p as i32 {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.0e16), "10000000000000000");
        assert_eq!(format_double(1.0e17), "1e+17");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(f64::NAN), "nan");
        assert_eq!(format_double(-f64::NAN), "-nan");
        assert_eq!(format_g(123456.0, 5), "1.2346e+05");
    }

    #[test]
    fn null_and_maps_depend_on_the_protocol() {
        let mut b = BytesMut::new();
        null(&mut b, Protocol::Resp2);
        null(&mut b, Protocol::Resp3);
        map_len(&mut b, Protocol::Resp2, 2);
        map_len(&mut b, Protocol::Resp3, 2);
        boolean(&mut b, Protocol::Resp3, true);
        assert_eq!(&b[..], b"$-1\r\n_\r\n*4\r\n%2\r\n#t\r\n");
    }

    #[test]
    fn errors_cannot_break_framing() {
        let mut b = BytesMut::new();
        error(&mut b, b"-ERR bad\r\nthing");
        assert_eq!(&b[..], b"-ERR bad  thing\r\n");
    }
}
