//! The engine's own C calls, left out of Lua's limit of 200 nested C calls (`LUAI_MAXCCALLS`)
//! with a function Shoal's Lua carries (`node/vendor/lua-src`): Redis calls a script from its
//! main function and compiles it there, while Shoal does both inside mlua's protected call, and
//! calls `loadstring` and `load` through a C stand-in. Uncorrected, scripts would reach the
//! limit (pcall recursion, nested metamethods, nested parentheses) a level or two sooner.

use mlua::ffi;
use std::os::raw::c_int;

extern "C-unwind" {
    fn lua_lendccalls(state: *mut ffi::lua_State, n: c_int);
    fn lua_restoreccalls(state: *mut ffi::lua_State, n: c_int);
}

/// Runs `f` with `n` of the C calls now counted lent out, so what `f` calls starts `n` levels
/// further from the limit.
///
/// # Safety
/// At least `n` C calls are counted now (the caller is inside them), and `f` makes only calls
/// that are protected or that unwind to a protected call, which restores the count it saved.
pub unsafe fn lent<R>(state: *mut ffi::lua_State, n: c_int, f: impl FnOnce() -> R) -> R {
    lua_lendccalls(state, n);
    let r = f();
    lua_restoreccalls(state, n);
    r
}
