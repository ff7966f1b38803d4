//! Scripts fuzzed against redis-server: random calls of the libraries scripts get (cjson,
//! cmsgpack, struct, bit), from JSON and MessagePack text made of the pieces that trip
//! parsers to struct formats and out-of-range numbers; and random scripts of the API around
//! them (pcall, xpcall, error, redis.call and redis.pcall, error and status replies) with
//! random values to return in RESP2 and RESP3; random arguments of the scripting commands;
//! random function libraries, loaded and called; and transactions of scripts and functions.
//! Both servers must answer the same.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_tests::{sha1_hex, Raw, RedisServer, Server};

/// Renders a Lua value as text, tables with their keys sorted, so that a reply compares the
/// whole of what a library returned (a reply would stop at an array's first nil).
const SHOW: &str = r#"
local function show(v, depth)
  local t = type(v)
  if v == cjson.null then return 'null' end
  if t == 'table' then
    if depth > 30 then return '<deep>' end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = {show(k, depth + 1), k} end
    table.sort(keys, function(a, b) return a[1] < b[1] end)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = k[1] .. '=' .. show(v[k[2]], depth + 1) end
    return '{' .. table.concat(out, ',') .. '}'
  elseif t == 'string' then return string.format('%q', v)
  elseif t == 'number' then return string.format('%.17g', v)
  elseif t == 'function' or t == 'userdata' then return t
  else return tostring(v) end
end
"#;

/// Pieces of JSON text, valid and not: escapes, surrogates, numbers JSON forbids, bytes.
const JSON_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"a\"",
    "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\u12\"",
    "1",
    "-0",
    "1e400",
    "-1e400",
    "0x10",
    "1.5e-3",
    "1E+2",
    ".5",
    "5.",
    "01",
    "-",
    "+1",
    "true",
    "false",
    "null",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "Infinity",
    " ",
    "\t",
    "\n",
    "\"\\x\"",
    "\"",
    "\\",
    "\"\\/\"",
    "\"\\b\\f\\n\\r\\t\"",
    "\"\u{1}\"",
    "123456789012345678901234567890",
    "1e-400",
    "9007199254740993",
    "-9223372036854775808",
    "tru",
    "nul",
    "\"k\":",
    "[1,2,3]",
    "{\"a\":[1,{\"b\":null}]}",
    "\0",
    "\"\u{e9}\"",
];

/// MessagePack type bytes, including those Redis's cmsgpack does not know.
const MSGPACK_HEADS: &[u8] = &[
    0xc0, 0xc2, 0xc3, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb, 0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6,
    0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x91, 0x9f, 0x80, 0x81, 0x8f, 0xa0, 0xa3, 0xbf, 0x00, 0x7f, 0xe0, 0xff, 0xc1, 0xd4,
    0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9,
];

/// Numbers where C casts, rounding and the encoders' size classes change.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "127",
    "128",
    "255",
    "256",
    "65535",
    "65536",
    "2^31-1",
    "2^31",
    "2^32",
    "2^53",
    "2^53+1",
    "2^63",
    "2^64",
    "-2^31",
    "-2^63",
    "-2^63-2^11",
    "0/0",
    "-(0/0)",
    "1/0",
    "-1/0",
    "0.1",
    "-0.0",
    "1e300",
    "1e-300",
    "3.14159",
    "1e15",
    "1e16",
    "123456.789",
    "5e-324",
    "0.5",
    "-0.5",
    "1.5",
    "2.5",
];

/// The generator's seed: fixed, so a run repeats the last one, unless `SHOAL_FUZZ_SEED` asks
/// for other cases.
fn seed(fixed: u64) -> u64 {
    std::env::var("SHOAL_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(fixed)
}

struct Gen(StdRng);

/// Both servers, a client of each, and the generator of cases, seeded by `seed(fixed)`.
struct Fuzz {
    _redis: RedisServer,
    _shoal: Server,
    theirs: Raw,
    mine: Raw,
    g: Gen,
    seed: u64,
}

impl Fuzz {
    fn start(fixed: u64) -> Fuzz {
        let (redis, shoal) = (RedisServer::start(), Server::start());
        let (theirs, mine) = (redis.raw(), shoal.raw());
        let seed = seed(fixed);
        Fuzz { _redis: redis, _shoal: shoal, theirs, mine, g: Gen(StdRng::seed_from_u64(seed)), seed }
    }
}

impl Gen {
    fn pick<'a, T: ?Sized>(&mut self, from: &[&'a T]) -> &'a T {
        from[self.0.gen_range(0..from.len())]
    }

    fn list(&mut self, n: std::ops::Range<usize>, mut item: impl FnMut(&mut Self) -> String) -> String {
        let count = self.0.gen_range(n);
        (0..count).map(|_| item(self)).collect::<Vec<_>>().join(", ")
    }

    /// A Lua string literal of bytes from those that need escaping or are UTF-8 in part.
    fn lua_string(&mut self) -> String {
        const BYTES: &[u8] =
            &[0, 1, 9, 10, 13, 34, 39, 47, 92, 127, 128, 200, 255, 97, 98, 0xc3, 0xa9, 0xe2, 0x80, 0xa8];
        let n = self.0.gen_range(0..7);
        let body: String = (0..n).map(|_| format!("\\{}", BYTES[self.0.gen_range(0..BYTES.len())])).collect();
        format!("\"{body}\"")
    }

    /// A Lua expression for a value: scalars, arrays, sparse and mixed tables, nested.
    fn lua_value(&mut self, depth: usize) -> String {
        let kinds = if depth < 3 { 14 } else { 8 };
        match self.0.gen_range(0..=kinds) {
            0 => "nil".into(),
            1 => self.pick(&["true", "false"]).into(),
            2 | 3 => self.pick(NUMBERS).into(),
            4 | 6 => self.lua_string(),
            5 => "cjson.null".into(),
            7 => self.0.gen_range(-300..300).to_string(),
            8 => format!("{}", self.0.gen_range(-1e6..1e6)),
            9 | 10 => {
                let items: Vec<String> = (0..self.0.gen_range(0..6)).map(|_| self.lua_value(depth + 1)).collect();
                format!("{{{}}}", items.join(","))
            }
            11 => {
                let keys = ["1", "2", "3", "10", "20", "0", "-1", "1.5", "\"x\"", "\"1\"", "true"];
                let items: Vec<String> = (0..self.0.gen_range(0..5))
                    .map(|_| format!("[{}]={}", self.pick(&keys), self.lua_value(depth + 1)))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            12 => {
                let keys = ["a", "b", "c", "ok", "err"];
                let items: Vec<String> = (0..self.0.gen_range(0..5))
                    .map(|_| format!("{}={}", self.pick(&keys), self.lua_value(depth + 1)))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            13 => {
                let items: Vec<String> = (0..self.0.gen_range(1..5))
                    .map(|_| format!("[{}]={}", self.0.gen_range(1..40), self.lua_value(depth + 1)))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            _ => format!("{{{}}}", self.lua_value(depth + 1)),
        }
    }

    fn json_text(&mut self) -> Vec<u8> {
        if self.0.gen_bool(0.05) {
            let n = *self.pick(&[&999usize, &1000, &1001]);
            return if self.0.gen_bool(0.5) {
                format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()
            } else {
                format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()
            };
        }
        let n = self.0.gen_range(1..13);
        (0..n).flat_map(|_| self.pick(JSON_PIECES).as_bytes().to_vec()).collect()
    }

    fn msgpack_bytes(&mut self) -> Vec<u8> {
        if self.0.gen_bool(0.4) {
            let n = self.0.gen_range(0..21);
            return (0..n).map(|_| self.0.gen()).collect();
        }
        let mut out = Vec::new();
        for _ in 0..self.0.gen_range(1..9) {
            out.push(MSGPACK_HEADS[self.0.gen_range(0..MSGPACK_HEADS.len())]);
            for _ in 0..self.0.gen_range(0..10) {
                let b = if self.0.gen_bool(0.3) { self.0.gen() } else { *self.pick(&[&0u8, &1, &2, &0xff, &0x80]) };
                out.push(b);
            }
        }
        out
    }

    fn struct_call(&mut self) -> String {
        const PIECES: &[&str] = &[
            "<", ">", "!", "=", "b", "B", "h", "H", "l", "L", "j", "J", "T", "i", "I", "f", "d", "s", "c", "z", "x",
            "1", "2", "4", "8", "3", "0", "16", " ", "i3", "I7", "c0", "c5", "!4", "!3", "i9", "i16", "I0",
        ];
        let format: String = (0..self.0.gen_range(0..6)).map(|_| self.pick(PIECES)).collect();
        if self.0.gen_bool(0.5) {
            let args: Vec<String> = (0..self.0.gen_range(0..5))
                .map(|_| match self.0.gen_range(0..3) {
                    0 => self.lua_value(2),
                    1 => self.pick(NUMBERS).to_string(),
                    _ => self.pick(&["\"abc\"", "\"12\"", "\"x\\0y\""]).to_string(),
                })
                .collect();
            return format!("struct.pack({format:?}{}{})", if args.is_empty() { "" } else { "," }, args.join(","));
        }
        let data: String = (0..self.0.gen_range(0..25)).map(|_| format!("\\{}", self.0.gen::<u8>())).collect();
        let position = self.pick(&["", ",1", ",2", ",0", ",-1", ",100", ",1.5", ",\"2\""]);
        format!("struct.unpack({format:?},\"{data}\"{position})")
    }

    fn bit_call(&mut self) -> String {
        let f = self.pick(&[
            "tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror", "bswap",
        ]);
        let args: Vec<&str> = (0..self.0.gen_range(0..4))
            .map(|_| match self.0.gen_range(0..3) {
                0 => self.pick(&["\"12\"", "\"0x10\"", "\"a\"", "nil", "{}", "true", "4294967295", "-2147483649"]),
                _ => self.pick(NUMBERS),
            })
            .collect();
        format!("bit.{f}({})", args.join(","))
    }

    /// A script body calling one library, and the ARGV it reads.
    fn case(&mut self) -> (String, Vec<Vec<u8>>) {
        let protected = |call: String| format!("return show({{pcall(function() return {call} end)}}, 0)");
        // A value encoded, and the encoding decoded again.
        let round_trip = |encode: &str, decode: &str, v: String| {
            format!(
                "local ok, e = pcall({encode}, {v}) if not ok then return show({{e}}, 0) end \
                 return show({{pcall({decode}, e)}}, 0)"
            )
        };
        match self.0.gen_range(0..11) {
            0 | 1 => ("return show({pcall(cjson.decode, ARGV[1])}, 0)".into(), vec![self.json_text()]),
            2 => {
                let v = self.lua_value(0);
                (format!("return show({{pcall(cjson.encode, {v})}}, 0)"), vec![])
            }
            3 => (round_trip("cjson.encode", "cjson.decode", self.lua_value(0)), vec![]),
            4 | 5 => {
                let call = match self.0.gen_range(0..5) {
                    0 => "cmsgpack.unpack(ARGV[1])".to_string(),
                    1 => "cmsgpack.unpack_one(ARGV[1])".to_string(),
                    2 => format!("cmsgpack.unpack_one(ARGV[1], {})", self.0.gen_range(-2..11)),
                    3 => format!("cmsgpack.unpack_limit(ARGV[1], {})", self.0.gen_range(-1..5)),
                    _ => format!(
                        "cmsgpack.unpack_limit(ARGV[1], {}, {})",
                        self.0.gen_range(0..4),
                        self.0.gen_range(-1..11)
                    ),
                };
                (protected(call), vec![self.msgpack_bytes()])
            }
            6 => {
                let args: Vec<String> = (0..self.0.gen_range(0..4)).map(|_| self.lua_value(0)).collect();
                (format!("return show({{pcall(cmsgpack.pack, {})}}, 0)", args.join(",")), vec![])
            }
            7 => (round_trip("cmsgpack.pack", "cmsgpack.unpack", self.lua_value(0)), vec![]),
            8 | 9 => (protected(self.struct_call()), vec![]),
            _ => (protected(self.bit_call()), vec![]),
        }
    }
}

#[test]
fn libraries_answer_random_calls_as_redis_does() {
    let Fuzz { _redis, _shoal, mut theirs, mut mine, mut g, seed } = Fuzz::start(0x11b5);
    for _ in 0..3000 {
        let (body, argv) = g.case();
        let script = format!("{SHOW}{body}");
        let mut cmd: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), b"0"];
        cmd.extend(argv.iter().map(Vec::as_slice));
        assert_eq!(mine.cmd_bytes(&cmd), theirs.cmd_bytes(&cmd), "seed {seed}: {body} with ARGV {argv:?}");
    }
}

/// Values a script returns: every table Redis reads specially (`ok`, `err`, `double`, `map`,
/// `set`, `big_number`), with scalars that convert oddly.
const REPLY_SCALARS: &[&str] = &[
    "nil",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "1.5",
    "-1.5",
    "3.99",
    "2^53",
    "2^63",
    "-2^63",
    "1e300",
    "0/0",
    "1/0",
    "-1/0",
    "''",
    "'x'",
    "'OK'",
    "'ERR x'",
    "'-ERR y'",
    "'a\\r\\nb'",
    "'12'",
    "'1e3'",
    "cjson.null",
    "{}",
    "'a\\0b'",
    "'\\255 x'",
];

/// What scripts raise: scalars, or error tables with text. (redis-server 7.0 crashes on an
/// uncaught error that is a table without a string `err`.)
const RAISED: &[&str] = &[
    "nil",
    "true",
    "1",
    "1.5",
    "'x'",
    "'OK'",
    "'ERR x'",
    "'-ERR y'",
    "''",
    "{err=''}",
    "{err='x'}",
    "{err='ERR x'}",
    "{err='-ERR y'}",
    "{err='a\\r\\nb'}",
    "{err='MY code'}",
    "{err='N a\\0b'}",
    "{err='\\255 x'}",
    "'P a\\0b'",
];

/// The rest of the `redis` API, and what scripts pass it.
const API_FUNCTIONS: &[&str] = &[
    "redis.log",
    "redis.setresp",
    "redis.set_repl",
    "redis.sha1hex",
    "redis.error_reply",
    "redis.status_reply",
    "redis.replicate_commands",
    "redis.breakpoint",
    "redis.debug",
];
const API_ARGS: &[&str] = &[
    "nil",
    "1",
    "2",
    "3",
    "0",
    "-1",
    "1.5",
    "2.9",
    "'x'",
    "'2'",
    "{}",
    "true",
    "redis.LOG_WARNING",
    "redis.LOG_DEBUG",
    "redis.REPL_ALL",
    "redis.REPL_NONE",
    "redis.REPL_AOF",
    "redis.REPL_REPLICA",
    "redis.REPL_SLAVE",
    "2^31",
    "0/0",
    "'a\\0b'",
];

/// Arguments for redis.call and redis.pcall, good and bad.
const CALL_ARGS: &[&str] = &[
    "'GET'",
    "'SET'",
    "'k'",
    "'nosuch'",
    "1",
    "1.5",
    "nil",
    "{}",
    "true",
    "'INCR'",
    "'LPUSH'",
    "'PING'",
    "'ECHO'",
    "'HSET'",
    "'ZADD'",
    "'-1'",
    "'HGETALL'",
    "'ZRANGE'",
    "'0'",
    "'WITHSCORES'",
];

impl Gen {
    fn reply_value(&mut self, depth: usize) -> String {
        let keys = ["'a'", "1", "2", "true", "1.5", "'b'"];
        match self.0.gen_range(0..=if depth < 3 { 12 } else { 4 }) {
            0..=4 => self.pick(REPLY_SCALARS).into(),
            5 => format!("{{{}}}", self.list(0..5, |g| g.reply_value(depth + 1))),
            6 => format!("{{ok={}}}", self.reply_value(depth + 1)),
            7 => format!("{{err={}}}", self.reply_value(depth + 1)),
            8 => format!("{{double={}}}", self.reply_value(depth + 1)),
            9 => format!(
                "{{map={{{}}}}}",
                self.list(0..4, |g| format!("[{}]={}", g.pick(&keys), g.reply_value(depth + 1)))
            ),
            10 => format!(
                "{{set={{{}}}}}",
                self.list(0..4, |g| format!("[{}]={}", g.pick(&keys), g.pick(&["true", "false", "1"])))
            ),
            11 => format!("{{big_number={}}}", self.pick(&["'123'", "'-1'", "'1e5'", "'x'"])),
            _ => format!(
                "{{{}, ok={}, err={}}}",
                self.reply_value(depth + 1),
                self.reply_value(depth + 1),
                self.reply_value(depth + 1)
            ),
        }
    }

    /// A function for pcall, xpcall or a direct call.
    fn api_function(&mut self, depth: usize) -> String {
        let level = ["", ", 0", ", 1", ", 2", ", 3"];
        match self.0.gen_range(0..if depth < 2 { 10 } else { 9 }) {
            0 => format!("function() error({}{}) end", self.pick(RAISED), self.pick(&level)),
            1 => format!("function() return {} end", self.list(0..4, |g| g.reply_value(1))),
            2 => format!("function() return redis.call({}) end", self.list(0..5, |g| g.pick(CALL_ARGS).into())),
            3 => format!("function() return redis.pcall({}) end", self.list(0..5, |g| g.pick(CALL_ARGS).into())),
            4 => format!("function() return redis.error_reply({}) end", self.reply_value(1)),
            5 => format!("function() return redis.status_reply({}) end", self.reply_value(1)),
            6 => {
                let n = self.pick(&["1", "2", "'#'", "-1", "0", "'x'", "1.5"]);
                format!("function() return select({n}, {}) end", self.list(0..4, |g| g.reply_value(1)))
            }
            7 => {
                let code = ["'return 1'", "'x ='", "'return ...'", "'error(1)'", "1", "nil", "'\\27Lua'", "'x(', '@f'"];
                format!("function() local f, e = loadstring({}) return type(f), e end", self.pick(&code))
            }
            8 => {
                let f = self.pick(API_FUNCTIONS);
                format!("function() return {f}({}) end", self.list(0..4, |g| g.pick(API_ARGS).into()))
            }
            _ => format!("function() return pcall({}) end", self.api_function(depth + 1)),
        }
    }

    /// A script body exercising the API, in RESP2 or (setresp) RESP3 conversion.
    fn api_script(&mut self) -> String {
        let resp3 = if self.0.gen_bool(0.3) { "redis.setresp(3) " } else { "" };
        let handlers =
            ["function(e) return e end", "function(e) return type(e) end", "function(e) error('h') end", "nil", "1"];
        let body = match self.0.gen_range(0..8) {
            0 => format!("return {}", self.reply_value(0)),
            1 => format!("return {{pcall({})}}", self.api_function(0)),
            2 => format!("return {{xpcall({}, {})}}", self.api_function(0), self.pick(&handlers)),
            3 => format!("return ({})()", self.api_function(0)),
            4 => format!("local t = {{pcall({})}} return {{#t, type(t[2]), tostring(t[1])}}", self.api_function(0)),
            5 => format!(
                "local ok, e = pcall({}) if type(e) == 'table' then local k = {{}} \
                 for x, y in pairs(e) do k[#k + 1] = tostring(x) .. '=' .. (type(y) == 'table' and 'table' or tostring(y)) end \
                 table.sort(k) return k end return {{tostring(ok), type(e) == 'string' and e or type(e)}}",
                self.api_function(0)
            ),
            6 => format!("return redis.pcall({})", self.list(0..6, |g| g.pick(CALL_ARGS).into())),
            _ => format!("return {{error({}{})}}", self.pick(RAISED), self.pick(&["", ", 0", ", 1", ", 2"])),
        };
        format!("{resp3}{body}")
    }
}

#[test]
fn the_script_api_answers_random_scripts_as_redis_does() {
    let Fuzz { _redis, _shoal, mut theirs, mut mine, mut g, seed } = Fuzz::start(0xa91);
    for proto in ["2", "3"] {
        theirs.cmd(&["HELLO", proto]);
        mine.cmd(&["HELLO", proto]);
        for _ in 0..1500 {
            let script = g.api_script();
            let cmd: [&[u8]; 4] = [b"EVAL", script.as_bytes(), b"1", b"k"];
            let (a, b) = (mine.cmd_bytes_raw(&cmd), theirs.cmd_bytes_raw(&cmd));
            let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            assert!(a == b, "seed {seed}, RESP{proto}: {script}\n shoal: {a:?}\n redis: {b:?}");
        }
    }
}

/// Script bodies for EVAL: plain, with shebangs good and bad, and ones that do not compile.
const BODIES: &[&str] = &[
    "return 1",
    "return KEYS[1]",
    "return {KEYS[1], ARGV[1]}",
    "return redis.call('SET', KEYS[1], 'v')",
    "#!lua\nreturn 1",
    "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])",
    "#!lua flags=no-writes\nreturn redis.call('SET', 'x', 1)",
    "#!lua flags=bogus\nreturn 1",
    "#!lua name=x\nreturn 1",
    "#!luax\nreturn 1",
    "#!lua flags=allow-oom,no-cluster\nreturn 1",
    "return",
    "x =",
    "",
    "#!lua flags=\nreturn 2",
    "#!lua  flags=no-writes  \nreturn 3",
    "#!\nreturn 1",
];

/// Function libraries: good, clashing, flagged, and refused for each reason Redis has.
const LIBRARIES: &[&str] = &[
    "#!lua name=lib1\nredis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)",
    "#!lua name=lib2\nredis.register_function{function_name='f2', callback=function() return 2 end, flags={'no-writes'}}",
    "#!lua name=lib3\nredis.register_function{function_name='f3', callback=function() return 3 end, flags={'bogus'}}",
    "#!lua name=lib4\nlocal x = 1",
    "#!lua name=lib5\nredis.register_function('F1', function() return 5 end)",
    "#!lua name=lib6\nredis.register_function('f6', function() return redis.call('SET', 'k', 1) end)",
    "#!lua name=lib7 engine=x\nreturn 1",
    "#!lua\nredis.register_function('f', function() end)",
    "#!lua name=\nx",
    "#!lua name=a b\nx",
    "#!lua name=lib8\nredis.register_function('f8', 1)",
    "#!lua name=lib9\nredis.register_function('', function() end)",
    "#!lua name=lib10\nredis.call('PING')",
    "#!lua name=lib11\nerror('boom')",
    "#!lua name=lib12\nredis.register_function('f-12', function() return 12 end)",
    "#!lua name=lib13\nredis.register_function{function_name='f13', callback=function() return 13 end, description='d'}",
    "#!lua name=lib14\nredis.register_function{function_name='f14', callback=function() return 14 end, bogus=1}",
];

/// Key counts: good, negative, too many, and no integer at all.
const KEY_COUNTS: &[&str] =
    &["0", "1", "2", "-1", "3", "1.5", "abc", "", "99999999999999999999", " 1", "01", "+1", "-0"];

impl Gen {
    /// A scripting command with arguments good and bad. (Not FUNCTION DUMP, whose payload
    /// Redis compresses, nor a FUNCTION LIST that lists: its order is Redis's hash order.)
    fn scripting_command(&mut self) -> Vec<String> {
        let names = ["k", "a", "{t}b", "x"];
        let keys_and_args =
            |g: &mut Self| (0..g.0.gen_range(0..4)).map(|_| g.pick(&names).to_string()).collect::<Vec<_>>();
        let mut cmd: Vec<String> = match self.0.gen_range(0..12) {
            0..=2 => {
                let name = self.pick(&["EVAL", "EVAL_RO", "eval"]);
                vec![name.into(), self.pick(BODIES).into(), self.pick(KEY_COUNTS).into()]
            }
            3 => {
                let body = self.pick(BODIES);
                let own = sha1_hex(body);
                let sha = self.pick(&[own.as_str(), "ffffffffffffffffffffffffffffffffffffffff", "abc", ""]).to_string();
                let sha = if self.0.gen_bool(0.2) { sha.to_uppercase() } else { sha };
                vec![self.pick(&["EVALSHA", "EVALSHA_RO"]).into(), sha, self.pick(KEY_COUNTS).into()]
            }
            4 => {
                let sub = self.pick(&["LOAD", "EXISTS", "FLUSH", "KILL", "BOGUS", "load", "HELP"]);
                let mut cmd = vec!["SCRIPT".to_string(), sub.to_string()];
                match sub.to_ascii_uppercase().as_str() {
                    "LOAD" => cmd.extend((0..self.0.gen_range(0..3)).map(|_| self.pick(BODIES).to_string())),
                    "EXISTS" => cmd.extend((0..self.0.gen_range(0..3)).map(|_| sha1_hex(self.pick(BODIES)))),
                    "FLUSH" => cmd.extend(
                        self.pick(&[&[][..], &["ASYNC"], &["SYNC"], &["bogus"], &["ASYNC", "SYNC"]])
                            .iter()
                            .map(|s| s.to_string()),
                    ),
                    _ => {}
                }
                return cmd;
            }
            5 | 6 => {
                let cmd: Vec<&str> = match self.0.gen_range(0..6) {
                    0 => {
                        let mut cmd = vec!["FUNCTION", "LOAD"];
                        cmd.extend(self.pick(&[&[][..], &["REPLACE"], &["replace"], &["BOGUS"]]).iter());
                        cmd.push(self.pick(LIBRARIES));
                        cmd
                    }
                    1 => [
                        &["FUNCTION", "DELETE"][..],
                        self.pick(&[&[][..], &["lib1"], &["LIB1"], &["nosuch"], &["lib1", "lib2"]]),
                    ]
                    .concat(),
                    2 => {
                        [&["FUNCTION", "FLUSH"][..], self.pick(&[&[][..], &["ASYNC"], &["SYNC"], &["bogus"]])].concat()
                    }
                    3 => [
                        &["FUNCTION", "RESTORE"][..],
                        self.pick(&[&[][..], &["garbage"], &["x", "APPEND"], &["x", "BOGUS"]]),
                    ]
                    .concat(),
                    4 => vec!["FUNCTION", self.pick(&["STATS", "KILL", "BOGUS", "HELP", "help"])],
                    _ => vec!["FUNCTION", "LIST", "BOGUS"],
                };
                return cmd.into_iter().map(str::to_owned).collect();
            }
            7..=9 => {
                let f = self.pick(&["f1", "f2", "f3", "f6", "f8", "nosuch", "F1", "", "f-12", "f13", "f14"]);
                vec![self.pick(&["FCALL", "FCALL_RO", "fcall"]).into(), f.into(), self.pick(KEY_COUNTS).into()]
            }
            _ => {
                let short: &[&[&str]] = &[
                    &["EVAL"],
                    &["EVAL", "return 1"],
                    &["EVALSHA"],
                    &["FCALL"],
                    &["FCALL", "f1"],
                    &["SCRIPT"],
                    &["FUNCTION"],
                    &["FUNCTION", "LOAD"],
                ];
                return self.pick(short).iter().map(|s| s.to_string()).collect();
            }
        };
        cmd.extend(keys_and_args(self));
        cmd
    }
}

#[test]
fn scripting_commands_take_random_arguments_as_redis_does() {
    let Fuzz { _redis, _shoal, mut theirs, mut mine, mut g, seed } = Fuzz::start(0x5c41);
    for _ in 0..2000 {
        let cmd = g.scripting_command();
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(mine.cmd(&args), theirs.cmd(&args), "seed {seed}: {cmd:?}");
    }
}

/// Function names for register_function: good, odd, and refused.
const FUNCTION_NAMES: &[&str] =
    &["'f'", "'g'", "'F'", "'f-1'", "'f_1'", "''", "'1f'", "'f f'", "1", "nil", "{}", "'a\\0b'", "'é'"];

/// Callbacks: good ones that read, write, fail or reach for what functions lack, and values
/// that are no function.
const CALLBACKS: &[&str] = &[
    "function(keys, args) return {keys[1], args[1], #keys, #args} end",
    "function() return redis.call('SET', 'k', 'v') end",
    "function() return redis.call('GET', 'k') end",
    "function() error('boom') end",
    "function() return KEYS end",
    "function() redis.setresp(3) return {double=1.5} end",
    "function() return redis.pcall('nosuch') end",
    "function() return loadstring('return 1')() end",
    "function() return {pcall(redis.register_function, 'x', function() end)} end",
    "1",
    "nil",
    "'x'",
];

const FUNCTION_FLAGS: &[&str] = &[
    "{}",
    "{'no-writes'}",
    "{'allow-oom'}",
    "{'allow-stale'}",
    "{'no-cluster'}",
    "{'allow-cross-slot-keys'}",
    "{'bogus'}",
    "{'no-writes', 'allow-oom'}",
    "'no-writes'",
    "{1}",
    "nil",
    "{'NO-WRITES'}",
];

impl Gen {
    fn register_call(&mut self) -> String {
        match self.0.gen_range(0..6) {
            0 | 1 => format!("redis.register_function({}, {})", self.pick(FUNCTION_NAMES), self.pick(CALLBACKS)),
            2 => format!("redis.register_function({})", self.pick(FUNCTION_NAMES)),
            3 => {
                let (name, a, b) = (self.pick(FUNCTION_NAMES), self.pick(CALLBACKS), self.pick(CALLBACKS));
                format!("redis.register_function({name}, {a}, {b})")
            }
            _ => {
                let mut fields = Vec::new();
                let named: [(&str, &[&str], f64); 5] = [
                    ("function_name", FUNCTION_NAMES, 0.85),
                    ("callback", CALLBACKS, 0.85),
                    ("flags", FUNCTION_FLAGS, 0.35),
                    ("description", &["'d'", "1", "{}", "nil"], 0.35),
                    ("bogus", &["1"], 0.1),
                ];
                for (field, values, p) in named {
                    if self.0.gen_bool(p) {
                        fields.push(format!("{field}={}", self.pick(values)));
                    }
                }
                format!("redis.register_function{{{}}}", fields.join(", "))
            }
        }
    }

    /// A library: its shebang, what it registers, and what else its code does while it loads.
    fn library(&mut self) -> String {
        let shebang = self.pick(&[
            "#!lua name=L",
            "#!lua name=L",
            "#!lua name=L engine=lua",
            "#!lua  name=L ",
            "#!LUA name=L",
            "#!lua name=L bogus=1",
        ]);
        let registers = (0..self.0.gen_range(0..4)).map(|_| self.register_call()).collect::<Vec<_>>().join(" ");
        let more = self.pick(&[
            "",
            "",
            "local x = 1",
            "return 5",
            "error('at load')",
            "redis.call('PING')",
            "redis.log(redis.LOG_WARNING, 'x')",
            "x = 1",
            "local t = redis.setresp",
        ]);
        format!("{shebang}\n{registers} {more}")
    }
}

#[test]
fn function_libraries_load_and_run_as_redis_does() {
    let Fuzz { _redis, _shoal, mut theirs, mut mine, mut g, seed } = Fuzz::start(0xf00);
    for _ in 0..300 {
        let library = g.library();
        let mut answers = Vec::new();
        for r in [&mut mine, &mut theirs] {
            r.cmd(&["FUNCTION", "FLUSH"]);
            let mut replies = vec![r.cmd(&["FUNCTION", "LOAD", &library])];
            // (A library of several functions lists them in Redis's hash order.)
            let list = r.cmd(&["FUNCTION", "LIST", "WITHCODE"]);
            if format!("{list:?}").matches("\"name\"").count() <= 1 {
                replies.push(list);
            }
            for f in ["f", "g", "F", "f-1", "1", "f_1"] {
                replies.push(r.cmd(&["FCALL", f, "1", "k1", "a1"]));
                replies.push(r.cmd(&["FCALL_RO", f, "0"]));
            }
            answers.push(replies);
        }
        assert_eq!(answers[0], answers[1], "seed {seed}: {library}");
    }
}

/// Scripts queued in transactions: bodies that write, read, fail or are refused at once.
const QUEUED_BODIES: &[&str] = &[
    "return redis.call('INCR', KEYS[1])",
    "return redis.call('GET', KEYS[1])",
    "return redis.call('nosuch')",
    "error('x')",
    "#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 1)",
    "return {err='E x'}",
    "x =",
    "return redis.call('LPUSH', KEYS[1], 'a')",
];

const QUEUED_LIBRARY: &str = "#!lua name=lib\nredis.register_function('fi', function(k) return redis.call('INCR', k[1]) end) \
     redis.register_function{function_name='fr', callback=function(k) return redis.call('GET', k[1]) end, flags={'no-writes'}}";

impl Gen {
    /// A command to queue in a transaction: scripts, functions, script and function
    /// management, plain commands, and some refused while queueing (arity).
    fn queued_command(&mut self) -> Vec<String> {
        let owned = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        match self.0.gen_range(0..10) {
            0..=2 => {
                let (body, n, key) =
                    (self.pick(QUEUED_BODIES), self.pick(&["1", "0", "x", "-1"]), self.pick(&["k", "l"]));
                owned(&["EVAL", body, n, key])
            }
            3 => {
                let sha = if self.0.gen_bool(0.8) { sha1_hex(self.pick(QUEUED_BODIES)) } else { "abc".into() };
                owned(&["EVALSHA", &sha, "1", "k"])
            }
            4 => owned(&["SCRIPT", "LOAD", self.pick(QUEUED_BODIES)]),
            5 => owned(&["FCALL", self.pick(&["fi", "fr", "nosuch"]), "1", "k"]),
            6 => owned(&["FCALL_RO", self.pick(&["fi", "fr"]), "1", "k"]),
            7 => {
                let plain: &[&[&str]] = &[
                    &["SET", "k", "1"],
                    &["GET", "k"],
                    &["INCR", "k"],
                    &["LPUSH", "k", "x"],
                    &["DEL", "k"],
                    &["EVAL"],
                    &["SCRIPT", "FLUSH"],
                    &["FUNCTION", "FLUSH"],
                ];
                owned(self.pick(plain))
            }
            8 => owned(&["EVAL_RO", self.pick(QUEUED_BODIES), "1", "k"]),
            _ => owned(&["EVAL", "return redis.call('EXISTS', KEYS[1])", "1", "k"]),
        }
    }
}

#[test]
fn scripts_in_transactions_answer_as_redis_does() {
    let Fuzz { _redis, _shoal, mut theirs, mut mine, mut g, seed } = Fuzz::start(0x3417);
    for _ in 0..200 {
        let mut commands = vec![
            vec!["FLUSHALL".to_string()],
            vec!["FUNCTION".into(), "LOAD".into(), "REPLACE".into(), QUEUED_LIBRARY.into()],
        ];
        if g.0.gen_bool(0.3) {
            commands.push(vec!["WATCH".into(), "k".into()]);
        }
        commands.push(vec!["MULTI".into()]);
        commands.extend((0..g.0.gen_range(1..6)).map(|_| g.queued_command()));
        commands.push(vec![g.pick(&["EXEC", "EXEC", "DISCARD"]).to_string()]);
        for cmd in &commands {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            assert_eq!(mine.cmd(&args), theirs.cmd(&args), "seed {seed}: {cmd:?} in {commands:?}");
        }
    }
}
