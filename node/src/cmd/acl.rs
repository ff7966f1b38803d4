//! ACL SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI, CAT, GENPASS, DRYRUN, LOG, SAVE, LOAD.

use super::gateway::GwCtx;
use super::table::{table, ACL_CATEGORIES};
use crate::acl::{Denied, UserRecords};
use shoal_proto::{reply, Request};

fn arg(req: &Request, i: usize) -> String {
    String::from_utf8_lossy(req.arg(i)).into_owned()
}

pub fn setuser(ctx: &mut GwCtx<'_>, req: &Request) {
    let name = arg(req, 2);
    // A selector given over several arguments (`(~x` `+get)`) is one rule, as in Redis.
    let mut rules: Vec<String> = Vec::new();
    let mut open = false;
    for i in 3..req.len() {
        let a = arg(req, i);
        match rules.last_mut() {
            Some(last) if open => {
                last.push(' ');
                last.push_str(&a);
            }
            _ => rules.push(a.clone()),
        }
        open = (open || a.starts_with('(')) && !a.ends_with(')');
    }
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    match ctx.node.acl.set_user(&name, &rules) {
        Ok(()) => reply::ok(ctx.out),
        Err(e) => ctx.err(&e.to_string()),
    }
}

pub fn getuser(ctx: &mut GwCtx<'_>, req: &Request) {
    let Some(u) = ctx.node.acl.get(&arg(req, 2)) else {
        return reply::null(ctx.out, ctx.proto());
    };
    let p = ctx.proto();
    let out = &mut *ctx.out;
    reply::map_len(out, p, 6);
    reply::bulk(out, b"flags");
    let mut flags = vec![if u.enabled { "on" } else { "off" }];
    if u.nopass {
        flags.push("nopass");
    }
    reply::array_len(out, flags.len());
    flags.iter().for_each(|f| reply::bulk(out, f.as_bytes()));
    reply::bulk(out, b"passwords");
    reply::array_len(out, u.passwords.len());
    u.passwords.iter().for_each(|h| reply::bulk(out, h.as_bytes()));
    perms_reply(out, &u.root);
    reply::bulk(out, b"selectors");
    reply::array_len(out, u.selectors.len());
    for sel in &u.selectors {
        reply::map_len(out, p, 3);
        perms_reply(out, sel);
    }
}

/// GETUSER's commands, keys and channels fields of one set of permissions.
fn perms_reply(out: &mut bytes::BytesMut, perms: &crate::acl::user::Perms) {
    reply::bulk(out, b"commands");
    reply::bulk(out, perms.commands_text().as_bytes());
    reply::bulk(out, b"keys");
    reply::bulk(out, perms.keys_text().as_bytes());
    reply::bulk(out, b"channels");
    reply::bulk(out, perms.channels_text().as_bytes());
}

pub fn deluser(ctx: &mut GwCtx<'_>, req: &Request) {
    let names: Vec<String> = (2..req.len()).map(|i| arg(req, i)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match ctx.node.acl.delete(&names) {
        Ok(n) => {
            // Redis ends the connections of deleted users.
            for c in ctx.node.clients.all() {
                if names.contains(&c.user.lock().expect("user lock").as_str()) {
                    c.kill();
                }
            }
            reply::integer(ctx.out, n as i64)
        }
        Err(e) => ctx.err(&e.to_string()),
    }
}

pub fn users(ctx: &mut GwCtx<'_>) {
    let names = ctx.node.acl.names();
    reply::array_len(ctx.out, names.len());
    names.iter().for_each(|n| reply::bulk(ctx.out, n.as_bytes()));
}

pub fn list(ctx: &mut GwCtx<'_>) {
    let users = ctx.node.acl.all();
    reply::array_len(ctx.out, users.len());
    for u in users {
        reply::bulk(ctx.out, format!("user {} {}", u.name, u.describe()).as_bytes());
    }
}

pub fn whoami(ctx: &mut GwCtx<'_>) {
    let user = ctx.session.user.clone();
    reply::bulk(ctx.out, user.as_bytes());
}

pub fn cat(ctx: &mut GwCtx<'_>, req: &Request) {
    if req.len() == 2 {
        reply::array_len(ctx.out, ACL_CATEGORIES.len());
        ACL_CATEGORIES.iter().for_each(|c| reply::bulk(ctx.out, c.as_bytes()));
        return;
    }
    let want = arg(req, 2).to_ascii_lowercase();
    let Some(bit) = ACL_CATEGORIES.iter().position(|c| *c == want) else {
        return ctx.err(&format!("ERR Unknown category '{want}'"));
    };
    let names: Vec<&str> =
        table().all_specs().filter(|s| s.acl & (1 << bit) != 0).map(|s| s.full_name.as_str()).collect();
    reply::array_len(ctx.out, names.len());
    names.iter().for_each(|n| reply::bulk(ctx.out, n.as_bytes()));
}

/// ACL GENPASS [bits]: random hex, 256 bits unless told.
pub fn genpass(ctx: &mut GwCtx<'_>, req: &Request) {
    let bits = if req.len() > 2 {
        match super::args::int(req.arg(2)) {
            Some(b) if (1..=4096).contains(&b) => b as usize,
            _ => return ctx.err("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"),
        }
    } else {
        256
    };
    let chars = bits.div_ceil(4);
    let bytes: Vec<u8> = (0..chars.div_ceil(2)).map(|_| rand::random::<u8>()).collect();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    reply::bulk(ctx.out, &hex.as_bytes()[..chars]);
}

/// ACL DRYRUN user command [arg ...]: whether the user could run it.
pub fn dryrun(ctx: &mut GwCtx<'_>, req: &Request) {
    let name = arg(req, 2);
    let Some(u) = ctx.node.acl.get(&name) else {
        return ctx.err(&format!("ERR User '{name}' not found"));
    };
    let cmd = Request::from_args((3..req.len()).map(|i| req.arg(i)));
    let Some(spec) = table().resolve(&cmd) else {
        return ctx.err(&format!("ERR Command '{}' not found", arg(req, 3)));
    };
    if !spec.arity_ok(cmd.len()) {
        return ctx.err(&format!("ERR wrong number of arguments for '{}' command", spec.full_name));
    }
    let text = match u.check(spec, &cmd) {
        Ok(()) => return reply::ok(ctx.out),
        Err(Denied::Command) => format!("This user has no permissions to run the '{}' command", spec.full_name),
        // DRYRUN names the refused key or channel (the request's first argument is the
        // command, so positions are shifted by DRYRUN's own two words).
        Err(Denied::Key(i)) => {
            format!("This user has no permissions to access the '{}' key", String::from_utf8_lossy(cmd.arg(i)))
        }
        Err(Denied::Channel(i)) => {
            format!("This user has no permissions to access the '{}' channel", String::from_utf8_lossy(cmd.arg(i)))
        }
    };
    reply::bulk(ctx.out, text.as_bytes());
}

/// ACL LOG [count | RESET].
pub fn log(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut count = 10usize;
    if req.len() == 3 {
        if super::args::is(req.arg(2), "RESET") {
            ctx.node.acl.log.reset();
            return reply::ok(ctx.out);
        }
        match super::args::int(req.arg(2)) {
            Some(n) if n >= 0 => count = n as usize,
            Some(_) => return ctx.err("ERR value is out of range, must be positive"),
            None => return ctx.err("ERR value is not an integer or out of range"),
        }
    } else if req.len() > 3 {
        return ctx.syntax();
    }
    let entries = ctx.node.acl.log.recent(count);
    let now = crate::util::now_ms();
    let p = ctx.proto();
    reply::array_len(ctx.out, entries.len());
    for e in entries {
        let out = &mut *ctx.out;
        reply::map_len(out, p, 7);
        reply::bulk(out, b"count");
        reply::integer(out, e.count as i64);
        reply::bulk(out, b"reason");
        reply::bulk(out, e.reason.as_bytes());
        reply::bulk(out, b"context");
        reply::bulk(out, e.context.as_bytes());
        reply::bulk(out, b"object");
        reply::bulk(out, e.object.as_bytes());
        reply::bulk(out, b"username");
        reply::bulk(out, e.username.as_bytes());
        reply::bulk(out, b"age-seconds");
        reply::double(out, p, now.saturating_sub(e.created_ms) as f64 / 1000.0);
        reply::bulk(out, b"client-info");
        reply::bulk(out, e.client_info.as_bytes());
    }
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// ACL SAVE: every user to the --aclfile, one `user <name> <rules>` line each.
pub fn save(ctx: &mut GwCtx<'_>) {
    let Some(path) = ctx.node.config.aclfile.clone() else { return ctx.err(NO_ACLFILE) };
    match write_aclfile(&path, &ctx.node.acl.snapshot()) {
        Ok(()) => reply::ok(ctx.out),
        Err(e) => ctx.err(&format!(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information: {e}"
        )),
    }
}

/// ACL LOAD: replaces every user with the --aclfile's, all or nothing.
pub fn load(ctx: &mut GwCtx<'_>) {
    let Some(path) = ctx.node.config.aclfile.clone() else { return ctx.err(NO_ACLFILE) };
    match read_aclfile(&path).and_then(|r| ctx.node.acl.replace(&r).map_err(|e| e.to_string())) {
        Ok(()) => reply::ok(ctx.out),
        Err(e) => ctx.err(&format!("ERR {e}")),
    }
}

pub fn write_aclfile(path: &std::path::Path, records: &UserRecords) -> Result<(), String> {
    let text: String = records.users.iter().map(|(n, r)| format!("user {n} {r}\n")).collect();
    crate::persist::snapshot::write_atomically(path, |f| {
        std::io::Write::write_all(f, text.as_bytes())?;
        Ok(crate::persist::snapshot::Saved { keys: records.users.len() as u64, bytes: text.len() as u64 })
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Parses an ACL file: `user <name> <rule> ...` lines; blank lines and `#` comments skipped.
pub fn read_aclfile(path: &std::path::Path) -> Result<UserRecords, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut records = UserRecords::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = crate::acl::split_rules(line);
        let (Some("user"), Some(name)) = (words.first().map(String::as_str), words.get(1).map(String::as_str)) else {
            return Err(format!("{}:{}: lines must be 'user <name> <rules>'", path.display(), n + 1));
        };
        let rules = &words[2..];
        let mut check = crate::acl::User::new(name);
        for r in rules {
            check.apply(r).map_err(|why| format!("{}:{}: '{r}': {why}", path.display(), n + 1))?;
        }
        records.users.insert(name.to_string(), rules.join(" "));
    }
    Ok(records)
}
