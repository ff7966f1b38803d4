//! INFO, with Redis's section and field names so clients and exporters read it unchanged.

use super::gateway::GwCtx;
use crate::node::{called_commands, Node};
use crate::shard::stats::ShardStats;
use crate::shard::ShardState;
use crate::util::{bytes_human, now_ms, now_us};
use shoal_proto::Request;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_EXTRA: &[&str] = &["commandstats", "latencystats"];

/// Keyspace figures of one database, summed over shards.
#[derive(Clone, Copy, Default)]
pub struct DbFigures {
    pub keys: u64,
    pub expires: u64,
    pub avg_ttl_sum: u64,
    pub shards_with_ttl: u64,
}

pub struct Snapshot {
    pub stats: ShardStats,
    pub dbs: Vec<DbFigures>,
    pub dirty: u64,
    pub overhead: u64,
}

/// INFO persistence's aof_* fields, about the write-ahead log.
fn aof_fields(node: &Node, rewriting: bool) -> String {
    let wal = &node.wal;
    let rw = &wal.rewrite;
    let current = if rewriting { (now_ms().saturating_sub(rw.started_ms.load(Relaxed)) / 1000) as i64 } else { -1 };
    let mut s = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\n",
        wal.is_on() as u8,
        rewriting as u8,
        rw.scheduled.load(Relaxed) as u8,
        rw.last_secs(),
        if rw.last_ok.load(Relaxed) { "ok" } else { "err" },
        rw.rewrites.load(Relaxed),
        rw.consecutive_failures.load(Relaxed),
        if wal.failure().is_some() { "err" } else { "ok" },
    );
    if wal.is_on() {
        let base = wal.base_size.load(Relaxed);
        s.push_str(&format!(
            "aof_current_size:{}\r\naof_base_size:{base}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:0\r\nshoal_wal_offset:{}\r\nshoal_wal_synced_offset:{}\r\n",
            base + wal.log_bytes(),
            rw.scheduled.load(Relaxed) as u8,
            wal.unwritten(),
            wal.appended(),
            wal.synced(),
        ));
    }
    s
}

/// One shard's share of a `Snapshot`: its statistics, each database's (keys, keys with an
/// expiry, average TTL), its changes since the last save, its tables' overhead.
type ShardPart = (ShardStats, Vec<(u64, u64, u64)>, u64, u64);

fn shard_part(st: &mut ShardState) -> ShardPart {
    let now = now_ms();
    let dbs = st.dbs.iter().map(|d| (d.len() as u64, d.expires_len() as u64, d.avg_ttl(now))).collect();
    let overhead: usize = st.dbs.iter().map(|d| d.overhead_bytes()).sum();
    (st.stats.clone(), dbs, st.changes.dirty, overhead as u64)
}

/// The node's figures, asking every shard's actor (metrics).
pub async fn snapshot(node: &Node) -> Snapshot {
    let parts = node.broadcast(shard_part).await;
    summarize(node, &parts)
}

/// The node's figures for a command, over the shards it holds if it holds them (a script).
pub async fn snapshot_for(ctx: &mut GwCtx<'_>) -> Snapshot {
    let parts = ctx.each_shard(shard_part).await;
    summarize(ctx.node, &parts)
}

fn summarize(node: &Node, parts: &[ShardPart]) -> Snapshot {
    let mut stats = ShardStats::new(super::table::table().stat_slots());
    let mut dbs = vec![DbFigures::default(); node.config.databases];
    let (mut dirty, mut overhead) = (0, 0);
    for (s, d, dy, ov) in parts {
        stats.merge(s);
        for (agg, (k, e, ttl)) in dbs.iter_mut().zip(d) {
            agg.keys += k;
            agg.expires += e;
            if *e > 0 {
                agg.avg_ttl_sum += ttl;
                agg.shards_with_ttl += 1;
            }
        }
        dirty += dy;
        overhead += ov;
    }
    node.stats.merge_into(&mut stats);
    Snapshot { stats, dbs, dirty, overhead }
}

pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

pub(crate) fn cpu_times(who: i32) -> (String, String) {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let f = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (f(ru.ru_stime), f(ru.ru_utime))
}

pub async fn info(ctx: &mut GwCtx<'_>, req: &Request) {
    let mut wanted: Vec<String> =
        (1..req.len()).map(|i| String::from_utf8_lossy(req.arg(i)).to_ascii_lowercase()).collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
        wanted.extend(DEFAULT.iter().map(|s| s.to_string()));
    }
    if wanted.iter().any(|w| w == "all" || w == "everything") {
        wanted.extend(DEFAULT.iter().chain(ALL_EXTRA).map(|s| s.to_string()));
    }
    let snap = snapshot_for(ctx).await;
    let text = render(ctx.node, &snap, &wanted);
    ctx.text(&text);
}

pub fn render(node: &Node, snap: &Snapshot, wanted: &[String]) -> String {
    let want = |s: &str| wanted.iter().any(|w| w == s);
    let mut o = String::new();
    let mut section = |name: &str, body: String| {
        if want(&name.to_ascii_lowercase()) {
            if !o.is_empty() {
                o.push_str("\r\n");
            }
            let _ = write!(o, "# {name}\r\n{body}");
        }
    };
    let uptime = node.uptime_ms() / 1000;
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let config_file = node.config.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    section(
        "Server",
        format!(
            "redis_version:{}\r\nshoal_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:cluster\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nshards:{}\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            node.run_id,
            node.port.load(Relaxed),
            now_us(),
            uptime,
            uptime / 86400,
            (now_ms() / 1000) & 0xff_ffff,
            exe,
            config_file,
            node.shards.len(),
        ),
    );
    section(
        "Clients",
        format!(
            "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:0\r\nclients_in_timeout_table:{}\r\n",
            node.clients.count(),
            node.live.maxclients.load(Relaxed),
            node.stats.blocked_clients.load(Relaxed),
            node.stats.blocked_clients.load(Relaxed),
        ),
    );
    let crate::memory::AllocatorStats { allocated, active, resident } = node.memory.sample();
    let rss = rss_bytes();
    let peak = node.memory.peak();
    let maxmemory = node.memory.maxmemory();
    let policy = node.memory.policy().name();
    let sysmem = total_system_memory();
    let dataset = allocated.saturating_sub(snap.overhead);
    // One VM runs both scripts and functions: Redis's split of it is reported as all eval.
    let crate::script::ScriptMemory { vm_bytes: vm, scripts: cached, script_bytes, library_bytes } =
        node.scripts.memory();
    let (libraries, functions) = node.scripts.counts();
    section(
        "Memory",
        format!(
            "used_memory:{allocated}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:0\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{allocated}\r\nallocator_active:{active}\r\nallocator_resident:{resident}\r\ntotal_system_memory:{sysmem}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{vm}\r\nused_memory_vm_eval:{vm}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{script_bytes}\r\nnumber_of_cached_scripts:{cached}\r\nnumber_of_functions:{functions}\r\nnumber_of_libraries:{libraries}\r\nused_memory_vm_functions:0\r\nused_memory_vm_total:{vm}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{library_bytes}\r\nused_memory_scripts:{}\r\nused_memory_scripts_human:{}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{policy}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:0\r\nmem_replication_backlog:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_aof_buffer:0\r\nmem_allocator:jemalloc\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
            bytes_human(allocated),
            bytes_human(rss),
            bytes_human(peak),
            if peak > 0 { allocated as f64 * 100.0 / peak as f64 } else { 0.0 },
            snap.overhead,
            if allocated > 0 { dataset as f64 * 100.0 / allocated as f64 } else { 0.0 },
            bytes_human(sysmem),
            bytes_human(vm),
            bytes_human(vm),
            script_bytes + library_bytes,
            bytes_human(script_bytes + library_bytes),
            bytes_human(maxmemory),
            if allocated > 0 { active as f64 / allocated as f64 } else { 0.0 },
            active.saturating_sub(allocated),
            if allocated > 0 { rss as f64 / allocated as f64 } else { 0.0 },
            rss as i64 - allocated as i64,
        ),
    );
    let sv = &node.saves;
    let rewriting = node.wal.rewrite.in_progress.load(Relaxed);
    let saving = sv.in_progress.load(Relaxed) && !rewriting;
    section(
        "Persistence",
        format!(
            "loading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\nrdb_last_save_duration_ms:{}\r\n{}module_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            if saving { sv.current_keys.load(Relaxed) } else { 0 },
            if saving { sv.current_total.load(Relaxed) } else { 0 },
            snap.dirty.saturating_sub(sv.dirty_at_save.load(Relaxed)),
            saving as u8,
            sv.last_save.load(Relaxed),
            if sv.last_ok.load(Relaxed) { "ok" } else { "err" },
            if sv.saves.load(Relaxed) > 0 { (sv.last_duration_ms.load(Relaxed) / 1000) as i64 } else { -1 },
            if saving { (now_ms().saturating_sub(sv.current_started_ms.load(Relaxed)) / 1000) as i64 } else { -1 },
            sv.saves.load(Relaxed),
            sv.loaded_expired.load(Relaxed),
            sv.loaded_keys.load(Relaxed),
            sv.last_duration_ms.load(Relaxed),
            aof_fields(node, rewriting),
        ),
    );
    let st = &snap.stats;
    let total_cmds: u64 = st.commands.iter().map(|c| c.calls).sum();
    let total_errors: u64 = st.errors.iter().map(|(_, n)| n).sum();
    let s = &node.stats;
    let tracking = node.tracking.totals();
    section(
        "Stats",
        format!(
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\nevicted_scripts:{}\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nclient_query_buffer_limit_disconnections:0\r\nclient_output_buffer_limit_disconnections:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
            s.total_connections_received.load(Relaxed),
            total_cmds,
            s.net_input_bytes.get(),
            s.net_output_bytes.get(),
            s.rejected_connections.load(Relaxed),
            st.expired_keys,
            st.evicted_keys,
            node.scripts.evicted_scripts(),
            st.keyspace_hits,
            st.keyspace_misses,
            node.pubsub.channels(crate::pubsub::Space::Channel, None).len(),
            node.pubsub.numpat(),
            node.pubsub.channels(crate::pubsub::Space::Shard, None).len(),
            tracking.0,
            tracking.1,
            tracking.2,
            total_errors,
            s.total_reads_processed.get(),
            s.total_writes_processed.get(),
        ),
    );
    section(
        "Replication",
        format!(
            "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
            node.run_id
        ),
    );
    let (sys, user) = cpu_times(libc::RUSAGE_SELF);
    let (csys, cuser) = cpu_times(libc::RUSAGE_CHILDREN);
    section(
        "CPU",
        format!(
            "used_cpu_sys:{sys}\r\nused_cpu_user:{user}\r\nused_cpu_sys_children:{csys}\r\nused_cpu_user_children:{cuser}\r\nused_cpu_sys_main_thread:{sys}\r\nused_cpu_user_main_thread:{user}\r\n"
        ),
    );
    section("Modules", String::new());
    let mut errs = String::new();
    for (code, n) in &st.errors {
        let _ = write!(errs, "errorstat_{code}:count={n}\r\n");
    }
    section("Errorstats", errs);
    section("Cluster", "cluster_enabled:1\r\n".into());
    let mut ks = String::new();
    for (i, d) in snap.dbs.iter().enumerate().filter(|(_, d)| d.keys > 0) {
        let avg = d.avg_ttl_sum.checked_div(d.shards_with_ttl).unwrap_or(0);
        let _ = write!(ks, "db{i}:keys={},expires={},avg_ttl={avg}\r\n", d.keys, d.expires);
    }
    section("Keyspace", ks);
    let mut cs = String::new();
    for (name, c) in called_commands(st) {
        let usec = c.nanos / 1000;
        let per = if c.calls > 0 { c.nanos as f64 / 1000.0 / c.calls as f64 } else { 0.0 };
        let _ = write!(
            cs,
            "cmdstat_{name}:calls={},usec={usec},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
            c.calls, c.rejected, c.failed
        );
    }
    section("Commandstats", cs);
    section("Latencystats", String::new());
    o
}
