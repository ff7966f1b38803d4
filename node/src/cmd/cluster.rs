//! The cluster protocol answered as a one-node cluster that owns all 16384 slots, so
//! cluster-aware clients connect to a single node unchanged.

use super::args;
use super::exec::NOT_INTEGER;
use super::gateway::GwCtx;
use crate::node::Node;
use crate::util::now_ms;
use shoal_proto::{key_hash_slot, reply, Request, SLOT_COUNT};
use std::sync::atomic::Ordering::Relaxed;

/// This node's shard id: derived from the node id so it is stable across restarts.
pub fn shard_id(node: &Node) -> String {
    node.node_id.chars().rev().collect()
}

/// The address clients reach this node at: the one this client connected to.
fn endpoint(ctx: &GwCtx<'_>) -> (String, u16) {
    let l = ctx.session.handle.laddr;
    (l.ip().to_string(), ctx.node.port.load(Relaxed))
}

pub fn info(ctx: &mut GwCtx<'_>) {
    let text = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:1\r\ncluster_my_epoch:1\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n";
    ctx.text(text);
}

pub fn slots(ctx: &mut GwCtx<'_>) {
    let (ip, port) = endpoint(ctx);
    let out = &mut *ctx.out;
    reply::array_len(out, 1);
    reply::array_len(out, 3);
    reply::integer(out, 0);
    reply::integer(out, SLOT_COUNT as i64 - 1);
    reply::array_len(out, 4);
    reply::bulk(out, ip.as_bytes());
    reply::integer(out, port as i64);
    reply::bulk(out, ctx.node.node_id.as_bytes());
    reply::map_len(out, ctx.session.proto, 0);
}

pub fn shards(ctx: &mut GwCtx<'_>) {
    let (ip, port) = endpoint(ctx);
    let p = ctx.proto();
    let out = &mut *ctx.out;
    reply::array_len(out, 1);
    reply::map_len(out, p, 2);
    reply::bulk(out, b"slots");
    reply::array_len(out, 2);
    reply::integer(out, 0);
    reply::integer(out, SLOT_COUNT as i64 - 1);
    reply::bulk(out, b"nodes");
    reply::array_len(out, 1);
    reply::map_len(out, p, 7);
    reply::bulk(out, b"id");
    reply::bulk(out, ctx.node.node_id.as_bytes());
    reply::bulk(out, b"port");
    reply::integer(out, port as i64);
    reply::bulk(out, b"ip");
    reply::bulk(out, ip.as_bytes());
    reply::bulk(out, b"endpoint");
    reply::bulk(out, ip.as_bytes());
    reply::bulk(out, b"role");
    reply::bulk(out, b"master");
    reply::bulk(out, b"replication-offset");
    reply::integer(out, 0);
    reply::bulk(out, b"health");
    reply::bulk(out, b"online");
}

pub fn nodes(ctx: &mut GwCtx<'_>) {
    let (ip, port) = endpoint(ctx);
    let line = format!(
        "{} {ip}:{port}@{} myself,master - 0 {} 1 connected 0-16383\n",
        ctx.node.node_id,
        port as u32 + 10000,
        now_ms()
    );
    ctx.text(&line);
}

fn slot_arg(arg: &[u8]) -> Result<u16, &'static str> {
    match args::int(arg) {
        None => Err(NOT_INTEGER),
        Some(s) if !(0..SLOT_COUNT as i64).contains(&s) => Err("ERR Invalid slot"),
        Some(s) => Ok(s as u16),
    }
}

pub async fn countkeysinslot(ctx: &mut GwCtx<'_>, req: &Request) {
    let slot = match slot_arg(req.arg(2)) {
        Ok(s) => s,
        Err(e) => return ctx.err(e),
    };
    let shard = ctx.node.route.shard_of_slot(slot);
    let db = ctx.session.db;
    let n = ctx
        .one_shard(shard, move |st| st.dbs[db].dict().iter().filter(|e| key_hash_slot(e.key()) == slot).count())
        .await;
    reply::integer(ctx.out, n as i64);
}

pub async fn getkeysinslot(ctx: &mut GwCtx<'_>, req: &Request) {
    let (Some(slot), Some(count)) = (args::int(req.arg(2)), args::int(req.arg(3))) else {
        return ctx.err(NOT_INTEGER);
    };
    if count < 0 || !(0..SLOT_COUNT as i64).contains(&slot) {
        return ctx.err("ERR Invalid slot or number of keys");
    }
    let slot = slot as u16;
    let shard = ctx.node.route.shard_of_slot(slot);
    let db = ctx.session.db;
    let keys = ctx
        .one_shard(shard, move |st| {
            st.dbs[db]
                .dict()
                .iter()
                .filter(|e| key_hash_slot(e.key()) == slot)
                .take(count as usize)
                .map(|e| e.key().to_vec())
                .collect::<Vec<_>>()
        })
        .await;
    reply::array_len(ctx.out, keys.len());
    for k in &keys {
        reply::bulk(ctx.out, k);
    }
}
