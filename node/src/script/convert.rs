//! Redis's conversion rules between replies and Lua values: a command's reply as `redis.call`
//! returns it, and a script's return value as the client receives it.

use bytes::BytesMut;
use mlua::{Lua, Table, Value};
use shoal_proto::{reply, Frame, Protocol};

/// Tables nested deeper than this are cut off (a script can build a cyclic table).
const MAX_DEPTH: usize = 64;

/// A command's reply as a Lua value. RESP2: integers are numbers, bulk strings strings, nil
/// `false`, arrays tables, status `{ok=...}` and errors `{err=...}` (the caller raises those
/// for `redis.call`). RESP3 (after `redis.setresp(3)`) adds `{map=...}`, `{set=...}`,
/// `{double=...}`, `{big_number=...}`, `{verbatim_string=...}`, booleans, and nil for null.
pub fn frame_to_lua(lua: &Lua, frame: Frame, resp3: bool) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Simple(s) => Value::Table(single(lua, "ok", Value::String(lua.create_string(&s)?))?),
        Frame::Error(e) | Frame::BlobError(e) => {
            Value::Table(single(lua, "err", Value::String(lua.create_string(&e)?))?)
        }
        Frame::Integer(n) => Value::Integer(n),
        Frame::Bulk(b) => Value::String(lua.create_string(&b)?),
        Frame::Null if resp3 => Value::Nil,
        Frame::Null => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) if !resp3 && plain(&items, 0) => {
            // SAFETY: `push_plain` only pushes values and stores them in tables it created;
            // a Lua error unwinds to exec_raw's protected call past frames that hold only
            // references.
            Value::Table(unsafe { lua.exec_raw((), |state| push_plain(state, &items)) }?)
        }
        Frame::Array(items) | Frame::Push(items) => Value::Table(array(lua, items, resp3)?),
        Frame::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(frame_to_lua(lua, item, resp3)?, true)?;
            }
            Value::Table(single(lua, "set", Value::Table(set))?)
        }
        Frame::Set(items) => Value::Table(array(lua, items, resp3)?),
        Frame::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(frame_to_lua(lua, k, resp3)?, frame_to_lua(lua, v, resp3)?)?;
            }
            Value::Table(single(lua, "map", Value::Table(map))?)
        }
        Frame::Map(pairs) => Value::Table(array(lua, pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(), resp3)?),
        Frame::Double(d) if resp3 => Value::Table(single(lua, "double", Value::Number(d))?),
        Frame::Double(d) => Value::String(lua.create_string(reply::format_double(d))?),
        Frame::Boolean(b) if resp3 => Value::Boolean(b),
        Frame::Boolean(b) => Value::Integer(b as i64),
        Frame::BigNumber(n) if resp3 => Value::Table(single(lua, "big_number", Value::String(lua.create_string(&n)?))?),
        Frame::BigNumber(n) => Value::String(lua.create_string(&n)?),
        Frame::Verbatim { format, data } if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", lua.create_string(format)?)?;
            v.raw_set("string", lua.create_string(&data)?)?;
            Value::Table(single(lua, "verbatim_string", Value::Table(v))?)
        }
        Frame::Verbatim { data, .. } => Value::String(lua.create_string(&data)?),
        Frame::Attribute { frame, .. } => frame_to_lua(lua, *frame, resp3)?,
    })
}

fn single(lua: &Lua, key: &str, v: Value) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set(key, v)?;
    Ok(t)
}

/// Whether an array reply holds only bulk strings, integers, nulls and such arrays (what
/// HGETALL, ZRANGE, LRANGE, MGET return): those convert in one protected call
/// (`push_plain`) rather than one per element.
fn plain(items: &[Frame], depth: usize) -> bool {
    depth < MAX_DEPTH
        && items.iter().all(|f| match f {
            Frame::Bulk(_) | Frame::Integer(_) | Frame::Null => true,
            Frame::Array(inner) => plain(inner, depth + 1),
            _ => false,
        })
}

/// Pushes a `plain` array as a Lua table (RESP2 rules: nil is `false`).
unsafe fn push_plain(state: *mut mlua::lua_State, items: &[Frame]) {
    use mlua::ffi;
    ffi::lua_createtable(state, items.len() as i32, 0);
    for (i, item) in items.iter().enumerate() {
        match item {
            Frame::Bulk(b) => {
                ffi::lua_pushlstring(state, b.as_ptr().cast(), b.len());
            }
            Frame::Integer(n) => ffi::lua_pushnumber(state, *n as f64),
            Frame::Array(inner) => push_plain(state, inner),
            _ => ffi::lua_pushboolean(state, 0),
        }
        ffi::lua_rawseti(state, -2, i as i64 + 1);
    }
}

fn array(lua: &Lua, items: Vec<Frame>, resp3: bool) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, frame_to_lua(lua, item, resp3)?)?;
    }
    Ok(t)
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
