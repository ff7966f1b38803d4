//! `struct`: packing numbers and strings into binary strings and back, with the format
//! language of Roberto Ierusalimschy's struct library as Redis bundles it (`>` `<` `!n` `x`
//! `b/B` `h/H` `l/L` `T` `i/In` `cn` `s` `f` `d`).

use super::{arg_error, check_bytes, check_number, error, function, opt_number};
use crate::util::float::{c_long_long, c_unsigned_long_long};
use mlua::{Lua, MultiValue, Table, Value};

/// The widest integer a format may ask for, as in Redis's copy.
const MAX_INT_SIZE: usize = 32;
/// `!` without a number: the alignment of a double on the platforms Redis runs on.
const MAX_ALIGN: usize = 8;

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header { little: cfg!(target_endian = "little"), align: 1 }
    }
}

/// A format string being read, one option at a time.
struct Format<'a> {
    fmt: &'a [u8],
    at: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.fmt.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    fn number(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.fmt.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: usize = 0;
        while let Some(d) = self.fmt.get(self.at).filter(|c| c.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add((d - b'0') as usize))
                .ok_or_else(|| error("integral size overflow"))?;
            self.at += 1;
        }
        Ok(n)
    }

    /// The size of option `opt`, reading its count where it has one.
    fn size(&mut self, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b's' | b' ' | b'<' | b'>' | b'!' => 0,
            b'i' | b'I' => {
                let n = self.number(4)?;
                if n > MAX_INT_SIZE {
                    return Err(error(format!("integral size {n} is larger than limit of {MAX_INT_SIZE}")));
                }
                n
            }
            // lua_struct sizes any other character as nothing, and refuses it only when it
            // comes to act on it, after checking that the data is long enough.
            _ => 0,
        })
    }

    /// Endianness and alignment options.
    fn control(&mut self, opt: u8, h: &mut Header) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(error(format!("alignment {a} is not a power of 2")));
                }
                h.align = a;
            }
            other => return Err(arg_error(1, &format!("invalid format option '{}'", other as char))),
        }
        Ok(())
    }
}

fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    // Not always a power of 2 (`i3`), as lua_struct leaves it.
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn is_integer(opt: u8) -> bool {
    matches!(opt, b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I')
}

fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    // lua_struct's casts: `(Uinttype)(Inttype)n` below zero, `(Uinttype)n` otherwise.
    let mut value: u64 = if n < 0.0 { c_long_long(n) as u64 } else { c_unsigned_long_long(n) };
    let mut bytes = vec![0u8; size];
    for b in bytes.iter_mut() {
        *b = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_integer(data: &[u8], little: bool, signed: bool) -> f64 {
    let size = data.len().min(8);
    let mut l: u64 = 0;
    for i in 0..size {
        let byte = if little { data[i] } else { data[data.len() - 1 - i] };
        l |= (byte as u64) << (i * 8);
    }
    if !signed {
        return l as f64;
    }
    // lua_struct's `~0 << (size*8 - 1)`, where x86 takes the count modulo 64: an integer wider
    // than 8 bytes (`i9`) sign-extends from another bit, and Redis answers that.
    let mask = !0u64 << ((data.len() * 8).wrapping_sub(1) % 64);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn pack(lua: &Lua, mut args: MultiValue) -> mlua::Result<mlua::LuaString> {
    let fmt = check_bytes(&args, 1)?;
    // The C library then pushes a nil after its arguments, so a missing value reads as nil.
    args.push_back(Value::Nil);
    let mut f = Format { fmt: &fmt, at: 0 };
    let mut h = Header::default();
    let mut arg = 2;
    let mut out = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        out.resize(out.len() + padding(out.len(), &h, opt, size), 0);
        match opt {
            o if is_integer(o) => {
                put_integer(&mut out, check_number(lua, &args, arg)?, h.little, size);
                arg += 1;
            }
            b'x' => out.push(0),
            b'f' => {
                let x = check_number(lua, &args, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little { x.to_le_bytes() } else { x.to_be_bytes() });
            }
            b'd' => {
                let x = check_number(lua, &args, arg)?;
                arg += 1;
                out.extend_from_slice(&if h.little { x.to_le_bytes() } else { x.to_be_bytes() });
            }
            b'c' | b's' => {
                let s = check_bytes(&args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_error(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => f.control(other, &mut h)?,
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = check_bytes(&args, 1)?;
    let data = check_bytes(&args, 2)?;
    // lua_struct takes the offset as a size_t: only 0 is refused as such, and a negative one
    // wraps to past any data ("data string too short").
    let start = c_long_long(opt_number(lua, &args, 3, 1.0)?);
    if start == 0 {
        return Err(arg_error(3, "offset must be 1 or greater"));
    }
    let mut pos = (start as usize).wrapping_sub(1);
    let mut f = Format { fmt: &fmt, at: 0 };
    let mut h = Header::default();
    let mut out: Vec<Value> = Vec::new();
    let too_short = || arg_error(2, "data string too short");
    // Whether a `c0` took its size from the data, popping it: lua_struct then returns one
    // value fewer than it pushed, losing its first.
    let mut lost_first = false;
    while let Some(opt) = f.next() {
        let mut size = f.size(opt)?;
        pos = pos.checked_add(padding(pos, &h, opt, size)).ok_or_else(too_short)?;
        if pos.checked_add(size).is_none_or(|end| end > data.len()) {
            return Err(too_short());
        }
        // Room for the item and the position after it, as lua_struct checks.
        super::check_stack(args.len() + out.len(), 2, "too many results")?;
        match opt {
            o if is_integer(o) => {
                out.push(Value::Number(get_integer(&data[pos..pos + size], h.little, o.is_ascii_lowercase())))
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
                let x = if h.little { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) };
                out.push(Value::Number(x as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().expect("8 bytes");
                out.push(Value::Number(if h.little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) }));
            }
            b'c' => {
                if size == 0 {
                    // The value on top of lua_struct's stack: the last one read, or, before
                    // any, the data itself, whose place the string then takes.
                    let previous = match out.last() {
                        Some(v) => lua.coerce_number(v.clone())?,
                        None => lua.coerce_number(args[1].clone())?,
                    };
                    let Some(n) = previous else {
                        return Err(error("format 'c0' needs a previous size"));
                    };
                    if out.pop().is_none() {
                        lost_first = true;
                    }
                    size = c_unsigned_long_long(n) as usize;
                    if pos.checked_add(size).is_none_or(|end| end > data.len()) {
                        return Err(too_short());
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(error("unfinished string in data"));
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + len])?));
                size = len + 1;
            }
            other => f.control(other, &mut h)?,
        }
        pos += size;
    }
    out.push(Value::Number(pos.wrapping_add(1) as isize as f64));
    Ok(MultiValue::from_iter(out.into_iter().skip(usize::from(lost_first))))
}

fn size(_: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let fmt = check_bytes(&args, 1)?;
    let mut f = Format { fmt: &fmt, at: 0 };
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = f.next() {
        let size = f.size(opt)?;
        pos += padding(pos, &h, opt, size);
        if opt == b's' {
            return Err(arg_error(1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(1, "option 'c0' has no fixed size"));
        }
        // Letters and digits that name no option count for nothing here (lua_struct checks
        // them only when packing and unpacking).
        if !opt.is_ascii_alphanumeric() {
            f.control(opt, &mut h)?;
        }
        pos += size;
    }
    Ok(pos as f64)
}

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", function(lua, pack)?)?;
    t.raw_set("unpack", function(lua, unpack)?)?;
    t.raw_set("size", function(lua, size)?)?;
    Ok(t)
}
