//! The `stats` command of the Memcached gateway: the general statistics and the `settings`,
//! `items` and `slabs` groups, with the fields memcached's clients and exporters read,
//! filled from the node's own counters.

use crate::cmd::table::table;
use crate::node::Node;
use shoal_proto::memcache::Op;
use std::sync::atomic::Ordering::Relaxed;

/// The statistics of group `args` ("" for the general ones); `None` for a group memcached
/// does not have.
pub async fn collect(node: &Node, args: &[u8]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut put = |name: &str, value: String| out.push((name.to_string(), value));
    let items: usize = node.broadcast(|st| st.dbs[0].len()).await.into_iter().sum();
    let limit = node.memory.maxmemory();
    let c = &node.config.memcache;
    match args {
        b"" => {
            let agg = node.aggregate_stats().await;
            let calls = |ops: &[Op]| -> u64 { ops.iter().map(|&op| agg.commands[table().memcache(op).id].calls).sum() };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let uptime = node.uptime_ms() / 1000;
            let (sys, user) = crate::cmd::info::cpu_times(libc::RUSAGE_SELF);
            let s = &node.stats;
            put("pid", std::process::id().to_string());
            put("uptime", uptime.to_string());
            put("time", now.as_secs().to_string());
            put("version", super::memcache::VERSION.to_string());
            put("libevent", "tokio".into());
            put("pointer_size", (usize::BITS).to_string());
            put("rusage_user", user);
            put("rusage_system", sys);
            put("max_connections", node.live.maxclients.load(Relaxed).to_string());
            put("curr_connections", node.clients.count().to_string());
            put("total_connections", s.total_connections_received.load(Relaxed).to_string());
            put("rejected_connections", s.rejected_connections.load(Relaxed).to_string());
            put("connection_structures", node.clients.count().to_string());
            put("cmd_get", calls(&[Op::Get, Op::Gets, Op::Gat, Op::Gats, Op::MetaGet]).to_string());
            put(
                "cmd_set",
                calls(&[Op::Set, Op::Add, Op::Replace, Op::Append, Op::Prepend, Op::Cas, Op::MetaSet]).to_string(),
            );
            put("cmd_flush", calls(&[Op::FlushAll]).to_string());
            put("cmd_touch", calls(&[Op::Touch, Op::Gat, Op::Gats]).to_string());
            for (name, n) in crate::shard::stats::MC_STAT_NAMES.iter().zip(agg.mc.iter()) {
                put(name, n.to_string());
            }
            put("get_expired", agg.expired_keys.to_string());
            put("curr_items", items.to_string());
            put("total_items", calls(&[Op::Set, Op::Add, Op::Replace, Op::Cas, Op::MetaSet]).to_string());
            put("evictions", agg.evicted_keys.to_string());
            put("bytes", node.memory.sample().allocated.to_string());
            put("limit_maxbytes", limit.to_string());
            put("accepting_conns", "1".into());
            put("threads", node.config.threads.to_string());
            put("bytes_read", s.net_input_bytes.get().to_string());
            put("bytes_written", s.net_output_bytes.get().to_string());
            put("auth_errors", s.memcache_auth_failures.load(Relaxed).to_string());
        }
        b"settings" => {
            put("maxbytes", limit.to_string());
            put("maxconns", node.live.maxclients.load(Relaxed).to_string());
            put("tcpport", c.port.to_string());
            put("udpport", "0".into());
            put("inter", node.config.bind.join(","));
            put("verbosity", "0".into());
            put(
                "evictions",
                if node.memory.policy() == crate::memory::Policy::NoEviction { "off" } else { "on" }.into(),
            );
            put("num_threads", node.config.threads.to_string());
            put("cas_enabled", "yes".into());
            put("auth_enabled_sasl", if c.auth { "yes" } else { "no" }.into());
            put("item_size_max", c.max_item_size.to_string());
            put("binding_protocol", "auto-negotiate".into());
            put("ssl_enabled", if c.tls { "yes" } else { "no" }.into());
        }
        // Shoal has no slab classes: one class holds every item.
        b"items" => {
            put("items:1:number", items.to_string());
            put("items:1:evicted", node.aggregate_stats().await.evicted_keys.to_string());
        }
        b"slabs" => {
            put("1:used_chunks", items.to_string());
            put("active_slabs", if items > 0 { "1" } else { "0" }.into());
            put("total_malloced", node.memory.sample().allocated.to_string());
        }
        _ => return None,
    }
    Some(out)
}
