//! `next`, `pairs`, `ipairs` and `rawget` for scripts, which read a read-only table (an empty
//! proxy, see the prelude) as the table it stands for, and `setmetatable`, which refuses one
//! in Redis's words. They are C functions over Lua's API,
//! as Lua's own are: a script's `return pairs(t)` keeps its frame (Lua 5.1 does not tail-call
//! into C), and a bad argument fails with Lua's own words.

use mlua::{ffi, Function, Lua, Table};
use std::os::raw::c_int;

/// Puts the functions in `internal` (`ro_next`, `ro_pairs`, `ro_ipairs`, `ro_rawget`,
/// `ro_setmetatable`)
/// with the map from proxies to their tables, `internal.protected`, which the prelude fills.
pub fn install(lua: &Lua, internal: &Table) -> mlua::Result<()> {
    let protected = lua.create_table()?;
    let globals = lua.globals();
    let (next, ipairs): (Function, Function) = (globals.raw_get("next")?, globals.raw_get("ipairs")?);
    // SAFETY: works on the stack exec_raw gave it (protected, next, ipairs) and leaves
    // exactly the five closures, each with its upvalues (the first always `protected`).
    type Five = (Function, Function, Function, Function, Function);
    let (ro_next, ro_pairs, ro_ipairs, ro_rawget, ro_setmetatable): Five = unsafe {
        lua.exec_raw((&protected, next, ipairs), |state| {
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushcclosure(state, next_fn, 1);
            // Stack: protected, next, ipairs, ro_next.
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushvalue(state, 4);
            ffi::lua_pushvalue(state, 2);
            ffi::lua_pushcclosure(state, pairs_fn, 3);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushcclosure(state, ipairs_step, 1);
            ffi::lua_pushvalue(state, 3);
            ffi::lua_pushcclosure(state, ipairs_fn, 3);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushcclosure(state, rawget_fn, 1);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_pushcclosure(state, setmetatable_fn, 1);
            for _ in 0..3 {
                ffi::lua_remove(state, 1);
            }
        })?
    };
    internal.raw_set("protected", protected)?;
    internal.raw_set("ro_next", ro_next)?;
    internal.raw_set("ro_pairs", ro_pairs)?;
    internal.raw_set("ro_ipairs", ro_ipairs)?;
    internal.raw_set("ro_rawget", ro_rawget)?;
    internal.raw_set("ro_setmetatable", ro_setmetatable)
}

/// Whether the table at `index` is a read-only proxy.
unsafe fn is_proxy(state: *mut ffi::lua_State, index: c_int) -> bool {
    ffi::lua_pushvalue(state, index);
    ffi::lua_rawget(state, ffi::lua_upvalueindex(1));
    let proxy = ffi::lua_type(state, -1) == ffi::LUA_TTABLE;
    ffi::lua_settop(state, -2);
    proxy
}

/// Replaces a proxy at `index` with the table it stands for.
unsafe fn unwrap(state: *mut ffi::lua_State, index: c_int) {
    ffi::lua_pushvalue(state, index);
    ffi::lua_rawget(state, ffi::lua_upvalueindex(1));
    if ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
        ffi::lua_replace(state, index);
    } else {
        ffi::lua_settop(state, -2);
    }
}

/// `next(t, k)`.
unsafe extern "C-unwind" fn next_fn(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    ffi::lua_settop(state, 2);
    unwrap(state, 1);
    if ffi::lua_next(state, 1) != 0 {
        2
    } else {
        ffi::lua_pushnil(state);
        1
    }
}

/// `pairs(t)`: Lua's `next` for a table, `next_fn` for a proxy (upvalues 3 and 2). The proxy
/// itself is the iteration's state: the table behind it never reaches the script.
unsafe extern "C-unwind" fn pairs_fn(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    let next = if is_proxy(state, 1) { 2 } else { 3 };
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(next));
    ffi::lua_pushvalue(state, 1);
    ffi::lua_pushnil(state);
    3
}

/// `ipairs(t)`: Lua's own for a table (upvalue 3), `ipairs_step` (upvalue 2) for a proxy.
unsafe extern "C-unwind" fn ipairs_fn(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    if !is_proxy(state, 1) {
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3));
        ffi::lua_pushvalue(state, 1);
        ffi::lua_call(state, 1, 3);
        return 3;
    }
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
    ffi::lua_pushvalue(state, 1);
    ffi::lua_pushinteger(state, 0);
    3
}

/// One step of `ipairs` over a proxy.
unsafe extern "C-unwind" fn ipairs_step(state: *mut ffi::lua_State) -> c_int {
    let i = ffi::luaL_checkinteger(state, 2) + 1;
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    unwrap(state, 1);
    ffi::lua_pushinteger(state, i);
    ffi::lua_rawgeti(state, 1, i);
    if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
        0
    } else {
        2
    }
}

/// `rawget(t, k)`.
unsafe extern "C-unwind" fn rawget_fn(state: *mut ffi::lua_State) -> c_int {
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    ffi::luaL_checkany(state, 2);
    ffi::lua_settop(state, 2);
    unwrap(state, 1);
    ffi::lua_rawget(state, 1);
    1
}

/// `setmetatable(t, mt)`: Lua's own, except that a read-only table is refused as Redis
/// refuses it (Lua would say its metatable is protected).
unsafe extern "C-unwind" fn setmetatable_fn(state: *mut ffi::lua_State) -> c_int {
    let t = ffi::lua_type(state, 2);
    ffi::luaL_checktype(state, 1, ffi::LUA_TTABLE);
    if t != ffi::LUA_TNIL && t != ffi::LUA_TTABLE {
        return ffi::luaL_argerror(state, 2, c"nil or table expected".as_ptr());
    }
    if is_proxy(state, 1) {
        // Without a position, as Redis raises it.
        ffi::lua_pushstring(state, c"Attempt to modify a readonly table".as_ptr());
        ffi::lua_error(state)
    }
    if ffi::luaL_getmetafield_(state, 1, c"__metatable".as_ptr()) != 0 {
        return ffi::luaL_error(state, c"cannot change a protected metatable".as_ptr());
    }
    ffi::lua_settop(state, 2);
    ffi::lua_setmetatable(state, 1);
    1
}
