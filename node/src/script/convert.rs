//! Redis's conversion rules between replies and Lua values: a command's reply as `redis.call`
//! returns it, and a script's return value as the client receives it.

use super::IGNORE_STATS;
use crate::util::float::c_long_long;
use bytes::BytesMut;
use mlua::{ffi, lua_State};
use shoal_proto::{reply, Protocol, Token};
use std::ffi::CStr;

/// Command replies nested deeper than this are not taken apart (none nests near this deep).
const MAX_DEPTH: usize = 64;

/// Pushes the reply at the front of `buf`, as the command wrote it, as Redis's rules make it
/// a Lua value, reading it in place. RESP2: integers are numbers, bulk strings strings, nil
/// `false`, arrays tables, status `{ok=...}` and errors `{err=...}` (which `redis.call`
/// raises); RESP3 types a RESP2 client would not see become what it would get (maps
/// flattened, sets arrays, doubles and big numbers strings, booleans 0/1). RESP3 (after
/// `redis.setresp(3)`) adds `{map=...}`, `{set=...}`, `{double=...}`, `{big_number=...}`,
/// `{verbatim_string=...}`, booleans, and nil for null. Attributes are dropped.
///
/// Returns whether the reply is an error, or None (with nothing pushed) when `buf` does not
/// start with a whole reply.
///
/// # Safety
/// `state` is the running Lua state with room on its stack. A Lua error (out of memory)
/// raised here unwinds through these frames, which hold only references and numbers.
pub unsafe fn push_reply(state: *mut lua_State, buf: &[u8], resp3: bool) -> Option<bool> {
    let top = ffi::lua_gettop(state);
    let failed = matches!(buf.first(), Some(b'-' | b'!'));
    if push_item(state, buf, &mut 0, resp3, 0).is_none() {
        ffi::lua_settop(state, top);
        return None;
    }
    Some(failed)
}

/// Pushes the item at `*pos` (see `push_reply`) and moves past it.
unsafe fn push_item(state: *mut lua_State, buf: &[u8], pos: &mut usize, resp3: bool, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    ffi::luaL_checkstack(state, 4, c"reply nested too deep".as_ptr());
    let items = |state, n: usize, pos: &mut usize| -> Option<()> {
        ffi::lua_createtable(state, n.min(1 << 16) as i32, 0);
        for i in 1..=n {
            push_item(state, buf, pos, resp3, depth + 1)?;
            ffi::lua_rawseti(state, -2, i as i64);
        }
        Some(())
    };
    match Token::read(buf, pos).ok()?? {
        Token::Simple(s) => push_single(state, c"ok", |state| push_bytes(state, s)),
        Token::Error(e) | Token::BlobError(e) => push_single(state, c"err", |state| push_bytes(state, e)),
        Token::Integer(n) => ffi::lua_pushnumber(state, n as f64),
        Token::Bulk(b) => push_bytes(state, b),
        Token::Null if resp3 => ffi::lua_pushnil(state),
        Token::Null => ffi::lua_pushboolean(state, 0),
        Token::Array(n) | Token::Push(n) => items(state, n, pos)?,
        Token::Set(n) if !resp3 => items(state, n, pos)?,
        Token::Map(n) if !resp3 => items(state, n.checked_mul(2)?, pos)?,
        Token::Set(n) => {
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_createtable(state, 0, n.min(1 << 16) as i32);
            for _ in 0..n {
                push_item(state, buf, pos, resp3, depth + 1)?;
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
            }
            ffi::lua_setfield(state, -2, c"set".as_ptr());
        }
        Token::Map(n) => {
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_createtable(state, 0, n.min(1 << 16) as i32);
            for _ in 0..n {
                push_item(state, buf, pos, resp3, depth + 1)?;
                push_item(state, buf, pos, resp3, depth + 1)?;
                ffi::lua_rawset(state, -3);
            }
            ffi::lua_setfield(state, -2, c"map".as_ptr());
        }
        Token::Double(d) if !resp3 => push_bytes(state, reply::format_double(d).as_bytes()),
        Token::Double(d) => push_single(state, c"double", |state| ffi::lua_pushnumber(state, d)),
        Token::Boolean(b) if !resp3 => ffi::lua_pushnumber(state, b as i32 as f64),
        Token::Boolean(b) => ffi::lua_pushboolean(state, b as i32),
        Token::BigNumber(n) if !resp3 => push_bytes(state, n),
        Token::BigNumber(n) => push_single(state, c"big_number", |state| push_bytes(state, n)),
        Token::Verbatim { data, .. } if !resp3 => push_bytes(state, data),
        Token::Verbatim { format, data } => push_single(state, c"verbatim_string", |state| {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, &format);
            ffi::lua_setfield(state, -2, c"format".as_ptr());
            push_bytes(state, data);
            ffi::lua_setfield(state, -2, c"string".as_ptr());
        }),
        Token::Attribute(n) => {
            // The attribute's pairs are read (and dropped), then the reply they annotate.
            for _ in 0..n.checked_mul(2)? {
                push_item(state, buf, pos, resp3, depth + 1)?;
                ffi::lua_settop(state, -2);
            }
            push_item(state, buf, pos, resp3, depth)?;
        }
    }
    Some(())
}

unsafe fn push_bytes(state: *mut lua_State, b: &[u8]) {
    ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len());
}

/// Pushes `{key = <what push_value pushes>}`.
unsafe fn push_single(state: *mut lua_State, key: &CStr, push_value: impl FnOnce(*mut lua_State)) {
    ffi::lua_createtable(state, 0, 1);
    push_value(state);
    ffi::lua_setfield(state, -2, key.as_ptr());
}

/// An error reply a script's value held, for its caller to count: its text, or None when
/// the error table says a command the script ran counted it already (see `IGNORE_STATS`).
pub type WrittenError = Option<Vec<u8>>;

/// Writes the value on top of `state`'s stack (a script's return value) as Redis replies
/// with it, in the client's `proto`: numbers become integers (truncated), strings bulk
/// strings, nil a null; `{err=...}` an error, `{ok=...}` a status, `{double=...}`,
/// `{big_number=...}`, `{verbatim_string={format=..., string=...}}`, `{map=...}` and
/// `{set=...}` those RESP3 types (as a RESP2 client gets them in RESP2), any other table an
/// array up to its first nil. Booleans: `true` 1 and `false` a null, unless the script
/// chose RESP3 (`script_resp3`), when they are booleans. Each error written, at any depth,
/// goes to `errors`. The stack is left as it was.
///
/// # Safety
/// `state` is a Lua state with a value on top. A Lua error (out of memory) raised here
/// unwinds through these frames, which hold only references and numbers.
pub unsafe fn write_reply(
    state: *mut lua_State,
    out: &mut BytesMut,
    proto: Protocol,
    script_resp3: bool,
    errors: &mut Vec<WrittenError>,
) {
    Writer { out, proto, resp3: script_resp3, errors }.top(state);
}

struct Writer<'a> {
    out: &'a mut BytesMut,
    proto: Protocol,
    resp3: bool,
    errors: &'a mut Vec<WrittenError>,
}

impl Writer<'_> {
    unsafe fn top(&mut self, state: *mut lua_State) {
        // Each nested table holds one more slot of the Lua stack, so a deep (or cyclic) table
        // stops where Lua's stack does (~8,000 levels), with Redis's error, where Redis stops.
        if ffi::lua_checkstack(state, 4) == 0 {
            return reply::error(self.out, b"ERR reached lua stack limit");
        }
        match ffi::lua_type(state, -1) {
            ffi::LUA_TSTRING => reply::bulk(self.out, bytes_at(state, -1)),
            ffi::LUA_TNUMBER => reply::integer(self.out, c_long_long(ffi::lua_tonumber(state, -1))),
            ffi::LUA_TBOOLEAN if self.resp3 => reply::boolean(self.out, self.proto, ffi::lua_toboolean(state, -1) != 0),
            ffi::LUA_TBOOLEAN if ffi::lua_toboolean(state, -1) != 0 => reply::integer(self.out, 1),
            ffi::LUA_TTABLE => self.table(state),
            _ => reply::null(self.out, self.proto),
        }
    }

    /// A table on top of the stack, checked for Redis's special fields in Redis's order.
    unsafe fn table(&mut self, state: *mut lua_State) {
        if field(state, c"err") == ffi::LUA_TSTRING {
            let msg = c_string(bytes_at(state, -1));
            reply::error_as_is(self.out, msg);
            // (Redis reads the flag as a boolean, whatever else the field holds.)
            let counted = field_of(state, -2, IGNORE_STATS) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(state, -1) != 0;
            self.errors.push((!counted).then(|| msg.to_vec()));
            ffi::lua_settop(state, -2);
        } else if pop_then(state, c"ok") == ffi::LUA_TSTRING {
            reply::simple(self.out, &no_line_breaks(c_string(bytes_at(state, -1))));
        } else if pop_then(state, c"double") == ffi::LUA_TNUMBER {
            reply::double(self.out, self.proto, ffi::lua_tonumber(state, -1));
        } else if pop_then(state, c"big_number") == ffi::LUA_TSTRING {
            reply::big_number(self.out, self.proto, &no_line_breaks(bytes_at(state, -1)));
        } else if pop_then(state, c"verbatim_string") == ffi::LUA_TTABLE && write_verbatim(state, self.out, self.proto)
        {
        } else if pop_then(state, c"map") == ffi::LUA_TTABLE {
            reply::map_len(self.out, self.proto, entries(state));
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                // Stack: table, map, key, value. The key is written from a copy: the next
                // lua_next needs it as it was.
                ffi::lua_pushvalue(state, -2);
                self.top(state);
                ffi::lua_settop(state, -2);
                self.top(state);
                ffi::lua_settop(state, -2);
            }
        } else if pop_then(state, c"set") == ffi::LUA_TTABLE {
            reply::set_len(self.out, self.proto, entries(state));
            ffi::lua_pushnil(state);
            while ffi::lua_next(state, -2) != 0 {
                ffi::lua_settop(state, -2);
                ffi::lua_pushvalue(state, -1);
                self.top(state);
                ffi::lua_settop(state, -2);
            }
        } else {
            ffi::lua_settop(state, -2);
            let mut n = 0;
            while {
                ffi::lua_rawgeti(state, -1, n as i64 + 1);
                let more = ffi::lua_type(state, -1) != ffi::LUA_TNIL;
                ffi::lua_settop(state, -2);
                more
            } {
                n += 1;
            }
            reply::array_len(self.out, n);
            for i in 1..=n {
                ffi::lua_rawgeti(state, -1, i as i64);
                self.top(state);
                ffi::lua_settop(state, -2);
            }
            return;
        }
        ffi::lua_settop(state, -2);
    }
}

/// `{format=..., string=...}` on top of the stack as a verbatim string; false (and nothing
/// written) when either field is missing or the format is not three bytes.
unsafe fn write_verbatim(state: *mut lua_State, out: &mut BytesMut, proto: Protocol) -> bool {
    let written = field(state, c"format") == ffi::LUA_TSTRING && {
        let format = bytes_at(state, -1);
        let written = field_of(state, -2, c"string") == ffi::LUA_TSTRING
            && <[u8; 3]>::try_from(format).is_ok_and(|f| {
                reply::verbatim(out, proto, &f, bytes_at(state, -1));
                true
            });
        ffi::lua_settop(state, -2);
        written
    };
    ffi::lua_settop(state, -2);
    written
}

/// Pushes `t[name]` for the table on top of the stack; returns its type.
unsafe fn field(state: *mut lua_State, name: &CStr) -> i32 {
    field_of(state, -1, name)
}

/// Pushes `t[name]` for the table at `index` (relative to the top, before the push); returns
/// its type.
unsafe fn field_of(state: *mut lua_State, index: i32, name: &CStr) -> i32 {
    ffi::lua_pushstring(state, name.as_ptr());
    ffi::lua_rawget(state, index - 1);
    ffi::lua_type(state, -1)
}

/// Pops the field `field` pushed and pushes `name` instead.
unsafe fn pop_then(state: *mut lua_State, name: &CStr) -> i32 {
    ffi::lua_settop(state, -2);
    field(state, name)
}

/// How many entries the table on top of the stack has.
unsafe fn entries(state: *mut lua_State) -> usize {
    let mut n = 0;
    ffi::lua_pushnil(state);
    while ffi::lua_next(state, -2) != 0 {
        ffi::lua_settop(state, -2);
        n += 1;
    }
    n
}

/// The string at `index` (which must be a string: numbers would be converted in place).
unsafe fn bytes_at<'a>(state: *mut lua_State, index: i32) -> &'a [u8] {
    let mut len = 0;
    let p = ffi::lua_tolstring(state, index, &mut len);
    std::slice::from_raw_parts(p.cast(), len)
}

/// The text Redis reads of an error or status (`sdsnew` of a C string): up to the first NUL.
pub fn c_string(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |end| &b[..end])
}

/// Redis replaces line breaks in status replies and big numbers with spaces.
fn no_line_breaks(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect()
}
