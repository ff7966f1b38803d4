//! `bit`: LuaBitOp's 32-bit operations. Numbers are taken modulo 2^32 after rounding (LuaBitOp
//! adds 2^52+2^51 and reads the low word) and results are signed 32-bit numbers.

use super::{check_number, function};
use mlua::{Lua, MultiValue, Table};

/// LuaBitOp's number-to-bits conversion, bit for bit.
fn tobit(x: f64) -> i32 {
    (x + 6755399441055744.0).to_bits() as u32 as i32
}

fn arg(lua: &Lua, args: &MultiValue, n: usize) -> mlua::Result<i32> {
    check_number(lua, args, n).map(tobit)
}

type Unary = fn(i32) -> i32;
type Binary = fn(i32, i32) -> i32;
type Shift = fn(i32, u32) -> i32;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary: [(&'static str, Unary); 3] = [("tobit", |x| x), ("bnot", |x| !x), ("bswap", |x| x.swap_bytes())];
    for (name, op) in unary {
        t.raw_set(name, function(lua, move |lua, args: MultiValue| Ok(op(arg(lua, &args, 1)?) as f64))?)?;
    }
    let fold: [(&'static str, Binary); 3] = [("band", |a, b| a & b), ("bor", |a, b| a | b), ("bxor", |a, b| a ^ b)];
    for (name, op) in fold {
        t.raw_set(
            name,
            function(lua, move |lua, args: MultiValue| {
                let mut acc = arg(lua, &args, 1)?;
                // LuaBitOp folds from the last argument down, so that is the first refused.
                for n in (2..=args.len()).rev() {
                    acc = op(acc, arg(lua, &args, n)?);
                }
                Ok(acc as f64)
            })?,
        )?;
    }
    let shift: [(&'static str, Shift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, op) in shift {
        t.raw_set(
            name,
            function(lua, move |lua, args: MultiValue| {
                let x = arg(lua, &args, 1)?;
                let n = arg(lua, &args, 2)? as u32 & 31;
                Ok(op(x, n) as f64)
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        function(lua, |lua, args: MultiValue| {
            let mut b = arg(lua, &args, 1)? as u32;
            // Only a missing count means 8: nil is refused, as LuaBitOp refuses it.
            let mut n = if args.len() >= 2 { arg(lua, &args, 2)? } else { 8 };
            let digits: &[u8; 16] = if n < 0 {
                // (LuaBitOp negates an int; compiled, -INT_MIN comes out as a large count.)
                n = n.saturating_neg();
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            let n = n.clamp(0, 8) as usize;
            let mut out = vec![0u8; n];
            for slot in out.iter_mut().rev() {
                *slot = digits[(b & 15) as usize];
                b >>= 4;
            }
            lua.create_string(out)
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::tobit;

    #[test]
    fn tobit_rounds_and_wraps_as_luabitop() {
        assert_eq!(tobit(0xffffffffu32 as f64), -1);
        assert_eq!(tobit(4294967296.0 + 5.0), 5);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(3.5), 4);
        assert_eq!(tobit(-1.0), -1);
    }
}
