//! Read-only tables as Redis has them: a mark in the table itself, from the patch Shoal's Lua
//! carries as Redis's does (`node/vendor/lua-src`). Every write to a marked table (an
//! assignment, `rawset`, `table.insert`, `setmetatable`) fails "Attempt to modify a readonly
//! table", while reads are plain table reads: a script's globals and libraries cost no more
//! to read than in unprotected Lua, and `pairs`, `next` and `rawget` see them as they are.

use mlua::{ffi, Lua, Table};
use std::os::raw::c_int;

extern "C-unwind" {
    /// Marks the table at `idx` read-only (`enabled` 1) or writable again (0).
    fn lua_enablereadonlytable(state: *mut ffi::lua_State, idx: c_int, enabled: c_int);
}

/// Puts `set_readonly(t [, on])` in `internal`, for the prelude to protect what scripts see.
pub fn install(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    super::set_c_function(lua, internal, "set_readonly", set_readonly_fn)
}

/// `set_readonly(t [, on])`: marks `t` read-only (`on` absent or true) or writable; returns it.
unsafe extern "C-unwind" fn set_readonly_fn(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    let on = ffi::lua_type(state, 2) <= ffi::LUA_TNIL || ffi::lua_toboolean(state, 2) != 0;
    set_readonly(state, 1, on);
    ffi::lua_settop(state, 1);
    1
}

/// Marks the table at `idx` of `state`'s stack read-only or writable.
///
/// # Safety
/// `idx` is a valid index of `state`'s stack and holds a table.
pub unsafe fn set_readonly(state: *mut ffi::lua_State, idx: c_int, on: bool) {
    lua_enablereadonlytable(state, idx, on as c_int);
}
