//! FUNCTION LOAD / LIST / DELETE / FLUSH / DUMP / RESTORE / STATS / KILL. (FCALL runs with
//! the scripts, in `cmd::scripting`.)
//!
//! Libraries are node state, kept in `functions.rdb` in the data directory (FUNCTION DUMP's
//! payload), written with every change and loaded from it at start-up, so they outlive
//! restarts as in Redis. Snapshots and backups carry them too, as Redis's RDB files do
//! (`persist::snapshot`, `persist::load`).

use super::gateway::GwCtx;
use crate::node::Node;
use crate::persist::dump::{dump_functions, restore_functions};
use crate::script::{Engine, Scripts};
use crate::util::glob::glob_match;
use shoal_proto::{reply, Request};
use std::path::{Path, PathBuf};

/// Where a node keeps its libraries.
pub fn libraries_file(data_dir: &Path) -> PathBuf {
    data_dir.join("functions.rdb")
}

/// Loads the libraries a node kept (start-up): their code, None without the file, or why the
/// file is unusable.
pub fn load_kept(engine: &mut Engine, data_dir: &Path) -> Result<Option<Vec<Vec<u8>>>, String> {
    let path = libraries_file(data_dir);
    let payload = match std::fs::read(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let codes = restore_functions(&payload).map_err(|e| format!("{}: {e}", path.display()))?;
    for code in &codes {
        engine.load_library(code, true)?;
    }
    Ok(Some(codes))
}

/// Writes the libraries to the data directory, replacing what was there (blocking).
fn write_kept(data_dir: &Path, codes: &[Vec<u8>]) -> std::io::Result<()> {
    let path = libraries_file(data_dir);
    let tmp = path.with_extension("rdb.tmp");
    std::fs::write(&tmp, dump_functions(codes))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// Writes the libraries to the data directory, off the runtime's threads.
async fn store(data_dir: PathBuf, codes: Vec<Vec<u8>>) -> Result<(), String> {
    match tokio::task::spawn_blocking(move || write_kept(&data_dir, &codes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot keep the function libraries: {e}")),
        Err(e) => Err(format!("cannot keep the function libraries: {e}")),
    }
}

/// Writes the libraries to the data directory; replied to only once they are there.
async fn keep(node: &Node, codes: Vec<Vec<u8>>) -> Result<(), String> {
    store(node.config.data_dir.clone(), codes).await.map_err(|e| format!("ERR {e}"))
}

/// Replaces every library with those in `codes` (a loaded snapshot's), all or nothing, and
/// keeps them.
pub async fn replace_all(scripts: &Scripts, data_dir: &Path, codes: Vec<Vec<u8>>) -> Result<(), String> {
    let mut engine = scripts.engine().await.map_err(str::to_string)?;
    engine.restore_libraries(&codes, true, false).map_err(|e| e.trim_start_matches("ERR ").to_string())?;
    drop(engine);
    store(data_dir.to_path_buf(), codes).await
}

/// Replies OK (or `done`) once the libraries are kept, or with why they could not be.
async fn keep_then(ctx: &mut GwCtx<'_>, codes: Vec<Vec<u8>>, done: impl FnOnce(&mut GwCtx<'_>)) {
    match keep(ctx.node, codes).await {
        Ok(()) => done(ctx),
        Err(e) => ctx.err(&e),
    }
}

pub async fn load(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut replace = false;
    for i in 2..req.len() - 1 {
        if req.arg(i).eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else {
            return ctx.err(&format!("ERR Unknown option given: {}", String::from_utf8_lossy(req.arg(i))));
        }
    }
    let Some(mut engine) = ctx.engine().await else { return };
    let loaded = engine.load_library(req.arg(req.len() - 1), replace);
    let codes = engine.library_codes();
    drop(engine);
    match loaded {
        Ok(name) => keep_then(ctx, codes, |ctx| reply::bulk(ctx.out, name.as_bytes())).await,
        Err(e) => ctx.err(&e),
    }
}

pub async fn delete(ctx: &mut GwCtx<'_>, req: &Request) {
    let Some(mut engine) = ctx.engine().await else { return };
    let deleted = engine.delete_library(&String::from_utf8_lossy(req.arg(2)));
    let codes = engine.library_codes();
    drop(engine);
    if !deleted {
        return ctx.err("ERR Library not found");
    }
    keep_then(ctx, codes, |ctx| reply::ok(ctx.out)).await
}

pub async fn flush(ctx: &mut GwCtx<'_>, req: &Request) {
    if req.len() > 3
        || (req.len() == 3 && !req.arg(2).eq_ignore_ascii_case(b"sync") && !req.arg(2).eq_ignore_ascii_case(b"async"))
    {
        return ctx.err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    let Some(mut engine) = ctx.engine().await else { return };
    engine.flush_functions();
    drop(engine);
    keep_then(ctx, Vec::new(), |ctx| reply::ok(ctx.out)).await
}

pub async fn list(ctx: &mut GwCtx<'_>, req: &Request) {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < req.len() {
        let a = req.arg(i);
        if a.eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if a.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            i += 1;
            if i == req.len() {
                return ctx.err("ERR library name argument was not given");
            }
            pattern = Some(req.arg(i));
        } else {
            return ctx.err(&format!("ERR Unknown argument {}", String::from_utf8_lossy(a)));
        }
        i += 1;
    }
    let Some(engine) = ctx.engine().await else { return };
    let libs: Vec<_> =
        engine.libraries().filter(|l| pattern.is_none_or(|p| glob_match(p, l.name.as_bytes(), true))).collect();
    let proto = ctx.session.proto;
    let out = &mut *ctx.out;
    reply::array_len(out, libs.len());
    for lib in libs {
        reply::map_len(out, proto, if with_code { 4 } else { 3 });
        reply::bulk(out, b"library_name");
        reply::bulk(out, lib.name.as_bytes());
        reply::bulk(out, b"engine");
        reply::bulk(out, b"LUA");
        reply::bulk(out, b"functions");
        reply::array_len(out, lib.functions.len());
        for f in lib.functions.values() {
            reply::map_len(out, proto, 3);
            reply::bulk(out, b"name");
            reply::bulk(out, f.name.as_bytes());
            reply::bulk(out, b"description");
            match &f.description {
                Some(d) => reply::bulk(out, d.as_bytes()),
                None => reply::null(out, proto),
            }
            reply::bulk(out, b"flags");
            reply::set_len(out, proto, f.flags.len());
            // (Status replies, as Redis writes them.)
            for flag in &f.flags {
                reply::simple(out, flag.as_bytes());
            }
        }
        if with_code {
            reply::bulk(out, b"library_code");
            reply::bulk(out, &lib.code);
        }
    }
}

pub async fn dump(ctx: &mut GwCtx<'_>) {
    let Some(engine) = ctx.engine().await else { return };
    let codes = engine.library_codes();
    drop(engine);
    reply::bulk(ctx.out, &dump_functions(&codes));
}

pub async fn restore(ctx: &mut GwCtx<'_>, req: &Request) {
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match req.len() {
        3 => Policy::Append,
        4 if req.arg(3).eq_ignore_ascii_case(b"append") => Policy::Append,
        4 if req.arg(3).eq_ignore_ascii_case(b"replace") => Policy::Replace,
        4 if req.arg(3).eq_ignore_ascii_case(b"flush") => Policy::Flush,
        _ => return ctx.err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."),
    };
    let codes = match restore_functions(req.arg(2)) {
        Ok(c) => c,
        Err(e) => return ctx.err(&format!("ERR {e}")),
    };
    let Some(mut engine) = ctx.engine().await else { return };
    if let Err(e) = engine.restore_libraries(&codes, policy == Policy::Flush, policy == Policy::Replace) {
        return ctx.err(&e);
    }
    let kept = engine.library_codes();
    drop(engine);
    keep_then(ctx, kept, |ctx| reply::ok(ctx.out)).await
}

pub async fn stats(ctx: &mut GwCtx<'_>) {
    let proto = ctx.session.proto;
    // Counted beside the engine, which the running function (if any) holds.
    let (libraries, functions) = ctx.node.scripts.counts();
    let out = &mut *ctx.out;
    reply::map_len(out, proto, 2);
    reply::bulk(out, b"running_script");
    match ctx.node.scripts.running_function() {
        Some((name, command, ms)) => {
            reply::map_len(out, proto, 3);
            reply::bulk(out, b"name");
            reply::bulk(out, name.as_bytes());
            reply::bulk(out, b"command");
            reply::array_len(out, command.len());
            for a in command.args() {
                reply::bulk(out, a);
            }
            reply::bulk(out, b"duration_ms");
            reply::integer(out, ms as i64);
        }
        None => reply::null(out, proto),
    }
    reply::bulk(out, b"engines");
    reply::map_len(out, proto, 1);
    reply::bulk(out, b"LUA");
    reply::map_len(out, proto, 2);
    reply::bulk(out, b"libraries_count");
    reply::integer(out, libraries as i64);
    reply::bulk(out, b"functions_count");
    reply::integer(out, functions as i64);
}
