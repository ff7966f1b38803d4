//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO and SCRIPT LOAD / EXISTS / FLUSH /
//! KILL (FUNCTION's other subcommands are in `cmd::functions`).
//!
//! Scripts and functions run holding every shard (leased: in place when idle, from the
//! actors otherwise), so they are atomic and isolated over every key they touch, declared in
//! KEYS or not (Redis standalone allows undeclared keys). Each `redis.call` runs through the
//! command table like a queued MULTI command: same handlers, same ACL checks, same change
//! records, so replicas and the write-ahead log see the script's effects, never the script.

use super::exec::{Exec, ExecSettings, Oom, RouteMemo};
use super::gateway::GwCtx;
use super::table::{flags, table, CommandSpec, Gw, Handler};
use crate::gateway::session::Session;
use crate::node::Node;
use crate::script::{Engine, FunctionDef, Handed, Host, KillOutcome, Script, ScriptFlags, IGNORE_STATS};
use crate::shard::{run_guarded, serve_blocked, ShardState};
use crate::slots::SlotRoute;
use crate::util::now_ms;
use bytes::BytesMut;
use futures_util::FutureExt;
use mlua::Table;
use shoal_proto::{reply, Protocol, Request};
use std::sync::Arc;
use std::time::Instant;

/// Whether `g` runs a script or a function.
pub fn runs_a_script(g: Gw) -> bool {
    matches!(g, Gw::Eval | Gw::EvalSha | Gw::EvalRo | Gw::EvalShaRo | Gw::FCall | Gw::FCallRo)
}

/// EVAL, EVALSHA, FCALL and their read-only forms (`runs_a_script`).
pub async fn run_script(ctx: &mut GwCtx<'_>, g: Gw, req: &Request) {
    run_held(ctx, |ctx, engine, states| run_holding(ctx, g, req, engine, states)).await;
}

/// `run_script` with the engine and every shard already held (inside a transaction).
pub fn run_holding(ctx: &mut GwCtx<'_>, g: Gw, req: &Request, engine: &mut Engine, states: &mut Vec<&mut ShardState>) {
    match g {
        Gw::Eval => eval(ctx, req, false, false, engine, states),
        Gw::EvalSha => eval(ctx, req, true, false, engine, states),
        Gw::EvalRo => eval(ctx, req, false, true, engine, states),
        Gw::EvalShaRo => eval(ctx, req, true, true, engine, states),
        Gw::FCall => fcall(ctx, req, false, engine, states),
        Gw::FCallRo => fcall(ctx, req, true, engine, states),
        _ => unreachable!("{g:?} runs no script"),
    }
}

/// EVAL / EVALSHA (`by_sha`), and their read-only forms, checking their arguments in
/// Redis's order: a SHA1's length, the key count, then the script.
fn eval(
    ctx: &mut GwCtx<'_>,
    req: &Request,
    by_sha: bool,
    read_only: bool,
    engine: &mut Engine,
    states: &mut Vec<&mut ShardState>,
) {
    // Any case is accepted for a SHA1: the cache is by lowercase hex, and no string of
    // another length names a script.
    let mut lower = [0u8; 40];
    if by_sha {
        let arg = req.arg(1);
        if arg.len() != lower.len() || !arg.is_ascii() {
            return ctx.err(NOSCRIPT);
        }
        lower.copy_from_slice(arg);
        lower.make_ascii_lowercase();
    }
    let Some(numkeys) = numkeys(ctx, req, "ERR value is not an integer or out of range") else { return };
    let loaded;
    let sha = if by_sha {
        std::str::from_utf8(&lower).expect("ASCII is UTF-8")
    } else {
        loaded = match engine.load(req.arg(1), true) {
            Ok(sha) => sha,
            Err(e) => return ctx.err(&e.to_string()),
        };
        loaded.as_str()
    };
    let Some(script) = engine.get_to_run(sha) else { return ctx.err(NOSCRIPT) };
    let Some(read_only) = admit(ctx, script.flags, read_only) else { return };
    let code = Code::Script(sha, script);
    run_code(ctx, engine, &Run::new(&code, req, numkeys, read_only, script.flags.allow_oom), states);
}

/// Redis's checks before code with declared flags (a shebang, or a function's) runs, in its
/// order: the memory limit, unless the code cannot write or may run past it; then a `*_RO`
/// command (`ro_command`) for code that may write. Whether the run is read-only, or None
/// having replied with the refusal.
fn admit(ctx: &mut GwCtx<'_>, flags: ScriptFlags, ro_command: bool) -> Option<bool> {
    if flags.declared && !flags.no_writes {
        if !flags.allow_oom && ctx.node.memory.refuses_writes() {
            ctx.err(crate::memory::OOM_ERROR);
            return None;
        }
        if ro_command {
            ctx.err("ERR Can not execute a script with write flag using *_ro command.");
            return None;
        }
    }
    Some(ro_command || flags.no_writes)
}

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// FCALL / FCALL_RO: the function first, then the key count, as Redis checks them.
fn fcall(ctx: &mut GwCtx<'_>, req: &Request, read_only: bool, engine: &mut Engine, states: &mut Vec<&mut ShardState>) {
    let Some(func) = engine.function(&String::from_utf8_lossy(req.arg(1))).cloned() else {
        return ctx.err("ERR Function not found");
    };
    let Some(numkeys) = numkeys(ctx, req, "ERR Bad number of keys provided") else { return };
    let flags = func.script_flags();
    let Some(read_only) = admit(ctx, flags, read_only) else { return };
    run_code(ctx, engine, &Run::new(&Code::Function(func), req, numkeys, read_only, flags.allow_oom), states);
}

/// Runs `run` holding the engine and every shard, so it is atomic over any key it touches.
/// Idle shards are leased right here (the common case: a hand-off to each actor and back
/// costs more than a short script); busy ones from their actors. While another script holds
/// the engine, `run` is handed to its holder (`script::combine`); a holder runs what was
/// handed over before it lets go.
async fn run_held<F>(ctx: &mut GwCtx<'_>, mut run: F)
where
    F: FnMut(&mut GwCtx<'_>, &mut Engine, &mut Vec<&mut ShardState>) + Send,
{
    let node: &Arc<Node> = ctx.node;
    let scripts = &node.scripts;
    let held = match scripts.try_engine() {
        Some(engine) => engine,
        None => {
            let handed = scripts.hand_over(&mut |engine, states| run(ctx, engine, states)).await;
            match handed {
                Handed::Ran => return,
                Handed::Busy(busy) => return ctx.err(busy),
                Handed::Held(engine) => engine,
            }
        }
    };
    let mut engine = held;
    let mut leases = node.lease_all().await;
    let mut states: Vec<&mut ShardState> = leases.iter_mut().map(|l| l.state()).collect();
    run(ctx, &mut engine, &mut states);
    scripts.run_handed(&mut engine, &mut states);
}

/// The key count of EVAL-style commands (`cmd code numkeys key... arg...`), or None having
/// replied with Redis's error (`not_integer` for one that is no integer: EVAL's and FCALL's
/// words differ).
fn numkeys(ctx: &mut GwCtx<'_>, req: &Request, not_integer: &str) -> Option<usize> {
    match shoal_proto::request::parse_i64(req.arg(2)) {
        Some(n) if n < 0 => ctx.err("ERR Number of keys can't be negative"),
        Some(n) if n as usize > req.len() - 3 => ctx.err("ERR Number of keys can't be greater than number of args"),
        Some(n) => return Some(n as usize),
        None => ctx.err(not_integer),
    }
    None
}

/// What runs: an EVAL script (by its SHA1) or a library's function.
enum Code<'a> {
    Script(&'a str, &'a Script),
    Function(FunctionDef),
}

/// A script's keys or arguments: most scripts have a few, kept without an allocation.
type Args<'a> = smallvec::SmallVec<[&'a [u8]; 8]>;

/// Code about to run, with its arguments.
struct Run<'a> {
    code: &'a Code<'a>,
    req: &'a Request,
    keys: Args<'a>,
    argv: Args<'a>,
    read_only: bool,
    allow_oom: bool,
}

impl<'a> Run<'a> {
    fn new(code: &'a Code<'a>, req: &'a Request, numkeys: usize, read_only: bool, allow_oom: bool) -> Run<'a> {
        let keys = (3..3 + numkeys).map(|i| req.arg(i)).collect();
        let argv = (3 + numkeys..req.len()).map(|i| req.arg(i)).collect();
        Run { code, req, keys, argv, read_only, allow_oom }
    }
}

/// Runs the code over `states` (every shard) and writes its reply.
fn run_code(ctx: &mut GwCtx<'_>, engine: &Engine, run: &Run<'_>, states: &mut Vec<&mut ShardState>) {
    let route = ctx.node.route.clone();
    let mut settings = ctx.node.exec_settings();
    settings.client = ctx.session.handle.id;
    let node: &Arc<Node> = ctx.node;
    // SELECT inside a script changes the script's database, not the client's.
    let db = ctx.session.db;
    let scripts = &node.scripts;
    match run.code {
        Code::Script(..) => scripts.started(None),
        Code::Function(f) => scripts.started(Some((f.name.clone(), run.req.clone()))),
    }
    let now = now_ms();
    let proto = ctx.session.proto;
    let mut cx = CallCx {
        node,
        session: &mut *ctx.session,
        states,
        route: &route,
        settings,
        read_only: run.read_only,
        allow_oom: run.allow_oom,
        oom_at_start: ctx.node.memory.over_limit(),
        wrote: false,
        now,
        memo: RouteMemo::default(),
    };
    let out = &mut *ctx.out;
    let (result, name) = match run.code {
        Code::Script(sha, script) => (engine.run(script, &run.keys, &run.argv, &mut cx, out, proto), *sha),
        Code::Function(f) => (engine.call_function(f, &run.keys, &run.argv, &mut cx, out, proto), f.name.as_str()),
    };
    scripts.finished();
    ctx.session.db = db;
    match result {
        Ok(Ok(errors)) => {
            for e in errors {
                ctx.note_script_error(e.as_deref().unwrap_or_default(), e.is_none());
            }
        }
        Ok(Err(error)) => {
            let msg = script_error(name, &error);
            reply::error_as_is(ctx.out, &msg);
            // (Only `true` itself, as Redis reads it.)
            let key = IGNORE_STATS.to_str().unwrap_or_default();
            let counted = matches!(error.raw_get(key), Ok(mlua::Value::Boolean(true)));
            ctx.note_script_error(&msg, counted);
        }
        Err(e) => ctx.err(&format!("ERR {e}")),
    }
    // Clients blocked on keys the script pushed to are served after it, as in Redis, as of
    // the script's time.
    serve_blocked(states, &route, now, settings);
}

/// A script's error as Redis 7 words it: the error, then which script (its SHA1, or the
/// function's name) and line raised it.
fn script_error(sha: &str, error: &Table) -> Vec<u8> {
    // The text as bytes, up to a NUL (Redis reads it as a C string).
    let msg = match error.raw_get::<mlua::LuaString>("err") {
        Ok(s) => crate::script::c_string(&s.as_bytes()).to_vec(),
        Err(_) => b"ERR unknown error".to_vec(),
    };
    let source: Option<String> = error.raw_get("source").ok();
    let line: Option<i64> = error.raw_get("line").ok();
    match (source, line) {
        (Some(source), Some(line)) => [msg, format!(" script: {sha}, on {source}:{line}.").into_bytes()].concat(),
        _ => msg,
    }
}

/// What `redis.call` needs while a script runs.
struct CallCx<'a, 'b> {
    node: &'a Arc<Node>,
    session: &'a mut Session,
    states: &'a mut Vec<&'b mut ShardState>,
    route: &'a SlotRoute,
    settings: ExecSettings,
    read_only: bool,
    /// Flagged `allow-oom`: its commands run past the memory limit.
    allow_oom: bool,
    /// Memory was over the limit as the script started. Redis judges the limit then, once:
    /// a script that starts under it is never refused for memory (nor makes room by
    /// evicting: that waits for the next command).
    oom_at_start: bool,
    /// A write command has run: later ones run past the memory limit too, as in Redis, so
    /// the script is not stopped halfway.
    wrote: bool,
    /// The script's time: keys expire as of its start, as in Redis, however long it runs.
    now: u64,
    /// Keys routed so far, kept from one call to the next (the states and route stay put).
    memo: RouteMemo,
}

impl Host for CallCx<'_, '_> {
    fn call(&mut self, resp3: bool, req: Request, out: &mut BytesMut) -> Result<(), String> {
        call(self, resp3, req, out)
    }

    fn acl_check(&mut self, req: Request) -> Result<bool, String> {
        let Some(spec) = resolve(&req) else {
            return Err("Invalid command passed to redis.acl_check_cmd()".into());
        };
        Ok(self.session.allows(self.node, spec, &req))
    }
}

/// `redis.call` / `redis.pcall`: runs one command, its reply going to `out`, or returns the
/// message Redis refuses it with (the script gets an error table either way; `redis.call`
/// raises it).
fn call(cx: &mut CallCx<'_, '_>, resp3: bool, req: Request, out: &mut BytesMut) -> Result<(), String> {
    let spec = admit_call(cx, &req).map_err(|(msg, spec)| {
        // Counted as Redis counts it: an error (ERR, its text having no `-` code), and the
        // command (if any) rejected. The script's error table says so, and is not counted
        // again.
        cx.node.stats.record_error("ERR");
        if let Some(spec) = spec {
            cx.node.stats.record_rejected(spec.id);
        }
        msg
    })?;
    if spec.is_write() {
        cx.node.scripts.note_write();
    }
    let oom = if cx.allow_oom || cx.wrote || !cx.oom_at_start { Oom::Exempt } else { Oom::Checked };
    let mut refused = false;
    let proto = if resp3 { Protocol::Resp3 } else { Protocol::Resp2 };
    let started = Instant::now();
    let failed = match spec.handler {
        Handler::Shard(f) => {
            let mut ex = Exec::new(cx.states, cx.route, cx.session.db, proto, out, cx.now, cx.settings);
            ex.no_block = true;
            ex.in_script = true;
            ex.oom = oom;
            std::mem::swap(&mut ex.memo, &mut cx.memo);
            let failed = run_guarded(&mut ex, f, &req, spec);
            std::mem::swap(&mut ex.memo, &mut cx.memo);
            refused = ex.oom == Oom::Refused;
            failed
        }
        // Commands that touch no shard run here, and those that visit every shard visit the
        // ones the script holds; none of them waits on anything, and one that would is
        // refused rather than awaited while the script holds every shard.
        Handler::Gateway(g)
            if super::multi::runs_under_lease(g)
                || super::gateway::runs_on_held_shards(g)
                || matches!(g, Gw::Publish | Gw::SPublish) =>
        {
            let client_proto = std::mem::replace(&mut cx.session.proto, proto);
            let mut gw = GwCtx {
                node: cx.node,
                session: &mut *cx.session,
                out,
                spec,
                failed: false,
                held: Some(&mut *cx.states),
            };
            let done = Box::pin(super::gateway::execute(g, &mut gw, &req)).now_or_never().is_some();
            let failed = gw.failed;
            cx.session.proto = client_proto;
            if !done {
                return Err(NOT_FROM_SCRIPTS.into());
            }
            failed
        }
        _ => return Err(NOT_FROM_SCRIPTS.into()),
    };
    cx.wrote |= spec.is_write() && !refused;
    let nanos = started.elapsed().as_nanos() as u64;
    cx.node.scripts.after_command(nanos);
    cx.node.record_call(spec, &req, nanos, failed, &cx.session.handle);
    super::monitor::show_from(cx.node, cx.session.db, || "lua".into(), spec, &req);
    Ok(())
}

/// The command `req` names, if the script may run it; or the message Redis refuses it with,
/// and the command refused (none if unknown).
fn admit_call(
    cx: &mut CallCx<'_, '_>,
    req: &Request,
) -> Result<&'static CommandSpec, (String, Option<&'static CommandSpec>)> {
    let Some(spec) = resolve(req) else { return Err(("Unknown Redis command called from script".into(), None)) };
    let refuse = |msg: String| Err((msg, Some(spec)));
    if !spec.arity_ok(req.len()) {
        return refuse("Wrong number of args calling Redis command from script".into());
    }
    if spec.has(flags::NOSCRIPT) {
        return refuse("This Redis command is not allowed from script".into());
    }
    if let Err(e) = cx.session.permit(cx.node, spec, req) {
        return refuse(permit_error(e));
    }
    if cx.read_only && spec.is_write() {
        return refuse("Write commands are not allowed from read-only scripts.".into());
    }
    Ok(spec)
}

/// The command a script names: as Redis looks it up, a container (XINFO, PUBSUB, ...) with a
/// subcommand it does not have names no command.
fn resolve(req: &Request) -> Option<&'static CommandSpec> {
    let spec = table().resolve(req)?;
    (spec.subcommands.is_empty() || req.len() < 2).then_some(spec)
}

const NOT_FROM_SCRIPTS: &str = "Shoal does not run this command from scripts yet";

/// An ACL refusal inside a script, in Redis's words.
fn permit_error(e: String) -> String {
    if !e.starts_with("NOPERM") {
        e
    } else if e.contains("keys") {
        "The user executing the script can't access at least one of the keys mentioned in the command".into()
    } else if e.contains("channels") {
        "The user executing the script can't publish to the channel mentioned in the command".into()
    } else {
        "The user executing the script can't run this command or subcommand".into()
    }
}

pub async fn script_load(ctx: &mut GwCtx<'_>, req: &Request) {
    let Some(mut engine) = ctx.engine().await else { return };
    let loaded = engine.load(req.arg(2), false);
    drop(engine);
    match loaded {
        Ok(sha) => reply::bulk(ctx.out, sha.as_bytes()),
        Err(e) => ctx.err(&e.to_string()),
    }
}

pub async fn script_exists(ctx: &mut GwCtx<'_>, req: &Request) {
    let Some(engine) = ctx.engine().await else { return };
    reply::array_len(ctx.out, req.len() - 2);
    for sha in req.args().skip(2) {
        reply::integer(ctx.out, engine.exists(&String::from_utf8_lossy(sha).to_ascii_lowercase()) as i64);
    }
}

pub async fn script_flush(ctx: &mut GwCtx<'_>, req: &Request) {
    if req.len() > 3
        || (req.len() == 3 && !req.arg(2).eq_ignore_ascii_case(b"sync") && !req.arg(2).eq_ignore_ascii_case(b"async"))
    {
        return ctx.err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    let Some(mut engine) = ctx.engine().await else { return };
    let flushed = engine.flush();
    drop(engine);
    match flushed {
        Ok(()) => reply::ok(ctx.out),
        Err(e) => ctx.err(&e.to_string()),
    }
}

/// SCRIPT KILL (`function` false) and FUNCTION KILL.
/// SCRIPT DEBUG: Redis's Lua debugger (LDB) is not there; NO, the mode every script runs in,
/// is accepted.
pub fn debug(ctx: &mut GwCtx<'_>, req: &Request) {
    let mode = req.arg(2);
    if mode.eq_ignore_ascii_case(b"no") {
        reply::ok(ctx.out);
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        ctx.err("ERR Shoal has no Lua debugger: scripts run as with SCRIPT DEBUG NO");
    } else {
        ctx.err("ERR Use SCRIPT DEBUG YES/SYNC/NO");
    }
}

pub fn kill(ctx: &mut GwCtx<'_>, function: bool) {
    match ctx.node.scripts.kill(function) {
        KillOutcome::OtherKind(busy) => ctx.err(busy),
        KillOutcome::Killed => reply::ok(ctx.out),
        KillOutcome::NotBusy => ctx.err("NOTBUSY No scripts in execution right now."),
        KillOutcome::Unkillable => ctx.err(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ),
    }
}
