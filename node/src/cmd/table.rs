//! The command table: every command's name, arity, flags, key positions, ACL categories and
//! handler, declared once. Routing, arity errors, COMMAND output and statistics read it.

use super::exec::Exec;
use super::keyspec::KeySpec;
use shoal_proto::Request;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A handler that runs inside a shard (or across leased shards) with the keyspace at hand.
pub type ShardFn = fn(&mut Exec<'_, '_>, &Request);

/// Finds the key arguments of a command whose keys move (`numkeys` forms): argument
/// positions, empty when the arguments are malformed (the handler then replies the error
/// without touching a key).
pub type KeysFn = fn(&Request) -> Vec<usize>;

/// Key positions of one request: a fixed range, or what a `KeysFn` found.
pub enum KeyPositions {
    Range(std::iter::StepBy<std::ops::Range<usize>>),
    Listed(std::vec::IntoIter<usize>),
}

impl Iterator for KeyPositions {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            KeyPositions::Range(r) => r.next(),
            KeyPositions::Listed(l) => l.next(),
        }
    }
}

/// Commands the gateway answers itself: they touch connection state, every shard, or no key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gw {
    Ping,
    Echo,
    Hello,
    Auth,
    Select,
    SwapDb,
    Quit,
    Reset,
    Time,
    Info,
    ConfigGet,
    ConfigSet,
    ConfigResetStat,
    ConfigRewrite,
    ClientId,
    ClientSetName,
    ClientGetName,
    ClientList,
    ClientInfo,
    ClientKill,
    ClientPause,
    ClientUnpause,
    ClientUnblock,
    ClientReply,
    ClientNoEvict,
    ClientNoTouch,
    ClientSetInfo,
    ClientTracking,
    ClientCaching,
    ClientGetRedir,
    ClientTrackingInfo,
    Debug,
    CommandCount,
    CommandInfo,
    CommandDocs,
    CommandGetKeys,
    CommandGetKeysAndFlags,
    CommandList,
    Command,
    ClusterInfo,
    ClusterMyId,
    ClusterMyShardId,
    ClusterSlots,
    ClusterShards,
    ClusterNodes,
    ClusterKeySlot,
    ClusterCountKeysInSlot,
    ClusterGetKeysInSlot,
    ReadOnly,
    ReadWrite,
    Asking,
    DbSize,
    Save,
    BgSave,
    BgRewriteAof,
    AclSetUser,
    AclGetUser,
    AclDelUser,
    AclUsers,
    AclList,
    AclWhoAmI,
    AclCat,
    AclGenPass,
    AclDryRun,
    AclLog,
    AclSave,
    AclLoad,
    BackupNow,
    BackupList,
    BackupRestore,
    BackupStatus,
    LastSave,
    MemoryStats,
    MemoryDoctor,
    MemoryMallocStats,
    MemoryPurge,
    FlushDb,
    FlushAll,
    Keys,
    Scan,
    RandomKey,
    Shutdown,
    Help,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
    Publish,
    SPublish,
    PubsubChannels,
    PubsubNumSub,
    PubsubNumPat,
    PubsubShardChannels,
    PubsubShardNumSub,
    Monitor,
    SlowLogGet,
    SlowLogLen,
    SlowLogReset,
    Eval,
    EvalSha,
    EvalRo,
    EvalShaRo,
    FCall,
    FCallRo,
    FunctionLoad,
    FunctionList,
    FunctionDelete,
    FunctionFlush,
    FunctionDump,
    FunctionRestore,
    FunctionStats,
    FunctionKill,
    ScriptLoad,
    ScriptExists,
    ScriptFlush,
    ScriptKill,
    ScriptDebug,
}

#[derive(Clone, Copy)]
pub enum Handler {
    Shard(ShardFn),
    Gateway(Gw),
    /// A command whose first argument names a subcommand.
    Container,
}

pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    pub const PROTECTED: u32 = 1 << 15;
    pub const NO_MULTI: u32 = 1 << 16;
    pub const MOVABLE_KEYS: u32 = 1 << 17;
    pub const ALLOW_BUSY: u32 = 1 << 18;
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;

    pub const NAMES: [(u32, &str); 20] = [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (PROTECTED, "protected"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
        (NO_ASYNC_LOADING, "no_async_loading"),
    ];
}

/// Redis's ACL categories, in Redis's order (their bit positions are ours).
pub const ACL_CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

pub struct CommandSpec {
    /// Lowercase name; for a subcommand, the subcommand alone (`get` of `config|get`).
    pub name: &'static str,
    /// `config|get` for subcommands, the name otherwise.
    pub full_name: String,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub key_step: i32,
    pub acl: u64,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    pub handler: Handler,
    pub subcommands: Vec<CommandSpec>,
    /// Index into per-command statistics.
    pub id: usize,
    /// For commands with movable keys: where the keys are.
    pub keys_fn: Option<KeysFn>,
    /// For commands that may read keys their arguments do not list (SORT ... BY/GET
    /// patterns): whether this request does, so it runs with every shard leased.
    pub all_shards_fn: Option<fn(&Request) -> bool>,
    pub parent: Option<&'static str>,
    /// Where the keys are and how each is used, as Redis 7 declares it (derived from the
    /// first/last/step range for commands Redis does not have).
    pub key_specs: Vec<KeySpec>,
    /// Redis's command tips (`request_policy:all_shards`, ...), for cluster clients.
    pub tips: &'static [&'static str],
}

impl CommandSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn is_write(&self) -> bool {
        self.has(flags::WRITE)
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        // Redis 7.0 keeps `protected` to itself.
        flags::NAMES.iter().filter(|(f, _)| self.flags & f & !flags::PROTECTED != 0).map(|(_, n)| *n).collect()
    }

    pub fn acl_names(&self) -> Vec<String> {
        ACL_CATEGORIES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.acl & (1 << i) != 0)
            .map(|(_, n)| format!("@{n}"))
            .collect()
    }

    /// Positions of the key arguments of `req` (the command name is position 0).
    #[inline]
    pub fn keys_of(&self, req: &Request) -> KeyPositions {
        if let Some(f) = self.keys_fn {
            return KeyPositions::Listed(f(req).into_iter());
        }
        let argc = req.len();
        let (first, step) = (self.first_key, self.key_step.max(1) as usize);
        let last = if self.last_key < 0 { argc as i32 + self.last_key } else { self.last_key };
        let range = if first <= 0 || last < first { 0..0 } else { first as usize..(last as usize + 1).min(argc) };
        KeyPositions::Range(range.step_by(step))
    }

    /// Whether the command can have key arguments (shard channels do not count).
    pub fn has_keys(&self) -> bool {
        self.keys_fn.is_some() || self.key_specs.iter().any(|k| k.flags & super::keyspec::flags::NOT_KEY == 0)
    }

    /// Whether this request must run with every shard leased.
    #[inline]
    pub fn needs_all_shards(&self, req: &Request) -> bool {
        self.all_shards_fn.is_some_and(|f| f(req))
    }

    /// Declares that some requests of the command read keys found only at run time.
    fn reads_any_key(mut self, f: fn(&Request) -> bool) -> CommandSpec {
        self.all_shards_fn = Some(f);
        self
    }

    /// Declares the command's keys movable, found by `f`.
    fn movable(mut self, f: KeysFn) -> CommandSpec {
        self.keys_fn = Some(f);
        self.flags |= flags::MOVABLE_KEYS;
        self
    }

    /// Whether `argc` arguments (the name included) fit the command's arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity > 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    pub fn subcommand(&self, name: &[u8]) -> Option<&CommandSpec> {
        self.subcommands.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Declares a command: `c(name, arity, "flag flag", first, last, step, "@cat @cat", handler)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn c(
    name: &'static str,
    arity: i32,
    flag_words: &str,
    keys: (i32, i32, i32),
    cats: &str,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    let mut f = 0;
    for w in flag_words.split_whitespace() {
        f |= flags::NAMES.iter().find(|(_, n)| *n == w).unwrap_or_else(|| panic!("unknown flag {w}")).0;
    }
    let mut acl = 0u64;
    for w in cats.split_whitespace() {
        let w = w.trim_start_matches('@');
        let i = ACL_CATEGORIES.iter().position(|n| *n == w).unwrap_or_else(|| panic!("unknown category {w}"));
        acl |= 1 << i;
    }
    // Redis's implicit categories.
    let cat = |n: &str| 1u64 << ACL_CATEGORIES.iter().position(|c| *c == n).expect("category");
    if f & flags::WRITE != 0 {
        acl |= cat("write");
    }
    if f & flags::READONLY != 0 && acl & cat("scripting") == 0 {
        acl |= cat("read");
    }
    if f & flags::ADMIN != 0 {
        acl |= cat("admin") | cat("dangerous");
    }
    if f & flags::PUBSUB != 0 {
        acl |= cat("pubsub");
    }
    if f & flags::FAST != 0 {
        acl |= cat("fast");
    }
    if f & flags::BLOCKING != 0 {
        acl |= cat("blocking");
    }
    if acl & cat("fast") == 0 {
        acl |= cat("slow");
    }
    CommandSpec {
        name,
        full_name: name.to_string(),
        arity,
        flags: f,
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        acl,
        group,
        since,
        summary,
        complexity: "",
        handler,
        subcommands: Vec::new(),
        id: 0,
        parent: None,
        keys_fn: None,
        all_shards_fn: None,
        key_specs: Vec::new(),
        tips: &[],
    }
}

fn container(
    name: &'static str,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    subs: Vec<CommandSpec>,
) -> CommandSpec {
    let mut spec = c(name, -2, "", (0, 0, 0), "@slow", group, since, summary, Handler::Container);
    for mut s in subs {
        s.full_name = format!("{name}|{}", s.name);
        s.parent = Some(name);
        s.group = group;
        spec.subcommands.push(s);
    }
    spec
}

/// The keys after a `numkeys` argument at position `at`, when it is valid.
fn after_numkeys(req: &Request, at: usize) -> Vec<usize> {
    match shoal_proto::request::parse_i64(req.arg(at)) {
        Some(n) if n > 0 && n as u64 <= (req.len() - at - 1) as u64 => (at + 1..=at + n as usize).collect(),
        _ => Vec::new(),
    }
}

fn keys_georadius(req: &Request) -> Vec<usize> {
    super::geo::radius_keys(req)
}

fn keys_sort(req: &Request) -> Vec<usize> {
    super::sort::keys(req)
}

fn keys_streams(req: &Request) -> Vec<usize> {
    super::streams::read_keys(req)
}

fn keys_numkeys_at_2(req: &Request) -> Vec<usize> {
    after_numkeys(req, 2)
}

fn keys_numkeys_at_1(req: &Request) -> Vec<usize> {
    after_numkeys(req, 1)
}

/// A destination key, then `numkeys` source keys (ZUNIONSTORE and friends).
fn keys_store_numkeys(req: &Request) -> Vec<usize> {
    let mut k = after_numkeys(req, 2);
    if !k.is_empty() {
        k.insert(0, 1);
    }
    k
}

const NOKEY: (i32, i32, i32) = (0, 0, 0);
const KEY1: (i32, i32, i32) = (1, 1, 1);
const ALLKEYS: (i32, i32, i32) = (1, -1, 1);

fn declare() -> Vec<CommandSpec> {
    use super::{
        bitmaps as bm, blocking as b, hashes as h, keys as k, lists as l, sets as st_, streams as x, strings as s,
        zsets as z,
    };
    use Handler::{Gateway as G, Shard as S};
    let st = "string";
    let gen = "generic";
    let conn = "connection";
    let srv = "server";
    let cl = "cluster";
    let hs = "hash";
    let se = "set";
    let li = "list";
    let zs = "sorted-set";
    vec![
        // strings
        c("get", 2, "readonly fast", KEY1, "@string", st, "1.0.0", "Returns the string value of a key.", S(s::get)),
        c("set", -3, "write denyoom", KEY1, "@string", st, "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", S(s::set)),
        c("setnx", 3, "write denyoom fast", KEY1, "@string", st, "1.0.0", "Set the string value of a key only when the key doesn't exist.", S(s::setnx)),
        c("setex", 4, "write denyoom", KEY1, "@string", st, "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", S(s::setex)),
        c("psetex", 4, "write denyoom", KEY1, "@string", st, "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", S(s::psetex)),
        c("mget", -2, "readonly fast", ALLKEYS, "@string", st, "1.0.0", "Atomically returns the string values of one or more keys.", S(s::mget)),
        c("mset", -3, "write denyoom", (1, -1, 2), "@string", st, "1.0.1", "Atomically creates or modifies the string values of one or more keys.", S(s::mset)),
        c("msetnx", -3, "write denyoom", (1, -1, 2), "@string", st, "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", S(s::msetnx)),
        c("getset", 3, "write denyoom fast", KEY1, "@string", st, "1.0.0", "Returns the previous string value of a key after setting it to a new value.", S(s::getset)),
        c("getdel", 2, "write fast", KEY1, "@string", st, "6.2.0", "Returns the string value of a key after deleting the key.", S(s::getdel)),
        c("getex", -2, "write fast", KEY1, "@string", st, "6.2.0", "Returns the string value of a key after setting its expiration time.", S(s::getex)),
        c("append", 3, "write denyoom fast", KEY1, "@string", st, "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", S(s::append)),
        c("strlen", 2, "readonly fast", KEY1, "@string", st, "2.2.0", "Returns the length of a string value.", S(s::strlen)),
        c("getrange", 4, "readonly", KEY1, "@string", st, "2.4.0", "Returns a substring of the string stored at a key.", S(s::getrange)),
        c("substr", 4, "readonly", KEY1, "@string", st, "1.0.0", "Returns a substring from a string value.", S(s::getrange)),
        c("setrange", 4, "write denyoom", KEY1, "@string", st, "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", S(s::setrange)),
        c("incr", 2, "write denyoom fast", KEY1, "@string", st, "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", S(s::incr)),
        c("decr", 2, "write denyoom fast", KEY1, "@string", st, "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", S(s::decr)),
        c("incrby", 3, "write denyoom fast", KEY1, "@string", st, "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", S(s::incrby)),
        c("decrby", 3, "write denyoom fast", KEY1, "@string", st, "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", S(s::decrby)),
        c("incrbyfloat", 3, "write denyoom fast", KEY1, "@string", st, "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", S(s::incrbyfloat)),
        c("lcs", -3, "readonly", (1, 2, 1), "@string", st, "7.0.0", "Finds the longest common substring.", S(s::lcs)),
        // bitmaps
        c("setbit", 4, "write denyoom", KEY1, "@bitmap", "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", S(bm::setbit)),
        c("getbit", 3, "readonly fast", KEY1, "@bitmap", "bitmap", "2.2.0", "Returns a bit value by offset.", S(bm::getbit)),
        c("bitcount", -2, "readonly", KEY1, "@bitmap", "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string.", S(bm::bitcount)),
        c("bitpos", -3, "readonly", KEY1, "@bitmap", "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string.", S(bm::bitpos)),
        c("bitop", -4, "write denyoom", (2, -1, 1), "@bitmap", "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result.", S(bm::bitop)),
        c("bitfield", -2, "write denyoom", KEY1, "@bitmap", "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings.", S(bm::bitfield)),
        c("bitfield_ro", -2, "readonly fast", KEY1, "@bitmap", "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings.", S(bm::bitfield_ro)),
        // geo
        c("geoadd", -5, "write denyoom", KEY1, "@geo", "geo", "3.2.0", "Adds one or more members to a geospatial index. The key is created if it doesn't exist.", S(super::geo::geoadd)),
        c("geodist", -4, "readonly", KEY1, "@geo", "geo", "3.2.0", "Returns the distance between two members of a geospatial index.", S(super::geo::geodist)),
        c("geohash", -2, "readonly", KEY1, "@geo", "geo", "3.2.0", "Returns members from a geospatial index as geohash strings.", S(super::geo::geohash_cmd)),
        c("geopos", -2, "readonly", KEY1, "@geo", "geo", "3.2.0", "Returns the longitude and latitude of members from a geospatial index.", S(super::geo::geopos)),
        c("georadius", -6, "write denyoom", KEY1, "@geo", "geo", "3.2.0", "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.", S(super::geo::georadius)).movable(keys_georadius),
        c("georadius_ro", -6, "readonly", KEY1, "@geo", "geo", "3.2.10", "Returns members from a geospatial index that are within a distance from a coordinate.", S(super::geo::georadius_ro)),
        c("georadiusbymember", -5, "write denyoom", KEY1, "@geo", "geo", "3.2.0", "Queries a geospatial index for members within a distance from a member, optionally stores the result.", S(super::geo::georadiusbymember)).movable(keys_georadius),
        c("georadiusbymember_ro", -5, "readonly", KEY1, "@geo", "geo", "3.2.10", "Returns members from a geospatial index that are within a distance from a member.", S(super::geo::georadiusbymember_ro)),
        c("geosearch", -7, "readonly", KEY1, "@geo", "geo", "6.2.0", "Queries a geospatial index for members inside an area of a box or a circle.", S(super::geo::geosearch)),
        c("geosearchstore", -8, "write denyoom", (1, 2, 1), "@geo", "geo", "6.2.0", "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.", S(super::geo::geosearchstore)),
        // hyperloglog
        c("pfadd", -2, "write denyoom fast", KEY1, "@hyperloglog", "hyperloglog", "2.8.9", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.", S(super::hll::pfadd)),
        c("pfcount", -2, "readonly", ALLKEYS, "@hyperloglog", "hyperloglog", "2.8.9", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", S(super::hll::pfcount)),
        c("pfmerge", -2, "write denyoom", ALLKEYS, "@hyperloglog", "hyperloglog", "2.8.9", "Merges one or more HyperLogLog values into a single key.", S(super::hll::pfmerge)),
        c("pfdebug", 3, "write denyoom admin", (2, 2, 1), "@hyperloglog", "hyperloglog", "2.8.9", "Internal commands for debugging HyperLogLog values.", S(super::hll::pfdebug)),
        // hashes
        c("hset", -4, "write denyoom fast", KEY1, "@hash", hs, "2.0.0", "Creates or modifies the value of a field in a hash.", S(h::hset)),
        c("hsetnx", 4, "write denyoom fast", KEY1, "@hash", hs, "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", S(h::hsetnx)),
        c("hget", 3, "readonly fast", KEY1, "@hash", hs, "2.0.0", "Returns the value of a field in a hash.", S(h::hget)),
        c("hmget", -3, "readonly fast", KEY1, "@hash", hs, "2.0.0", "Returns the values of all fields in a hash.", S(h::hmget)),
        c("hmset", -4, "write denyoom fast", KEY1, "@hash", hs, "2.0.0", "Sets the values of multiple fields.", S(h::hmset)),
        c("hdel", -3, "write fast", KEY1, "@hash", hs, "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", S(h::hdel)),
        c("hlen", 2, "readonly fast", KEY1, "@hash", hs, "2.0.0", "Returns the number of fields in a hash.", S(h::hlen)),
        c("hstrlen", 3, "readonly fast", KEY1, "@hash", hs, "3.2.0", "Returns the length of the value of a field.", S(h::hstrlen)),
        c("hexists", 3, "readonly fast", KEY1, "@hash", hs, "2.0.0", "Determines whether a field exists in a hash.", S(h::hexists)),
        c("hkeys", 2, "readonly", KEY1, "@hash", hs, "2.0.0", "Returns all fields in a hash.", S(h::hkeys)),
        c("hvals", 2, "readonly", KEY1, "@hash", hs, "2.0.0", "Returns all values in a hash.", S(h::hvals)),
        c("hgetall", 2, "readonly", KEY1, "@hash", hs, "2.0.0", "Returns all fields and values in a hash.", S(h::hgetall)),
        c("hincrby", 4, "write denyoom fast", KEY1, "@hash", hs, "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", S(h::hincrby)),
        c("hincrbyfloat", 4, "write denyoom fast", KEY1, "@hash", hs, "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", S(h::hincrbyfloat)),
        c("hrandfield", -2, "readonly", KEY1, "@hash", hs, "6.2.0", "Returns one or more random fields from a hash.", S(h::hrandfield)),
        c("hexpire", -6, "write denyoom fast", KEY1, "@hash", hs, "7.4.0", "Set expiry for hash field using relative time to expire (seconds)", S(h::hexpire)),
        c("hpexpire", -6, "write denyoom fast", KEY1, "@hash", hs, "7.4.0", "Set expiry for hash field using relative time to expire (milliseconds)", S(h::hpexpire)),
        c("hexpireat", -6, "write denyoom fast", KEY1, "@hash", hs, "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (seconds)", S(h::hexpireat)),
        c("hpexpireat", -6, "write denyoom fast", KEY1, "@hash", hs, "7.4.0", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)", S(h::hpexpireat)),
        c("httl", -5, "readonly fast", KEY1, "@hash", hs, "7.4.0", "Returns the TTL in seconds of a hash field.", S(h::httl)),
        c("hpttl", -5, "readonly fast", KEY1, "@hash", hs, "7.4.0", "Returns the TTL in milliseconds of a hash field.", S(h::hpttl)),
        c("hexpiretime", -5, "readonly fast", KEY1, "@hash", hs, "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", S(h::hexpiretime)),
        c("hpexpiretime", -5, "readonly fast", KEY1, "@hash", hs, "7.4.0", "Returns the expiration time of a hash field as a Unix timestamp, in msec.", S(h::hpexpiretime)),
        c("hpersist", -5, "write fast", KEY1, "@hash", hs, "7.4.0", "Removes the expiration time for each specified field", S(h::hpersist)),
        c("hscan", -3, "readonly", KEY1, "@hash", hs, "2.8.0", "Iterates over fields and values of a hash.", S(h::hscan)),
        // sets
        c("sadd", -3, "write denyoom fast", KEY1, "@set", se, "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.", S(st_::sadd)),
        c("srem", -3, "write fast", KEY1, "@set", se, "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.", S(st_::srem)),
        c("scard", 2, "readonly fast", KEY1, "@set", se, "1.0.0", "Returns the number of members in a set.", S(st_::scard)),
        c("sismember", 3, "readonly fast", KEY1, "@set", se, "1.0.0", "Determines whether a member belongs to a set.", S(st_::sismember)),
        c("smismember", -3, "readonly fast", KEY1, "@set", se, "6.2.0", "Determines whether multiple members belong to a set.", S(st_::smismember)),
        c("smembers", 2, "readonly", KEY1, "@set", se, "1.0.0", "Returns all members of a set.", S(st_::smembers)),
        c("spop", -2, "write fast", KEY1, "@set", se, "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", S(st_::spop)),
        c("srandmember", -2, "readonly", KEY1, "@set", se, "1.0.0", "Get one or multiple random members from a set", S(st_::srandmember)),
        c("smove", 4, "write fast", (1, 2, 1), "@set", se, "1.0.0", "Moves a member from one set to another.", S(st_::smove)),
        c("sinter", -2, "readonly", ALLKEYS, "@set", se, "1.0.0", "Returns the intersect of multiple sets.", S(st_::sinter)),
        c("sintercard", -3, "readonly", NOKEY, "@set", se, "7.0.0", "Returns the number of members of the intersect of multiple sets.", S(st_::sintercard)).movable(keys_numkeys_at_1),
        c("sunion", -2, "readonly", ALLKEYS, "@set", se, "1.0.0", "Returns the union of multiple sets.", S(st_::sunion)),
        c("sdiff", -2, "readonly", ALLKEYS, "@set", se, "1.0.0", "Returns the difference of multiple sets.", S(st_::sdiff)),
        c("sinterstore", -3, "write denyoom", ALLKEYS, "@set", se, "1.0.0", "Stores the intersect of multiple sets in a key.", S(st_::sinterstore)),
        c("sunionstore", -3, "write denyoom", ALLKEYS, "@set", se, "1.0.0", "Stores the union of multiple sets in a key.", S(st_::sunionstore)),
        c("sdiffstore", -3, "write denyoom", ALLKEYS, "@set", se, "1.0.0", "Stores the difference of multiple sets in a key.", S(st_::sdiffstore)),
        c("sscan", -3, "readonly", KEY1, "@set", se, "2.0.0", "Iterates over members of a set.", S(st_::sscan)),
        // lists
        c("lpush", -3, "write denyoom fast", KEY1, "@list", li, "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", S(l::lpush)),
        c("rpush", -3, "write denyoom fast", KEY1, "@list", li, "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", S(l::rpush)),
        c("lpushx", -3, "write denyoom fast", KEY1, "@list", li, "2.2.0", "Prepends one or more elements to a list only when the list exists.", S(l::lpushx)),
        c("rpushx", -3, "write denyoom fast", KEY1, "@list", li, "2.2.0", "Appends an element to a list only when the list exists.", S(l::rpushx)),
        c("lpop", -2, "write fast", KEY1, "@list", li, "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", S(l::lpop)),
        c("rpop", -2, "write fast", KEY1, "@list", li, "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", S(l::rpop)),
        c("llen", 2, "readonly fast", KEY1, "@list", li, "1.0.0", "Returns the length of a list.", S(l::llen)),
        c("lindex", 3, "readonly", KEY1, "@list", li, "1.0.0", "Returns an element from a list by its index.", S(l::lindex)),
        c("linsert", 5, "write denyoom", KEY1, "@list", li, "2.2.0", "Inserts an element before or after another element in a list.", S(l::linsert)),
        c("lrange", 4, "readonly", KEY1, "@list", li, "1.0.0", "Returns a range of elements from a list.", S(l::lrange)),
        c("lrem", 4, "write", KEY1, "@list", li, "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", S(l::lrem)),
        c("lset", 4, "write denyoom", KEY1, "@list", li, "1.0.0", "Sets the value of an element in a list by its index.", S(l::lset)),
        c("ltrim", 4, "write", KEY1, "@list", li, "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", S(l::ltrim)),
        c("lpos", -3, "readonly", KEY1, "@list", li, "6.0.6", "Returns the index of matching elements in a list.", S(l::lpos)),
        c("lmove", 5, "write denyoom", (1, 2, 1), "@list", li, "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", S(l::lmove)),
        c("rpoplpush", 3, "write denyoom", (1, 2, 1), "@list", li, "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", S(l::rpoplpush)),
        c("blpop", -3, "write blocking noscript", (1, -2, 1), "@list", li, "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", S(b::blpop)),
        c("brpop", -3, "write blocking noscript", (1, -2, 1), "@list", li, "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", S(b::brpop)),
        c("brpoplpush", 4, "write denyoom blocking noscript", (1, 2, 1), "@list", li, "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", S(b::brpoplpush)),
        c("blmove", 6, "write denyoom blocking noscript", (1, 2, 1), "@list", li, "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", S(b::blmove)),
        c("blmpop", -5, "write blocking", NOKEY, "@list", li, "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", S(b::blmpop)).movable(keys_numkeys_at_2),
        c("lmpop", -4, "write", NOKEY, "@list", li, "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", S(l::lmpop)).movable(keys_numkeys_at_1),
        // sorted sets
        c("zadd", -4, "write denyoom fast", KEY1, "@sortedset", zs, "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", S(z::zadd)),
        c("zincrby", 4, "write denyoom fast", KEY1, "@sortedset", zs, "1.2.0", "Increments the score of a member in a sorted set.", S(z::zincrby)),
        c("zrem", -3, "write fast", KEY1, "@sortedset", zs, "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", S(z::zrem)),
        c("zcard", 2, "readonly fast", KEY1, "@sortedset", zs, "1.2.0", "Returns the number of members in a sorted set.", S(z::zcard)),
        c("zcount", 4, "readonly fast", KEY1, "@sortedset", zs, "2.0.0", "Returns the count of members in a sorted set that have scores within a range.", S(z::zcount)),
        c("zlexcount", 4, "readonly fast", KEY1, "@sortedset", zs, "2.8.9", "Returns the number of members in a sorted set within a lexicographical range.", S(z::zlexcount)),
        c("zscore", 3, "readonly fast", KEY1, "@sortedset", zs, "1.2.0", "Returns the score of a member in a sorted set.", S(z::zscore)),
        c("zmscore", -3, "readonly fast", KEY1, "@sortedset", zs, "6.2.0", "Returns the score of one or more members in a sorted set.", S(z::zmscore)),
        c("zrank", -3, "readonly fast", KEY1, "@sortedset", zs, "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores.", S(z::zrank)),
        c("zrevrank", -3, "readonly fast", KEY1, "@sortedset", zs, "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores.", S(z::zrevrank)),
        c("zrange", -4, "readonly", KEY1, "@sortedset", zs, "1.2.0", "Returns members in a sorted set within a range of indexes.", S(z::zrange)),
        c("zrangestore", -5, "write denyoom", (1, 2, 1), "@sortedset", zs, "6.2.0", "Stores a range of members from sorted set in a key.", S(z::zrangestore)),
        c("zrevrange", -4, "readonly", KEY1, "@sortedset", zs, "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order.", S(z::zrevrange)),
        c("zrangebyscore", -4, "readonly", KEY1, "@sortedset", zs, "1.0.5", "Returns members in a sorted set within a range of scores.", S(z::zrangebyscore)),
        c("zrevrangebyscore", -4, "readonly", KEY1, "@sortedset", zs, "2.2.0", "Returns members in a sorted set within a range of scores in reverse order.", S(z::zrevrangebyscore)),
        c("zrangebylex", -4, "readonly", KEY1, "@sortedset", zs, "2.8.9", "Returns members in a sorted set within a lexicographical range.", S(z::zrangebylex)),
        c("zrevrangebylex", -4, "readonly", KEY1, "@sortedset", zs, "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order.", S(z::zrevrangebylex)),
        c("zremrangebyrank", 4, "write", KEY1, "@sortedset", zs, "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", S(z::zremrangebyrank)),
        c("zremrangebyscore", 4, "write", KEY1, "@sortedset", zs, "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", S(z::zremrangebyscore)),
        c("zremrangebylex", 4, "write", KEY1, "@sortedset", zs, "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", S(z::zremrangebylex)),
        c("zpopmin", -2, "write fast", KEY1, "@sortedset", zs, "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", S(z::zpopmin)),
        c("zpopmax", -2, "write fast", KEY1, "@sortedset", zs, "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", S(z::zpopmax)),
        c("zmpop", -4, "write", NOKEY, "@sortedset", zs, "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", S(z::zmpop)).movable(keys_numkeys_at_1),
        c("bzpopmin", -3, "write blocking noscript fast", (1, -2, 1), "@sortedset", zs, "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", S(b::bzpopmin)),
        c("bzpopmax", -3, "write blocking noscript fast", (1, -2, 1), "@sortedset", zs, "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", S(b::bzpopmax)),
        c("bzmpop", -5, "write blocking", NOKEY, "@sortedset", zs, "7.0.0", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", S(b::bzmpop)).movable(keys_numkeys_at_2),
        c("zrandmember", -2, "readonly", KEY1, "@sortedset", zs, "6.2.0", "Returns one or more random members from a sorted set.", S(z::zrandmember)),
        c("zunion", -3, "readonly", NOKEY, "@sortedset", zs, "6.2.0", "Returns the union of multiple sorted sets.", S(z::zunion)).movable(keys_numkeys_at_1),
        c("zinter", -3, "readonly", NOKEY, "@sortedset", zs, "6.2.0", "Returns the intersect of multiple sorted sets.", S(z::zinter)).movable(keys_numkeys_at_1),
        c("zdiff", -3, "readonly", NOKEY, "@sortedset", zs, "6.2.0", "Returns the difference between multiple sorted sets.", S(z::zdiff)).movable(keys_numkeys_at_1),
        c("zunionstore", -4, "write denyoom", KEY1, "@sortedset", zs, "2.0.0", "Stores the union of multiple sorted sets in a key.", S(z::zunionstore)).movable(keys_store_numkeys),
        c("zinterstore", -4, "write denyoom", KEY1, "@sortedset", zs, "2.0.0", "Stores the intersect of multiple sorted sets in a key.", S(z::zinterstore)).movable(keys_store_numkeys),
        c("zdiffstore", -4, "write denyoom", KEY1, "@sortedset", zs, "6.2.0", "Stores the difference of multiple sorted sets in a key.", S(z::zdiffstore)).movable(keys_store_numkeys),
        c("zintercard", -3, "readonly", NOKEY, "@sortedset", zs, "7.0.0", "Returns the number of members of the intersect of multiple sorted sets.", S(z::zintercard)).movable(keys_numkeys_at_1),
        c("zscan", -3, "readonly", KEY1, "@sortedset", zs, "2.8.0", "Iterates over members and scores of a sorted set.", S(z::zscan)),
        // streams
        c("xadd", -5, "write denyoom fast", KEY1, "@stream", "stream", "5.0.0", "Appends a new message to a stream. Creates the key if it doesn't exist.", S(x::xadd)),
        c("xtrim", -4, "write", KEY1, "@stream", "stream", "5.0.0", "Deletes messages from the beginning of a stream.", S(x::xtrim)),
        c("xlen", 2, "readonly fast", KEY1, "@stream", "stream", "5.0.0", "Return the number of messages in a stream.", S(x::xlen)),
        c("xrange", -4, "readonly", KEY1, "@stream", "stream", "5.0.0", "Returns the messages from a stream within a range of IDs.", S(x::xrange)),
        c("xrevrange", -4, "readonly", KEY1, "@stream", "stream", "5.0.0", "Returns the messages from a stream within a range of IDs in reverse order.", S(x::xrevrange)),
        c("xdel", -3, "write fast", KEY1, "@stream", "stream", "5.0.0", "Returns the number of messages after removing them from a stream.", S(x::xdel)),
        c("xread", -4, "readonly blocking", NOKEY, "@stream", "stream", "5.0.0", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", S(x::xread)).movable(keys_streams),
        c("xreadgroup", -7, "write blocking", NOKEY, "@stream", "stream", "5.0.0", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", S(x::xreadgroup)).movable(keys_streams),
        container("xgroup", "stream", "5.0.0", "A container for consumer groups commands.", vec![
            c("create", -5, "write denyoom", (2, 2, 1), "@stream", "stream", "5.0.0", "Creates a consumer group.", S(x::xgroup_create)),
            c("setid", -5, "write", (2, 2, 1), "@stream", "stream", "5.0.0", "Sets the last-delivered ID of a consumer group.", S(x::xgroup_setid)),
            c("destroy", 4, "write", (2, 2, 1), "@stream", "stream", "5.0.0", "Destroys a consumer group.", S(x::xgroup_destroy)),
            c("createconsumer", 5, "write denyoom", (2, 2, 1), "@stream", "stream", "6.2.0", "Creates a consumer in a consumer group.", S(x::xgroup_createconsumer)),
            c("delconsumer", 5, "write", (2, 2, 1), "@stream", "stream", "5.0.0", "Deletes a consumer from a consumer group.", S(x::xgroup_delconsumer)),
            c("help", 2, "loading stale", NOKEY, "@stream", "stream", "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        c("xack", -4, "write fast", KEY1, "@stream", "stream", "5.0.0", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", S(x::xack)),
        c("xpending", -3, "readonly", KEY1, "@stream", "stream", "5.0.0", "Returns the information and entries from a stream consumer group's pending entries list.", S(x::xpending)),
        c("xclaim", -6, "write fast", KEY1, "@stream", "stream", "5.0.0", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", S(x::xclaim)),
        c("xautoclaim", -6, "write fast", KEY1, "@stream", "stream", "6.2.0", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", S(x::xautoclaim)),
        container("xinfo", "stream", "5.0.0", "A container for stream introspection commands.", vec![
            c("stream", -3, "readonly", (2, 2, 1), "@stream", "stream", "5.0.0", "Returns information about a stream.", S(x::xinfo_stream)),
            c("groups", 3, "readonly", (2, 2, 1), "@stream", "stream", "5.0.0", "Returns a list of the consumer groups of a stream.", S(x::xinfo_groups)),
            c("consumers", 4, "readonly", (2, 2, 1), "@stream", "stream", "5.0.0", "Returns a list of the consumers in a consumer group.", S(x::xinfo_consumers)),
            c("help", 2, "loading stale", NOKEY, "@stream", "stream", "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        c("xsetid", -3, "write denyoom fast", KEY1, "@stream", "stream", "5.0.0", "An internal command for replicating stream values.", S(x::xsetid)),
        // pub/sub
        c("subscribe", -2, "pubsub noscript loading stale", NOKEY, "", "pubsub", "2.0.0", "Listens for messages published to channels.", G(Gw::Subscribe)),
        c("unsubscribe", -1, "pubsub noscript loading stale", NOKEY, "", "pubsub", "2.0.0", "Stops listening to messages posted to channels.", G(Gw::Unsubscribe)),
        c("psubscribe", -2, "pubsub noscript loading stale", NOKEY, "", "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", G(Gw::PSubscribe)),
        c("punsubscribe", -1, "pubsub noscript loading stale", NOKEY, "", "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", G(Gw::PUnsubscribe)),
        c("ssubscribe", -2, "pubsub noscript loading stale", (1, -1, 1), "", "pubsub", "7.0.0", "Listens for messages published to shard channels.", G(Gw::SSubscribe)),
        c("sunsubscribe", -1, "pubsub noscript loading stale", (1, -1, 1), "", "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.", G(Gw::SUnsubscribe)),
        c("publish", 3, "pubsub loading stale fast", NOKEY, "", "pubsub", "2.0.0", "Posts a message to a channel.", G(Gw::Publish)),
        c("spublish", 3, "pubsub loading stale fast", KEY1, "", "pubsub", "7.0.0", "Post a message to a shard channel", G(Gw::SPublish)),
        container("pubsub", "pubsub", "2.8.0", "A container for Pub/Sub commands.", vec![
            c("channels", -2, "pubsub loading stale", NOKEY, "", "pubsub", "2.8.0", "Returns the active channels.", G(Gw::PubsubChannels)),
            c("numsub", -2, "pubsub loading stale", NOKEY, "", "pubsub", "2.8.0", "Returns a count of subscribers to channels.", G(Gw::PubsubNumSub)),
            c("numpat", 2, "pubsub loading stale", NOKEY, "", "pubsub", "2.8.0", "Returns a count of unique pattern subscriptions.", G(Gw::PubsubNumPat)),
            c("shardchannels", -2, "pubsub loading stale", NOKEY, "", "pubsub", "7.0.0", "Returns the active shard channels.", G(Gw::PubsubShardChannels)),
            c("shardnumsub", -2, "pubsub loading stale", NOKEY, "", "pubsub", "7.0.0", "Returns the count of subscribers of shard channels.", G(Gw::PubsubShardNumSub)),
            c("help", 2, "loading stale", NOKEY, "", "pubsub", "6.2.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        // sort
        c("sort", -2, "write denyoom", KEY1, "@set @sortedset @list @dangerous", gen, "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", S(super::sort::sort)).movable(keys_sort).reads_any_key(super::sort::needs_all_shards),
        c("sort_ro", -2, "readonly", KEY1, "@set @sortedset @list @dangerous", gen, "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set.", S(super::sort::sort_ro)).movable(keys_sort).reads_any_key(super::sort::needs_all_shards),
        // scripting
        c("eval", -3, "noscript stale skip_monitor no_mandatory_keys", NOKEY, "@slow @scripting", "scripting", "2.6.0", "Executes a server-side Lua script.", G(Gw::Eval)).movable(keys_numkeys_at_2),
        c("evalsha", -3, "noscript stale skip_monitor no_mandatory_keys", NOKEY, "@slow @scripting", "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.", G(Gw::EvalSha)).movable(keys_numkeys_at_2),
        c("eval_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Executes a read-only server-side Lua script.", G(Gw::EvalRo)).movable(keys_numkeys_at_2),
        c("evalsha_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.", G(Gw::EvalShaRo)).movable(keys_numkeys_at_2),
        c("fcall", -3, "noscript stale skip_monitor no_mandatory_keys", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Invokes a function.", G(Gw::FCall)).movable(keys_numkeys_at_2),
        c("fcall_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Invokes a read-only function.", G(Gw::FCallRo)).movable(keys_numkeys_at_2),
        container("function", "scripting", "7.0.0", "A container for function commands.", vec![
            c("delete", 3, "write noscript", NOKEY, "@write @slow @scripting", "scripting", "7.0.0", "Deletes a library and its functions.", G(Gw::FunctionDelete)),
            c("dump", 2, "noscript", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Dumps all libraries into a serialized binary payload.", G(Gw::FunctionDump)),
            c("flush", -2, "write noscript", NOKEY, "@write @slow @scripting", "scripting", "7.0.0", "Deletes all libraries and functions.", G(Gw::FunctionFlush)),
            c("help", 2, "loading stale", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
            c("kill", 2, "noscript allow_busy", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Terminates a function during execution.", G(Gw::FunctionKill)),
            c("list", -2, "noscript", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Returns information about all libraries.", G(Gw::FunctionList)),
            c("load", -3, "write denyoom noscript", NOKEY, "@write @slow @scripting", "scripting", "7.0.0", "Creates a library.", G(Gw::FunctionLoad)),
            c("restore", -3, "write denyoom noscript", NOKEY, "@write @slow @scripting", "scripting", "7.0.0", "Restores all libraries from a payload.", G(Gw::FunctionRestore)),
            c("stats", 2, "noscript allow_busy", NOKEY, "@slow @scripting", "scripting", "7.0.0", "Returns information about a function during execution.", G(Gw::FunctionStats)),
        ]),
        container("script", "scripting", "2.6.0", "A container for Lua scripts management commands.", vec![
            c("debug", 3, "noscript", NOKEY, "@slow @scripting", "scripting", "3.2.0", "Sets the debug mode of server-side Lua scripts.", G(Gw::ScriptDebug)),
            c("exists", -3, "noscript", NOKEY, "@slow @scripting", "scripting", "2.6.0", "Determines whether server-side Lua scripts exist in the script cache.", G(Gw::ScriptExists)),
            c("flush", -2, "noscript", NOKEY, "@slow @scripting", "scripting", "2.6.0", "Removes all server-side Lua scripts from the script cache.", G(Gw::ScriptFlush)),
            c("kill", 2, "noscript allow_busy", NOKEY, "@slow @scripting", "scripting", "2.6.0", "Terminates a server-side Lua script during execution.", G(Gw::ScriptKill)),
            c("load", 3, "noscript stale", NOKEY, "@slow @scripting", "scripting", "2.6.0", "Loads a server-side Lua script to the script cache.", G(Gw::ScriptLoad)),
            c("help", 2, "loading stale", NOKEY, "@slow @scripting", "scripting", "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        // transactions
        c("multi", 1, "noscript loading stale fast allow_busy", NOKEY, "@transaction", "transactions", "1.2.0", "Starts a transaction.", G(Gw::Multi)),
        c("exec", 1, "noscript loading stale skip_slowlog", NOKEY, "@transaction", "transactions", "1.2.0", "Executes all commands in a transaction.", G(Gw::Exec)),
        c("discard", 1, "noscript loading stale fast allow_busy", NOKEY, "@transaction", "transactions", "2.0.0", "Discards a transaction.", G(Gw::Discard)),
        c("watch", -2, "noscript loading stale fast allow_busy", (1, -1, 1), "@transaction", "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.", G(Gw::Watch)),
        c("unwatch", 1, "noscript loading stale fast allow_busy", NOKEY, "@transaction", "transactions", "2.2.0", "Forgets about watched keys of a transaction.", G(Gw::Unwatch)),
        // keys
        c("del", -2, "write", ALLKEYS, "@keyspace", gen, "1.0.0", "Deletes one or more keys.", S(k::del)),
        c("unlink", -2, "write fast", ALLKEYS, "@keyspace", gen, "4.0.0", "Asynchronously deletes one or more keys.", S(k::del)),
        c("exists", -2, "readonly fast", ALLKEYS, "@keyspace", gen, "1.0.0", "Determines whether one or more keys exist.", S(k::exists)),
        c("touch", -2, "readonly fast", ALLKEYS, "@keyspace", gen, "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", S(k::touch)),
        c("type", 2, "readonly fast", KEY1, "@keyspace", gen, "1.0.0", "Determines the type of value stored at a key.", S(k::type_)),
        c("expire", -3, "write fast", KEY1, "@keyspace", gen, "1.0.0", "Sets the expiration time of a key in seconds.", S(k::expire)),
        c("pexpire", -3, "write fast", KEY1, "@keyspace", gen, "2.6.0", "Sets the expiration time of a key in milliseconds.", S(k::pexpire)),
        c("expireat", -3, "write fast", KEY1, "@keyspace", gen, "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", S(k::expireat)),
        c("pexpireat", -3, "write fast", KEY1, "@keyspace", gen, "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", S(k::pexpireat)),
        c("ttl", 2, "readonly fast", KEY1, "@keyspace", gen, "1.0.0", "Returns the expiration time in seconds of a key.", S(k::ttl)),
        c("pttl", 2, "readonly fast", KEY1, "@keyspace", gen, "2.6.0", "Returns the expiration time in milliseconds of a key.", S(k::pttl)),
        c("expiretime", 2, "readonly fast", KEY1, "@keyspace", gen, "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", S(k::expiretime)),
        c("pexpiretime", 2, "readonly fast", KEY1, "@keyspace", gen, "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", S(k::pexpiretime)),
        c("persist", 2, "write fast", KEY1, "@keyspace", gen, "2.2.0", "Removes the expiration time of a key.", S(k::persist)),
        c("rename", 3, "write", (1, 2, 1), "@keyspace", gen, "1.0.0", "Renames a key and overwrites the destination.", S(k::rename)),
        c("renamenx", 3, "write fast", (1, 2, 1), "@keyspace", gen, "1.0.0", "Renames a key only when the target key name doesn't exist.", S(k::renamenx)),
        c("copy", -3, "write denyoom", (1, 2, 1), "@keyspace", gen, "6.2.0", "Copies the value of a key to a new key.", S(k::copy)),
        c("move", 3, "write fast", KEY1, "@keyspace", gen, "1.0.0", "Moves a key to another database.", S(k::move_)),
        c("dump", 2, "readonly", KEY1, "@keyspace", gen, "2.6.0", "Returns a serialized representation of the value stored at a key.", S(k::dump)),
        c("restore", -4, "write denyoom", KEY1, "@keyspace @dangerous", gen, "2.6.0", "Creates a key from the serialized representation of a value.", S(k::restore)),
        container("object", gen, "2.2.3", "A container for object introspection commands.", vec![
            c("encoding", 3, "readonly", (2, 2, 1), "@keyspace", gen, "2.2.3", "Returns the internal encoding of a Redis object.", S(k::object_encoding)),
            c("freq", 3, "readonly", (2, 2, 1), "@keyspace", gen, "4.0.0", "Returns the logarithmic access frequency counter of a Redis object.", S(k::object_freq)),
            c("idletime", 3, "readonly", (2, 2, 1), "@keyspace", gen, "2.2.3", "Returns the time since the last access to a Redis object.", S(k::object_idletime)),
            c("refcount", 3, "readonly", (2, 2, 1), "@keyspace", gen, "2.2.3", "Returns the reference count of a value of a key.", S(k::object_refcount)),
            c("help", 2, "loading stale", NOKEY, "@keyspace", gen, "6.2.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        container("memory", srv, "4.0.0", "A container for memory diagnostics commands.", vec![
            c("usage", -3, "readonly", (2, 2, 1), "@read", srv, "4.0.0", "Estimates the memory usage of a key.", S(super::memory::usage)),
            c("stats", 2, "", NOKEY, "@slow", srv, "4.0.0", "Returns details about memory usage.", G(Gw::MemoryStats)),
            c("doctor", 2, "", NOKEY, "@slow", srv, "4.0.0", "Outputs a memory problems report.", G(Gw::MemoryDoctor)),
            c("malloc-stats", 2, "", NOKEY, "@slow", srv, "4.0.0", "Returns the allocator statistics.", G(Gw::MemoryMallocStats)),
            c("purge", 2, "", NOKEY, "@slow", srv, "4.0.0", "Asks the allocator to release memory.", G(Gw::MemoryPurge)),
            c("help", 2, "loading stale", NOKEY, "@slow", srv, "4.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        c("keys", 2, "readonly", NOKEY, "@keyspace @dangerous", gen, "1.0.0", "Returns all key names that match a pattern.", G(Gw::Keys)),
        c("scan", -2, "readonly", NOKEY, "@keyspace", gen, "2.8.0", "Iterates over the key names in the database.", G(Gw::Scan)),
        c("randomkey", 1, "readonly", NOKEY, "@keyspace", gen, "1.0.0", "Returns a random key name from the database.", G(Gw::RandomKey)),
        c("save", 1, "admin noscript no_multi no_async_loading", NOKEY, "@admin @slow @dangerous", srv, "1.0.0", "Synchronously saves the database(s) to disk.", G(Gw::Save)),
        c("bgsave", -1, "admin noscript no_async_loading", NOKEY, "@admin @slow @dangerous", srv, "1.0.0", "Asynchronously saves the database(s) to disk.", G(Gw::BgSave)),
        container("acl", srv, "6.0.0", "A container for Access List Control commands.", vec![
            c("setuser", -3, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Creates and modifies an ACL user and its rules.", G(Gw::AclSetUser)),
            c("getuser", 3, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Lists the ACL rules of a user.", G(Gw::AclGetUser)),
            c("deluser", -3, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Deletes ACL users, and terminates their connections.", G(Gw::AclDelUser)),
            c("users", 2, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Lists all ACL users.", G(Gw::AclUsers)),
            c("list", 2, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Dumps the effective rules in ACL file format.", G(Gw::AclList)),
            c("whoami", 2, "noscript loading stale", NOKEY, "", srv, "6.0.0", "Returns the authenticated username of the current connection.", G(Gw::AclWhoAmI)),
            c("cat", -2, "noscript loading stale", NOKEY, "", srv, "6.0.0", "Lists the ACL categories, or the commands inside a category.", G(Gw::AclCat)),
            c("genpass", -2, "noscript loading stale", NOKEY, "", srv, "6.0.0", "Generates a pseudorandom, secure password that can be used to identify ACL users.", G(Gw::AclGenPass)),
            c("dryrun", -4, "admin noscript loading stale", NOKEY, "", srv, "7.0.0", "Simulates the execution of a command by a user, without executing the command.", G(Gw::AclDryRun)),
            c("log", -2, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Lists recent security events generated due to ACL rules.", G(Gw::AclLog)),
            c("save", 2, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Saves the effective ACL rules in the configured ACL file.", G(Gw::AclSave)),
            c("load", 2, "admin noscript loading stale", NOKEY, "", srv, "6.0.0", "Reloads the rules from the configured ACL file.", G(Gw::AclLoad)),
            c("help", 2, "loading stale", NOKEY, "", srv, "6.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        container("backup", srv, "0.1.0", "A container for backup commands (Shoal).", vec![
            c("now", 2, "admin noscript", NOKEY, "@admin @slow @dangerous", srv, "0.1.0", "Starts a backup in the background and returns its id.", G(Gw::BackupNow)),
            c("list", 2, "admin noscript", NOKEY, "@admin @slow @dangerous", srv, "0.1.0", "Lists the complete backups, oldest first.", G(Gw::BackupList)),
            c("restore", 3, "admin noscript no_multi", NOKEY, "@admin @slow @dangerous", srv, "0.1.0", "Replaces all data with a backup's (an id, or latest).", G(Gw::BackupRestore)),
            c("status", 2, "admin noscript", NOKEY, "@admin @slow @dangerous", srv, "0.1.0", "Reports the backup under way and how the last one went.", G(Gw::BackupStatus)),
            c("help", 2, "loading stale", NOKEY, "@slow", srv, "0.1.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        c("bgrewriteaof", 1, "admin noscript no_async_loading", NOKEY, "@admin @slow @dangerous", srv, "1.0.0", "Asynchronously rewrites the append-only file to disk.", G(Gw::BgRewriteAof)),
        c("lastsave", 1, "loading stale fast", NOKEY, "@admin @fast @dangerous", srv, "1.0.0", "Returns the Unix timestamp of the last successful save to disk.", G(Gw::LastSave)),
        c("dbsize", 1, "readonly fast", NOKEY, "@keyspace", srv, "1.0.0", "Returns the number of keys in the database.", G(Gw::DbSize)),
        c("flushdb", -1, "write", NOKEY, "@keyspace @dangerous", srv, "1.0.0", "Remove all keys from the current database.", G(Gw::FlushDb)),
        c("flushall", -1, "write", NOKEY, "@keyspace @dangerous", srv, "1.0.0", "Removes all keys from all databases.", G(Gw::FlushAll)),
        c("swapdb", 3, "write fast", NOKEY, "@keyspace @dangerous", srv, "4.0.0", "Swaps two Redis databases.", G(Gw::SwapDb)),
        // connection
        c("ping", -1, "fast", NOKEY, "@connection", conn, "1.0.0", "Returns the server's liveliness response.", G(Gw::Ping)),
        c("echo", 2, "fast loading stale", NOKEY, "@connection", conn, "1.0.0", "Returns the given string.", G(Gw::Echo)),
        c("hello", -1, "noscript loading stale fast no_auth allow_busy", NOKEY, "@connection", conn, "6.0.0", "Handshakes with the Redis server.", G(Gw::Hello)),
        c("auth", -2, "noscript loading stale fast no_auth allow_busy", NOKEY, "@connection", conn, "1.0.0", "Authenticates the connection.", G(Gw::Auth)),
        c("select", 2, "loading stale fast", NOKEY, "@connection", conn, "1.0.0", "Changes the selected database.", G(Gw::Select)),
        c("quit", -1, "allow_busy noscript loading stale fast no_auth", NOKEY, "@connection", conn, "1.0.0", "Closes the connection.", G(Gw::Quit)),
        c("reset", 1, "noscript loading stale fast no_auth allow_busy", NOKEY, "@connection", conn, "6.2.0", "Resets the connection.", G(Gw::Reset)),
        c("readonly", 1, "fast loading stale", NOKEY, "@connection", cl, "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node.", G(Gw::ReadOnly)),
        c("readwrite", 1, "fast loading stale", NOKEY, "@connection", cl, "3.0.0", "Enables read-write queries for a connection to a Reids Cluster replica node.", G(Gw::ReadWrite)),
        c("asking", 1, "fast", NOKEY, "@connection", cl, "3.0.0", "Signals that a cluster client is following an -ASK redirect.", G(Gw::Asking)),
        container("client", conn, "2.4.0", "A container for client connection commands.", vec![
            c("id", 2, "noscript loading stale", NOKEY, "@connection", conn, "5.0.0", "Returns the unique client ID of the connection.", G(Gw::ClientId)),
            c("setname", 3, "noscript loading stale", NOKEY, "@connection", conn, "2.6.9", "Sets the connection name.", G(Gw::ClientSetName)),
            c("getname", 2, "noscript loading stale", NOKEY, "@connection", conn, "2.6.9", "Returns the name of the connection.", G(Gw::ClientGetName)),
            c("list", -2, "admin noscript loading stale", NOKEY, "@connection", conn, "2.4.0", "Lists open connections.", G(Gw::ClientList)),
            c("info", 2, "noscript loading stale", NOKEY, "@connection", conn, "6.2.0", "Returns information about the connection.", G(Gw::ClientInfo)),
            c("kill", -3, "admin noscript loading stale", NOKEY, "@connection", conn, "2.4.0", "Terminates open connections.", G(Gw::ClientKill)),
            c("pause", -3, "admin noscript loading stale", NOKEY, "@connection", conn, "3.0.0", "Suspends commands processing.", G(Gw::ClientPause)),
            c("unpause", 2, "admin noscript loading stale", NOKEY, "@connection", conn, "6.2.0", "Resumes processing commands from paused clients.", G(Gw::ClientUnpause)),
            c("unblock", -3, "admin noscript loading stale", NOKEY, "@connection", conn, "5.0.0", "Unblocks a client blocked by a blocking command from a different connection.", G(Gw::ClientUnblock)),
            c("reply", 3, "noscript loading stale", NOKEY, "@connection", conn, "3.2.0", "Instructs the server whether to reply to commands.", G(Gw::ClientReply)),
            c("no-evict", 3, "admin noscript loading stale", NOKEY, "@connection", conn, "7.0.0", "Sets the client eviction mode of the connection.", G(Gw::ClientNoEvict)),
            c("no-touch", 3, "noscript loading stale", NOKEY, "@connection", conn, "7.2.0", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", G(Gw::ClientNoTouch)),
            c("setinfo", 4, "noscript loading stale", NOKEY, "@connection", conn, "7.2.0", "Sets information specific to the client or connection.", G(Gw::ClientSetInfo)),
            c("tracking", -3, "noscript loading stale", NOKEY, "@connection", conn, "6.0.0", "Controls server-assisted client-side caching for the connection.", G(Gw::ClientTracking)),
            c("caching", 3, "noscript loading stale", NOKEY, "@connection", conn, "6.0.0", "Instructs the server whether to track the keys in the next request.", G(Gw::ClientCaching)),
            c("getredir", 2, "noscript loading stale", NOKEY, "@connection", conn, "6.0.0", "Returns the client ID to which the connection's tracking notifications are redirected.", G(Gw::ClientGetRedir)),
            c("trackinginfo", 2, "noscript loading stale", NOKEY, "@connection", conn, "6.2.0", "Returns information about server-assisted client-side caching for the connection.", G(Gw::ClientTrackingInfo)),
            c("help", 2, "loading stale", NOKEY, "@connection", conn, "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        // server
        c("time", 1, "loading stale fast", NOKEY, "", srv, "2.6.0", "Returns the server time.", G(Gw::Time)),
        c("info", -1, "loading stale", NOKEY, "@dangerous", srv, "1.0.0", "Returns information and statistics about the server.", G(Gw::Info)),
        c("debug", -2, "admin noscript loading stale protected", NOKEY, "", srv, "1.0.0", "A container for debugging commands.", G(Gw::Debug)),
        c("shutdown", -1, "admin noscript loading stale no_multi allow_busy", NOKEY, "", srv, "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", G(Gw::Shutdown)),
        c("monitor", 1, "admin noscript loading stale", NOKEY, "", srv, "1.0.0", "Listens for all requests received by the server in real-time.", G(Gw::Monitor)),
        container("slowlog", srv, "2.2.12", "A container for slow log commands.", vec![
            c("get", -2, "admin loading stale", NOKEY, "", srv, "2.2.12", "Returns the slow log's entries.", G(Gw::SlowLogGet)),
            c("len", 2, "admin loading stale", NOKEY, "", srv, "2.2.12", "Returns the number of entries in the slow log.", G(Gw::SlowLogLen)),
            c("reset", 2, "admin loading stale", NOKEY, "", srv, "2.2.12", "Clears all entries from the slow log.", G(Gw::SlowLogReset)),
            c("help", 2, "loading stale", NOKEY, "", srv, "6.2.0", "Show helpful text about the different subcommands", G(Gw::Help)),
        ]),
        container("config", srv, "2.0.0", "A container for server configuration commands.", vec![
            c("get", -3, "admin noscript loading stale", NOKEY, "", srv, "2.0.0", "Returns the effective values of configuration parameters.", G(Gw::ConfigGet)),
            c("set", -4, "admin noscript loading stale", NOKEY, "", srv, "2.0.0", "Sets configuration parameters in-flight.", G(Gw::ConfigSet)),
            c("resetstat", 2, "admin noscript loading stale", NOKEY, "", srv, "2.0.0", "Resets the server's statistics.", G(Gw::ConfigResetStat)),
            c("rewrite", 2, "admin noscript loading stale", NOKEY, "", srv, "2.8.0", "Persists the effective configuration to file.", G(Gw::ConfigRewrite)),
            c("help", 2, "loading stale", NOKEY, "", srv, "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
        {
            let mut cmd = container("command", srv, "2.8.13", "Returns detailed information about all commands.", vec![
                c("count", 2, "loading stale", NOKEY, "@connection", srv, "2.8.13", "Returns a count of commands.", G(Gw::CommandCount)),
                c("info", -2, "loading stale", NOKEY, "@connection", srv, "2.8.13", "Returns information about one, multiple or all commands.", G(Gw::CommandInfo)),
                c("docs", -2, "loading stale", NOKEY, "@connection", srv, "7.0.0", "Returns documentary information about one, multiple or all commands.", G(Gw::CommandDocs)),
                c("getkeys", -4, "loading stale", NOKEY, "@connection", srv, "2.8.13", "Extracts the key names from an arbitrary command.", G(Gw::CommandGetKeys)),
                c("getkeysandflags", -4, "loading stale", NOKEY, "@connection", srv, "7.0.0", "Extracts the key names and access flags for an arbitrary command.", G(Gw::CommandGetKeysAndFlags)),
                c("list", -2, "loading stale", NOKEY, "@connection", srv, "7.0.0", "Returns a list of command names.", G(Gw::CommandList)),
                c("help", 2, "loading stale", NOKEY, "@connection", srv, "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
            ]);
            // Bare COMMAND lists every command; it is not an unknown-subcommand error.
            cmd.arity = -1;
            cmd.flags = flags::LOADING | flags::STALE;
            cmd.handler = G(Gw::Command);
            cmd.acl = (1 << 15) | (1 << 18);
            cmd
        },
        // cluster
        container("cluster", cl, "3.0.0", "A container for Redis Cluster commands.", vec![
            c("info", 2, "stale", NOKEY, "", cl, "3.0.0", "Returns information about the state of a node.", G(Gw::ClusterInfo)),
            c("myid", 2, "stale", NOKEY, "", cl, "3.0.0", "Returns the ID of a node.", G(Gw::ClusterMyId)),
            c("myshardid", 2, "stale", NOKEY, "", cl, "7.2.0", "Returns the shard ID of a node.", G(Gw::ClusterMyShardId)),
            c("slots", 2, "stale", NOKEY, "", cl, "3.0.0", "Returns the mapping of cluster slots to nodes.", G(Gw::ClusterSlots)),
            c("shards", 2, "stale", NOKEY, "", cl, "7.0.0", "Returns the mapping of cluster slots to shards.", G(Gw::ClusterShards)),
            c("nodes", 2, "stale", NOKEY, "", cl, "3.0.0", "Returns the cluster configuration for a node.", G(Gw::ClusterNodes)),
            c("keyslot", 3, "stale", NOKEY, "", cl, "3.0.0", "Returns the hash slot for a key.", G(Gw::ClusterKeySlot)),
            c("countkeysinslot", 3, "stale", NOKEY, "", cl, "3.0.0", "Returns the number of keys in a hash slot.", G(Gw::ClusterCountKeysInSlot)),
            c("getkeysinslot", 4, "stale", NOKEY, "", cl, "3.0.0", "Returns the key names in a hash slot.", G(Gw::ClusterGetKeysInSlot)),
            c("help", 2, "loading stale", NOKEY, "", cl, "5.0.0", "Returns helpful text about the different subcommands.", G(Gw::Help)),
        ]),
    ]
}

/// Gives a command Redis's key specs and tips; one Redis lacks gets a spec from its range.
fn add_redis_meta(spec: &mut CommandSpec) {
    let meta = super::redis_meta::COMMANDS;
    match meta.binary_search_by(|m| m.name.cmp(spec.full_name.as_str())) {
        Ok(i) => {
            spec.key_specs = meta[i].key_specs.to_vec();
            spec.tips = meta[i].tips;
        }
        Err(_) if spec.first_key > 0 => {
            spec.key_specs = vec![KeySpec::from_range(spec.first_key, spec.last_key, spec.key_step, spec.is_write())];
        }
        Err(_) => {}
    }
}

pub struct CommandTable {
    commands: Vec<CommandSpec>,
    by_name: HashMap<Vec<u8>, usize, foldhash::fast::RandomState>,
    /// Every command and subcommand by id, for statistics.
    names_by_id: Vec<String>,
    /// Memcached's commands, by `Op`: not RESP commands, so not in `by_name`.
    memcache: Vec<CommandSpec>,
}

impl CommandTable {
    fn build() -> CommandTable {
        let mut commands = declare();
        let mut names_by_id = Vec::new();
        for cmd in commands.iter_mut() {
            cmd.id = names_by_id.len();
            names_by_id.push(cmd.full_name.clone());
            add_redis_meta(cmd);
            for sub in cmd.subcommands.iter_mut() {
                sub.id = names_by_id.len();
                names_by_id.push(sub.full_name.clone());
                add_redis_meta(sub);
            }
        }
        let by_name: HashMap<Vec<u8>, usize, foldhash::fast::RandomState> =
            commands.iter().enumerate().map(|(i, c)| (c.name.as_bytes().to_vec(), i)).collect();
        let mut memcache = super::memcache::specs();
        for spec in memcache.iter_mut() {
            spec.id = names_by_id.len();
            names_by_id.push(spec.full_name.clone());
        }
        CommandTable { commands, by_name, names_by_id, memcache }
    }

    /// Finds a command by name, case-insensitively.
    #[inline]
    pub fn lookup(&self, name: &[u8]) -> Option<&CommandSpec> {
        // Scripts and connections name the same few commands over and over: a small cache by
        // a cheap hash of the name skips lowercasing, hashing and probing the name table (and
        // the cache misses of that probe). A slot is checked against the name, so a stale or
        // colliding slot is only a miss.
        let slot = recent_slot(name);
        let hit = RECENT.with(|r| r[slot].get());
        if let Some(spec) = self.commands.get(hit as usize) {
            if spec.name.as_bytes().eq_ignore_ascii_case(name) {
                return Some(spec);
            }
        }
        let found = self.lookup_slow(name)?;
        RECENT.with(|r| r[slot].set(found as u16));
        Some(&self.commands[found])
    }

    fn lookup_slow(&self, name: &[u8]) -> Option<usize> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.by_name.get(&buf[..name.len()]).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands.iter()
    }

    /// Every command and every subcommand.
    pub fn all_specs(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands.iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
    }

    /// The command `req` names: its subcommand when it names a known one, the command
    /// otherwise (for DRYRUN, GETKEYS and log replay; connections report unknown subcommands).
    pub fn resolve(&self, req: &Request) -> Option<&CommandSpec> {
        let spec = self.lookup(req.arg(0))?;
        Some(if req.len() > 1 { spec.subcommand(req.arg(1)).unwrap_or(spec) } else { spec })
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// The spec a change record names: a RESP command, or a record only the Memcached
    /// gateway writes (`mc|item`).
    pub fn resolve_record(&self, req: &Request) -> Option<&CommandSpec> {
        self.resolve(req).or_else(|| self.memcache.iter().find(|s| s.full_name.as_bytes() == req.arg(0)))
    }

    /// The spec of a Memcached command.
    #[inline]
    pub fn memcache(&self, op: shoal_proto::memcache::Op) -> &CommandSpec {
        &self.memcache[op as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Number of commands plus subcommands (size of per-command statistics).
    pub fn stat_slots(&self) -> usize {
        self.names_by_id.len()
    }

    pub fn name_of(&self, id: usize) -> &str {
        &self.names_by_id[id]
    }
}

/// Slots of `CommandTable::lookup`'s cache of recently found commands.
const RECENT_SLOTS: usize = 64;

thread_local! {
    /// Indexes into `CommandTable::commands` (u16::MAX: empty).
    static RECENT: [std::cell::Cell<u16>; RECENT_SLOTS] = const { [const { std::cell::Cell::new(u16::MAX) }; RECENT_SLOTS] };
}

/// The cache slot for a command name: its length and first and last letters, whatever
/// their case.
#[inline]
fn recent_slot(name: &[u8]) -> usize {
    let (first, last) = match name {
        [] => (0, 0),
        [f, .., l] => (*f | 0x20, *l | 0x20),
        [f] => (*f | 0x20, *f | 0x20),
    };
    (name.len().wrapping_mul(31) ^ (first as usize).wrapping_mul(7) ^ (last as usize).wrapping_mul(13)) % RECENT_SLOTS
}

pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(CommandTable::build)
}
