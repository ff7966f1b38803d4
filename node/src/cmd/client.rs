//! CLIENT subcommands.

use super::args::{self, is};
use super::gateway::GwCtx;
use super::table::table;
use crate::gateway::session::ReplyMode;
use crate::node::{ClientHandle, Pause, Unblock};
use shoal_proto::{reply, Request};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

/// A CLIENT KILL filter.
type ClientFilter = Box<dyn Fn(&Arc<ClientHandle>) -> bool>;

/// Client names and library info may not contain spaces or control characters.
pub fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

pub fn setname(ctx: &mut GwCtx<'_>, req: &Request) {
    let n = req.arg(2);
    if !valid_name(n) {
        return ctx.err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    *ctx.session.handle.name.lock().expect("name lock") = String::from_utf8_lossy(n).into_owned();
    reply::ok(ctx.out);
}

pub fn getname(ctx: &mut GwCtx<'_>) {
    let name = ctx.session.handle.name.lock().expect("name lock").clone();
    if name.is_empty() {
        reply::null(ctx.out, ctx.proto());
    } else {
        reply::bulk(ctx.out, name.as_bytes());
    }
}

pub fn setinfo(ctx: &mut GwCtx<'_>, req: &Request) {
    let (attr, val) = (req.arg(2), req.arg(3));
    let target = if is(attr, "LIB-NAME") {
        &ctx.session.handle.lib_name
    } else if is(attr, "LIB-VER") {
        &ctx.session.handle.lib_ver
    } else {
        return ctx.err(&format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr)));
    };
    if !valid_name(val) {
        let which = String::from_utf8_lossy(attr).to_ascii_lowercase();
        return ctx.err(&format!("ERR {which} cannot contain spaces, newlines or special characters."));
    }
    *target.lock().expect("info lock") = String::from_utf8_lossy(val).into_owned();
    reply::ok(ctx.out);
}

/// One CLIENT LIST line, with Redis 7's fields.
pub fn describe(c: &ClientHandle, now_ms: u64) -> String {
    let age = c.created.elapsed().as_secs();
    let idle = crate::util::coarse_ms().saturating_sub(c.last_interaction.load(Relaxed)) / 1000;
    let _ = now_ms;
    let cmd = match c.last_cmd.load(Relaxed) {
        usize::MAX => "NULL".to_string(),
        id => table().name_of(id).to_string(),
    };
    let mut flags = String::new();
    let subs: Vec<usize> = c.subs.iter().map(|n| n.load(Relaxed)).collect();
    if subs.iter().any(|&n| n > 0) {
        flags.push('P');
    }
    if c.is_blocked() {
        flags.push('b');
    }
    if c.tracking.load(Relaxed) {
        flags.push('t');
    }
    if c.no_evict.load(Relaxed) {
        flags.push('e');
    }
    if c.no_touch.load(Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let qbuf = c.qbuf.load(Relaxed);
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi=-1 qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.name.lock().expect("name lock"),
        age,
        idle,
        flags,
        c.db.load(Relaxed),
        subs[0],
        subs[1],
        subs[2],
        qbuf,
        16384usize.saturating_sub(qbuf),
        32768 + qbuf,
        cmd,
        c.user.lock().expect("user lock"),
        c.resp.load(Relaxed),
        c.lib_name.lock().expect("info lock"),
        c.lib_ver.lock().expect("info lock"),
    )
}

pub fn info(ctx: &mut GwCtx<'_>) {
    let line = describe(&ctx.session.handle, ctx.node.uptime_ms()) + "\n";
    ctx.text(&line);
}

pub fn list(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut clients = ctx.node.clients.all();
    let mut j = 2;
    while j < req.len() {
        let opt = req.arg(j);
        if is(opt, "TYPE") && j + 1 < req.len() {
            let t = req.arg(j + 1);
            if is(t, "normal") {
                // every client is a normal client for now
            } else if is(t, "master") || is(t, "replica") || is(t, "slave") || is(t, "pubsub") {
                clients.clear();
            } else {
                return ctx.err(&format!("ERR Unknown client type '{}'", String::from_utf8_lossy(t)));
            }
            j += 2;
        } else if is(opt, "ID") && j + 1 < req.len() {
            let mut ids = Vec::new();
            for a in (j + 1..req.len()).map(|i| req.arg(i)) {
                match args::int(a) {
                    Some(id) if id > 0 => ids.push(id as u64),
                    _ => return ctx.err("ERR Invalid client ID"),
                }
            }
            clients.retain(|c| ids.contains(&c.id));
            j = req.len();
        } else {
            return ctx.syntax();
        }
    }
    let now = ctx.node.uptime_ms();
    let mut s = String::new();
    for c in clients {
        s.push_str(&describe(&c, now));
        s.push('\n');
    }
    ctx.text(&s);
}

pub fn kill(ctx: &mut GwCtx<'_>, req: &Request) {
    let all = ctx.node.clients.all();
    let me = ctx.session.handle.id;
    if req.len() == 3 {
        // Old form: CLIENT KILL addr:port.
        let addr = String::from_utf8_lossy(req.arg(2)).into_owned();
        return match all.iter().find(|c| c.addr.to_string() == addr) {
            Some(c) => {
                c.kill();
                if c.id == me {
                    ctx.session.close_after_reply = true;
                }
                reply::ok(ctx.out)
            }
            None => ctx.err("ERR No such client"),
        };
    }
    let mut filters: Vec<ClientFilter> = Vec::new();
    let mut skipme = true;
    let mut j = 2;
    while j < req.len() {
        if j + 1 >= req.len() {
            return ctx.syntax();
        }
        let (opt, val) = (req.arg(j), req.arg(j + 1));
        if is(opt, "ID") {
            match args::int(val) {
                Some(id) if id > 0 => filters.push(Box::new(move |c| c.id == id as u64)),
                _ => return ctx.err("ERR client-id should be greater than 0"),
            }
        } else if is(opt, "TYPE") {
            if is(val, "normal") {
            } else if is(val, "master") || is(val, "replica") || is(val, "slave") || is(val, "pubsub") {
                filters.push(Box::new(|_| false));
            } else {
                return ctx.err(&format!("ERR Unknown client type '{}'", String::from_utf8_lossy(val)));
            }
        } else if is(opt, "ADDR") {
            let a = String::from_utf8_lossy(val).into_owned();
            filters.push(Box::new(move |c| c.addr.to_string() == a));
        } else if is(opt, "LADDR") {
            let a = String::from_utf8_lossy(val).into_owned();
            filters.push(Box::new(move |c| c.laddr.to_string() == a));
        } else if is(opt, "USER") {
            let u = val.to_vec();
            filters.push(Box::new(move |_| u == b"default"));
        } else if is(opt, "SKIPME") {
            if is(val, "yes") {
                skipme = true;
            } else if is(val, "no") {
                skipme = false;
            } else {
                return ctx.syntax();
            }
        } else if is(opt, "MAXAGE") {
            match args::int(val) {
                Some(age) => filters.push(Box::new(move |c| c.created.elapsed().as_secs() as i64 >= age)),
                None => return ctx.err(super::exec::NOT_INTEGER),
            }
        } else {
            return ctx.syntax();
        }
        j += 2;
    }
    let mut killed = 0;
    for c in all.iter().filter(|c| filters.iter().all(|f| f(c))) {
        if c.id == me && skipme {
            continue;
        }
        c.kill();
        if c.id == me {
            ctx.session.close_after_reply = true;
        }
        killed += 1;
    }
    reply::integer(ctx.out, killed);
}

pub fn pause(ctx: &mut GwCtx<'_>, req: &Request) {
    let timeout = match args::int(req.arg(2)) {
        None => return ctx.err("ERR timeout is not an integer or out of range"),
        Some(t) if t < 0 => return ctx.err("ERR timeout is negative"),
        Some(t) => t as u64,
    };
    let writes_only = match req.len() {
        3 => false,
        4 if is(req.arg(3), "WRITE") => true,
        4 if is(req.arg(3), "ALL") => false,
        _ => return ctx.syntax(),
    };
    let now = ctx.node.uptime_ms();
    let until_ms = now.saturating_add(timeout);
    ctx.node.set_pause(|p| {
        // As in Redis, a pause in force keeps its stricter type and its later end.
        let active = p.until_ms > now;
        *p = if active {
            Pause { until_ms: p.until_ms.max(until_ms), writes_only: p.writes_only && writes_only }
        } else {
            Pause { until_ms, writes_only }
        };
    });
    reply::ok(ctx.out);
}

pub fn unpause(ctx: &mut GwCtx<'_>) {
    ctx.node.set_pause(|p| *p = Pause::default());
    reply::ok(ctx.out);
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking wait (BLPOP, XREAD
/// BLOCK, ...) as if it timed out, or with an -UNBLOCKED error. 1 if it was waiting, else 0
/// (as for a client held by CLIENT PAUSE, which no command's timeout ends).
pub fn unblock(ctx: &mut GwCtx<'_>, req: &Request) {
    if req.len() > 4 {
        return ctx.err(&args::subcommand_syntax_error("CLIENT", req));
    }
    // Redis checks the reason before the id.
    let how = match req.len() {
        3 => Unblock::Timeout,
        _ if is(req.arg(3), "TIMEOUT") => Unblock::Timeout,
        _ if is(req.arg(3), "ERROR") => Unblock::Error,
        _ => return ctx.err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Some(id) = args::int(req.arg(2)) else { return ctx.err(super::exec::NOT_INTEGER) };
    let unblocked = u64::try_from(id).ok().and_then(|id| ctx.node.clients.get(id)).is_some_and(|c| c.unblock(how));
    reply::integer(ctx.out, unblocked as i64);
}

pub fn reply_mode(ctx: &mut GwCtx<'_>, req: &Request) {
    let a = req.arg(2);
    if is(a, "ON") {
        ctx.session.reply_mode = ReplyMode::On;
        ctx.session.skip_next = false;
        reply::ok(ctx.out);
    } else if is(a, "OFF") {
        ctx.session.reply_mode = ReplyMode::Off;
    } else if is(a, "SKIP") {
        if ctx.session.reply_mode == ReplyMode::On {
            ctx.session.skip_next = true;
        }
    } else {
        ctx.syntax();
    }
}

pub fn flag(ctx: &mut GwCtx<'_>, req: &Request, which: fn(&ClientHandle) -> &AtomicBool) {
    let a = req.arg(2);
    let on = if is(a, "ON") {
        true
    } else if is(a, "OFF") {
        false
    } else {
        return ctx.syntax();
    };
    which(&ctx.session.handle).store(on, Relaxed);
    reply::ok(ctx.out);
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
pub fn tracking(ctx: &mut GwCtx<'_>, req: &Request) {
    use crate::gateway::session::TrackingMode;
    let mut m = TrackingMode::default();
    let mut redirect_given = false;
    let mut j = 3;
    while j < req.len() {
        let more = req.len() - 1 - j;
        let a = req.arg(j);
        if is(a, "REDIRECT") && more > 0 {
            j += 1;
            if redirect_given {
                return ctx.err("ERR A client can only redirect to a single other client");
            }
            let Some(id) = super::args::int(req.arg(j)) else { return ctx.err(super::exec::NOT_INTEGER) };
            if id <= 0 || !ctx.node.clients.exists(id as u64) {
                return ctx.err("ERR The client ID you want redirect to does not exist");
            }
            m.redirect = id as u64;
            redirect_given = true;
        } else if is(a, "BCAST") {
            m.bcast = true;
        } else if is(a, "OPTIN") {
            m.optin = true;
        } else if is(a, "OPTOUT") {
            m.optout = true;
        } else if is(a, "NOLOOP") {
            m.noloop = true;
        } else if is(a, "PREFIX") && more > 0 {
            j += 1;
            m.prefixes.push(req.arg(j).to_vec());
        } else {
            return ctx.syntax();
        }
        j += 1;
    }
    let id = ctx.session.handle.id;
    if is(req.arg(2), "OFF") {
        if ctx.session.tracking.take().is_some() {
            ctx.node.tracking.disable(id);
            ctx.session.handle.tracking.store(false, Relaxed);
        }
        return reply::ok(ctx.out);
    }
    if !is(req.arg(2), "ON") {
        return ctx.syntax();
    }
    if !m.bcast && !m.prefixes.is_empty() {
        return ctx.err("ERR PREFIX option requires BCAST mode to be enabled");
    }
    if let Some(old) = &ctx.session.tracking {
        if old.bcast != m.bcast {
            return ctx.err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if m.bcast && (m.optin || m.optout) {
        return ctx.err("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if m.optin && m.optout {
        return ctx.err("ERR You can't use both OPTIN and OPTOUT");
    }
    if let Some(old) = &ctx.session.tracking {
        if (m.optin && old.optout) || (m.optout && old.optin) {
            return ctx.err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if m.bcast {
        // Prefixes accumulate while tracking stays on; none means every key.
        if let Some(old) = &ctx.session.tracking {
            for p in &old.prefixes {
                if !m.prefixes.contains(p) {
                    m.prefixes.push(p.clone());
                }
            }
        }
        for (i, a) in m.prefixes.iter().enumerate() {
            for b in &m.prefixes[i + 1..] {
                if a != b && (a.starts_with(b) || b.starts_with(a)) {
                    let (x, y) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
                    return ctx.err(&format!(
                        "ERR Prefix '{x}' overlaps with an existing prefix '{y}'. Prefixes for a single client must not overlap."
                    ));
                }
            }
        }
    }
    let target = if m.redirect != 0 {
        crate::tracking::Target::Redirect(m.redirect)
    } else {
        crate::tracking::Target::Own(super::pubsub::ensure_outbox(ctx))
    };
    let bcast = if m.bcast && m.prefixes.is_empty() { vec![Vec::new()] } else { m.prefixes.clone() };
    ctx.node.tracking.enable(crate::tracking::Tracker {
        client: id,
        target,
        bcast,
        bcast_on: m.bcast,
        noloop: m.noloop,
    });
    ctx.session.tracking = Some(m);
    ctx.session.handle.tracking.store(true, Relaxed);
    reply::ok(ctx.out);
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked (OPTIN/OPTOUT).
pub fn caching(ctx: &mut GwCtx<'_>, req: &Request) {
    let Some(t) = ctx.session.tracking.as_mut() else {
        return ctx.err(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        );
    };
    let a = req.arg(2);
    if is(a, "YES") {
        if !t.optin {
            return ctx.err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
        t.caching = Some(true);
    } else if is(a, "NO") {
        if !t.optout {
            return ctx.err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
        t.caching = Some(false);
    } else {
        return ctx.syntax();
    }
    reply::ok(ctx.out);
}

pub fn getredir(ctx: &mut GwCtx<'_>) {
    let r = ctx.session.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
    reply::integer(ctx.out, r);
}

pub fn trackinginfo(ctx: &mut GwCtx<'_>) {
    let proto = ctx.proto();
    let t = ctx.session.tracking.clone();
    let mut flags: Vec<&str> = vec![if t.is_some() { "on" } else { "off" }];
    if let Some(t) = &t {
        if t.bcast {
            flags.push("bcast");
        }
        if t.optin {
            flags.push("optin");
            if t.caching == Some(true) {
                flags.push("caching-yes");
            }
        }
        if t.optout {
            flags.push("optout");
            if t.caching == Some(false) {
                flags.push("caching-no");
            }
        }
        if t.noloop {
            flags.push("noloop");
        }
    }
    reply::map_len(ctx.out, proto, 3);
    reply::bulk(ctx.out, b"flags");
    reply::set_len(ctx.out, proto, flags.len());
    for f in flags {
        reply::bulk(ctx.out, f.as_bytes());
    }
    reply::bulk(ctx.out, b"redirect");
    reply::integer(ctx.out, t.as_ref().map_or(-1, |t| t.redirect as i64));
    reply::bulk(ctx.out, b"prefixes");
    let prefixes = t.map(|t| t.prefixes).unwrap_or_default();
    reply::array_len(ctx.out, prefixes.len());
    for p in prefixes {
        reply::bulk(ctx.out, &p);
    }
}
