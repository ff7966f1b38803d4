//! Lua scripting: one sandboxed Lua 5.1 VM per node (the Lua Redis scripts are written for),
//! the script cache keyed by SHA1, and Redis's rules for turning replies into Lua values and
//! back. What `redis.call` runs, and under which locks, is the caller's (`cmd::scripting`).

mod ccalls;
mod combine;
mod convert;
mod libs;
mod protected;
mod readonly;
mod stand_in;

pub use combine::Handed;
pub use convert::{c_string, WrittenError};

use crate::shard::{Slot, SlotGuard};
use crate::util::float::c_int;
use bytes::BytesMut;
use mlua::{ffi, Function, Lua, Table, Value, Variadic};
use sha1::{Digest, Sha1};
use shoal_proto::request::RequestBuilder;
use shoal_proto::{Protocol, Request};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// What SCRIPT KILL makes the running script fail with (raised again every 10,000
/// instructions, so a script's pcall cannot swallow it).
const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// What a library's code fails with when it runs past `LOAD_TIME_LIMIT_US` in FUNCTION LOAD.
const LOAD_TIMEOUT: &str = "FUNCTION LOAD timeout";

/// How long a library's code may run when it is loaded, as in Redis.
const LOAD_TIME_LIMIT_US: u64 = 500_000;

/// The node's scripting: the VM (one script runs at a time, holding every shard) and what
/// SCRIPT KILL, which runs beside it, needs to see.
pub struct Scripts {
    /// Held like a shard: a task waiting for a long script waits without blocking its thread.
    engine: Slot<Engine>,
    watch: Arc<Watch>,
    /// Scripts handed to the engine's holder (`combine`).
    handed: combine::Queue,
}

/// The engine, held. Letting it go wakes a script handed over after its holder last looked.
pub struct EngineGuard<'a> {
    guard: Option<SlotGuard<'a, Engine>>,
    scripts: &'a Scripts,
}

impl std::ops::Deref for EngineGuard<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.scripts.handed.after_release();
    }
}

/// The running script as its instruction hook and SCRIPT KILL see it.
#[derive(Default)]
struct Watch {
    /// Set by SCRIPT KILL; the running script's instruction hook fails it.
    kill: AtomicBool,
    running: AtomicBool,
    /// The running script has written: killing it would leave half its work, so it may not be.
    wrote: AtomicBool,
    /// When the running script started, in microseconds of `util::mono_us`.
    started_us: AtomicU64,
    /// The running script has given its thread's other work away (see `hand_off_thread`).
    handed_off: AtomicBool,
    /// `busy-reply-threshold` (alias `lua-time-limit`): after this long other clients get
    /// -BUSY instead of waiting.
    busy_after_ms: AtomicU64,
    /// The running script has run past `busy_after_ms` (see `Watch::check_busy`). Every
    /// command reads it, so it has a cache line to itself: were it beside the fields each
    /// script start writes, every command on another core would fetch that line anew.
    past_threshold: PaddedFlag,
    /// The running function's name and command (FUNCTION STATS); set only while a function
    /// (FCALL) runs, which FUNCTION KILL, not SCRIPT KILL, stops.
    call: parking_lot::Mutex<Option<(String, Request)>>,
    /// While a library's code runs for FUNCTION LOAD: when it must have finished (Redis
    /// gives it 500 ms), in microseconds of `util::mono_us`; 0 otherwise.
    load_deadline_us: AtomicU64,
    /// Libraries and functions loaded, for FUNCTION STATS while the engine is busy.
    libraries: AtomicU64,
    functions: AtomicU64,
    /// Every library's code, for snapshots, which do not wait for a running script.
    codes: parking_lot::Mutex<Arc<Vec<Vec<u8>>>>,
    /// The VM's size and what is cached in it, for INFO while the engine is busy.
    vm_bytes: AtomicU64,
    scripts: AtomicU64,
    script_bytes: AtomicU64,
    library_bytes: AtomicU64,
    /// EVAL scripts evicted (INFO's evicted_scripts), since the start or CONFIG RESETSTAT.
    evicted_scripts: AtomicU64,
}

#[repr(align(128))]
#[derive(Default)]
struct PaddedFlag(AtomicBool);

impl Watch {
    fn busy(&self) -> Option<&'static str> {
        self.past_threshold.0.load(Relaxed).then(|| self.busy_message())
    }

    /// Marks the running script busy once it has run past `busy_after_ms`. Called by its
    /// instruction hook and after each slow command it runs, as Redis checks from its hook.
    fn check_busy(&self) {
        if !self.past_threshold.0.load(Relaxed)
            && self.running.load(Relaxed)
            && crate::util::mono_us().saturating_sub(self.started_us.load(Relaxed))
                > self.busy_after_ms.load(Relaxed).saturating_mul(1000)
        {
            self.past_threshold.0.store(true, Relaxed);
        }
    }

    fn function_runs(&self) -> bool {
        self.call.lock().is_some()
    }

    fn busy_message(&self) -> &'static str {
        if self.function_runs() {
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
        } else {
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        }
    }
}

/// INFO memory's scripting figures.
pub struct ScriptMemory {
    /// Bytes the Lua VM has allocated (scripts and functions share it).
    pub vm_bytes: u64,
    /// Scripts in the cache, and their bodies' bytes.
    pub scripts: u64,
    pub script_bytes: u64,
    /// Bytes of the function libraries' code.
    pub library_bytes: u64,
}

/// SCRIPT KILL's answer.
pub enum KillOutcome {
    Killed,
    NotBusy,
    Unkillable,
    /// The other kind of code runs (a function for SCRIPT KILL, a script for FUNCTION
    /// KILL): Redis answers with its -BUSY text.
    OtherKind(&'static str),
}

impl Scripts {
    pub fn new() -> Result<Scripts, ScriptError> {
        let watch = Arc::new(Watch { busy_after_ms: AtomicU64::new(5000), ..Watch::default() });
        Ok(Scripts { engine: Slot::new(Engine::new(watch.clone())?), watch, handed: combine::Queue::default() })
    }

    fn guard<'a>(&'a self, guard: SlotGuard<'a, Engine>) -> EngineGuard<'a> {
        EngineGuard { guard: Some(guard), scripts: self }
    }

    /// The VM, if nobody holds it now.
    pub fn try_engine(&self) -> Option<EngineGuard<'_>> {
        self.engine.try_hold().map(|g| self.guard(g))
    }

    /// `try_engine`, looking before trying: a waiter that tries while the engine is held
    /// would take the lock's cache line from its holder each time.
    fn engine_if_free(&self) -> Option<EngineGuard<'_>> {
        if self.engine.is_held() {
            return None;
        }
        self.try_engine()
    }

    /// The VM, for loading scripts or running one. A caller that runs a script brackets it
    /// with `started` and `finished`. Behind a script that turns busy, the wait ends with
    /// Redis's -BUSY reply, which a command that arrived while it ran gets in Redis.
    pub async fn engine(&self) -> Result<EngineGuard<'_>, &'static str> {
        if let Some(held) = self.try_engine() {
            return Ok(held);
        }
        // Scripts run one at a time, mostly for a few microseconds. Waiting for the running
        // one on this thread costs less than parking the task: the holder's thread would wake
        // it, so waiting scripts pile up on that thread while this one sleeps and is woken
        // again. The wait is short, so a long script holds up no thread for long.
        if self.watch.running.load(Relaxed) {
            if let Some(held) = self.engine.try_hold_for(ENGINE_WAIT_ON_THREAD) {
                return Ok(self.guard(held));
            }
        }
        let w = &self.watch;
        let held = self.engine.hold_unless(Some(&|| w.busy().is_some())).await;
        held.map(|g| self.guard(g)).ok_or_else(|| w.busy_message())
    }

    /// A script (`call` None) or a function (its name and command) starts.
    pub fn started(&self, call: Option<(String, Request)>) {
        let w = &self.watch;
        *w.call.lock() = call;
        w.kill.store(false, Relaxed);
        w.wrote.store(false, Relaxed);
        w.handed_off.store(false, Relaxed);
        w.started_us.store(crate::util::mono_us(), Relaxed);
        w.running.store(true, Relaxed);
    }

    pub fn finished(&self) {
        self.watch.running.store(false, Relaxed);
        if self.watch.past_threshold.0.load(Relaxed) {
            self.watch.past_threshold.0.store(false, Relaxed);
        }
        self.watch.kill.store(false, Relaxed);
        *self.watch.call.lock() = None;
    }

    /// Libraries and functions loaded.
    pub fn counts(&self) -> (usize, usize) {
        (self.watch.libraries.load(Relaxed) as usize, self.watch.functions.load(Relaxed) as usize)
    }

    /// Every library's code, as of the last change to them.
    pub fn library_codes(&self) -> Arc<Vec<Vec<u8>>> {
        self.watch.codes.lock().clone()
    }

    /// The VM's size and what is cached in it, as of the last script run or load.
    pub fn memory(&self) -> ScriptMemory {
        let w = &self.watch;
        ScriptMemory {
            vm_bytes: w.vm_bytes.load(Relaxed),
            scripts: w.scripts.load(Relaxed),
            script_bytes: w.script_bytes.load(Relaxed),
            library_bytes: w.library_bytes.load(Relaxed),
        }
    }

    /// EVAL scripts evicted from the cache (see `EVAL_SCRIPTS_KEPT`).
    pub fn evicted_scripts(&self) -> u64 {
        self.watch.evicted_scripts.load(Relaxed)
    }

    /// CONFIG RESETSTAT's part.
    pub fn reset_stats(&self) {
        self.watch.evicted_scripts.store(0, Relaxed);
    }

    /// The running function's name, command and milliseconds so far (FUNCTION STATS).
    pub fn running_function(&self) -> Option<(String, Request, u64)> {
        let w = &self.watch;
        let call = w.call.lock().clone()?;
        w.running
            .load(Relaxed)
            .then(|| (call.0, call.1, crate::util::mono_us().saturating_sub(w.started_us.load(Relaxed)) / 1000))
    }

    /// Redis's -BUSY reply while a script or function runs past `busy-reply-threshold`.
    pub fn busy(&self) -> Option<&'static str> {
        self.watch.busy()
    }

    /// `busy` for the shards, which start before the node that holds this.
    pub fn busy_check(&self) -> crate::shard::BusyCheck {
        let w = self.watch.clone();
        Arc::new(move || w.busy())
    }

    pub fn busy_after_ms(&self) -> u64 {
        self.watch.busy_after_ms.load(Relaxed)
    }

    pub fn set_busy_after_ms(&self, ms: u64) {
        self.watch.busy_after_ms.store(ms, Relaxed);
    }

    /// After a command of the running script that took `nanos`: a slow one may have taken
    /// the script past `busy-reply-threshold` with few Lua instructions for the hook to see.
    #[inline]
    pub fn after_command(&self, nanos: u64) {
        if nanos > SLOW_COMMAND_NS {
            self.watch.check_busy();
        }
    }

    pub fn note_write(&self) {
        self.watch.wrote.store(true, Relaxed);
    }

    /// SCRIPT KILL (`function` false) or FUNCTION KILL: each kills only its own kind.
    pub fn kill(&self, function: bool) -> KillOutcome {
        let w = &self.watch;
        if !w.running.load(Relaxed) {
            KillOutcome::NotBusy
        } else if w.function_runs() != function {
            KillOutcome::OtherKind(w.busy_message())
        } else if w.wrote.load(Relaxed) {
            KillOutcome::Unkillable
        } else {
            w.kill.store(true, Relaxed);
            KillOutcome::Killed
        }
    }
}

/// How long a task waiting for the engine waits on its thread before it waits as a task
/// (see `Scripts::engine`).
const ENGINE_WAIT_ON_THREAD: std::time::Duration = std::time::Duration::from_micros(50);

/// How long a script runs on its thread before it gives the thread's other work away.
const HAND_OFF_AFTER_US: u64 = 2_000;

/// A script's command slower than this checks whether the script has turned busy.
const SLOW_COMMAND_NS: u64 = 100_000;

/// A script that runs long makes sure another runtime thread serves everyone else meanwhile,
/// SCRIPT KILL among them. Without this a parked worker may never wake: this thread was the
/// one polling the I/O driver when the script's client woke it, and nothing else would.
/// A short script never pays for this.
fn hand_off_thread() {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let Ok(handle) = Handle::try_current() else { return };
    if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
        return;
    }
    // Inside block_in_place this thread lends its worker core (its queued tasks) to a fresh
    // thread, and a task spawned here is queued for the runtime at large, which wakes a
    // parked worker to run it; that worker then polls the I/O driver. Waiting for that task
    // to run also gives the fresh thread time to take the core for good: were the core
    // handed straight back, tasks in its LIFO slot (which no other worker may steal) would
    // wait for the script.
    tokio::task::block_in_place(|| {
        let (ran_tx, ran) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let _ = ran_tx.send(());
        });
        let _ = ran.recv_timeout(std::time::Duration::from_millis(10));
        std::thread::sleep(std::time::Duration::from_millis(1));
    });
}

/// The marker error `redis.call` raises; the prelude swaps it for the error table.
const RAISED: &str = "redis.call failed";

/// Bytes a script's VM may allocate; past this a script fails with "not enough memory".
const MEMORY_LIMIT: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("ERR Error compiling script (new function): {0}")]
    Compile(String),
    #[error("ERR Unexpected engine in script shebang: {0}")]
    Engine(String),
    #[error("ERR Unexpected flag in script shebang: {0}")]
    Flag(String),
    #[error("ERR Unknown lua shebang option: {0}")]
    Option(String),
    #[error("ERR {0}")]
    Vm(#[from] mlua::Error),
    /// A library that no longer loads into a fresh VM (its text is Redis's reply).
    #[error("{0}")]
    Library(String),
}

/// A script's shebang flags (`#!lua flags=no-writes,allow-oom`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// The script has a shebang: it runs with the flags it declares (none: it may write and
    /// is refused at the memory limit), not as a Redis 6 script.
    pub declared: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
}

/// A compiled script.
#[derive(Clone)]
pub struct Script {
    pub f: Function,
    pub flags: ScriptFlags,
    /// The body's length, for the cache's size.
    len: usize,
    /// A script EVAL cached: when it last ran (the engine's `tick`), for eviction. None for
    /// one SCRIPT LOAD cached, which stays. (A cell: a run dates it through the lookup that
    /// finds it.)
    used: Option<Cell<u64>>,
}

/// EVAL's scripts kept beyond any SCRIPT LOAD's, the least recently run evicted past it, as
/// Redis 7.4 evicts them: a client that builds each script anew, with its values written
/// in, would otherwise grow the cache without bound.
pub const EVAL_SCRIPTS_KEPT: usize = 500;

/// The VM with its cache. Runs one script at a time (the caller holds every shard).
pub struct Engine {
    lua: Lua,
    watch: Arc<Watch>,
    current: Arc<Current>,
    /// What scripts see as globals (the prelude's read-only environment reads it): each
    /// run's KEYS and ARGV go here.
    fields: Table,
    bind: Function,
    /// The prelude's steps before a script or a function runs (the environment chunks they
    /// load get), and Redis's error handler they run under.
    enter_script: Function,
    enter_function: Function,
    handler: Function,
    error_table: Function,
    load_library: Function,
    /// By SHA1 (lowercase hex). SHA1s are no hash-flooding risk, so the fast hasher.
    scripts: HashMap<String, Script, foldhash::fast::RandomState>,
    /// Scripts EVAL cached (those with `used`), and the count of script runs and loads that
    /// dates their use.
    evictable: usize,
    tick: Cell<u64>,
    /// The cached scripts' bodies' bytes.
    script_bytes: usize,
    /// FUNCTION LOAD's libraries by name, and which library each function is in, and its
    /// name there, by its name in lowercase: Redis finds functions by name in any case (not
    /// libraries).
    libraries: BTreeMap<String, Library>,
    functions: HashMap<String, (String, String)>,
}

/// A function library, kept with its code for FUNCTION LIST WITHCODE, DUMP and reloads.
pub struct Library {
    pub name: String,
    pub code: Vec<u8>,
    pub functions: BTreeMap<String, FunctionDef>,
}

/// A function a library registered.
#[derive(Clone)]
pub struct FunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<String>,
    f: Function,
}

impl FunctionDef {
    /// The function's flags as a script's shebang would give them (a function always runs
    /// with the flags it declares).
    pub fn script_flags(&self) -> ScriptFlags {
        let has = |flag: &str| self.flags.iter().any(|f| f == flag);
        ScriptFlags { declared: true, no_writes: has("no-writes"), allow_oom: has("allow-oom") }
    }
}

/// The lowercase hex SHA1 of a script body, its name in the cache.
pub fn sha1hex(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    let mut s = String::with_capacity(40);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Splits a `#!lua ...` first line off the body. The line is left empty rather than removed,
/// so error line numbers match the script as written.
fn shebang(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), ScriptError> {
    let mut flags = ScriptFlags::default();
    if !body.starts_with(b"#!") {
        return Ok((flags, body.to_vec()));
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[2..end]).into_owned();
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "lua" {
        return Err(ScriptError::Engine(format!("#!{engine}")));
    }
    flags.declared = true;
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(ScriptError::Option(part.to_string()));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" => flags.allow_oom = true,
                "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(ScriptError::Flag(other.to_string())),
            }
        }
    }
    Ok((flags, body[end..].to_vec()))
}

/// A library's `#!lua name=<lib>` line: the library's name, and the code with that line
/// blanked (so line numbers stay the script's).
fn library_shebang(code: &[u8]) -> Result<(String, Vec<u8>), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[2..end]).into_owned();
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for part in parts {
        match part.get(..5).filter(|p| p.eq_ignore_ascii_case("name=")) {
            Some(_) if name.is_some() => {
                return Err("ERR Invalid metadata value, name argument was given multiple times".into())
            }
            Some(_) => name = Some(part[5..].to_string()),
            None => return Err(format!("ERR Invalid metadata value given: {part}")),
        }
    }
    let Some(name) = name else { return Err("ERR Library name was not given".into()) };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        );
    }
    Ok((name, code[end..].to_vec()))
}

impl Engine {
    fn new(watch: Arc<Watch>) -> Result<Engine, ScriptError> {
        use mlua::{LuaOptions, StdLib};
        // debug is loaded for the prelude's error handler only; scripts never see it.
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is reachable only from the prelude's locals.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::default()) };
        lua.set_memory_limit(MEMORY_LIMIT)?;
        // Lua's own collector pause (a cycle each time the heap doubles), as in Redis. A longer
        // pause (tried: ten times the live data) collects less often but leaves the heap, and
        // the string table every new string is looked up in, many times larger: measured on
        // the BullMQ workload, it cost ~10% more of the server's CPU time for the same jobs.
        let w = watch.clone();
        lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(10_000), move |_, _| {
            if w.kill.load(Relaxed) {
                return Err(mlua::Error::RuntimeError(KILLED.into()));
            }
            let deadline = w.load_deadline_us.load(Relaxed);
            if deadline != 0 && crate::util::mono_us() > deadline {
                return Err(mlua::Error::RuntimeError(LOAD_TIMEOUT.into()));
            }
            w.check_busy();
            if !w.handed_off.load(Relaxed)
                && crate::util::mono_us().saturating_sub(w.started_us.load(Relaxed)) > HAND_OFF_AFTER_US
            {
                w.handed_off.store(true, Relaxed);
                hand_off_thread();
            }
            Ok(mlua::VmState::Continue)
        })?;
        let internal = lua.create_table()?;
        internal.raw_set("version", crate::REDIS_VERSION)?;
        internal.raw_set("version_num", version_num(crate::REDIS_VERSION))?;
        let inner = internal.clone();
        // These check their arguments as Redis's C functions do: by count, then with Lua's
        // own conversions (lua_tonumber, lua_tolstring), numbers truncated to C ints.
        internal.set(
            "sha1hex",
            lua.create_function(move |lua, args: Variadic<Value>| {
                if args.len() != 1 {
                    return Err(fail(&inner, "wrong number of arguments"));
                }
                // What is no string hashes as the empty string.
                let s = lua.coerce_string(args[0].clone())?;
                lua.create_string(sha1hex(&s.map(|s| s.as_bytes().to_vec()).unwrap_or_default()))
            })?,
        )?;
        let inner = internal.clone();
        internal.set(
            "log",
            lua.create_function(move |lua, args: Variadic<Value>| {
                if args.len() < 2 {
                    return Err(fail(&inner, "redis.log() requires two arguments or more."));
                }
                let Some(level) = lua.coerce_number(args[0].clone())? else {
                    return Err(fail(&inner, "First argument must be a number (log level)."));
                };
                let level = c_int(level);
                if !(0..=3).contains(&level) {
                    return Err(fail(&inner, "Invalid debug level."));
                }
                log(lua, level.into(), &args[1..])
            })?,
        )?;
        let current = Arc::new(Current::default());
        let (inner, cur) = (internal.clone(), current.clone());
        internal.set(
            "setresp",
            lua.create_function(move |lua, args: Variadic<Value>| {
                if args.len() != 1 {
                    return Err(fail(&inner, "redis.setresp() requires one argument."));
                }
                match lua.coerce_number(args[0].clone())?.map(c_int) {
                    Some(n @ (2 | 3)) => {
                        cur.resp3.store(n == 3, Relaxed);
                        Ok(())
                    }
                    _ => Err(fail(&inner, "RESP version must be 2 or 3.")),
                }
            })?,
        )?;
        let inner = internal.clone();
        internal.set(
            "set_repl",
            lua.create_function(move |lua, args: Variadic<Value>| {
                if args.len() != 1 {
                    // (Redis's words, though it takes one.)
                    return Err(fail(&inner, "redis.set_repl() requires two arguments."));
                }
                let flags = c_int(lua.coerce_number(args[0].clone())?.unwrap_or(0.0));
                if flags & !3 != 0 {
                    return Err(fail(
                        &inner,
                        "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                    ));
                }
                Ok(())
            })?,
        )?;
        libs::install(&lua, &internal)?;
        readonly::install(&lua, &internal)?;
        stand_in::install(&lua, &internal)?;
        protected::install(&lua, &internal)?;
        internal.raw_set("takes_string", stand_in::Takes::String as i64)?;
        internal.raw_set("takes_reader", stand_in::Takes::Reader as i64)?;
        internal.set(
            "error_text",
            lua.create_function(|_, e: Value| {
                Ok(match e {
                    Value::Error(e) => Some(libs::error_text(&e)),
                    _ => None,
                })
            })?,
        )?;
        let (inner, cur) = (internal.clone(), current.clone());
        internal.set(
            "acl_check_cmd",
            lua.create_function(move |_, args: Variadic<Value>| {
                let req = command_request(args.len(), 64, |i, argv| match &args[i] {
                    Value::String(s) => {
                        argv.push(&s.as_bytes());
                        true
                    }
                    arg @ (Value::Integer(_) | Value::Number(_)) => {
                        argv.push(number_arg(number(arg).unwrap_or_default()).as_bytes());
                        true
                    }
                    _ => false,
                });
                cur.with_host(|host| host.acl_check(req?)).map_err(|e| fail(&inner, &e))
            })?,
        )?;
        for (name, raise) in [("call", true), ("pcall", false)] {
            let current = Arc::as_ptr(&current).cast_mut().cast::<std::ffi::c_void>();
            // SAFETY: pushes three upvalues and a C closure over them. `Current` outlives the
            // VM: the engine owns both, and drops the VM first (field order).
            let (_, f): (Table, Function) = unsafe {
                lua.exec_raw(internal.clone(), |state| {
                    ffi::lua_pushlightuserdata(state, current);
                    ffi::lua_pushboolean(state, raise as i32);
                    ffi::lua_pushvalue(state, 1);
                    ffi::lua_pushcclosure(state, redis_call, 3);
                })?
            };
            internal.raw_set(name, f)?;
        }
        let (bind, enter_script, enter_function, handler, error_table, fields, load_library): (
            Function,
            Function,
            Function,
            Function,
            Function,
            Table,
            Function,
        ) = lua.load(include_str!("prelude.lua")).set_name("=shoal").call(internal.clone())?;
        internal.raw_set("error_table", error_table.clone())?;
        // The prelude keeps what it needs; scripts get only its read-only environment.
        let globals = lua.globals();
        for name in ["debug", "loadfile", "dofile", "require", "module", "collectgarbage", "newproxy"] {
            globals.raw_set(name, Value::Nil)?;
        }
        Ok(Engine {
            lua,
            watch,
            current,
            fields,
            bind,
            enter_script,
            enter_function,
            handler,
            error_table,
            load_library,
            scripts: HashMap::default(),
            evictable: 0,
            tick: Cell::new(0),
            script_bytes: 0,
            libraries: BTreeMap::new(),
            functions: HashMap::new(),
        })
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The script cached as `sha`, about to run: one EVAL cached is dated as run now.
    pub fn get_to_run(&self, sha: &str) -> Option<&Script> {
        let script = self.scripts.get(sha)?;
        if let Some(used) = &script.used {
            used.set(self.next_tick());
        }
        Some(script)
    }

    fn next_tick(&self) -> u64 {
        self.tick.set(self.tick.get() + 1);
        self.tick.get()
    }

    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// Compiles a script (or finds it compiled) and returns its SHA1, its name in the cache.
    /// EVAL's (`by_eval`) may be evicted later; SCRIPT LOAD's stay, and SCRIPT LOAD keeps one
    /// EVAL cached.
    pub fn load(&mut self, body: &[u8], by_eval: bool) -> Result<String, ScriptError> {
        let sha = sha1hex(body);
        if let Some(script) = self.scripts.get_mut(&sha) {
            if !by_eval && script.used.take().is_some() {
                self.evictable -= 1;
            }
            return Ok(sha);
        }
        let (flags, code) = shebang(body)?;
        let f = compile(&self.lua, &code, c"@user_script")?.map_err(ScriptError::Compile)?;
        let f: Function = self.bind.call(f)?;
        let used = by_eval.then(|| Cell::new(self.next_tick()));
        self.scripts.insert(sha.clone(), Script { f, flags, len: body.len(), used });
        self.script_bytes += body.len();
        if by_eval {
            self.evictable += 1;
            if self.evictable > EVAL_SCRIPTS_KEPT {
                self.evict_one();
            }
        }
        self.publish();
        Ok(sha)
    }

    /// Drops the EVAL script that ran longest ago. (A scan: it runs only when a new script
    /// comes past the limit, and costs far less than compiling that one.)
    fn evict_one(&mut self) {
        let oldest = self
            .scripts
            .iter()
            .filter_map(|(sha, s)| Some((s.used.as_ref()?.get(), sha)))
            .min()
            .map(|(_, sha)| sha.clone());
        if let Some(script) = oldest.and_then(|sha| self.scripts.remove(&sha)) {
            self.script_bytes -= script.len;
            self.evictable -= 1;
            self.watch.evicted_scripts.fetch_add(1, Relaxed);
        }
    }

    /// Empties the script cache with a fresh VM, as SCRIPT FLUSH does in Redis; function
    /// libraries are loaded again into it.
    pub fn flush(&mut self) -> Result<(), ScriptError> {
        let codes = self.library_codes();
        *self = Engine::new(self.watch.clone())?;
        for code in codes {
            self.load_library(&code, false).map_err(ScriptError::Library)?;
        }
        self.publish();
        Ok(())
    }

    /// Compiles and runs a library's code (`#!lua name=<lib>` first) and keeps the functions
    /// it registers, replacing a library of the same name only if `replace`. Errors are
    /// Redis's replies.
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, body) = library_shebang(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let f = compile(&self.lua, &body, c"@user_function")
            .map_err(|e| format!("ERR {e}"))?
            .map_err(|e| format!("ERR Error compiling function: {e}"))?;
        let w = &self.watch;
        w.load_deadline_us.store(crate::util::mono_us() + LOAD_TIME_LIMIT_US, Relaxed);
        let loaded = self.load_library.call(f);
        w.load_deadline_us.store(0, Relaxed);
        let (registered, error): (Value, Value) = loaded.map_err(|e| format!("ERR {e}"))?;
        let registered = match registered {
            Value::Table(t) => t,
            _ => {
                let msg = match error {
                    Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                    other => format!("ERR {}", other.to_string().unwrap_or_default()),
                };
                return Err(format!("ERR Error registering functions: {msg}"));
            }
        };
        let mut functions = BTreeMap::new();
        for entry in registered.sequence_values::<Table>() {
            let entry = entry.map_err(|e| format!("ERR {e}"))?;
            let def = FunctionDef {
                name: entry.raw_get("name").map_err(|e| format!("ERR {e}"))?,
                description: entry.raw_get("description").ok().flatten(),
                flags: entry.raw_get::<Vec<String>>("flags").unwrap_or_default(),
                f: entry.raw_get("callback").map_err(|e| format!("ERR {e}"))?,
            };
            functions.insert(def.name.clone(), def);
        }
        if functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        let taken = |f: &&String| self.functions.get(&f.to_ascii_lowercase()).is_some_and(|(lib, _)| *lib != name);
        if let Some(taken) = functions.keys().find(taken) {
            return Err(format!("ERR Function {taken} already exists"));
        }
        self.delete_library(&name);
        for f in functions.keys() {
            self.functions.entry(f.to_ascii_lowercase()).or_insert_with(|| (name.clone(), f.clone()));
        }
        self.libraries.insert(name.clone(), Library { name: name.clone(), code: code.to_vec(), functions });
        self.publish_libraries();
        Ok(name)
    }

    /// Makes what the engine holds visible to FUNCTION STATS and INFO, which do not wait for
    /// a running script.
    fn publish(&self) {
        let w = &self.watch;
        w.libraries.store(self.libraries.len() as u64, Relaxed);
        w.functions.store(self.functions.len() as u64, Relaxed);
        w.vm_bytes.store(self.lua.used_memory() as u64, Relaxed);
        w.scripts.store(self.scripts.len() as u64, Relaxed);
        w.script_bytes.store(self.script_bytes as u64, Relaxed);
        w.library_bytes.store(self.libraries.values().map(|l| l.code.len() as u64).sum(), Relaxed);
    }

    /// `publish`, and the libraries' code.
    fn publish_libraries(&self) {
        *self.watch.codes.lock() = Arc::new(self.library_codes());
        self.publish();
    }

    /// FUNCTION DELETE: false if there is no such library.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.remove(name) else { return false };
        for f in lib.functions.keys() {
            self.functions.remove(&f.to_ascii_lowercase());
        }
        self.publish_libraries();
        true
    }

    pub fn flush_functions(&mut self) {
        self.libraries.clear();
        self.functions.clear();
        self.publish_libraries();
    }

    /// Loads the libraries `codes` holds (FUNCTION RESTORE, a restored snapshot), after
    /// dropping every library first with `flush`, over libraries of the same name with
    /// `replace`. All or nothing: on a failure the libraries are what they were, and the error
    /// is returned.
    pub fn restore_libraries(&mut self, codes: &[Vec<u8>], flush: bool, replace: bool) -> Result<(), String> {
        // Redis checks every library's name before any function's (and words it so).
        if !flush && !replace {
            let mut names = codes.iter().filter_map(|code| library_shebang(code).ok());
            if let Some((name, _)) = names.find(|(name, _)| self.libraries.contains_key(name)) {
                return Err(format!("ERR Library {name} already exists"));
            }
        }
        let before = self.library_codes();
        if flush {
            self.flush_functions();
        }
        let failed = codes.iter().find_map(|code| self.load_library(code, replace).err());
        if let Some(e) = failed {
            self.flush_functions();
            for code in &before {
                let _ = self.load_library(code, true);
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// Every library's code, for FUNCTION DUMP and for putting the libraries back.
    pub fn library_codes(&self) -> Vec<Vec<u8>> {
        self.libraries.values().map(|l| l.code.clone()).collect()
    }

    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        let (lib, name) = self.functions.get(&name.to_ascii_lowercase())?;
        self.libraries.get(lib)?.functions.get(name)
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// FCALL: runs a function with its keys and arguments, `host` running its `redis.call`s
    /// (see `run`).
    pub fn call_function(
        &self,
        func: &FunctionDef,
        keys: &[&[u8]],
        argv: &[&[u8]],
        host: &mut dyn Host,
        out: &mut BytesMut,
        proto: Protocol,
    ) -> mlua::Result<Result<Vec<WrittenError>, Table>> {
        self.invoke(&self.enter_function, &func.f, None, keys, argv, host, out, proto)
    }

    /// Runs a script with its KEYS and ARGV, `host` running its `redis.call`s, and writes its
    /// value to `out` as Redis replies with it (`proto` is the client's), returning the error
    /// replies the value held. Returns Redis's error table instead when it failed, with
    /// nothing written.
    pub fn run(
        &self,
        script: &Script,
        keys: &[&[u8]],
        argv: &[&[u8]],
        host: &mut dyn Host,
        out: &mut BytesMut,
        proto: Protocol,
    ) -> mlua::Result<Result<Vec<WrittenError>, Table>> {
        self.invoke(&self.enter_script, &script.f, Some(&self.fields), keys, argv, host, out, proto)
    }

    /// Calls `code` as Redis does, in one `lua_pcall` under its error handler, after the
    /// prelude's `enter`: a script with KEYS and ARGV set in `globals`, a function (no
    /// `globals`) with them as its arguments. `host` runs the `redis.call`s; the code's value
    /// goes to `out`, or Redis's error table comes back instead.
    ///
    /// All of it is one protected call over Lua's own API: through mlua's safe API every
    /// string, every store, every table read of the reply and the call itself would each be
    /// a protected call of its own, which is most of what a short script costs.
    #[allow(clippy::too_many_arguments)]
    fn invoke(
        &self,
        enter: &Function,
        code: &Function,
        globals: Option<&Table>,
        keys: &[&[u8]],
        argv: &[&[u8]],
        host: &mut dyn Host,
        out: &mut BytesMut,
        proto: Protocol,
    ) -> mlua::Result<Result<Vec<WrittenError>, Table>> {
        let _hosted = self.current.host(host);
        let mark = out.len();
        let resp3 = &self.current.resp3;
        let mut errors = Vec::new();
        // SAFETY: the closure works on the stack exec_raw gave it (enter, handler, code,
        // globals or nil) and leaves exactly two values there: whether the code succeeded, and
        // its error (nil once a value is written). A Lua error (out of memory) unwinds to
        // exec_raw's protected call; the closure's frames hold nothing that needs dropping,
        // and what they wrote to `out` is cut off below.
        let ran: mlua::Result<(bool, Value)> = unsafe {
            self.lua.exec_raw((enter, &self.handler, code, globals), |state| {
                for items in [keys, argv] {
                    ffi::lua_createtable(state, items.len() as i32, 0);
                    for (i, item) in items.iter().enumerate() {
                        ffi::lua_pushlstring(state, item.as_ptr().cast(), item.len());
                        ffi::lua_rawseti(state, -2, i as i64 + 1);
                    }
                }
                // Stack: enter, handler, code, globals, KEYS, ARGV.
                let function = ffi::lua_istable(state, 4) == 0;
                if !function {
                    // The globals are read-only to scripts, not to the engine (as in Redis).
                    readonly::set_readonly(state, 4, false);
                    for (name, index) in [(c"KEYS", 5), (c"ARGV", 6)] {
                        ffi::lua_pushstring(state, name.as_ptr());
                        ffi::lua_pushvalue(state, index);
                        ffi::lua_rawset(state, 4);
                    }
                    readonly::set_readonly(state, 4, true);
                }
                ffi::lua_pushvalue(state, 1);
                ffi::lua_call(state, 0, 0);
                ffi::lua_pushvalue(state, 3);
                let nargs = if function {
                    ffi::lua_pushvalue(state, 5);
                    ffi::lua_pushvalue(state, 6);
                    2
                } else {
                    0
                };
                // Redis calls the code from its main function, where this closure is one C
                // call deep (exec_raw's).
                let status = ccalls::lent(state, 1, || ffi::lua_pcall(state, nargs, 1, 2));
                ffi::lua_pushboolean(state, (status == 0) as i32);
                ffi::lua_replace(state, 1);
                ffi::lua_replace(state, 2);
                ffi::lua_settop(state, 2);
                if status == 0 {
                    convert::write_reply(state, out, proto, resp3.load(Relaxed), &mut errors);
                    ffi::lua_pushnil(state);
                    ffi::lua_replace(state, 2);
                }
            })
        };
        self.watch.vm_bytes.store(self.lua.used_memory() as u64, Relaxed);
        let (ok, value) = ran.inspect_err(|_| out.truncate(mark))?;
        if ok {
            return Ok(Ok(errors));
        }
        match value {
            Value::Table(t) => Ok(Err(t)),
            other => Ok(Err(self.error_table.call(format!("{other:?}"))?)),
        }
    }
}

/// Compiles `code` as Redis compiles a script, with luaL_loadbuffer from its main function
/// (mlua's protected call around it does not count against the parser's nesting limit).
/// Lua's message if it does not compile.
fn compile(lua: &Lua, code: &[u8], name: &std::ffi::CStr) -> mlua::Result<Result<Function, String>> {
    // SAFETY: luaL_loadbuffer is protected (a parse error or a failed allocation is its
    // status), and the closure leaves its function or message, and a nil, on the stack.
    let (f, message): (Option<Function>, Option<String>) = unsafe {
        lua.exec_raw((), |state| {
            let status =
                ccalls::lent(state, 1, || ffi::luaL_loadbuffer(state, code.as_ptr().cast(), code.len(), name.as_ptr()));
            ffi::lua_pushnil(state);
            if status != 0 {
                ffi::lua_insert(state, -2);
            }
        })?
    };
    Ok(f.ok_or_else(|| message.unwrap_or_default()))
}

/// What runs a script's `redis.call`s: the caller's command engine, for one `Engine::run`.
pub trait Host {
    /// Runs one command, writing its reply to `out` (RESP3 if `resp3`), or returns the
    /// message Redis refuses it with (`-CODE msg`, or a bare message for ERR), which the
    /// script sees as an error table.
    fn call(&mut self, resp3: bool, req: Request, out: &mut BytesMut) -> Result<(), String>;

    /// `redis.acl_check_cmd`: whether the script's user may run `req`, or the message for a
    /// command that does not exist.
    fn acl_check(&mut self, req: Request) -> Result<bool, String>;
}

/// The running script's host and protocol, and the reply `redis.call` is handing over.
#[derive(Default)]
struct Current {
    host: parking_lot::Mutex<Option<HostPtr>>,
    /// `redis.setresp(3)` was called in this run.
    resp3: AtomicBool,
    /// The last command's reply, or why it was refused, kept here rather than on
    /// `redis_call`'s stack while it becomes a Lua value (see there). Touched only by the
    /// thread running the script.
    reply: std::cell::UnsafeCell<(BytesMut, Option<Refusal>)>,
}

/// Why `redis.call` ran no command.
struct Refusal {
    msg: String,
    /// The command was refused as Redis refuses one (unknown, wrong arity, not permitted),
    /// which counted the error; not for arguments Lua cannot pass (a table, nil).
    counted: bool,
}

// SAFETY: `reply` is only touched by `redis_call`, on the thread running the script, and
// scripts run one at a time (the engine's mutex).
unsafe impl Sync for Current {}

struct HostPtr(*mut (dyn Host + 'static));

// SAFETY: the pointer is only followed on the thread running the script, while `Engine::run`
// holds the host's exclusive borrow (see `Current::host`).
unsafe impl Send for HostPtr {}

/// Clears the host when a run ends, however it ends.
struct Hosted<'a>(&'a Current);

impl Drop for Hosted<'_> {
    fn drop(&mut self) {
        *self.0.host.lock() = None;
    }
}

impl Current {
    /// Makes `host` this run's host until the returned guard goes.
    fn host<'a>(&'a self, host: &'a mut dyn Host) -> Hosted<'a> {
        let ptr: *mut (dyn Host + 'a) = host;
        // SAFETY: only the lifetime is erased; `Hosted` clears the pointer before `host`'s
        // borrow ends, and nothing follows it afterwards.
        let ptr: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(ptr) };
        *self.host.lock() = Some(HostPtr(ptr));
        self.resp3.store(false, Relaxed);
        Hosted(self)
    }

    /// Runs the command whose arguments are on `state`'s stack and leaves the outcome, ready
    /// to push, in `reply`.
    ///
    /// # Safety
    /// `state` is the stack of a `redis_call` invocation, on the thread running the script.
    unsafe fn run(&self, state: *mut ffi::lua_State) {
        let (out, refused) = &mut *self.reply.get();
        out.clear();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.command(state, out)))
            .unwrap_or_else(|_| Err(("internal error while running the command".into(), false)));
        *refused = outcome.err().map(|(e, counted)| Refusal { msg: error_text(&e), counted });
    }

    unsafe fn command(&self, state: *mut ffi::lua_State, out: &mut BytesMut) -> Result<(), (String, bool)> {
        let args = ffi::lua_gettop(state);
        // Sized up front: growing the buffer argument by argument costs more than this pass.
        let bytes: usize = (1..=args)
            .map(|i| match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => ffi::lua_objlen(state, i),
                _ => 24,
            })
            .sum();
        let req = command_request(args as usize, bytes, |i, argv| match ffi::lua_type(state, i as i32 + 1) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(state, i as i32 + 1, &mut len);
                argv.push(std::slice::from_raw_parts(p.cast(), len));
                true
            }
            ffi::LUA_TNUMBER => {
                argv.push(number_arg(ffi::lua_tonumber(state, i as i32 + 1)).as_bytes());
                true
            }
            _ => false,
        })
        .map_err(|e| (e, false))?;
        // Only the host's refusals are counted: the command's.
        let mut counted = false;
        self.with_host(|host| {
            counted = true;
            host.call(self.resp3.load(Relaxed), req, out)
        })
        .map_err(|e| (e, counted))
    }

    /// Runs `f` with the running script's host.
    fn with_host<T>(&self, f: impl FnOnce(&mut dyn Host) -> Result<T, String>) -> Result<T, String> {
        let Some(ptr) = self.host.lock().as_ref().map(|p| p.0) else {
            return Err("redis.call is only available while a script runs".into());
        };
        // SAFETY: set by `host` for the current run, which is on this thread's stack below
        // this call; commands never run Lua, so the host is not re-entered.
        f(unsafe { &mut *ptr })
    }
}

/// `redis.call` (upvalue 2 true) and `redis.pcall`: a C function, as in Redis, reading its
/// arguments and pushing the reply with Lua's own API. Going through mlua would cost a
/// protected call and a registry reference per argument and per reply value.
///
/// Upvalues: the engine's `Current`, whether to raise error replies, and the prelude's
/// `internal` table (where a raised error table waits for the error handler).
unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> std::os::raw::c_int {
    let current = &*(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const Current);
    let raise = ffi::lua_toboolean(state, ffi::lua_upvalueindex(2)) != 0;
    current.run(state);
    // Only pushes from here on. A Lua error (out of memory) unwinds this frame, which holds
    // nothing to drop: the reply stays in `current` until the next call replaces it.
    let (out, refused) = &*current.reply.get();
    let read = match refused {
        None => convert::push_reply(state, out, current.resp3.load(Relaxed)).ok_or((UNREADABLE, false)),
        Some(r) => Err((r.msg.as_str(), r.counted)),
    };
    let (failed, counted) = match read {
        Ok(failed) => (failed, failed),
        Err((msg, counted)) => {
            ffi::lua_createtable(state, 0, 2);
            ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
            ffi::lua_setfield(state, -2, c"err".as_ptr());
            (true, counted)
        }
    };
    if counted {
        // As Redis marks it: the error was counted as the command failed or was refused, and
        // is not counted again if the script returns or raises it.
        ffi::lua_pushboolean(state, 1);
        ffi::lua_setfield(state, -2, IGNORE_STATS.as_ptr());
    }
    if raise && failed {
        ffi::lua_setfield(state, ffi::lua_upvalueindex(3), c"raised".as_ptr());
        ffi::lua_pushlightuserdata(state, std::ptr::null_mut());
        ffi::lua_error(state);
    }
    1
}

/// The field of an error table that says its error is counted in errorstats already.
pub const IGNORE_STATS: &std::ffi::CStr = c"ignore_error_stats_update";

/// What `redis.call` raises if a command's reply cannot be read (it never should).
const UNREADABLE: &str = "ERR Shoal could not read the command's reply";

/// An error reply's text as Redis's error tables hold it: `-CODE msg` keeps its code, a bare
/// message gets ERR; line breaks at either end go (the prelude's `error_table`, in Rust).
fn error_text(msg: &str) -> String {
    let (code, text) = match msg.strip_prefix('-') {
        Some(rest) => rest.split_once(' ').unwrap_or(("ERR", rest)),
        None => ("ERR", msg),
    };
    format!("{code} {}", text.trim_matches(|c| c == '\r' || c == '\n'))
}

/// A `redis.call`-style command from `n` arguments, `push` adding argument `i` (false for a
/// type commands do not take), with Redis's errors for a bad or missing argument.
fn command_request(
    n: usize,
    capacity: usize,
    mut push: impl FnMut(usize, &mut RequestBuilder) -> bool,
) -> Result<Request, String> {
    if n == 0 {
        return Err("Please specify at least one argument for this redis lib call".into());
    }
    let mut argv = RequestBuilder::with_capacity(capacity);
    for i in 0..n {
        if !push(i, &mut argv) {
            return Err("Lua redis lib command arguments must be strings or integers".into());
        }
    }
    Ok(argv.finish())
}

/// A number argument as Redis 7.0 passes it: `%.17g` (`0.1` is 0.10000000000000001, `1e20`
/// is 1e+20), which prints an integral value below 1e17 as the integer, done here without
/// the C library for the common case.
fn number_arg(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 && !(n == 0.0 && n.is_sign_negative()) {
        (n as i64).to_string()
    } else {
        crate::util::float::g17(n)
    }
}

/// `redis.REDIS_VERSION_NUM`: the version as 0x00MMmmpp, as Redis computes it.
fn version_num(version: &str) -> i64 {
    let mut parts = version.split('.').map(|p| p.parse::<i64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next() << 16) | (next() << 8) | next()
}

/// A Lua number, whichever way mlua hands it over.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// Puts the C function `f` in `table` as `name`.
fn set_c_function(lua: &Lua, table: &Table, name: &str, f: ffi::lua_CFunction) -> mlua::Result<()> {
    // SAFETY: pushes one C function on the stack exec_raw gave it, and leaves only that.
    let f: Function = unsafe {
        lua.exec_raw((), |state| {
            ffi::lua_pushcfunction(state, f);
        })?
    };
    table.raw_set(name, f)
}

/// Raises `ERR <msg>` from a Rust function of the `redis` library: the table waits in
/// `internal.raised` for the prelude's handler, and Lua sees the marker.
fn fail(internal: &Table, msg: &str) -> mlua::Error {
    let t = internal.raw_get::<Function>("error_table").and_then(|f| f.call::<Table>(msg));
    match t.and_then(|t| internal.raw_set("raised", t)) {
        Ok(()) => mlua::Error::RuntimeError(RAISED.into()),
        Err(e) => e,
    }
}

/// `redis.log(level, ...)`: the message goes to the node's log at the matching level. It is
/// the arguments that are strings or numbers, joined as Redis glues them (a space before each
/// but the first argument's place).
fn log(lua: &Lua, level: i64, args: &[Value]) -> mlua::Result<()> {
    let mut msg = Vec::new();
    for (j, v) in args.iter().enumerate() {
        if let Some(s) = lua.coerce_string(v.clone())? {
            if j != 0 {
                msg.push(b' ');
            }
            msg.extend_from_slice(&s.as_bytes());
        }
    }
    let msg = String::from_utf8_lossy(&msg);
    match level {
        0 => tracing::debug!(target: "shoal_node::script", %msg, "script log"),
        1 | 2 => tracing::info!(target: "shoal_node::script", %msg, "script log"),
        _ => tracing::warn!(target: "shoal_node::script", %msg, "script log"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_flags_are_read_and_the_line_kept_for_line_numbers() {
        let (flags, code) = shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert_eq!(flags, ScriptFlags { declared: true, no_writes: true, allow_oom: true });
        assert_eq!(code, b"\nreturn 1");
        assert!(matches!(shebang(b"#!python\n"), Err(ScriptError::Engine(e)) if e == "#!python"));
        assert!(matches!(shebang(b"#!lua flags=fast\n"), Err(ScriptError::Flag(f)) if f == "fast"));
        assert!(matches!(shebang(b"#!lua name=x\n"), Err(ScriptError::Option(o)) if o == "name=x"));
        assert_eq!(shebang(b"return 1").unwrap().0, ScriptFlags::default());
        // A bare shebang declares no flags: the script may write.
        assert_eq!(shebang(b"#!lua\nreturn 1").unwrap().0, ScriptFlags { declared: true, ..ScriptFlags::default() });
    }

    #[test]
    fn sha1_is_redis_hex() {
        assert_eq!(sha1hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }
}
