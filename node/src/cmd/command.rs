//! COMMAND and its subcommands, generated from the command table.

use super::args::is;
use super::gateway::GwCtx;
use super::keyspec::{self, Begin, Find};
use super::table::{table, CommandSpec};
use crate::util::glob::glob_match;
use bytes::BytesMut;
use shoal_proto::{reply, Protocol, Request};

fn key_flags(out: &mut BytesMut, p: Protocol, f: u16) {
    let names = || keyspec::flags::NAMES.iter().filter(|(bit, _)| f & bit != 0);
    reply::set_len(out, p, names().count());
    for (_, name) in names() {
        reply::simple(out, name.as_bytes());
    }
}

/// A command's key specs as Redis 7 prints them in COMMAND INFO.
fn key_specs(out: &mut BytesMut, p: Protocol, c: &CommandSpec) {
    reply::set_len(out, p, c.key_specs.len());
    for ks in &c.key_specs {
        reply::map_len(out, p, if ks.notes.is_empty() { 3 } else { 4 });
        if !ks.notes.is_empty() {
            reply::bulk(out, b"notes");
            reply::bulk(out, ks.notes.as_bytes());
        }
        reply::bulk(out, b"flags");
        key_flags(out, p, ks.flags);
        reply::bulk(out, b"begin_search");
        reply::map_len(out, p, 2);
        reply::bulk(out, b"type");
        match ks.begin {
            Begin::Index(i) => {
                reply::bulk(out, b"index");
                int_map(out, p, &[(b"index", i as i64)]);
            }
            Begin::Keyword(word, from) => {
                reply::bulk(out, b"keyword");
                reply::bulk(out, b"spec");
                reply::map_len(out, p, 2);
                reply::bulk(out, b"keyword");
                reply::bulk(out, word.as_bytes());
                reply::bulk(out, b"startfrom");
                reply::integer(out, from as i64);
            }
            Begin::Unknown => {
                reply::bulk(out, b"unknown");
                int_map(out, p, &[]);
            }
        }
        reply::bulk(out, b"find_keys");
        reply::map_len(out, p, 2);
        reply::bulk(out, b"type");
        match ks.find {
            Find::Range { lastkey, keystep, limit } => {
                reply::bulk(out, b"range");
                int_map(
                    out,
                    p,
                    &[(b"lastkey", lastkey as i64), (b"keystep", keystep as i64), (b"limit", limit as i64)],
                );
            }
            Find::Keynum { keynumidx, firstkey, keystep } => {
                reply::bulk(out, b"keynum");
                int_map(
                    out,
                    p,
                    &[(b"keynumidx", keynumidx as i64), (b"firstkey", firstkey as i64), (b"keystep", keystep as i64)],
                );
            }
            Find::Unknown => {
                reply::bulk(out, b"unknown");
                int_map(out, p, &[]);
            }
        }
    }
}

/// `spec` followed by a map of integer fields.
fn int_map(out: &mut BytesMut, p: Protocol, fields: &[(&[u8], i64)]) {
    reply::bulk(out, b"spec");
    reply::map_len(out, p, fields.len());
    for (name, v) in fields {
        reply::bulk(out, name);
        reply::integer(out, *v);
    }
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
    reply::set_len(out, p, c.tips.len());
    for tip in c.tips {
        reply::bulk(out, tip.as_bytes());
    }
    key_specs(out, p, c);
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
    if !c.has_keys() {
        return ctx.err("ERR The command has no key arguments");
    }
    if !c.arity_ok(sub.len()) {
        return ctx.err("ERR Invalid number of arguments specified for command");
    }
    let keys = keyspec::keys_and_flags(c, &sub);
    if keys.is_empty() {
        if c.has(crate::cmd::table::flags::NO_MANDATORY_KEYS) {
            return reply::array_len(ctx.out, 0);
        }
        return ctx.err("ERR Invalid arguments specified for command");
    }
    reply::array_len(ctx.out, keys.len());
    for k in keys {
        if with_flags {
            reply::array_len(ctx.out, 2);
            reply::bulk(ctx.out, sub.arg(k.pos));
            key_flags(ctx.out, ctx.session.proto, k.flags);
        } else {
            reply::bulk(ctx.out, sub.arg(k.pos));
        }
    }
}
