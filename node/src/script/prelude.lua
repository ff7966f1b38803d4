-- Shoal's Lua prelude, run once per VM: the `redis` library, the read-only environment
-- scripts run in, and the error handler that gives errors Redis's shape. It gets `internal`
-- (filled by Rust: redis.call and the other Rust functions) and returns the functions
-- Rust calls. None of what it keeps in locals is reachable from a script.
local internal = ...

local dbg = debug
local error, type, tostring, rawget, rawset, setmetatable, pcall, xpcall, setfenv, select =
  error, type, tostring, rawget, rawset, setmetatable, pcall, xpcall, setfenv, select
local load_string = loadstring
local sfind, ssub, sgsub, slower, tconcat = string.find, string.sub, string.gsub, string.lower, table.concat

-- Tables a script may read but not change are marked read-only in place, as Redis marks
-- them (Shoal's Lua carries Redis's patch): every write fails "Attempt to modify a readonly
-- table", reads are plain table reads.
local readonly = internal.set_readonly

-- Redis's error table from an error reply or message: `-CODE msg` keeps its code, anything
-- else gets ERR.
local function error_table(s)
  local code, msg
  if ssub(s, 1, 1) == "-" then
    local sp = sfind(s, " ", 1, true)
    if sp then
      code, msg = ssub(s, 2, sp - 1), ssub(s, sp + 1)
    else
      code, msg = "ERR", ssub(s, 2)
    end
  else
    code, msg = "ERR", s
  end
  msg = sgsub(sgsub(msg, "^[\r\n]+", ""), "[\r\n]+$", "")
  return { err = code .. " " .. msg }
end

local redis = {
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  REDIS_VERSION = internal.version, REDIS_VERSION_NUM = internal.version_num,
}

-- redis.call and redis.pcall are Rust functions, as they are C functions in Redis: a script's
-- `return redis.call(...)` keeps its own frame (Lua 5.1 does not tail-call into C), so an
-- error names the script's line. redis.call cannot raise a table from Rust: it leaves the
-- error table in `internal.raised` and raises a marker, which the handler and the
-- scripts' pcall/xpcall swap back for the table.
redis.call = internal.call
redis.pcall = internal.pcall
redis.acl_check_cmd = internal.acl_check_cmd

local function raised(e)
  if type(e) == "userdata" and internal.raised ~= nil then
    e = internal.raised
    internal.raised = nil
  elseif type(e) == "userdata" then
    -- An error from a Rust library function (cjson.decode, struct.pack, ...): its text, as
    -- the C library's luaL_error would have left it.
    e = internal.error_text(e) or e
  end
  return e
end

-- (Exactly one string, as Redis's C functions check.)
function redis.error_reply(...)
  local e = ...
  if select("#", ...) ~= 1 or type(e) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  -- Redis reads the text as a C string: it ends at a NUL.
  local nul = sfind(e, "\0", 1, true)
  if nul then
    e = ssub(e, 1, nul - 1)
  end
  if ssub(e, 1, 1) ~= "-" then
    e = "-" .. e
  end
  return error_table(e)
end

function redis.status_reply(...)
  local s = ...
  if select("#", ...) ~= 1 or type(s) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  return { ok = s }
end

-- Rust functions (C functions in Redis), so their errors name the script's line.
redis.sha1hex = internal.sha1hex
redis.log = internal.log
redis.setresp = internal.setresp
redis.set_repl = internal.set_repl

-- Scripts are always replicated by their effects here, so these only answer as Redis 7 does.
function redis.replicate_commands() return true end
function redis.breakpoint() return false end
function redis.debug() end


-- The read-only globals of the code running now (a script's, or a library's and its
-- functions'), which chunks it loads get: Lua would give them the VM's real globals. Not
-- the caller's, found on the stack: called through pcall, that is pcall's, the real ones.
local active_env

-- Chunks run with the loading code's globals. (Precompiled ones are refused by Shoal's Lua,
-- which reads every chunk as text, as Redis's does.)
local function load_chunk(s, name)
  local f, e = load_string(s, name)
  if f then
    setfenv(f, active_env)
  end
  return f, e
end

local script_pcall, script_xpcall = internal.protected_calls(raised)

local visible = {
  assert = assert, error = error, ipairs = ipairs, next = next,
  pairs = pairs, rawequal = rawequal, rawget = rawget, rawset = rawset,
  select = select, tonumber = tonumber,
  tostring = tostring, type = type, unpack = unpack,
  getmetatable = getmetatable, setmetatable = setmetatable,
  -- (Both called as C functions, with their arguments checked there: see stand_in.rs.)
  loadstring = internal.as_c_function(load_chunk, internal.takes_string),
  -- load's reader is drained first, so the chunk is checked and placed as loadstring's is.
  load = internal.as_c_function(function(reader, name)
    local parts = {}
    while true do
      local piece = reader()
      if piece == nil or piece == "" then
        break
      elseif type(piece) == "number" then
        -- Lua's reader takes numbers too, as their string form.
        piece = tostring(piece)
      elseif type(piece) ~= "string" then
        return nil, "reader function must return a string"
      end
      parts[#parts + 1] = piece
    end
    return load_chunk(tconcat(parts), name or "=(load)")
  end, internal.takes_reader),
  collectgarbage = collectgarbage, gcinfo = gcinfo, _VERSION = _VERSION,
  string = readonly(string), table = readonly(table), math = readonly(math),
  coroutine = readonly(coroutine), redis = readonly(redis),
  bit = readonly(internal.bit), struct = readonly(internal.struct),
  cmsgpack = readonly(internal.cmsgpack), cjson = readonly(internal.cjson),
  -- C functions, as Redis's (see protected.rs); an xpcall handler gets the error table
  -- itself.
  pcall = script_pcall, xpcall = script_xpcall,
}

-- Redis's error handler: every error becomes a table with its message and where the script
-- raised it (frames of C functions and of this prelude are skipped).
local function handler(err)
  local level, info = 2, nil
  repeat
    info = dbg.getinfo(level, "nSl")
    level = level + 1
  until not info or (info.what ~= "C" and info.source ~= "=shoal")
  err = raised(err)
  if type(err) ~= "table" then
    err = { err = "ERR " .. tostring(err) }
  end
  if info then
    err.source = info.source
    err.line = info.currentline
  end
  return err
end

-- Strings' methods (`("x"):upper()`) must not lead back to a changeable string table: the
-- metatable a script sees is a read-only stand-in whose __index is the scripts' string.
getmetatable("").__metatable = readonly({ __index = visible.string })

local function missing_global(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end

-- A read-only global environment of the visible names and `extra`. A missing name is an
-- error, as in Redis; its metatable is read-only too, as Redis protects metatables.
local function environment(extra)
  local fields = {}
  for k, v in pairs(visible) do
    fields[k] = v
  end
  for k, v in pairs(extra) do
    fields[k] = v
  end
  fields._G = fields
  fields.__redis__err__handler = handler
  setmetatable(fields, readonly({ __index = missing_global }))
  return readonly(fields)
end

-- Functions get the library without what only EVAL scripts have, as in Redis 7.0.
local function_redis = {}
for k, v in pairs(redis) do
  function_redis[k] = v
end
function_redis.breakpoint, function_redis.debug, function_redis.replicate_commands = nil, nil, nil
function_redis = readonly(function_redis)

-- Scripts' globals, with each run's KEYS and ARGV (set by Rust); functions get theirs as
-- arguments and have an environment of their own.
local env = environment({})
local fenv = environment({ redis = function_redis })
active_env = env

local function bind(f)
  setfenv(f, env)
  return f
end

-- Before a script runs (Rust then calls it, with `handler`, as Redis does).
local function enter_script()
  active_env = env
end

-- FUNCTION LOAD: a library's code runs once with a `redis` that can only register functions
-- (and log); what it registered is handed back to Rust.
local registered
local function fail(msg)
  error({ err = "ERR " .. msg })
end

-- The flags a function may declare, in the order Redis lists them.
local flag_order = { "no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys" }
local known_flags = {}
for i, f in ipairs(flag_order) do known_flags[f] = i end

-- What Redis's lua_isstring accepts, and reads as lua_tostring does.
local function text(v)
  local t = type(v)
  if t == "string" or t == "number" then return tostring(v) end
end

-- A function's flags as Redis reads them: names in any case, each once, listed in Redis's order.
local function read_flags(flags)
  local seen, i = {}, 1
  while flags[i] ~= nil do
    local f = text(flags[i])
    local at = f and known_flags[slower(f)]
    if not at then fail("unknown flag given") end
    seen[at] = true
    i = i + 1
  end
  local list = {}
  for at, f in ipairs(flag_order) do
    if seen[at] then list[#list + 1] = f end
  end
  return list
end

-- redis.register_function: its arguments checked in Redis's order, with its words.
local function register(...)
  local name, callback, flags, description
  local n = select("#", ...)
  if n == 1 then
    local args = ...
    if type(args) ~= "table" then
      fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
    end
    for k, v in pairs(args) do
      local key = type(k) == "string" and slower(k)
      if not text(k) then
        fail("named argument key given to redis.register_function is not a string")
      elseif key == "function_name" then
        name = text(v) or fail("function_name argument given to redis.register_function must be a string")
      elseif key == "description" then
        description = text(v) or fail("description argument given to redis.register_function must be a string")
      elseif key == "callback" then
        if type(v) ~= "function" then fail("callback argument given to redis.register_function must be a function") end
        callback = v
      elseif key == "flags" then
        if type(v) ~= "table" then
          fail("flags argument to redis.register_function must be a table representing function flags")
        end
        flags = read_flags(v)
      else
        fail("unknown argument given to redis.register_function")
      end
    end
    if name == nil then fail("redis.register_function must get a function name argument") end
    if callback == nil then fail("redis.register_function must get a callback argument") end
  elseif n == 2 then
    local first
    first, callback = ...
    name = text(first) or fail("first argument to redis.register_function must be a string")
    if type(callback) ~= "function" then fail("second argument to redis.register_function must be a function") end
  else
    fail("wrong number of arguments to redis.register_function")
  end
  if not sfind(name, "^[%w_]+$") then
    fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
  end
  for _, r in ipairs(registered) do
    if r.name == name then fail("Function already exists in the library") end
  end
  registered[#registered + 1] = { name = name, callback = callback, flags = flags or {}, description = description }
end

-- While a library loads, its globals are `redis` alone, with only these (as Redis 7.0's
-- library API): anything else it reaches for fails as a missing global does.
local loading_api = {
  register_function = register, log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
local loading_redis = {}
for k, v in pairs(loading_api) do
  loading_redis[k] = v
end
setmetatable(loading_redis, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __metatable = false,
})
loading_redis = readonly(loading_redis)

-- What a library's globals fall back on while it loads: `redis` alone.
local loading_globals = readonly(setmetatable({ redis = loading_redis }, readonly({ __index = missing_global })))

-- Runs a library's compiled code; returns its registered functions, or false and the error.
-- The library gets globals of its own, empty, that fall back on `loading_globals` while it
-- loads and on the functions' globals once it has loaded (as Redis swaps its globals' __index
-- between the library API and the full one): what it registers, and every helper it made,
-- keeps them as its environment. Nothing shared changes, so a load that fails anywhere (the
-- time limit may strike at any instruction) leaves nothing behind.
local function load_library(f)
  local globals = readonly(setmetatable({}, readonly({ __index = loading_globals })))
  setfenv(f, globals)
  active_env = globals
  registered = {}
  local ok, err = xpcall(f, handler)
  local r = registered
  registered = nil
  if not ok then
    return false, err
  end
  readonly(globals, false)
  setmetatable(globals, readonly({ __index = fenv }))
  readonly(globals)
  return r
end

-- Before a registered function runs (Rust then calls it with its keys and arguments).
local function enter_function()
  active_env = fenv
end

return bind, enter_script, enter_function, handler, error_table, env, load_library
