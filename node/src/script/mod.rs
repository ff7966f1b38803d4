//! Lua scripting: one sandboxed Lua 5.1 VM per node (the Lua Redis scripts are written for),
//! the script cache keyed by SHA1, and Redis's rules for turning replies into Lua values and
//! back. What `redis.call` runs, and under which locks, is the caller's (`cmd::scripting`).

mod convert;
mod libs;

pub use convert::{frame_to_lua, write_lua_reply};

use mlua::{Function, Lua, Table, Value, Variadic};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// What SCRIPT KILL makes the running script fail with.
pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// The node's scripting: the VM (one script runs at a time, under every shard's lease) and
/// what SCRIPT KILL, which runs beside it, needs to see.
pub struct Scripts {
    /// An async lock: loading a script must not block a thread while another one runs.
    engine: tokio::sync::Mutex<Engine>,
    /// Set by SCRIPT KILL; the running script's instruction hook fails it.
    kill: Arc<AtomicBool>,
    running: AtomicBool,
    /// The running script has written: killing it would leave half its work, so it may not be.
    wrote: AtomicBool,
}

/// SCRIPT KILL's answer.
pub enum KillOutcome {
    Killed,
    NotBusy,
    Unkillable,
}

impl Scripts {
    pub fn new() -> Result<Scripts, ScriptError> {
        let kill = Arc::new(AtomicBool::new(false));
        Ok(Scripts {
            engine: tokio::sync::Mutex::new(Engine::new(kill.clone())?),
            kill,
            running: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
        })
    }

    /// The VM, for loading scripts or running one. A caller that runs a script brackets it
    /// with `started` and `finished`.
    pub async fn engine(&self) -> tokio::sync::MutexGuard<'_, Engine> {
        self.engine.lock().await
    }

    pub fn started(&self) {
        self.kill.store(false, Relaxed);
        self.wrote.store(false, Relaxed);
        self.running.store(true, Relaxed);
    }

    /// Whether the running script was killed.
    pub fn finished(&self) -> bool {
        self.running.store(false, Relaxed);
        self.kill.swap(false, Relaxed)
    }

    pub fn note_write(&self) {
        self.wrote.store(true, Relaxed);
    }

    pub fn kill(&self) -> KillOutcome {
        if !self.running.load(Relaxed) {
            KillOutcome::NotBusy
        } else if self.wrote.load(Relaxed) {
            KillOutcome::Unkillable
        } else {
            self.kill.store(true, Relaxed);
            KillOutcome::Killed
        }
    }
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
    #[error("ERR {0}")]
    Vm(#[from] mlua::Error),
}

/// A script's shebang flags (`#!lua flags=no-writes,allow-oom`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// `flags=` was given: the script declared its flags (Redis 7 semantics).
    pub declared: bool,
    pub no_writes: bool,
}

/// A compiled script.
#[derive(Clone)]
pub struct Script {
    pub f: Function,
    pub flags: ScriptFlags,
}

/// The VM with its cache. Runs one script at a time (the caller holds every shard).
pub struct Engine {
    lua: Lua,
    kill: Arc<AtomicBool>,
    internal: Table,
    bind: Function,
    run: Function,
    error_table: Function,
    scripts: HashMap<String, Script>,
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
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(ScriptError::Flag(part.to_string()));
        };
        flags.declared = true;
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(ScriptError::Flag(other.to_string())),
            }
        }
    }
    Ok((flags, body[end..].to_vec()))
}

impl Engine {
    pub fn new(kill: Arc<AtomicBool>) -> Result<Engine, ScriptError> {
        use mlua::{LuaOptions, StdLib};
        // debug is loaded for the prelude's error handler only; scripts never see it.
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is reachable only from the prelude's locals.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::default()) };
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let flag = kill.clone();
        lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(10_000), move |_, _| {
            if flag.load(Relaxed) {
                return Err(mlua::Error::RuntimeError(KILLED.into()));
            }
            Ok(mlua::VmState::Continue)
        })?;
        let internal = lua.create_table()?;
        internal.set("resp", 2)?;
        internal.set("run", lua.create_table()?)?;
        let inner = internal.clone();
        internal.set(
            "sha1hex",
            lua.create_function(move |lua, s: Value| match s {
                Value::String(s) => lua.create_string(sha1hex(&s.as_bytes())),
                Value::Integer(_) | Value::Number(_) => {
                    lua.create_string(sha1hex(s.to_string().unwrap_or_default().as_bytes()))
                }
                _ => Err(fail(&inner, "wrong number of arguments")),
            })?,
        )?;
        let inner = internal.clone();
        internal.set(
            "log",
            lua.create_function(move |_, args: Variadic<Value>| match args.first() {
                Some(Value::Integer(_) | Value::Number(_)) if args.len() >= 2 => log(&args),
                _ if args.len() < 2 => Err(fail(&inner, "redis.log() requires two arguments or more.")),
                _ => Err(fail(&inner, "First argument must be a number (log level).")),
            })?,
        )?;
        let inner = internal.clone();
        internal.set(
            "setresp",
            lua.create_function(move |_, v: Value| match number(&v) {
                Some(n) if n == 2.0 || n == 3.0 => inner.raw_set("resp", n as i64),
                _ => Err(fail(&inner, "RESP version must be 2 or 3.")),
            })?,
        )?;
        let inner = internal.clone();
        internal.set(
            "set_repl",
            lua.create_function(move |_, v: Value| match number(&v) {
                Some(n) if (0.0..=3.0).contains(&n) => Ok(()),
                _ => Err(fail(&inner, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")),
            })?,
        )?;
        libs::install(&lua, &internal)?;
        internal.set(
            "error_text",
            lua.create_function(|_, e: Value| {
                Ok(match e {
                    Value::Error(e) => Some(libs::error_text(&e)),
                    _ => None,
                })
            })?,
        )?;
        let inner = internal.clone();
        internal.set("pcall", lua.create_function(move |_, args: Variadic<Value>| exec(&inner, args))?)?;
        let inner = internal.clone();
        internal.set(
            "call",
            lua.create_function(move |_, args: Variadic<Value>| -> mlua::Result<Value> {
                let reply = exec(&inner, args)?;
                if let Value::Table(t) = &reply {
                    if t.raw_get::<Value>("err")?.is_string() {
                        inner.raw_set("raised", t.clone())?;
                        return Err(mlua::Error::RuntimeError(RAISED.into()));
                    }
                }
                Ok(reply)
            })?,
        )?;
        let (bind, run, error_table): (Function, Function, Function) =
            lua.load(include_str!("prelude.lua")).set_name("=shoal").call(internal.clone())?;
        internal.raw_set("error_table", error_table.clone())?;
        // The prelude keeps what it needs; scripts get only its read-only environment.
        let globals = lua.globals();
        for name in ["debug", "loadfile", "dofile", "require", "module", "collectgarbage", "newproxy"] {
            globals.raw_set(name, Value::Nil)?;
        }
        Ok(Engine { lua, kill, internal, bind, run, error_table, scripts: HashMap::new() })
    }

    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    pub fn get(&self, sha: &str) -> Option<Script> {
        self.scripts.get(sha).cloned()
    }

    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// Compiles a script (or finds it compiled) and returns it with its SHA1.
    pub fn load(&mut self, body: &[u8]) -> Result<(String, Script), ScriptError> {
        let sha = sha1hex(body);
        if let Some(s) = self.scripts.get(&sha) {
            return Ok((sha, s.clone()));
        }
        let (flags, code) = shebang(body)?;
        let f = self
            .lua
            .load(&code[..])
            .set_name("@user_script")
            .into_function()
            .map_err(|e| ScriptError::Compile(compile_message(&e)))?;
        let f: Function = self.bind.call(f)?;
        let script = Script { f, flags };
        self.scripts.insert(sha.clone(), script.clone());
        Ok((sha, script))
    }

    /// Empties the cache and starts a fresh VM, as SCRIPT FLUSH does in Redis.
    pub fn flush(&mut self) -> Result<(), ScriptError> {
        *self = Engine::new(self.kill.clone())?;
        Ok(())
    }

    /// Runs a script with its KEYS and ARGV and `exec` as `redis.call`'s engine. Returns the
    /// script's value, or Redis's error table when it failed.
    pub fn run(
        &self,
        script: &Script,
        keys: &[&[u8]],
        argv: &[&[u8]],
        exec: Function,
    ) -> mlua::Result<Result<Value, Table>> {
        let lua = &self.lua;
        let run = lua.create_table()?;
        run.raw_set("KEYS", byte_array(lua, keys)?)?;
        run.raw_set("ARGV", byte_array(lua, argv)?)?;
        self.internal.raw_set("run", run)?;
        self.internal.raw_set("resp", 2)?;
        self.internal.raw_set("exec", exec)?;
        let (ok, value): (bool, Value) = self.run.call(script.f.clone())?;
        self.internal.raw_set("exec", Value::Nil)?;
        if ok {
            return Ok(Ok(value));
        }
        match value {
            Value::Table(t) => Ok(Err(t)),
            other => Ok(Err(self.error_table.call(format!("{other:?}"))?)),
        }
    }

    /// Redis's error table for an error reply or message (`-CODE msg`, or `msg` as ERR).
    pub fn error_table(&self, msg: &str) -> mlua::Result<Table> {
        self.error_table.call(msg)
    }
}

fn byte_array(lua: &Lua, items: &[&[u8]]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// Lua's own compile message (`user_script:1: unexpected symbol near '+'`), without mlua's
/// wrapping.
fn compile_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Runs a command through this run's `exec` (the caller's `redis.call` engine) with the RESP
/// version the script chose.
fn exec(internal: &Table, args: Variadic<Value>) -> mlua::Result<Value> {
    let exec: Function = internal.raw_get("exec")?;
    let resp: i64 = internal.raw_get("resp")?;
    exec.call((resp, args))
}

/// A Lua number, whichever way mlua hands it over.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
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

/// `redis.log(level, ...)`: the message goes to the node's log at the matching level.
fn log(args: &[Value]) -> mlua::Result<()> {
    let level = number(&args[0]).unwrap_or(0.0) as i64;
    let msg: Vec<String> = args[1..].iter().map(|v| v.to_string().unwrap_or_default()).collect();
    let msg = msg.join(" ");
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
        assert_eq!(flags, ScriptFlags { declared: true, no_writes: true });
        assert_eq!(code, b"\nreturn 1");
        assert!(matches!(shebang(b"#!python\n"), Err(ScriptError::Engine(e)) if e == "#!python"));
        assert!(matches!(shebang(b"#!lua flags=fast\n"), Err(ScriptError::Flag(f)) if f == "fast"));
        assert_eq!(shebang(b"return 1").unwrap().0, ScriptFlags::default());
    }

    #[test]
    fn sha1_is_redis_hex() {
        assert_eq!(sha1hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }
}
