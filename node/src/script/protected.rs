//! The pcall and xpcall scripts call: C functions, as Redis's are, so that error levels count
//! the frames Redis's count (`pcall(error, msg, 2)` names the script's line, where a Lua
//! wrapper would put its own frame, and its name, in between). What Shoal adds to them runs
//! only once an error is caught, in Lua functions from the prelude: the value an error raised
//! from Rust stands for (redis.call's error table, a library's message), and the text of an
//! error table that Redis 7.0's pcall returns.

use mlua::{ffi, Lua, Table};
use std::os::raw::c_int;

/// Puts `protected_calls(caught, handler_for)` in `internal`, which the prelude calls once for
/// the scripts' pcall and xpcall.
pub fn install(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    super::set_c_function(lua, internal, "protected_calls", make)
}

/// `protected_calls(caught, handler_for)`: pcall, with `caught(e)` turning a caught error into
/// what pcall returns; and xpcall, with `handler_for(h)` making the handler it installs.
unsafe extern "C-unwind" fn make(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
    ffi::luaL_checktype(state, 2, ffi::LUA_TFUNCTION);
    ffi::lua_settop(state, 2);
    ffi::lua_pushvalue(state, 1);
    ffi::lua_pushcclosure(state, pcall, 1);
    ffi::lua_pushvalue(state, 2);
    ffi::lua_pushcclosure(state, xpcall, 1);
    2
}

/// Redis's `luaRedisPcall`: the status's slot taken before the call (the results may fill the
/// frame), then the call; a caught error through `caught` (upvalue 1).
unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    // Redis's pcall() with nothing calls the slot it pushed, `true`.
    if ffi::lua_gettop(state) == 0 {
        ffi::lua_pushboolean(state, 1);
    }
    let n = ffi::lua_gettop(state);
    ffi::lua_pushboolean(state, 1);
    ffi::lua_insert(state, 1);
    if ffi::lua_pcall(state, n - 1, ffi::LUA_MULTRET, 0) != 0 {
        // [slot, error] becomes caught(error)'s results.
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_replace(state, 1);
        ffi::lua_call(state, 1, ffi::LUA_MULTRET);
    }
    ffi::lua_gettop(state)
}

/// Lua's `luaB_xpcall` (the status's slot first, as Shoal's Lua takes it), its handler `h`
/// replaced by `handler_for(h)` (upvalue 1), which hands `h` the error's value.
unsafe extern "C-unwind" fn xpcall(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checkany(state, 2);
    ffi::lua_settop(state, 2);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 2);
    ffi::lua_call(state, 1, 1);
    // [f, handler] becomes [slot, handler, f].
    ffi::lua_pushboolean(state, 1);
    ffi::lua_insert(state, 1);
    ffi::lua_insert(state, 2);
    let status = ffi::lua_pcall(state, 0, ffi::LUA_MULTRET, 2);
    ffi::lua_remove(state, 2);
    if status != 0 {
        ffi::lua_pushboolean(state, 0);
        ffi::lua_replace(state, 1);
    }
    ffi::lua_gettop(state)
}
