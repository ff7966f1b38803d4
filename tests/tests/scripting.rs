//! Lua scripting: EVAL and friends answer as redis-server does (replies, conversions, error
//! texts, the sandbox), scripts are atomic over keys in several shards, and SCRIPT KILL stops
//! a busy script.

use shoal_proto::Frame;
use shoal_tests::{arr, bulk, err, int, ok, sha1_hex, wait_until, Raw, RedisServer, Server};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// Scripts (with their keys and arguments) whose replies must be redis-server's, byte for byte.
const SCRIPTS: &[&[&str]] = &[
    &["EVAL", "return 1", "0"],
    &["EVAL", "return {1, 2, 'x', {3, 'y'}, 3.99, -2.5}", "0"],
    &["EVAL", "return {1, nil, 3}", "0"],
    &["EVAL", "return true", "0"],
    &["EVAL", "return false", "0"],
    &["EVAL", "return nil", "0"],
    &["EVAL", "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", "2", "k1", "k2", "a1", "a2"],
    &["EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "s", "v"],
    &["EVAL", "return redis.call('get', KEYS[1])", "1", "s"],
    &["EVAL", "return redis.call('get', 'missing')", "0"],
    &["EVAL", "return type(redis.call('get', 'missing'))", "0"],
    &["EVAL", "redis.call('rpush', 'l', 'a', 'b', 'c') return redis.call('lrange', 'l', 0, -1)", "0"],
    &["EVAL", "redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')", "0"],
    &["EVAL", "return redis.call('set', 'n', 1.5)", "0"],
    &["EVAL", "return redis.call('set', 'n', 1e9)", "0"],
    &["EVAL", "return redis.call('get', 'n')", "0"],
    &["EVAL", "return redis.call('incr', 's')", "0"],
    &["EVAL", "return redis.pcall('incr', 's')", "0"],
    &["EVAL", "local ok, e = pcall(redis.call, 'incr', 's') return {tostring(ok), e}", "0"],
    &["EVAL", "local ok, e = xpcall(function() redis.call('incr', 's') end, function(e) return e end) return e", "0"],
    &["EVAL", "return redis.call('lpush', 's', 'x')", "0"],
    &["EVAL", "return redis.call('nosuch')", "0"],
    &["EVAL", "return redis.call()", "0"],
    &["EVAL", "return redis.call('get')", "0"],
    &["EVAL", "return redis.call('get', {})", "0"],
    &["EVAL", "return redis.call('blpop', 'l', 0)", "0"],
    &["EVAL", "return redis.call('ping')", "0"],
    &["EVAL", "return #redis.call('time')", "0"],
    &["EVAL", "return redis.status_reply('FINE')", "0"],
    &["EVAL", "return redis.error_reply('My error')", "0"],
    &["EVAL", "return redis.error_reply('oops')", "0"],
    &["EVAL", "return redis.error_reply(1)", "0"],
    &["EVAL", "return {err = 'CODE raw'}", "0"],
    // An error table's text is written as it is: a leading dash doubles, as in Redis.
    &["EVAL", "return {1, {err = '-X y'}}", "0"],
    &["EVAL", "error({err = '-X'})", "0"],
    &["EVAL", "return {ok = 'raw'}", "0"],
    &["EVAL", "error('boom')", "0"],
    &["EVAL", "error({err = 'MYCODE custom'})", "0"],
    &["EVAL", "return redis.sha1hex('')", "0"],
    &["EVAL", "return redis.sha1hex(1)", "0"],
    &["EVAL", "return redis.setresp(4)", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('get', 'missing') == nil", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('hgetall', 'h').map.f", "0"],
    &["EVAL", "return redis.call('zadd', 'z', '1.5', 'm', '2', 'n')", "0"],
    &["EVAL", "return redis.call('zscore', 'z', 'm')", "0"],
    &["EVAL", "return redis.call('zrange', 'z', 0, -1, 'withscores')", "0"],
    &["EVAL", "redis.setresp(3) return redis.call('zscore', 'z', 'm').double * 2", "0"],
    &["EVAL", "redis.setresp(3) return cjson.encode(redis.call('zrange', 'z', 0, -1, 'withscores'))", "0"],
    &["EVAL", "redis.setresp(3) redis.call('sadd', 'st', 'a') return redis.call('smembers', 'st').set.a", "0"],
    &["EVAL", "redis.setresp(3) return cjson.encode(redis.call('hgetall', 'nosuchhash'))", "0"],
    &["EVAL", "redis.setresp(3) return redis.pcall('incr', 'z')", "0"],
    // Numbers past the integer range, and NaN, reply as Redis's C cast makes them on x86-64.
    &["EVAL", "return {0/0, 2^63, -2^63, 2^63 - 1024, 1e300, -1e300, math.huge, -0.9, 9.9}", "0"],
    &["EVAL", "return cjson.decode('1e400')", "0"],
    // A script may not block, and says so for XREAD (in MULTI, BLOCK reads at once).
    &["EVAL", "return redis.call('xread', 'BLOCK', 0, 'STREAMS', 's', '$')", "0"],
    &["EVAL", "return redis.pcall('XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', 'x', 'STREAMS', 's', '>')", "0"],
    // The Rust functions of `redis` check their arguments as Redis's C functions do: by
    // count, then with Lua's conversions.
    &["EVAL", "return {redis.sha1hex(nil), redis.sha1hex({}), redis.sha1hex(1.5), pcall(redis.sha1hex, 1, 2)}", "0"],
    &["EVAL", "return redis.sha1hex()", "0"],
    &["EVAL", "return {redis.setresp(2.9), redis.setresp('2'), pcall(redis.setresp, 3, nil)}", "0"],
    &["EVAL", "return redis.setresp()", "0"],
    &["EVAL", "return {redis.set_repl(2.9), redis.set_repl('3'), pcall(redis.set_repl, -1), pcall(redis.set_repl, 4)}", "0"],
    &["EVAL", "return redis.set_repl()", "0"],
    &["EVAL", "return {redis.log('1', 'x'), redis.log(1.9, nil, 'x'), pcall(redis.log, 7, 'x'), pcall(redis.log, 'a', 'x')}", "0"],
    &["EVAL", "return redis.log(1)", "0"],
    &["EVAL", "redis.log(redis.LOG_WARNING, 'from a script') return 1", "0"],
    &["EVAL", "return redis.set_repl(9)", "0"],
    &["EVAL", "return redis.replicate_commands()", "0"],
    &["EVAL", "redis.call('select', 2) return redis.call('set', 'in2', '1')", "0"],
    &["GET", "in2"],
    // A chunk loaded through a C function (pcall) still gets the read-only globals.
    &["EVAL", "local ok, f = pcall(loadstring, 'string.rep = nil return 1') return f()", "0"],
    &["EVAL", "return type(string.rep)", "0"],
    &[
        "EVAL",
        "local i = 0 local f = load(function() i = i + 1 if i == 1 then return 'x = 1' end end) return {pcall(f)}",
        "0",
    ],
    &[
        "EVAL",
        "local i = 0 local f = load(function() i = i + 1 if i == 1 then return 'return 7' end end) return f()",
        "0",
    ],
    &["EVAL", "return type(print)", "0"],
    &["EVAL", "return collectgarbage('count') > 0", "0"],
    &["EVAL", "local co = coroutine.wrap(function() return redis.call('ping') end) return co()", "0"],
    // Shoal writes some of Redis's C functions in Lua; a coroutine still cannot be made of them.
    &["EVAL", "local co = coroutine.wrap(loadstring) return co('return 1')", "0"],
    &["EVAL", "return coroutine.create(pcall)", "0"],
    &["EVAL", "return coroutine.create(type)", "0"],
    &["EVAL", "return {pcall(coroutine.create, load)}", "0"],
    &["EVAL", "local co = coroutine.wrap(function(a) coroutine.yield(a + 1) return 7 end) return {co(1), co()}", "0"],
    // Commands that visit every shard run from scripts, over keys in every shard.
    &[
        "EVAL",
        "for i = 1, 40 do redis.call('set', 'kp:' .. i, i) end local k = redis.call('keys', 'kp:1*') table.sort(k) return k",
        "0",
    ],
    &[
        "EVAL",
        "local seen, cursor = {}, '0' repeat local r = redis.call('scan', cursor, 'match', 'kp:*', 'count', 7) \
         cursor = r[1] for _, k in ipairs(r[2]) do seen[#seen + 1] = k end until cursor == '0' \
         table.sort(seen) return {#seen, seen[1], seen[#seen]}",
        "0",
    ],
    &["EVAL", "return {redis.call('dbsize') == #redis.call('keys', '*'), redis.call('exists', redis.call('randomkey'))}", "0"],
    &["EVAL", "local n = 0 for _, k in ipairs(redis.call('keys', ARGV[1])) do n = n + redis.call('del', k) end return n", "0", "kp:*"],
    &["EVAL", "return redis.call('keys', 'kp:*')", "0"],
    // ... and so do the ones that empty, swap or describe databases.
    &[
        "EVAL",
        "redis.call('select', 9) redis.call('set', 'f1', 1) redis.call('set', 'f2', 2) local n = redis.call('dbsize') \
         return {n, redis.call('flushdb'), redis.call('dbsize'), redis.call('flushdb', 'async'), redis.pcall('flushdb', 'x')}",
        "0",
    ],
    &[
        "EVAL",
        "redis.call('select', 10) redis.call('set', 'sw', 'a') redis.call('swapdb', 10, 11) local x = redis.call('exists', 'sw') \
         redis.call('select', 11) return {x, redis.call('get', 'sw'), redis.pcall('swapdb', 11, 99)}",
        "0",
    ],
    &["EVAL", "return {type(redis.call('info')), string.find(redis.call('info', 'keyspace'), '# Keyspace', 1, true)}", "0"],
    &[
        "EVAL",
        "return {type(redis.call('lastsave')), type(redis.call('memory', 'stats')), type(redis.call('memory', 'doctor')), \
         redis.call('memory', 'purge'), type(redis.call('memory', 'malloc-stats'))}",
        "0",
    ],
    &["EVAL", "redis.call('select', 11) return {redis.call('flushall'), redis.call('dbsize')}", "0"],
    &["DBSIZE"],
    // Numbers reach commands as Redis 7.0 prints them ("%.17g").
    &[
        "EVAL",
        "local t = {} for i, v in ipairs({0.1, 1e20, 1e9, -0.0, 1/0, -1/0, 1.5, 123456789012345678, 2^53, -7, 3.14159}) do \
         redis.call('set', 'num', v) t[i] = redis.call('get', 'num') end return t",
        "0",
    ],
    // load's reader may hand over numbers, as their string form.
    &[
        "EVAL",
        "local i = 0 local f = load(function() i = i + 1 if i == 1 then return 'return ' elseif i == 2 then return 42.5 end end) return tostring(f())",
        "0",
    ],
    // Redis's pcall: the status's slot is taken before the call (a bare pcall() calls it),
    // an error table is caught as its text.
    &["EVAL", "return {pcall()}", "0"],
    &["EVAL", "return {xpcall(1)}", "0"],
    &["EVAL", "return {pcall(error, {err='X y'}), pcall(error, {err=5})}", "0"],
    &["EVAL", "return {pcall(error, {err={}})}", "0"],
    &["EVAL", "return {select('#', pcall(error, {})), pcall(error, setmetatable({}, {__index={err='m'}}))}", "0"],
    // Deep recursion through C: Lua's C-call limit, reached with every level's results
    // piling up, and cjson at its own limit 190 C calls down.
    &["EVAL", "local function f(n) return pcall(f, n+1) end local r = {f(1)} return {r[#r-1], r[#r]}", "0"],
    &[
        "EVAL",
        "local function f(n) return xpcall(function() return f(n+1) end, function(e) return e end) end \
         local r = {f(1)} return {r[#r-1], r[#r]}",
        "0",
    ],
    &[
        "EVAL",
        "local function f(n) if n == 0 then return cjson.decode(string.rep('[', 1100)) end return pcall(f, n-1) end \
         local r = {f(190)} return r[#r]",
        "0",
    ],
    &["EVAL", "return string.find(string.rep('a', 5000), string.rep('a?', 5000) .. '$')", "0"],
    &["EVAL", "local t = {} local c = t for i = 1, 100 do c[1] = {i} c = c[1] end return t", "0"],
    // loadstring and load are Lua in Shoal, C in Redis: a tail call keeps the script's line,
    // and bad arguments get luaL's words, naming the function as the script called it.
    &["EVAL", "return loadstring()", "0"],
    &["EVAL", "local f = loadstring return f({})", "0"],
    &["EVAL", "return load(nil)", "0"],
    &["EVAL", "return {pcall(load, 5), loadstring('return 1', {})}", "0"],
    &["EVAL", "return {pcall(function() coroutine.x = 1 end)}", "0"],
    &["EVAL", "return redis.acl_check_cmd('set', 'k', 'v')", "0"],
    &["EVAL", "return redis.acl_check_cmd('nosuch')", "0"],
    &["EVAL", "return redis.acl_check_cmd()", "0"],
    &["EVAL", "return redis.acl_check_cmd('pubsub', 'nosuch')", "0"],
    // A container's unknown subcommand names no command, as in Redis's lookup; PUBSUB's
    // questions run from scripts.
    &["EVAL", "return {redis.pcall('xinfo', 'nosuch', 'k'), redis.pcall('pubsub', 'nosuch')}", "0"],
    &["EVAL", "return {redis.call('pubsub', 'numsub', 'a', 'b'), redis.call('pubsub', 'numpat')}", "0"],
    &["EVAL", "return {redis.call('pubsub', 'channels'), redis.call('pubsub', 'shardnumsub', 'a')}", "0"],
    // The read-only tables read like the tables they stand for.
    &["EVAL", "return rawget(string, 'len') ~= nil", "0"],
    &["EVAL", "local n = 0 for k in next, math do n = n + 1 end return n", "0"],
    &["EVAL", "local t = {} for k in pairs(_G) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for k in pairs(string) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for k in pairs(table) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for k in pairs(bit) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for k in pairs(struct) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for k in pairs(coroutine) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for _, v in ipairs(KEYS) do t[#t+1] = v end return t", "2", "a", "b"],
    &["EVAL", "local c = cjson.new() c.encode_max_depth(2) return {pcall(c.encode, {{{1}}})}", "0"],
    &["EVAL", "return {pcall(cjson.encode, {{{1}}})}", "0"],
    &["EVAL", "local t = {} for k in pairs(cjson) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "local t = {} for k in pairs(redis) do t[#t+1] = tostring(k) end table.sort(t) return t", "0"],
    &["EVAL", "setmetatable(_G, {})", "0"],
    &["EVAL", "return {pcall(setmetatable, string, nil)}", "0"],
    &["EVAL", "setmetatable({}, 5)", "0"],
    &["EVAL", "local t = setmetatable({}, {__metatable = 'locked'}) return {pcall(setmetatable, t, {})}", "0"],
    &["EVAL", "local t = setmetatable({}, {__index = {a = 1}}) return t.a", "0"],
    &["EVAL", "return pairs(nil)", "0"],
    &["EVAL", "return {pcall(pairs, nil)}", "0"],
    &["EVAL", "return next(1)", "0"],
    &["EVAL", "return ipairs(nil)", "0"],
    &["EVAL", "return rawget(1, 2)", "0"],
    &["EVAL", "local f = load(5) return 1", "0"],
    &["EVAL", "return getmetatable('').__index == string", "0"],
    &["EVAL", "return {pcall(function() getmetatable('').__index.rep = nil end)}", "0"],
    &["EVAL", "return ('x'):rep(3)", "0"],
    &["EVAL", "return +", "0"],
    &["EVAL", "return 1", "-1"],
    &["EVAL", "return 1", "2", "a"],
    &["EVAL", "return 1", "x"],
    &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
    &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
    &["SCRIPT", "LOAD", "return 'loaded'"],
    &["EVALSHA", "b534286061d4b9e4026607613b95c06c06015ae8", "0"],
    &["SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8", "0000000000000000000000000000000000000000"],
    &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "s"],
    &["EVAL_RO", "return redis.call('set', 'a', 'b')", "0"],
    &["EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')", "0"],
    &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 's')", "0"],
    &["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
    &["EVAL", "#!python\nreturn 1", "0"],
    &["EVAL", "#!lua name=x\nreturn 1", "0"],
    &["SCRIPT", "DEBUG", "NO"],
    &["SCRIPT", "DEBUG", "MAYBE"],
    // The sandbox: no way out, no way to change what the next script sees.
    &["EVAL", "return x", "0"],
    &["EVAL", "x = 1", "0"],
    &["EVAL", "string.rep = nil", "0"],
    &["EVAL", "redis.call = nil", "0"],
    &["EVAL", "return os", "0"],
    &["EVAL", "return io", "0"],
    &["EVAL", "return loadfile", "0"],
    &["EVAL", "return dofile", "0"],
    &["EVAL", "return require", "0"],
    &["EVAL", "return string.rep('ab', 3)", "0"],
    &["EVAL", "return math.floor(2.7)", "0"],
    &["EVAL", "return table.concat({'a', 'b'}, '-')", "0"],
    &["EVAL", "return tonumber('12') + 1", "0"],
    &["SCRIPT", "FLUSH"],
    &["SCRIPT", "EXISTS", "b534286061d4b9e4026607613b95c06c06015ae8"],
    // Chunks from loadstring see the script's globals, not the VM's.
    &["EVAL", "return type(loadstring('return getfenv')())", "0"],
    &["EVAL", "loadstring('x = 5')() return x", "0"],
    &["EVAL", "return loadstring('return KEYS[1]')()", "1", "kk"],
    &["EVAL", "local f, e = loadstring(string.dump(function() return 1 end)) return {tostring(f), e}", "0"],
    // Lua's limit of 200 nested C calls, and the parser's nesting limit, are reached where
    // they are in Redis: the engine's own calls around a script do not count.
    &["EVAL", "local n = 0 local function f() n = n + 1 pcall(f) end pcall(f) return n", "0"],
    // unpack's count of a wide range overflowed, and an optimised build wrote past the stack.
    &["EVAL", "return {pcall(unpack, {}, -2, 2147483647)}", "0"],
    &["EVAL", "return {pcall(unpack, {}, -2147483648, 2147483647)}", "0"],
    &["EVAL", "return {pcall(unpack, {1, 2}, 2147483646, 2147483647)}", "0"],
    &["EVAL", "return {pcall(unpack, {1, 2, 3}, -1, 1)}", "0"],
    &["EVAL", "local n = 0 local mt = {} mt.__index = function(t, k) n = n + 1 return setmetatable({}, mt)[k] end \
        local ok, e = pcall(function() return setmetatable({}, mt).x end) return {n, e}", "0"],
    &["EVAL", "local function nest(n) return 'return ' .. string.rep('(', n) .. '1' .. string.rep(')', n) end \
        local r = {} for n = 195, 199 do local f, e = loadstring(nest(n)) r[#r + 1] = e or n end \
        local co = coroutine.wrap(function() local f, e = loadstring(nest(197)) return e or 'ok' end) \
        r[#r + 1] = co() return r", "0"],
    &["SCRIPT", "FLUSH", "BOGUS"],
    &["SCRIPT", "KILL"],
    // pcall and xpcall are C functions, as in Redis: error levels count the same frames.
    &["EVAL", "local function p(...) return {pcall(...)} end return {p(error, 'x', 2), p(error, 'x', 3), \
        p(pcall, error, 'x', 3), p(function() error('x', 3) end), {xpcall(function() error('x', 3) end, \
        function(e) return e end)}, {xpcall(error, nil)}, {pcall()}}", "0"],
    &["EVAL", "return xpcall(error)", "0"],
    // The innermost pcall past the C-call limit returns the error itself, as Redis's does.
    &["EVAL", "local depth, first = 0, nil local function f() depth = depth + 1 local d = depth \
        local ok, e = pcall(f) if not ok and not first then first = d .. ':' .. tostring(e) end return e end \
        f() return {depth, first}", "0"],
    &["EVAL", "local depth, first = 0, nil local function f() depth = depth + 1 local d = depth \
        local ok, e = xpcall(f, function(m) return m end) if not ok and not first then first = d .. ':' .. tostring(e) end \
        return e end f() return {depth, first}", "0"],
    &["EVAL", "return {{xpcall(function() error('x') end, function(e) error('again') end)}, \
        {xpcall(function() error({1}) end, function(e) return e end)}}", "0"],
    // glibc's %.17g, which writes the sign of 0/0's NaN (RESP2 here: a parsed NaN equals
    // nothing, so RESP3's doubles cannot be compared).
    &["EVAL", "return {{double=0/0}, {double=-(0/0)}}", "0"],
    // The error tables of redis.call and redis.pcall carry the flag that keeps a returned or
    // raised error from being counted twice (see script_errors_count_as_redis_counts_them).
    &["EVAL", "local function keys(t) local k = {} for x, y in pairs(t) do k[#k+1] = x .. '=' .. tostring(y) end \
        table.sort(k) return k end redis.call('SET', 's', 'x') return {keys(redis.pcall('nosuch')), keys(redis.pcall('INCR', 's')), \
        keys(redis.error_reply('X y')), select(2, xpcall(function() redis.call('INCR', 's') end, keys))}", "0"],
];

/// Scripts using the libraries Redis bundles: bit, struct, cmsgpack and cjson, including
/// their error texts as a script's pcall sees them.
const LIBRARY_SCRIPTS: &[&str] = &[
    "return {bit.tobit(0xffffffff), bit.tobit(2^32+5), bit.tobit(2.5), bit.tobit(3.5), bit.band(0xff, 0x0f, 0x3), bit.bor(1,2,4), bit.bxor(5,3), bit.bnot(0)}",
    "return {bit.lshift(1, 31), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 8), bit.ror(0x12345678, 8), bit.bswap(0x12345678), bit.lshift(1, 33)}",
    "return {bit.tohex(255), bit.tohex(-1, -4), bit.tohex(0x1234, 2), bit.tohex('10'), bit.tohex(1, 20)}",
    "return bit.band('x')",
    "return bit.tobit()",
    "return {pcall(bit.bor, {})}",
    "return {struct.pack('>I2', 258), struct.pack('<i4', -2), struct.pack('!4 b i', 1, 2), struct.pack('s', 'ab'), struct.pack('c0', 'xyz'), struct.pack('>d', 1.5), struct.pack('<f', 0.5), struct.pack('>L', 2^40)}",
    "return {struct.unpack('>I2', '\\1\\2')}",
    "return {struct.unpack('<hBc0', struct.pack('<hBc0', -5, 3, 'abc'))}",
    "return {struct.unpack('>!4 b i s', struct.pack('>!4 b i s', -1, 70000, 'zz'))}",
    "return {struct.unpack('>I2', 'xx\\1\\2', 3)}",
    "return {struct.size('>!4 b i d'), struct.size('hhc3')}",
    "return struct.size('s')",
    "return struct.pack('q', 1)",
    "return struct.pack('>I2')",
    "return {struct.unpack('>i4', 'ab')}",
    "return struct.pack('c5', 'ab')",
    "return {pcall(struct.unpack, 's', 'abc')}",
    // lua_struct's C casts and size_t offset, and a size that skips letters it does not know.
    "return {struct.pack('I8', 2^64), struct.pack('I8', 0/0), struct.pack('i', 1/0), struct.pack('i8', -2^64), struct.pack('I8', 2^63 + 2^62)}",
    "return {struct.size('y'), struct.size('zzz'), {struct.unpack('', 'ab', -5)}, {pcall(struct.unpack, 'b', 'ab', -5)}}",
    "return {bit.tohex(-1, -2^31), bit.tohex(255, 2^31)}",
    "return {pcall(struct.pack), pcall(struct.pack, 'i')}",
    "return cmsgpack.pack(1, -1, 127, 128, 200, -33, -200, 70000, -70000, 2^40, -2^40, 1.5, 0.1, 'abc', true, false, nil)",
    "return cmsgpack.pack({1,2,3}, {a=1}, {}, string.rep('x', 40), string.rep('y', 300), string.rep('z', 70000))",
    "return cmsgpack.pack({[1]=1, [3]=3}, {[0]=0}, {1, nil, 3})",
    "local t = {} local c = t for i=1,20 do c[1] = {} c = c[1] end return cmsgpack.pack(t)",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3, 4}, -5.25, true, 2^40))}",
    "local t = cmsgpack.unpack(cmsgpack.pack({k='v', n=3})) return {t.k, t.n}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3))}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 2)}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2, 1)}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 5)}",
    "return cmsgpack.unpack('\\205')",
    // Too many values to return, or to pack, fail with the C libraries' words (past ~7,750
    // in Shoal and 8,000 in Redis; see MLUA_RESERVE).
    "return select('#', cmsgpack.unpack(string.rep(cmsgpack.pack('abc'), 9000)))",
    "return select('#', cmsgpack.unpack_limit(string.rep(cmsgpack.pack(1), 9000), 0))",
    "return select('#', struct.unpack(string.rep('c1', 9000), string.rep('x', 9000)))",
    "local t = {} for i = 1, 5000 do t[i] = i end return cmsgpack.pack(unpack(t))",
    "return select('#', cmsgpack.unpack(string.rep(cmsgpack.pack(1), 7000)))",
    // NaN packs as a double, uint 64 reads as a signed integer, bin 8/16/32 are not read.
    "return {cmsgpack.pack(0/0):len(), cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')}",
    "return {pcall(cmsgpack.unpack, '\\196\\3abc'), pcall(cmsgpack.unpack, '\\197\\0\\1a')}",
    "return cmsgpack.unpack('\\193')",
    "return cmsgpack.pack()",
    "return {cmsgpack.unpack_one('\\1', 5)}",
    "return {pcall(cmsgpack.unpack, '\\220\\0\\5\\1')}",
    "return cjson.encode({1, 2, 'three', true, false, {a='b/c'}, cjson.null})",
    "return {cjson.encode({}), cjson.encode({[1]=1,[2]=2,[4]=4}), cjson.encode({key='value'}), cjson.encode({[1]=1, x=2})}",
    "return cjson.encode({[20]=1})",
    "return cjson.encode('a\"b\\\\c\\n\\t\\1\\31\\127/\\200')",
    "return {cjson.encode(0.1), cjson.encode(1e20), cjson.encode(-0), cjson.encode(123456789012345678), cjson.encode(1/3), cjson.encode(-1e-7), cjson.encode(100)}",
    "return cjson.encode(1/0)",
    "return cjson.encode(function() end)",
    "return cjson.encode({[true]=1})",
    "return cjson.encode({[1.5]=1})",
    "local t = cjson.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"\\\\u00e9\\\\ud83d\\\\ude00\\\\n\\\\/\"}') return {t.a[1], t.a[2], type(t.a[3].b), t.c, tostring(t.a[3].b == cjson.null)}",
    "return cjson.decode('')",
    "return cjson.decode('{\"a\" 1}')",
    "return cjson.decode('[1,2')",
    "return cjson.decode('[1] x')",
    "return cjson.decode('\"\\\\x\"')",
    "return cjson.decode('tru')",
    "return cjson.decode('{1:2}')",
    "return cjson.decode('[1,]')",
    "return cjson.decode('\"abc')",
    "return {pcall(cjson.decode, '{')}",
    "return {cjson.decode('-1.5e2'), cjson.decode('  true '), cjson.decode('\"x\"'), cjson.decode('0.25')}",
    "return cjson.decode(string.rep('[', 1100))",
    // Numbers JSON forbids are read by strtod, as lua_cjson reads them (decode_invalid_numbers
    // is on), and refused with it off.
    "return cjson.decode('[+1, 0x1F, 007, 1e5, -0x10, 0x1p3]')",
    "return {cjson.decode('infinity') == math.huge, cjson.decode('-Inf') == -math.huge, cjson.decode('nan(123)') ~= 0}",
    "return {pcall(cjson.decode, '+'), pcall(cjson.decode, '0x'), pcall(cjson.decode, '-'), pcall(cjson.decode, '1e+')}",
    "local c = cjson.new() c.decode_invalid_numbers(false) return {pcall(c.decode, '0x10'), pcall(c.decode, '+1'), pcall(c.decode, '-inf'), c.decode('0.5')}",
    "return cjson.encode(cjson.decode('[1.5,\"x\",{\"k\":[true]},[],{}]'))",
    "local t = {} local c = t for i=1,1100 do c[1] = {} c = c[1] end return cjson.encode(t)",
    // Nesting up to lua-cjson's limits, which a raised decode_max_depth leaves to the room on
    // the Lua stack: each open array takes one slot, each open object two.
    "return {#cjson.encode(cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))), \
     #cjson.encode(cjson.decode(string.rep('{\"a\":', 1000) .. '1' .. string.rep('}', 1000)))}",
    "local c = cjson.new() c.decode_max_depth(100000) local out = {} \
     for _, d in ipairs({7998, 7999}) do out[#out+1] = {pcall(c.decode, string.rep('[', d) .. string.rep(']', d))} end \
     for _, d in ipairs({3999, 4000}) do out[#out+1] = {pcall(c.decode, string.rep('{\"a\":', d) .. '1' .. string.rep('}', d))} end \
     for i, r in ipairs(out) do out[i] = {r[1], type(r[2]) == 'string' and r[2] or 'table'} end return out",
    // lua_cjson reads a C string: a NUL ends the text, or a string early.
    "local function p(...) return {pcall(...)} end return {p(cjson.decode, '[1]\\0garbage'), p(cjson.decode, '\"a\\0b\"'), p(cjson.decode, '\"ab\\\\')}",
    "cjson.encode = nil",
    "bit.x = 1",
    "local function p(...) return {pcall(...)} end return {p(bit.band, 1, 'a', true), p(bit.bor, {}, 1, 2)}",
    // lua_struct checks the data's length before an option it does not know, aligns sizes that
    // are no power of 2, sign-extends integers wider than 8 bytes from the bit x86's shift
    // count modulo 64 picks, and takes a c0's size from a number or the data before it.
    "local function p(...) return {pcall(...)} end return {p(struct.unpack, 'J', 'ab', 100), p(struct.unpack, '3b', 'abc', 10), p(struct.unpack, 'J', 'ab')}",
    "return {struct.pack('!4ci3', 'a', 12), struct.pack('!8bi5i3', 1, 2, 3)}",
    "return {struct.unpack('i9', '\\203\\138\\11\\43\\130\\116\\150\\45\\27'), struct.unpack('>i10', '\\1\\2\\3\\4\\5\\6\\7\\8\\9\\10')}",
    "return {pcall(struct.unpack, 'bc0', '\\255abc'), {struct.unpack('c0b', '0\\5')}, {struct.unpack('c1c0', '2abc')}}",
    "return {struct.pack('s', 0/0), struct.pack('s', -(0/0))}",
    // lua_cmsgpack stores each pair as it reads it: Lua refuses a nil or NaN key there, before
    // any later fault. It tests integers with a C cast, and takes offsets as C ints.
    "local function p(...) return {pcall(...)} end return {p(cmsgpack.unpack, '\\129\\192\\1'), p(cmsgpack.unpack, '\\130\\192\\1'), \
     p(cmsgpack.unpack, '\\129\\203\\127\\248\\0\\0\\0\\0\\0\\0\\1'), p(cmsgpack.unpack, '\\129\\192\\193'), \
     p(cmsgpack.unpack_limit, '\\1\\129\\192\\1', 1), p(cmsgpack.unpack, '\\145\\129\\1\\192')}",
    "return cmsgpack.unpack('\\129\\192\\1')",
    "return {cmsgpack.pack(2^63), cmsgpack.pack(-2^63), cmsgpack.pack(-0.0), cmsgpack.pack(2^64)}",
    "local function p(...) return {pcall(...)} end return {p(cmsgpack.unpack_one, '\\1', 0/0), p(cmsgpack.unpack_one, '\\1\\2', 2^32 + 1), \
     p(cmsgpack.unpack_limit, '\\1\\2', 2^32 + 1), p(cmsgpack.unpack_one, '\\1', -2^40)}",
    "return {type(cjson.null), type(cmsgpack.pack), type(struct.unpack), type(bit.band)}",
    // Number conversion (plain integers take a shortcut past strtod in Shoal's Lua and in
    // its score parser): the same values and the same refusals as Redis's.
    "local out = {} for _, s in ipairs({'0', '-0', '007', '-12', '123456789012345', '-123456789012345', \
     '1234567890123456', '99999999999999999999', '1e3', ' 12', '12 ', '0x10', '-', '', '+5', '1.5', '--1', '12a', '-007'}) \
     do out[#out+1] = tostring(tonumber(s)) end return {out, tostring('-0' * 1), tostring('41' + 1), tostring(1/tonumber('-0'))}",
    // (Not a negative zero as a score: a small sorted set in redis-server stores it as 0.)
    "redis.call('del', 'zn') redis.call('zadd', 'zn', '00', 'a', '007', 'b', '123456789012345', 'c', '-1234567890123456', 'd', \
     '99999999999999999999', 'e', '1e3', 'f', '-12', 'g') return {redis.call('zrange', 'zn', 0, -1, 'withscores'), \
     redis.pcall('zadd', 'zn', '12a', 'h'), redis.pcall('zadd', 'zn', '-', 'h'), redis.pcall('zadd', 'zn', '', 'h')}",
];

#[test]
fn scripts_answer_as_redis_does() {
    let redis = RedisServer::start();
    let s = Server::start();
    let (mut theirs, mut mine) = both(&redis, &s, "2");
    for cmd in SCRIPTS {
        assert_eq!(mine.cmd(cmd), theirs.cmd(cmd), "{cmd:?}");
    }
    // Code nested just within, and just past, the parser's limit, as a script and as a
    // library.
    for n in [197, 198] {
        let nested = format!("{}1{}", "(".repeat(n), ")".repeat(n));
        let script = format!("return {nested}");
        let library =
            format!("#!lua name=nest\nlocal x = {nested}\nredis.register_function('n', function() return x end)");
        for cmd in [&["EVAL", script.as_str(), "0"][..], &["FUNCTION", "LOAD", "REPLACE", library.as_str()]] {
            assert_eq!(mine.cmd(cmd), theirs.cmd(cmd), "{n} levels: {:?}", &cmd[..2]);
        }
    }
    for script in LIBRARY_SCRIPTS {
        let cmd = ["EVAL", script, "0"];
        assert_eq!(mine.cmd(&cmd), theirs.cmd(&cmd), "{script}");
    }
}

/// Precompiled Lua is never loaded, however it arrives (an EVAL body, a library, loadstring,
/// load): crafted bytecode reads and writes memory outside any Lua 5.1 sandbox, which is why
/// Redis reads every chunk as text. Each is refused with Redis's words.
#[test]
fn precompiled_chunks_are_never_loaded() {
    let redis = RedisServer::start();
    let s = Server::start();
    let (mut theirs, mut mine) = both(&redis, &s, "2");
    // Bytecode of `return 42`, as string.dump makes it (scripts may call it, as in Redis).
    let Frame::Bulk(bytecode) = mine.cmd(&["EVAL", "return string.dump(loadstring('return 42'))", "0"]) else {
        panic!("string.dump")
    };
    assert!(bytecode.starts_with(b"\x1bLua"));
    let mut library = b"#!lua name=bin\n".to_vec();
    library.extend_from_slice(&bytecode);
    let reader = "local done = false \
        local f, e = load(function() if done then return nil end done = true return ARGV[1] end) return e";
    let cases: [&[&[u8]]; 4] = [
        &[b"EVAL", &bytecode, b"0"],
        &[b"FUNCTION", b"LOAD", &library],
        &[b"EVAL", b"local f, e = loadstring(ARGV[1]) return e", b"0", &bytecode],
        &[b"EVAL", reader.as_bytes(), b"0", &bytecode],
    ];
    for case in cases {
        let req = Raw::encode(case);
        mine.send(&req);
        theirs.send(&req);
        let (ours, redis) = (mine.read(), theirs.read());
        let text = match &ours {
            Frame::Error(e) | Frame::Bulk(e) => String::from_utf8_lossy(e).into_owned(),
            other => panic!("{other:?}"),
        };
        assert!(text.contains("unexpected symbol near 'char(27)'"), "{text}");
        assert_eq!(ours, redis);
    }
}

/// A connection to redis-server and one to Shoal, both speaking RESP `proto`.
fn both(redis: &RedisServer, s: &Server, proto: &str) -> (Raw, Raw) {
    let mut theirs = redis.raw();
    let mut mine = s.raw();
    theirs.cmd(&["HELLO", proto]);
    mine.cmd(&["HELLO", proto]);
    (theirs, mine)
}

/// Script return values with Redis 7's RESP3 shapes (`{map=...}`, `{double=...}`, ...) and
/// booleans after `redis.setresp(3)`: each as redis-server replies to a RESP2 and to a RESP3
/// client.
const TYPED_RETURNS: &[&str] = &[
    "return {double=3.14}",
    "return {double=3}",
    "return {double=1/0}",
    "return {double='x'}",
    "return {map={a=1}}",
    "return {map={}}",
    "return {map=1}",
    "return {set={a=true}}",
    "return {big_number='1234'}",
    "return {verbatim_string={format='txt', string='hello'}}",
    "return {verbatim_string={format='mkd'}}",
    "return {1, {double=2.5}, {map={x={set={y=1}}}}}",
    "return {ok='s', double=2}",
    "return {err='E x', map={}}",
    "return {double=2, map={a=1}}",
    "return {'a', err='E first'}",
    "return nil",
    "return false",
    "return true",
    "redis.setresp(3) return true",
    "redis.setresp(3) return false",
    "redis.setresp(3) return {true, false, 'x'}",
    "redis.setresp(3) redis.call('hset', 'h3', 'f', 'v') return redis.call('hgetall', 'h3')",
    "redis.setresp(3) return redis.call('zscore', 'z3', 'nosuch')",
    "return {{double=1/0}, {double=-1/0}, {double=-0.0}}",
];

#[test]
fn typed_returns_answer_as_redis_does() {
    let redis = RedisServer::start();
    let s = Server::start();
    for proto in ["2", "3"] {
        let (mut theirs, mut mine) = both(&redis, &s, proto);
        for script in TYPED_RETURNS {
            let cmd = ["EVAL", script, "0"];
            assert_eq!(mine.cmd(&cmd), theirs.cmd(&cmd), "RESP{proto}: {script}");
        }
    }
}

/// Scripts whose errors INFO counts: raised, returned, nested in the value, from commands
/// the script ran (counted once, as the command failed), flagged by the script itself.
const COUNTED_ERRORS: &[&str] = &[
    "return redis.call('INCR', 'str')",
    "return redis.pcall('INCR', 'str')",
    "redis.pcall('INCR', 'str') return 1",
    "return pcall(redis.call, 'INCR', 'str')",
    "return redis.error_reply('MYERR x')",
    "return redis.call('nosuch')",
    "return redis.call('GET')",
    "error('plain')",
    "return {1, {err='NESTED a'}, {err='-DASH b'}, {err='nospace'}, {err=' lead'}, {err='a\\nb c'}, \
     {err='Z y', ignore_error_stats_update='yes'}}",
    // (Redis counts one failed call more per flagged error among others: see compatibility.md.)
    "return {1, {err='X y', ignore_error_stats_update=true}}",
    "error({err='RAISED x', ignore_error_stats_update=true})",
    "error({err='COUNTED x', ignore_error_stats_update=1})",
];

/// Scripts' errors count in INFO errorstats, and their calls as failed in commandstats, as
/// redis-server counts them.
#[test]
fn script_errors_count_as_redis_counts_them() {
    let redis = RedisServer::start();
    let s = Server::start();
    let (mut theirs, mut mine) = both(&redis, &s, "2");
    for r in [&mut theirs, &mut mine] {
        r.cmd(&["SET", "str", "x"]);
        r.cmd(&["CONFIG", "RESETSTAT"]);
        for script in COUNTED_ERRORS {
            r.cmd(&["EVAL", script, "0"]);
        }
    }
    let counts = |r: &mut Raw| {
        let Frame::Bulk(info) = r.cmd(&["INFO", "ALL"]) else { panic!("INFO is a bulk string") };
        let info = String::from_utf8_lossy(&info).into_owned();
        let mut lines: Vec<String> = info
            .lines()
            .filter(|l| l.starts_with("errorstat_") || l.starts_with("total_error_replies"))
            .map(str::to_owned)
            .collect();
        let eval = info.lines().find(|l| l.starts_with("cmdstat_eval:")).expect("EVAL ran");
        lines.extend(eval.split(',').filter(|f| f.contains("_calls=")).map(str::to_owned));
        lines.sort();
        lines
    };
    assert_eq!(counts(&mut mine), counts(&mut theirs));
}

/// `redis.acl_check_cmd` answers for the script's user, as redis-server's does, and logs
/// nothing; `redis.REDIS_VERSION` is the version INFO reports.
#[test]
fn acl_check_cmd_answers_for_the_scripts_user() {
    let redis = RedisServer::start();
    let s = Server::start();
    let mut theirs = redis.raw();
    let mut mine = s.raw();
    let check = "return {redis.acl_check_cmd('set', 'k1', 'v'), redis.acl_check_cmd('get', 'k1'), \
                 redis.acl_check_cmd('get', 'other'), redis.acl_check_cmd('config', 'get', 'x')}";
    for cmd in [
        &["ACL", "SETUSER", "u", "on", ">p", "~k*", "+@all", "-set", "-config|get"][..],
        &["AUTH", "u", "p"],
        &["EVAL", check, "0"],
        &["ACL", "LOG"],
    ] {
        assert_eq!(mine.cmd(cmd), theirs.cmd(cmd), "{cmd:?}");
    }
    let info = s.raw().cmd(&["INFO", "server"]);
    let Frame::Bulk(info) = info else { panic!("INFO: {info:?}") };
    let version = String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:").map(str::to_string))
        .expect("redis_version");
    assert_eq!(s.raw().cmd(&["EVAL", "return redis.REDIS_VERSION", "0"]), bulk(&version));
    let num: Vec<i64> = version.split('.').map(|p| p.parse().unwrap()).collect();
    let expected = (num[0] << 16) | (num[1] << 8) | num[2];
    assert_eq!(s.raw().cmd(&["EVAL", "return redis.REDIS_VERSION_NUM", "0"]), Frame::Integer(expected));
}

/// FUNCTION LOAD and FCALL answer as redis-server's do: registration in both forms, flags,
/// read-only calls, errors at load and at run time, LIST, DELETE, DUMP and RESTORE.
#[test]
fn functions_answer_as_redis_does() {
    let redis = RedisServer::start();
    let s = Server::start();
    let mut theirs = redis.raw();
    let mut mine = s.raw();
    let lib = "#!lua name=mylib\n\
        redis.register_function('setter', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
        redis.register_function{function_name='getter', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n\
        redis.register_function('sneaky', function(keys, args) return redis.call('set', 'x', 'y') end)\n\
        redis.register_function('broken', function() local t = nil return t.x end)\n\
        redis.register_function('globals', function() return KEYS end)\n\
        redis.register_function('library', function() local t = {} for k in pairs(redis) do t[#t+1] = k end table.sort(t) return t end)\n\
        redis.register_function('typed', function() return {map={a={double=1.5}}} end)\n\
        redis.register_function('loads', function() local ok, f = pcall(loadstring, 'return type(redis.register_function)') return f() end)";
    let cases: &[&[&str]] = &[
        &["FUNCTION", "FLUSH"],
        &["FUNCTION", "LOAD", lib],
        &["FUNCTION", "LOAD", lib],
        &["FCALL", "setter", "1", "k", "v"],
        &["FCALL", "getter", "1", "k"],
        &["FCALL_RO", "getter", "1", "k"],
        &["FCALL_RO", "setter", "1", "k", "v"],
        &["FCALL", "broken", "0"],
        &["FCALL", "globals", "0"],
        &["FCALL", "library", "0"],
        &["FCALL", "typed", "0"],
        &["FCALL", "loads", "0"],
        &["FCALL", "nosuch", "0"],
        &["FCALL", "setter", "5", "k"],
        &["FCALL", "setter", "-1"],
        // The function first, then the key count, in FCALL's own words; names in any case.
        &["FCALL", "nosuch", "x"],
        &["FCALL", "setter", "x"],
        &["FCALL", "SETTER", "1", "k", "v"],
        &["FCALL_RO", "Getter", "1", "k"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('GETTER', function() return 1 end)"],
        // Library names match a LIST pattern in any case, but DELETE's only in theirs.
        &["FUNCTION", "LOAD", "#!lua name=Solo\nredis.register_function('solo_f', function() return 1 end)"],
        &["FUNCTION", "LIST", "LIBRARYNAME", "sOLO"],
        &["FUNCTION", "DELETE", "solo"],
        &["FUNCTION", "DELETE", "Solo"],
        // A SHA1 of another length names no script, whatever follows; the key count comes
        // before a 40-digit one is looked up.
        &["EVALSHA", "abc", "x"],
        &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "x"],
        &["FUNCTION", "LOAD", "REPLACE", lib],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('setter', function() end)"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('bad name', function() end)"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('f', 5)"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)"],
        &["FUNCTION", "LOAD", "#!lua name=other\nlocal x = 1"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.call('ping')"],
        &["FUNCTION", "LOAD", "#!lua name=other\nfoo = 1"],
        // While it loads, a library sees `redis` and nothing else (Redis 7.0's library API)...
        &["FUNCTION", "LOAD", "#!lua name=other\nlocal f = string.format"],
        &["FUNCTION", "LOAD", "#!lua name=other\nlocal f = pairs"],
        &["FUNCTION", "LOAD", "#!lua name=other\nlocal f = redis.setresp"],
        // ... but its functions, and helpers it made while loading, see every global when run.
        &["FUNCTION", "LOAD", "#!lua name=versioned\nlocal v = redis.REDIS_VERSION .. redis.REDIS_VERSION_NUM\n\
            local function up(s) return string.upper(s) .. type(v) end\n\
            redis.register_function('up', function(keys, args) return up(args[1]) end)"],
        &["FCALL", "up", "0", "abc"],
        &["FUNCTION", "LOAD", "#!lua name=other\nreturn +"],
        &["FUNCTION", "LOAD", "#!lua name=other\nwhile true do end"],
        &["FUNCTION", "LOAD", "#!lua name=other foo=bar\n"],
        &["FUNCTION", "LOAD", "#!lua\nx"],
        &["FUNCTION", "LOAD", "#!python name=x\nx"],
        &["FUNCTION", "LOAD", "return 1"],
        &["FUNCTION", "LOAD", "#!lua name=one\nredis.register_function('one', function() return 1 end)"],
        &["FUNCTION", "LIST", "LIBRARYNAME", "on*"],
        &["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "one"],
        &["FUNCTION", "DELETE", "nope"],
        &["FUNCTION", "DELETE", "one"],
        &["FCALL", "one", "0"],
        // register_function reads its arguments as Redis does: keys and flag names in any
        // case, numbers where a string is wanted, flags listed once each in Redis's order.
        &["FUNCTION", "LOAD", "#!lua NAME=flagged\nredis.register_function{FUNCTION_NAME='fl', Callback=function() return 1 end, \
            flags={'ALLOW-OOM', 'no-writes', 'no-writes'}, description=5.5}"],
        &["FUNCTION", "LIST", "LIBRARYNAME", "flagged"],
        &["FUNCTION", "LOAD", "#!lua name=numbered\nredis.register_function(77, function() return 7 end)"],
        &["FCALL", "77", "0"],
        &["FUNCTION", "DELETE", "flagged"],
        &["FUNCTION", "DELETE", "numbered"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function(5)"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function{[1]=5}"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function{function_name='x', callback=function() end, flags={5}}"],
        &["FUNCTION", "LOAD", "#!lua name=other name=again\n"],
        &["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME"],
        &["FUNCTION", "KILL"],
        &["FUNCTION", "RESTORE", "bogus"],
        &["FUNCTION", "FLUSH", "BOGUS"],
    ];
    for cmd in cases {
        assert_eq!(mine.cmd(cmd), theirs.cmd(cmd), "{cmd:?}");
    }
    // DUMP moves libraries both ways between Redis and Shoal.
    let Frame::Bulk(from_redis) = theirs.cmd(&["FUNCTION", "DUMP"]) else { panic!("DUMP") };
    let Frame::Bulk(from_shoal) = mine.cmd(&["FUNCTION", "DUMP"]) else { panic!("DUMP") };
    for (r, payload) in [(&mut mine, &from_redis), (&mut theirs, &from_shoal)] {
        let mut restore = Raw::encode(&[b"FUNCTION", b"RESTORE", payload, b"REPLACE"]);
        r.send(&restore);
        assert_eq!(r.read(), ok());
        restore.clear();
        assert_eq!(r.cmd(&["FCALL", "getter", "1", "k"]), bulk("v"));
    }
    // RESTORE over libraries of the same names: every library's name is checked before any
    // function's, in RESTORE's own words (which one is named first is the servers' order).
    for r in [&mut mine, &mut theirs] {
        let Frame::Bulk(payload) = r.cmd(&["FUNCTION", "DUMP"]) else { panic!("DUMP") };
        r.send(&Raw::encode(&[b"FUNCTION", b"RESTORE", &payload]));
        let reply = r.read();
        let Frame::Error(e) = &reply else { panic!("RESTORE: {reply:?}") };
        let e = String::from_utf8_lossy(e);
        assert!(e.starts_with("ERR Library ") && e.ends_with(" already exists") && !e.contains('\''), "{e}");
    }
    // A library whose name is taken is refused before one whose function is.
    for r in [&mut mine, &mut theirs] {
        r.cmd(&["FUNCTION", "FLUSH"]);
        r.cmd(&["FUNCTION", "LOAD", "#!lua name=liba\nredis.register_function('fa', function() return 1 end)"]);
        r.cmd(&["FUNCTION", "LOAD", "#!lua name=libz\nredis.register_function('fz', function() return 2 end)"]);
        let Frame::Bulk(payload) = r.cmd(&["FUNCTION", "DUMP"]) else { panic!("DUMP") };
        r.cmd(&["FUNCTION", "FLUSH"]);
        r.cmd(&["FUNCTION", "LOAD", "#!lua name=libb\nredis.register_function('fa', function() return 3 end)"]);
        r.cmd(&["FUNCTION", "LOAD", "#!lua name=libz\nredis.register_function('fy', function() return 4 end)"]);
        r.send(&Raw::encode(&[b"FUNCTION", b"RESTORE", &payload]));
        assert_eq!(r.read(), err("ERR Library libz already exists"));
    }
    let stats = mine.cmd(&["FUNCTION", "STATS"]);
    assert_eq!(stats, theirs.cmd(&["FUNCTION", "STATS"]));
}

/// At the memory limit (noeviction) scripts and functions are refused, or run, as in
/// redis-server: code with declared flags that may write is refused before it starts unless
/// flagged `allow-oom`, which lets its writes through; a Redis 6 style script has each denyoom
/// command refused until it has written, after which it runs to its end; FUNCTION LOAD and
/// RESTORE are refused, and `*_RO` commands refuse code that may write.
#[test]
fn scripts_meet_the_memory_limit_as_redis_does() {
    let redis = RedisServer::start();
    let s = Server::start();
    let mut theirs = redis.raw();
    let mut mine = s.raw();
    let lib = "#!lua name=oomlib\n\
        redis.register_function('w', function(k) return redis.call('set', k[1], 'v') end)\n\
        redis.register_function{function_name='r', callback=function(k) return redis.call('get', k[1]) end, flags={'no-writes'}}\n\
        redis.register_function{function_name='o', callback=function(k) return redis.call('set', k[1], 'v') end, flags={'allow-oom'}}\n\
        redis.register_function('x', function(k) return redis.call('get', k[1]) end)";
    let cases: &[&[&str]] = &[
        &["FUNCTION", "LOAD", lib],
        &["SET", "key", "v"],
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
        // Over the limit in both servers, whatever each counts as used.
        &["CONFIG", "SET", "maxmemory", "1"],
        &["EVAL", "return redis.call('set', 'x', '1')", "0"],
        &["EVAL", "return {redis.pcall('set', 'x', '3'), redis.pcall('set', 'y', '3')}", "0"],
        &[
            "EVAL",
            "return {redis.call('get', 'key'), redis.pcall('set', 'x', '4'), redis.pcall('append', 'key', 'z')}",
            "0",
        ],
        // DEL is a write that is not refused: the script has written, so SET runs.
        &["EVAL", "redis.call('del', 'nokey') return redis.pcall('set', 'x', '2')", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVAL", "#!lua\nreturn redis.call('get', 'key')", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'key')", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.pcall('set', 'key', 'q')", "0"],
        &["EVAL", "#!lua flags=allow-oom\nreturn {redis.call('set', 'x', '5'), redis.call('append', 'x', '6')}", "0"],
        &["EVAL_RO", "#!lua flags=allow-oom\nreturn 1", "0"],
        &["EVAL_RO", "return redis.call('get', 'key')", "0"],
        &["FCALL", "w", "1", "a"],
        &["FCALL", "r", "1", "key"],
        &["FCALL", "o", "1", "b"],
        &["FCALL", "x", "1", "key"],
        &["FCALL_RO", "o", "1", "b"],
        &["FCALL_RO", "x", "1", "key"],
        &["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('f', function() return 1 end)"],
        &["FUNCTION", "RESTORE", "bogus"],
        &["SCRIPT", "LOAD", "return 1"],
        &["MGET", "x", "y", "a", "b", "key"],
        &["FUNCTION", "DELETE", "oomlib"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["EVAL_RO", "#!lua\nreturn 1", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
    ];
    for cmd in cases {
        assert_eq!(mine.cmd(cmd), theirs.cmd(cmd), "{cmd:?}");
    }
}

/// Redis judges the memory limit once, as a script starts: a script that starts under it
/// runs to its end even when its first write takes memory past it; the next command is
/// refused. Both servers, each with its limit just above what it uses. (The value is made
/// by the script: arguments that large would count against the limit at the start.)
#[test]
fn a_script_that_starts_under_the_memory_limit_is_not_refused() {
    let redis = RedisServer::start();
    let s = Server::start();
    let (mut theirs, mut mine) = both(&redis, &s, "2");
    for r in [&mut mine, &mut theirs] {
        let Frame::Bulk(info) = r.cmd(&["INFO", "memory"]) else { panic!("INFO") };
        let info = String::from_utf8_lossy(&info).into_owned();
        let used: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory");
        assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), ok());
        assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", &(used + 500_000).to_string()]), ok());
        let script = "redis.call('SET', KEYS[1], string.rep('x', 1000000)) return redis.call('STRLEN', KEYS[1])";
        assert_eq!(r.cmd(&["EVAL", script, "1", "big"]), int(1_000_000));
        let refused = r.cmd(&["SET", "more", "x"]);
        assert!(matches!(&refused, Frame::Error(e) if e.starts_with(b"OOM")), "{refused:?}");
        assert_eq!(r.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
    }
}

/// INFO memory reports the Lua VM's size and what is cached in it, as Redis does: it grows
/// with the scripts loaded and shrinks again when SCRIPT FLUSH empties the cache.
#[test]
fn info_memory_reports_the_script_cache() {
    let s = Server::start();
    let mut con = s.redis();
    let field = |con: &mut redis::Connection, name: &str| -> u64 {
        let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
        let line = info.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string));
        line.unwrap_or_else(|| panic!("no {name} in {info}")).trim().parse().unwrap()
    };
    let before = field(&mut con, "used_memory_lua");
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 0);
    // A script with a large table constructor: its compiled form takes room in the VM.
    let big = format!("return {{{}}}", (0..5000).map(|i| format!("'v{i}'")).collect::<Vec<_>>().join(","));
    let small = "return 1";
    for body in [big.as_str(), small] {
        let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(body).query(&mut con).unwrap();
    }
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 2);
    assert_eq!(field(&mut con, "used_memory_scripts_eval"), (big.len() + small.len()) as u64);
    let loaded = field(&mut con, "used_memory_lua");
    assert!(loaded > before + 50_000, "used_memory_lua {before} -> {loaded}");
    assert_eq!(field(&mut con, "used_memory_vm_total"), loaded);

    let lib = "#!lua name=m\nredis.register_function('a', function() return 1 end)\nredis.register_function('b', function() return 2 end)";
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg(lib).query(&mut con).unwrap();
    assert_eq!(field(&mut con, "number_of_libraries"), 1);
    assert_eq!(field(&mut con, "number_of_functions"), 2);
    assert_eq!(field(&mut con, "used_memory_functions"), lib.len() as u64);

    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 0);
    assert_eq!(field(&mut con, "used_memory_scripts_eval"), 0);
    let flushed = field(&mut con, "used_memory_lua");
    assert!(flushed < loaded - 50_000, "used_memory_lua {loaded} -> {flushed} after SCRIPT FLUSH");
    // The library is loaded again into the fresh VM.
    assert_eq!(field(&mut con, "number_of_functions"), 2);
}

/// EVAL's scripts are evicted past 500, the least recently run first, as Redis 7.4 evicts
/// them; SCRIPT LOAD's stay, and so does an EVAL script SCRIPT LOAD names again. INFO and
/// the metrics count the evictions.
#[test]
fn eval_scripts_past_500_are_evicted_least_recently_run_first() {
    let s = Server::start_with(&["--metrics"]);
    let mut r = s.raw();
    let body = |i: usize| format!("return {i}");
    let sha = |r: &mut Raw, i: usize| match r.cmd(&["SCRIPT", "LOAD", &body(i)]) {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    // Script 0 is SCRIPT LOAD's; 1 and 2 EVAL's, 2 then pinned by SCRIPT LOAD.
    let pinned = sha(&mut r, 0);
    for i in 1..=500 {
        assert_eq!(r.cmd(&["EVAL", &body(i), "0"]), int(i as i64));
    }
    let two = sha(&mut r, 2);
    // Script 3, run again, is now the most recently run.
    let three = sha1_hex(&body(3));
    assert_eq!(r.cmd(&["EVALSHA", &three, "0"]), int(3));
    assert_eq!(s.info_field("evicted_scripts"), "0");
    for i in 501..=510 {
        assert_eq!(r.cmd(&["EVAL", &body(i), "0"]), int(i as i64));
    }
    // 499 EVAL scripts were evictable before (2 was pinned); 502..=510 each pushed one out,
    // the least recently run: 1, then 4 to 11 (3 ran again). 500 stay, and the two pinned.
    assert_eq!(s.info_field("number_of_cached_scripts"), "502");
    assert_eq!(s.info_field("evicted_scripts"), "9");
    let exists = |r: &mut Raw, sha: &str| r.cmd(&["SCRIPT", "EXISTS", sha]) == arr(vec![int(1)]);
    assert!(exists(&mut r, &pinned) && exists(&mut r, &two) && exists(&mut r, &three));
    assert!(!exists(&mut r, &sha1_hex(&body(1))), "the least recently run went first");
    assert!(!exists(&mut r, &sha1_hex(&body(11))), "then the next ones");
    assert!(exists(&mut r, &sha1_hex(&body(12))));
    assert!(matches!(r.cmd(&["EVALSHA", &sha1_hex(&body(1)), "0"]), Frame::Error(e) if e.starts_with(b"NOSCRIPT")));
    let metrics = shoal_tests::http_get(s.metrics_port.expect("metrics on"), "/metrics").1;
    assert!(metrics.contains("shoal_scripts_evicted_total 9\n"), "{metrics}");
    assert!(metrics.contains("shoal_scripts_cached 502\n"), "{metrics}");
    assert_eq!(r.cmd(&["CONFIG", "RESETSTAT"]), ok());
    assert_eq!(s.info_field("evicted_scripts"), "0");
}

/// Libraries outlive a restart, as Redis keeps them in its RDB and AOF.
#[test]
fn function_libraries_survive_a_restart() {
    let dir = shoal_tests::fresh_dir("functions-restart");
    let lib = "#!lua name=kept\nredis.register_function('kept', function() return 'still here' end)";
    {
        let s = Server::start_in(&dir, &[]);
        assert_eq!(s.raw().cmd(&["FUNCTION", "LOAD", lib]), bulk("kept"));
    }
    let s = Server::start_in(&dir, &[]);
    assert_eq!(s.raw().cmd(&["FCALL", "kept", "0"]), bulk("still here"));
    assert_eq!(s.raw().cmd(&["FUNCTION", "FLUSH"]), ok());
    drop(s);
    let s = Server::start_in(&dir, &[]);
    assert_eq!(s.raw().cmd(&["FCALL", "kept", "0"]), err("ERR Function not found"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A script moves value between keys in different shards while other clients read both keys
/// and run scripts of their own: no reader ever sees a half-done transfer.
#[test]
fn a_script_is_atomic_over_keys_in_several_shards() {
    let s = Server::start_with(&["--shards", "4"]);
    let mut setup = s.raw();
    // Keys without a hash tag, so they land in different slots (and shards).
    let accounts: Vec<String> = (0..8).map(|i| format!("account:{i}")).collect();
    for a in &accounts {
        assert_eq!(setup.cmd(&["SET", a, "1000"]), ok());
    }
    let transfer = "local n = tonumber(ARGV[1]) \
        if tonumber(redis.call('get', KEYS[1])) < n then return 0 end \
        redis.call('decrby', KEYS[1], n) redis.call('incrby', KEYS[2], n) return 1";
    let Frame::Bulk(sha) = setup.cmd(&["SCRIPT", "LOAD", transfer]) else { panic!("SCRIPT LOAD") };
    let sha = String::from_utf8(sha.to_vec()).unwrap();
    let total = 1000 * accounts.len() as i64;
    let s = &s;
    std::thread::scope(|scope| {
        for w in 0..3 {
            let (accounts, sha) = (&accounts, &sha);
            scope.spawn(move || {
                let mut c = s.raw();
                for i in 0..300 {
                    let from = &accounts[(i * 3 + w) % accounts.len()];
                    let to = &accounts[(i * 5 + w + 1) % accounts.len()];
                    if from != to {
                        let Frame::Integer(_) = c.cmd(&["EVALSHA", sha, "2", from, to, "7"]) else { panic!("EVALSHA") };
                    }
                }
            });
        }
        let accounts = &accounts;
        scope.spawn(move || {
            let mut c = s.raw();
            let sum = "local t = 0 for _, k in ipairs(KEYS) do t = t + tonumber(redis.call('get', k)) end return t";
            let mut mget = vec!["MGET"];
            mget.extend(accounts.iter().map(String::as_str));
            for _ in 0..200 {
                let mut eval = vec!["EVAL", sum, "8"];
                eval.extend(accounts.iter().map(String::as_str));
                assert_eq!(c.cmd(&eval), Frame::Integer(total), "a script saw a transfer half done");
                let Frame::Array(values) = c.cmd(&mget) else { panic!("MGET") };
                let seen: i64 = values
                    .iter()
                    .map(|v| match v {
                        Frame::Bulk(b) => std::str::from_utf8(b).unwrap().parse::<i64>().unwrap(),
                        other => panic!("{other:?}"),
                    })
                    .sum();
                assert_eq!(seen, total, "MGET saw a transfer half done");
            }
        });
    });
}

/// Clients running scripts at once, each as its own ACL user in its own database: every
/// script runs with its own client's user, database and arguments, and its reply reaches that
/// client, whichever thread ran it (a script arriving while another runs is handed to that
/// one's thread).
#[test]
fn concurrent_scripts_run_as_their_own_client() {
    let s = Server::start();
    let mut admin = s.raw();
    let script = "local n = redis.call('incr', KEYS[1]) return {n, ARGV[1], redis.call('get', 'marker')}";
    let Frame::Bulk(sha) = admin.cmd(&["SCRIPT", "LOAD", script]) else { panic!("SCRIPT LOAD") };
    let sha = String::from_utf8(sha.to_vec()).unwrap();
    let clients = 6;
    for i in 1..=clients {
        let (user, keys) = (format!("u{i}"), format!("~c{i}:*"));
        assert_eq!(admin.cmd(&["ACL", "SETUSER", &user, "on", ">pw", &keys, "~marker", "+@all"]), ok());
        assert_eq!(admin.cmd(&["SELECT", &i.to_string()]), ok());
        assert_eq!(admin.cmd(&["SET", "marker", &format!("db{i}")]), ok());
    }
    let (s, sha) = (&s, &sha);
    std::thread::scope(|scope| {
        for i in 1..=clients {
            scope.spawn(move || {
                let mut c = s.raw();
                assert_eq!(c.cmd(&["AUTH", &format!("u{i}"), "pw"]), ok());
                assert_eq!(c.cmd(&["SELECT", &i.to_string()]), ok());
                let key = format!("c{i}:n");
                for n in 1..=400 {
                    let tag = format!("client {i} call {n}");
                    let want = arr(vec![Frame::Integer(n), bulk(&tag), bulk(&format!("db{i}"))]);
                    assert_eq!(c.cmd(&["EVALSHA", sha, "1", &key, &tag]), want);
                }
            });
        }
    });
}

/// A library whose function `spin` loops until it is killed.
const SPIN_LIBRARY: &str = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";

/// What other clients get while a function runs past busy-reply-threshold.
const FUNCTION_BUSY: &str = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// A script in a busy loop is stopped by SCRIPT KILL from another client; one that has
/// written may not be killed, as in Redis.
#[test]
fn script_kill_stops_a_busy_script_but_not_one_that_wrote() {
    let redis = RedisServer::start();
    let s = Server::start();
    for port in [redis.port, s.port] {
        script_kill_on(port);
    }
}

/// SCRIPT KILL and -BUSY on the server at `port`, which is left with an unkillable script.
fn script_kill_on(port: u16) {
    let addr = ([127, 0, 0, 1], port).into();
    let mut busy = Raw::connect(addr);
    let mut admin = Raw::connect(addr);
    let mut other = Raw::connect(addr);
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), err("NOTBUSY No scripts in execution right now."));
    assert_eq!(admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "200"]), ok());
    assert_eq!(admin.cmd(&["CONFIG", "GET", "lua-time-limit"]), arr(vec![bulk("lua-time-limit"), bulk("200")]));
    busy.send(&Raw::encode(&[b"EVAL", b"while true do end", b"0"]));
    // Past the threshold other clients are refused instead of kept waiting.
    let busy_err = err("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.");
    wait_until("other clients to get -BUSY", || (other.cmd(&["GET", "k"]) == busy_err).then_some(()));
    wait_until("SCRIPT KILL to find the busy script", || match admin.cmd(&["SCRIPT", "KILL"]) {
        f if f == ok() => Some(()),
        _ => None,
    });
    assert_eq!(
        busy.read(),
        err("ERR Script killed by user with SCRIPT KILL... script: 694a5fe1ddb97a4c6a1bf299d9537c7d3d0f84e7, on @user_script:1.")
    );
    assert_eq!(busy.cmd(&["PING"]), simple_pong());
    assert_eq!(other.cmd(&["GET", "k"]), Frame::Null);

    // A function is FUNCTION KILL's to stop; SCRIPT KILL gets the function's -BUSY.
    assert_eq!(admin.cmd(&["FUNCTION", "LOAD", "REPLACE", SPIN_LIBRARY]), bulk("spin"));
    busy.send(&Raw::encode(&[b"FCALL", b"spin", b"0"]));
    let fn_busy = err(FUNCTION_BUSY);
    wait_until("the function to be busy", || (other.cmd(&["GET", "k"]) == fn_busy).then_some(()));
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), fn_busy);
    let Frame::Array(stats) = admin.cmd(&["FUNCTION", "STATS"]) else { panic!("FUNCTION STATS") };
    let Frame::Array(running) = &stats[1] else { panic!("a running function: {stats:?}") };
    assert_eq!(
        running[..4],
        [bulk("name"), bulk("spin"), bulk("command"), arr(vec![bulk("FCALL"), bulk("spin"), bulk("0")])]
    );
    assert_eq!(admin.cmd(&["FUNCTION", "KILL"]), ok());
    assert_eq!(busy.read(), err("ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."));

    busy.send(&Raw::encode(&[b"EVAL", b"redis.call('set', 'w', '1') while true do end", b"0"]));
    let refused = wait_until("the writing script to run", || match admin.cmd(&["SCRIPT", "KILL"]) {
        Frame::Error(e) if e.starts_with(b"UNKILLABLE") => Some(e),
        _ => None,
    });
    assert!(refused.starts_with(b"UNKILLABLE Sorry the script already executed write commands"));
    // Only SHUTDOWN NOSAVE ends it, as in Redis; the node is dropped with the test.
}

/// Commands that reached the server while a script ran, before it turned busy, are answered
/// -BUSY once it does, as in Redis, even when the shards' own work (their 100 ms tick) queued
/// up behind the script first.
#[test]
fn commands_waiting_for_a_script_get_busy_once_it_turns_busy() {
    let redis = RedisServer::start();
    let s = Server::start();
    for port in [redis.port, s.port] {
        let addr = ([127, 0, 0, 1], port).into();
        let (mut busy, mut admin, mut get, mut eval) =
            (Raw::connect(addr), Raw::connect(addr), Raw::connect(addr), Raw::connect(addr));
        assert_eq!(admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "1000"]), ok());
        assert_eq!(admin.cmd(&["FUNCTION", "LOAD", "REPLACE", SPIN_LIBRARY]), bulk("spin"));
        busy.send(&Raw::encode(&[b"FCALL", b"spin", b"0"]));
        // Three ticks' time into the script, well before the threshold.
        wait_until("the function to run for 300 ms", || {
            let Frame::Array(stats) = admin.cmd(&["FUNCTION", "STATS"]) else { panic!("FUNCTION STATS") };
            let Frame::Array(running) = &stats[1] else { return None };
            matches!(running[5], Frame::Integer(ms) if ms >= 300).then_some(())
        });
        get.send(&Raw::encode(&[b"GET", b"k"]));
        eval.send(&Raw::encode(&[b"EVAL", b"return 1", b"0"]));
        let fn_busy = err(FUNCTION_BUSY);
        assert_eq!(get.read(), fn_busy, "a GET that waited for the script (port {port})");
        assert_eq!(eval.read(), fn_busy, "a script that waited for the script (port {port})");
        assert_eq!(admin.cmd(&["FUNCTION", "KILL"]), ok());
        assert_eq!(
            busy.read(),
            err("ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2.")
        );
        assert_eq!(get.cmd(&["GET", "k"]), Frame::Null);
        assert_eq!(eval.cmd(&["EVAL", "return 1", "0"]), Frame::Integer(1));
    }
}

/// A table nested past Lua's stack (here a cycle) is written down to where redis-server
/// stops, ~8,000 levels, where an error takes its place; the connection goes on.
#[test]
fn a_cyclic_reply_stops_where_redis_stops() {
    let redis = RedisServer::start();
    let s = Server::start();
    let levels = |addr: std::net::SocketAddr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        let script: &[u8] = b"local a = {} local b = {a} a[1] = b return a";
        stream.write_all(&Raw::encode(&[b"EVAL", script, b"0"])).unwrap();
        stream.write_all(&Raw::encode(&[b"PING"])).unwrap();
        let mut lines = BufReader::new(stream).lines().map(Result::unwrap);
        let arrays = lines.by_ref().take_while(|l| l == "*1").count();
        assert_eq!(lines.next().as_deref(), Some("+PONG"), "after {arrays} levels");
        arrays
    };
    let theirs = levels(([127, 0, 0, 1], redis.port).into());
    assert!(theirs > 7000, "redis-server nested {theirs} levels");
    assert_eq!(levels(s.addr()), theirs);
}

/// A pattern nesting deeper than a thread's stack would hold fails with Lua 5.2's words
/// instead (redis-server crashes on these), and the node goes on.
#[test]
fn a_pattern_too_deep_for_the_stack_is_refused() {
    let s = Server::start();
    let mut c = s.raw();
    for call in ["string.find(s, p)", "string.match(s, p)", "string.gsub(s, p, '')", "string.gmatch(s, p)()"] {
        let script = format!("local s, p = string.rep('a', 300000), string.rep('a?', 300000) return {call}");
        let reply = c.cmd(&["EVAL", &script, "0"]);
        assert!(
            matches!(&reply, Frame::Error(e) if e.starts_with(b"ERR user_script:1: pattern too complex")),
            "{call}: {reply:?}"
        );
    }
    assert_eq!(c.cmd(&["PING"]), simple_pong());
}

/// CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT (which redis-server answers only in cluster
/// mode) run from scripts over the shard the slot lives in, as scripts hold it.
#[test]
fn slot_key_commands_run_from_scripts() {
    let s = Server::start_with(&["--shards", "3"]);
    let mut c = s.raw();
    let script = "redis.call('set', 'x', 1) return {redis.call('cluster', 'countkeysinslot', 16287), \
                  redis.call('cluster', 'getkeysinslot', 16287, 5), redis.call('cluster', 'countkeysinslot', 0)}";
    assert_eq!(c.cmd(&["EVAL", script, "0"]), arr(vec![Frame::Integer(1), arr(vec![bulk("x")]), Frame::Integer(0)]));
}

fn simple_pong() -> Frame {
    shoal_tests::simple("PONG")
}

/// redis-py's Script objects (EVALSHA, falling back to EVAL on NOSCRIPT) and the redis crate's
/// `Script` work against Shoal.
#[test]
fn client_libraries_run_scripts() {
    let s = Server::start();
    let mut con = s.redis();
    let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1])");
    let n: i64 = script.key("counter").arg(5).invoke(&mut con).unwrap();
    assert_eq!(n, 5);
    let n: i64 = script.key("counter").arg(2).invoke(&mut con).unwrap();
    assert_eq!(n, 7);

    let py = "import redis, sys\n\
        r = redis.Redis(port=int(sys.argv[1]), decode_responses=True)\n\
        r.script_flush()\n\
        add = r.register_script(\"return redis.call('rpush', KEYS[1], unpack(ARGV))\")\n\
        assert add(keys=['q'], args=['a', 'b']) == 2\n\
        assert add(keys=['q'], args=['c']) == 3\n\
        assert r.lrange('q', 0, -1) == ['a', 'b', 'c']\n\
        assert r.script_exists(add.sha) == [True]\n";
    let out = std::process::Command::new("python3").args(["-c", py, &s.port.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
