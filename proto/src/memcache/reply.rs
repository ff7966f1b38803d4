//! Text and meta reply lines (binary responses are in `binary`).

use base64::Engine;
use bytes::BytesMut;

pub const STORED: &[u8] = b"STORED\r\n";
pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
pub const EXISTS: &[u8] = b"EXISTS\r\n";
pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
pub const DELETED: &[u8] = b"DELETED\r\n";
pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
pub const END: &[u8] = b"END\r\n";
pub const OK: &[u8] = b"OK\r\n";
pub const ERROR: &[u8] = b"ERROR\r\n";
pub const CRLF: &[u8] = b"\r\n";

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n` (the caller adds the data and `\r\n`).
pub fn value_line(out: &mut BytesMut, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    let mut b = itoa::Buffer::new();
    out.reserve(key.len() + 40 + len);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.extend_from_slice(b" ");
    out.extend_from_slice(b.format(flags).as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(b.format(len).as_bytes());
    if let Some(c) = cas {
        out.extend_from_slice(b" ");
        out.extend_from_slice(b.format(c).as_bytes());
    }
    out.extend_from_slice(CRLF);
}

/// `CLIENT_ERROR <msg>\r\n`.
pub fn client_error(out: &mut BytesMut, msg: &str) {
    line(out, b"CLIENT_ERROR ", msg.as_bytes());
}

/// `SERVER_ERROR <msg>\r\n`.
pub fn server_error(out: &mut BytesMut, msg: &str) {
    line(out, b"SERVER_ERROR ", msg.as_bytes());
}

fn line(out: &mut BytesMut, head: &[u8], msg: &[u8]) {
    out.extend_from_slice(head);
    out.extend_from_slice(msg);
    out.extend_from_slice(CRLF);
}

/// A decimal number and `\r\n` (incr/decr's reply).
pub fn number(out: &mut BytesMut, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(CRLF);
}

/// `STAT <name> <value>\r\n`.
pub fn stat(out: &mut BytesMut, name: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let mut s = String::with_capacity(name.len() + 24);
    let _ = write!(s, "STAT {name} {value}\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// The start of a meta reply that found its item: `VA <len>` when the value follows, `HD`
/// otherwise.
pub fn meta_head(out: &mut BytesMut, value_len: Option<usize>) {
    match value_len {
        Some(n) => {
            out.extend_from_slice(b"VA ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
        None => out.extend_from_slice(b"HD"),
    }
}

/// One meta return flag with its token (` t30`, ` kfoo`).
pub fn meta_token(out: &mut BytesMut, flag: u8, token: &[u8]) {
    out.extend_from_slice(&[b' ', flag]);
    out.extend_from_slice(token);
}

pub fn meta_number(out: &mut BytesMut, flag: u8, n: impl itoa::Integer) {
    meta_token(out, flag, itoa::Buffer::new().format(n).as_bytes());
}

/// A key as a meta reply returns it (` k<key>`).
pub fn meta_key(out: &mut BytesMut, key: &[u8], base64: bool) {
    out.extend_from_slice(b" k");
    self::key(out, key, base64);
}

/// A key, base64 again when it came in base64.
pub fn key(out: &mut BytesMut, key: &[u8], base64: bool) {
    if base64 {
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(key).as_bytes());
    } else {
        out.extend_from_slice(key);
    }
}
