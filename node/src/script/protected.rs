//! The pcall and xpcall scripts call: C functions, as Redis's are, so that error levels count
//! the frames Redis's count (`pcall(error, msg, 2)` names the script's line, where a Lua
//! wrapper would put its own frame, and its name, in between), and so that a pcall at the
//! limit of nested C calls returns its error rather than calling more code. Lua code from
//! the prelude runs only for what Shoal adds, and only when there is some: the value an
//! error raised from Rust stands for (redis.call's error table, a library's message).

use mlua::{ffi, Lua, Table};
use std::os::raw::c_int;

/// Puts `protected_calls(raised)` in `internal`, which the prelude calls once for the
/// scripts' pcall and xpcall.
pub fn install(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    super::set_c_function(lua, internal, "protected_calls", make)
}

/// `protected_calls(raised)`: pcall and xpcall, with `raised(e)` the value of an error raised
/// from Rust (upvalue 1 of each).
unsafe extern "C-unwind" fn make(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
    ffi::lua_settop(state, 1);
    ffi::lua_pushvalue(state, 1);
    ffi::lua_pushcclosure(state, pcall, 1);
    ffi::lua_pushvalue(state, 1);
    ffi::lua_pushcclosure(state, xpcall, 1);
    2
}

/// Swaps the error value on top of the stack for the value it stands for, if it was raised
/// from Rust (a userdata), with `raised` (upvalue 1).
unsafe fn swap_raised(state: *mut ffi::lua_State) {
    if ffi::lua_isuserdata(state, -1) != 0 {
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, -2);
        ffi::lua_call(state, 1, 1);
    }
}

/// Redis's `luaRedisPcall`: the status's slot taken before the call (the results may fill the
/// frame), then the call; a caught error table gives its text, as Redis 7.0's pcall does.
unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    // Redis's pcall() with nothing calls the slot it pushed, `true`.
    if ffi::lua_gettop(state) == 0 {
        ffi::lua_pushboolean(state, 1);
    }
    let n = ffi::lua_gettop(state);
    ffi::lua_pushboolean(state, 1);
    ffi::lua_insert(state, 1);
    if ffi::lua_pcall(state, n - 1, ffi::LUA_MULTRET, 0) != 0 {
        // [slot, error]: false, and the error's value or text.
        ffi::lua_pushboolean(state, 0);
        ffi::lua_replace(state, 1);
        swap_raised(state);
        // Redis reads the field with lua_getfield (metamethods too) and, when it is no text,
        // leaves it on the stack: one result more.
        if ffi::lua_istable(state, -1) != 0 {
            ffi::lua_getfield(state, -1, c"err".as_ptr());
            if ffi::lua_isstring(state, -1) != 0 {
                ffi::lua_replace(state, -2);
            }
        }
    }
    ffi::lua_gettop(state)
}

/// Lua's `luaB_xpcall` (the status's slot first, as Shoal's Lua takes it), its handler `h`
/// wrapped by `handler` so that it gets the value of an error raised from Rust. The wrapper
/// is a C closure, made without calling anything before the call, as Lua's xpcall calls
/// nothing before it.
unsafe extern "C-unwind" fn xpcall(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checkany(state, 2);
    ffi::lua_settop(state, 2);
    // [f, h] becomes [slot, handler(raised, h), f].
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 2);
    ffi::lua_pushcclosure(state, handler, 2);
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

/// An xpcall's handler: the script's (upvalue 2) called with the error's value.
unsafe extern "C-unwind" fn handler(state: *mut ffi::lua_State) -> c_int {
    ffi::lua_settop(state, 1);
    swap_raised(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, 1, 1);
    1
}
