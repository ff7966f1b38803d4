//! Redis's conversion rules between replies and Lua values: a command's reply as `redis.call`
//! returns it, and a script's return value as the client receives it.

use bytes::BytesMut;
use mlua::{ffi, lua_State, Table, Value};
use shoal_proto::{reply, Frame, Protocol};
use std::ffi::CStr;

/// Tables nested deeper than this are cut off (a script can build a cyclic table).
const MAX_DEPTH: usize = 64;

/// A command's reply in the shape `push_reply` takes for the protocol the script chose: RESP2
/// has no doubles, booleans, big numbers, verbatim strings, maps or sets, so they become what
/// a RESP2 client would get (maps flattened, sets arrays); attributes are dropped.
pub fn normalize(frame: Frame, resp3: bool) -> Frame {
    let all = |items: Vec<Frame>| items.into_iter().map(|f| normalize(f, resp3)).collect();
    match frame {
        Frame::Attribute { frame, .. } => normalize(*frame, resp3),
        Frame::Array(items) => Frame::Array(all(items)),
        Frame::Push(items) => Frame::Array(all(items)),
        Frame::Set(items) if resp3 => Frame::Set(all(items)),
        Frame::Map(pairs) if resp3 => {
            Frame::Map(pairs.into_iter().map(|(k, v)| (normalize(k, resp3), normalize(v, resp3))).collect())
        }
        Frame::Set(items) => Frame::Array(all(items)),
        Frame::Map(pairs) => {
            Frame::Array(pairs.into_iter().flat_map(|(k, v)| [normalize(k, resp3), normalize(v, resp3)]).collect())
        }
        Frame::Double(d) if !resp3 => Frame::Bulk(reply::format_double(d).into()),
        Frame::Boolean(b) if !resp3 => Frame::Integer(b as i64),
        Frame::BigNumber(n) if !resp3 => Frame::Bulk(n),
        Frame::Verbatim { data, .. } if !resp3 => Frame::Bulk(data),
        other => other,
    }
}

/// Pushes a `normalize`d reply as Redis's rules make it a Lua value. RESP2: integers are
/// numbers, bulk strings strings, nil `false`, arrays tables, status `{ok=...}` and errors
/// `{err=...}` (which `redis.call` raises). RESP3 (after `redis.setresp(3)`) adds
/// `{map=...}`, `{set=...}`, `{double=...}`, `{big_number=...}`, `{verbatim_string=...}`,
/// booleans, and nil for null.
///
/// # Safety
/// `state` is the running Lua state with room on its stack. A Lua error (out of memory)
/// raised here unwinds through these frames, which hold only references: `frame` must live
/// outside them.
pub unsafe fn push_reply(state: *mut lua_State, frame: &Frame, resp3: bool) {
    match frame {
        Frame::Simple(s) => push_single(state, c"ok", |state| push_bytes(state, s)),
        Frame::Error(e) | Frame::BlobError(e) => push_single(state, c"err", |state| push_bytes(state, e)),
        Frame::Integer(n) => ffi::lua_pushnumber(state, *n as f64),
        Frame::Bulk(b) => push_bytes(state, b),
        Frame::Null if resp3 => ffi::lua_pushnil(state),
        Frame::Null => ffi::lua_pushboolean(state, 0),
        Frame::Array(items) | Frame::Push(items) => {
            ffi::luaL_checkstack(state, 4, c"reply nested too deep".as_ptr());
            ffi::lua_createtable(state, items.len() as i32, 0);
            for (i, item) in items.iter().enumerate() {
                push_reply(state, item, resp3);
                ffi::lua_rawseti(state, -2, i as i64 + 1);
            }
        }
        Frame::Set(items) => push_single(state, c"set", |state| {
            ffi::luaL_checkstack(state, 4, c"reply nested too deep".as_ptr());
            ffi::lua_createtable(state, 0, items.len() as i32);
            for item in items {
                push_reply(state, item, resp3);
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
            }
        }),
        Frame::Map(pairs) => push_single(state, c"map", |state| {
            ffi::luaL_checkstack(state, 4, c"reply nested too deep".as_ptr());
            ffi::lua_createtable(state, 0, pairs.len() as i32);
            for (k, v) in pairs {
                push_reply(state, k, resp3);
                push_reply(state, v, resp3);
                ffi::lua_rawset(state, -3);
            }
        }),
        Frame::Double(d) => push_single(state, c"double", |state| ffi::lua_pushnumber(state, *d)),
        Frame::Boolean(b) => ffi::lua_pushboolean(state, *b as i32),
        Frame::BigNumber(n) => push_single(state, c"big_number", |state| push_bytes(state, n)),
        Frame::Verbatim { format, data } => push_single(state, c"verbatim_string", |state| {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, format);
            ffi::lua_setfield(state, -2, c"format".as_ptr());
            push_bytes(state, data);
            ffi::lua_setfield(state, -2, c"string".as_ptr());
        }),
        Frame::Attribute { frame, .. } => push_reply(state, frame, resp3),
    }
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
