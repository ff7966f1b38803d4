//! COMMAND and its subcommands, generated from the command table.

use super::args::is;
use super::gateway::GwCtx;
use super::table::{table, CommandSpec};
use crate::util::glob::glob_match;
use bytes::BytesMut;
use shoal_proto::{reply, Protocol, Request};

/// Key-spec flags as Redis writes them: the access kind upper case, the operation lower.
fn key_flags(c: &CommandSpec) -> &'static [&'static [u8]] {
    if c.is_write() {
        &[b"RW", b"update"]
    } else {
        &[b"RO", b"access"]
    }
}

fn key_spec(out: &mut BytesMut, p: Protocol, c: &CommandSpec) {
    if c.first_key <= 0 {
        return reply::set_len(out, p, 0);
    }
    reply::set_len(out, p, 1);
    reply::map_len(out, p, 3);
    reply::bulk(out, b"flags");
    let flags = key_flags(c);
    reply::set_len(out, p, flags.len());
    for f in flags {
        reply::simple(out, f);
    }
    reply::bulk(out, b"begin_search");
    reply::map_len(out, p, 2);
    reply::bulk(out, b"type");
    reply::bulk(out, b"index");
    reply::bulk(out, b"spec");
    reply::map_len(out, p, 1);
    reply::bulk(out, b"index");
    reply::integer(out, c.first_key as i64);
    reply::bulk(out, b"find_keys");
    reply::map_len(out, p, 2);
    reply::bulk(out, b"type");
    reply::bulk(out, b"range");
    reply::bulk(out, b"spec");
    reply::map_len(out, p, 3);
    reply::bulk(out, b"lastkey");
    reply::integer(out, if c.last_key < 0 { c.last_key as i64 } else { (c.last_key - c.first_key) as i64 });
    reply::bulk(out, b"keystep");
    reply::integer(out, c.key_step as i64);
    reply::bulk(out, b"limit");
    reply::integer(out, 0);
}

/// One command's COMMAND INFO entry (Redis 7's ten fields).
fn write_info(out: &mut BytesMut, p: Protocol, c: &CommandSpec) {
    reply::array_len(out, 10);
    reply::bulk(out, c.full_name.as_bytes());
    reply::integer(out, c.arity as i64);
    let flags = c.flag_names();
    reply::set_len(out, p, flags.len());
    for f in flags {
        reply::simple(out, f.as_bytes());
    }
    reply::integer(out, c.first_key as i64);
    reply::integer(out, c.last_key as i64);
    reply::integer(out, c.key_step as i64);
    let cats = c.acl_names();
    reply::set_len(out, p, cats.len());
    for cat in cats {
        reply::simple(out, cat.as_bytes());
    }
    reply::set_len(out, p, 0);
    key_spec(out, p, c);
    reply::set_len(out, p, c.subcommands.len());
    for s in &c.subcommands {
        write_info(out, p, s);
    }
}

pub fn list_all(ctx: &mut GwCtx<'_>) {
    let t = table();
    reply::array_len(ctx.out, t.len());
    for c in t.iter() {
        write_info(ctx.out, ctx.session.proto, c);
    }
}

pub fn info(ctx: &mut GwCtx<'_>, req: &Request) {
    if req.len() == 2 {
        return list_all(ctx);
    }
    reply::array_len(ctx.out, req.len() - 2);
    for i in 2..req.len() {
        match find(req.arg(i)) {
            Some(c) => write_info(ctx.out, ctx.session.proto, c),
            None => reply::null_array(ctx.out, ctx.session.proto),
        }
    }
}

/// A command or `container|sub` subcommand by name.
fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    let t = table();
    match name.iter().position(|&b| b == b'|') {
        None => t.lookup(name),
        Some(bar) => t.lookup(&name[..bar])?.subcommand(&name[bar + 1..]),
    }
}

fn write_docs(out: &mut BytesMut, p: Protocol, c: &CommandSpec) {
    let mut fields = 3;
    if !c.complexity.is_empty() {
        fields += 1;
    }
    if !c.subcommands.is_empty() {
        fields += 1;
    }
    reply::map_len(out, p, fields);
    reply::bulk(out, b"summary");
    reply::bulk(out, c.summary.as_bytes());
    reply::bulk(out, b"since");
    reply::bulk(out, c.since.as_bytes());
    reply::bulk(out, b"group");
    reply::bulk(out, c.group.as_bytes());
    if !c.complexity.is_empty() {
        reply::bulk(out, b"complexity");
        reply::bulk(out, c.complexity.as_bytes());
    }
    if !c.subcommands.is_empty() {
        reply::bulk(out, b"subcommands");
        reply::map_len(out, p, c.subcommands.len());
        for s in &c.subcommands {
            reply::bulk(out, s.full_name.as_bytes());
            write_docs(out, p, s);
        }
    }
}

pub fn docs(ctx: &mut GwCtx<'_>, req: &Request) {
    let p = ctx.session.proto;
    let cmds: Vec<&CommandSpec> = if req.len() == 2 {
        table().iter().collect()
    } else {
        (2..req.len()).filter_map(|i| find(req.arg(i))).collect()
    };
    reply::map_len(ctx.out, p, cmds.len());
    for c in cmds {
        reply::bulk(ctx.out, c.full_name.as_bytes());
        write_docs(ctx.out, p, c);
    }
}

pub fn list(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut names: Vec<&str> = Vec::new();
    for c in table().iter() {
        names.push(&c.full_name);
        names.extend(c.subcommands.iter().map(|s| s.full_name.as_str()));
    }
    if req.len() == 5 && is(req.arg(2), "FILTERBY") {
        let (kind, val) = (req.arg(3), req.arg(4));
        if is(kind, "PATTERN") {
            names.retain(|n| glob_match(val, n.as_bytes(), true));
        } else if is(kind, "ACLCAT") {
            let cat = format!("@{}", String::from_utf8_lossy(val).to_ascii_lowercase());
            names.retain(|n| find(n.as_bytes()).is_some_and(|c| c.acl_names().contains(&cat)));
        } else if is(kind, "MODULE") {
            names.clear();
        } else {
            return ctx.syntax();
        }
    } else if req.len() != 2 {
        return ctx.syntax();
    }
    reply::array_len(ctx.out, names.len());
    for n in names {
        reply::bulk(ctx.out, n.as_bytes());
    }
}

pub fn getkeys(ctx: &mut GwCtx<'_>, req: &Request, with_flags: bool) {
    let sub = Request::from_args(req.args().skip(2));
    let Some(c) = table().resolve(&sub) else { return ctx.err("ERR Invalid command specified") };
    // Redis's order: a keyless command is reported as such before its arity is checked.
    if c.first_key <= 0 && c.keys_fn.is_none() {
        return ctx.err("ERR The command has no key arguments");
    }
    if !c.arity_ok(sub.len()) {
        return ctx.err("ERR Invalid number of arguments specified for command");
    }
    let keys: Vec<usize> = c.keys_of(&sub).collect();
    if keys.is_empty() {
        return ctx.err("ERR Invalid arguments specified for command");
    }
    reply::array_len(ctx.out, keys.len());
    for k in keys {
        if with_flags {
            reply::array_len(ctx.out, 2);
            reply::bulk(ctx.out, req.arg(k + 2));
            let flags = key_flags(c);
            reply::set_len(ctx.out, ctx.session.proto, flags.len());
            for f in flags {
                reply::simple(ctx.out, f);
            }
        } else {
            reply::bulk(ctx.out, req.arg(k + 2));
        }
    }
}
