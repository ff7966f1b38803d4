//! `cjson`: JSON as lua-cjson 2.1 (Redis's copy) writes and reads it: numbers with `%.14g`,
//! `/` escaped, an empty table as `{}`, excessively sparse arrays refused, `cjson.null` for
//! JSON null, and lua-cjson's error texts (`Expected value but found T_END at character 1`).

use super::{arg_error, check_bytes, error, format_g, function};
use mlua::{ffi, LightUserData, Lua, MultiValue, Table, Value};
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// lua-cjson's settings, changed by its `encode_*`/`decode_*` functions for the whole VM.
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: usize,
    decode_max_depth: usize,
    precision: usize,
    /// 0: refuse NaN and Inf, 1: write them as `nan`/`inf`, 2: write null.
    encode_invalid: u8,
    decode_invalid: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            encode_invalid: 0,
            decode_invalid: true,
        }
    }
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn cannot(what: &str, reason: &str) -> mlua::Error {
    error(format!("Cannot serialise {what}: {reason}"))
}

struct Encoder {
    cfg: Config,
    out: Vec<u8>,
}

impl Encoder {
    fn value(&mut self, v: &Value, depth: usize) -> mlua::Result<()> {
        match v {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(i) => self.number(*i as f64)?,
            Value::Number(n) => self.number(*n)?,
            Value::Boolean(b) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => super::nested(|| self.table(t, depth + 1))?,
            other => return Err(cannot(super::type_name(Some(other)), "type not supported")),
        }
        Ok(())
    }

    fn number(&mut self, n: f64) -> mlua::Result<()> {
        if !n.is_finite() {
            match self.cfg.encode_invalid {
                0 => return Err(cannot("number", "must not be NaN or Inf")),
                2 => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
                // (lua_cjson writes NaN without the sign glibc would give it.)
                _ if n.is_nan() => {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
                _ => {}
            }
        }
        self.out.extend_from_slice(format_g(n, self.cfg.precision).as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &b in s {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                0..=0x1f | 0x7f => self.out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    /// The array length of `t` if all its keys are positive integers, refusing (or, when
    /// converting, treating as an object) arrays with too many holes.
    fn array_len(&self, t: &Table) -> mlua::Result<Option<usize>> {
        let Some((items, max)) = super::array_keys(t)? else { return Ok(None) };
        let (items, max) = (items as i64, max as i64);
        let c = &self.cfg;
        if c.sparse_ratio > 0 && max > items * c.sparse_ratio && max > c.sparse_safe {
            if !c.sparse_convert {
                return Err(cannot("table", "excessively sparse array"));
            }
            return Ok(None);
        }
        Ok((max > 0).then_some(max as usize))
    }

    fn table(&mut self, t: &Table, depth: usize) -> mlua::Result<()> {
        if depth > self.cfg.encode_max_depth {
            return Err(error(format!("Cannot serialise, excessive nesting ({depth})")));
        }
        if let Some(len) = self.array_len(t)? {
            self.out.push(b'[');
            for i in 1..=len {
                if i > 1 {
                    self.out.push(b',');
                }
                self.value(&t.raw_get::<Value>(i)?, depth)?;
            }
            self.out.push(b']');
            return Ok(());
        }
        self.out.push(b'{');
        let mut first = true;
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, v) = pair?;
            if !first {
                self.out.push(b',');
            }
            first = false;
            match &k {
                Value::String(s) => self.string(&s.as_bytes()),
                Value::Integer(_) | Value::Number(_) => {
                    self.out.push(b'"');
                    self.number(super::number(&k))?;
                    self.out.push(b'"');
                }
                _ => return Err(cannot(super::type_name(Some(&k)), "table key must be a number or string")),
            }
            self.out.push(b':');
            self.value(&v, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// lua-cjson's token kinds, named as its errors name them.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ObjBegin => "T_OBJ_BEGIN",
            Kind::ObjEnd => "T_OBJ_END",
            Kind::ArrBegin => "T_ARR_BEGIN",
            Kind::ArrEnd => "T_ARR_END",
            Kind::Str => "T_STRING",
            Kind::Num => "T_NUMBER",
            Kind::Bool => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error(msg) => msg,
        }
    }
}

struct Token {
    kind: Kind,
    at: usize,
    value: Scalar,
}

/// A JSON value that is no container. Strings are ranges of the decoder's `strings`.
#[derive(Clone)]
enum Scalar {
    None,
    Str(Range<usize>),
    Num(f64),
    Bool(bool),
    Null,
}

/// What the parser found, in document order: `build` makes the Lua values of it. Parsing
/// first keeps Lua out of the parser (no reference per value, no error halfway through a
/// table) and lets `build` make the tables without recursion.
enum Item {
    Scalar(Scalar),
    /// An object or array opens; its items follow (an object's keys and values in turn).
    Begin {
        object: bool,
    },
    End,
}

struct Decoder<'a> {
    cfg: Config,
    s: &'a [u8],
    at: usize,
    depth: usize,
    /// Lua stack slots the values being built will hold at this depth, as lua-cjson counts
    /// them: each open array one (its table), each open object two (its table and a key).
    slots: usize,
    items: Vec<Item>,
    strings: Vec<u8>,
}

impl Decoder<'_> {
    fn token(&mut self) -> mlua::Result<Token> {
        while self.s.get(self.at).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
        let at = self.at;
        let tok = |kind| Ok(Token { kind, at, value: Scalar::None });
        // lua_cjson reads a C string: a NUL ends the input wherever it comes.
        let Some(&c) = self.s.get(at).filter(|&&c| c != 0) else { return tok(Kind::End) };
        let single = match c {
            b'{' => Some(Kind::ObjBegin),
            b'}' => Some(Kind::ObjEnd),
            b'[' => Some(Kind::ArrBegin),
            b']' => Some(Kind::ArrEnd),
            b':' => Some(Kind::Colon),
            b',' => Some(Kind::Comma),
            _ => None,
        };
        if let Some(kind) = single {
            self.at += 1;
            return tok(kind);
        }
        if c == b'"' {
            let start = self.strings.len();
            return match self.string() {
                Ok(()) => Ok(Token { kind: Kind::Str, at, value: Scalar::Str(start..self.strings.len()) }),
                Err((msg, at)) => Ok(Token { kind: Kind::Error(msg), at, value: Scalar::None }),
            };
        }
        for (word, kind, value) in [
            ("true", Kind::Bool, Scalar::Bool(true)),
            ("false", Kind::Bool, Scalar::Bool(false)),
            ("null", Kind::Null, Scalar::Null),
        ] {
            if self.s[at..].starts_with(word.as_bytes()) {
                self.at += word.len();
                return Ok(Token { kind, at, value });
            }
        }
        // As lua_cjson decides: numbers JSON forbids (hex, a leading `+` or zero, inf, nan) go
        // to strtod only with decode_invalid_numbers, and then whatever strtod reads is taken.
        let invalid = is_invalid_number(&self.s[at..]);
        if c == b'-' || c.is_ascii_digit() || (self.cfg.decode_invalid && invalid) {
            if !self.cfg.decode_invalid && invalid {
                return tok(Kind::Error("invalid number"));
            }
            return match strtod(&self.s[at..]) {
                Some((n, used)) => {
                    self.at += used;
                    Ok(Token { kind: Kind::Num, at, value: Scalar::Num(n) })
                }
                None => tok(Kind::Error("invalid number")),
            };
        }
        tok(Kind::Error("invalid token"))
    }

    /// A string token's bytes, escapes resolved (`\uXXXX` to UTF-8, surrogate pairs joined),
    /// added to `strings`; or the error and where it is (the escape's backslash, or the end).
    fn string(&mut self) -> Result<(), (&'static str, usize)> {
        self.at += 1;
        loop {
            let Some(&c) = self.s.get(self.at).filter(|&&c| c != 0) else {
                return Err(("unexpected end of string", self.at));
            };
            let escape = self.at;
            self.at += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else { return Err(("invalid escape code", escape)) };
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' => self.strings.push(e),
                        b'b' => self.strings.push(0x08),
                        b'f' => self.strings.push(0x0c),
                        b'n' => self.strings.push(b'\n'),
                        b'r' => self.strings.push(b'\r'),
                        b't' => self.strings.push(b'\t'),
                        b'u' => {
                            let ch = self.unicode().ok_or(("invalid unicode escape code", escape))?;
                            let mut buf = [0u8; 4];
                            self.strings.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(("invalid escape code", escape)),
                    }
                }
                _ => self.strings.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.at..self.at + 4)?;
        let n = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.at += 4;
        Some(n)
    }

    fn unicode(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xdc00..0xe000).contains(&hi) {
            return None;
        }
        if (0xd800..0xdc00).contains(&hi) {
            if self.s.get(self.at..self.at + 2) != Some(b"\\u") {
                return None;
            }
            self.at += 2;
            let lo = self.hex4()?;
            if !(0xdc00..0xe000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
        }
        char::from_u32(hi)
    }

    fn fail(&self, expected: &str, t: &Token) -> mlua::Error {
        error(format!("Expected {expected} but found {} at character {}", t.kind.name(), t.at + 1))
    }

    /// Opens an object or array, within lua-cjson's limits: `decode_max_depth`, and the Lua
    /// stack's room for the values being built (`slots` more for this one).
    fn descend(&mut self, t: &Token, slots: usize) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.cfg.decode_max_depth || self.slots + slots > super::LUAI_MAXCSTACK {
            return Err(error(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                t.at + 1
            )));
        }
        self.slots += slots - 1;
        self.items.push(Item::Begin { object: t.kind == Kind::ObjBegin });
        Ok(())
    }

    fn ascend(&mut self, slots: usize) {
        self.depth -= 1;
        self.slots -= slots - 1;
        self.items.push(Item::End);
    }

    fn value(&mut self, t: Token) -> mlua::Result<()> {
        match t.kind {
            Kind::Str | Kind::Num | Kind::Bool | Kind::Null => {
                self.items.push(Item::Scalar(t.value));
                Ok(())
            }
            Kind::ObjBegin => super::nested(|| self.object(t)),
            Kind::ArrBegin => super::nested(|| self.array(t)),
            _ => Err(self.fail("value", &t)),
        }
    }

    fn object(&mut self, open: Token) -> mlua::Result<()> {
        self.descend(&open, 3)?;
        let mut t = self.token()?;
        if t.kind != Kind::ObjEnd {
            loop {
                if t.kind != Kind::Str {
                    return Err(self.fail("object key string", &t));
                }
                self.items.push(Item::Scalar(t.value));
                let colon = self.token()?;
                if colon.kind != Kind::Colon {
                    return Err(self.fail("colon", &colon));
                }
                let v = self.token()?;
                self.value(v)?;
                let next = self.token()?;
                match next.kind {
                    Kind::ObjEnd => break,
                    Kind::Comma => t = self.token()?,
                    _ => return Err(self.fail("comma or object end", &next)),
                }
            }
        }
        self.ascend(3);
        Ok(())
    }

    fn array(&mut self, open: Token) -> mlua::Result<()> {
        self.descend(&open, 2)?;
        let mut t = self.token()?;
        if t.kind != Kind::ArrEnd {
            loop {
                self.value(t)?;
                let next = self.token()?;
                match next.kind {
                    Kind::ArrEnd => break,
                    Kind::Comma => t = self.token()?,
                    _ => return Err(self.fail("comma or array end", &next)),
                }
            }
        }
        self.ascend(2);
        Ok(())
    }

    /// The Lua value of what was parsed, its tables made with Lua's own API (through mlua,
    /// every string and every store would be a protected call of its own).
    fn build(&self, lua: &Lua) -> mlua::Result<Value> {
        // Each open table: whether it is an object, and how many items it has had.
        let mut open: Vec<(bool, i64)> = Vec::with_capacity(16);
        // SAFETY: pushes one value per item, with room checked (`descend` kept the depth
        // within the stack: this frame starts empty), and stores each whole value in the
        // table below it. Nothing but references lives in this frame should Lua raise an
        // error (out of memory).
        unsafe {
            lua.exec_raw((), |state| {
                for item in &self.items {
                    // (Lua's own check: mlua's `luaL_checkstack` asks for 20 slots more.)
                    if ffi::lua_checkstack(state, 2) == 0 {
                        ffi::luaL_error(state, c"stack overflow (JSON nested too deep)".as_ptr());
                    }
                    match item {
                        Item::Begin { object } => {
                            ffi::lua_createtable(state, 0, 0);
                            open.push((*object, 0));
                            continue;
                        }
                        Item::Scalar(Scalar::Str(r)) => {
                            ffi::lua_pushlstring(state, self.strings[r.clone()].as_ptr().cast(), r.len());
                        }
                        Item::Scalar(Scalar::Num(n)) => ffi::lua_pushnumber(state, *n),
                        Item::Scalar(Scalar::Bool(b)) => ffi::lua_pushboolean(state, *b as i32),
                        Item::Scalar(Scalar::Null) => ffi::lua_pushlightuserdata(state, std::ptr::null_mut()),
                        Item::Scalar(Scalar::None) => ffi::lua_pushnil(state),
                        Item::End => {
                            open.pop();
                        }
                    }
                    // A whole value is on top: an object's key waits for its value.
                    let Some((object, n)) = open.last_mut() else { break };
                    *n += 1;
                    if !*object {
                        ffi::lua_rawseti(state, -2, *n);
                    } else if *n % 2 == 0 {
                        ffi::lua_rawset(state, -3);
                    }
                }
            })
        }
    }
}

/// Reads an optional setting argument: a number within `range`, or a boolean.
fn setting(lua: &Lua, args: &MultiValue, n: usize, range: (f64, f64)) -> mlua::Result<Option<f64>> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(*b as u8 as f64)),
        _ => {
            let x = super::check_number(lua, args, n)?;
            if x < range.0 || x > range.1 {
                return Err(arg_error(n, &format!("expected integer between {} and {}", range.0, range.1)));
            }
            Ok(Some(x))
        }
    }
}

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let cfg = Arc::new(Mutex::new(Config::default()));
    let get = |cfg: &Arc<Mutex<Config>>| *cfg.lock().unwrap_or_else(|e| e.into_inner());
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set(
        "encode",
        function(lua, move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(arg_error(1, "expected 1 argument"));
            }
            let mut e = Encoder { cfg: get(&c), out: Vec::new() };
            e.value(&args[0], 0)?;
            lua.create_string(e.out)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        function(lua, move |lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(arg_error(1, "expected 1 argument"));
            }
            let s = check_bytes(&args, 1)?;
            if s.len() >= 2 && (s[0] == 0 || s[1] == 0) {
                return Err(error("JSON parser does not support UTF-16 or UTF-32"));
            }
            let mut d =
                Decoder { cfg: get(&c), s: &s, at: 0, depth: 0, slots: 1, items: Vec::new(), strings: Vec::new() };
            let first = d.token()?;
            d.value(first)?;
            let end = d.token()?;
            if end.kind != Kind::End {
                return Err(d.fail("the end", &end));
            }
            d.build(lua)
        })?,
    )?;
    type Field = fn(&mut Config) -> &mut usize;
    let sizes: [(&str, f64, Field); 3] = [
        ("encode_max_depth", i32::MAX as f64, |c| &mut c.encode_max_depth),
        ("decode_max_depth", i32::MAX as f64, |c| &mut c.decode_max_depth),
        ("encode_number_precision", 14.0, |c| &mut c.precision),
    ];
    for (name, max, field) in sizes {
        let c = cfg.clone();
        t.raw_set(
            name,
            function(lua, move |lua, args: MultiValue| {
                let mut cfg = c.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = setting(lua, &args, 1, (1.0, max))? {
                    *field(&mut cfg) = n as usize;
                }
                Ok(*field(&mut cfg) as f64)
            })?,
        )?;
    }
    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        function(lua, move |lua, args: MultiValue| {
            let mut cfg = c.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = setting(lua, &args, 1, (0.0, 1.0))? {
                cfg.sparse_convert = b != 0.0;
            }
            if let Some(r) = setting(lua, &args, 2, (0.0, i32::MAX as f64))? {
                cfg.sparse_ratio = r as i64;
            }
            if let Some(s) = setting(lua, &args, 3, (0.0, i32::MAX as f64))? {
                cfg.sparse_safe = s as i64;
            }
            Ok((cfg.sparse_convert, cfg.sparse_ratio as f64, cfg.sparse_safe as f64))
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_invalid_numbers",
        function(lua, move |lua, v: Option<Value>| {
            let mut cfg = c.lock().unwrap_or_else(|e| e.into_inner());
            match v {
                Some(Value::Boolean(b)) => cfg.encode_invalid = b as u8,
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"null" => cfg.encode_invalid = 2,
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"on" => cfg.encode_invalid = 1,
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"off" => cfg.encode_invalid = 0,
                _ => {}
            }
            Ok(match cfg.encode_invalid {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode_invalid_numbers",
        function(lua, move |_, v: Option<bool>| {
            let mut cfg = c.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = v {
                cfg.decode_invalid = b;
            }
            Ok(cfg.decode_invalid)
        })?,
    )?;
    // lua-cjson keeps its encode buffer between calls when this is on; here there is none.
    t.raw_set("encode_keep_buffer", function(lua, |_, v: Option<bool>| Ok(v.unwrap_or(true)))?)?;
    // cjson.new(): another instance of the module, with settings of its own.
    t.raw_set("new", function(lua, |lua, ()| library(lua))?)?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// lua_cjson's `json_is_invalid_number`: whether `p` starts a number JSON does not allow.
fn is_invalid_number(p: &[u8]) -> bool {
    if p.first() == Some(&b'+') {
        return true;
    }
    let p = p.strip_prefix(b"-").unwrap_or(p);
    match p.first() {
        Some(b'0') => p.get(1).is_some_and(|&c| c | 0x20 == b'x' || c.is_ascii_digit()),
        Some(&c) if c <= b'9' => false,
        None => false,
        Some(_) => p.len() >= 3 && (p[..3].eq_ignore_ascii_case(b"inf") || p[..3].eq_ignore_ascii_case(b"nan")),
    }
}

/// The C library's `strtod` at the front of `s`, as lua_cjson calls it: the number and how many
/// bytes it took, or None if it took none.
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    // Only these can be part of what strtod reads (decimal, hex, inf, nan(...)); a copy of them
    // is NUL-terminated for it, so a long document is not copied at every number.
    let run = s
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_' | b'(' | b')'))
        .count();
    let text = std::ffi::CString::new(&s[..run]).ok()?;
    let mut end: *mut std::os::raw::c_char = std::ptr::null_mut();
    // SAFETY: `text` is NUL-terminated and outlives the call; strtod sets `end` within it.
    let n = unsafe { libc::strtod(text.as_ptr(), &mut end) };
    let used = end as usize - text.as_ptr() as usize;
    (used > 0).then_some((n, used))
}
