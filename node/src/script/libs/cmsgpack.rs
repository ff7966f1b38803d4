//! `cmsgpack`: MessagePack as Redis's lua-cmsgpack writes and reads it. Integral numbers take
//! the smallest integer encoding, other numbers float32 when that is exact and float64
//! otherwise; a table whose keys are exactly 1..n is an array, any other a map; tables nested
//! deeper than 16 are written as nil.

use super::{check_bytes, error, function, opt_number};
use crate::util::float::c_long_long;
use mlua::{ffi, Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(out, *i),
        Value::Number(n) => encode_number(out, *n),
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Table(t) if level < MAX_NESTING => encode_table(out, t, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    // lua_cmsgpack's test, a C cast back and forth: 2^63 casts to -2^63 and is no integer.
    let i = c_long_long(n);
    if i as f64 == n {
        encode_int(out, i);
    } else if (n as f32) as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// Writes an array or map header of `n` entries: `fix` for small ones, then 16 and 32 bits.
fn header(out: &mut Vec<u8>, n: usize, fix: u8, wide: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(wide);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// The length of `t` if its keys are exactly 1..n.
fn array_len(t: &Table) -> mlua::Result<Option<usize>> {
    Ok(super::array_keys(t)?.filter(|&(count, max)| max == count as f64).map(|(count, _)| count))
}

fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    if let Some(len) = array_len(t)? {
        header(out, len, 0x90, 0xdc);
        for i in 1..=len {
            encode(out, &t.raw_get::<Value>(i)?, level + 1)?;
        }
    } else {
        let pairs: Vec<(Value, Value)> = t.clone().pairs().collect::<mlua::Result<_>>()?;
        header(out, pairs.len(), 0x80, 0xde);
        for (k, v) in pairs {
            encode(out, &k, level + 1)?;
            encode(out, &v, level + 1)?;
        }
    }
    Ok(())
}

/// Why a decode stopped: the input ended early, or holds something that is not MessagePack.
enum Stop {
    Eof,
    Bad,
    /// A map's key Lua cannot store (nil or NaN), met once its value is read: lua_cmsgpack
    /// stores each pair as it goes, and Lua's `lua_settable` refuses it with these words.
    Key(&'static str),
}

/// One MessagePack item: a scalar, or a container's header (its contents follow it).
enum Item<'a> {
    Nil,
    Bool(bool),
    Number(f64),
    Bytes(&'a [u8]),
    Array(usize),
    Map(usize),
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

/// Deeper input is refused as bad data (C recursion in Redis would crash long before).
const MAX_DECODE_DEPTH: usize = 1000;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(Stop::Eof)?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Stop> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// A length held in the next `n` bytes.
    fn length(&mut self, n: usize) -> Result<usize, Stop> {
        Ok(self.uint(n)? as usize)
    }

    fn item(&mut self) -> Result<Item<'a>, Stop> {
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Item::Number(b as f64),
            0xe0..=0xff => Item::Number(b as i8 as f64),
            0xa0..=0xbf => Item::Bytes(self.take((b & 0x1f) as usize)?),
            0x90..=0x9f => Item::Array((b & 0x0f) as usize),
            0x80..=0x8f => Item::Map((b & 0x0f) as usize),
            0xc0 => Item::Nil,
            0xc2 => Item::Bool(false),
            0xc3 => Item::Bool(true),
            0xcc => Item::Number(self.uint(1)? as f64),
            0xcd => Item::Number(self.uint(2)? as f64),
            0xce => Item::Number(self.uint(4)? as f64),
            // (Read as a signed 64-bit integer, as Redis's cmsgpack does.)
            0xcf => Item::Number(self.uint(8)? as i64 as f64),
            0xd0 => Item::Number(self.uint(1)? as u8 as i8 as f64),
            0xd1 => Item::Number(self.uint(2)? as u16 as i16 as f64),
            0xd2 => Item::Number(self.uint(4)? as u32 as i32 as f64),
            0xd3 => Item::Number(self.uint(8)? as i64 as f64),
            0xca => Item::Number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Item::Number(f64::from_bits(self.uint(8)?)),
            // (No bin 8/16/32, 0xc4-0xc6: Redis's cmsgpack predates them.)
            0xd9 => {
                let n = self.length(1)?;
                Item::Bytes(self.take(n)?)
            }
            0xda => {
                let n = self.length(2)?;
                Item::Bytes(self.take(n)?)
            }
            0xdb => {
                let n = self.length(4)?;
                Item::Bytes(self.take(n)?)
            }
            0xdc => Item::Array(self.length(2)?),
            0xdd => Item::Array(self.length(4)?),
            0xde => Item::Map(self.length(2)?),
            0xdf => Item::Map(self.length(4)?),
            _ => return Err(Stop::Bad),
        })
    }

    /// Reads past one whole value, checking it is complete and not nested too deep. Decoding
    /// checks first so that only well-formed input reaches the Lua stack.
    fn skip(&mut self) -> Result<(), Stop> {
        // Items still expected by each open container (a map's pairs count twice), and for a
        // map the key Lua would refuse, read and waiting for its value.
        struct Level {
            left: usize,
            map: bool,
            bad_key: Option<Stop>,
        }
        let mut open: Vec<Level> = Vec::new();
        loop {
            let item = self.item()?;
            let mut bad_key = match item {
                Item::Nil => Some(Stop::Key("table index is nil")),
                Item::Number(n) if n.is_nan() => Some(Stop::Key("table index is NaN")),
                _ => None,
            };
            let container = match item {
                Item::Array(n) => Some((n, false)),
                Item::Map(n) => Some((n.checked_mul(2).ok_or(Stop::Eof)?, true)),
                _ => None,
            };
            if let Some((left, map)) = container {
                if open.len() >= MAX_DECODE_DEPTH {
                    return Err(Stop::Bad);
                }
                if left > 0 {
                    open.push(Level { left, map, bad_key: None });
                    continue;
                }
            }
            // A whole value ended: it is one item of the container around it, which may
            // end with it in turn.
            loop {
                let Some(level) = open.last_mut() else { return Ok(()) };
                // A map's value completes its pair, stored then.
                if let Some(stop) = level.bad_key.take() {
                    return Err(stop);
                }
                level.left -= 1;
                if level.map && level.left % 2 == 1 {
                    level.bad_key = bad_key;
                }
                if level.left > 0 {
                    break;
                }
                open.pop();
                bad_key = None;
            }
        }
    }

    /// Pushes one value that `skip` passed, with Lua's own API: through mlua every string
    /// and every store would be a protected call of its own. Containers are built without
    /// recursion, so nothing but references lives in Rust frames a Lua error could unwind.
    ///
    /// # Safety
    /// `state` is a Lua state in a protected call; the value was checked by `skip`.
    unsafe fn push(&mut self, state: *mut ffi::lua_State, open: &mut Vec<Open>) {
        loop {
            let Ok(item) = self.item() else { return ffi::lua_pushnil(state) };
            let room = self.data.len() - self.at;
            match item {
                Item::Nil => ffi::lua_pushnil(state),
                Item::Bool(b) => ffi::lua_pushboolean(state, b as i32),
                Item::Number(n) => ffi::lua_pushnumber(state, n),
                Item::Bytes(b) => {
                    ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len());
                }
                Item::Array(n) | Item::Map(n) => {
                    let map = matches!(item, Item::Map(_));
                    ffi::luaL_checkstack(state, 3, c"MessagePack nested too deep".as_ptr());
                    // Sized by what the input could hold, not by what its header claims.
                    let (arr, rec) = if map { (0, n.min(room)) } else { (n.min(room), 0) };
                    ffi::lua_createtable(state, arr as i32, rec as i32);
                    if n > 0 {
                        open.push(Open { left: if map { 2 * n } else { n }, map, index: 1 });
                        continue;
                    }
                }
            }
            // The value on top is whole: store it in the container around it, which may be
            // whole in turn.
            loop {
                let Some(o) = open.last_mut() else { return };
                if o.map {
                    if o.left % 2 == 0 {
                        // A key: it waits on the stack for its value.
                        o.left -= 1;
                        break;
                    }
                    // (`skip` refused keys Lua cannot store.)
                    ffi::lua_rawset(state, -3);
                } else {
                    ffi::lua_rawseti(state, -2, o.index);
                    o.index += 1;
                }
                o.left -= 1;
                if o.left > 0 {
                    break;
                }
                open.pop();
            }
        }
    }
}

/// A container being filled by `Cursor::push`.
struct Open {
    /// Items still to come (a map's keys and values each count).
    left: usize,
    map: bool,
    /// An array's next index.
    index: i64,
}

/// Decodes up to `limit` values (all when 0 and `offset` is 0) from byte `offset`. Unless
/// decoding all, the first value returned is where the next call starts, or -1 at the end.
/// Its errors print them with `%d`, which reads 32 bits of the 64 lua_cmsgpack passes.
fn unpack_full(lua: &Lua, args: &MultiValue, limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let data = check_bytes(args, 1)?;
    let all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32,
            data.len() as i32
        )));
    }
    if offset as usize > data.len() {
        return Err(error(format!("Start offset {} greater than input length {}.", offset as i32, data.len() as i32)));
    }
    let limit = if all { i64::MAX } else { limit };
    let mut c = Cursor { data: &data, at: offset as usize };
    let mut count = 0i64;
    while c.at < data.len() && count < limit {
        match c.skip() {
            Ok(()) => count += 1,
            Err(Stop::Eof) => return Err(error("Missing bytes in input.")),
            Err(Stop::Bad) => return Err(error("Bad data format in input.")),
            Err(Stop::Key(message)) => return Err(super::unplaced_error(message)),
        }
    }
    // lua_cmsgpack checks for room before it pushes each value (the offset first).
    let pushed = count as usize + usize::from(!all);
    let message = "too many return values at once; use unpack_one or unpack_limit instead.";
    if pushed > 0 {
        super::check_stack(args.len() + pushed - 1, 1, message)?;
    }
    let next = if c.at == data.len() { -1.0 } else { c.at as f64 };
    let mut c = Cursor { data: &data, at: offset as usize };
    let mut open = Vec::new();
    let mut values = MultiValue::with_capacity(pushed);
    if !all {
        values.push_back(Value::Number(next));
    }
    // A batch at a time: exec_raw's frame has less room than the 8,000 values a C function
    // may return.
    let mut left = count as usize;
    while left > 0 {
        let batch = left.min(UNPACK_BATCH);
        left -= batch;
        // SAFETY: makes room for, then pushes, the next `batch` values `skip` checked (see
        // `Cursor::push`).
        let pushed: MultiValue = unsafe {
            lua.exec_raw((), |state| {
                ffi::luaL_checkstack(state, batch as i32, c"too many values to unpack".as_ptr());
                for _ in 0..batch {
                    c.push(state, &mut open);
                }
            })?
        };
        values.extend(pushed);
    }
    Ok(values)
}

/// How many decoded values one exec_raw pushes.
const UNPACK_BATCH: usize = 1000;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        function(lua, |lua, args: MultiValue| {
            if args.is_empty() {
                return Err(super::arg_error(0, "MessagePack pack needs input."));
            }
            // lua_cmsgpack asks for room for as many values again (it returns one).
            if 2 * args.len() > super::LUAI_MAXCSTACK {
                return Err(super::arg_error(0, "Too many arguments for MessagePack pack."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(&mut out, v, 0)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set("unpack", function(lua, |lua, args: MultiValue| unpack_full(lua, &args, 0, 0))?)?;
    t.raw_set(
        "unpack_one",
        function(lua, |lua, args: MultiValue| {
            let offset = c_long_long(opt_number(lua, &args, 2, 0.0)?);
            unpack_full(lua, &args, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        function(lua, |lua, args: MultiValue| {
            let limit = c_long_long(super::check_number(lua, &args, 2)?);
            let offset = c_long_long(opt_number(lua, &args, 3, 0.0)?);
            unpack_full(lua, &args, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}
