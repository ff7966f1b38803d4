//! SLOWLOG GET / LEN / RESET over the node's slow log.

use super::gateway::GwCtx;
use shoal_proto::{reply, Request};

pub fn get(ctx: &mut GwCtx<'_>, req: &Request) {
    let count = match req.len() {
        2 => Some(10),
        _ => match shoal_proto::request::parse_i64(req.arg(2)) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(n as usize),
            _ => return ctx.err("ERR count should be greater than or equal to -1"),
        },
    };
    let out = &mut *ctx.out;
    ctx.node.slowlog.with_newest(count, |entries| {
        let entries: Vec<_> = entries.collect();
        reply::array_len(out, entries.len());
        for e in entries {
            reply::array_len(out, 6);
            reply::integer(out, e.id as i64);
            reply::integer(out, e.unix_secs as i64);
            reply::integer(out, e.micros as i64);
            reply::array_len(out, e.args.len());
            for a in &e.args {
                reply::bulk(out, a);
            }
            reply::bulk(out, e.addr.as_bytes());
            reply::bulk(out, e.name.as_bytes());
        }
    });
}

pub fn len(ctx: &mut GwCtx<'_>) {
    reply::integer(ctx.out, ctx.node.slowlog.len() as i64);
}

pub fn reset(ctx: &mut GwCtx<'_>) {
    ctx.node.slowlog.reset();
    reply::ok(ctx.out);
}
