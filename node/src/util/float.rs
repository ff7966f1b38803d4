//! Redis-exact float parsing (`strtod`/`strtold`) and INCRBYFLOAT arithmetic on a C long
//! double, through the shim in `csrc/float.c`.

use std::os::raw::{c_char, c_int};

extern "C" {
    fn shoal_string2d(s: *const c_char, slen: usize, dp: *mut f64) -> c_int;
    fn shoal_human_double(d: f64, out: *mut c_char) -> usize;
    fn shoal_g17(d: f64, out: *mut c_char) -> usize;
    fn shoal_incrbyfloat(
        cur: *const c_char,
        curlen: usize,
        incr: *const c_char,
        incrlen: usize,
        out: *mut c_char,
        outlen: *mut usize,
    ) -> c_int;
}

const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Parses a double as Redis's `string2d`.
pub fn string2d(s: &[u8]) -> Option<f64> {
    let mut d = 0f64;
    // SAFETY: the shim reads exactly `slen` bytes from `s` and writes one f64 to `d`.
    let ok = unsafe { shoal_string2d(s.as_ptr() as *const c_char, s.len(), &mut d) };
    (ok == 1).then_some(d)
}

/// A double as Redis prints coordinates (`%.17Lf` of the long double, trailing zeros cut).
pub fn human_double(d: f64) -> String {
    printed(d, shoal_human_double)
}

/// A double as C's `%.17g` prints it (`0.10000000000000001`, `1e+20`, `-nan`): how Redis 7.0
/// passes a script's numbers to commands.
pub fn g17(d: f64) -> String {
    printed(d, shoal_g17)
}

/// `d` as a shim that prints into 64 bytes (or fewer) prints it.
fn printed(d: f64, shim: unsafe extern "C" fn(f64, *mut c_char) -> usize) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the shims write at most 64 bytes into `buf` and return how many.
    let n = unsafe { shim(d, buf.as_mut_ptr() as *mut c_char) };
    String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()
}

#[derive(Debug, PartialEq, Eq)]
pub enum IncrFloatError {
    ValueNotFloat,
    IncrNotFloat,
    NanOrInfinity,
}

/// `current + incr` on long doubles, formatted as INCRBYFLOAT replies (`%.17Lf`, trailing
/// zeros removed). `current` is `None` for a missing key (0).
pub fn incr_by_float(current: Option<&[u8]>, incr: &[u8]) -> Result<Vec<u8>, IncrFloatError> {
    let mut out = vec![0u8; MAX_LONG_DOUBLE_CHARS];
    let mut len = 0usize;
    let (cp, cl) = match current {
        Some(c) => (c.as_ptr() as *const c_char, c.len()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: pointers and lengths describe live slices; `out` has the capacity the shim needs.
    let rc = unsafe {
        shoal_incrbyfloat(cp, cl, incr.as_ptr() as *const c_char, incr.len(), out.as_mut_ptr() as *mut c_char, &mut len)
    };
    match rc {
        0 => {
            out.truncate(len);
            Ok(out)
        }
        1 => Err(IncrFloatError::ValueNotFloat),
        2 => Err(IncrFloatError::IncrNotFloat),
        _ => Err(IncrFloatError::NanOrInfinity),
    }
}

/// A C cast of a double to `long long` as x86-64 makes it (where Redis is compared): truncated,
/// and the "integer indefinite" value, `i64::MIN`, for NaN and anything out of range, where
/// Rust's saturating `as` would give 0 or a bound. Redis's integer replies of Lua numbers and
/// its Lua libraries' integer conversions go through it.
pub fn c_long_long(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if (-LIMIT..LIMIT).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// A C cast of a double to `int` as x86-64 makes it: truncated, and `i32::MIN` for NaN and
/// anything out of range. Redis's scripting API reads its numeric arguments (log levels, RESP
/// versions, replication flags) into ints this way.
pub fn c_int(n: f64) -> i32 {
    // Truncated to a long long first: in int's range exactly when the double is.
    i32::try_from(c_long_long(n)).unwrap_or(i32::MIN)
}

/// A C cast of a double to `unsigned long long` as gcc compiles it for x86-64: values from 2^63
/// on are converted less 2^63 with the top bit put back (2^64 and infinity become 0), the rest
/// as `long long` (NaN becomes 2^63).
pub fn c_unsigned_long_long(n: f64) -> u64 {
    const TOP: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n >= TOP {
        c_long_long(n - TOP) as u64 ^ (1 << 63)
    } else {
        c_long_long(n) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_casts_truncate_and_give_the_indefinite_value_out_of_range() {
        assert_eq!(c_int(2_147_483_647.9), i32::MAX);
        assert_eq!(c_int(-2_147_483_648.9), i32::MIN);
        assert_eq!(c_int(-3.7), -3);
        for n in [2_147_483_648.0, f64::NAN, f64::INFINITY, -1e300] {
            assert_eq!(c_int(n), i32::MIN, "{n}");
        }
        assert_eq!(c_long_long(-9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(c_long_long(9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(c_long_long(1e18 + 0.5), 1_000_000_000_000_000_000);
    }

    #[test]
    fn g17_prints_as_c_does() {
        assert_eq!(g17(0.1), "0.10000000000000001");
        assert_eq!(g17(1e20), "1e+20");
        assert_eq!(g17(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(g17(-0.0), "-0");
        assert_eq!(g17(f64::NEG_INFINITY), "-inf");
        assert_eq!(g17(1.5), "1.5");
    }

    #[test]
    fn incrbyfloat_prints_like_redis() {
        assert_eq!(incr_by_float(Some(b"10.50"), b"0.1").unwrap(), b"10.6");
        assert_eq!(incr_by_float(Some(b"5.0e3"), b"2.0e2").unwrap(), b"5200");
        assert_eq!(incr_by_float(None, b"-5").unwrap(), b"-5");
        assert_eq!(incr_by_float(Some(b"abc"), b"1"), Err(IncrFloatError::ValueNotFloat));
        assert_eq!(incr_by_float(Some(b"1"), b" 1"), Err(IncrFloatError::IncrNotFloat));
        assert_eq!(incr_by_float(Some(b"1"), b"inf"), Err(IncrFloatError::NanOrInfinity));
        // A NUL inside the value must not end the number early (Redis 7.0's string2ld).
        assert_eq!(incr_by_float(Some(b"1\x002"), b"1"), Err(IncrFloatError::ValueNotFloat));
    }

    #[test]
    fn string2d_rules() {
        assert_eq!(string2d(b"1.5"), Some(1.5));
        assert_eq!(string2d(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(string2d(b"nan"), None);
        assert_eq!(string2d(b" 1"), None);
        assert_eq!(string2d(b"1 "), None);
        assert_eq!(string2d(b""), None);
        assert_eq!(string2d(b"1\x002"), None);
    }

    #[test]
    fn string2d_integers_are_exactly_what_strtod_gives() {
        // Up to 15 digits take a shortcut past strtod; around the limit, the sign, zero and
        // leading zeros, the value must be the correctly rounded one (Rust's parse).
        for s in [
            "0",
            "-0",
            "7",
            "-7",
            "007",
            "-007",
            "123456789012345",
            "-123456789012345",
            "999999999999999",
            "1234567890123456",
            "-9999999999999999",
            "99999999999999999999",
            "9007199254740993",
        ] {
            let want: f64 = s.parse().unwrap();
            assert_eq!(string2d(s.as_bytes()).map(f64::to_bits), Some(want.to_bits()), "{s}");
        }
        for s in ["-", "--1", "12a", "1-", "+", ""] {
            assert_eq!(string2d(s.as_bytes()), None, "{s}");
        }
        assert_eq!(string2d(b"+5"), Some(5.0));
    }

    #[test]
    fn c_casts_are_x86_64s() {
        assert_eq!(c_long_long(-2.9), -2);
        assert_eq!(c_long_long(f64::NAN), i64::MIN);
        assert_eq!(c_long_long(9.3e18), i64::MIN);
        assert_eq!(c_long_long(-9.3e18), i64::MIN);
        assert_eq!(c_unsigned_long_long(2f64.powi(64)), 0);
        assert_eq!(c_unsigned_long_long(f64::INFINITY), 0);
        assert_eq!(c_unsigned_long_long(f64::NAN), 1 << 63);
        assert_eq!(c_unsigned_long_long(2f64.powi(63) + 2f64.powi(62)), 3 << 62);
    }
}
