//! Prelude functions that stand in for Lua's C functions (`loadstring`, `load`), called
//! through a C function as Redis's are: Lua 5.1 tail-calls only Lua functions, so a script's
//! `return loadstring(x)` keeps its frame and an error names the script's line, not
//! `(tail call)`; and the arguments are checked here with luaL's words, naming the function
//! as the script called it (`bad argument #1 to 'loadstring' (string expected, got no
//! value)`).
//! (This one call is left out of Lua's count of nested C calls, see `ccalls`.)

use mlua::{ffi, Lua, Table};
use std::os::raw::c_int;
use std::ptr;

/// The arguments a stand-in takes, checked before its Lua code runs (upvalue 2).
#[derive(Clone, Copy)]
#[repr(i64)]
pub enum Takes {
    /// `loadstring(s [, chunkname])`.
    String = 1,
    /// `load(reader [, chunkname])`.
    Reader = 2,
}

/// Puts `as_c_function(f, takes)` in `internal`, for the prelude to wrap its stand-ins.
pub fn install(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    super::set_c_function(lua, internal, "as_c_function", wrap)
}

/// `as_c_function(f, takes)`: a C closure calling `f` after checking `takes`' arguments.
unsafe extern "C-unwind" fn wrap(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
    ffi::luaL_checkinteger(state, 2);
    ffi::lua_settop(state, 2);
    ffi::lua_pushcclosure(state, call, 2);
    1
}

/// The stand-in, called: its arguments checked, then its Lua code with them, returning all it
/// returns.
unsafe extern "C-unwind" fn call(state: *mut ffi::lua_State) -> c_int {
    let takes = ffi::lua_tointeger(state, ffi::lua_upvalueindex(2));
    if takes == Takes::String as i64 {
        ffi::luaL_checklstring(state, 1, ptr::null_mut());
    } else if takes == Takes::Reader as i64 {
        ffi::luaL_checktype(state, 1, ffi::LUA_TFUNCTION);
    }
    ffi::luaL_optlstring(state, 2, ptr::null(), ptr::null_mut());
    let n = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    // Redis's loadstring compiles in the script's own C call: this one is left out of the
    // count, or the script's chunks would nest a level less deep.
    super::ccalls::lent(state, 1, || ffi::lua_call(state, n, ffi::LUA_MULTRET));
    ffi::lua_gettop(state)
}
