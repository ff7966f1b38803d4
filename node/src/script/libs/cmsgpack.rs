//! `cmsgpack`: MessagePack as Redis's lua-cmsgpack writes and reads it. Integral numbers take
//! the smallest integer encoding, other numbers float32 when that is exact and float64
//! otherwise; a table whose keys are exactly 1..n is an array, any other a map; tables nested
//! deeper than 16 are written as nil.

use super::{check_bytes, error, function, opt_number};
use mlua::{Lua, MultiValue, Table, Value};

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
    if n.is_finite() && (n as i64) as f64 == n {
        encode_int(out, n as i64);
    } else if (n as f32) as f64 == n || n.is_nan() {
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
    Lua(mlua::Error),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Self {
        Stop::Lua(e)
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
    /// Containers open around the value being read: bounded, so hostile input cannot
    /// exhaust the stack.
    depth: usize,
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

    fn decode(&mut self, lua: &Lua) -> Result<Value, Stop> {
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Value::Number(b as f64),
            0xe0..=0xff => Value::Number(b as i8 as f64),
            0xa0..=0xbf => self.string(lua, (b & 0x1f) as usize)?,
            0x90..=0x9f => super::nested(|| self.array(lua, (b & 0x0f) as usize))?,
            0x80..=0x8f => super::nested(|| self.map(lua, (b & 0x0f) as usize))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xcc => Value::Number(self.uint(1)? as f64),
            0xcd => Value::Number(self.uint(2)? as f64),
            0xce => Value::Number(self.uint(4)? as f64),
            0xcf => Value::Number(self.uint(8)? as f64),
            0xd0 => Value::Number(self.uint(1)? as u8 as i8 as f64),
            0xd1 => Value::Number(self.uint(2)? as u16 as i16 as f64),
            0xd2 => Value::Number(self.uint(4)? as u32 as i32 as f64),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xca => Value::Number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)?
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)?
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)?
            }
            0xdc => {
                let n = self.uint(2)? as usize;
                super::nested(|| self.array(lua, n))?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                super::nested(|| self.array(lua, n))?
            }
            0xde => {
                let n = self.uint(2)? as usize;
                super::nested(|| self.map(lua, n))?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                super::nested(|| self.map(lua, n))?
            }
            _ => return Err(Stop::Bad),
        })
    }

    fn string(&mut self, lua: &Lua, n: usize) -> Result<Value, Stop> {
        Ok(Value::String(lua.create_string(self.take(n)?)?))
    }

    fn enter(&mut self) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DECODE_DEPTH {
            return Err(Stop::Bad);
        }
        Ok(())
    }

    fn array(&mut self, lua: &Lua, n: usize) -> Result<Value, Stop> {
        self.enter()?;
        // Sized by what the input could hold, not by what its header claims.
        let t = lua.create_table_with_capacity(n.min(self.data.len() - self.at), 0)?;
        for i in 1..=n {
            t.raw_set(i, self.decode(lua)?)?;
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> Result<Value, Stop> {
        self.enter()?;
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.decode(lua)?;
            let v = self.decode(lua)?;
            if !k.is_nil() {
                t.raw_set(k, v)?;
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }
}

/// Decodes up to `limit` values (all when 0 and `offset` is 0) from byte `offset`. Unless
/// decoding all, the first value returned is where the next call starts, or -1 at the end.
fn unpack_full(lua: &Lua, args: &MultiValue, limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let data = check_bytes(args, 1)?;
    let all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(error(format!("Invalid request to unpack with offset of {offset} and limit of {}.", data.len())));
    }
    if offset as usize > data.len() {
        return Err(error(format!("Start offset {offset} greater than input length {}.", data.len())));
    }
    let limit = if all { i64::MAX } else { limit };
    let mut c = Cursor { data: &data, at: offset as usize, depth: 0 };
    let mut out = Vec::new();
    while c.at < data.len() && (out.len() as i64) < limit {
        match c.decode(lua) {
            Ok(v) => out.push(v),
            Err(Stop::Eof) => return Err(error("Missing bytes in input.")),
            Err(Stop::Bad) => return Err(error("Bad data format in input.")),
            Err(Stop::Lua(e)) => return Err(e),
        }
    }
    if !all {
        let next = if c.at == data.len() { -1.0 } else { c.at as f64 };
        out.insert(0, Value::Number(next));
    }
    Ok(MultiValue::from_iter(out))
}

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        function(lua, |lua, args: MultiValue| {
            if args.is_empty() {
                return Err(super::arg_error(0, "MessagePack pack needs input."));
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
            let offset = opt_number(lua, &args, 2, 0.0)? as i64;
            unpack_full(lua, &args, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        function(lua, |lua, args: MultiValue| {
            let limit = super::check_number(lua, &args, 2)? as i64;
            let offset = opt_number(lua, &args, 3, 0.0)? as i64;
            unpack_full(lua, &args, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}
