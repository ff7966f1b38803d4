//! Prometheus metrics at `/metrics` and a liveness check at `/healthz`.
//!
//! Shards count into plain per-shard fields; a scrape gathers them once and renders the
//! families, so serving metrics costs the hot path nothing. The HTTP side is a few lines of
//! HTTP/1.1 for two GET paths, bounded in size and time.

use crate::cmd::info::{rss_bytes, snapshot};
use crate::node::{called_commands, Node};
use crate::shard::stats::LATENCY_BUCKETS_US;
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn gauge(value: f64, label: &[(&str, &str)]) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_gauge(g);
    m.set_label(labels(label));
    m
}

fn counter(value: f64, label: &[(&str, &str)]) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::default();
    m.set_counter(c);
    m.set_label(labels(label));
    m
}

/// Renders every metric in the Prometheus text format.
pub async fn render(node: &Node) -> String {
    let snap = snapshot(node).await;
    let st = &snap.stats;
    let s = &node.stats;
    let mut fams = Vec::new();
    let cmds = called_commands(st);
    fams.push(family(
        "shoal_commands_total",
        "Commands processed, by command.",
        MetricType::COUNTER,
        cmds.iter().map(|(n, c)| counter(c.calls as f64, &[("cmd", n)])).collect(),
    ));
    fams.push(family(
        "shoal_command_failures_total",
        "Commands that replied with an error, by command.",
        MetricType::COUNTER,
        cmds.iter().map(|(n, c)| counter(c.failed as f64, &[("cmd", n)])).collect(),
    ));
    fams.push(family(
        "shoal_command_rejections_total",
        "Commands refused before running (arity and similar), by command.",
        MetricType::COUNTER,
        cmds.iter().map(|(n, c)| counter(c.rejected as f64, &[("cmd", n)])).collect(),
    ));
    fams.push(family(
        "shoal_command_seconds_total",
        "Time spent executing commands, by command.",
        MetricType::COUNTER,
        cmds.iter().map(|(n, c)| counter(c.nanos as f64 / 1e9, &[("cmd", n)])).collect(),
    ));
    let mut h = Histogram::default();
    let mut cumulative = 0;
    let mut buckets = Vec::new();
    for (i, ub) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += st.latency[i];
        let mut b = Bucket::default();
        b.set_upper_bound(*ub as f64 / 1e6);
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    cumulative += st.latency[LATENCY_BUCKETS_US.len()];
    h.set_bucket(buckets);
    h.set_sample_count(cumulative);
    h.set_sample_sum(st.latency_sum_ns as f64 / 1e9);
    let mut hm = Metric::default();
    hm.set_histogram(h);
    fams.push(family("shoal_command_duration_seconds", "Command execution latency.", MetricType::HISTOGRAM, vec![hm]));
    fams.push(family(
        "shoal_errors_total",
        "Error replies, by error code.",
        MetricType::COUNTER,
        st.errors.iter().map(|(code, n)| counter(*n as f64, &[("code", code)])).collect(),
    ));
    fams.push(family(
        "shoal_connected_clients",
        "Client connections open now.",
        MetricType::GAUGE,
        vec![gauge(node.clients.count() as f64, &[])],
    ));
    let backup = node.backups.status();
    let wal = &node.wal;
    let counters: [(&str, &str, u64); 18] = [
        (
            "shoal_tls_handshake_failures_total",
            "TLS connections that failed or timed out in the handshake (bad or missing client certificate, wrong CA, ...).",
            s.tls_handshake_failures.load(Relaxed),
        ),
        (
            "shoal_connections_disallowed_total",
            "Connections closed at accept: their address is outside --allow-cidr.",
            s.disallowed_connections.load(Relaxed),
        ),
        (
            "shoal_connections_received_total",
            "Client connections accepted.",
            s.total_connections_received.load(Relaxed),
        ),
        (
            "shoal_connections_rejected_total",
            "Client connections refused at maxclients.",
            s.rejected_connections.load(Relaxed),
        ),
        ("shoal_net_input_bytes_total", "Bytes read from clients.", s.net_input_bytes.get()),
        ("shoal_net_output_bytes_total", "Bytes written to clients.", s.net_output_bytes.get()),
        ("shoal_protocol_errors_total", "Connections closed for malformed input.", s.protocol_errors.load(Relaxed)),
        ("shoal_expired_keys_total", "Keys removed because their TTL passed.", st.expired_keys),
        ("shoal_evicted_keys_total", "Keys evicted to stay under maxmemory.", st.evicted_keys),
        (
            "shoal_oom_rejections_total",
            "Commands refused with -OOM because memory was at maxmemory.",
            node.memory.oom_rejections.load(Relaxed),
        ),
        ("shoal_keyspace_hits_total", "Reads that found their key.", st.keyspace_hits),
        ("shoal_keyspace_misses_total", "Reads that did not find their key.", st.keyspace_misses),
        (
            "shoal_rdb_saves_total",
            "Snapshots written (SAVE, BGSAVE, save points, shutdown).",
            node.saves.saves.load(Relaxed),
        ),
        ("shoal_wal_fsyncs_total", "Syncs of the write-ahead log to disk.", wal.fsyncs.load(Relaxed)),
        ("shoal_wal_rewrites_total", "Write-ahead log rewrites completed.", wal.rewrite.rewrites.load(Relaxed)),
        ("shoal_backups_completed_total", "Backups stored.", backup.completed),
        ("shoal_backups_failed_total", "Backups that failed.", backup.failed),
        (
            "shoal_scripts_evicted_total",
            "EVAL scripts evicted from the cache, the least recently run past 500 (INFO evicted_scripts).",
            node.scripts.evicted_scripts(),
        ),
    ];
    for (name, help, v) in counters {
        fams.push(family(name, help, MetricType::COUNTER, vec![counter(v as f64, &[])]));
    }
    let dbs: Vec<(String, u64, u64)> = snap
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.keys > 0)
        .map(|(i, d)| (i.to_string(), d.keys, d.expires))
        .collect();
    fams.push(family(
        "shoal_keys",
        "Keys per database.",
        MetricType::GAUGE,
        dbs.iter().map(|(db, k, _)| gauge(*k as f64, &[("db", db)])).collect(),
    ));
    fams.push(family(
        "shoal_keys_with_expiry",
        "Keys with a TTL per database.",
        MetricType::GAUGE,
        dbs.iter().map(|(db, _, e)| gauge(*e as f64, &[("db", db)])).collect(),
    ));
    let allocated = node.memory.sample().allocated;
    fams.push(family(
        "shoal_wal_fsync_seconds_total",
        "Time spent syncing the write-ahead log; over shoal_wal_fsyncs_total, the mean sync time.",
        MetricType::COUNTER,
        vec![counter(wal.fsync_nanos.load(Relaxed) as f64 / 1e9, &[])],
    ));
    let lua = node.scripts.memory();
    let (libraries, functions) = node.scripts.counts();
    let gauges: [(&str, &str, f64); 18] = [
        ("shoal_memory_used_bytes", "Bytes allocated (INFO used_memory).", allocated as f64),
        (
            "shoal_memory_peak_bytes",
            "Most bytes allocated since start (INFO used_memory_peak).",
            node.memory.peak() as f64,
        ),
        ("shoal_memory_rss_bytes", "Resident set size of the process.", rss_bytes() as f64),
        ("shoal_maxmemory_bytes", "Configured memory limit, 0 for none.", node.memory.maxmemory() as f64),
        ("shoal_uptime_seconds", "Seconds since the node started.", node.uptime_ms() as f64 / 1000.0),
        ("shoal_shards", "Shard actors on this node.", node.shards.len() as f64),
        ("shoal_wal_enabled", "1 when the write-ahead log is on (appendonly yes).", wal.is_on() as u8 as f64),
        (
            "shoal_wal_size_bytes",
            "Size of the write-ahead log: its base snapshot plus the segments after it.",
            if wal.is_on() { (wal.base_size.load(Relaxed) + wal.log_bytes()) as f64 } else { 0.0 },
        ),
        (
            "shoal_wal_unsynced_bytes",
            "Log bytes appended but not yet synced to disk.",
            wal.appended().saturating_sub(wal.synced()) as f64,
        ),
        (
            "shoal_rdb_changes_since_last_save",
            "Writes since the last snapshot.",
            snap.dirty.saturating_sub(node.saves.dirty_at_save.load(Relaxed)) as f64,
        ),
        (
            "shoal_rdb_last_save_timestamp_seconds",
            "Unix time of the last snapshot.",
            node.saves.last_save.load(Relaxed) as f64,
        ),
        (
            "shoal_backup_last_success_timestamp_seconds",
            "Unix time the last successful backup finished; 0 before any.",
            backup.last_success as f64,
        ),
        ("shoal_scripts_cached", "Scripts in the cache (INFO number_of_cached_scripts).", lua.scripts as f64),
        ("shoal_scripts_cached_bytes", "Bytes of the cached scripts' bodies.", lua.script_bytes as f64),
        (
            "shoal_lua_memory_bytes",
            "Bytes the Lua VM holds, for scripts and functions (INFO used_memory_lua).",
            lua.vm_bytes as f64,
        ),
        ("shoal_function_libraries", "Function libraries loaded.", libraries as f64),
        ("shoal_functions", "Functions the loaded libraries registered.", functions as f64),
        (
            "shoal_script_busy",
            "1 while a script or function runs past busy-reply-threshold (other clients get -BUSY).",
            node.scripts.busy().is_some() as u8 as f64,
        ),
    ];
    for (name, help, v) in gauges {
        fams.push(family(name, help, MetricType::GAUGE, vec![gauge(v, &[])]));
    }
    // The encoder rejects a family without samples (and stops there), so leave those out.
    fams.retain(|f| !f.get_metric().is_empty());
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&fams, &mut buf) {
        tracing::warn!(error = %e, "cannot encode metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Serves /metrics and /healthz until shutdown.
pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving metrics");
    let mut shutdown = node.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|&stop| stop) => break,
            r = listener.accept() => r,
        };
        if let Ok((stream, _)) = accepted {
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) = tokio::time::timeout(Duration::from_secs(10), respond(&node, stream)).await {
                    debug!(error = %e, "metrics request timed out");
                }
            });
        }
    }
}

async fn respond(node: &Node, mut stream: TcpStream) {
    let mut req = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 8192 {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
    }
    let line = req.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4", render(node).await),
        (b"GET", b"/healthz") => {
            if node.is_shutting_down() {
                ("503 Service Unavailable", "text/plain", "shutting down\n".to_string())
            } else {
                ("200 OK", "text/plain", "ok\n".to_string())
            }
        }
        (b"GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
