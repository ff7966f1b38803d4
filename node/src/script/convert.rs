//! Redis's conversion rules between replies and Lua values: a command's reply as `redis.call`
//! returns it, and a script's return value as the client receives it.

use bytes::BytesMut;
use mlua::{ffi, lua_State, Table, Value};
use shoal_proto::{reply, Protocol, Token};
use std::ffi::CStr;

/// Tables nested deeper than this are cut off (a script can build a cyclic table).
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

/// Writes a script's return value as Redis does: numbers become integers (truncated), strings
/// bulk strings, `true` 1, `false` and nil a null, `{err=...}` an error, `{ok=...}` a status,
/// any other table an array up to its first nil.
pub fn write_lua_reply(out: &mut BytesMut, proto: Protocol, v: &Value) {
    write_value(out, proto, v, 0);
}

fn write_value(out: &mut BytesMut, proto: Protocol, v: &Value, depth: usize) {
    match v {
        Value::String(s) => reply::bulk(out, &s.as_bytes()),
        Value::Integer(n) => reply::integer(out, *n),
        Value::Number(n) => reply::integer(out, *n as i64),
        Value::Boolean(true) => reply::integer(out, 1),
        Value::Table(t) if depth < MAX_DEPTH => write_table(out, proto, t, depth),
        Value::Table(_) => reply::error(out, b"ERR reached lua stack limit"),
        _ => reply::null(out, proto),
    }
}

fn write_table(out: &mut BytesMut, proto: Protocol, t: &Table, depth: usize) {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        let mut msg = e.as_bytes().to_vec();
        if !msg.starts_with(b"-") {
            msg.insert(0, b'-');
        }
        return reply::error(out, &msg);
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        let status: Vec<u8> = s.as_bytes().iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
        return reply::simple(out, &status);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    reply::array_len(out, items.len());
    for item in &items {
        write_value(out, proto, item, depth + 1);
    }
}
