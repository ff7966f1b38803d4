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
