//! Connection commands: PING, HELLO, AUTH, SELECT.

use super::args::{self, is};
use super::exec::DB_OUT_OF_RANGE;
use super::gateway::GwCtx;
use shoal_proto::{reply, Protocol, Request};

pub fn ping(ctx: &mut GwCtx<'_>, req: &Request) {
    if ctx.session.in_subscribed_context() {
        // A subscribed RESP2 client gets PING's answer in the shape of a message.
        if req.len() > 2 {
            return ctx.err("ERR wrong number of arguments for 'ping' command");
        }
        reply::array_len(ctx.out, 2);
        reply::bulk(ctx.out, b"pong");
        return reply::bulk(ctx.out, if req.len() == 2 { req.arg(1) } else { b"" });
    }
    match req.len() {
        1 => reply::simple(ctx.out, b"PONG"),
        2 => reply::bulk(ctx.out, req.arg(1)),
        _ => ctx.err("ERR wrong number of arguments for 'ping' command"),
    }
}

pub fn hello(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut version = None;
    let mut j = 1;
    if req.len() >= 2 {
        match args::int(req.arg(1)) {
            None => return ctx.err("ERR Protocol version is not an integer or out of range"),
            Some(v) if !(2..=3).contains(&v) => return ctx.err("NOPROTO unsupported protocol version"),
            Some(v) => version = Some(v),
        }
        j = 2;
    }
    let mut name = None;
    let mut auth = None;
    while j < req.len() {
        let more = req.len() - 1 - j;
        let opt = req.arg(j);
        if is(opt, "AUTH") && more >= 2 {
            auth = Some((req.arg(j + 1), req.arg(j + 2)));
            j += 2;
        } else if is(opt, "SETNAME") && more >= 1 {
            name = Some(req.arg(j + 1));
            j += 1;
        } else {
            return ctx.err(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)));
        }
        j += 1;
    }
    match auth {
        Some((user, pass)) if !authenticate(ctx, user, pass) => return,
        Some(_) => {}
        None if ctx.session.auth.is_none() => {
            return ctx.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        None => {}
    }
    if let Some(n) = name {
        if !super::client::valid_name(n) {
            return ctx.err("ERR Client names cannot contain spaces, newlines or special characters.");
        }
        *ctx.session.handle.name.lock().expect("name lock") = String::from_utf8_lossy(n).into_owned();
    }
    if let Some(v) = version {
        ctx.session.set_proto(if v == 3 { Protocol::Resp3 } else { Protocol::Resp2 });
    }
    let p = ctx.proto();
    reply::map_len(ctx.out, p, 7);
    reply::bulk(ctx.out, b"server");
    reply::bulk(ctx.out, b"redis");
    reply::bulk(ctx.out, b"version");
    reply::bulk(ctx.out, crate::REDIS_VERSION.as_bytes());
    reply::bulk(ctx.out, b"proto");
    reply::integer(ctx.out, p.version());
    reply::bulk(ctx.out, b"id");
    reply::integer(ctx.out, ctx.session.handle.id as i64);
    reply::bulk(ctx.out, b"mode");
    reply::bulk(ctx.out, b"cluster");
    reply::bulk(ctx.out, b"role");
    reply::bulk(ctx.out, b"master");
    reply::bulk(ctx.out, b"modules");
    reply::array_len(ctx.out, 0);
}

pub fn auth(ctx: &mut GwCtx<'_>, req: &Request) {
    let (user, pass) = match req.len() {
        2 => {
            let nopass = ctx.node.acl.get("default").is_some_and(|u| u.nopass);
            if nopass {
                return ctx.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            }
            (&b"default"[..], req.arg(1))
        }
        3 => (req.arg(1), req.arg(2)),
        _ => return ctx.syntax(),
    };
    if authenticate(ctx, user, pass) {
        reply::ok(ctx.out);
    }
}

/// Checks a user name and password (AUTH, HELLO AUTH); on success the connection is that user,
/// on failure the client gets WRONGPASS and ACL LOG an `auth` entry.
fn authenticate(ctx: &mut GwCtx<'_>, user: &[u8], pass: &[u8]) -> bool {
    let acl = ctx.node.acl.clone();
    let name = String::from_utf8_lossy(user).into_owned();
    let ip = ctx.session.handle.addr.ip();
    let now = crate::util::now_ms();
    if acl.guard.locked(ip, now) {
        ctx.err("ERR too many failed authentication attempts from this address; try again in a few seconds");
        return false;
    }
    match acl.authenticate(&name, pass) {
        Some(u) => {
            ctx.session.set_user(&acl, Some(u));
            *ctx.session.handle.user.lock().expect("user lock") = name;
            true
        }
        None => {
            if acl.guard.failed(ip, now) {
                tracing::warn!(%ip, failures = crate::acl::guard::MAX_FAILURES, window_ms = crate::acl::guard::WINDOW_MS, "authentication failures from this address; refusing its AUTH attempts for the rest of the window");
            }
            let info = super::client::describe(&ctx.session.handle, now);
            acl.log.add("auth", "toplevel", "AUTH".into(), name, info, now);
            ctx.err("WRONGPASS invalid username-password pair or user is disabled.");
            false
        }
    }
}

pub fn select(ctx: &mut GwCtx<'_>, req: &Request) {
    match args::int32(req.arg(1)) {
        Ok(n) if n < 0 || n as usize >= ctx.node.config.databases => ctx.err(DB_OUT_OF_RANGE),
        Ok(n) => {
            ctx.session.set_db(n as usize);
            reply::ok(ctx.out)
        }
        Err(e) => ctx.err(e),
    }
}
