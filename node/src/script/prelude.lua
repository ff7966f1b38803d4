-- Shoal's Lua prelude, run once per VM: the `redis` library, the read-only environment
-- scripts run in, and the error handler that gives errors Redis's shape. It gets `internal`
-- (filled by Rust: redis.call and the other Rust functions) and returns the functions
-- Rust calls. None of what it keeps in locals is reachable from a script.
local internal = ...

local dbg = debug
local error, type, tostring, rawget, rawset, setmetatable, pcall, xpcall, setfenv =
  error, type, tostring, rawget, rawset, setmetatable, pcall, xpcall, setfenv
local sfind, ssub, sgsub = string.find, string.sub, string.gsub

-- Tables a script may read but not change (Redis makes them read-only in its own Lua).
local protected = setmetatable({}, { __mode = "k" })

local function readonly(t)
  local proxy = setmetatable({}, {
    __index = t,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
    __metatable = false,
  })
  protected[proxy] = true
  return proxy
end

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
  REPL_NONE = 0, REPL_SLAVE = 1, REPL_REPLICA = 1, REPL_AOF = 2, REPL_ALL = 3,
}

-- redis.call and redis.pcall are Rust functions, as they are C functions in Redis: a script's
-- `return redis.call(...)` keeps its own frame (Lua 5.1 does not tail-call into C), so an
-- error names the script's line. redis.call cannot raise a table from Rust: it leaves the
-- error table in `internal.raised` and raises a marker, which the handler and the
-- scripts' pcall/xpcall swap back for the table.
redis.call = internal.call
redis.pcall = internal.pcall

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

-- What a script's pcall catches from redis.call: the error's text, as in Redis 7.0.
local function caught(ok, ...)
  if ok then
    return true, ...
  end
  local e = ...
  if type(e) == "userdata" and internal.raised ~= nil then
    e = raised(e).err
  else
    e = raised(e)
  end
  return false, e
end

function redis.error_reply(e)
  if type(e) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  if ssub(e, 1, 1) ~= "-" then
    e = "-" .. e
  end
  return error_table(e)
end

function redis.status_reply(s)
  if type(s) ~= "string" then
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

-- Strings' methods (`("x"):upper()`) must not lead back to a changeable string table.
getmetatable("").__metatable = false

local visible = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  rawequal = rawequal, rawget = rawget, select = select, tonumber = tonumber,
  tostring = tostring, type = type, unpack = unpack,
  getmetatable = getmetatable, setmetatable = setmetatable, loadstring = loadstring,
  print = print, gcinfo = gcinfo, _VERSION = _VERSION,
  string = readonly(string), table = readonly(table), math = readonly(math),
  redis = readonly(redis),
  bit = readonly(internal.bit), struct = readonly(internal.struct),
  cmsgpack = readonly(internal.cmsgpack), cjson = readonly(internal.cjson),
  pcall = function(f, ...) return caught(pcall(f, ...)) end,
  -- ... while an xpcall handler gets the error table itself.
  xpcall = function(f, h) return xpcall(f, function(e) return h(raised(e)) end) end,
  -- A read-only table refuses rawset too, as Redis's do.
  rawset = function(t, k, v)
    if protected[t] then
      error("Attempt to modify a readonly table", 2)
    end
    return rawset(t, k, v)
  end,
}

-- Globals as scripts see them: the visible names, then each run's KEYS and ARGV (set by
-- Rust). Lookups hit this table directly; only a missing name reaches the erroring __index.
local fields = {}
local env = setmetatable({}, {
  __index = fields,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})
protected[env] = true
visible._G = env
for k, v in pairs(visible) do
  fields[k] = v
end
setmetatable(fields, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __metatable = false,
})

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

local function bind(f)
  setfenv(f, env)
  return f
end

local function run(f)
  return xpcall(f, handler)
end

return bind, run, error_table, fields
