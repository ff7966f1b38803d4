//! Memcached's text protocol and its meta commands: a command line, then for storage
//! commands a data block of the announced length followed by `\r\n`.

use super::meta::MetaFlags;
use super::{key_ok, parse_i64, parse_u32, parse_u64, ErrorKind, McError, McLimits, McRequest, Op, Step, Wire};
use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

const BAD_FORMAT: &str = "bad command line format";
const BAD_CHUNK: &str = "bad data chunk";

/// Parses the request at the front of `buf` (which does not start with the binary magic).
pub(super) fn parse(buf: &mut BytesMut, limits: &McLimits) -> Step {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_line {
            buf.clear();
            let e = McError { close: true, ..McError::text(ErrorKind::Client("line too long")) };
            return Step::Done(Err(e));
        }
        return Step::Incomplete(None);
    };
    if nl > limits.max_line {
        buf.clear();
        let e = McError { close: true, ..McError::text(ErrorKind::Client("line too long")) };
        return Step::Done(Err(e));
    }
    let line_len = nl + 1;
    let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let tokens: SmallVec<[(usize, usize); 8]> = tokenize(&buf[..end]);
    let Some(&(c0, c1)) = tokens.first() else {
        buf.advance(line_len);
        return Step::Done(Err(McError::text(ErrorKind::UnknownCommand)));
    };
    // Storage commands carry a data block: wait for all of it before consuming anything.
    let storage = match &buf[c0..c1] {
        b"set" => Some(Op::Set),
        b"add" => Some(Op::Add),
        b"replace" => Some(Op::Replace),
        b"append" => Some(Op::Append),
        b"prepend" => Some(Op::Prepend),
        b"cas" => Some(Op::Cas),
        b"ms" => Some(Op::MetaSet),
        _ => None,
    };
    if let Some(op) = storage {
        return parse_storage(buf, limits, op, &tokens, line_len);
    }
    let frozen = buf.split_to(line_len).freeze();
    let cmd = &frozen[c0..c1];
    let tok = |i: usize| -> &[u8] {
        let (a, b) = tokens[i];
        &frozen[a..b]
    };
    let slice = |i: usize| -> Bytes {
        let (a, b) = tokens[i];
        frozen.slice(a..b)
    };
    let n = tokens.len();
    let noreply = n > 1 && tok(n - 1) == b"noreply";
    let args = n - 1 - noreply as usize;
    let err = |kind| Step::Done(Err(McError::text(kind)));
    let client = |msg| Step::Done(Err(McError::text(ErrorKind::Client(msg))));
    let mut r = McRequest::new(Op::Get, Wire::Text);
    r.noreply = noreply;
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" => {
            r.op = match cmd {
                b"get" => Op::Get,
                b"gets" => Op::Gets,
                b"gat" => Op::Gat,
                _ => Op::Gats,
            };
            r.noreply = false;
            let first = if matches!(r.op, Op::Gat | Op::Gats) {
                if n < 3 {
                    return err(ErrorKind::UnknownCommand);
                }
                match parse_i64(tok(1)) {
                    Some(t) => r.exptime = t,
                    None => return client("invalid exptime argument"),
                }
                2
            } else {
                1
            };
            if n <= first {
                return err(ErrorKind::UnknownCommand);
            }
            for i in first..n {
                if !key_ok(tok(i)) {
                    return client(BAD_FORMAT);
                }
                r.keys.push(slice(i));
            }
        }
        b"touch" => {
            if args != 2 {
                return err(ErrorKind::UnknownCommand);
            }
            r.op = Op::Touch;
            if !key_ok(tok(1)) {
                return client(BAD_FORMAT);
            }
            r.keys.push(slice(1));
            match parse_i64(tok(2)) {
                Some(t) => r.exptime = t,
                None => return client("invalid exptime argument"),
            }
        }
        b"incr" | b"decr" => {
            if args != 2 {
                return err(ErrorKind::UnknownCommand);
            }
            r.op = if cmd == b"incr" { Op::Incr } else { Op::Decr };
            if !key_ok(tok(1)) {
                return client(BAD_FORMAT);
            }
            r.keys.push(slice(1));
            match parse_u64(tok(2)) {
                Some(d) => r.delta = d,
                None => return client("invalid numeric delta argument"),
            }
        }
        b"delete" => {
            // `delete <key> 0` is an old form memcached still accepts; other times are not.
            if !(1..=2).contains(&args) || (args == 2 && tok(2) != b"0") {
                return client("bad command line format.  Usage: delete <key> [noreply]");
            }
            r.op = Op::Delete;
            if !key_ok(tok(1)) {
                return client(BAD_FORMAT);
            }
            r.keys.push(slice(1));
        }
        b"flush_all" => {
            if args > 1 {
                return err(ErrorKind::UnknownCommand);
            }
            r.op = Op::FlushAll;
            if args == 1 {
                match parse_i64(tok(1)) {
                    Some(t) => r.exptime = t,
                    None => return client(BAD_FORMAT),
                }
            }
        }
        // As memcached: one or two arguments of any kind (`verbosity noreply` included); the
        // level is read when it is a number.
        b"verbosity" => {
            if !(2..=3).contains(&n) {
                return err(ErrorKind::UnknownCommand);
            }
            r.op = Op::Verbosity;
            r.flags = parse_u32(tok(1)).unwrap_or(0);
        }
        // memcached answers `version` whatever follows it.
        b"version" | b"quit" | b"mn" if n == 1 || cmd == b"version" => {
            r.op = match cmd {
                b"version" => Op::Version,
                b"quit" => Op::Quit,
                _ => Op::Noop,
            };
            if cmd == b"mn" {
                r.wire = Wire::Meta;
            }
        }
        b"stats" => {
            r.op = Op::Stats;
            r.noreply = false;
            if n > 1 {
                let (a, _) = tokens[1];
                let (_, b) = tokens[n - 1];
                r.value = frozen.slice(a..b);
            }
        }
        b"mg" | b"md" | b"ma" | b"me" => {
            r.wire = Wire::Meta;
            r.noreply = false;
            r.op = match cmd {
                b"mg" => Op::MetaGet,
                b"md" => Op::MetaDelete,
                b"ma" => Op::MetaArith,
                _ => Op::MetaDebug,
            };
            if n < 2 {
                return client(BAD_FORMAT);
            }
            let flags: SmallVec<[&[u8]; 8]> = (2..n).map(tok).collect();
            if let Err(e) = meta_key_and_flags(&mut r, slice(1), &flags) {
                return Step::Done(Err(e));
            }
        }
        _ => return err(ErrorKind::UnknownCommand),
    }
    Step::Done(Ok(r))
}

/// Reads a meta command's key (decoding base64 under `b`) and flags into `r`.
fn meta_key_and_flags(r: &mut McRequest, key: Bytes, flags: &[&[u8]]) -> Result<(), McError> {
    let client = |msg| McError { wire: Wire::Meta, ..McError::text(ErrorKind::Client(msg)) };
    r.meta = MetaFlags::parse(flags).map_err(|e| client(e.message()))?;
    let key = if r.meta.base64 {
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(&key).map_err(|_| client("error decoding key"))?;
        if decoded.is_empty() || decoded.len() > super::MAX_KEY_LEN {
            return Err(client(BAD_FORMAT));
        }
        Bytes::from(decoded)
    } else {
        if !key_ok(&key) {
            return Err(client(BAD_FORMAT));
        }
        key
    };
    r.keys.push(key);
    Ok(())
}

/// A storage command: the line, then `bytes` of data and `\r\n`.
fn parse_storage(buf: &mut BytesMut, limits: &McLimits, op: Op, tokens: &[(usize, usize)], line_len: usize) -> Step {
    let meta = op == Op::MetaSet;
    let wire = if meta { Wire::Meta } else { Wire::Text };
    let (len, r) = match storage_line(&buf[..line_len], op, tokens, limits) {
        Ok(found) => found,
        Err((kind, swallow)) => {
            // A `set` too large to store drops the item it would have replaced, as memcached.
            let key = tokens.get(1).map(|&(a, b)| &buf[a..b]).filter(|k| key_ok(k));
            let drop_key = key.filter(|_| kind == ErrorKind::TooLarge && op == Op::Set).map(Bytes::copy_from_slice);
            buf.advance(line_len);
            let e = McError { wire, drop_key, ..McError::text(kind) };
            return match swallow {
                Some(n) => Step::Swallow(Err(e), n),
                None => Step::Done(Err(e)),
            };
        }
    };
    let total = line_len + len + 2;
    if buf.len() < total {
        return Step::Incomplete(Some(total));
    }
    let frozen = buf.split_to(total).freeze();
    if &frozen[line_len + len..] != b"\r\n" {
        return Step::Done(Err(McError { wire, ..McError::text(ErrorKind::Client(BAD_CHUNK)) }));
    }
    let mut r = r;
    let key = frozen.slice(tokens[1].0..tokens[1].1);
    if meta {
        let flags: SmallVec<[&[u8]; 8]> = tokens[3..].iter().map(|&(a, b)| &frozen[a..b]).collect();
        if let Err(e) = meta_key_and_flags(&mut r, key, &flags) {
            return Step::Done(Err(e));
        }
    } else {
        r.keys.push(key);
    }
    r.value = frozen.slice(line_len..line_len + len);
    Step::Done(Ok(r))
}

/// Reads a storage command's line: the data length and the request without key and value,
/// or the error with how many bytes of data to skip (when the length could be read).
fn storage_line(
    line: &[u8],
    op: Op,
    tokens: &[(usize, usize)],
    limits: &McLimits,
) -> Result<(usize, McRequest), (ErrorKind, Option<usize>)> {
    let n = tokens.len();
    let tok = |i: usize| -> &[u8] { &line[tokens[i].0..tokens[i].1] };
    let meta = op == Op::MetaSet;
    // ms <key> <datalen> <flags>*; cas <key> <flags> <exptime> <bytes> <cas> [noreply];
    // the others <key> <flags> <exptime> <bytes> [noreply].
    let len_at = if meta { 2 } else { 4 };
    if n <= len_at {
        return Err((if meta { ErrorKind::Client(BAD_FORMAT) } else { ErrorKind::UnknownCommand }, None));
    }
    let Some(len) = parse_u64(tok(len_at)).and_then(|l| usize::try_from(l).ok()).filter(|&l| l < i32::MAX as usize)
    else {
        return Err((ErrorKind::Client(if meta { BAD_CHUNK } else { BAD_FORMAT }), None));
    };
    // From here on the data block's length is known: an error skips it, keeping the stream.
    let skip = Some(len + 2);
    if len > limits.max_item_size {
        return Err((ErrorKind::TooLarge, skip));
    }
    let mut r = McRequest::new(op, if meta { Wire::Meta } else { Wire::Text });
    if meta {
        return Ok((len, r));
    }
    let expected = if op == Op::Cas { 6 } else { 5 };
    let noreply = n == expected + 1 && tok(n - 1) == b"noreply";
    if n != expected && !noreply {
        return Err((ErrorKind::Client(BAD_FORMAT), skip));
    }
    r.noreply = noreply;
    let (Some(flags), Some(exptime)) = (parse_u32(tok(2)), parse_i64(tok(3))) else {
        return Err((ErrorKind::Client(BAD_FORMAT), skip));
    };
    r.flags = flags;
    r.exptime = exptime;
    if op == Op::Cas {
        r.cas = parse_u64(tok(5)).ok_or((ErrorKind::Client(BAD_FORMAT), skip))?;
    }
    if !key_ok(tok(1)) {
        return Err((ErrorKind::Client(BAD_FORMAT), skip));
    }
    Ok((len, r))
}

/// The spans of the space-separated tokens of a line.
fn tokenize(line: &[u8]) -> SmallVec<[(usize, usize); 8]> {
    let mut out = SmallVec::new();
    let mut start = None;
    for (i, &b) in line.iter().enumerate() {
        match (b == b' ', start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, line.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{McParser, Parsed};
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Parsed>, usize) {
        let mut p = McParser::new(McLimits { max_item_size: 16, max_line: 512 });
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        p.parse(&mut buf, &mut out);
        (out, buf.len())
    }

    fn one(input: &[u8]) -> McRequest {
        let (mut out, left) = parse_all(input);
        assert_eq!(left, 0, "all consumed");
        assert_eq!(out.len(), 1);
        out.pop().unwrap().expect("a request")
    }

    /// The first reply's error.
    fn error(input: &[u8]) -> ErrorKind {
        let (out, _) = parse_all(input);
        out[0].clone().expect_err("an error").kind
    }

    #[test]
    fn storage_commands() {
        let r = one(b"set k 5 100 3\r\nabc\r\n");
        assert_eq!(
            (r.op, r.key(), r.flags, r.exptime, &r.value[..], r.noreply),
            (Op::Set, &b"k"[..], 5, 100, &b"abc"[..], false)
        );
        let r = one(b"cas k 0 0 1 77 noreply\r\nx\r\n");
        assert_eq!((r.op, r.cas, r.noreply), (Op::Cas, 77, true));
        let r = one(b"set k 0 0 0\r\n\r\n");
        assert!(r.value.is_empty());
    }

    #[test]
    fn a_storage_command_waits_for_its_data() {
        let (out, left) = parse_all(b"set k 0 0 10\r\nabc");
        assert!(out.is_empty());
        assert_eq!(left, 17);
    }

    #[test]
    fn retrievals_take_many_keys() {
        let r = one(b"get a b  c\r\n");
        assert_eq!(r.keys.len(), 3);
        let r = one(b"gats 30 a\n");
        assert_eq!((r.op, r.exptime, r.key()), (Op::Gats, 30, &b"a"[..]));
    }

    #[test]
    fn errors_match_memcached() {
        assert_eq!(error(b"bogus\r\n"), ErrorKind::UnknownCommand);
        assert_eq!(error(b"get\r\n"), ErrorKind::UnknownCommand);
        assert_eq!(error(b"incr k x\r\n"), ErrorKind::Client("invalid numeric delta argument"));
        assert_eq!(error(b"set k x 0 1\r\na\r\n"), ErrorKind::Client(BAD_FORMAT));
        assert_eq!(error(b"set k 0 0 1\r\nab\r\n"), ErrorKind::Client(BAD_CHUNK));
        // As in memcached, what follows a bad chunk is read as the next command.
        let (out, _) = parse_all(b"set k 0 0 1\r\nab\r\n");
        assert_eq!(out[1].clone().unwrap_err().kind, ErrorKind::UnknownCommand);
        let long = format!("get {}\r\n", "k".repeat(251));
        assert_eq!(error(long.as_bytes()), ErrorKind::Client(BAD_FORMAT));
    }

    #[test]
    fn an_error_skips_the_data_block_it_announced() {
        let (out, left) = parse_all(b"set k 0 0 20\r\n01234567890123456789\r\nget k\r\n");
        assert_eq!(left, 0);
        assert_eq!(out[0].as_ref().unwrap_err().kind, ErrorKind::TooLarge);
        assert_eq!(out[0].as_ref().unwrap_err().drop_key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out[1].as_ref().unwrap().op, Op::Get);
        // Split across reads, the skip carries over.
        let mut p = McParser::new(McLimits { max_item_size: 16, max_line: 512 });
        let mut buf = BytesMut::from(&b"set k 0 0 20\r\n0123"[..]);
        let mut out = Vec::new();
        p.parse(&mut buf, &mut out);
        buf.extend_from_slice(b"4567890123456789\r\nversion\r\n");
        p.parse(&mut buf, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].as_ref().unwrap().op, Op::Version);
    }

    #[test]
    fn a_line_too_long_closes() {
        let (out, _) = parse_all(&[b'a'; 600]);
        assert!(out[0].as_ref().unwrap_err().close);
    }

    #[test]
    fn meta_commands() {
        let r = one(b"ms a 2 T90 F1 MA\r\nhi\r\n");
        assert_eq!((r.op, r.wire, &r.value[..]), (Op::MetaSet, Wire::Meta, &b"hi"[..]));
        assert_eq!((r.meta.ttl, r.meta.client_flags, r.meta.mode), (Some(90), Some(1), Some(b'A')));
        let r = one(b"mg Zm9v b v k\r\n");
        assert_eq!(r.key(), b"foo");
        assert!(r.meta.base64);
        let r = one(b"mn\r\n");
        assert_eq!((r.op, r.wire), (Op::Noop, Wire::Meta));
        assert_eq!(error(b"mg k x\r\n"), ErrorKind::Client("invalid flag"));
        assert_eq!(error(b"mg !!! b\r\n"), ErrorKind::Client("error decoding key"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = parse_all(&input);
        }

        #[test]
        fn never_panics_on_almost_valid_lines(
            cmd in proptest::sample::select(vec!["get", "gat", "set", "cas", "incr", "delete", "touch", "ms", "mg", "md", "ma", "flush_all", "stats", "verbosity"]),
            args in proptest::collection::vec("[a-zA-Z0-9 -]{0,6}", 0..6),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            let mut input = cmd.as_bytes().to_vec();
            for a in args {
                input.push(b' ');
                input.extend_from_slice(a.as_bytes());
            }
            input.extend_from_slice(b"\r\n");
            input.extend_from_slice(&tail);
            let _ = parse_all(&input);
        }
    }
}
