//! MEMORY USAGE, STATS, DOCTOR, MALLOC-STATS and PURGE: where the node's memory goes.

use super::exec::Exec;
use super::gateway::GwCtx;
use super::info::{rss_bytes, snapshot_for};
use crate::memory::AllocatorStats;
use shoal_proto::{reply, Request};

/// Bytes a key costs besides its value: its 64-byte table entry and its bucket slot.
pub const ENTRY_OVERHEAD: usize = 64 + 4;

/// MEMORY USAGE key [SAMPLES count]: the key's entry, name and value. Shoal measures every
/// element (Redis samples five by default); SAMPLES is accepted for compatibility.
pub fn usage(ctx: &mut Exec<'_, '_>, req: &Request) {
    let mut i = 3;
    while i < req.len() {
        if req.arg(i).eq_ignore_ascii_case(b"samples") && i + 1 < req.len() {
            if shoal_proto::request::parse_i64(req.arg(i + 1)).is_none_or(|n| n < 0) {
                return ctx.err(super::exec::NOT_INTEGER);
            }
            i += 2;
        } else {
            return ctx.syntax();
        }
    }
    match ctx.lookup(req.arg(2)) {
        None => reply::null(ctx.out, ctx.proto),
        Some((s, id)) => {
            let e = ctx.shards[s].dbs[ctx.db].dict().entry(id);
            let bytes = ENTRY_OVERHEAD + e.key_owned().heap_size() + e.value.heap_size();
            reply::integer(ctx.out, bytes as i64);
        }
    }
}

pub async fn stats(ctx: &mut GwCtx<'_>) {
    let snap = snapshot_for(ctx).await;
    let a = ctx.node.memory.sample();
    let rss = rss_bytes();
    let keys: u64 = snap.dbs.iter().map(|d| d.keys).sum();
    let dataset = a.allocated.saturating_sub(snap.overhead);
    let pct = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let peak = ctx.node.memory.peak();
    let ints: Vec<(&str, u64)> = vec![
        ("peak.allocated", peak),
        ("total.allocated", a.allocated),
        ("startup.allocated", 0),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", 0),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", 0),
        ("functions.caches", 0),
        ("overhead.total", snap.overhead),
        ("keys.count", keys),
        ("keys.bytes-per-key", a.allocated.checked_div(keys).unwrap_or(0)),
        ("dataset.bytes", dataset),
    ];
    let dbs: Vec<(usize, &super::info::DbFigures)> = snap.dbs.iter().enumerate().filter(|(_, d)| d.keys > 0).collect();
    let floats: Vec<(&str, f64)> =
        vec![("dataset.percentage", pct(dataset, a.allocated)), ("peak.percentage", pct(a.allocated, peak))];
    let allocator: Vec<(&str, u64)> =
        vec![("allocator.allocated", a.allocated), ("allocator.active", a.active), ("allocator.resident", a.resident)];
    let frag: Vec<(&str, f64, u64)> = vec![
        ("allocator-fragmentation", ratio(a.active, a.allocated), a.active.saturating_sub(a.allocated)),
        ("allocator.rss", ratio(a.resident, a.active), a.resident.saturating_sub(a.active)),
        ("rss-overhead", ratio(rss, a.resident), rss.saturating_sub(a.resident)),
    ];
    reply::map_len(
        ctx.out,
        ctx.session.proto,
        ints.len() + dbs.len() + floats.len() + allocator.len() + 2 * frag.len() + 2,
    );
    for (k, v) in ints {
        reply::bulk(ctx.out, k.as_bytes());
        reply::integer(ctx.out, v as i64);
    }
    for (i, d) in dbs {
        reply::bulk(ctx.out, format!("db.{i}").as_bytes());
        reply::map_len(ctx.out, ctx.session.proto, 2);
        reply::bulk(ctx.out, b"overhead.hashtable.main");
        reply::integer(ctx.out, (d.keys as usize * ENTRY_OVERHEAD) as i64);
        reply::bulk(ctx.out, b"overhead.hashtable.expires");
        reply::integer(ctx.out, d.expires as i64 * 40);
    }
    for (k, v) in floats {
        reply::bulk(ctx.out, k.as_bytes());
        reply::double(ctx.out, ctx.session.proto, v);
    }
    for (k, v) in allocator {
        reply::bulk(ctx.out, k.as_bytes());
        reply::integer(ctx.out, v as i64);
    }
    for (k, r, b) in frag {
        reply::bulk(ctx.out, format!("{k}.ratio").as_bytes());
        reply::double(ctx.out, ctx.session.proto, r);
        reply::bulk(ctx.out, format!("{k}.bytes").as_bytes());
        reply::integer(ctx.out, b as i64);
    }
    reply::bulk(ctx.out, b"fragmentation");
    reply::double(ctx.out, ctx.session.proto, ratio(rss, a.allocated));
    reply::bulk(ctx.out, b"fragmentation.bytes");
    reply::integer(ctx.out, rss as i64 - a.allocated as i64);
}

/// MEMORY DOCTOR: Redis's advice, from the same figures and thresholds.
pub fn doctor(ctx: &mut GwCtx<'_>) {
    let text = diagnose(ctx.node.memory.sample(), ctx.node.memory.peak(), rss_bytes());
    reply::verbatim(ctx.out, ctx.session.proto, b"txt", text.as_bytes());
}

fn diagnose(a: AllocatorStats, peak: u64, rss: u64) -> String {
    if a.allocated < 5 << 20 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.".into();
    }
    let mut issues = Vec::new();
    if peak as f64 / a.allocated as f64 > 1.5 {
        issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.");
    }
    if a.active as f64 / a.allocated as f64 > 1.1 && a.active - a.allocated > 10 << 20 {
        issues.push(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.");
    }
    if rss as f64 / a.resident.max(1) as f64 > 1.1 && rss.saturating_sub(a.resident) > 10 << 20 {
        issues.push(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.");
    }
    if issues.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.".into();
    }
    format!(
        "Sam, I detected a few issues in this Redis instance memory implants:\n\n{}\n\nI'm here to keep you safe, Sam. I want to help you.\n",
        issues.join("\n\n")
    )
}

/// MEMORY MALLOC-STATS: the allocator's own figures.
pub fn malloc_stats(ctx: &mut GwCtx<'_>) {
    let a = ctx.node.memory.sample();
    let text = format!(
        "___ Begin jemalloc statistics ___\nAllocated: {}, active: {}, resident: {}\n--- End jemalloc statistics ---\n",
        a.allocated, a.active, a.resident
    );
    reply::verbatim(ctx.out, ctx.session.proto, b"txt", text.as_bytes());
}

/// MEMORY PURGE: hands the allocator's dirty pages back to the system.
pub fn purge(ctx: &mut GwCtx<'_>) {
    // 4096 is MALLCTL_ARENAS_ALL: every arena.
    // SAFETY: "arena.4096.purge" takes no input and produces no output.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::warn!(rc, "jemalloc purge failed");
    }
    ctx.node.memory.sample();
    reply::ok(ctx.out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctor_speaks_when_memory_is_fragmented() {
        let small = AllocatorStats { allocated: 1 << 20, active: 1 << 20, resident: 1 << 20 };
        assert!(diagnose(small, 1 << 20, 1 << 20).contains("empty"));
        let fine = AllocatorStats { allocated: 100 << 20, active: 101 << 20, resident: 102 << 20 };
        assert!(diagnose(fine, 100 << 20, 103 << 20).contains("can't find any memory issue"));
        assert!(diagnose(fine, 300 << 20, 103 << 20).contains("Peak memory"));
        let frag = AllocatorStats { allocated: 100 << 20, active: 150 << 20, resident: 150 << 20 };
        assert!(diagnose(frag, 100 << 20, 150 << 20).contains("High allocator fragmentation"));
    }
}
