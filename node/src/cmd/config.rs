//! CONFIG GET / SET / RESETSTAT over the node's live configuration.

use super::gateway::GwCtx;
use crate::config::parse_memory;
use crate::memory::Policy;
use crate::node::{Node, ENCODING_PARAMS};
use crate::util::glob::glob_match;
use shoal_proto::{reply, Request};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// Parameters Redis clients read or set that Shoal accepts and reports but does not act on
/// yet (persistence and eviction tuning arrive with their issues).
pub fn passive_defaults() -> BTreeMap<&'static str, String> {
    [
        ("save", "3600 1 300 100 60 10000"),
        ("auto-aof-rewrite-percentage", "100"),
        ("auto-aof-rewrite-min-size", "67108864"),
        ("lazyfree-lazy-user-flush", "no"),
        ("lazyfree-lazy-expire", "no"),
        ("hz", "10"),
        ("latency-tracking", "yes"),
        ("list-max-listpack-size", "-2"),
        ("stream-node-max-bytes", "4096"),
        ("stream-node-max-entries", "100"),
        ("activedefrag", "no"),
        ("loglevel", "notice"),
        ("requirepass", ""),
        ("masterauth", ""),
        ("cluster-node-timeout", "15000"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// Requests address their arguments with 32-bit offsets, so no pending request may exceed this.
pub const MAX_QUERY_BUFFER: u64 = u32::MAX as u64 / 2;

/// Parameters with a real effect or fixed value: (name, mutable).
const ACTIVE: &[(&str, bool)] = &[
    ("bind", false),
    ("port", false),
    ("databases", false),
    ("dir", false),
    ("maxclients", true),
    ("timeout", true),
    ("tcp-keepalive", true),
    ("proto-max-bulk-len", true),
    ("client-query-buffer-limit", true),
    ("maxmemory", true),
    ("maxmemory-policy", true),
    ("maxmemory-samples", true),
    ("appendonly", true),
    ("appendfsync", true),
    ("appenddirname", false),
    ("client-output-buffer-limit", true),
    ("tls-port", false),
    ("tls-cert-file", true),
    ("tls-key-file", true),
    ("tls-ca-cert-file", true),
    ("tls-auth-clients", true),
    ("notify-keyspace-events", true),
    ("slowlog-log-slower-than", true),
    ("slowlog-max-len", true),
    ("busy-reply-threshold", true),
    ("lua-time-limit", true),
    ("cluster-enabled", false),
    ("io-threads", false),
];

/// Index into `LiveConfig::encodings` of a collection-size setting or its alias.
fn encoding_param(name: &str) -> Option<usize> {
    ENCODING_PARAMS.iter().position(|(n, alias)| *n == name || (!alias.is_empty() && *alias == name))
}

/// Every parameter name CONFIG GET can match.
fn active_names() -> impl Iterator<Item = &'static str> {
    ACTIVE.iter().map(|(n, _)| *n).chain(ENCODING_PARAMS.iter().flat_map(|(n, a)| [*n, *a]).filter(|n| !n.is_empty()))
}

fn is_active(name: &str) -> Option<bool> {
    ACTIVE.iter().find(|(n, _)| *n == name).map(|(_, m)| *m).or(encoding_param(name).map(|_| true))
}

fn active_value(node: &Node, name: &str) -> String {
    let l = &node.live;
    if let Some(i) = encoding_param(name) {
        return l.encodings[i].load(Relaxed).to_string();
    }
    match name {
        "bind" => node.config.bind.join(" "),
        "port" => node.port.load(Relaxed).to_string(),
        "databases" => node.config.databases.to_string(),
        "dir" => std::fs::canonicalize(&node.config.data_dir)
            .unwrap_or_else(|_| node.config.data_dir.clone())
            .display()
            .to_string(),
        "maxclients" => l.maxclients.load(Relaxed).to_string(),
        "timeout" => l.timeout.load(Relaxed).to_string(),
        "tcp-keepalive" => l.tcp_keepalive.load(Relaxed).to_string(),
        "proto-max-bulk-len" => l.proto_max_bulk_len.load(Relaxed).to_string(),
        "client-query-buffer-limit" => l.client_query_buffer_limit.load(Relaxed).to_string(),
        "maxmemory" => node.memory.maxmemory().to_string(),
        "maxmemory-policy" => node.memory.policy().name().to_string(),
        "maxmemory-samples" => node.memory.samples().to_string(),
        "appendonly" => if node.wal.is_on() { "yes" } else { "no" }.into(),
        "appendfsync" => node.wal.fsync().name().into(),
        "appenddirname" => crate::persist::wal::DIR_NAME.into(),
        "tls-port" => node.config.tls_port.to_string(),
        "client-output-buffer-limit" => node.output_limits.describe(),
        "tls-cert-file" | "tls-key-file" | "tls-ca-cert-file" | "tls-auth-clients" => {
            let Some(files) = node.tls.as_ref().map(|t| t.files()) else { return String::new() };
            match name {
                "tls-cert-file" => files.cert.display().to_string(),
                "tls-key-file" => files.key.display().to_string(),
                "tls-ca-cert-file" => files.ca.map(|p| p.display().to_string()).unwrap_or_default(),
                _ => files.auth_clients.name().to_string(),
            }
        }
        "notify-keyspace-events" => crate::notify::to_string(node.notifier.flags()),
        "slowlog-log-slower-than" => node.slowlog.threshold_us().to_string(),
        "slowlog-max-len" => node.slowlog.max_len().to_string(),
        "busy-reply-threshold" | "lua-time-limit" => node.scripts.busy_after_ms().to_string(),
        "cluster-enabled" => "yes".into(),
        "io-threads" => node.config.shards.to_string(),
        _ => String::new(),
    }
}

pub fn get(ctx: &mut GwCtx<'_>, req: &Request) {
    let passive = ctx.node.live.passive.read().expect("config lock").clone();
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for i in 2..req.len() {
        let pat = req.arg(i);
        for name in active_names() {
            if glob_match(pat, name.as_bytes(), true) {
                found.insert(name.to_string(), active_value(ctx.node, name));
            }
        }
        for (name, v) in &passive {
            if glob_match(pat, name.as_bytes(), true) {
                found.insert(name.to_string(), v.clone());
            }
        }
    }
    reply::map_len(ctx.out, ctx.proto(), found.len());
    for (k, v) in found {
        reply::bulk(ctx.out, k.as_bytes());
        reply::bulk(ctx.out, v.as_bytes());
    }
}

fn set_one(node: &std::sync::Arc<Node>, name: &str, value: &str) -> Result<(), String> {
    let l = &node.live;
    let num = || value.parse::<u64>().map_err(|_| "argument couldn't be parsed into an integer".to_string());
    let mem = || parse_memory(value).ok_or_else(|| "argument must be a memory value".to_string());
    if let Some(i) = encoding_param(name) {
        let v = value.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
        if v < 0 {
            return Err("argument must be between 0 and 9223372036854775807 inclusive".into());
        }
        l.encodings[i].store(v as usize, Relaxed);
        return Ok(());
    }
    match name {
        "maxclients" => l.maxclients.store(num()?.max(1) as usize, Relaxed),
        "timeout" => l.timeout.store(num()?, Relaxed),
        "tcp-keepalive" => l.tcp_keepalive.store(num()?, Relaxed),
        "proto-max-bulk-len" => {
            let v = mem()?;
            if !(1024 * 1024..=u32::MAX as u64 / 2).contains(&v) {
                return Err("argument must be between 1048576 and 2147483647 inclusive".into());
            }
            l.proto_max_bulk_len.store(v, Relaxed)
        }
        "client-query-buffer-limit" => {
            let v = mem()?;
            if !(1024 * 1024..=MAX_QUERY_BUFFER).contains(&v) {
                return Err("argument must be between 1048576 and 2147483647 inclusive".into());
            }
            l.client_query_buffer_limit.store(v, Relaxed)
        }
        "maxmemory" => node.memory.set_maxmemory(mem()?),
        "maxmemory-samples" => {
            let n = num()?;
            if !(1..=64).contains(&n) {
                return Err("argument must be between 1 and 64 inclusive".into());
            }
            node.memory.set_samples(n as usize)
        }
        "notify-keyspace-events" => {
            let f = crate::notify::parse(value)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())?;
            node.notifier.set_flags(f);
        }
        "appendonly" => {
            let on = crate::config::parse_yes_no(value).ok_or_else(|| "argument must be 'yes' or 'no'".to_string())?;
            if on != node.wal.is_on() {
                let node = node.clone();
                tokio::spawn(async move {
                    if on {
                        if let Err(e) = crate::persist::wal::rewrite::enable(&node).await {
                            tracing::warn!(error = %e, "cannot turn the write-ahead log on");
                        }
                    } else {
                        crate::persist::wal::rewrite::disable(&node).await;
                    }
                });
            }
        }
        "client-output-buffer-limit" => node.output_limits.set(value)?,
        "slowlog-log-slower-than" => node.slowlog.set_threshold_us(
            value.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?,
        ),
        "busy-reply-threshold" | "lua-time-limit" => {
            let n = value.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if n < 0 {
                return Err("argument must be between 0 and 9223372036854775807 inclusive".into());
            }
            node.scripts.set_busy_after_ms(n as u64)
        }
        "slowlog-max-len" => {
            let n = value.parse::<i64>().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                return Err("argument must be between 0 and 2147483647 inclusive".into());
            }
            node.slowlog.set_max_len(n as usize)
        }
        "requirepass" => {
            // Redis's requirepass is the default user's one password ("" for none).
            let rules = if value.is_empty() {
                vec!["nopass".to_string()]
            } else {
                vec!["resetpass".into(), format!(">{value}")]
            };
            let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
            node.acl.set_user("default", &rules).map_err(|e| e.to_string())?;
            l.passive.write().expect("config lock").insert("requirepass", value.to_string());
        }
        "tls-cert-file" | "tls-key-file" | "tls-ca-cert-file" | "tls-auth-clients" => {
            set_tls(node, &[(name.to_string(), value.to_string())])?
        }
        "appendfsync" => {
            let f = crate::persist::wal::Fsync::parse(value)
                .ok_or_else(|| "argument(s) must be one of the following: always, everysec, no".to_string())?;
            node.wal.set_fsync(f);
        }
        "maxmemory-policy" => {
            let p = Policy::parse(value)
                .ok_or_else(|| format!("argument(s) must be one of the following: {}", Policy::names()))?;
            node.memory.set_policy(p);
        }
        _ => {
            let mut passive = l.passive.write().expect("config lock");
            let slot = passive.get_mut(name).ok_or_else(String::new)?;
            *slot = value.to_string();
        }
    }
    Ok(())
}

/// Applies TLS settings together (a new certificate and its key are one change), reloading
/// TLS once; nothing changes if the result does not load.
fn set_tls(node: &Node, pairs: &[(String, String)]) -> Result<(), String> {
    use crate::gateway::tls::AuthClients;
    let tls = node.tls.as_ref().ok_or_else(|| "TLS is off: start the node with --tls-port".to_string())?;
    for (name, value) in pairs {
        if name == "tls-auth-clients" && AuthClients::parse(value).is_none() {
            return Err("argument(s) must be one of the following: no, yes, optional".into());
        }
    }
    tls.reload(|f| {
        for (name, value) in pairs {
            let path = std::path::PathBuf::from(value);
            match name.as_str() {
                "tls-cert-file" => f.cert = path,
                "tls-key-file" => f.key = path,
                "tls-ca-cert-file" => f.ca = (!value.is_empty()).then_some(path),
                _ => f.auth_clients = AuthClients::parse(value).expect("checked above"),
            }
        }
    })
    .map_err(|e| e.to_string())
}

pub fn set(ctx: &mut GwCtx<'_>, req: &Request) {
    if !req.len().is_multiple_of(2) {
        return ctx.err("ERR wrong number of arguments for 'config|set' command");
    }
    let passive = ctx.node.live.passive.read().expect("config lock").clone();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut problem: Option<(String, &str)> = None;
    for i in (2..req.len()).step_by(2) {
        let name = String::from_utf8_lossy(req.arg(i)).to_ascii_lowercase();
        let value = String::from_utf8_lossy(req.arg(i + 1)).into_owned();
        let known = is_active(&name).or(passive.contains_key(name.as_str()).then_some(true));
        match known {
            None => {
                return ctx.err(&format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"));
            }
            Some(false) if problem.is_none() => problem = Some((name.clone(), "can't set immutable config")),
            _ => {}
        }
        if problem.is_none() && pairs.iter().any(|(n, _)| *n == name) {
            problem = Some((name.clone(), "duplicate parameter"));
        }
        pairs.push((name, value));
    }
    if let Some((name, why)) = problem {
        return ctx.err(&format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"));
    }
    // TLS settings go together, first: if they do not load, nothing else changes either.
    let (tls, pairs): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(n, _)| n.starts_with("tls-"));
    if !tls.is_empty() {
        if let Err(why) = set_tls(ctx.node, &tls) {
            return ctx.err(&format!("ERR CONFIG SET failed (possibly related to argument '{}') - {why}", tls[0].0));
        }
    }
    // All or nothing: on a bad value, restore what was already applied.
    let saved: Vec<(String, String)> = pairs.iter().map(|(n, _)| (n.clone(), current(ctx.node, n))).collect();
    for (name, value) in &pairs {
        if let Err(why) = set_one(ctx.node, name, value) {
            for (n, v) in &saved {
                let _ = set_one(ctx.node, n, v);
            }
            return ctx.err(&format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"));
        }
    }
    reply::ok(ctx.out);
}

fn current(node: &std::sync::Arc<Node>, name: &str) -> String {
    if is_active(name).is_some() {
        active_value(node, name)
    } else {
        node.live.passive.read().expect("config lock").get(name).cloned().unwrap_or_default()
    }
}

pub async fn resetstat(ctx: &mut GwCtx<'_>) {
    ctx.node.stats.reset();
    ctx.node.scripts.reset_stats();
    ctx.node
        .broadcast(|st| {
            st.stats.reset();
        })
        .await;
    reply::ok(ctx.out);
}
