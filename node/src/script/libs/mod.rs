//! The libraries Redis gives scripts beyond Lua's own: `bit`, `struct`, `cmsgpack` and
//! `cjson`, written here with the behaviour of the C libraries Redis bundles (LuaBitOp,
//! Roberto Ierusalimschy's struct, antirez's lua-cmsgpack, lua-cjson 2.1).
//!
//! Their errors are plain Lua errors with those libraries' texts, so a script's `pcall` sees
//! the same message it would in Redis.

mod bit;
mod cjson;
mod cmsgpack;
mod structs;

use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

/// Builds the four library tables into `into` (the prelude exposes them read-only).
pub fn install(lua: &Lua, into: &Table) -> mlua::Result<()> {
    into.raw_set("bit", bit::library(lua)?)?;
    into.raw_set("struct", structs::library(lua)?)?;
    into.raw_set("cmsgpack", cmsgpack::library(lua)?)?;
    into.raw_set("cjson", cjson::library(lua)?)?;
    Ok(())
}

/// A Lua error with `msg` as its text.
fn error(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// An error Lua itself raises inside a C library function (`lua_settable`'s "table index is
/// nil"): `luaG_runerror` places an error only when Lua code is running, so it has no
/// position, unlike the libraries' `luaL_error`.
fn unplaced_error(msg: &str) -> mlua::Error {
    mlua::Error::external(Unplaced(msg.to_owned()))
}

#[derive(Debug)]
struct Unplaced(String);

impl std::fmt::Display for Unplaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unplaced {}

/// How many values a C function may have on its stack (Lua's `LUAI_MAXCSTACK`).
const LUAI_MAXCSTACK: usize = 8000;

/// What mlua's frames take of that room as a function returns (up to ~180 slots, more for
/// strings and tables than for numbers).
const MLUA_RESERVE: usize = 250;

/// `luaL_checkstack(L, extra, msg)` in a C function that has `on_stack` values (its arguments
/// and what it pushed so far): the C libraries' limit on how many values they return, with
/// their words. It comes `MLUA_RESERVE` values sooner than in Redis, where mlua's own
/// "out of Lua stack" would.
fn check_stack(on_stack: usize, extra: usize, msg: &str) -> mlua::Result<()> {
    if on_stack + extra + MLUA_RESERVE > LUAI_MAXCSTACK {
        return Err(error(format!("stack overflow ({msg})")));
    }
    Ok(())
}

/// Lua's `bad argument #n to 'f' (...)`.
fn arg_error(n: usize, msg: &str) -> mlua::Error {
    error(format!("bad argument #{n} to '{CALLED}' ({msg})"))
}

/// Stands for the name the failing function was called by, which only `locate` knows.
const CALLED: &str = "\0called\0";

/// A library function: its errors read as `luaL_error`'s do, prefixed with where the
/// calling Lua code is (`user_script:3: `) and naming the function as it was called.
fn function<A, R>(lua: &Lua, f: impl Fn(&Lua, A) -> mlua::Result<R> + Send + 'static) -> mlua::Result<Function>
where
    A: FromLuaMulti,
    R: IntoLuaMulti,
{
    lua.create_function(move |lua, args: A| f(lua, args).map_err(|e| locate(lua, e)))
}

fn locate(lua: &Lua, e: mlua::Error) -> mlua::Error {
    let mlua::Error::RuntimeError(msg) = e else { return e };
    let msg = if msg.contains(CALLED) {
        let name = lua.inspect_stack(0, |d| d.names().name.map(|n| n.into_owned())).flatten();
        msg.replace(CALLED, name.as_deref().unwrap_or("?"))
    } else {
        msg
    };
    let place = lua.inspect_stack(1, |d| {
        let line = d.current_line()?;
        Some(format!("{}:{line}: ", d.source().short_src?))
    });
    error(place.flatten().unwrap_or_default() + &msg)
}

/// The text of an error a library function raised (what the C library's `luaL_error` would
/// have left on the stack), for the prelude to hand to a script's pcall.
pub fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(Value::LightUserData(_) | Value::UserData(_)) => "userdata",
        Some(_) => "userdata",
    }
}

/// `luaL_checknumber`: argument `n` (1-based) as a number, numeric strings included.
fn check_number(lua: &Lua, args: &MultiValue, n: usize) -> mlua::Result<f64> {
    let v = args.get(n - 1);
    match v {
        Some(Value::Integer(i)) => Ok(*i as f64),
        Some(Value::Number(x)) => Ok(*x),
        Some(s @ Value::String(_)) => match lua.coerce_number(s.clone())? {
            Some(x) => Ok(x),
            None => Err(arg_error(n, "number expected, got string")),
        },
        _ => Err(arg_error(n, &format!("number expected, got {}", type_name(v)))),
    }
}

/// `luaL_optnumber`: as `check_number`, with `default` for a missing or nil argument.
fn opt_number(lua: &Lua, args: &MultiValue, n: usize, default: f64) -> mlua::Result<f64> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(default),
        _ => check_number(lua, args, n),
    }
}

/// `luaL_checklstring`: argument `n` as bytes, numbers converted as Lua converts them.
fn check_bytes(args: &MultiValue, n: usize) -> mlua::Result<Vec<u8>> {
    let v = args.get(n - 1);
    match v {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => Ok(format_g(number(v), 14).into_bytes()),
        _ => Err(arg_error(n, &format!("string expected, got {}", type_name(v)))),
    }
}

/// Runs one level of a recursive encoder or decoder with stack to spare: nesting is bounded
/// (1000 levels, as in lua-cjson) but deeper than a worker thread's stack holds.
fn nested<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(64 * 1024, 1024 * 1024, f)
}

/// A Lua number as f64, whichever way mlua hands it over (callers have matched a number).
fn number(v: &Value) -> f64 {
    match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => f64::NAN,
    }
}

/// C's `%.<precision>g`, which is how Lua 5.1 (and so cjson) writes numbers.
pub use shoal_proto::reply::format_g;

/// How many keys `t` has and the largest, if every key is a positive integer (the test both
/// cmsgpack and cjson use to tell an array from a map); None for any other key.
fn array_keys(t: &Table) -> mlua::Result<Option<(usize, f64)>> {
    let (mut count, mut max) = (0usize, 0f64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        count += 1;
        max = max.max(n);
    }
    Ok(Some((count, max)))
}

#[cfg(test)]
mod tests {
    use mlua::{Lua, Table, Value};
    use proptest::prelude::*;

    fn libs() -> (Lua, Table) {
        let lua = Lua::new();
        let t = lua.create_table().unwrap();
        super::install(&lua, &t).unwrap();
        (lua, t)
    }

    fn call(t: &Table, lib: &str, f: &str, arg: &[u8]) -> mlua::Result<mlua::MultiValue> {
        let lib: Table = t.get(lib).unwrap();
        let f: mlua::Function = lib.get(f).unwrap();
        f.call(mlua::BString::from(arg))
    }

    proptest! {
        /// Scripts hand client bytes to these decoders: any input ends in a value or an error.
        #[test]
        fn decoders_take_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (_lua, t) = libs();
            let _ = call(&t, "cjson", "decode", &data);
            let _ = call(&t, "cmsgpack", "unpack", &data);
            let _ = call(&t, "cmsgpack", "unpack_one", &data);
        }

        /// Near-JSON input (JSON's own characters in any order) reaches deeper parser states
        /// than random bytes do.
        #[test]
        fn cjson_takes_any_json_like_text(data in proptest::collection::vec(
            proptest::sample::select(b"{}[]:,\"\\u0123456789.eE+-truefalsn x".to_vec()), 0..128)) {
            let (_lua, t) = libs();
            let _ = call(&t, "cjson", "decode", &data);
        }

        /// Strings survive a round trip through both encoders.
        #[test]
        fn strings_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_lua, t) = libs();
            for (lib, enc, dec) in [("cjson", "encode", "decode"), ("cmsgpack", "pack", "unpack")] {
                let encoded = call(&t, lib, enc, &data).unwrap();
                let Some(Value::String(e)) = encoded.front() else { panic!("{lib} encodes to a string") };
                let decoded = call(&t, lib, dec, &e.as_bytes()).unwrap();
                let Some(Value::String(d)) = decoded.front() else { panic!("{lib} decodes a string") };
                prop_assert_eq!(d.as_bytes().to_vec(), data.clone());
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let (_lua, t) = libs();
        let deep = "[".repeat(100_000);
        let e = call(&t, "cjson", "decode", deep.as_bytes()).unwrap_err();
        assert!(super::error_text(&e).contains("Found too many nested data structures (1001)"), "{e}");
        let deep = vec![0x91u8; 100_000];
        let e = call(&t, "cmsgpack", "unpack", &deep).unwrap_err();
        assert_eq!(super::error_text(&e), "Bad data format in input.");
    }
}
