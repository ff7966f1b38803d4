//! Parsing of command arguments with Redis's rules and error texts.

use shoal_proto::request::parse_i64;

/// An integer argument (Redis's `getLongLongFromObject`).
#[inline]
pub fn int(arg: &[u8]) -> Option<i64> {
    parse_i64(arg)
}

/// An `int` argument (Redis's `getIntFromObjectOrReply`): the error text differs for a
/// non-integer and for an integer outside the 32-bit range.
pub fn int32(arg: &[u8]) -> Result<i32, &'static str> {
    match parse_i64(arg) {
        None => Err(super::exec::NOT_INTEGER),
        Some(n) => {
            i32::try_from(n).map_err(|_| "ERR value is out of range, value must between -2147483648 and 2147483647")
        }
    }
}

/// Redis's `addReplySubcommandSyntaxError`: `req`'s subcommand (as typed) is unknown to
/// `container`, or has the wrong number of arguments.
pub fn subcommand_syntax_error(container: &str, req: &shoal_proto::Request) -> String {
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(req.arg(1))
    )
}

/// Case-insensitive comparison with an ASCII keyword.
#[inline]
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A double argument with Redis's `string2d` rules: what C's `strtod` accepts, the whole
/// argument consumed, no leading space, no NaN.
pub fn double(arg: &[u8]) -> Option<f64> {
    crate::util::float::string2d(arg)
}

/// How an expiry argument is expressed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeUnit {
    Seconds,
    Millis,
}

/// Converts a relative or absolute expiry to absolute Unix ms, with Redis's overflow checks;
/// `None` means "invalid expire time".
pub fn expire_at(value: i64, unit: TimeUnit, absolute: bool, now: u64) -> Option<i64> {
    let ms = match unit {
        TimeUnit::Seconds => value.checked_mul(1000)?,
        TimeUnit::Millis => value,
    };
    if absolute {
        Some(ms)
    } else {
        ms.checked_add(now as i64)
    }
}

/// A SCAN cursor as C's `strtoul` reads it (Redis's `parseScanCursorOrReply`): an optional
/// sign, digits, nothing else; a minus sign wraps around.
pub fn parse_cursor(a: &[u8]) -> Option<u64> {
    let (neg, digits) = match a.first() {
        Some(b'-') => (true, &a[1..]),
        Some(b'+') => (false, &a[1..]),
        _ => (false, a),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The options of SCAN, HSCAN, SSCAN and ZSCAN.
pub struct ScanOptions {
    pub cursor: u64,
    pub count: usize,
    pub pattern: Option<Vec<u8>>,
    pub type_filter: Option<Vec<u8>>,
    pub novalues: bool,
}

/// Parses `cursor [MATCH p] [COUNT n] [TYPE t]` starting at `at`; TYPE only for SCAN,
/// NOVALUES only for HSCAN. Errors are Redis's texts.
pub fn scan_options(
    req: &shoal_proto::Request,
    at: usize,
    scan: bool,
    hscan: bool,
) -> Result<ScanOptions, &'static str> {
    let cursor = parse_cursor(req.arg(at)).ok_or("ERR invalid cursor")?;
    let mut o = ScanOptions { cursor, count: 10, pattern: None, type_filter: None, novalues: false };
    let mut j = at + 1;
    while j < req.len() {
        let more = j + 1 < req.len();
        let a = req.arg(j);
        if is(a, "COUNT") && more {
            match int(req.arg(j + 1)) {
                None => return Err(super::exec::NOT_INTEGER),
                Some(c) if c < 1 => return Err(super::exec::SYNTAX),
                Some(c) => o.count = c.min(1 << 20) as usize,
            }
            j += 2;
        } else if is(a, "MATCH") && more {
            o.pattern = Some(req.arg(j + 1).to_vec());
            j += 2;
        } else if scan && is(a, "TYPE") && more {
            o.type_filter = Some(req.arg(j + 1).to_vec());
            j += 2;
        } else if hscan && is(a, "NOVALUES") {
            o.novalues = true;
            j += 1;
        } else {
            return Err(super::exec::SYNTAX);
        }
    }
    Ok(o)
}

/// Whether a scanned element passes the MATCH pattern.
pub fn scan_match(o: &ScanOptions, elem: &[u8]) -> bool {
    o.pattern.as_ref().is_none_or(|p| p.as_slice() == b"*" || crate::util::glob::glob_match(p, elem, false))
}
