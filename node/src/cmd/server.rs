//! Server commands that span every shard: DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, KEYS, SCAN,
//! RANDOMKEY, DEBUG and SHUTDOWN.

use super::args::{self, is};
use super::exec::{DB_OUT_OF_RANGE, NO_SUCH_KEY};
use super::gateway::{GwCtx, HeldShards};
use crate::argv;
use crate::shard::db::Db;
use crate::shard::ShardState;
use crate::util::glob::glob_match;
use crate::util::now_ms;
use shoal_proto::{reply, Request};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tracing::info;

/// Low bits of a SCAN cursor name the shard; the rest is that shard's table cursor.
const SCAN_SHARD_BITS: u32 = 10;

pub async fn dbsize(ctx: &mut GwCtx<'_>) {
    let db = ctx.session.db;
    let n: usize = ctx.each_shard(move |st| st.dbs[db].len()).await.into_iter().sum();
    reply::integer(ctx.out, n as i64);
}

/// Frees a large database off the async runtime's threads.
async fn drop_off_thread(dbs: Vec<Db>) {
    if dbs.iter().all(|d| d.len() < 1024) {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || drop(dbs)).await;
}

/// Empties database `db` (every database with `None`) on every shard, atomically across
/// shards; the old contents are freed off the runtime's threads (in the background with
/// `asynchronous`).
pub async fn flush_dbs(node: &crate::node::Node, db: Option<usize>, asynchronous: bool) {
    let taken = super::gateway::with_all_leased(node, |shards| take_dbs(shards, db)).await;
    dispose(node, taken, asynchronous).await;
}

/// Empties `db` (every database with `None`) on `shards`, recording the change; returns what
/// they held.
fn take_dbs(shards: &mut dyn HeldShards, db: Option<usize>) -> Vec<Db> {
    let mut taken = Vec::new();
    let now = now_ms();
    for i in 0..shards.count() {
        let st = shards.shard(i);
        match db {
            None => {
                for d in 0..st.dbs.len() {
                    st.touch_all_watched(d, None, now);
                }
                for d in st.dbs.iter_mut() {
                    taken.push(d.take());
                }
                st.changes.emit_node_wide(0, || argv!["FLUSHALL"]);
            }
            Some(db) => {
                st.touch_all_watched(db, None, now);
                taken.push(st.dbs[db].take());
                st.changes.emit_node_wide(db, || argv!["FLUSHDB"]);
            }
        }
    }
    taken
}

/// What follows emptying databases: tracking clients are told, and the old contents freed.
async fn dispose(node: &crate::node::Node, taken: Vec<Db>, asynchronous: bool) {
    if node.tracking.is_active() {
        node.tracking.invalidate_all();
    }
    if asynchronous {
        tokio::spawn(drop_off_thread(taken));
    } else {
        drop_off_thread(taken).await;
    }
}

pub async fn flush(ctx: &mut GwCtx<'_>, req: &Request, all: bool) {
    let asynchronous = match req.len() {
        1 => false,
        2 if is(req.arg(1), "ASYNC") => true,
        2 if is(req.arg(1), "SYNC") => false,
        _ => return ctx.syntax(),
    };
    let db = if all { None } else { Some(ctx.session.db) };
    let taken = ctx.all_shards(|shards| take_dbs(shards, db)).await;
    // A script holds every shard and cannot wait: what it emptied is freed behind it.
    let asynchronous = asynchronous || ctx.held.is_some();
    dispose(ctx.node, taken, asynchronous).await;
    reply::ok(ctx.out);
}

fn db_arg(ctx: &mut GwCtx<'_>, arg: &[u8], which: &str) -> Option<usize> {
    match args::int(arg) {
        Some(n) if n >= i32::MIN as i64 && n <= i32::MAX as i64 => {
            if n < 0 || n as usize >= ctx.node.config.databases {
                ctx.err(DB_OUT_OF_RANGE);
                None
            } else {
                Some(n as usize)
            }
        }
        _ => {
            ctx.err(&format!("ERR invalid {which} DB index"));
            None
        }
    }
}

pub async fn swapdb(ctx: &mut GwCtx<'_>, req: &Request) {
    let Some(a) = db_arg(ctx, req.arg(1), "first") else { return };
    let Some(b) = db_arg(ctx, req.arg(2), "second") else { return };
    ctx.all_shards(|shards| {
        let now = now_ms();
        for i in 0..shards.count() {
            let st = shards.shard(i);
            st.touch_all_watched(a, Some(b), now);
            st.touch_all_watched(b, Some(a), now);
            st.dbs.swap(a, b);
            st.changes.emit_node_wide(0, || argv!["SWAPDB", a.to_string(), b.to_string()]);
        }
    })
    .await;
    reply::ok(ctx.out);
}

pub async fn keys(ctx: &mut GwCtx<'_>, req: &Request) {
    let pattern = req.arg(1).to_vec();
    let db = ctx.session.db;
    let parts = ctx
        .each_shard(move |st| {
            let now = now_ms();
            let all = pattern == b"*";
            st.dbs[db]
                .dict()
                .iter()
                .filter(|e| e.expire_at().is_none_or(|t| t > now))
                .filter(|e| all || glob_match(&pattern, e.key(), false))
                .map(|e| e.key().to_vec())
                .collect::<Vec<_>>()
        })
        .await;
    let n: usize = parts.iter().map(Vec::len).sum();
    reply::array_len(ctx.out, n);
    for k in parts.iter().flatten() {
        reply::bulk(ctx.out, k);
    }
}

/// Removes `key` if it is expired, recording the deletion.
fn expire_if_due(st: &mut ShardState, db: usize, key: &[u8], now: u64) -> bool {
    let d = &mut st.dbs[db];
    let Some(id) = d.dict().find_no_step(key) else { return true };
    if d.dict().entry(id).expire_at().is_some_and(|t| t <= now) {
        d.remove(key);
        st.stats.expired_keys += 1;
        st.changes.emit(db, || argv!["DEL", key]);
        st.touched(db, key);
        return true;
    }
    false
}

pub async fn scan(ctx: &mut GwCtx<'_>, req: &Request) {
    let o = match args::scan_options(req, 1, true, false) {
        Ok(o) => o,
        Err(e) => return ctx.err(e),
    };
    let (cursor, count) = (o.cursor, o.count);
    let type_filter = o.type_filter.as_deref().map(|t| String::from_utf8_lossy(t).to_ascii_lowercase());
    let shards = ctx.node.shards.len() as u64;
    let mut shard = cursor & ((1 << SCAN_SHARD_BITS) - 1);
    let inner = cursor >> SCAN_SHARD_BITS;
    let db = ctx.session.db;
    let (next, keys) = if shard >= shards {
        (0, Vec::new())
    } else {
        let (inner_next, keys) = ctx
            .one_shard(shard as usize, move |st| {
                let now = now_ms();
                let mut found = Vec::new();
                let mut cur = inner;
                let mut budget = count.saturating_mul(10);
                loop {
                    cur = st.dbs[db].dict().scan(cur, |e| found.push(e.key().to_vec()));
                    budget -= 1;
                    if cur == 0 || budget == 0 || found.len() >= count {
                        break;
                    }
                }
                found.retain(|k| {
                    if expire_if_due(st, db, k, now) {
                        return false;
                    }
                    if !args::scan_match(&o, k) {
                        return false;
                    }
                    match &type_filter {
                        None => true,
                        Some(t) => st.dbs[db]
                            .dict()
                            .find_no_step(k)
                            .is_some_and(|id| st.dbs[db].dict().entry(id).value.kind().name() == t),
                    }
                });
                (cur, found)
            })
            .await;
        if inner_next != 0 {
            ((inner_next << SCAN_SHARD_BITS) | shard, keys)
        } else {
            shard += 1;
            (if shard >= shards { 0 } else { shard }, keys)
        }
    };
    reply::array_len(ctx.out, 2);
    reply::bulk(ctx.out, next.to_string().as_bytes());
    reply::array_len(ctx.out, keys.len());
    for k in &keys {
        reply::bulk(ctx.out, k);
    }
}

pub async fn randomkey(ctx: &mut GwCtx<'_>) {
    let db = ctx.session.db;
    let picks = ctx
        .each_shard(move |st| {
            let now = now_ms();
            let mut rng = rand::thread_rng();
            for _ in 0..100 {
                let Some(id) = st.dbs[db].dict().random(&mut rng) else { break };
                let key = st.dbs[db].dict().entry(id).key().to_vec();
                if !expire_if_due(st, db, &key, now) {
                    return (st.dbs[db].len(), Some(key));
                }
            }
            (st.dbs[db].len(), None)
        })
        .await;
    let total: usize = picks.iter().filter(|(_, k)| k.is_some()).map(|(n, _)| n).sum();
    if total == 0 {
        return reply::null(ctx.out, ctx.proto());
    }
    let mut r = rand::Rng::gen_range(&mut rand::thread_rng(), 0..total);
    for (n, k) in picks.iter().filter(|(_, k)| k.is_some()) {
        if r < *n {
            return reply::bulk(ctx.out, k.as_ref().expect("filtered"));
        }
        r -= n;
    }
}

pub async fn save(ctx: &mut GwCtx<'_>) {
    match crate::persist::snapshot::save(ctx.node).await {
        Ok(_) => reply::ok(ctx.out),
        Err(crate::persist::snapshot::SnapshotError::InProgress) => ctx.err("ERR Background save already in progress"),
        Err(e) => {
            tracing::warn!(error = %e, "SAVE failed");
            ctx.err("ERR")
        }
    }
}

/// BGSAVE [SCHEDULE]: a snapshot written while commands keep running.
pub async fn bgsave(ctx: &mut GwCtx<'_>, req: &Request) {
    let schedule = match req.len() {
        1 => false,
        2 if is(req.arg(1), "SCHEDULE") => true,
        _ => return ctx.syntax(),
    };
    match crate::persist::snapshot::bgsave(ctx.node).await {
        Ok(()) => reply::simple(ctx.out, b"Background saving started"),
        Err(crate::persist::snapshot::SnapshotError::InProgress) if schedule => {
            ctx.node.saves.scheduled.store(true, std::sync::atomic::Ordering::Relaxed);
            reply::simple(ctx.out, b"Background saving scheduled");
        }
        Err(crate::persist::snapshot::SnapshotError::InProgress) if ctx.node.wal.rewrite.in_progress.load(Relaxed) => {
            ctx.err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
        }
        Err(crate::persist::snapshot::SnapshotError::InProgress) => ctx.err("ERR Background save already in progress"),
        Err(e) => {
            tracing::warn!(error = %e, "BGSAVE failed to start");
            ctx.err("ERR")
        }
    }
}

/// BGREWRITEAOF: a new base for the write-ahead log, written while commands keep running.
pub async fn bgrewriteaof(ctx: &mut GwCtx<'_>) {
    use crate::persist::wal::rewrite::{rewrite, Started};
    match rewrite(ctx.node).await {
        Ok(Started::Now) => reply::simple(ctx.out, b"Background append only file rewriting started"),
        Ok(Started::Scheduled) => reply::simple(ctx.out, b"Background append only file rewriting scheduled"),
        Err(e) => ctx.err(&e.to_string()),
    }
}

pub fn shutdown(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut choice = crate::node::ShutdownSave::Default;
    for i in 1..req.len() {
        let a = req.arg(i);
        if is(a, "ABORT") {
            return ctx.err("ERR No shutdown in progress.");
        }
        if is(a, "NOSAVE") {
            choice = crate::node::ShutdownSave::NoSave;
        } else if is(a, "SAVE") {
            choice = crate::node::ShutdownSave::Save;
        } else if !(is(a, "NOW") || is(a, "FORCE")) {
            return ctx.syntax();
        }
    }
    *ctx.node.shutdown_save.lock().expect("shutdown lock") = choice;
    info!(client = ctx.session.handle.id, "shutdown requested by SHUTDOWN command");
    ctx.node.shutdown.send_replace(true);
    ctx.session.close_after_reply = true;
}

pub async fn debug(ctx: &mut GwCtx<'_>, req: &Request) {
    let sub = String::from_utf8_lossy(req.arg(1)).to_ascii_lowercase();
    match (sub.as_str(), req.len()) {
        ("sleep", 3) => {
            let secs = crate::util::float::string2d(req.arg(2)).unwrap_or(0.0).max(0.0);
            // DEBUG SLEEP stops the whole server, as in Redis: every shard is held.
            let leases = ctx.node.lease_all().await;
            tokio::time::sleep(Duration::from_secs_f64(secs.min(3600.0))).await;
            drop(leases);
            reply::ok(ctx.out);
        }
        ("set-active-expire", 3) => {
            let on = req.arg(2) != b"0";
            ctx.node.broadcast(move |st| st.active_expire = on).await;
            reply::ok(ctx.out);
        }
        ("object", 3) => {
            let key = req.arg(2).to_vec();
            let db = ctx.session.db;
            let shard = ctx.node.route.shard_of_key(&key);
            let line = ctx
                .node
                .broadcast_one(shard, move |st| {
                    let now = now_ms();
                    if expire_if_due(st, db, &key, now) {
                        return None;
                    }
                    let id = st.dbs[db].dict().find_no_step(&key)?;
                    let e = st.dbs[db].dict().entry(id);
                    // Redis counts the encoded value alone: no type byte, no version or checksum.
                    let ser = crate::persist::dump::dump(&e.value).len() - 11;
                    Some(format!(
                        "Value at:{:#x} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                        e as *const _ as usize,
                        e.value.encoding(),
                        ser,
                        e.access & 0xff_ffff,
                        st.clock.wrapping_sub(e.access)
                    ))
                })
                .await;
            match line {
                Some(l) => reply::simple(ctx.out, l.as_bytes()),
                None => ctx.err(NO_SUCH_KEY),
            }
        }
        ("protocol", 3) => protocol(ctx, req.arg(2)),
        ("reload", _) => reload(ctx, req).await,
        ("change-repl-id", 2) => reply::ok(ctx.out),
        ("help", 2) => {
            let lines = [
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "OBJECT <key>",
                "    Show low level info about the key and associated value.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type.",
                "RELOAD [NOSAVE]",
                "    Save the RDB on disk and reload it back to memory. NOSAVE: load the dump.rdb there is",
                "    (e.g. one copied from Redis) without saving first. All data is replaced.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ];
            reply::array_len(ctx.out, lines.len());
            for l in lines {
                reply::simple(ctx.out, l.as_bytes());
            }
        }
        _ => ctx.err(&super::args::subcommand_syntax_error("DEBUG", req)),
    }
}

/// DEBUG RELOAD [NOSAVE]: saves dump.rdb (unless NOSAVE) and replaces all data with what it
/// holds; the way to load an RDB file, Redis's included, into a running node.
async fn reload(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut save = true;
    for i in 2..req.len() {
        match String::from_utf8_lossy(req.arg(i)).to_ascii_uppercase().as_str() {
            "NOSAVE" => save = false,
            _ => return ctx.syntax(),
        }
    }
    if save {
        if let Err(e) = crate::persist::snapshot::save(ctx.node).await {
            return ctx.err(&format!("ERR Error trying to save the RDB dump: {e}"));
        }
    }
    let path = ctx.node.config.data_dir.join(crate::persist::snapshot::FILE_NAME);
    match crate::persist::backup::restore::replace_with_rdb(ctx.node, &path).await {
        Ok(()) => {
            info!(path = %path.display(), "data reloaded by DEBUG RELOAD");
            reply::ok(ctx.out)
        }
        Err(e) => ctx.err(&format!("ERR Error trying to load the RDB dump: {e}")),
    }
}

/// DEBUG PROTOCOL: a sample of each RESP3 type, as Redis sends it.
fn protocol(ctx: &mut GwCtx<'_>, name: &[u8]) {
    let p = ctx.proto();
    let out = &mut *ctx.out;
    match String::from_utf8_lossy(name).to_ascii_lowercase().as_str() {
        "string" => reply::bulk(out, b"Hello World"),
        "integer" => reply::integer(out, 12345),
        // Redis's sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        "double" => reply::double(out, p, 3.141),
        "bignum" => reply::big_number(out, p, b"1234567999999999999999999999999999999"),
        "null" => reply::null(out, p),
        "array" => {
            reply::array_len(out, 3);
            (0..3).for_each(|j| reply::integer(out, j));
        }
        "set" => {
            reply::set_len(out, p, 3);
            (0..3).for_each(|j| reply::integer(out, j));
        }
        "map" => {
            reply::map_len(out, p, 3);
            for j in 0..3 {
                reply::integer(out, j);
                reply::boolean(out, p, j == 1);
            }
        }
        "attrib" => {
            if p.is_resp3() {
                out.extend_from_slice(b"|1\r\n");
                reply::bulk(out, b"key-popularity");
                reply::array_len(out, 2);
                reply::bulk(out, b"key:123");
                reply::integer(out, 90);
            }
            reply::bulk(out, b"Some real reply following the attribute");
        }
        "push" => {
            if !p.is_resp3() {
                return ctx.err("ERR RESP2 is not supported by this command");
            }
            reply::push_len(out, p, 2);
            reply::bulk(out, b"server-cpu-usage");
            reply::integer(out, 42);
            reply::bulk(out, b"Some real reply following the push reply");
        }
        "true" => reply::boolean(out, p, true),
        "false" => reply::boolean(out, p, false),
        "verbatim" => reply::verbatim(out, p, b"txt", b"This is a verbatim\nstring"),
        _ => ctx.err("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}
